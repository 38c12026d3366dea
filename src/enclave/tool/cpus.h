/* The enclave CPU pool (/sys/module/nitro_enclaves/parameters/ne_cpus): CPU lists as the
 * kernel writes them ("1,3-5") and the choice of whole cores for a new pool.
 *
 * Contract: pure, thread-safe; lists are hostile text (sysfs of a guest kernel, or the
 * user's) and are bounded by NET_CPU_MAX. */
#ifndef NITRO_ENCLAVE_TOOL_CPUS_H
#define NITRO_ENCLAVE_TOOL_CPUS_H

#include <stdbool.h>
#include <stddef.h>

#define NET_CPU_MAX 1024

/* Parses a CPU list ("", "2", "1,3-5\n") into set[NET_CPU_MAX]. Number of CPUs, or -1 on
 * malformed text or a CPU >= NET_CPU_MAX. */
int net_cpulist_parse(const char *s, bool set[NET_CPU_MAX]);

/* Writes the set as a list ("1,3-5"); the length, or -1 if it does not fit. */
int net_cpulist_format(const bool set[NET_CPU_MAX], char *out, size_t len);

/* Chooses a pool for `want` vCPUs: whole cores (core_of[cpu] is the core id of each of
 * ncpus online CPUs, -1 for an offline CPU), never CPU 0's core, lowest cores first, until
 * at least `want` CPUs. Fills pool; the number of CPUs chosen, or -1 when the eligible
 * cores hold fewer than `want` (*eligible then says how many they hold). */
int net_pool_choose(const int *core_of, int ncpus, unsigned want, bool pool[NET_CPU_MAX],
		    unsigned *eligible);

#endif
