/* MMIO bus: guest-physical ranges served by the hypervisor (PCI ECAM, BARs). An access
 * to an address no one owns reads as all ones and drops writes. Ranges may be added and
 * moved while vCPUs run (a guest reprogramming a BAR): lookups take a read lock.
 */
#ifndef NITRO_HV_MMIO_H
#define NITRO_HV_MMIO_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

typedef void (*mmio_fn)(void *opaque, uint64_t offset, uint8_t *data, unsigned size, bool write);

#define MMIO_MAX 64

struct mmio_range {
	uint64_t mr_base;
	uint64_t mr_len; /* 0: unused slot */
	mmio_fn mr_fn;
	void *mr_opaque;
};

struct mmio_bus {
	pthread_rwlock_t mb_lock;
	struct mmio_range mb_ranges[MMIO_MAX];
};

void mmio_init(struct mmio_bus *b);
/* Returns a handle (>= 0) for mmio_move, or -1 when full or overlapping. */
int mmio_register(struct mmio_bus *b, uint64_t base, uint64_t len, mmio_fn fn, void *opaque);
/* Moves range h to base (len 0 disables it); -1 if it would overlap another. */
int mmio_move(struct mmio_bus *b, int h, uint64_t base, uint64_t len);
/* Dispatches one access; false when no range owns the address. */
bool mmio_access(struct mmio_bus *b, uint64_t addr, uint8_t *data, unsigned size, bool write);

#endif
