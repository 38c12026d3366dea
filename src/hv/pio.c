/* Port I/O dispatch. */
#include "hv/pio.h"

#include <string.h>

int pio_register(struct pio_bus *b, uint16_t base, uint16_t len, pio_fn fn, void *opaque)
{
	if (b->pb_n >= PIO_MAX_DEVS || len == 0 || (uint32_t)base + len > 0x10000)
		return -1;
	b->pb_devs[b->pb_n++] = (struct pio_dev){base, len, fn, opaque};
	return 0;
}

void pio_access(const struct pio_bus *b, uint16_t port, uint8_t *data, unsigned size,
		bool write)
{
	for (unsigned i = 0; i < b->pb_n; i++) {
		const struct pio_dev *d = &b->pb_devs[i];
		if (port >= d->pd_base && port - d->pd_base < d->pd_len) {
			d->pd_fn(d->pd_opaque, port, data, size, write);
			return;
		}
	}
	if (!write)
		memset(data, 0xff, size);
}
