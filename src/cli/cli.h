/* The `nitro` front end: subcommands and the paths they share.
 *
 * Paths: the cache is $NITRO_CACHE or ~/.cache/nitro; images live in its images/ folder;
 * sibling programs (nitro-hv) and tools/ are found next to this executable.
 */
#ifndef NITRO_CLI_H
#define NITRO_CLI_H

#include <stdbool.h>
#include <stddef.h>

int cmd_run(int argc, char **argv);
int cmd_images(int argc, char **argv);
int cmd_emuhost(int argc, char **argv);

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

/* Runs argv inside the emulated host with stdio passed through; returns its status.
 * mem_mib/cpus size the emulated server. */
int emuhost_exec(char **argv, unsigned mem_mib, unsigned cpus);

#endif
