/* Security chip internals shared by chip.c and attest.c (not part of the contract). */
#ifndef NITRO_SECURITYCHIP_CHIP_INTERNAL_H
#define NITRO_SECURITYCHIP_CHIP_INTERNAL_H

#include "lib/util.h"
#include "securitychip/chip.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/types.h>
#include <time.h>

#define CHIP_CACHE_SIZE 32
#define CHIP_DESC_MAX 512

struct chip_event {
	unsigned long ev_seq;
	unsigned ev_pcr;
	char ev_type[32];
	uint8_t ev_digest[CHIP_DIGEST_LEN];
	char *ev_desc; /* %-escaped, as in the log */
};

struct chip_cache {
	bool cc_valid;
	dev_t cc_dev;
	ino_t cc_ino;
	off_t cc_size;
	struct timespec cc_mtime, cc_ctime;
	uint8_t cc_digest[CHIP_DIGEST_LEN];
};

struct chip {
	pthread_mutex_t c_lock;
	char *c_dir;
	char *c_anchor_path;
	char *c_log_path;
	int c_log_fd;
	bool c_unsynced; /* a chip_measure_self event is written but not yet fdatasync'ed */
	EVP_PKEY *c_anchor;
	EVP_PKEY *c_attest_key; /* loaded or made on first attestation */
	uint8_t c_pcr[CHIP_NR_PCRS][CHIP_DIGEST_LEN];
	struct chip_event *c_events;
	size_t c_nevents, c_capevents;
	struct chip_cache c_cache[CHIP_CACHE_SIZE];
	unsigned c_cache_next;
};

int chip_sha384(const void *data, size_t len, uint8_t out[CHIP_DIGEST_LEN]);

#endif
