/* Unit tests for the vhost-user back-end (src/cards/lib/vhost_user.c, vu_conn.c,
 * vu_queue.c) and the event loop (loop.c). A test frontend on one end of a socketpair
 * sends the real set-up sequence (SET_OWNER, features, SET_MEM_TABLE with a memfd, the
 * SET_VRING_* messages) to a dummy device whose queue_kick echoes its readable buffers
 * into its writable ones; the loop runs one event at a time. Then malformed input:
 * truncated, oversized and mis-sized messages, unknown requests, fd-less SET_MEM_TABLE,
 * bad queue indices and ring addresses, REPLY_ACK values, too many fds, a frontend
 * closing mid-message, and hostile descriptors failing one queue only. No fd may leak.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "cards/lib/backend.h"
#include "cards/lib/loop.h"
#include "cards/lib/vhost_user.h"
#include "lib/util.h"

#include "../testlib/fds.h"

#define MEMSZ (1u << 20)
#define UVA 0x7f1200000000ull /* where the "frontend" has guest memory mapped */
#define QSZ 64u
#define DESC 0x1000ull
#define AVAIL 0x2000ull
#define USED 0x3000ull
#define BUF 0x10000ull
#define BIT(n) (1ull << (n))
#define DEV_FEATURE 9 /* some device feature bit (VIRTIO_BLK_F_FLUSH) */

struct fx {
	int fe; /* the test frontend's end */
	int be; /* the device's end (owned by the device once attached) */
	int mem_fd;
	uint8_t *mem; /* the frontend's view of guest memory */
	int kick, call, err;
	struct loop loop;
	struct vu_dev dev;
	uint8_t config[16];
	unsigned kicks, stops, disconnects, mem_changes, stoppings_live;
	int fds_before;
};

static struct fx *fx_of(struct vu_dev *d)
{
	return d->vd_opaque;
}

/* Echo: copies the readable bytes of each chain into its writable buffers. */
static void echo_kick(struct vu_dev *d, unsigned q)
{
	struct vr_seg segs[128];
	struct vr_chain ch = {.ch_segs = segs, .ch_max = ARRAY_SIZE(segs)};
	fx_of(d)->kicks++;
	while (vu_queue_pop(d, q, &ch) == 1) {
		uint8_t tmp[4096];
		size_t n = 0, w = 0;
		for (unsigned i = 0; i < ch.ch_nsegs; i++) {
			if (segs[i].sg_write)
				continue;
			size_t k =
			    segs[i].sg_len < sizeof(tmp) - n ? segs[i].sg_len : sizeof(tmp) - n;
			memcpy(tmp + n, segs[i].sg_ptr, k);
			n += k;
		}
		for (unsigned i = 0; i < ch.ch_nsegs && w < n; i++) {
			if (!segs[i].sg_write)
				continue;
			size_t k = segs[i].sg_len < n - w ? segs[i].sg_len : n - w;
			memcpy(segs[i].sg_ptr, tmp + w, k);
			w += k;
		}
		vu_queue_push(d, q, ch.ch_head, (uint32_t)w);
	}
	vu_queue_notify(d, q);
}

static int cfg_read(struct vu_dev *d, uint32_t off, void *buf, uint32_t len)
{
	memcpy(buf, fx_of(d)->config + off, len);
	return 0;
}

static int cfg_write(struct vu_dev *d, uint32_t off, const void *buf, uint32_t len, uint32_t flags)
{
	(void)flags;
	if (off == 0)
		return -EPERM; /* byte 0 is read-only */
	memcpy(fx_of(d)->config + off, buf, len);
	return 0;
}

static void queue_stop(struct vu_dev *d, unsigned q)
{
	(void)q;
	fx_of(d)->stops++;
}

static void disconnected(struct vu_dev *d)
{
	fx_of(d)->disconnects++;
	loop_stop(&fx_of(d)->loop);
}

static const struct vu_ops echo_ops = {
    .vo_features = BIT(DEV_FEATURE),
    .vo_num_queues = 2,
    .vo_max_queue_size = 256,
    .vo_config_size = 16,
    .vo_config_read = cfg_read,
    .vo_config_write = cfg_write,
    .vo_queue_kick = echo_kick,
    .vo_queue_stop = queue_stop,
    .vo_disconnected = disconnected,
};

static int setup(void **state)
{
	char err[256];
	struct fx *f = calloc(1, sizeof(*f));
	int sv[2];
	if (!f)
		return -1;
	f->fds_before = count_fds();
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -1;
	f->fe = sv[0];
	f->be = sv[1];
	struct timeval tv = {.tv_sec = 5};
	setsockopt(f->fe, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	/* Sealed against shrinking, as nitro-hv's: every card refuses other memory. */
	f->mem_fd = memfd_create("test-vhost-user", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (f->mem_fd < 0 || ftruncate(f->mem_fd, MEMSZ) < 0 ||
	    fcntl(f->mem_fd, F_ADD_SEALS, F_SEAL_SHRINK) < 0)
		return -1;
	f->mem = mmap(NULL, MEMSZ, PROT_READ | PROT_WRITE, MAP_SHARED, f->mem_fd, 0);
	if (f->mem == MAP_FAILED)
		return -1;
	f->kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	f->call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	f->err = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (loop_init(&f->loop, false, err, sizeof(err)))
		return -1;
	if (vu_dev_init(&f->dev, &echo_ops, f, &f->loop, err, sizeof(err)))
		return -1;
	if (vu_dev_attach(&f->dev, f->be, err, sizeof(err)))
		return -1;
	memcpy(f->config, "nitro-config-abc", 16);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	vu_dev_fini(&f->dev);
	loop_fini(&f->loop);
	if (f->fe >= 0)
		close(f->fe);
	close(f->mem_fd);
	close(f->kick);
	close(f->call);
	close(f->err);
	munmap(f->mem, MEMSZ);
	int after = count_fds();
	int before = f->fds_before;
	free(f);
	assert_int_equal(after, before); /* no fd leaked anywhere */
	return 0;
}

/* Sends a raw header and payload (size may differ from len) with fds. */
static void send_raw(struct fx *f, uint32_t req, uint32_t flags, uint32_t size, const void *p,
		     size_t len, const int *fds, unsigned nfds)
{
	uint8_t buf[VU_HDR_SIZE + VU_PAYLOAD_MAX + 64];
	uint32_t hdr[3] = {req, flags, size};
	memcpy(buf, hdr, sizeof(hdr));
	assert_true(len <= sizeof(buf) - VU_HDR_SIZE);
	if (len)
		memcpy(buf + VU_HDR_SIZE, p, len);
	send_with_fds(f->fe, buf, VU_HDR_SIZE + len, fds, nfds);
}

static void send_msg(struct fx *f, uint32_t req, uint32_t flags, const void *p, size_t len,
		     const int *fds, unsigned nfds)
{
	send_raw(f, req, VU_FLAG_VERSION | flags, (uint32_t)len, p, len, fds, nfds);
}

/* Lets the device handle what is pending. */
static void step(struct fx *f)
{
	assert_true(loop_run_once(&f->loop, 2000) >= 1);
}

/* Reads a reply to req; returns its payload size. */
static uint32_t recv_reply(struct fx *f, uint32_t req, void *p, size_t cap)
{
	uint32_t hdr[3];
	assert_int_equal(recv(f->fe, hdr, sizeof(hdr), MSG_WAITALL), sizeof(hdr));
	assert_int_equal(hdr[0], req);
	assert_int_equal(hdr[1], VU_FLAG_VERSION | VU_FLAG_REPLY);
	assert_true(hdr[2] <= cap);
	if (hdr[2])
		assert_int_equal(recv(f->fe, p, hdr[2], MSG_WAITALL), hdr[2]);
	return hdr[2];
}

static uint64_t call_u64(struct fx *f, uint32_t req)
{
	uint64_t v = 0;
	send_msg(f, req, 0, NULL, 0, NULL, 0);
	step(f);
	assert_int_equal(recv_reply(f, req, &v, sizeof(v)), 8);
	return v;
}

/* Sends with NEED_REPLY and returns the ack value. */
static uint64_t acked(struct fx *f, uint32_t req, const void *p, size_t len, const int *fds,
		      unsigned nfds)
{
	uint64_t v = 42;
	send_msg(f, req, VU_FLAG_NEED_REPLY, p, len, fds, nfds);
	step(f);
	assert_int_equal(recv_reply(f, req, &v, sizeof(v)), 8);
	return v;
}

/* The device closed the connection (and told its owner). */
static void expect_closed(struct fx *f)
{
	step(f);
	assert_int_equal(f->dev.vd_fd, -1);
	assert_int_equal(f->disconnects, 1);
	assert_true(f->loop.lp_stop);
	/* EOF for the frontend (a reset when we left unread bytes behind). */
	char c;
	ssize_t n = recv(f->fe, &c, 1, 0);
	assert_true(n == 0 || (n < 0 && errno == ECONNRESET));
}

static void mem_table(struct fx *f)
{
	struct vu_mem_table t = {.nregions = 1};
	t.regions[0] = (struct vu_mem_region){.gpa = 0, .size = MEMSZ, .uva = UVA};
	int fd = dup(f->mem_fd);
	assert_int_equal(acked(f, VU_SET_MEM_TABLE, &t, 8 + sizeof(t.regions[0]), &fd, 1), 0);
	close(fd); /* our copy; the device got its own */
}

static void ring_fd(struct fx *f, uint32_t req, unsigned q, int fd)
{
	uint64_t v = q;
	send_msg(f, req, 0, &v, sizeof(v), &fd, 1);
	step(f);
}

/* The whole set-up of queue q, as QEMU does it, with the given features acked. */
static void bring_up(struct fx *f, uint64_t features)
{
	send_msg(f, VU_SET_OWNER, 0, NULL, 0, NULL, 0);
	step(f);
	uint64_t offered = call_u64(f, VU_GET_FEATURES);
	assert_true(offered & BIT(DEV_FEATURE));
	assert_true(offered & BIT(VIRTIO_F_VERSION_1));
	assert_true(offered & BIT(VHOST_USER_F_PROTOCOL_FEATURES));
	assert_true(offered & BIT(VIRTIO_RING_F_EVENT_IDX));
	assert_true(offered & BIT(VIRTIO_RING_F_INDIRECT_DESC));
	uint64_t pf = call_u64(f, VU_GET_PROTOCOL_FEATURES);
	assert_true(pf & BIT(VU_PROTOCOL_F_REPLY_ACK));
	assert_true(pf & BIT(VU_PROTOCOL_F_MQ));
	assert_true(pf & BIT(VU_PROTOCOL_F_CONFIG));
	pf = BIT(VU_PROTOCOL_F_REPLY_ACK) | BIT(VU_PROTOCOL_F_CONFIG) | BIT(VU_PROTOCOL_F_MQ);
	send_msg(f, VU_SET_PROTOCOL_FEATURES, 0, &pf, 8, NULL, 0);
	step(f);
	assert_int_equal(call_u64(f, VU_GET_QUEUE_NUM), 2);
	assert_int_equal(acked(f, VU_SET_FEATURES, &features, 8, NULL, 0), 0);
	mem_table(f);
	struct vu_vring_state num = {0, QSZ}, base = {0, 0};
	assert_int_equal(acked(f, VU_SET_VRING_NUM, &num, sizeof(num), NULL, 0), 0);
	struct vu_vring_addr a = {
	    .index = 0, .desc = UVA + DESC, .used = UVA + USED, .avail = UVA + AVAIL};
	assert_int_equal(acked(f, VU_SET_VRING_ADDR, &a, sizeof(a), NULL, 0), 0);
	assert_int_equal(acked(f, VU_SET_VRING_BASE, &base, sizeof(base), NULL, 0), 0);
	ring_fd(f, VU_SET_VRING_CALL, 0, f->call);
	ring_fd(f, VU_SET_VRING_ERR, 0, f->err);
	ring_fd(f, VU_SET_VRING_KICK, 0, f->kick);
	assert_true(f->dev.vd_queues[0].vq_started);
	if (features & BIT(VHOST_USER_F_PROTOCOL_FEATURES)) {
		assert_false(f->dev.vd_queues[0].vq_enabled);
		struct vu_vring_state en = {0, 1};
		assert_int_equal(acked(f, VU_SET_VRING_ENABLE, &en, sizeof(en), NULL, 0), 0);
	}
	assert_true(f->dev.vd_queues[0].vq_enabled);
}

static struct virtq_desc *desc(struct fx *f)
{
	return (struct virtq_desc *)(f->mem + DESC);
}

static struct virtq_avail *avail(struct fx *f)
{
	return (struct virtq_avail *)(f->mem + AVAIL);
}

static struct virtq_used *used(struct fx *f)
{
	return (struct virtq_used *)(f->mem + USED);
}

/* The guest: a chain "text" -> 32 writable bytes at head, made available and kicked. */
static void submit(struct fx *f, uint16_t head, const char *text)
{
	uint64_t b = BUF + head * 0x100ull;
	memcpy(f->mem + b, text, strlen(text));
	desc(f)[head] =
	    (struct virtq_desc){b, (uint32_t)strlen(text), VRING_DESC_F_NEXT, (uint16_t)(head + 1)};
	desc(f)[head + 1] = (struct virtq_desc){b + 0x80, 32, VRING_DESC_F_WRITE, 0};
	avail(f)->ring[avail(f)->idx % QSZ] = head;
	__atomic_store_n(&avail(f)->idx, avail(f)->idx + 1, __ATOMIC_RELEASE);
	assert_int_equal(eventfd_write(f->kick, 1), 0);
}

static bool signalled(int efd)
{
	eventfd_t v;
	return eventfd_read(efd, &v) == 0 && v > 0;
}

static void test_echo(void **state)
{
	struct fx *f = *state;
	bring_up(f, BIT(VIRTIO_F_VERSION_1) | BIT(VHOST_USER_F_PROTOCOL_FEATURES) |
			BIT(VIRTIO_RING_F_INDIRECT_DESC) | BIT(DEV_FEATURE));
	submit(f, 0, "hello, card");
	step(f);
	assert_int_equal(f->kicks, 1);
	assert_int_equal(used(f)->idx, 1);
	assert_int_equal(used(f)->ring[0].id, 0);
	assert_int_equal(used(f)->ring[0].len, 11);
	assert_memory_equal(f->mem + BUF + 0x80, "hello, card", 11);
	assert_true(signalled(f->call));
	submit(f, 2, "again");
	step(f);
	assert_int_equal(used(f)->idx, 2);
	assert_int_equal(used(f)->ring[1].id, 2);
	assert_memory_equal(f->mem + BUF + 0x280, "again", 5);
	assert_false(signalled(f->err));
	/* A new kick fd for a running queue: it goes on where it was, replaying nothing. */
	ring_fd(f, VU_SET_VRING_KICK, 0, f->kick);
	assert_int_equal(f->dev.vd_queues[0].vq_ring.vr_last_avail, 2);
	assert_int_equal(f->stops, 1);
	f->stops = 0;

	/* Config space. */
	struct vu_config c = {.offset = 6, .size = 6};
	send_msg(f, VU_GET_CONFIG, 0, &c, 12 + c.size, NULL, 0);
	step(f);
	struct vu_config r;
	assert_int_equal(recv_reply(f, VU_GET_CONFIG, &r, sizeof(r)), 12 + 6);
	assert_memory_equal(r.payload, "config", 6);
	c = (struct vu_config){.offset = 12, .size = 4};
	memcpy(c.payload, "WXYZ", 4);
	assert_int_equal(acked(f, VU_SET_CONFIG, &c, 12 + 4, NULL, 0), 0);
	assert_memory_equal(f->config + 12, "WXYZ", 4);
	c.offset = 0; /* the device refuses */
	assert_int_equal(acked(f, VU_SET_CONFIG, &c, 12 + 4, NULL, 0), 1);
	c = (struct vu_config){.offset = 10, .size = 8}; /* past the end: empty reply */
	send_msg(f, VU_GET_CONFIG, 0, &c, 12 + c.size, NULL, 0);
	step(f);
	assert_int_equal(recv_reply(f, VU_GET_CONFIG, &r, sizeof(r)), 0);

	/* GET_VRING_BASE stops the ring and reports where to resume. */
	struct vu_vring_state st = {0, 0};
	send_msg(f, VU_GET_VRING_BASE, 0, &st, sizeof(st), NULL, 0);
	step(f);
	assert_int_equal(recv_reply(f, VU_GET_VRING_BASE, &st, sizeof(st)), sizeof(st));
	assert_int_equal(st.index, 0);
	assert_int_equal(st.num, 2);
	assert_int_equal(f->stops, 1);
	assert_false(f->dev.vd_queues[0].vq_started);
	submit(f, 4, "ignored");
	assert_int_equal(loop_run_once(&f->loop, 50), 0); /* nobody watches the kick any more */
	assert_int_equal(used(f)->idx, 2);

	/* Restarting from base 2 picks the pending chain up. */
	st = (struct vu_vring_state){0, 2};
	assert_int_equal(acked(f, VU_SET_VRING_BASE, &st, sizeof(st), NULL, 0), 0);
	ring_fd(f, VU_SET_VRING_KICK, 0, f->kick); /* the kick count is still pending */
	step(f);
	assert_int_equal(used(f)->idx, 3);
	assert_memory_equal(f->mem + BUF + 0x480, "ignored", 7);

	/* The frontend goes away between messages: clean teardown. */
	close(f->fe);
	f->fe = -1;
	step(f);
	assert_int_equal(f->dev.vd_fd, -1);
	assert_int_equal(f->disconnects, 1);
	assert_int_equal(f->dev.vd_mem.gm_nregions, 0);
}

static void test_event_idx(void **state)
{
	struct fx *f = *state;
	/* Without protocol features the ring is enabled by its kick fd alone. */
	bring_up(f, BIT(VIRTIO_F_VERSION_1) | BIT(VIRTIO_RING_F_EVENT_IDX));
	uint16_t *used_event = &avail(f)->ring[QSZ];
	*used_event = 0;
	submit(f, 0, "one");
	step(f);
	assert_true(signalled(f->call)); /* used idx passed 0 */
	*used_event = 5;		 /* the driver wants an interrupt only after 5 */
	submit(f, 2, "two");
	step(f);
	assert_int_equal(used(f)->idx, 2);
	assert_false(signalled(f->call));
	uint16_t avail_event;
	memcpy(&avail_event, f->mem + USED + 4 + 8 * QSZ, 2);
	assert_int_equal(avail_event, 2);
}

static void test_hostile_chain(void **state)
{
	struct fx *f = *state;
	bring_up(f, BIT(VIRTIO_F_VERSION_1));
	desc(f)[0] = (struct virtq_desc){BUF, 8, VRING_DESC_F_NEXT, 1};
	desc(f)[1] = (struct virtq_desc){BUF, 8, VRING_DESC_F_NEXT, 0}; /* loop */
	avail(f)->ring[0] = 0;
	avail(f)->idx = 1;
	eventfd_write(f->kick, 1);
	step(f);
	assert_true(f->dev.vd_queues[0].vq_failed);
	assert_true(signalled(f->err));
	assert_int_equal(used(f)->idx, 0);
	/* The connection and the other queue live on. */
	assert_int_equal(call_u64(f, VU_GET_QUEUE_NUM), 2);
	/* Further kicks are ignored. */
	eventfd_write(f->kick, 1);
	assert_int_equal(loop_run_once(&f->loop, 50), 0);
	assert_int_equal(f->kicks, 1);
	/* The frontend resets the queue and restarts it past the bad chain. */
	struct vu_vring_state st = {0, 0};
	send_msg(f, VU_GET_VRING_BASE, 0, &st, sizeof(st), NULL, 0);
	step(f);
	recv_reply(f, VU_GET_VRING_BASE, &st, sizeof(st));
	assert_int_equal(st.num, 0);
	st.num = 1;
	assert_int_equal(acked(f, VU_SET_VRING_BASE, &st, sizeof(st), NULL, 0), 0);
	ring_fd(f, VU_SET_VRING_KICK, 0, f->kick);
	assert_false(f->dev.vd_queues[0].vq_failed);
	submit(f, 4, "fine");
	step(f);
	assert_int_equal(used(f)->idx, 1);
	assert_int_equal(used(f)->ring[0].id, 4);
}

static void test_mem_table_replaced(void **state)
{
	struct fx *f = *state;
	bring_up(f, BIT(VIRTIO_F_VERSION_1));
	/* Same memory, new table: the started ring is remapped and keeps its place. */
	submit(f, 0, "before");
	step(f);
	mem_table(f);
	submit(f, 2, "after");
	step(f);
	assert_int_equal(used(f)->idx, 2);
	assert_memory_equal(f->mem + BUF + 0x280, "after", 5);
	/* A table without the rings fails the started queue, not the connection. */
	struct vu_mem_table t = {.nregions = 1};
	t.regions[0] = (struct vu_mem_region){.gpa = 0, .size = 0x1000, .uva = UVA + 0x100000};
	int fd = dup(f->mem_fd);
	assert_int_equal(acked(f, VU_SET_MEM_TABLE, &t, 8 + 32, &fd, 1), 0);
	close(fd);
	assert_true(f->dev.vd_queues[0].vq_failed);
	assert_true(signalled(f->err));
}

static void mem_changing(struct vu_dev *d)
{
	fx_of(d)->mem_changes++;
}

/* Every device (no option needed) refuses a memfd that could shrink, and any fd that is not
 * a memfd, before telling the device anything; it takes one sealed against shrinking. */
static void test_sealed_memory(void **state)
{
	struct fx *f = *state;
	static struct vu_ops ops;
	ops = echo_ops;
	ops.vo_mem_changing = mem_changing;
	f->dev.vd_ops = &ops;
	struct vu_mem_table t = {.nregions = 1};
	t.regions[0] = (struct vu_mem_region){.gpa = 0, .size = MEMSZ, .uva = UVA};
	int fd = memfd_create("unsealed", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	assert_true(fd >= 0 && ftruncate(fd, MEMSZ) == 0);
	int dupfd = dup(fd);
	assert_int_equal(acked(f, VU_SET_MEM_TABLE, &t, 8 + 32, &dupfd, 1), 1); /* not yet */
	close(dupfd);
	assert_int_equal(f->dev.vd_mem.gm_nregions, 0);
	assert_int_equal(f->mem_changes, 0);
	/* a regular file on disk, or a device, is not guest memory */
	int other[2] = {open("/dev/zero", O_RDWR | O_CLOEXEC), open("/proc/self/exe", O_RDONLY)};
	for (int i = 0; i < 2; i++) {
		assert_true(other[i] >= 0);
		assert_int_equal(acked(f, VU_SET_MEM_TABLE, &t, 8 + 32, &other[i], 1), 1);
		close(other[i]);
	}
	assert_int_equal(f->mem_changes, 0);
	assert_int_equal(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK), 0);
	assert_int_equal(acked(f, VU_SET_MEM_TABLE, &t, 8 + 32, &fd, 1), 0);
	close(fd);
	assert_int_equal(f->dev.vd_mem.gm_nregions, 1);
	assert_int_equal(f->mem_changes, 1);
	/* a sealed memfd can no longer shrink under the card */
	assert_int_equal(ftruncate(f->mem_fd, MEMSZ / 2), -1);
}

static void queue_stopping(struct vu_dev *d, unsigned q)
{
	/* Still live: a device may complete its in-flight requests into the ring. */
	if (d->vd_queues[q].vq_started && vu_queue_push(d, q, 0, 0) == 0)
		fx_of(d)->stoppings_live++;
}

/* GET_VRING_BASE: vo_queue_stopping runs first, on a live queue (its push lands in the
 * used ring), then vo_queue_stop. */
static void test_queue_stopping(void **state)
{
	struct fx *f = *state;
	static struct vu_ops ops;
	ops = echo_ops;
	ops.vo_queue_stopping = queue_stopping;
	f->dev.vd_ops = &ops;
	bring_up(f, BIT(VIRTIO_F_VERSION_1));
	struct vu_vring_state st = {0, 0};
	send_msg(f, VU_GET_VRING_BASE, 0, &st, sizeof(st), NULL, 0);
	step(f);
	recv_reply(f, VU_GET_VRING_BASE, &st, sizeof(st));
	assert_int_equal(f->stoppings_live, 1);
	assert_int_equal(f->stops, 1);
	assert_int_equal(used(f)->idx, 1);
	assert_false(f->dev.vd_queues[0].vq_started);
}

static void test_reset_owner(void **state)
{
	struct fx *f = *state;
	bring_up(f, BIT(VIRTIO_F_VERSION_1) | BIT(VHOST_USER_F_PROTOCOL_FEATURES));
	submit(f, 0, "one");
	step(f);
	/* Deprecated: disables the rings, keeps the session (features, memory, call fd). */
	assert_int_equal(acked(f, VU_RESET_OWNER, NULL, 0, NULL, 0), 0);
	assert_false(f->dev.vd_queues[0].vq_started);
	assert_false(f->dev.vd_queues[0].vq_enabled);
	assert_true(f->dev.vd_queues[0].vq_call >= 0);
	assert_int_equal(f->dev.vd_mem.gm_nregions, 1);
	ring_fd(f, VU_SET_VRING_KICK, 0, f->kick);
	struct vu_vring_state en = {0, 1};
	assert_int_equal(acked(f, VU_SET_VRING_ENABLE, &en, sizeof(en), NULL, 0), 0);
	submit(f, 2, "two");
	step(f);
	assert_int_equal(used(f)->idx, 2);
}

static void test_need_reply_errors(void **state)
{
	struct fx *f = *state;
	uint64_t v;
	/* Unknown request, bad queue indices, bad sizes and addresses: ack 1, connection kept. */
	assert_int_equal(acked(f, 99, NULL, 0, NULL, 0), 1);
	assert_int_equal(acked(f, VU_SET_LOG_BASE, &v, 8, NULL, 0), 1);
	struct vu_vring_state st = {2, 64};
	assert_int_equal(acked(f, VU_SET_VRING_NUM, &st, sizeof(st), NULL, 0), 1);
	st = (struct vu_vring_state){0, 100};
	assert_int_equal(acked(f, VU_SET_VRING_NUM, &st, sizeof(st), NULL, 0), 1);
	st = (struct vu_vring_state){0, 512}; /* > the device's maximum */
	assert_int_equal(acked(f, VU_SET_VRING_NUM, &st, sizeof(st), NULL, 0), 1);
	st = (struct vu_vring_state){1, 0x10000};
	assert_int_equal(acked(f, VU_SET_VRING_BASE, &st, sizeof(st), NULL, 0), 1);
	st = (struct vu_vring_state){1, 2};
	assert_int_equal(acked(f, VU_SET_VRING_ENABLE, &st, sizeof(st), NULL, 0), 1);
	v = BIT(50);
	assert_int_equal(acked(f, VU_SET_FEATURES, &v, 8, NULL, 0), 1);
	assert_int_equal(acked(f, VU_SET_PROTOCOL_FEATURES, &v, 8, NULL, 0), 1);
	v = 300; /* queue index beyond 8 bits */
	assert_int_equal(acked(f, VU_SET_VRING_CALL, &v, 8, NULL, 0), 1);
	v = 1 | VU_VRING_NOFD;
	assert_int_equal(acked(f, VU_SET_VRING_CALL, &v, 8, NULL, 0), 0);
	v = 1; /* an fd is announced but not sent */
	assert_int_equal(acked(f, VU_SET_VRING_CALL, &v, 8, NULL, 0), 1);
	v = 5; /* queue 5 of 2 */
	int fd = eventfd(0, EFD_CLOEXEC);
	assert_int_equal(acked(f, VU_SET_VRING_KICK, &v, 8, &fd, 1), 1);
	close(fd);
	/* An fd with a message that takes none. */
	fd = eventfd(0, EFD_CLOEXEC);
	assert_int_equal(acked(f, VU_SET_OWNER, NULL, 0, &fd, 1), 1);
	close(fd);

	/* fd-less SET_MEM_TABLE, and one fd short. */
	struct vu_mem_table t = {.nregions = 2};
	t.regions[0] = (struct vu_mem_region){.gpa = 0, .size = 0x10000, .uva = UVA};
	t.regions[1] = (struct vu_mem_region){
	    .gpa = 0x10000, .size = 0x10000, .uva = UVA + 0x10000, .mmap_offset = 0x10000};
	assert_int_equal(acked(f, VU_SET_MEM_TABLE, &t, 8 + 64, NULL, 0), 1);
	fd = dup(f->mem_fd);
	assert_int_equal(acked(f, VU_SET_MEM_TABLE, &t, 8 + 64, &fd, 1), 1);
	close(fd);
	/* Overlapping regions. */
	t.regions[1].gpa = 0x8000;
	int fds[2] = {dup(f->mem_fd), dup(f->mem_fd)};
	assert_int_equal(acked(f, VU_SET_MEM_TABLE, &t, 8 + 64, fds, 2), 1);
	close(fds[0]);
	close(fds[1]);
	/* A region larger than its memfd (touching it would raise SIGBUS). */
	t.nregions = 1;
	t.regions[0].size = 2 * MEMSZ;
	fd = dup(f->mem_fd);
	assert_int_equal(acked(f, VU_SET_MEM_TABLE, &t, 8 + 32, &fd, 1), 1);
	close(fd);
	assert_int_equal(f->dev.vd_mem.gm_nregions, 0);

	/* Ring addresses outside guest memory, misaligned, or before a size is set. */
	mem_table(f);
	st = (struct vu_vring_state){1, QSZ};
	assert_int_equal(acked(f, VU_SET_VRING_NUM, &st, sizeof(st), NULL, 0), 0);
	struct vu_vring_addr a = {
	    .index = 1, .desc = UVA + DESC, .used = UVA + MEMSZ - 8, .avail = UVA + AVAIL};
	assert_int_equal(acked(f, VU_SET_VRING_ADDR, &a, sizeof(a), NULL, 0), 1);
	a.used = UVA + USED + 2;
	assert_int_equal(acked(f, VU_SET_VRING_ADDR, &a, sizeof(a), NULL, 0), 1);
	a.used = DESC; /* a guest-physical address, not a frontend one */
	assert_int_equal(acked(f, VU_SET_VRING_ADDR, &a, sizeof(a), NULL, 0), 1);
	a.used = UVA + USED;
	a.flags = 0x80;
	assert_int_equal(acked(f, VU_SET_VRING_ADDR, &a, sizeof(a), NULL, 0), 1);
	/* Kick before any address: cannot start. */
	v = 1;
	fd = eventfd(0, EFD_CLOEXEC);
	assert_int_equal(acked(f, VU_SET_VRING_KICK, &v, 8, &fd, 1), 1);
	close(fd);
	assert_false(f->dev.vd_queues[1].vq_started);
	/* Still alive. */
	assert_int_equal(call_u64(f, VU_GET_QUEUE_NUM), 2);
	assert_int_equal(f->disconnects, 0);
}

static void test_closes_unknown(void **state)
{
	struct fx *f = *state;
	send_msg(f, 99, 0, NULL, 0, NULL, 0);
	expect_closed(f);
}

static void test_closes_failed_no_reply(void **state)
{
	struct fx *f = *state;
	struct vu_vring_state st = {7, 64}; /* bad index, nobody to tell */
	send_msg(f, VU_SET_VRING_NUM, 0, &st, sizeof(st), NULL, 0);
	expect_closed(f);
}

static void test_closes_fdless_mem_table(void **state)
{
	struct fx *f = *state;
	struct vu_mem_table t = {.nregions = 1};
	t.regions[0] = (struct vu_mem_region){.gpa = 0, .size = MEMSZ, .uva = UVA};
	send_msg(f, VU_SET_MEM_TABLE, 0, &t, 8 + 32, NULL, 0);
	expect_closed(f);
}

static void test_closes_bad_get_vring_base(void **state)
{
	struct fx *f = *state;
	struct vu_vring_state st = {2, 0};
	send_msg(f, VU_GET_VRING_BASE, 0, &st, sizeof(st), NULL, 0);
	expect_closed(f);
}

static void test_closes_wrong_size(void **state)
{
	struct fx *f = *state;
	uint32_t four = 64;
	send_msg(f, VU_SET_VRING_NUM, VU_FLAG_NEED_REPLY, &four, 4, NULL, 0);
	expect_closed(f);
}

static void test_closes_oversized(void **state)
{
	struct fx *f = *state;
	static uint8_t big[VU_PAYLOAD_MAX + 1];
	send_raw(f, VU_SET_CONFIG, VU_FLAG_VERSION, sizeof(big), big, 64, NULL, 0);
	expect_closed(f);
}

static void test_closes_bad_version(void **state)
{
	struct fx *f = *state;
	send_raw(f, VU_SET_OWNER, 2, 0, NULL, 0, NULL, 0);
	expect_closed(f);
}

static void test_closes_reply_flag(void **state)
{
	struct fx *f = *state;
	send_raw(f, VU_SET_OWNER, VU_FLAG_VERSION | VU_FLAG_REPLY, 0, NULL, 0, NULL, 0);
	expect_closed(f);
}

static void test_closes_too_many_fds(void **state)
{
	struct fx *f = *state;
	int fds[VU_MAX_FDS + 1];
	for (unsigned i = 0; i < ARRAY_SIZE(fds); i++)
		fds[i] = eventfd(0, EFD_CLOEXEC);
	struct vu_mem_table t = {.nregions = 1};
	send_msg(f, VU_SET_MEM_TABLE, 0, &t, 8 + 32, fds, ARRAY_SIZE(fds));
	for (unsigned i = 0; i < ARRAY_SIZE(fds); i++)
		close(fds[i]);
	expect_closed(f); /* and teardown checks that none of the 9 leaked */
}

static void test_truncated_header(void **state)
{
	struct fx *f = *state;
	uint8_t part[6] = {1, 0, 0, 0, 1, 0};
	assert_int_equal(send(f->fe, part, sizeof(part), 0), 6);
	shutdown(f->fe, SHUT_WR);
	expect_closed(f);
}

static void test_dies_mid_payload(void **state)
{
	struct fx *f = *state;
	int fd = dup(f->mem_fd);
	uint8_t part[20] = {0};
	/* SET_MEM_TABLE announcing 40 bytes, 20 sent with an fd, then the frontend dies. */
	send_raw(f, VU_SET_MEM_TABLE, VU_FLAG_VERSION, 40, part, sizeof(part), &fd, 1);
	close(fd);
	close(f->fe);
	f->fe = -1;
	step(f);
	assert_int_equal(f->dev.vd_fd, -1);
	assert_int_equal(f->disconnects, 1);
}

static void test_dies_after_setup(void **state)
{
	struct fx *f = *state;
	bring_up(f, BIT(VIRTIO_F_VERSION_1));
	/* Half a message, then death: every queue, fd and mapping goes. */
	uint8_t part[3] = {8, 0, 0};
	assert_int_equal(send(f->fe, part, sizeof(part), 0), 3);
	close(f->fe);
	f->fe = -1;
	step(f);
	assert_int_equal(f->dev.vd_fd, -1);
	assert_false(f->dev.vd_queues[0].vq_started);
	assert_int_equal(f->dev.vd_queues[0].vq_kick, -1);
	assert_int_equal(f->dev.vd_queues[0].vq_call, -1);
	assert_int_equal(f->dev.vd_mem.gm_nregions, 0);
	assert_int_equal(f->stops, 1);
}

static void test_parse(void **state)
{
	(void)state;
	struct vu_msg m;
	char err[256];
	uint8_t b[VU_HDR_SIZE + 64] = {0};
	uint32_t h[3];
#define HDR(req, flags, size) (h[0] = (req), h[1] = (flags), h[2] = (size), memcpy(b, h, sizeof(h)))
	HDR(VU_GET_FEATURES, 1, 0);
	assert_int_equal(vu_parse(b, VU_HDR_SIZE, &m, err, sizeof(err)), 0);
	assert_int_equal(m.vm_request, VU_GET_FEATURES);
	assert_int_equal(vu_parse(b, VU_HDR_SIZE - 1, &m, err, sizeof(err)), -EINVAL);
	assert_int_equal(vu_parse(b, VU_HDR_SIZE + 1, &m, err, sizeof(err)), -EINVAL);
	HDR(VU_SET_FEATURES, 1, 8);
	assert_int_equal(vu_parse(b, VU_HDR_SIZE + 8, &m, err, sizeof(err)), 0);
	HDR(VU_SET_FEATURES, 1, 4);
	assert_int_equal(vu_parse(b, VU_HDR_SIZE + 4, &m, err, sizeof(err)), -EINVAL);
	HDR(VU_SET_FEATURES, 1, 0xffffffff);
	assert_int_equal(vu_parse(b, VU_HDR_SIZE + 8, &m, err, sizeof(err)), -EMSGSIZE);
	HDR(77, 1, 0);
	assert_int_equal(vu_parse(b, VU_HDR_SIZE, &m, err, sizeof(err)), -ENOSYS);
	HDR(0, 1, 0);
	assert_int_equal(vu_parse(b, VU_HDR_SIZE, &m, err, sizeof(err)), -ENOSYS);
	HDR(VU_SET_OWNER, 0, 0);
	assert_int_equal(vu_parse(b, VU_HDR_SIZE, &m, err, sizeof(err)), -EINVAL);
	/* SET_MEM_TABLE: region count and size must agree. */
	uint32_t n = 1;
	memcpy(b + VU_HDR_SIZE, &n, 4);
	HDR(VU_SET_MEM_TABLE, 1, 40);
	assert_int_equal(vu_parse(b, VU_HDR_SIZE + 40, &m, err, sizeof(err)), 0);
	HDR(VU_SET_MEM_TABLE, 1, 8);
	assert_int_equal(vu_parse(b, VU_HDR_SIZE + 8, &m, err, sizeof(err)), -EINVAL);
	n = 9;
	memcpy(b + VU_HDR_SIZE, &n, 4);
	assert_int_equal(vu_parse(b, VU_HDR_SIZE + 8, &m, err, sizeof(err)), -EINVAL);
	/* Config: size field and payload must agree. */
	uint32_t cfg[3] = {0, 4, 0};
	memcpy(b + VU_HDR_SIZE, cfg, sizeof(cfg));
	HDR(VU_GET_CONFIG, 1, 16);
	assert_int_equal(vu_parse(b, VU_HDR_SIZE + 16, &m, err, sizeof(err)), 0);
	HDR(VU_GET_CONFIG, 1, 15);
	assert_int_equal(vu_parse(b, VU_HDR_SIZE + 15, &m, err, sizeof(err)), -EINVAL);
	cfg[1] = 0xfffffff0;
	memcpy(b + VU_HDR_SIZE, cfg, sizeof(cfg));
	HDR(VU_GET_CONFIG, 1, 12);
	assert_int_equal(vu_parse(b, VU_HDR_SIZE + 12, &m, err, sizeof(err)), -EINVAL);
#undef HDR
}

static void test_loop_signal(void **state)
{
	(void)state;
	char err[256];
	struct loop l;
	sigset_t old;
	sigprocmask(SIG_BLOCK, NULL, &old);
	assert_int_equal(loop_init(&l, true, err, sizeof(err)), 0);
	raise(SIGTERM);
	assert_int_equal(loop_run(&l), 0);
	assert_int_equal(l.lp_signal, SIGTERM);
	loop_fini(&l);
	sigprocmask(SIG_SETMASK, &old, NULL);
}

static unsigned cb_calls;

/* Deletes the watch of the fd in opaque. */
static void del_other(struct loop *l, int fd, uint32_t events, void *opaque)
{
	(void)fd, (void)events;
	cb_calls++;
	loop_del(l, *(int *)opaque);
}

static void test_loop_delete_in_callback(void **state)
{
	(void)state;
	char err[256];
	struct loop l;
	int a = eventfd(1, EFD_CLOEXEC), b = eventfd(1, EFD_CLOEXEC);
	assert_int_equal(loop_init(&l, false, err, sizeof(err)), 0);
	assert_int_equal(loop_add(&l, a, del_other, &b, err, sizeof(err)), 0);
	assert_int_equal(loop_add(&l, b, del_other, &a, err, sizeof(err)), 0);
	assert_int_equal(loop_add(&l, b, del_other, &a, err, sizeof(err)), -EEXIST);
	/* Both are ready in one batch; whichever runs first deletes the other. */
	assert_int_equal(loop_run_once(&l, 100), 2);
	assert_int_equal(cb_calls, 1);
	assert_true(loop_watching(&l, a) != loop_watching(&l, b));
	loop_fini(&l);
	close(a);
	close(b);
}

static void test_backend_opts(void **state)
{
	(void)state;
	char err[256];
	struct backend_opts o;
	char *argv[] = {"card",
			"--socket-path=/run/x.sock",
			"--other",
			"--fd",
			"7",
			"--print-capabilities",
			"--fd",
			"-3",
			"--socket-path",
			"--fd=",
			"--fdx=1"};
	int argc = ARRAY_SIZE(argv), i;
	backend_opts_init(&o);
	assert_int_equal(backend_check_opts(&o, err, sizeof(err)), -EINVAL); /* neither */
	i = 1;
	assert_int_equal(backend_parse_opt(&o, argc, argv, &i, err, sizeof(err)), 1);
	assert_string_equal(o.bo_socket_path, "/run/x.sock");
	assert_int_equal(backend_check_opts(&o, err, sizeof(err)), 0);
	i = 2;
	assert_int_equal(backend_parse_opt(&o, argc, argv, &i, err, sizeof(err)), 0);
	i = 3;
	assert_int_equal(backend_parse_opt(&o, argc, argv, &i, err, sizeof(err)), 1);
	assert_int_equal(i, 4); /* consumed the separate value */
	assert_int_equal(o.bo_fd, 7);
	assert_int_equal(backend_check_opts(&o, err, sizeof(err)), -EINVAL); /* both */
	i = 5;
	assert_int_equal(backend_parse_opt(&o, argc, argv, &i, err, sizeof(err)), 1);
	assert_true(o.bo_print_caps);
	assert_int_equal(backend_check_opts(&o, err, sizeof(err)), 0); /* others ignored */
	i = 6;
	assert_int_equal(backend_parse_opt(&o, argc, argv, &i, err, sizeof(err)), -EINVAL);
	i = 8; /* --socket-path as the last argument, without its value */
	assert_int_equal(backend_parse_opt(&o, 9, argv, &i, err, sizeof(err)), -EINVAL);
	i = 9;
	assert_int_equal(backend_parse_opt(&o, argc, argv, &i, err, sizeof(err)), -EINVAL);
	i = 10;
	assert_int_equal(backend_parse_opt(&o, argc, argv, &i, err, sizeof(err)), 0);
	char longp[200];
	memset(longp, 'a', sizeof(longp) - 1);
	longp[sizeof(longp) - 1] = 0;
	char *argv2[] = {"--socket-path", longp};
	i = 0;
	assert_int_equal(backend_parse_opt(&o, 2, argv2, &i, err, sizeof(err)), -ENAMETOOLONG);
}

static void test_backend_capabilities(void **state)
{
	(void)state;
	char *buf;
	size_t len;
	FILE *f = open_memstream(&buf, &len);
	const char *const feats[] = {"read-only", "q\"x", NULL};
	backend_print_capabilities(f, "block", feats);
	backend_print_capabilities(f, "net", NULL);
	fclose(f);
	assert_string_equal(buf, "{\n  \"type\": \"block\",\n  \"features\": [\n    "
				 "\"read-only\",\n    \"q\\\"x\"\n  ]\n}\n"
				 "{\n  \"type\": \"net\",\n  \"features\": []\n}\n");
	free(buf);
}

struct bfx {
	struct loop loop;
	struct vu_dev dev;
	struct backend be;
	int fds_before;
};

static void backend_fixture(struct bfx *b)
{
	char err[256];
	b->fds_before = count_fds();
	assert_int_equal(loop_init(&b->loop, false, err, sizeof(err)), 0);
	static const struct vu_ops ops = {.vo_num_queues = 3};
	assert_int_equal(vu_dev_init(&b->dev, &ops, NULL, &b->loop, err, sizeof(err)), 0);
}

static void backend_done(struct bfx *b)
{
	backend_stop(&b->be);
	vu_dev_fini(&b->dev);
	loop_fini(&b->loop);
	assert_int_equal(count_fds(), b->fds_before);
}

/* GET_QUEUE_NUM over fd answers 3. */
static void ask_queue_num(struct bfx *b, int fd)
{
	uint32_t hdr[3] = {VU_GET_QUEUE_NUM, VU_FLAG_VERSION, 0};
	assert_int_equal(send(fd, hdr, sizeof(hdr), MSG_NOSIGNAL), sizeof(hdr));
	assert_true(loop_run_once(&b->loop, 2000) >= 1);
	uint8_t r[20];
	assert_int_equal(recv(fd, r, sizeof(r), MSG_WAITALL), sizeof(r));
	uint64_t n;
	memcpy(&n, r + 12, 8);
	assert_int_equal(n, 3);
}

static void test_backend_socket_path(void **state)
{
	(void)state;
	char err[256], dir[] = "/tmp/nitro-test-XXXXXX", path[64];
	struct bfx b;
	struct backend_opts o;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/card.sock", dir);
	backend_fixture(&b);
	backend_opts_init(&o);
	o.bo_socket_path = path;

	/* A regular file in the way is not removed. */
	int reg = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	close(reg);
	assert_int_equal(backend_start(&b.be, &b.dev, &b.loop, &o, err, sizeof(err)), -EEXIST);
	unlink(path);

	assert_int_equal(backend_start(&b.be, &b.dev, &b.loop, &o, err, sizeof(err)), 0);
	int c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	assert_int_equal(connect(c, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_true(loop_run_once(&b.loop, 2000) >= 1); /* accepted */
	struct stat st;
	assert_int_equal(lstat(path, &st), -1); /* no second frontend */
	assert_true(b.dev.vd_fd >= 0);
	ask_queue_num(&b, c);
	close(c);
	assert_true(loop_run_once(&b.loop, 2000) >= 1);
	assert_true(b.loop.lp_stop); /* the frontend left: the card ends */
	backend_done(&b);

	/* A stale socket from an earlier run is replaced. */
	backend_fixture(&b);
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(s);
	assert_int_equal(backend_start(&b.be, &b.dev, &b.loop, &o, err, sizeof(err)), 0);
	backend_done(&b);
	assert_int_equal(lstat(path, &st), -1);
	rmdir(dir);
}

static void test_backend_fd(void **state)
{
	(void)state;
	char err[256];
	struct bfx b;
	struct backend_opts o;
	int sv[2], p[2];
	backend_fixture(&b);
	backend_opts_init(&o);
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	o.bo_fd = p[0]; /* not a socket */
	assert_int_equal(backend_start(&b.be, &b.dev, &b.loop, &o, err, sizeof(err)), -ENOTSOCK);
	close(p[0]);
	close(p[1]);
	o.bo_fd = 1000; /* not open */
	assert_int_equal(backend_start(&b.be, &b.dev, &b.loop, &o, err, sizeof(err)), -EBADF);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	o.bo_fd = sv[1];
	assert_int_equal(backend_start(&b.be, &b.dev, &b.loop, &o, err, sizeof(err)), 0);
	ask_queue_num(&b, sv[0]);
	close(sv[0]);
	backend_done(&b); /* closes sv[1] */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse),
	    cmocka_unit_test_setup_teardown(test_echo, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_event_idx, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_hostile_chain, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_mem_table_replaced, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reset_owner, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_need_reply_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_closes_unknown, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_closes_failed_no_reply, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_closes_fdless_mem_table, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_closes_bad_get_vring_base, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_closes_wrong_size, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_closes_oversized, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_closes_bad_version, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_closes_reply_flag, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_closes_too_many_fds, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_truncated_header, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dies_mid_payload, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dies_after_setup, setup, teardown),
	    cmocka_unit_test(test_backend_opts),
	    cmocka_unit_test_setup_teardown(test_sealed_memory, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_queue_stopping, setup, teardown),
	    cmocka_unit_test(test_backend_capabilities),
	    cmocka_unit_test(test_backend_socket_path),
	    cmocka_unit_test(test_backend_fd),
	    cmocka_unit_test(test_loop_signal),
	    cmocka_unit_test(test_loop_delete_in_callback),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
