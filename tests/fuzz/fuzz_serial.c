/* libFuzzer target: the 16550A driven by the input. Byte 0 says how many of the following
 * bytes are typed into the input pipe (whose write end is then closed); the rest is a
 * sequence of (op, flags, value) triples: op & 7 is the register, op & 0x80 asks for a
 * serial_poll and op & 0x40 for a serial_flush first; flags & 1 writes value, otherwise
 * reads, (flags >> 1) & 3 picks an access size of 1, 2, 4 or 1. Output goes to /dev/null.
 * After every step the receive FIFO holds at most 16 bytes, the output buffer is below its
 * size, the interrupt line matches the registers and what set_irq was last told, and the
 * registers read back within their defined bits.
 */
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hv/serial.h"

#include "fuzz.h"

struct irq {
	int level;
	unsigned calls;
};

static void set_irq(void *opaque, int level)
{
	struct irq *q = opaque;

	CHECK(level == 0 || level == 1);
	CHECK(q->calls == 0 || level != q->level); /* only on a change */
	q->level = level;
	q->calls++;
}

static int devnull(void)
{
	static int fd = -1;

	if (fd < 0)
		fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		abort();
	return fd;
}

static void check_state(const struct serial *s, const struct irq *q)
{
	CHECK(s->se_rx_len <= SERIAL_FIFO);
	CHECK(s->se_rx_head < SERIAL_FIFO);
	CHECK(s->se_out_len < SERIAL_OUTBUF);
	CHECK((s->se_ier & 0xf0) == 0);
	CHECK((s->se_mcr & 0xe0) == 0);
	bool want = ((s->se_ier & 0x01) && s->se_rx_len) || ((s->se_ier & 0x02) && s->se_thri);
	if (!(s->se_mcr & 0x08))
		want = false;
	CHECK(s->se_irq_level == want);
	CHECK((q->calls ? q->level : 0) == (int)want);
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	struct serial s;
	struct irq q = {0, 0};
	int in[2];

	if (n == 0)
		return 0;
	size_t typed = d[0];
	if (typed > n - 1)
		typed = n - 1;
	if (pipe(in) < 0)
		abort();
	if (typed && write(in[1], d + 1, typed) != (ssize_t)typed)
		abort();
	close(in[1]);
	serial_init(&s, in[0], devnull(), devnull(), set_irq, &q);
	check_state(&s, &q);

	for (size_t i = 1 + typed; i + 3 <= n; i += 3) {
		uint8_t op = d[i], flags = d[i + 1], v = d[i + 2];
		unsigned reg = op & 7;
		unsigned size = (unsigned[]){1, 2, 4, 1}[(flags >> 1) & 3];
		uint8_t data[4] = {v, v, v, v};

		/* serial_poll sleeps when it cannot read: only call it when it can. */
		if ((op & 0x80) && !s.se_in_eof && s.se_rx_len < SERIAL_FIFO) {
			unsigned before = s.se_rx_len;
			serial_poll(&s);
			CHECK(s.se_rx_len >= before);
			CHECK(s.se_out_len == 0);
		}
		if (op & 0x40) {
			serial_flush(&s);
			CHECK(s.se_out_len == 0);
		}
		check_state(&s, &q);

		bool dlab = s.se_lcr & 0x80;
		unsigned rx = s.se_rx_len;
		serial_pio(&s, (uint16_t)(0x3f8 + reg), data, size, flags & 1);
		check_state(&s, &q);
		if (flags & 1)
			continue;
		for (unsigned k = 1; k < size; k++)
			CHECK(data[k] == 0xff);
		switch (reg) {
		case 0:
			if (!dlab)
				CHECK(s.se_rx_len == (rx ? rx - 1 : 0));
			break;
		case 2:
			CHECK((data[0] & 0x0f) == 0x01 || (data[0] & 0x0f) == 0x02 ||
			      (data[0] & 0x0f) == 0x04);
			CHECK((data[0] & 0x30) == 0);
			break;
		case 4:
			CHECK((data[0] & 0xe0) == 0);
			break;
		case 5:
			CHECK((data[0] & 0x60) == 0x60);
			CHECK((data[0] & 0x01) == (rx ? 1 : 0));
			break;
		default:
			break;
		}
	}
	close(in[0]);
	pthread_mutex_destroy(&s.se_lock);
	return 0;
}
