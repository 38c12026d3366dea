/* What the fuzz targets share: an invariant check that aborts (so libFuzzer records the
 * input) and one 64 MiB guest memory made on first use. */
#ifndef NITRO_FUZZ_H
#define NITRO_FUZZ_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "boot/memory.h"

#define MiB (1ull << 20)

#define CHECK(c)                                                                                   \
	do {                                                                                       \
		if (!(c)) {                                                                        \
			fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #c);  \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

static inline struct guest_mem *fuzz_guest(void)
{
	static struct guest_mem m;
	static bool made;

	if (!made) {
		if (mem_create(&m, 64 * MiB) != 0)
			abort();
		made = true;
	}
	return &m;
}

#endif
