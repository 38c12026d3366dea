/* libFuzzer target for the vhost-user framing, message parser and dispatcher
 * (src/lib/vu_wire.c, src/cards/lib/vu_conn.c, vhost_user.c, vu_queue.c): the input's
 * byte stream is written to a socketpair in two pieces (so a header or payload may be
 * split across them) and read back with vu_read_msg() — framing, then vu_parse() — until
 * end of file; each message goes through vu_dispatch() to a dummy device whose guest
 * memory is a buffer the input fills, and after each message every started queue is
 * served (chains walked and echoed back). Messages the framing or the parser refuse are
 * skipped (the card would close the connection); the stream is then read on as it is.
 * Replies must be well-formed; nothing may crash, hang or leak. No fds are sent. The same
 * stream then goes through the non-blocking reader of a vo_shared_loop device.
 *
 * Input: u16 memory length, that many bytes of guest memory (gpa 0, frontend address
 * 0x40000000), u16 split offset, then the stream (messages: 12-byte header, payload).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cards/lib/vhost_user.h"
#include "fuzz.h"
#include "lib/util.h"

#define MEMSZ 65536
#define UVA 0x40000000ull
#define STREAM_MAX 65536 /* fits the socket buffer in two sends: no reader needed */

static uint8_t mem[MEMSZ];
static uint8_t config[32];

static int cfg_read(struct vu_dev *d, uint32_t off, void *buf, uint32_t len)
{
	(void)d;
	CHECK(off <= sizeof(config) && len <= sizeof(config) - off);
	memcpy(buf, config + off, len);
	return 0;
}

static int cfg_write(struct vu_dev *d, uint32_t off, const void *buf, uint32_t len, uint32_t flags)
{
	(void)flags;
	(void)d;
	CHECK(off <= sizeof(config) && len <= sizeof(config) - off);
	memcpy(config + off, buf, len);
	return off == 0 ? -1 : 0;
}

static void serve(struct vu_dev *d, unsigned q)
{
	struct vr_seg segs[32];
	struct vr_chain ch = {.ch_segs = segs, .ch_max = ARRAY_SIZE(segs)};
	for (unsigned i = 0; i < 64 && vu_queue_pop(d, q, &ch) == 1; i++) {
		uint32_t w = 0;
		for (unsigned k = 0; k < ch.ch_nsegs; k++) {
			const uint8_t *p = segs[k].sg_ptr;
			CHECK(p >= mem && p <= mem + MEMSZ &&
			      segs[k].sg_len <= (size_t)(mem + MEMSZ - p));
			if (segs[k].sg_write) {
				memset(segs[k].sg_ptr, 0x5a, segs[k].sg_len);
				w += segs[k].sg_len;
			}
		}
		vu_queue_push(d, q, ch.ch_head, w);
	}
	vu_queue_notify(d, q);
}

/* The device both readers serve; the second on a shared loop. */
#define FUZZ_OPS                                                                                   \
	.vo_features = 1ull << 9, .vo_num_queues = 4, .vo_max_queue_size = 1024,                   \
	.vo_config_size = sizeof(config), .vo_config_read = cfg_read,                              \
	.vo_config_write = cfg_write, .vo_queue_kick = serve
static const struct vu_ops ops = {FUZZ_OPS};
static const struct vu_ops shared_ops = {FUZZ_OPS, .vo_shared_loop = true};

/* The same stream through the non-blocking reader of a vo_shared_loop device
 * (vu_handle_one: messages collected as their bytes arrive): the first piece, then the rest
 * with end of file. It answers 0 while a message is incomplete and stops at the first bad
 * one (the card closes the connection); replies go back on the socket. */
static void shared_loop_reader(const uint8_t *data, size_t size, size_t split)
{
	char err[256];
	struct vu_dev d;
	int sv[2];
	if (vu_dev_init(&d, &shared_ops, NULL, NULL, err, sizeof(err)) ||
	    gm_add_borrowed(&d.vd_mem, 0, UVA, mem, MEMSZ, err, sizeof(err)) ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	int one = 1 << 20;
	setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &one, sizeof(one));
	if (vu_dev_attach(&d, sv[1], err, sizeof(err)))
		abort();
	if (split && send(sv[0], data, split, MSG_NOSIGNAL) != (ssize_t)split)
		abort();
	int r = 0;
	for (unsigned i = 0; r == 0 && i < split + 2; i++)
		r = vu_handle_one(&d, err, sizeof(err));
	if (r == 0) { /* the first piece is in: the rest, then end of file */
		if (size > split && send(sv[0], data + split, size - split, MSG_NOSIGNAL) !=
					(ssize_t)(size - split))
			abort();
		shutdown(sv[0], SHUT_WR);
		for (unsigned i = 0; r == 0 && i < size + 2; i++)
			r = vu_handle_one(&d, err, sizeof(err));
		CHECK(r != 0); /* end of file is always reached */
	}
	CHECK(r <= 1);
	close(sv[0]);
	vu_dev_fini(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	struct vu_dev d;
	static struct vu_msg m, reply;

	if (size < 2)
		return 0;
	size_t memlen = (size_t)(data[0] | data[1] << 8);
	data += 2, size -= 2;
	if (memlen > size)
		memlen = size;
	if (memlen > MEMSZ)
		memlen = MEMSZ;
	memset(mem, 0, sizeof(mem));
	memcpy(mem, data, memlen);
	data += memlen, size -= memlen;

	if (vu_dev_init(&d, &ops, NULL, NULL, err, sizeof(err)))
		abort();
	/* Guest memory as if SET_MEM_TABLE had brought it (a fuzzer sends no fds). */
	if (gm_add_borrowed(&d.vd_mem, 0, UVA, mem, MEMSZ, err, sizeof(err)))
		abort();
	if (size < 2) {
		vu_dev_fini(&d);
		return 0;
	}
	size_t split = (size_t)(data[0] | data[1] << 8);
	data += 2, size -= 2;
	if (size > STREAM_MAX)
		size = STREAM_MAX;
	if (split > size)
		split = size;
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	if ((split && send(sv[0], data, split, MSG_NOSIGNAL) != (ssize_t)split) ||
	    (size > split &&
	     send(sv[0], data + split, size - split, MSG_NOSIGNAL) != (ssize_t)(size - split)))
		abort();
	close(sv[0]); /* the reader sees end of file after the stream */
	for (;;) {
		int r = vu_read_msg(sv[1], &m, err, sizeof(err));
		if (r == 0 || r == -EPIPE)
			break;
		CHECK(r == 1 || r == -EMSGSIZE || r == -EINVAL);
		if (r != 1)
			continue; /* the connection would be closed; read on anyway */
		CHECK(m.vm_nfds == 0);
		bool has_reply;
		r = vu_dispatch(&d, &m, &reply, &has_reply, err, sizeof(err));
		if (r) {
			CHECK(!has_reply);
			continue;
		}
		if (has_reply) {
			CHECK(reply.vm_flags == (VU_FLAG_VERSION | VU_FLAG_REPLY));
			CHECK(reply.vm_request == m.vm_request);
			CHECK(reply.vm_size <= VU_PAYLOAD_MAX);
		}
		for (unsigned q = 0; q < d.vd_nqueues; q++) {
			struct vu_queue *vq = &d.vd_queues[q];
			CHECK(vq->vq_kick == -1 && vq->vq_call == -1 && vq->vq_err == -1);
			if (vq->vq_started && vq->vq_enabled && !vq->vq_failed)
				serve(&d, q);
		}
	}
	close(sv[1]);
	vu_dev_fini(&d);
	shared_loop_reader(data, size, split);
	return 0;
}
