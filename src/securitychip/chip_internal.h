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
	bool cc_have_sha256; /* computed in the same pass when a caller asked for it */
	uint8_t cc_sha256[CHIP_SHA256_LEN];
};

/* The event log is compacted past this many events (chip_set_log_max): its oldest half is
 * replaced by one signed checkpoint line (checkpoint.c, docs/security.md). */
#define CHIP_LOG_MAX_EVENTS 4096

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
	struct chip_event *c_events; /* the events after the checkpoint (all: none) */
	size_t c_nevents, c_capevents;
	/* The checkpoint the log starts with: the seq of the first event after it, the PCRs
	 * it vouches for, and its line as in the file (NULL, 0 and zeros: no checkpoint). */
	unsigned long c_base_seq;
	uint8_t c_base_pcr[CHIP_NR_PCRS][CHIP_DIGEST_LEN];
	char *c_checkpoint;
	size_t c_log_max;
	struct chip_cache c_cache[CHIP_CACHE_SIZE];
	unsigned c_cache_next;
};

int chip_sha384(const void *data, size_t len, uint8_t out[CHIP_DIGEST_LEN]);
/* PCR = SHA-384(PCR || d). */
void chip_extend(uint8_t pcr[CHIP_DIGEST_LEN], const uint8_t d[CHIP_DIGEST_LEN]);
/* n bytes from 2n lower-case hex characters; 0, or -1. */
int chip_unhex(const char *s, size_t n, uint8_t *out);
/* An event's log line with its newline, as chip.c writes it (malloc'd; length in *len). */
char *chip_event_line(const struct chip_event *e, size_t *len);
/* The attestation key (loaded, or made 0600 on first use). Lock held. 0, or -1. */
int chip_attest_key(struct chip *c, char *err, size_t errlen);
/* checkpoint.c. A log line that is a checkpoint (the first line of a compacted log):
 * verified with the attestation key and taken as the PCRs' starting point. 1: taken;
 * 0: not a checkpoint line; -1 with err: a checkpoint that is malformed or not signed by
 * this chip's key. Lock held (or the chip not shared yet). */
int chip_checkpoint_load(struct chip *c, const char *line, char *err, size_t errlen);
/* Replaces the oldest events (all but the newest c_log_max / 2) by a checkpoint, written
 * to a new file that is made durable and renamed over the log. Lock held. 0, or -1 (the
 * log is then unchanged). */
int chip_compact(struct chip *c, char *err, size_t errlen);
/* The checkpoint for the attestation ({"seq", "pcrs", "prefix_sha384", "signed_data",
 * "signature", "line"}), or NULL when the log has none. Lock held. */
typedef struct json_t json_t;
json_t *chip_checkpoint_json(const struct chip *c);

#endif
