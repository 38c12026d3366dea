/* The `nitro` front end: subcommands and the paths they share.
 *
 * Paths: the cache is $NITRO_CACHE or ~/.cache/nitro; images live in its images/ folder;
 * sibling programs (nitro-hv) and tools/ are found next to this executable.
 */
#ifndef NITRO_CLI_H
#define NITRO_CLI_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "launch/launch.h"

int cmd_run(int argc, char **argv);
int cmd_images(int argc, char **argv);
int cmd_emuhost(int argc, char **argv);
int cmd_volume(int argc, char **argv);
/* nitro eif build|describe, nitro enclave attest|root-cert (src/cli/eif.c). */
int cmd_eif(int argc, char **argv);
int cmd_enclave(int argc, char **argv);
/* The folder of the enclave attestation chain (src/enclave/pki.h): given, else
 * $NITRO_STATE, else ~/.local/state/nitro; made (0700) when missing. */
void enclave_state_dir(const char *given, char *out, size_t n);
extern const char eif_commands_help[]; /* their lines in `nitro help` */
int cmd_snapshot(int argc, char **argv);

const char *cache_dir(void);
/* dir/name next to the nitro executable (dir = build/ for a source tree). */
void exe_sibling(const char *name, char *out, size_t len);
/* tools/NAME of the source tree this executable was built in. */
void tool_path(const char *name, char *out, size_t len);
/* Makes sure the default images exist (fetching and building them if not); 0 or 1. */
int images_ensure(void);
void image_path(const char *name, char *out, size_t len);

/* True when /dev/kvm is usable for stock kernels: openable, and the CPU has VMX or SVM
 * (a paravirtual /dev/kvm such as kvm-pvm runs only guests built for it). why gets the
 * reason when false. */
bool kvm_usable(char *why, size_t len);

/* One emulated CPU by default: QEMU's multi-threaded TCG races on cross-modifying code
 * (the emulated host's kernel died of a stale int3 in text_poke_bp with two), and
 * nested guests with several vCPUs run fine on one. */
#define EMUHOST_CPUS 1

#define EMUHOST_MAX_RW 8

/* Runs argv inside the emulated host with stdio passed through; returns its status.
 * mem_mib/cpus size the emulated server; rw_extra names folders (besides the cache and
 * the working folder) that must be writable in there. */
int emuhost_exec(char **argv, unsigned mem_mib, unsigned cpus, const char *const *rw_extra,
		 unsigned nrw_extra);

/* nitro run --volume VOLUME[,iops=N][,throughput=MiB][,gp2][,header=PATH][,readonly], VOLUME
 * a volume file, nbd://HOST[:PORT]/EXPORT, nbd+unix:///EXPORT?socket=PATH or null:SIZE:
 * fills v. 0, or 2 (bad syntax) / 1 (unusable file) with err set. */
int volume_parse(const char *spec, struct launch_volume *v, char *err, size_t errlen);
/* nitro run --instance-store SIZE[,dir=DIR]: an instance-storage card in v. 0, or 2 with
 * err set. */
int instance_store_parse(const char *spec, struct launch_volume *v, char *err, size_t errlen);

/* nitro run's way of starting a plan (src/launch): each card a child of nitro run (killed
 * with it), stdin /dev/null, its log on nitro run's stderr; the next starts once its
 * socket is there (up to 5 s). Dies with the card's name when one does not start, after
 * stopping those already started. pids[] gets one pid per card (0: none). */
void cards_start(const struct launch_plan *p, const struct launch_env *e,
		 pid_t pids[LAUNCH_MAX_CARDS]);
/* SIGTERM to every card, waits for them, removes their sockets and the run folder. */
/* Starts card idx again (it died); false when it did not come up. */
bool cards_respawn(const struct launch_plan *p, unsigned idx, pid_t pids[LAUNCH_MAX_CARDS]);
void cards_stop(const struct launch_plan *p, const struct launch_env *e,
		pid_t pids[LAUNCH_MAX_CARDS]);
/* In a child: puts the plan's kept fds of p in place (nitro run's stdin, stdout, stderr
 * for the console and log roles, /dev/null for 0..2 otherwise). */
void proc_stdio(const struct launch_proc *p);

/* nitro run --tpm [--tpm-state DIR] (src/cli/tpm.c). */
struct run_tpm {
	bool rt_on;
	const char *rt_state_arg; /* --tpm-state, or NULL */
	bool rt_temp;		  /* the state is in the run folder: removed at the end */
};
/* Consumes --tpm or --tpm-state DIR at argv[*i]; false for any other argument. */
bool tpm_arg(int argc, char **argv, int *i, struct run_tpm *t);
/* The security chip's EK CA folder for nitro run: $NITRO_STATE/ek-ca. */
void tpm_ek_ca_dir(char *out, size_t len);
/* Makes the --tpm-state folder when missing; dies (1) when it is not a folder. */
void tpm_check_state(const struct run_tpm *t);
/* The card's state key for the state folder dir (made from its instance id). */
void tpm_state_key(const char *dir, uint8_t key[32]);
/* Endorses a new TPM (EK, certificate at NV 0x01c0000a) through the card at socket,
 * before nitro-hv connects; nothing when it is endorsed already. Dies on failure. */
void tpm_provision(const char *socket, const char *state);
/* Removes a state folder the run made. */
void tpm_state_remove(const char *dir);
/* Kernel and initrd (NULL: none), each read once: their SHA-384 and SHA-256 into s (the
 * launcher's measurement nitro-hv checks and extends into the TPM), cached by the file's
 * identity in CACHE/digests. Dies on a read error. */
void tpm_boot_digests(const char *kernel, const char *initrd, struct launch_spec *s);

#endif
