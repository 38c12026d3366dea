/* NitroTPM in nitro-hv: the CRB interface (crb.c) in front of a TPM card process
 * (nitro-card-tpm, protocol in src/tpm/proto.h, docs/tpm.md), and measured boot.
 *
 * tpm_open() creates the shared command/response page (a sealed memfd, mapped into the
 * guest as a KVM memory slot at TPM_CRB_BUF), connects to the card's socket, sends HELLO
 * with the memfd, powers the TPM on (INIT, TPM2_Startup(CLEAR)) and reads which PCR banks
 * are allocated. tpm_measure() extends one PCR in every allocated bank with the digest of
 * a blob and appends the matching EV_IPL event to the log; it runs before the first vCPU.
 * tpm_start() registers the control registers on the MMIO bus and starts the thread that
 * carries guest commands to the card.
 *
 * Threads: vCPU threads call the MMIO handler (under t->lock); the TPM thread talks to
 * the card. A START sends one CMD; the vCPU waits up to TPM_SYNC_WAIT_US for the reply
 * (a quick command is then done before the guest's first poll) and otherwise returns;
 * the guest polls START until the reply clears it. If the
 * card dies, the command in flight completes with TPM_RC_FAILURE; the thread reconnects
 * (the supervisor restarts the card on the same socket), and the new card resumes the
 * TPM's volatile state as of the last completed command (or, when it saved none, the TPM
 * is powered on again and the boot measurements replayed), then sends any command that
 * waited; a command waits at most TPM_RECONNECT_MS for a card before it fails. The guest
 * never hangs.
 */
#ifndef NITRO_HV_TPM_H
#define NITRO_HV_TPM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hv/crb.h"
#include "hv/vm.h"
#include "tpm/eventlog.h"
#include "tpm/tpm2.h"

#define TPM_RECONNECT_MS 30000
#define TPM_SYNC_WAIT_US 2000 /* a START waits this long in the vCPU for a quick reply */
#define TPM_MAX_MEASURE 4
#define TPM_KVM_SLOT 8 /* after the RAM slots */

struct tpm_measurement {
	uint32_t tm_pcr;
	struct tpm2_digests tm_digests;
};

struct tpm_dev {
	struct vm *t_vm;
	char t_path[108];
	pthread_mutex_t t_lock; /* t_crb, t_pending, t_inflight */
	pthread_cond_t t_done;	/* a command completed */
	struct crb t_crb;
	bool t_pending;	 /* a START the thread has not sent yet */
	bool t_inflight; /* a CMD sent, reply outstanding */
	int t_memfd;
	uint8_t *t_buf; /* the shared page */
	int t_sock;	/* -1: no card */
	int t_kick;	/* eventfd: the MMIO handler wakes the thread */
	pthread_t t_thread;
	unsigned t_nalgs;
	uint16_t t_algs[TPM2_MAX_BANKS];
	unsigned t_nmeas;
	struct tpm_measurement t_meas[TPM_MAX_MEASURE];
	atomic_ulong t_commands, t_failed, t_reconnects, t_resumed;
};

/* 0, or -1 with err. */
int tpm_open(struct tpm_dev *t, struct vm *vm, const char *socket, char *err, size_t errlen);
/* known: digests of the blob the caller has already (the launcher's, in the pass that
 * measured the file), or NULL; a bank known lacks is hashed here. */
int tpm_measure(struct tpm_dev *t, struct tpm_log *log, uint32_t pcr, const void *data, size_t len,
		const struct tpm2_digests *known, const char *what, char *err, size_t errlen);
/* After the measurements: the platform hierarchy is disabled (as firmware does before the
 * OS), so the guest cannot use platform authority (PCR allocation, clearing, the
 * platform's NV indices). Done again after every reconnect. */
int tpm_seal_platform(struct tpm_dev *t, char *err, size_t errlen);
int tpm_start(struct tpm_dev *t, char *err, size_t errlen);

#endif
