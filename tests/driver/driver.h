/* vu-blk-driver: the subcommands and the options they share.
 *
 * cmd_check() prints one "ok"/"FAIL"/"skip" line per conformance check and returns the
 * exit status (0 when nothing failed). cmd_bench() prints one key=value line and returns
 * the exit status. cmd_hostile() runs the malformed-chain cases of hostile.c, one line each.
 * check_pattern() is the data the check writes: byte j of sector s is
 * (s * 37 + j + 0x5a) mod 256; tests/driver/test_driver_qsd.py recomputes it.
 */
#ifndef NITRO_TESTS_DRIVER_DRIVER_H
#define NITRO_TESTS_DRIVER_DRIVER_H

#include <stdbool.h>
#include <stdint.h>

struct drv_opts {
	const char *socket;
	unsigned queues;
	uint64_t mem; /* bytes */
	/* check */
	bool no_verify; /* statuses only: for back ends that drop data (null-co) */
	/* bench */
	bool randwrite;
	bool fill;	      /* write every block once, in order (randwrite set too), then stop */
	bool zeroes, discard; /* WRITE_ZEROES / DISCARD of one bs range (randwrite set too) */
	uint32_t bs;
	unsigned qd; /* per queue */
	unsigned seconds;
	bool poll; /* busy-poll the used rings instead of waiting for the call eventfd */
	/* write-flush, verify */
	uint64_t sectors;
	uint64_t first; /* --first: the range starts at this sector (default 0) */
	bool tag;	/* --tag: each sector's number in its first 8 bytes */
	bool expect_zero;
	bool no_flush; /* write-flush without the FLUSH: the control of a crash test */
};

int cmd_check(const struct drv_opts *o);
int cmd_bench(const struct drv_opts *o);
int cmd_hostile(const struct drv_opts *o);
int cmd_write_flush(const struct drv_opts *o);
int cmd_verify(const struct drv_opts *o);
/* scatter.c: data split across descriptors mid-sector, written and read back. */
int cmd_scatter(const struct drv_opts *o);
/* order.c: used entries in submission order (writes, a flush, reads in one batch). */
int cmd_order(const struct drv_opts *o);
/* memholes.c: a range taken out of the card's table (an enclave's) and given back. */
int cmd_memholes(const struct drv_opts *o);
void check_pattern(uint8_t *buf, uint64_t sector, uint32_t nsectors);

#endif
