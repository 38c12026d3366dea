/* Unit tests for the 16550A UART (src/hv/serial.c) driven through serial_pio with pipes as
 * its input, output and log: line-buffered output, loopback and the modem status bits the
 * 8250 driver's autoconfig checks, FIFO and interrupt identification, the interrupt line,
 * input through serial_poll with its 16-byte FIFO limit, the divisor latch, and that
 * register reads never block.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <stdio.h>
#include <sys/stat.h>

#include "hv/serial.h"

#define BASE 0x3f8
#define RBR 0 /* THR on write, DLL with DLAB */
#define IER 1 /* DLM with DLAB */
#define IIR 2 /* FCR on write */
#define LCR 3
#define MCR 4
#define LSR 5
#define MSR 6
#define SCR 7

struct irq_log {
	int level;
	unsigned calls;
};

struct fixture {
	struct serial s;
	struct irq_log irq;
	int in[2], out[2], log[2];
};

static void set_irq(void *opaque, int level)
{
	struct irq_log *l = opaque;

	l->level = level;
	l->calls++;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f || pipe(f->in) < 0 || pipe(f->out) < 0 || pipe(f->log) < 0)
		return -1;
	/* The test reads output without blocking to see that nothing is there yet. */
	if (fcntl(f->out[0], F_SETFL, O_NONBLOCK) < 0 || fcntl(f->log[0], F_SETFL, O_NONBLOCK) < 0)
		return -1;
	serial_init(&f->s, f->in[0], f->out[1], f->log[1], set_irq, &f->irq);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	for (int i = 0; i < 2; i++) {
		if (f->in[i] >= 0)
			close(f->in[i]);
		close(f->out[i]);
		close(f->log[i]);
	}
	pthread_mutex_destroy(&f->s.se_lock);
	free(f);
	return 0;
}

static void wr(struct fixture *f, unsigned reg, uint8_t v)
{
	serial_pio(&f->s, (uint16_t)(BASE + reg), &v, 1, true);
}

static uint8_t rd(struct fixture *f, unsigned reg)
{
	uint8_t v = 0x5a;

	serial_pio(&f->s, (uint16_t)(BASE + reg), &v, 1, false);
	return v;
}

/* Reads what is in a non-blocking pipe (at most cap - 1 bytes), NUL-terminated. */
static size_t drain(int fd, char *buf, size_t cap)
{
	ssize_t n = read(fd, buf, cap - 1);

	if (n < 0) {
		assert_int_equal(errno, EAGAIN);
		n = 0;
	}
	buf[n] = '\0';
	return (size_t)n;
}

static int pending(int fd)
{
	int n = -1;

	assert_int_equal(ioctl(fd, FIONREAD, &n), 0);
	return n;
}

/* A guest writing far more than the cap to a console file (issue 10 item 6): the file
 * never passes the cap and ends with the newest output. Fails without serial_set_cap (the
 * file grows to all 300 KiB). */
static void test_console_file_capped(void **state)
{
	struct fixture *f = *state;
	char path[] = "/tmp/nitro-serial-cap-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	assert_int_equal(fcntl(fd, F_SETFL, O_APPEND), 0); /* as nitrod opens console.log */
	/* Nobody reads the terminal pipe here: it drops output rather than block. */
	assert_int_equal(fcntl(f->out[1], F_SETFL, O_NONBLOCK), 0);
	f->s.se_log_fd = fd;
	const uint64_t cap = 16384;
	assert_int_equal(serial_set_cap(&f->s, cap), 0);
	char line[64];
	for (int i = 0; i < 5000; i++) {
		int n =
		    snprintf(line, sizeof(line), "line %05d of the guest console ..........\n", i);
		for (int k = 0; k < n; k++)
			wr(f, RBR, (uint8_t)line[k]);
		struct stat st;
		assert_int_equal(fstat(fd, &st), 0);
		assert_true((uint64_t)st.st_size <= cap);
	}
	serial_flush(&f->s);
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	assert_true((uint64_t)st.st_size <= cap && (uint64_t)st.st_size >= cap / 2);
	char *buf = calloc(1, (size_t)st.st_size + 1);
	assert_int_equal(pread(fd, buf, (size_t)st.st_size, 0), st.st_size);
	/* The newest line is last; an old one is gone. */
	assert_non_null(strstr(buf, "line 04999 of the guest console"));
	assert_null(strstr(buf, "line 00010 "));
	free(buf);
	serial_set_cap(&f->s, 0);
	f->s.se_log_fd = f->log[1];
	close(fd);
}

static void test_reset_state(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(rd(f, LSR), 0x60); /* THRE | TEMT, no data */
	assert_int_equal(rd(f, IIR), 0x01); /* no interrupt, FIFO off */
	assert_int_equal(rd(f, IER), 0);
	assert_int_equal(rd(f, LCR), 0);
	assert_int_equal(rd(f, MCR), 0x08); /* OUT2 */
	assert_int_equal(rd(f, MSR), 0xb0); /* DCD | DSR | CTS */
	assert_int_equal(rd(f, RBR), 0);    /* empty FIFO reads 0 */
	assert_int_equal(f->irq.calls, 0);
	/* Wider reads fill the extra bytes with 0xff. */
	uint8_t w[4] = {0, 0, 0, 0};
	serial_pio(&f->s, BASE + LSR, w, 4, false);
	assert_int_equal(w[0], 0x60);
	assert_int_equal(w[1], 0xff);
	assert_int_equal(w[3], 0xff);
	/* Scratch register. */
	wr(f, SCR, 0xa7);
	assert_int_equal(rd(f, SCR), 0xa7);
	/* LSR and MSR are read-only. */
	wr(f, LSR, 0x00);
	wr(f, MSR, 0x00);
	assert_int_equal(rd(f, LSR), 0x60);
	assert_int_equal(rd(f, MSR), 0xb0);
}

static void test_output_lines(void **state)
{
	struct fixture *f = *state;
	char buf[8192];

	wr(f, RBR, 'h');
	wr(f, RBR, 'i');
	assert_int_equal(drain(f->out[0], buf, sizeof(buf)), 0);
	assert_int_equal(drain(f->log[0], buf, sizeof(buf)), 0);
	assert_int_equal(rd(f, LSR) & 0x60, 0x60); /* transmitted at once */
	wr(f, RBR, '\n');
	assert_int_equal(drain(f->out[0], buf, sizeof(buf)), 3);
	assert_string_equal(buf, "hi\n");
	assert_int_equal(drain(f->log[0], buf, sizeof(buf)), 3);
	assert_string_equal(buf, "hi\n");

	wr(f, RBR, 'x');
	assert_int_equal(drain(f->out[0], buf, sizeof(buf)), 0);
	serial_flush(&f->s);
	assert_int_equal(drain(f->out[0], buf, sizeof(buf)), 1);
	assert_string_equal(buf, "x");
	assert_int_equal(drain(f->log[0], buf, sizeof(buf)), 1);
	serial_flush(&f->s); /* nothing pending: nothing written */
	assert_int_equal(drain(f->out[0], buf, sizeof(buf)), 0);

	/* A line longer than the buffer is flushed when the buffer fills. */
	for (unsigned i = 0; i < SERIAL_OUTBUF; i++)
		wr(f, RBR, (uint8_t)('a' + i % 26));
	assert_int_equal(drain(f->out[0], buf, sizeof(buf)), SERIAL_OUTBUF);
	assert_int_equal(buf[0], 'a');
	assert_int_equal(buf[SERIAL_OUTBUF - 1], 'a' + (SERIAL_OUTBUF - 1) % 26);
	assert_int_equal(drain(f->log[0], buf, sizeof(buf)), SERIAL_OUTBUF);

	/* serial_poll flushes pending output too. */
	wr(f, RBR, 'y');
	assert_true(serial_poll(&f->s));
	assert_int_equal(drain(f->out[0], buf, sizeof(buf)), 1);
	assert_string_equal(buf, "y");
	assert_int_equal(drain(f->log[0], buf, sizeof(buf)), 1);
}

static void test_loopback(void **state)
{
	struct fixture *f = *state;
	char buf[64];

	/* The 8250 autoconfig check: MCR = LOOP | 0x0a gives MSR & 0xf0 == 0x90. */
	wr(f, MCR, 0x1a);
	assert_int_equal(rd(f, MCR), 0x1a);
	assert_int_equal(rd(f, MSR) & 0xf0, 0x90);
	wr(f, MCR, 0x10 | 0x0f);
	assert_int_equal(rd(f, MSR), 0xf0);
	wr(f, MCR, 0x10 | 0x01);
	assert_int_equal(rd(f, MSR), 0x20); /* DTR -> DSR */
	wr(f, MCR, 0x10 | 0x04);
	assert_int_equal(rd(f, MSR), 0x40); /* OUT1 -> RI */
	wr(f, MCR, 0x10);
	assert_int_equal(rd(f, MSR), 0x00);
	wr(f, MCR, 0xff);
	assert_int_equal(rd(f, MCR), 0x1f); /* only 5 bits */

	/* Written bytes come back on RBR instead of going out. */
	wr(f, MCR, 0x1a);
	wr(f, RBR, 'A');
	wr(f, RBR, '\n');
	assert_int_equal(rd(f, LSR) & 0x01, 0x01);
	assert_int_equal(rd(f, RBR), 'A');
	assert_int_equal(rd(f, LSR) & 0x01, 0x01);
	assert_int_equal(rd(f, RBR), '\n');
	assert_int_equal(rd(f, LSR) & 0x01, 0x00);
	serial_flush(&f->s);
	assert_int_equal(drain(f->out[0], buf, sizeof(buf)), 0);

	/* The loopback FIFO holds 16 bytes; later ones are lost. */
	for (unsigned i = 0; i < 20; i++)
		wr(f, RBR, (uint8_t)i);
	for (unsigned i = 0; i < 16; i++)
		assert_int_equal(rd(f, RBR), i);
	assert_int_equal(rd(f, LSR) & 0x01, 0);

	/* FCR "clear receive FIFO" empties it. */
	wr(f, RBR, 'z');
	wr(f, IIR, 0x03);
	assert_int_equal(rd(f, LSR) & 0x01, 0);

	/* Out of loopback: MSR reports a connected line, bytes go out. */
	wr(f, MCR, 0x0b);
	assert_int_equal(rd(f, MSR), 0xb0);
	wr(f, RBR, 'o');
	wr(f, RBR, '\n');
	assert_int_equal(drain(f->out[0], buf, sizeof(buf)), 2);
	assert_string_equal(buf, "o\n");
}

static void test_fifo_iir(void **state)
{
	struct fixture *f = *state;

	wr(f, IIR, 0x01); /* FCR: enable */
	assert_int_equal(rd(f, IIR) & 0xc0, 0xc0);
	assert_int_equal(rd(f, IIR), 0xc1);
	wr(f, IIR, 0xc7); /* enable, clear both, trigger 14 */
	assert_int_equal(rd(f, IIR), 0xc1);
	wr(f, IIR, 0x00);
	assert_int_equal(rd(f, IIR) & 0xc0, 0x00);
	assert_int_equal(rd(f, IIR), 0x01);
}

static void test_thri_irq(void **state)
{
	struct fixture *f = *state;

	wr(f, IIR, 0x01);
	assert_int_equal(f->irq.calls, 0);
	wr(f, IER, 0x02); /* THRI with THR empty: interrupt at once */
	assert_int_equal(f->irq.level, 1);
	assert_int_equal(f->irq.calls, 1);
	assert_int_equal(rd(f, IER), 0x02);
	assert_int_equal(rd(f, IIR), 0xc2); /* THRI id, reading acknowledges it */
	assert_int_equal(f->irq.level, 0);
	assert_int_equal(f->irq.calls, 2);
	assert_int_equal(rd(f, IIR), 0xc1);
	assert_int_equal(f->irq.calls, 2); /* no call without a change */

	/* Writing THR empties it again: another interrupt. */
	wr(f, RBR, 'q');
	assert_int_equal(f->irq.level, 1);
	assert_int_equal(rd(f, IIR) & 0x0f, 0x02);
	assert_int_equal(f->irq.level, 0);

	/* Re-writing IER with THRI already set does not re-arm it. */
	wr(f, IER, 0x02);
	assert_int_equal(f->irq.level, 0);
	/* Disabling drops a pending interrupt; re-enabling raises it. */
	wr(f, RBR, 'q');
	assert_int_equal(f->irq.level, 1);
	wr(f, IER, 0x00);
	assert_int_equal(f->irq.level, 0);
	assert_int_equal(rd(f, IIR), 0xc1);
	wr(f, IER, 0x02);
	assert_int_equal(f->irq.level, 1);

	/* Without OUT2 the line stays low, while IIR still reports the cause. */
	wr(f, MCR, 0x00);
	assert_int_equal(f->irq.level, 0);
	assert_int_equal(rd(f, IIR), 0xc2);
	wr(f, RBR, 'q');
	assert_int_equal(f->irq.level, 0);
	wr(f, MCR, 0x08);
	assert_int_equal(f->irq.level, 1);
	assert_int_equal(rd(f, IER), 0x02);
	wr(f, IER, 0xff);
	assert_int_equal(rd(f, IER), 0x0f); /* only 4 bits */
	serial_flush(&f->s);
}

static void test_input(void **state)
{
	struct fixture *f = *state;

	wr(f, IER, 0x01); /* RDI */
	assert_int_equal(f->irq.calls, 0);
	assert_int_equal(write(f->in[1], "hello", 5), 5);
	assert_true(serial_poll(&f->s));
	assert_int_equal(pending(f->in[0]), 0);
	assert_int_equal(rd(f, LSR), 0x61);
	assert_int_equal(f->irq.level, 1);
	assert_int_equal(rd(f, IIR), 0x04);
	const char *want = "hello";
	for (unsigned i = 0; i < 5; i++) {
		assert_int_equal(f->irq.level, 1);
		assert_int_equal(rd(f, RBR), want[i]);
	}
	assert_int_equal(rd(f, LSR), 0x60);
	assert_int_equal(f->irq.level, 0);
	assert_int_equal(rd(f, IIR), 0x01);

	/* RDI has priority over THRI in IIR. */
	wr(f, IER, 0x03);
	assert_int_equal(write(f->in[1], "!", 1), 1);
	assert_true(serial_poll(&f->s));
	assert_int_equal(rd(f, IIR), 0x04);
	assert_int_equal(rd(f, RBR), '!');
	assert_int_equal(rd(f, IIR), 0x02);
	assert_int_equal(f->irq.level, 0);

	/* Nothing to read: serial_poll waits its period and takes nothing. */
	assert_true(serial_poll(&f->s));
	assert_int_equal(rd(f, LSR) & 0x01, 0);

	/* End of input. */
	close(f->in[1]);
	f->in[1] = -1;
	assert_false(serial_poll(&f->s));
	assert_false(serial_poll(&f->s));
	assert_int_equal(rd(f, LSR), 0x60);
}

static void test_input_fifo_limit(void **state)
{
	struct fixture *f = *state;
	char text[21] = "abcdefghijklmnopqrst";

	assert_int_equal(write(f->in[1], text, 20), 20);
	/* Until the driver enables receive interrupts (port open), input stays queued. */
	assert_true(serial_poll(&f->s));
	assert_int_equal(pending(f->in[0]), 20);
	assert_int_equal(rd(f, LSR) & 0x01, 0);
	/* RDI on with OUT2 clear: input flows, the line stays low (no IRQ counted). */
	wr(f, MCR, 0x00);
	wr(f, IER, 0x01);
	assert_true(serial_poll(&f->s));
	assert_int_equal(pending(f->in[0]), 4); /* only 16 taken */
	assert_int_equal(f->s.se_rx_len, SERIAL_FIFO);
	assert_true(serial_poll(&f->s)); /* FIFO full: takes nothing */
	assert_int_equal(pending(f->in[0]), 4);
	assert_int_equal(rd(f, RBR), 'a');
	assert_int_equal(rd(f, RBR), 'b');
	assert_true(serial_poll(&f->s)); /* room for 2 */
	assert_int_equal(pending(f->in[0]), 2);
	assert_int_equal(f->s.se_rx_len, SERIAL_FIFO);
	for (unsigned i = 2; i < 18; i++)
		assert_int_equal(rd(f, RBR), text[i]);
	assert_int_equal(rd(f, LSR) & 0x01, 0);
	assert_true(serial_poll(&f->s));
	assert_int_equal(pending(f->in[0]), 0);
	assert_int_equal(rd(f, RBR), 's');
	assert_int_equal(rd(f, RBR), 't');
	assert_int_equal(rd(f, LSR) & 0x01, 0);
	assert_int_equal(f->irq.calls, 0); /* OUT2 clear: never driven */
}

static void test_dlab(void **state)
{
	struct fixture *f = *state;
	char buf[16];

	wr(f, IER, 0x05);
	wr(f, LCR, 0x83); /* DLAB, 8N1 */
	assert_int_equal(rd(f, LCR), 0x83);
	assert_int_equal(rd(f, RBR), 12); /* 9600 baud at reset */
	assert_int_equal(rd(f, IER), 0);  /* DLM */
	wr(f, RBR, 0x01);
	wr(f, IER, 0x02);
	assert_int_equal(rd(f, RBR), 0x01);
	assert_int_equal(rd(f, IER), 0x02);
	wr(f, RBR, '\n'); /* a divisor byte, not output */
	serial_flush(&f->s);
	assert_int_equal(drain(f->out[0], buf, sizeof(buf)), 0);
	assert_int_equal(rd(f, RBR), '\n');
	wr(f, LCR, 0x03);
	assert_int_equal(rd(f, IER), 0x05);
	assert_int_equal(rd(f, RBR), 0); /* empty receive FIFO again */
	wr(f, LCR, 0x83);
	assert_int_equal(rd(f, RBR), '\n');
	assert_int_equal(rd(f, IER), 0x02);
	wr(f, LCR, 0x03);
}

static void test_reads_never_block(void **state)
{
	struct fixture *f = *state;

	/* Input pipe open and empty: register reads must not wait for it. A blocking read
	 * would hang here; the alarm turns that into a failure. */
	alarm(10);
	for (unsigned i = 0; i < 100000; i++) {
		assert_int_equal(rd(f, LSR), 0x60);
		assert_int_equal(rd(f, RBR), 0);
	}
	alarm(0);
	assert_int_equal(pending(f->in[0]), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_reset_state, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_console_file_capped, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_output_lines, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_loopback, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fifo_iir, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_thri_irq, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_input, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_input_fifo_limit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dlab, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reads_never_block, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
