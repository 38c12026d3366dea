/* 16550A UART emulation. */
#include "hv/serial.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define UART_RX 0  /* RBR/THR, DLL when DLAB */
#define UART_IER 1 /* DLM when DLAB */
#define UART_IIR 2 /* FCR on write */
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define UART_MSR 6
#define UART_SCR 7

#define IER_RDI 0x01
#define IER_THRI 0x02
#define IIR_NO_INT 0x01
#define IIR_THRI 0x02
#define IIR_RDI 0x04
#define IIR_FIFO 0xc0
#define FCR_ENABLE 0x01
#define FCR_CLEAR_RX 0x02
#define LCR_DLAB 0x80
#define MCR_DTR 0x01
#define MCR_RTS 0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10
#define LSR_DR 0x01
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
#define MSR_CTS 0x10
#define MSR_DSR 0x20
#define MSR_RI 0x40
#define MSR_DCD 0x80

static void write_all(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return; /* a closed stdout must not stop the guest */
		p += w;
		n -= (size_t)w;
	}
}

int serial_set_cap(struct serial *s, uint64_t cap)
{
	free(s->se_keep);
	s->se_keep = NULL;
	s->se_cap = 0;
	if (!cap)
		return 0;
	if (!(s->se_keep = malloc(cap / 2)))
		return -1;
	s->se_cap = cap;
	return 0;
}

/* write_all, keeping a regular file under the cap: past it the file is cut to its newest
 * cap/2 bytes (counting these), which are written back from the start. */
static void write_capped(struct serial *s, int fd, const uint8_t *p, size_t n)
{
	struct stat st;
	if (!s->se_cap || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_size + n <= s->se_cap) {
		write_all(fd, p, n);
		return;
	}
	size_t half = (size_t)(s->se_cap / 2), old = 0;
	if (n >= half) {
		p += n - half;
		n = half;
	} else {
		old = half - n;
		if ((uint64_t)st.st_size < old)
			old = (size_t)st.st_size;
		ssize_t r = pread(fd, s->se_keep, old, st.st_size - (off_t)old);
		old = r > 0 ? (size_t)r : 0;
	}
	if (ftruncate(fd, 0) < 0)
		return;		/* cannot cut: drop this output rather than pass the cap */
	lseek(fd, 0, SEEK_SET); /* (a no-op for O_APPEND files) */
	write_all(fd, s->se_keep, old);
	write_all(fd, p, n);
}

static void flush_locked(struct serial *s)
{
	if (!s->se_out_len)
		return;
	write_capped(s, s->se_out_fd, s->se_out, s->se_out_len);
	if (s->se_log_fd >= 0)
		write_capped(s, s->se_log_fd, s->se_out, s->se_out_len);
	s->se_out_len = 0;
}

static void update_irq(struct serial *s)
{
	bool level =
	    ((s->se_ier & IER_RDI) && s->se_rx_len) || ((s->se_ier & IER_THRI) && s->se_thri);
	/* With OUT2 clear a PC's UART does not drive its IRQ line. */
	if (!(s->se_mcr & MCR_OUT2))
		level = false;
	if (level != s->se_irq_level) {
		s->se_irq_level = level;
		s->se_set_irq(s->se_irq_opaque, level);
	}
}

void serial_init(struct serial *s, int in_fd, int out_fd, int log_fd,
		 void (*set_irq)(void *opaque, int level), void *opaque)
{
	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->se_lock, NULL);
	s->se_in_fd = in_fd;
	s->se_out_fd = out_fd;
	s->se_log_fd = log_fd;
	s->se_set_irq = set_irq;
	s->se_irq_opaque = opaque;
	s->se_mcr = MCR_OUT2;
	s->se_dll = 12; /* 9600 baud */
}

static void tx(struct serial *s, uint8_t c)
{
	if (s->se_mcr & MCR_LOOP) {
		if (s->se_rx_len < SERIAL_FIFO)
			s->se_rx[(s->se_rx_head + s->se_rx_len++) % SERIAL_FIFO] = c;
	} else {
		s->se_out[s->se_out_len++] = c;
		if (c == '\n' || s->se_out_len == SERIAL_OUTBUF)
			flush_locked(s);
	}
	s->se_thri = true; /* transmitted at once: THR empty again */
}

static uint8_t reg_read(struct serial *s, unsigned reg)
{
	bool dlab = s->se_lcr & LCR_DLAB;
	uint8_t v;
	switch (reg) {
	case UART_RX:
		if (dlab)
			return s->se_dll;
		if (!s->se_rx_len)
			return 0;
		v = s->se_rx[s->se_rx_head];
		s->se_rx_head = (s->se_rx_head + 1) % SERIAL_FIFO;
		s->se_rx_len--;
		return v;
	case UART_IER:
		return dlab ? s->se_dlm : s->se_ier;
	case UART_IIR:
		v = (s->se_fcr & FCR_ENABLE) ? IIR_FIFO : 0;
		if ((s->se_ier & IER_RDI) && s->se_rx_len)
			return v | IIR_RDI;
		if ((s->se_ier & IER_THRI) && s->se_thri) {
			s->se_thri = false; /* reading IIR acknowledges THR empty */
			return v | IIR_THRI;
		}
		return v | IIR_NO_INT;
	case UART_LCR:
		return s->se_lcr;
	case UART_MCR:
		return s->se_mcr;
	case UART_LSR:
		return LSR_THRE | LSR_TEMT | (s->se_rx_len ? LSR_DR : 0);
	case UART_MSR:
		if (s->se_mcr & MCR_LOOP)
			return (uint8_t)(((s->se_mcr & MCR_RTS) ? MSR_CTS : 0) |
					 ((s->se_mcr & MCR_DTR) ? MSR_DSR : 0) |
					 ((s->se_mcr & MCR_OUT1) ? MSR_RI : 0) |
					 ((s->se_mcr & MCR_OUT2) ? MSR_DCD : 0));
		return MSR_DCD | MSR_DSR | MSR_CTS;
	default:
		return s->se_scr;
	}
}

static void reg_write(struct serial *s, unsigned reg, uint8_t v)
{
	bool dlab = s->se_lcr & LCR_DLAB;
	switch (reg) {
	case UART_RX:
		if (dlab)
			s->se_dll = v;
		else
			tx(s, v);
		break;
	case UART_IER:
		if (dlab) {
			s->se_dlm = v;
		} else {
			if ((v & IER_THRI) && !(s->se_ier & IER_THRI))
				s->se_thri = true; /* enabling THRI with THR empty interrupts */
			s->se_ier = v & 0x0f;
		}
		break;
	case UART_IIR:
		s->se_fcr = v & (uint8_t) ~(FCR_CLEAR_RX | 0x04);
		if (v & FCR_CLEAR_RX)
			s->se_rx_len = 0;
		break;
	case UART_LCR:
		s->se_lcr = v;
		break;
	case UART_MCR:
		s->se_mcr = v & 0x1f;
		break;
	case UART_SCR:
		s->se_scr = v;
		break;
	default: /* LSR and MSR are read-only */
		break;
	}
}

void serial_pio(void *opaque, uint16_t port, uint8_t *data, unsigned size, bool write)
{
	struct serial *s = opaque;
	unsigned reg = port & 7;
	pthread_mutex_lock(&s->se_lock);
	if (write)
		reg_write(s, reg, data[0]);
	else
		data[0] = reg_read(s, reg);
	for (unsigned i = 1; i < size && !write; i++)
		data[i] = 0xff;
	update_irq(s);
	pthread_mutex_unlock(&s->se_lock);
}

void serial_flush(struct serial *s)
{
	pthread_mutex_lock(&s->se_lock);
	flush_locked(s);
	pthread_mutex_unlock(&s->se_lock);
}

bool serial_poll(struct serial *s)
{
	pthread_mutex_lock(&s->se_lock);
	unsigned room = SERIAL_FIFO - s->se_rx_len;
	/* Input is taken only while the guest driver listens (receive interrupts on: the
	 * port is open). Before that it stays in the pipe: the driver's start-up clears the
	 * FIFO, and bytes taken early would be lost. */
	bool want = !s->se_in_eof && room > 0 && (s->se_ier & IER_RDI);
	pthread_mutex_unlock(&s->se_lock);

	struct pollfd p = {.fd = s->se_in_fd, .events = POLLIN};
	int r = want ? poll(&p, 1, SERIAL_FLUSH_MS) : poll(NULL, 0, SERIAL_FLUSH_MS);
	pthread_mutex_lock(&s->se_lock);
	if (r > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR))) {
		uint8_t buf[SERIAL_FIFO];
		room = SERIAL_FIFO - s->se_rx_len;
		ssize_t n = 0;
		if (room) { /* the FIFO may have filled meanwhile: a 0-byte read is not EOF */
			n = read(s->se_in_fd, buf, room);
			if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
				s->se_in_eof = true;
		}
		for (ssize_t i = 0; i < n; i++)
			s->se_rx[(s->se_rx_head + s->se_rx_len++) % SERIAL_FIFO] = buf[i];
		update_irq(s);
	}
	flush_locked(s);
	bool more = !s->se_in_eof;
	pthread_mutex_unlock(&s->se_lock);
	return more;
}
