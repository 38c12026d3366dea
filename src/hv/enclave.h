/* The enclave glue of a parent nitro-hv: what is behind the NE device's struct ne_ops
 * (src/hv/ne_cmd.h). START checks the slot's ranges (enclave_mem.h), takes them out of the
 * parent VM's KVM memory slots (the parent keeps running: its vCPUs are held out of
 * KVM_RUN only while the slots change; a donated range then reads as zeros to the parent,
 * writes to it are dropped), translates them to memfd offsets and asks the spawner
 * (enclave_spawn.h) for the enclave, waiting for its answer (the EIF accepted, or a reply
 * code). STOP, and an enclave that ends on its own, scrub the ranges (punched out of the
 * memfd: the pages are freed and read back as zeros) and give them back to the parent;
 * the latter is reported with the exited callback (ne_enclave_exited).
 *
 * Known gap: the parent's cards (and nitro-hv's own mapping) still map the whole memfd, so
 * a compromised card of the parent could read a running enclave's pages (docs/enclaves.md).
 *
 * Threads: start and stop run on the caller's thread (a vCPU's MMIO exit) and block until
 * the spawner answers; a reader thread takes the spawner's messages. Calls are serialised
 * by the glue's lock; the exited callback runs without it.
 */
#ifndef NITRO_HV_ENCLAVE_H
#define NITRO_HV_ENCLAVE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "hv/enclave_mem.h"
#include "hv/ne_cmd.h"
#include "hv/vm.h"

#define ENCLAVE_MAX 16
#define ENCLAVE_MAX_SLOTS 1024 /* KVM memory slots the parent may need */
#define ENCLAVE_FIRST_CID 16

struct enclave_run {
	bool used, replied, exited, stopping;
	int status; /* the spawner's reply */
	uint64_t uid, cid;
	unsigned nholes;
	struct enclave_hole holes[NE_MAX_REGIONS];
};

struct enclave_glue {
	struct vm *vm;
	int sock; /* to the spawner */
	pthread_t reader;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	uint8_t *zero;	    /* read-only zero mapping the size of the parent's RAM */
	unsigned nslots;    /* KVM slots in use (ids enclave_mem_slot_id(0..nslots-1)) */
	unsigned max_slots; /* what KVM allows the plan (KVM_CAP_NR_MEMSLOTS, ENCLAVE_MAX_SLOTS) */
	struct enclave_run run[ENCLAVE_MAX];
	void (*exited)(struct ne_dev *d, uint64_t slot_uid);
	struct ne_dev *dev;
};

/* Sets up the glue for a created VM (before its sandbox): the zero mapping, the reader
 * thread on the spawner's socket. 0, or -1 with err. */
int enclave_glue_init(struct enclave_glue *g, struct vm *vm, int spawner_sock,
		      void (*exited)(struct ne_dev *, uint64_t), struct ne_dev *dev, char *err,
		      size_t errlen);
/* The ops the NE device calls, with g as ctx. */
struct ne_ops enclave_glue_ops(struct enclave_glue *g);
int enclave_glue_start(void *ctx, struct ne_slot *s);
void enclave_glue_stop(void *ctx, struct ne_slot *s);

#endif
