/* The enclave glue of a parent nitro-hv: what is behind the NE device's struct ne_ops
 * (src/hv/ne_cmd.h). START checks the slot's ranges (enclave_mem.h), takes them out of the
 * parent VM's KVM memory slots (the parent keeps running: its vCPUs are held out of
 * KVM_RUN only while the slots change; a donated range then reads as zeros to the parent,
 * writes to it are dropped), translates them to memfd offsets and asks the spawner
 * (enclave_spawn.h) for the enclave, waiting for its answer (the EIF accepted, or a reply
 * code). STOP, and an enclave that ends on its own, scrub the ranges (zeroed through
 * nitro-hv's mapping; the pages stay the parent's) and give them back to the parent;
 * the latter is reported with the exited callback (ne_enclave_exited).
 *
 * Isolation from the parent while an enclave runs (docs/enclaves.md): besides the KVM
 * slots, the ranges are holes in the VM's guest memory (boot/memory.h: gpa_ptr refuses
 * them), every card of the parent registered with enclave_glue_add_card drops them from
 * its memory table (vhost-user REM_MEM_REG, nvme_wire NVW_MEM_REM) and has answered so
 * before START goes on (a card that refuses fails START, everything rolled back), and
 * nitro-hv's own mapping of them is PROT_NONE anonymous memory. STOP undoes it in the
 * opposite order, after the scrub.
 *
 * Threads: start and stop run on the caller's thread (a vCPU's MMIO exit) and block until
 * the spawner answers; a reader thread takes the spawner's messages and never blocks on
 * the NE device: an enclave that ended on its own is released by the reader and reported
 * by a notifier thread (the exited callback runs there, without the glue's lock), so a
 * START or STOP waiting under the device's lock still gets its reply while another
 * enclave ends. Calls are serialised by the glue's lock, which start and stop drop while
 * they wait (the slots of several enclaves can be in flight: each has its own entry).
 */
#ifndef NITRO_HV_ENCLAVE_H
#define NITRO_HV_ENCLAVE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hv/enclave_mem.h"
#include "hv/ne_cmd.h"
#include "hv/vm.h"

#define ENCLAVE_MAX 16
#define ENCLAVE_MAX_SLOTS 1024 /* KVM memory slots the parent may need */
#define ENCLAVE_FIRST_CID 16
#define ENCLAVE_MAX_CARDS 64

/* A card of the parent: sync brings its memory table to the VM's memory without the holes
 * and returns once the card answered (0), or -1 with err. */
struct enclave_card {
	int (*sync)(void *dev, char *err, size_t errlen);
	void *dev;
};

struct enclave_run {
	bool used, replied, exited, stopping;
	bool withheld; /* nitro-hv's mapping of the holes is PROT_NONE */
	bool held;     /* the parent's vCPUs vcpu[0..nvcpus) are held out of KVM_RUN */
	unsigned nvcpus;
	uint32_t vcpu[NE_MAX_VCPUS]; /* the slot's NE vCPU ids = the parent's vCPU indexes */
	int status;		     /* the spawner's reply */
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
	struct enclave_card cards[ENCLAVE_MAX_CARDS];
	unsigned ncards;
	struct mem_holes *holes; /* published in vm->vm_mem */
	/* enclaves that ended on their own, not yet reported through exited (the notifier
	 * thread reports them, so that the reader never waits for the NE device) */
	pthread_t notifier;
	pthread_cond_t gone_cond;
	uint64_t *gone;
	unsigned ngone, gone_cap;
};

/* Sets up the glue for a created VM (before its sandbox): the zero mapping, the reader
 * thread on the spawner's socket. 0, or -1 with err. */
int enclave_glue_init(struct enclave_glue *g, struct vm *vm, int spawner_sock,
		      void (*exited)(struct ne_dev *, uint64_t), struct ne_dev *dev, char *err,
		      size_t errlen);
/* Registers a card of the parent (before the NE device can start an enclave): its table
 * follows every change of the donated ranges. 0, or -1 when there are too many. */
int enclave_glue_add_card(struct enclave_glue *g, int (*sync)(void *, char *, size_t), void *dev);
/* The ops the NE device calls, with g as ctx. */
struct ne_ops enclave_glue_ops(struct enclave_glue *g);
int enclave_glue_start(void *ctx, struct ne_slot *s);
void enclave_glue_stop(void *ctx, struct ne_slot *s);

#endif
