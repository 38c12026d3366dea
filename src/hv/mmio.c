/* MMIO dispatch. */
#include "hv/mmio.h"

#include <string.h>

void mmio_init(struct mmio_bus *b)
{
	memset(b, 0, sizeof(*b));
	pthread_rwlock_init(&b->mb_lock, NULL);
}

static bool overlaps(const struct mmio_bus *b, int skip, uint64_t base, uint64_t len)
{
	for (int i = 0; i < MMIO_MAX; i++) {
		const struct mmio_range *r = &b->mb_ranges[i];
		if (i == skip || !r->mr_len || !len)
			continue;
		if (base < r->mr_base + r->mr_len && r->mr_base < base + len)
			return true;
	}
	return false;
}

int mmio_register(struct mmio_bus *b, uint64_t base, uint64_t len, mmio_fn fn, void *opaque)
{
	int h = -1;
	pthread_rwlock_wrlock(&b->mb_lock);
	if (base + len < base || overlaps(b, -1, base, len))
		goto out;
	for (int i = 0; i < MMIO_MAX; i++)
		if (!b->mb_ranges[i].mr_fn) {
			b->mb_ranges[i] = (struct mmio_range){base, len, fn, opaque};
			h = i;
			break;
		}
out:
	pthread_rwlock_unlock(&b->mb_lock);
	return h;
}

int mmio_move(struct mmio_bus *b, int h, uint64_t base, uint64_t len)
{
	int r = -1;
	if (h < 0 || h >= MMIO_MAX)
		return -1;
	pthread_rwlock_wrlock(&b->mb_lock);
	if (base + len >= base && !overlaps(b, h, base, len)) {
		b->mb_ranges[h].mr_base = base;
		b->mb_ranges[h].mr_len = len;
		r = 0;
	}
	pthread_rwlock_unlock(&b->mb_lock);
	return r;
}

bool mmio_access(struct mmio_bus *b, uint64_t addr, uint8_t *data, unsigned size, bool write)
{
	pthread_rwlock_rdlock(&b->mb_lock);
	for (int i = 0; i < MMIO_MAX; i++) {
		struct mmio_range *r = &b->mb_ranges[i];
		if (r->mr_len && addr >= r->mr_base && addr - r->mr_base < r->mr_len &&
		    size <= r->mr_len - (addr - r->mr_base)) {
			mmio_fn fn = r->mr_fn;
			void *op = r->mr_opaque;
			uint64_t off = addr - r->mr_base;
			pthread_rwlock_unlock(&b->mb_lock);
			fn(op, off, data, size, write);
			return true;
		}
	}
	pthread_rwlock_unlock(&b->mb_lock);
	if (!write)
		memset(data, 0xff, size);
	return false;
}
