/* KVM's own per-vCPU counters (the binary statistics fd, KVM_GET_STATS_FD, Linux 5.14+):
 * every VM exit, those KVM handled in the kernel included (an ioeventfd doorbell, a halt,
 * an interrupt), which nitro-hv's KVM_RUN count cannot see. `nitro-hv --stats` prints
 * them next to its own.
 *
 * The fd is opened with the vCPU (before the seccomp filter); reading it later is pread
 * only. The stats file is the kernel's: its sizes are still bounded before use.
 * Thread-safe (pread on an fd that does not change).
 */
#ifndef NITRO_HV_KVMSTATS_H
#define NITRO_HV_KVMSTATS_H

#include <stdbool.h>
#include <stdint.h>

/* The vCPU's stats fd, or -1 (an older kernel). */
int kvmstats_open(int vcpu_fd);
/* The cumulative counter called name (e.g. "exits", "halt_exits"); false when the file
 * has none. */
bool kvmstats_get(int stats_fd, const char *name, uint64_t *value);

#endif
