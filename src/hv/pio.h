/* Port I/O bus: the few legacy ports a guest touches (UART, i8042, ACPI registers,
 * pvpanic). A device registers [base, base + len) with one handler; reads of ports no
 * device owns return all ones and writes to them are dropped, as on real hardware.
 */
#ifndef NITRO_HV_PIO_H
#define NITRO_HV_PIO_H

#include <stdbool.h>
#include <stdint.h>

typedef void (*pio_fn)(void *opaque, uint16_t port, uint8_t *data, unsigned size, bool write);

struct pio_dev {
	uint16_t pd_base;
	uint16_t pd_len;
	pio_fn pd_fn;
	void *pd_opaque;
};

#define PIO_MAX_DEVS 16

struct pio_bus {
	unsigned pb_n;
	struct pio_dev pb_devs[PIO_MAX_DEVS];
};

int pio_register(struct pio_bus *b, uint16_t base, uint16_t len, pio_fn fn, void *opaque);
/* Handles one access of size 1, 2 or 4 bytes; data is in/out. */
void pio_access(const struct pio_bus *b, uint16_t port, uint8_t *data, unsigned size,
		bool write);

#endif
