/* The `nitro` front end: subcommands and the paths they share.
 *
 * Paths: the cache is $NITRO_CACHE or ~/.cache/nitro; images live in its images/ folder;
 * sibling programs (nitro-hv) and tools/ are found next to this executable.
 */
#ifndef NITRO_CLI_H
#define NITRO_CLI_H

#include <stdbool.h>
#include <limits.h>
#include <stddef.h>
#include <sys/types.h>

int cmd_run(int argc, char **argv);
int cmd_images(int argc, char **argv);
int cmd_emuhost(int argc, char **argv);
int cmd_volume(int argc, char **argv);

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
 * a volume file, nbd://HOST[:PORT]/EXPORT, nbd+unix:///EXPORT?socket=PATH or null:SIZE */
#define RUN_MAX_VOLUMES 8
struct run_volume {
	char rv_spec[PATH_MAX];
	const char *rv_path; /* inside rv_spec */
	char rv_iops[24], rv_tput[24];
	bool rv_readonly;
	bool rv_gp2;
	bool rv_file;	      /* a local volume file (not NBD or null) */
	const char *rv_header; /* inside rv_spec, or NULL */
	char rv_socket[PATH_MAX];
	int rv_pid;
};
/* 0, or 2 (bad syntax) / 1 (unusable file) with err set. */
int volume_parse(const char *spec, struct run_volume *v, char *err, size_t errlen);
/* Starts a card (exe, argv; killed with nitro run) and waits up to 5 s for its socket;
 * *pid is set even when it fails (the card ended or never listened) so it can be stopped. */
bool card_spawn(const char *exe, char *const argv[], const char *socket, pid_t *pid);
/* Starts one card per volume, each on a socket in a new folder (dir); dies on failure. */
int cards_start(struct run_volume *v, unsigned n, char *dir, size_t dirlen);
void cards_stop(struct run_volume *v, unsigned n, const char *dir);

#endif
