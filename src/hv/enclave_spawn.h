/* The enclave spawner (ENCLAVE-DESIGN.md): a child of the parent nitro-hv, forked at
 * start-up (--enclaves) before anything else is set up and before the parent's seccomp
 * list, that starts each enclave's nitro-hv on request and reports how it ended.
 *
 * It keeps an fd of the nitro-hv executable (config exe_fd: the launcher's measured fd,
 * nitro-hv --enclave-exe-fd; else /proc/self/exe, opened once at start-up) and
 * fexecve's it in enclave mode: --enclave --enclave-mem 3:OFF:SIZE,... (the parent's memfd,
 * sent with each START, at fd 3), --enclave-ready-fd 4, the slot's cid, uid, vCPU count and
 * debug flag, the parent's instance id, and --vhost-user vsock,fd=N / nsm,fd=N: the
 * connections to the enclave cards' sockets, which the spawner's child makes and
 * identifies itself before the exec (enclave_card_open: the ENW_HELLO of the slot's cid,
 * slot uid, debug flag, module id and PCR4, src/lib/enclave_wire.h), so the enclave's
 * nitro-hv, whose seccomp list ("hv-enclave") has no socket() or connect(), never chooses
 * its identity or opens another connection. A card that refuses (its CID held) or does
 * not answer ends the child with ES_EXIT_CARD: START fails with -EIO. The enclave's stdout (its
 * console, debug mode only) is CONSOLE_DIR/enclave-UID.log (nitro-hv --console-max 131072: at least
 * the newest 64 KiB, at most 128 KiB; kept after it exits, replaced when the slot uid comes again),
 * or /dev/null; stderr is the parent's.
 *
 * Protocol on a SOCK_SEQPACKET socketpair, one struct es_msg per packet:
 *   parent -> spawner  ES_START {slot_uid, cid, flags, nvcpus, nranges, range[]} + memfd
 *                      ES_STOP  {slot_uid}: SIGKILL that enclave
 *   spawner -> parent  ES_REPLY {slot_uid, status}: 0 once the enclave accepted its EIF and
 *                      runs, else a negative NE reply code (enclave_exit_rc)
 *                      ES_EXITED {slot_uid, status = wait status} when a started enclave
 *                      ended (stopped or on its own)
 * The spawner trusts the parent (its own parent process); it checks sizes only. It ends,
 * killing every enclave, when the parent's end of the socket closes; every enclave has
 * PR_SET_PDEATHSIG SIGKILL towards the spawner, and the spawner towards the parent.
 * Single-threaded.
 */
#ifndef NITRO_HV_ENCLAVE_SPAWN_H
#define NITRO_HV_ENCLAVE_SPAWN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/enclave_wire.h"

#define ES_MAX_RANGES 256
#define ES_MAX_ENCLAVES 64

enum { ES_START = 1, ES_STOP = 2, ES_REPLY = 3, ES_EXITED = 4 };
#define ES_FLAG_DEBUG 1u

struct es_msg {
	uint32_t type;
	uint32_t nranges;
	uint64_t slot_uid, cid, flags;
	uint32_t nvcpus;
	int32_t status;
	struct {
		uint64_t off, size;
	} range[ES_MAX_RANGES];
};

struct enclave_spawner_config {
	const char *vsock, *nsm; /* the enclave cards' sockets, or NULL */
	const char *parent_id;	 /* the parent's instance id, or NULL */
	const char *cache_dir;	 /* host-decompressed kernels, or NULL */
	const char *console_dir; /* debug consoles, or NULL */
	int exe_fd; /* >= 3: the nitro-hv executable (taken: closed in the parent), else the
		       spawner opens /proc/self/exe */
};

/* Forks the spawner. Returns the parent's end of the socketpair (close-on-exec), *pid the
 * spawner's; -1 with err. Call before other threads exist. */
int enclave_spawner_start(const struct enclave_spawner_config *c, pid_t *pid, char *err,
			  size_t errlen);

/* The spawner's child could not open or identify a card connection (1 = error as well). */
#define ES_EXIT_CARD 1
#define ES_CARD_TIMEOUT_MS 5000

/* One enclave-side card connection: connects to the card's socket at path, sends the
 * identity id (ENW_HELLO) and waits for the card's answer (ES_CARD_TIMEOUT_MS at most).
 * The connected fd (close-on-exec), ready to be handed to the enclave's nitro-hv, or -1
 * with err (refused: the card's errno value in the text). Blocking; any thread. */
int enclave_card_open(const char *path, const struct enw_hello *id, char *err, size_t errlen);

/* An enclave nitro-hv's wait status, before it accepted its EIF, as a negative NE reply
 * code: -ENOEXEC for a refused EIF (exit 5), -EINVAL for refused ranges (6), -EIO else. */
int enclave_exit_rc(int wstatus);

#endif
