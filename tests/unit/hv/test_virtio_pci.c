/* Unit tests for the virtio-pci modern transport (src/hv/virtio_pci.c) and its vhost-user
 * frontend (src/hv/vhost_front.c), without KVM: a fake vhost-user card runs in a thread
 * on a unix socket and records what it is sent; the struct vm is built by hand (MMIO bus,
 * route lock, 64 MiB of guest memory, vm_fd -1). Covered: the negotiation with the card,
 * the PCI config space (ids, class, the virtio vendor capabilities, MSI-X), the common
 * configuration through BAR 0 (feature filtering, queue sizes, driver features,
 * FEATURES_OK without VERSION_1, reset), device config reads and writes, the MSI-X
 * table, and DRIVER_OK failing on the missing KVM (NEEDS_RESET, no crash).
 *
 * The test_bug_* cases pin down bugs found and fixed here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_pci.h>
#include <linux/virtio_ring.h>

#include "boot/memory.h"
#include "hv/mmio.h"
#include "hv/pci.h"
#include "hv/vhost_front.h"
#include "hv/virtio_pci.h"
#include "hv/vm.h"
#include "lib/le.h"

#define BIT(n) (1ull << (n))
#define MEM_SIZE (64ull << 20)
/* What the fake card offers: VERSION_1, PROTOCOL_FEATURES, BLK_SIZE, FLUSH, INDIRECT,
 * EVENT_IDX, and two the transport must hide (ACCESS_PLATFORM, RING_PACKED). */
#define SHOWN_FEATURES                                                                             \
	(BIT(VIRTIO_F_VERSION_1) | BIT(VIRTIO_BLK_F_BLK_SIZE) | BIT(VIRTIO_BLK_F_FLUSH) |          \
	 BIT(VIRTIO_RING_F_INDIRECT_DESC) | BIT(VIRTIO_RING_F_EVENT_IDX))
#define CARD_FEATURES                                                                              \
	(SHOWN_FEATURES | BIT(VHOST_USER_F_PROTOCOL_FEATURES) | BIT(VIRTIO_F_ACCESS_PLATFORM) |    \
	 BIT(VIRTIO_F_RING_PACKED))
/* CONFIG | REPLY_ACK | MQ, plus LOG_SHMFD (1) and PAGEFAULT (8) the frontend must drop. */
#define CARD_PROTOCOL                                                                              \
	(VHOST_PROTO_CONFIG | VHOST_PROTO_REPLY_ACK | VHOST_PROTO_MQ | BIT(1) | BIT(8))
#define CAPACITY 0x0000000123456789ull

/* BAR 0 layout (virtio_pci.h) */
#define OFF_COMMON 0x0000
#define OFF_ISR 0x1000
#define OFF_DEVICE 0x2000
#define OFF_NOTIFY 0x3000
#define OFF_MSIX 0x4000
#define OFF_PBA 0x5000

/* common config */
#define C_DFSELECT VIRTIO_PCI_COMMON_DFSELECT
#define C_DF VIRTIO_PCI_COMMON_DF
#define C_GFSELECT VIRTIO_PCI_COMMON_GFSELECT
#define C_GF VIRTIO_PCI_COMMON_GF
#define C_MSIX VIRTIO_PCI_COMMON_MSIX
#define C_NUMQ VIRTIO_PCI_COMMON_NUMQ
#define C_STATUS VIRTIO_PCI_COMMON_STATUS
#define C_CFGGEN VIRTIO_PCI_COMMON_CFGGENERATION
#define C_QSEL VIRTIO_PCI_COMMON_Q_SELECT
#define C_QSIZE VIRTIO_PCI_COMMON_Q_SIZE
#define C_QMSIX VIRTIO_PCI_COMMON_Q_MSIX
#define C_QENABLE VIRTIO_PCI_COMMON_Q_ENABLE
#define C_QNOTIFY VIRTIO_PCI_COMMON_Q_NOFF
#define C_QDESC VIRTIO_PCI_COMMON_Q_DESCLO
#define C_QDRIVER VIRTIO_PCI_COMMON_Q_AVAILLO
#define C_QDEVICE VIRTIO_PCI_COMMON_Q_USEDLO

#define S_ACK VIRTIO_CONFIG_S_ACKNOWLEDGE
#define S_DRIVER VIRTIO_CONFIG_S_DRIVER
#define S_DRIVER_OK VIRTIO_CONFIG_S_DRIVER_OK
#define S_FEATURES_OK VIRTIO_CONFIG_S_FEATURES_OK
#define S_NEEDS_RESET VIRTIO_CONFIG_S_NEEDS_RESET

#define VU_MAX_REQ VU_REQUEST_MAX /* request numbers: lib/vhost_user_wire.h */

struct card {
	int listen_fd;
	int fd;
	pthread_t thread;
	char path[108];
	uint64_t queues;
	pthread_mutex_t lock;
	/* what it got */
	unsigned count[VU_MAX_REQ];
	unsigned unexpected;
	uint32_t last_flags[VU_MAX_REQ];
	uint64_t proto_set;
	uint64_t features_set;
	uint32_t mem_nregions;
	uint64_t mem_gpa, mem_size;
	int mem_fds;
	uint32_t get_config_size;
	uint32_t set_config_off, set_config_size;
	uint8_t set_config_data[16];
	uint8_t config[60];
	/* restarts: after the connection ends, accept this many more (a restarted card),
	 * answering GET_QUEUE_NUM with queues_after */
	int restarts;
	uint64_t queues_after;
	unsigned connections;
};

struct fx {
	struct card card;
	struct vm *vm;
	struct pci_bus bus;
	struct virtio_pci vp;
	uint64_t bar;
	bool created;
};

/* ---- the fake card ---- */

static int read_full(int fd, void *p, size_t n)
{
	while (n) {
		ssize_t r = recv(fd, p, n, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		p = (uint8_t *)p + r;
		n -= (size_t)r;
	}
	return 0;
}

static void reply(int fd, uint32_t req, const void *p, uint32_t size)
{
	uint8_t buf[12 + 512];
	le32_put(buf, req);
	le32_put(buf + 4, 0x1 | 0x4);
	le32_put(buf + 8, size);
	memcpy(buf + 12, p, size);
	if (send(fd, buf, 12 + size, MSG_NOSIGNAL) != (ssize_t)(12 + size))
		fprintf(stderr, "fake card: short send\n");
}

static void reply_u64(int fd, uint32_t req, uint64_t v)
{
	uint8_t b[8];
	le64_put(b, v);
	reply(fd, req, b, 8);
}

static void serve(struct card *c);

static void *card_main(void *arg)
{
	struct card *c = arg;
	for (;;) {
		int fd = accept(c->listen_fd, NULL, NULL);
		pthread_mutex_lock(&c->lock);
		if (c->fd >= 0)
			close(c->fd);
		c->fd = fd;
		if (fd >= 0)
			c->connections++;
		pthread_mutex_unlock(&c->lock);
		if (fd < 0)
			return NULL;
		serve(c);
		pthread_mutex_lock(&c->lock);
		bool again = c->restarts > 0;
		if (again) {
			c->restarts--;
			c->queues = c->queues_after;
		}
		pthread_mutex_unlock(&c->lock);
		if (!again)
			return NULL;
	}
}

static void serve(struct card *c)
{
	for (;;) {
		uint8_t hdr[12];
		char ctl[CMSG_SPACE(sizeof(int) * 8)];
		struct iovec iov = {hdr, sizeof(hdr)};
		struct msghdr mh = {.msg_iov = &iov,
				    .msg_iovlen = 1,
				    .msg_control = ctl,
				    .msg_controllen = sizeof(ctl)};
		ssize_t n = recvmsg(c->fd, &mh, MSG_WAITALL);
		if (n != (ssize_t)sizeof(hdr))
			break;
		int nfds = 0;
		for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
			if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
				int fds[8];
				unsigned k = (unsigned)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
				memcpy(fds, CMSG_DATA(cm), k * sizeof(int));
				for (unsigned i = 0; i < k; i++)
					close(fds[i]);
				nfds += (int)k;
			}
		uint32_t req = le32_get(hdr), flags = le32_get(hdr + 4), size = le32_get(hdr + 8);
		uint8_t p[512] = {0};
		if (size > sizeof(p) || read_full(c->fd, p, size) < 0)
			break;
		bool need_reply = flags & 0x8;
		pthread_mutex_lock(&c->lock);
		if (req < VU_MAX_REQ) {
			c->count[req]++;
			c->last_flags[req] = flags;
		}
		if ((flags & 0x3) != 1)
			c->unexpected++;
		switch (req) {
		case VU_SET_OWNER:
			break;
		case VU_GET_FEATURES:
			reply_u64(c->fd, req, CARD_FEATURES);
			need_reply = false;
			break;
		case VU_GET_PROTOCOL_FEATURES:
			reply_u64(c->fd, req, CARD_PROTOCOL);
			need_reply = false;
			break;
		case VU_SET_PROTOCOL_FEATURES:
			c->proto_set = le64_get(p);
			break;
		case VU_GET_QUEUE_NUM:
			reply_u64(c->fd, req, c->queues);
			need_reply = false;
			break;
		case VU_GET_CONFIG: {
			uint32_t off = le32_get(p), sz = le32_get(p + 4);
			c->get_config_size = sz;
			if (off + sz <= sizeof(c->config))
				memcpy(p + 12, c->config + off, sz);
			reply(c->fd, req, p, size);
			need_reply = false;
			break;
		}
		case VU_SET_MEM_TABLE:
			c->mem_nregions = le32_get(p);
			c->mem_gpa = le64_get(p + 8);
			c->mem_size = le64_get(p + 16);
			c->mem_fds = nfds;
			break;
		case VU_SET_FEATURES:
			c->features_set = le64_get(p);
			break;
		case VU_SET_CONFIG:
			c->set_config_off = le32_get(p);
			c->set_config_size = le32_get(p + 4);
			memcpy(c->set_config_data, p + 12,
			       c->set_config_size < 16 ? c->set_config_size : 16);
			break;
		case VU_GET_VRING_BASE:
			reply(c->fd, req, p, 8);
			need_reply = false;
			break;
		default:
			break;
		}
		if (need_reply)
			reply_u64(c->fd, req, 0);
		pthread_mutex_unlock(&c->lock);
	}
}

static int card_start(struct card *c, uint64_t queues)
{
	memset(c, 0, sizeof(*c));
	pthread_mutex_init(&c->lock, NULL);
	c->fd = -1;
	c->queues = queues;
	le64_put(c->config, CAPACITY);
	le32_put(c->config + 20, 4096); /* blk_size */
	for (unsigned i = 24; i < sizeof(c->config); i++)
		c->config[i] = (uint8_t)i;
	snprintf(c->path, sizeof(c->path), "/tmp/nitro-test-vp-%d-%p.sock", getpid(), (void *)c);
	unlink(c->path);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", c->path);
	c->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->listen_fd < 0 || bind(c->listen_fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    listen(c->listen_fd, 1) < 0)
		return -1;
	return pthread_create(&c->thread, NULL, card_main, c) == 0 ? 0 : -1;
}

/* ---- fixture ---- */

static int fx_make(void **state, uint64_t queues)
{
	struct fx *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	*state = f;
	f->vm = calloc(1, sizeof(*f->vm));
	if (!f->vm)
		return -1;
	f->vm->vm_fd = -1;
	f->vm->vm_kvm_fd = -1;
	mmio_init(&f->vm->vm_mmio);
	pthread_mutex_init(&f->vm->vm_route_lock, NULL);
	if (mem_create(&f->vm->vm_mem, MEM_SIZE) != 0)
		return -1;
	if (pci_init(&f->bus, &f->vm->vm_mmio) != 0)
		return -1;
	if (card_start(&f->card, queues) < 0)
		return -1;
	char err[256] = "";
	struct vhost_open o = {.path = f->card.path, .fd = -1};
	if (virtio_pci_create(&f->vp, f->vm, &f->bus, VIRTIO_ID_BLOCK, &o, err, sizeof(err)) != 0) {
		fprintf(stderr, "virtio_pci_create: %s\n", err);
		return -1;
	}
	f->created = true;
	return 0;
}

static int setup(void **state)
{
	return fx_make(state, 2);
}

static int setup16(void **state)
{
	return fx_make(state, 100); /* capped at VP_MAX_QUEUES */
}

static int teardown(void **state)
{
	struct fx *f = *state;
	if (!f)
		return 0;
	if (f->created) {
		virtio_pci_destroy(&f->vp); /* the card sees EOF and ends */
	} else if (f->card.listen_fd > 0) {
		shutdown(f->card.listen_fd, SHUT_RDWR);
	}
	if (f->card.path[0]) {
		pthread_join(f->card.thread, NULL);
		if (f->card.fd >= 0)
			close(f->card.fd);
		close(f->card.listen_fd);
		unlink(f->card.path);
	}
	if (f->vm) {
		mem_destroy(&f->vm->vm_mem);
		free(f->vm);
	}
	free(f);
	return 0;
}

/* ---- access helpers ---- */

static uint32_t cfg_rd(struct fx *f, unsigned reg, unsigned size)
{
	uint8_t d[4] = {0};
	pci_ecam_access(&f->bus, (uint64_t)f->vp.vp_pci.pd_slot << 15 | reg, d, size, false);
	uint32_t v = 0;
	for (unsigned i = 0; i < size; i++)
		v |= (uint32_t)d[i] << (8 * i);
	return v;
}

static void cfg_wr(struct fx *f, unsigned reg, unsigned size, uint32_t v)
{
	uint8_t d[4];
	le32_put(d, v);
	pci_ecam_access(&f->bus, (uint64_t)f->vp.vp_pci.pd_slot << 15 | reg, d, size, true);
}

/* Turns on memory decoding, as firmware or the guest's PCI core would. */
static void enable_bar(struct fx *f)
{
	cfg_wr(f, PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	f->bar = (cfg_rd(f, PCI_BAR0, 4) & ~0xfull) | (uint64_t)cfg_rd(f, PCI_BAR0 + 4, 4) << 32;
	assert_int_not_equal(f->bar, 0);
	assert_int_equal(f->vp.vp_bar, f->bar); /* told through bar_moved */
}

static uint64_t rd(struct fx *f, uint64_t off, unsigned size)
{
	uint8_t d[8] = {0};
	assert_true(mmio_access(&f->vm->vm_mmio, f->bar + off, d, size, false));
	uint64_t v = 0;
	memcpy(&v, d, size);
	return v;
}

static void wr(struct fx *f, uint64_t off, unsigned size, uint64_t v)
{
	uint8_t d[8];
	le64_put(d, v);
	assert_true(mmio_access(&f->vm->vm_mmio, f->bar + off, d, size, true));
}

static uint64_t device_features(struct fx *f)
{
	wr(f, C_DFSELECT, 4, 0);
	uint64_t lo = rd(f, C_DF, 4);
	wr(f, C_DFSELECT, 4, 1);
	return lo | rd(f, C_DF, 4) << 32;
}

static void driver_features(struct fx *f, uint64_t v)
{
	wr(f, C_GFSELECT, 4, 0);
	wr(f, C_GF, 4, (uint32_t)v);
	wr(f, C_GFSELECT, 4, 1);
	wr(f, C_GF, 4, v >> 32);
}

static uint64_t driver_features_rd(struct fx *f)
{
	wr(f, C_GFSELECT, 4, 0);
	uint64_t lo = rd(f, C_GF, 4);
	wr(f, C_GFSELECT, 4, 1);
	return lo | rd(f, C_GF, 4) << 32;
}

/* ---- tests ---- */

static void test_negotiation(void **state)
{
	struct fx *f = *state;
	struct card *c = &f->card;
	pthread_mutex_lock(&c->lock);
	assert_int_equal(c->count[VU_SET_OWNER], 1);
	assert_int_equal(c->count[VU_GET_FEATURES], 1);
	assert_int_equal(c->count[VU_GET_PROTOCOL_FEATURES], 1);
	assert_int_equal(c->count[VU_SET_PROTOCOL_FEATURES], 1);
	/* Only what the frontend knows. */
	assert_int_equal(c->proto_set, VHOST_PROTO_CONFIG | VHOST_PROTO_REPLY_ACK | VHOST_PROTO_MQ);
	assert_int_equal(c->count[VU_GET_QUEUE_NUM], 1);
	assert_int_equal(c->count[VU_GET_CONFIG], 1);
	assert_int_equal(c->get_config_size, 60);
	assert_int_equal(c->count[VU_SET_MEM_TABLE], 1);
	assert_true(c->last_flags[VU_SET_MEM_TABLE] & 0x8); /* REPLY_ACK on */
	assert_int_equal(c->mem_nregions, 1);
	assert_int_equal(c->mem_gpa, 0);
	assert_int_equal(c->mem_size, MEM_SIZE);
	assert_int_equal(c->mem_fds, 1);
	/* Nothing started before DRIVER_OK. */
	assert_int_equal(c->count[VU_SET_FEATURES], 0);
	assert_int_equal(c->unexpected, 0);
	pthread_mutex_unlock(&c->lock);

	assert_int_equal(f->vp.vp_card.vf_features, CARD_FEATURES & ~BIT(30));
	assert_int_equal(f->vp.vp_nqueues, 2);
	assert_int_equal(memcmp(f->vp.vp_card.vf_config, c->config, 60), 0);
	/* One MSI route per queue, from the bookkeeping only. */
	assert_int_equal(f->vm->vm_msi_next, 2);
	assert_int_equal(f->vp.vp_q[0].vq_gsi, VM_GSI_FIRST_MSI);
	assert_int_equal(f->vp.vp_q[1].vq_gsi, VM_GSI_FIRST_MSI + 1);
	assert_true(f->vp.vp_q[0].vq_kick >= 0 && f->vp.vp_q[0].vq_call >= 0);
	assert_ptr_equal(f->bus.pb_devs[0], &f->vp.vp_pci);
}

static void test_create_no_card(void **state)
{
	(void)state;
	struct vm *vm = calloc(1, sizeof(*vm));
	assert_non_null(vm);
	vm->vm_fd = -1;
	mmio_init(&vm->vm_mmio);
	pthread_mutex_init(&vm->vm_route_lock, NULL);
	mem_layout(&vm->vm_mem, MEM_SIZE);
	struct pci_bus bus;
	assert_int_equal(pci_init(&bus, &vm->vm_mmio), 0);
	static struct virtio_pci vp;
	char err[256] = "";
	struct vhost_open o = {.path = "/nonexistent/nitro-card.sock", .fd = -1};
	assert_int_equal(virtio_pci_create(&vp, vm, &bus, VIRTIO_ID_BLOCK, &o, err, sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "/nonexistent/nitro-card.sock"));
	assert_null(bus.pb_devs[0]);
	assert_int_equal(vm->vm_msi_next, 0);
	if (vp.vp_card.vf_sock > 0)
		close(vp.vp_card.vf_sock);
	free(vm);
}

struct vcap {
	unsigned off, type, bar, len;
	uint32_t offset, length, mult;
};

static void test_config_space(void **state)
{
	struct fx *f = *state;
	assert_int_equal(cfg_rd(f, PCI_VENDOR_ID, 2), 0x1af4);
	assert_int_equal(cfg_rd(f, PCI_DEVICE_ID, 2), 0x1042);
	assert_int_equal(cfg_rd(f, 0x08, 4) >> 8, 0x010000);
	assert_int_equal(cfg_rd(f, PCI_REVISION, 1), 1); /* >= 1 for modern-only */
	assert_int_equal(cfg_rd(f, PCI_SUBSYS_VENDOR, 2), 0x1af4);
	assert_int_equal(cfg_rd(f, PCI_SUBSYS_ID, 2), 0x42);
	assert_true(cfg_rd(f, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST);
	/* BAR 0: 64-bit memory, 32 KiB. */
	uint32_t lo = cfg_rd(f, PCI_BAR0, 4);
	assert_int_equal(lo & 0xf, 0x4);
	cfg_wr(f, PCI_BAR0, 4, 0xffffffff);
	assert_int_equal(cfg_rd(f, PCI_BAR0, 4), 0xffff8004);
	cfg_wr(f, PCI_BAR0, 4, lo);

	struct vcap vc[8];
	unsigned nv = 0, msix = 0, n = 0;
	for (unsigned p = cfg_rd(f, PCI_CAP_PTR, 1); p; p = cfg_rd(f, p + 1, 1)) {
		assert_true(++n < 16);
		unsigned id = cfg_rd(f, p, 1);
		if (id == 0x09) {
			assert_true(nv < 8);
			vc[nv++] = (struct vcap){p,
						 cfg_rd(f, p + 3, 1),
						 cfg_rd(f, p + 4, 1),
						 cfg_rd(f, p + 2, 1),
						 cfg_rd(f, p + 8, 4),
						 cfg_rd(f, p + 12, 4),
						 0};
			if (vc[nv - 1].type == 2)
				vc[nv - 1].mult = cfg_rd(f, p + 16, 4);
		} else if (id == 0x11) {
			msix = p;
		} else {
			fail_msg("unexpected capability %#x at %#x", id, p);
		}
	}
	assert_int_equal(nv, 4);
	static const struct {
		unsigned type, len;
		uint32_t offset, length;
	} want[] = {{1, 16, OFF_COMMON, 0x38},
		    {3, 16, OFF_ISR, 1},
		    {4, 16, OFF_DEVICE, 60},
		    {2, 20, OFF_NOTIFY, 2 * 4}};
	for (unsigned i = 0; i < 4; i++) {
		bool found = false;
		for (unsigned k = 0; k < nv; k++) {
			if (vc[k].type != want[i].type)
				continue;
			assert_false(found);
			found = true;
			assert_int_equal(vc[k].bar, 0);
			assert_int_equal(vc[k].len, want[i].len);
			assert_int_equal(vc[k].offset, want[i].offset);
			assert_int_equal(vc[k].length, want[i].length);
			if (want[i].type == 2)
				assert_int_equal(vc[k].mult, 4);
		}
		assert_true(found);
	}
	/* MSI-X: table size field N-1 = queues (one vector per queue plus config). */
	assert_int_not_equal(msix, 0);
	assert_int_equal(msix, f->vp.vp_msix_cap);
	assert_int_equal(cfg_rd(f, msix + 2, 2), 2);
	assert_int_equal(cfg_rd(f, msix + 4, 4), OFF_MSIX); /* BIR 0 */
	assert_int_equal(cfg_rd(f, msix + 8, 4), OFF_PBA);
	/* Enable and mask-all are writable, the table size is not. */
	cfg_wr(f, msix + 2, 2, 0xffff);
	assert_int_equal(cfg_rd(f, msix + 2, 2), 0xc002);
	cfg_wr(f, msix + 2, 2, 0x8000);
	assert_int_equal(cfg_rd(f, msix + 2, 2), 0x8002);
	/* Capabilities themselves are read-only. */
	cfg_wr(f, vc[0].off + 8, 4, 0x7000);
	assert_int_equal(cfg_rd(f, vc[0].off + 8, 4), vc[0].offset);
}

static void test_bar_decode(void **state)
{
	struct fx *f = *state;
	uint64_t bar = (cfg_rd(f, PCI_BAR0, 4) & ~0xfull) | (uint64_t)cfg_rd(f, PCI_BAR0 + 4, 4)
								<< 32;
	uint8_t d[4];
	assert_false(mmio_access(&f->vm->vm_mmio, bar + C_NUMQ, d, 2, false));
	assert_int_equal(f->vp.vp_bar, 0);
	enable_bar(f);
	assert_int_equal(rd(f, C_NUMQ, 2), 2);
	/* Moved by the guest: follows, and tells the transport. */
	cfg_wr(f, PCI_BAR0, 4, 0xd0000000);
	assert_int_equal(f->vp.vp_bar, 0xd0000000);
	assert_false(mmio_access(&f->vm->vm_mmio, bar + C_NUMQ, d, 2, false));
	f->bar = 0xd0000000;
	assert_int_equal(rd(f, C_NUMQ, 2), 2);
	cfg_wr(f, PCI_COMMAND, 2, 0);
	assert_int_equal(f->vp.vp_bar, 0);
}

static void test_common_features(void **state)
{
	struct fx *f = *state;
	enable_bar(f);
	assert_int_equal(device_features(f), SHOWN_FEATURES);
	assert_int_equal(device_features(f) & BIT(30), 0);
	assert_int_equal(rd(f, C_DFSELECT, 4), 1);
	wr(f, C_DFSELECT, 4, 2);
	assert_int_equal(rd(f, C_DF, 4), 0);
	wr(f, C_DFSELECT, 4, 0xffffffff);
	assert_int_equal(rd(f, C_DF, 4), 0);

	/* Driver features: only offered bits stick. */
	driver_features(f, ~0ull);
	assert_int_equal(driver_features_rd(f), SHOWN_FEATURES);
	driver_features(f, BIT(9) | BIT(30) | BIT(33) | BIT(1));
	assert_int_equal(driver_features_rd(f), BIT(9));
	wr(f, C_GFSELECT, 4, 2);
	wr(f, C_GF, 4, 0xffffffff);
	assert_int_equal(rd(f, C_GF, 4), 0);
	assert_int_equal(driver_features_rd(f), BIT(9));

	/* FEATURES_OK without VERSION_1: refused (legacy drivers are not served). */
	wr(f, C_STATUS, 1, S_ACK);
	wr(f, C_STATUS, 1, S_ACK | S_DRIVER);
	wr(f, C_STATUS, 1, S_ACK | S_DRIVER | S_FEATURES_OK);
	assert_int_equal(rd(f, C_STATUS, 1), S_ACK | S_DRIVER);
	/* With it: accepted, and the features are then frozen. */
	driver_features(f, BIT(9) | BIT(32) | BIT(29));
	wr(f, C_STATUS, 1, S_ACK | S_DRIVER | S_FEATURES_OK);
	assert_int_equal(rd(f, C_STATUS, 1), S_ACK | S_DRIVER | S_FEATURES_OK);
	driver_features(f, BIT(6) | BIT(32));
	assert_int_equal(driver_features_rd(f), BIT(9) | BIT(32) | BIT(29));
	assert_int_equal(f->vp.vp_driver_features, BIT(9) | BIT(32) | BIT(29));
	/* Nothing reached the card yet. */
	assert_int_equal(f->card.count[VU_SET_FEATURES], 0);
	assert_int_equal(rd(f, C_CFGGEN, 1), 0);
}

static void test_common_queues(void **state)
{
	struct fx *f = *state;
	enable_bar(f);
	assert_int_equal(rd(f, C_NUMQ, 2), 2);
	assert_int_equal(rd(f, C_MSIX, 2), 0xffff);
	for (unsigned q = 0; q < 2; q++) {
		wr(f, C_QSEL, 2, q);
		assert_int_equal(rd(f, C_QSEL, 2), q);
		assert_int_equal(rd(f, C_QSIZE, 2), 256);
		assert_int_equal(rd(f, C_QMSIX, 2), 0xffff);
		assert_int_equal(rd(f, C_QENABLE, 2), 0);
		assert_int_equal(rd(f, C_QNOTIFY, 2), q);
		assert_int_equal(rd(f, C_QDESC, 8), 0);
	}
	/* Queue sizes: powers of two up to 1024. */
	wr(f, C_QSEL, 2, 0);
	static const struct {
		uint16_t v;
		bool ok;
	} sizes[] = {{128, true},  {100, false},  {0, false},	{2048, false},
		     {1024, true}, {1, true},	  {3, false},	{0x8000, false},
		     {512, true},  {1025, false}, {768, false}, {64, true}};
	uint16_t cur = 256;
	for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		wr(f, C_QSIZE, 2, sizes[i].v);
		if (sizes[i].ok)
			cur = sizes[i].v;
		assert_int_equal(rd(f, C_QSIZE, 2), cur);
	}
	/* Queue 1 untouched. */
	wr(f, C_QSEL, 2, 1);
	assert_int_equal(rd(f, C_QSIZE, 2), 256);
	/* Vectors: 0..queues valid, beyond refused (reads NO_VECTOR). */
	wr(f, C_QMSIX, 2, 2);
	assert_int_equal(rd(f, C_QMSIX, 2), 2);
	wr(f, C_QMSIX, 2, 3);
	assert_int_equal(rd(f, C_QMSIX, 2), 0xffff);
	wr(f, C_QMSIX, 2, 0);
	assert_int_equal(rd(f, C_QMSIX, 2), 0);
	wr(f, C_MSIX, 2, 1);
	assert_int_equal(rd(f, C_MSIX, 2), 1);
	/* Ring addresses: 32-bit halves and whole 64-bit writes. */
	wr(f, C_QDESC, 4, 0x12345000);
	wr(f, C_QDESC + 4, 4, 0x1);
	assert_int_equal(rd(f, C_QDESC, 8), 0x112345000ull);
	assert_int_equal(rd(f, C_QDESC, 4), 0x12345000);
	wr(f, C_QDRIVER, 8, 0x2000);
	wr(f, C_QDEVICE, 8, 0x3000);
	assert_int_equal(rd(f, C_QDRIVER, 8), 0x2000);
	assert_int_equal(rd(f, C_QDEVICE, 8), 0x3000);
	wr(f, C_QDEVICE + 4, 4, 0xabc);
	assert_int_equal(rd(f, C_QDEVICE, 8), 0xabc00003000ull);
	wr(f, C_QENABLE, 2, 1);
	assert_int_equal(rd(f, C_QENABLE, 2), 1);
	assert_int_equal(f->vp.vp_q[1].vq_desc, 0x112345000ull);
	assert_int_equal(f->vp.vp_q[0].vq_desc, 0);
	/* An out-of-range queue: reads zero, writes ignored. */
	wr(f, C_QSEL, 2, 2);
	assert_int_equal(rd(f, C_QSIZE, 2), 0);
	assert_int_equal(rd(f, C_QMSIX, 2), 0xffff);
	wr(f, C_QSIZE, 2, 64);
	wr(f, C_QENABLE, 2, 1);
	wr(f, C_QDESC, 8, 0x5000);
	assert_int_equal(rd(f, C_QSIZE, 2), 0);
	assert_int_equal(rd(f, C_QENABLE, 2), 0);
	assert_int_equal(rd(f, C_QDESC, 8), 0);
	wr(f, C_QSEL, 2, 0xffff);
	assert_int_equal(rd(f, C_QSIZE, 2), 0);
	/* Past the common structure and the ISR: zero. */
	assert_int_equal(rd(f, 0x38, 4), 0);
	assert_int_equal(rd(f, OFF_ISR, 1), 0);
	/* Notify writes before DRIVER_OK: harmless. */
	wr(f, OFF_NOTIFY, 2, 0);
	wr(f, OFF_NOTIFY + 4, 2, 1);

	/* Reset: status 0 brings back every default. */
	driver_features(f, BIT(32));
	wr(f, C_STATUS, 1, S_ACK | S_DRIVER | S_FEATURES_OK);
	wr(f, C_STATUS, 1, 0);
	assert_int_equal(rd(f, C_STATUS, 1), 0);
	assert_int_equal(driver_features_rd(f), 0);
	assert_int_equal(rd(f, C_MSIX, 2), 0xffff);
	assert_int_equal(rd(f, C_QSEL, 2), 0);
	for (unsigned q = 0; q < 2; q++) {
		wr(f, C_QSEL, 2, q);
		assert_int_equal(rd(f, C_QSIZE, 2), 256);
		assert_int_equal(rd(f, C_QMSIX, 2), 0xffff);
		assert_int_equal(rd(f, C_QENABLE, 2), 0);
		assert_int_equal(rd(f, C_QDESC, 8), 0);
		assert_int_equal(rd(f, C_QDRIVER, 8), 0);
		assert_int_equal(rd(f, C_QDEVICE, 8), 0);
	}
	/* The eventfds and routes survive a reset. */
	assert_int_equal(f->vp.vp_q[0].vq_gsi, VM_GSI_FIRST_MSI);
	assert_true(f->vp.vp_q[1].vq_kick >= 0);
	/* No queue was ever started: nothing stopped on the card. */
	assert_int_equal(f->card.count[VU_GET_VRING_BASE], 0);
}

static void test_device_config(void **state)
{
	struct fx *f = *state;
	enable_bar(f);
	assert_int_equal(rd(f, OFF_DEVICE, 8), CAPACITY);
	assert_int_equal(rd(f, OFF_DEVICE, 4), (uint32_t)CAPACITY);
	assert_int_equal(rd(f, OFF_DEVICE + 4, 4), CAPACITY >> 32);
	assert_int_equal(rd(f, OFF_DEVICE + 20, 4), 4096);
	assert_int_equal(rd(f, OFF_DEVICE + 24, 1), 24);
	assert_int_equal(rd(f, OFF_DEVICE + 59, 1), 59);
	/* Straddling the end: the bytes that exist, zero after. */
	assert_int_equal(rd(f, OFF_DEVICE + 56, 8), 0x3b3a3938ull);
	assert_int_equal(rd(f, OFF_DEVICE + 60, 4), 0);
	assert_int_equal(rd(f, OFF_DEVICE + 0x100, 4), 0);
	/* Writes go to the card (and the cached copy). */
	wr(f, OFF_DEVICE + 32, 1, 0x01); /* writeback */
	pthread_mutex_lock(&f->card.lock);
	assert_int_equal(f->card.count[VU_SET_CONFIG], 1);
	assert_int_equal(f->card.set_config_off, 32);
	assert_int_equal(f->card.set_config_size, 1);
	assert_int_equal(f->card.set_config_data[0], 0x01);
	pthread_mutex_unlock(&f->card.lock);
	assert_int_equal(rd(f, OFF_DEVICE + 32, 1), 0x01);
	/* Straddling the end: only the bytes inside. */
	wr(f, OFF_DEVICE + 58, 4, 0xaabbccdd);
	pthread_mutex_lock(&f->card.lock);
	assert_int_equal(f->card.count[VU_SET_CONFIG], 2);
	assert_int_equal(f->card.set_config_off, 58);
	assert_int_equal(f->card.set_config_size, 2);
	assert_int_equal(le16_get(f->card.set_config_data), 0xccdd);
	pthread_mutex_unlock(&f->card.lock);
	assert_int_equal(rd(f, OFF_DEVICE + 58, 2), 0xccdd);
	/* Beyond: nothing sent. */
	wr(f, OFF_DEVICE + 60, 4, 0);
	assert_int_equal(f->card.count[VU_SET_CONFIG], 2);
}

static void test_msix_table(void **state)
{
	struct fx *f = *state;
	enable_bar(f);
	for (unsigned v = 0; v < 3; v++) {
		uint64_t e = OFF_MSIX + 16 * v;
		assert_int_equal(rd(f, e, 8), 0);
		wr(f, e, 4, 0xfee00000 | v << 12);
		wr(f, e + 4, 4, 0);
		wr(f, e + 8, 4, 0x4020 + v);
		wr(f, e + 12, 4, 1); /* masked */
	}
	for (unsigned v = 0; v < 3; v++) {
		uint64_t e = OFF_MSIX + 16 * v;
		assert_int_equal(rd(f, e, 4), 0xfee00000 | v << 12);
		assert_int_equal(rd(f, e + 4, 4), 0);
		assert_int_equal(rd(f, e + 8, 4), 0x4020 + v);
		assert_int_equal(rd(f, e + 12, 4), 1);
	}
	wr(f, OFF_MSIX + 16, 8, 0x00000001fee01000ull);
	assert_int_equal(rd(f, OFF_MSIX + 16, 8), 0x00000001fee01000ull);
	/* Past the 3 entries: not there. */
	wr(f, OFF_MSIX + 48, 4, 0x12345678);
	assert_int_equal(rd(f, OFF_MSIX + 48, 4), 0);
	assert_int_equal(rd(f, OFF_PBA, 8), 0);
	/* A reset leaves the table to the driver. */
	wr(f, C_STATUS, 1, 0);
	assert_int_equal(rd(f, OFF_MSIX + 8, 4), 0x4020);
}

/* DRIVER_OK with no KVM behind (vm_fd -1): SET_FEATURES reaches the card, then the irqfd
 * for the first enabled queue fails; the device must say NEEDS_RESET, not crash. */
static void test_driver_ok_without_kvm(void **state)
{
	struct fx *f = *state;
	enable_bar(f);
	wr(f, C_STATUS, 1, S_ACK | S_DRIVER);
	driver_features(f, BIT(32) | BIT(9));
	wr(f, C_STATUS, 1, S_ACK | S_DRIVER | S_FEATURES_OK);
	wr(f, C_QSEL, 2, 0);
	wr(f, C_QSIZE, 2, 64);
	wr(f, C_QDESC, 8, 0x10000);
	wr(f, C_QDRIVER, 8, 0x11000);
	wr(f, C_QDEVICE, 8, 0x12000);
	wr(f, C_QMSIX, 2, 1);
	wr(f, C_QENABLE, 2, 1);
	wr(f, C_STATUS, 1, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
	uint8_t st = (uint8_t)rd(f, C_STATUS, 1);
	assert_true(st & S_NEEDS_RESET);
	assert_int_equal(st & ~S_NEEDS_RESET, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
	assert_true(f->vp.vp_failed);
	assert_false(f->vp.vp_q[0].vq_started);
	pthread_mutex_lock(&f->card.lock);
	assert_int_equal(f->card.count[VU_SET_FEATURES], 1);
	assert_int_equal(f->card.features_set, BIT(32) | BIT(9) | BIT(30));
	assert_int_equal(f->card.count[VU_SET_VRING_NUM], 0);
	assert_int_equal(f->card.count[VU_SET_VRING_KICK], 0);
	pthread_mutex_unlock(&f->card.lock);
	/* Live: queue registers are frozen. */
	wr(f, C_QSIZE, 2, 128);
	assert_int_equal(rd(f, C_QSIZE, 2), 64);
	/* Further status writes keep NEEDS_RESET. */
	wr(f, C_STATUS, 1, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
	assert_true(rd(f, C_STATUS, 1) & S_NEEDS_RESET);
	/* Reset clears it all; nothing was started, so nothing is stopped. */
	wr(f, C_STATUS, 1, 0);
	assert_int_equal(rd(f, C_STATUS, 1), 0);
	assert_false(f->vp.vp_failed);
	assert_int_equal(f->card.count[VU_GET_VRING_BASE], 0);
	/* Moving the BAR now issues no KVM call (no queue started) and must not crash. */
	cfg_wr(f, PCI_COMMAND, 2, 0);
	assert_int_equal(f->vp.vp_bar, 0);
}

/* A kick before DRIVER_OK (Linux's nsm driver sends its first GetRandom from its probe):
 * ignored before FEATURES_OK and for a queue not enabled; for an enabled queue after
 * FEATURES_OK it hands the queue to the card at once (SET_FEATURES first; here the irqfd
 * then fails without KVM: NEEDS_RESET, no crash), and DRIVER_OK later sends no second
 * SET_FEATURES. */
static void test_early_kick(void **state)
{
	struct fx *f = *state;
	enable_bar(f);
	wr(f, C_STATUS, 1, S_ACK | S_DRIVER);
	driver_features(f, BIT(32));
	wr(f, C_QSEL, 2, 0);
	wr(f, C_QSIZE, 2, 64);
	wr(f, C_QDESC, 8, 0x10000);
	wr(f, C_QDRIVER, 8, 0x11000);
	wr(f, C_QDEVICE, 8, 0x12000);
	wr(f, OFF_NOTIFY, 2, 0); /* before FEATURES_OK: dropped */
	wr(f, C_STATUS, 1, S_ACK | S_DRIVER | S_FEATURES_OK);
	wr(f, OFF_NOTIFY, 2, 0); /* queue 0 not enabled yet: dropped */
	wr(f, OFF_NOTIFY + 4, 2, 1);
	wr(f, OFF_NOTIFY + 4 * 40, 2, 40); /* no such queue */
	pthread_mutex_lock(&f->card.lock);
	assert_int_equal(f->card.count[VU_SET_FEATURES], 0);
	pthread_mutex_unlock(&f->card.lock);
	assert_false(f->vp.vp_failed);
	wr(f, C_QENABLE, 2, 1);
	wr(f, OFF_NOTIFY, 2, 0); /* now: the queue goes to the card */
	pthread_mutex_lock(&f->card.lock);
	assert_int_equal(f->card.count[VU_SET_FEATURES], 1);
	assert_int_equal(f->card.features_set, BIT(32) | BIT(30));
	pthread_mutex_unlock(&f->card.lock);
	assert_true(f->vp.vp_early);
	assert_true(f->vp.vp_failed); /* no KVM behind: the irqfd failed */
	assert_true(rd(f, C_STATUS, 1) & S_NEEDS_RESET);
	wr(f, C_STATUS, 1, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
	pthread_mutex_lock(&f->card.lock);
	assert_int_equal(f->card.count[VU_SET_FEATURES], 1);
	pthread_mutex_unlock(&f->card.lock);
	wr(f, C_STATUS, 1, 0); /* reset forgets it */
	assert_false(f->vp.vp_early);
}

static void test_driver_ok_bad_ring(void **state)
{
	struct fx *f = *state;
	enable_bar(f);
	driver_features(f, BIT(32));
	wr(f, C_STATUS, 1, S_ACK | S_DRIVER | S_FEATURES_OK);
	wr(f, C_QSEL, 2, 1);
	wr(f, C_QDESC, 8, MEM_SIZE - 16); /* 256 descriptors do not fit */
	wr(f, C_QDRIVER, 8, 0x1000);
	wr(f, C_QDEVICE, 8, 0x2000);
	wr(f, C_QENABLE, 2, 1);
	wr(f, C_STATUS, 1, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
	assert_true(rd(f, C_STATUS, 1) & S_NEEDS_RESET);
	assert_int_equal(f->card.count[VU_SET_FEATURES], 1);
}

static void test_driver_ok_no_queues(void **state)
{
	struct fx *f = *state;
	enable_bar(f);
	driver_features(f, BIT(32) | BIT(6));
	wr(f, C_STATUS, 1, S_ACK | S_DRIVER | S_FEATURES_OK);
	wr(f, C_STATUS, 1, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
	/* Nothing enabled: no KVM call needed, the device is live. */
	assert_int_equal(rd(f, C_STATUS, 1), S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
	assert_int_equal(f->card.features_set, BIT(32) | BIT(6) | BIT(30));
	wr(f, C_STATUS, 1, 0);
	assert_int_equal(rd(f, C_STATUS, 1), 0);
}

/* A card that fails a queue signals its error fd: NEEDS_RESET shows in the status and the
 * configuration generation moves. */
static void test_card_failure_needs_reset(void **state)
{
	struct fx *f = *state;
	enable_bar(f);
	uint8_t gen = (uint8_t)rd(f, 0x15, 1);
	assert_int_equal(rd(f, C_STATUS, 1) & 0x40, 0);
	uint64_t one = 1;
	assert_int_equal(write(f->vp.vp_q[1].vq_err, &one, sizeof(one)), sizeof(one));
	for (int i = 0; i < 200 && !(rd(f, C_STATUS, 1) & 0x40); i++)
		usleep(5000);
	assert_int_equal(rd(f, C_STATUS, 1) & 0x40, 0x40);
	assert_int_not_equal((uint8_t)rd(f, 0x15, 1), gen);
	wr(f, C_STATUS, 1, 0); /* a reset clears it */
	assert_int_equal(rd(f, C_STATUS, 1), 0);
}

static unsigned count_of(struct fx *f, unsigned req)
{
	pthread_mutex_lock(&f->card.lock);
	unsigned n = f->card.count[req];
	pthread_mutex_unlock(&f->card.lock);
	return n;
}

/* The card's process dies and a supervisor restarts it on the same socket: the device
 * reconnects by itself and hands the new card the memory table again. */
static void test_card_restart_reconnects(void **state)
{
	struct fx *f = *state;
	enable_bar(f);
	pthread_mutex_lock(&f->card.lock);
	f->card.restarts = 1;
	f->card.queues_after = f->card.queues;
	shutdown(f->card.fd, SHUT_RDWR); /* the card is gone */
	pthread_mutex_unlock(&f->card.lock);
	for (int i = 0; i < 400 && count_of(f, VU_SET_MEM_TABLE) < 2; i++)
		usleep(5000);
	assert_int_equal(count_of(f, VU_SET_MEM_TABLE), 2);
	assert_int_equal(count_of(f, VU_GET_CONFIG), 2);
	assert_int_equal(f->card.connections, 2);
	assert_true(f->vp.vp_card.vf_sock >= 0);
	/* The device still works over the new connection. */
	uint8_t d[4] = {1, 2, 3, 4};
	assert_int_equal(vhost_front_set_config(&f->vp.vp_card, 24, d, 4), 0);
	assert_int_equal(count_of(f, VU_SET_CONFIG), 1);
	assert_false(f->vp.vp_failed);
}

/* A card that comes back as something else (another queue count) is refused; the device
 * keeps waiting for the right one. */
static void test_card_restart_other_device_refused(void **state)
{
	struct fx *f = *state;
	enable_bar(f);
	pthread_mutex_lock(&f->card.lock);
	f->card.restarts = 1;
	f->card.queues_after = 1; /* was 2 */
	shutdown(f->card.fd, SHUT_RDWR);
	pthread_mutex_unlock(&f->card.lock);
	for (int i = 0; i < 400 && count_of(f, VU_GET_QUEUE_NUM) < 2; i++)
		usleep(2000);
	unlink(f->card.path); /* and then no card at all: further attempts fail at once */
	assert_int_equal(count_of(f, VU_GET_QUEUE_NUM), 2);
	for (int i = 0; i < 400 && f->vp.vp_card.vf_sock >= 0; i++)
		usleep(5000);
	assert_int_equal(count_of(f, VU_SET_MEM_TABLE), 1); /* never got that far */
	assert_int_equal(f->vp.vp_card.vf_queues, 2);
	uint8_t d[4] = {0};
	assert_int_equal(vhost_front_set_config(&f->vp.vp_card, 24, d, 4), -1);
}

static void test_sixteen_queues(void **state)
{
	struct fx *f = *state;
	enable_bar(f);
	assert_int_equal(f->vp.vp_nqueues, VP_MAX_QUEUES);
	assert_int_equal(rd(f, C_NUMQ, 2), VP_MAX_QUEUES);
	assert_int_equal(f->vm->vm_msi_next, VP_MAX_QUEUES);
	assert_int_equal(cfg_rd(f, f->vp.vp_msix_cap + 2, 2), VP_MAX_QUEUES);
	/* The last table entry. */
	uint64_t last = OFF_MSIX + 16 * VP_MAX_QUEUES;
	wr(f, last + 8, 4, 0x77);
	assert_int_equal(rd(f, last + 8, 4), 0x77);
	wr(f, C_QSEL, 2, VP_MAX_QUEUES - 1);
	assert_int_equal(rd(f, C_QNOTIFY, 2), VP_MAX_QUEUES - 1);
	wr(f, C_QMSIX, 2, VP_MAX_QUEUES);
	assert_int_equal(rd(f, C_QMSIX, 2), VP_MAX_QUEUES);
}

/* Bug: the MSI-X table check tests only the first byte of an access, so an 8-byte write
 * at the last dword of a full (17-entry) table runs 4 bytes past vp_msix_table, into
 * vp_failed (a bool: any value but 0/1 is undefined behaviour when read). */
static void test_bug_msix_table_overrun(void **state)
{
	struct fx *f = *state;
	enable_bar(f);
	uint8_t after[8];
	memcpy(after, f->vp.vp_msix_table + sizeof(f->vp.vp_msix_table), sizeof(after));
	wr(f, OFF_MSIX + sizeof(f->vp.vp_msix_table) - 4, 8, 0x5555555500000000ull);
	assert_int_equal(memcmp(after, f->vp.vp_msix_table + sizeof(f->vp.vp_msix_table), 8), 0);
}

/* Bug: the high halves of the 64-bit queue addresses (0x24, 0x2c, 0x34) read as zero. */
static void test_bug_queue_addr_high_read(void **state)
{
	struct fx *f = *state;
	enable_bar(f);
	wr(f, C_QDESC, 8, 0x123456789000ull);
	assert_int_equal(rd(f, C_QDESC + 4, 4), 0x1234);
}

/* Bug (spec 4.1.4.3.2/4.1.5.1.2): msix_config takes any value; a vector past the table
 * should read back NO_VECTOR, as queue_msix_vector does. */
static void test_bug_msix_config_unchecked(void **state)
{
	struct fx *f = *state;
	enable_bar(f);
	wr(f, C_MSIX, 2, 3);
	assert_int_equal(rd(f, C_MSIX, 2), 0xffff);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_negotiation, setup, teardown),
	    cmocka_unit_test(test_create_no_card),
	    cmocka_unit_test_setup_teardown(test_config_space, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bar_decode, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_common_features, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_common_queues, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_device_config, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_msix_table, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_driver_ok_without_kvm, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_early_kick, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_driver_ok_bad_ring, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_driver_ok_no_queues, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_card_failure_needs_reset, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_card_restart_reconnects, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_card_restart_other_device_refused, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_sixteen_queues, setup16, teardown),
	    cmocka_unit_test_setup_teardown(test_bug_msix_table_overrun, setup16, teardown),
	    cmocka_unit_test_setup_teardown(test_bug_queue_addr_high_read, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bug_msix_config_unchecked, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
