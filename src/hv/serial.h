/* A 16550A UART (COM1): what Linux's 8250 driver needs, nothing more.
 *
 * Output bytes go to out_fd (and log_fd when >= 0), batched per line and flushed at
 * least every SERIAL_FLUSH_MS. Input comes from in_fd through serial_poll(), which the
 * input thread calls in a loop; it reads only while the guest has receive interrupts on
 * (its driver has the port open) and the 16-byte receive FIFO has room, so nothing typed
 * is dropped. The interrupt line is driven through set_irq(level) whenever
 * its level changes. All entry points are thread-safe (vCPU threads and the input
 * thread call them concurrently).
 */
#ifndef NITRO_HV_SERIAL_H
#define NITRO_HV_SERIAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define SERIAL_FIFO 16
#define SERIAL_OUTBUF 4096
#define SERIAL_FLUSH_MS 20

struct serial {
	pthread_mutex_t se_lock;
	uint8_t se_ier, se_lcr, se_mcr, se_scr, se_dll, se_dlm, se_fcr;
	bool se_thri; /* THR-empty interrupt pending */
	bool se_irq_level;
	uint8_t se_rx[SERIAL_FIFO];
	unsigned se_rx_head, se_rx_len;
	uint8_t se_out[SERIAL_OUTBUF];
	unsigned se_out_len;
	int se_in_fd, se_out_fd, se_log_fd;
	uint64_t se_cap; /* serial_set_cap: the size cap of regular output files (0: none) */
	uint8_t *se_keep;
	bool se_in_eof;
	void (*se_set_irq)(void *opaque, int level);
	void *se_irq_opaque;
};

void serial_init(struct serial *s, int in_fd, int out_fd, int log_fd,
		 void (*set_irq)(void *opaque, int level), void *opaque);
/* Caps the output files (out_fd and log_fd when they are regular files) at cap bytes: a
 * write that would pass it first cuts the file down to its newest cap/2 bytes (ftruncate,
 * then they are written back), so a guest cannot fill the host's disk through its console
 * and the file always ends with the newest output. Before the sandbox (allocates cap/2).
 * 0, or -1 when out of memory. */
int serial_set_cap(struct serial *s, uint64_t cap);
/* pio handler for the 8 registers at the base port. */
void serial_pio(void *opaque, uint16_t port, uint8_t *data, unsigned size, bool write);
/* One round of the input thread: wait up to SERIAL_FLUSH_MS for input, take what fits,
 * flush pending output. Returns false once input is at EOF (the caller keeps flushing
 * with serial_flush). */
bool serial_poll(struct serial *s);
void serial_flush(struct serial *s);

#endif
