/* The null back end: reads return zeroes, writes are dropped, nothing is in flight. */
#include "cards/bdev/bdev.h"

#include <errno.h>
#include <string.h>

#include "lib/util.h"

static int null_submit(struct bdev *b, struct bdev_io *io)
{
	(void)b;
	if (io->bi_op == BDEV_READ)
		for (unsigned i = 0; i < io->bi_niov; i++)
			memset(io->bi_iov[i].iov_base, 0, io->bi_iov[i].iov_len);
	io->bi_done(io, io->bi_op == BDEV_FLUSH ? 0 : (int)io->bi_len);
	return 0;
}

static void null_nop(struct bdev *b)
{
	(void)b;
}

static int null_pwrite(struct bdev *b, uint64_t off, const void *buf, size_t len, char *err,
		       size_t errlen)
{
	(void)b, (void)off, (void)buf, (void)len, (void)err, (void)errlen;
	return 0;
}

static int null_zero(struct bdev *b, uint64_t off, uint64_t len, bool unmap, char *err,
		     size_t errlen)
{
	(void)b, (void)off, (void)len, (void)unmap, (void)err, (void)errlen;
	return 0;
}

static int null_discard(struct bdev *b, uint64_t off, uint64_t len, char *err, size_t errlen)
{
	(void)b, (void)off, (void)len, (void)err, (void)errlen;
	return 0;
}

/* Not BDEV_OPS: one no-op serves five slots. */
static const struct bdev_ops null_ops = {
    .bo_name = "null",
    .bo_submit = null_submit,
    .bo_commit = null_nop,
    .bo_drain = null_nop,
    .bo_poll = null_nop,
    .bo_event = null_nop,
    .bo_pwrite = null_pwrite,
    .bo_zero = null_zero,
    .bo_discard = null_discard,
    .bo_close = null_nop,
};

int bdev_null_open(struct bdev *b, uint64_t size, char *err, size_t errlen)
{
	*b = (struct bdev){.bd_size = size, .bd_ops = &null_ops, .bd_event_fd = -1};
	if (size == 0 || size % 512)
		RETURN_ERR(-EINVAL, "null volume: size %llu is not a positive multiple of 512",
			   (unsigned long long)size);
	snprintf(b->bd_name, sizeof(b->bd_name), "null:%llu", (unsigned long long)size);
	return 0;
}
