/* NVMe controller's PCI function and register file in front of an NVMe card. */
#include "hv/nvme_pci.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib/le.h"
#include "lib/util.h"
#include "lib/vhost_user_wire.h"
#include "lib/vu_wire.h"

#define BAR_SIZE 0x4000
#define OFF_DB 0x1000
#define OFF_MSIX 0x2000
#define OFF_PBA 0x3000
#define REPLY_MS 5000

#define PCI_CAP_ID_MSIX 0x11
#define MSIX_ENABLE 0x8000
#define MSIX_MASKALL 0x4000

#define R_CAP 0x00
#define R_VS 0x08
#define R_INTMS 0x0c
#define R_INTMC 0x10
#define R_CC 0x14
#define R_CSTS 0x1c
#define R_AQA 0x24
#define R_ASQ 0x28
#define R_ACQ 0x30
#define R_END 0x40

#define CC_EN 1u
#define CC_SHN(cc) (((cc) >> 14) & 3)
#define CSTS_RDY 1u
#define CSTS_CFS 2u
#define CSTS_SHST_DONE (2u << 2)

/* One request to the card and its u64 status; -1 when it does not answer. */
static int card_request(struct nvme_pci *np, uint32_t req, const void *p, uint32_t size,
			const int *fds, unsigned nfds)
{
	if (np->np_sock < 0)
		return -1;
	if (vu_wire_send(np->np_sock, req, VU_FLAG_VERSION | VU_FLAG_NEED_REPLY, p, size, fds,
			 nfds) < 0)
		return -1;
	struct vu_wire_hdr h;
	uint64_t status;
	unsigned n;
	if (vu_wire_recv(np->np_sock, &h, &status, sizeof(status), NULL, 0, &n, REPLY_MS) != 1 ||
	    h.request != req || !(h.flags & VU_FLAG_REPLY) || h.size != sizeof(status))
		return -1;
	return status == 0 ? 0 : 1;
}

static void fail(struct nvme_pci *np, const char *why)
{
	if (!(np->np_csts & CSTS_CFS))
		fprintf(stderr, "%s: nvme card %s: controller failed: %s\n", util_prog(),
			np->np_path, why);
	np->np_csts |= CSTS_CFS;
}

/* ---- doorbells and vectors ---- */

static void io_doorbells(struct nvme_pci *np, bool on)
{
	if (on == np->np_io_evfd)
		return;
	uint64_t bar = np->np_bar;
	for (unsigned q = 1; bar && q < np->np_hello.h_nqids; q++)
		for (unsigned k = 0; k < 2; k++)
			if (vm_ioeventfd(np->np_vm, bar + OFF_DB + (2 * q + k) * 4, 4,
					 np->np_kick[q], on) < 0 &&
			    on) {
				fail(np, "KVM ioeventfd set-up failed");
				return;
			}
	np->np_io_evfd = on && bar;
}

/* A vector's irqfd is attached once its table entry holds an APIC address, and the route
 * follows the entry. The mask bit is not honoured (as in virtio_pci.c): Linux masks an
 * entry around each change of its message, and detaching the irqfd there races with
 * KVM's deferred irqfd shutdown (an interrupt could be lost). */
static void route_vector(struct nvme_pci *np, unsigned v)
{
	const uint8_t *e = np->np_msix_table + v * 16;
	uint64_t addr = le64_get(e);
	if ((addr >> 20) != 0xfee) /* not programmed yet */
		return;
	vm_msi_set(np->np_vm, np->np_gsi[v], addr, le32_get(e + 8));
	if (!np->np_irqfd[v] && vm_irqfd(np->np_vm, np->np_gsi[v], np->np_call[v], true) == 0)
		np->np_irqfd[v] = true;
}

/* ---- registers ---- */

static void regs_image(struct nvme_pci *np, uint8_t *r)
{
	memset(r, 0, R_END);
	uint64_t cap = np->np_hello.h_mqes | 1ull << 16 /* CQR */ | 20ull << 24 /* TO: 10 s */ |
		       1ull << 37 /* CSS: NVM */;
	le64_put(r + R_CAP, cap);
	le32_put(r + R_VS, 0x00010400);
	le32_put(r + R_CC, np->np_cc);
	uint32_t csts = np->np_csts;
	if (np->np_shared &&
	    (__atomic_load_n(&np->np_shared->s_flags, __ATOMIC_ACQUIRE) & NVW_F_FATAL))
		csts |= CSTS_CFS;
	le32_put(r + R_CSTS, csts);
	le32_put(r + R_AQA, np->np_aqa);
	le64_put(r + R_ASQ, np->np_asq);
	le64_put(r + R_ACQ, np->np_acq);
}

static void cc_write(struct nvme_pci *np, uint32_t cc)
{
	uint32_t old = np->np_cc;
	np->np_cc = cc;
	if ((cc & CC_EN) && !(old & CC_EN)) {
		struct nvw_enable e = {
		    .e_cc = cc, .e_aqa = np->np_aqa, .e_asq = np->np_asq, .e_acq = np->np_acq};
		int r = card_request(np, NVW_ENABLE, &e, sizeof(e), NULL, 0);
		if (r == 0)
			np->np_csts = CSTS_RDY;
		else
			fail(np, r < 0 ? "the card did not answer ENABLE"
				       : "the card refused the admin queue");
	} else if (!(cc & CC_EN) && (old & CC_EN)) {
		io_doorbells(np, false);
		if (card_request(np, NVW_DISABLE, NULL, 0, NULL, 0) != 0 && np->np_sock >= 0)
			fail(np, "the card did not answer DISABLE");
		else
			np->np_csts = 0;
		if (np->np_shared)
			memset(np->np_shared->s_db, 0, sizeof(np->np_shared->s_db));
	}
	if (CC_SHN(cc) && !CC_SHN(old) && (cc & CC_EN)) {
		if (card_request(np, NVW_SHUTDOWN, NULL, 0, NULL, 0) != 0)
			fail(np, "the card did not answer SHUTDOWN");
		np->np_csts = (np->np_csts & ~(3u << 2)) | CSTS_SHST_DONE;
	} else if (!CC_SHN(cc) && CC_SHN(old)) {
		np->np_csts &= ~(3u << 2);
	}
}

static void reg_write(struct nvme_pci *np, unsigned off, const uint8_t *data, unsigned size)
{
	uint8_t r[R_END];
	regs_image(np, r);
	if (off + size > R_END)
		return;
	memcpy(r + off, data, size);
	bool en = np->np_cc & CC_EN;
	if (off < R_CC + 4 && off + size > R_CC) {
		cc_write(np, le32_get(r + R_CC));
		return;
	}
	if (en)
		return; /* AQA, ASQ, ACQ are read-only while enabled */
	if (off < R_AQA + 4 && off + size > R_AQA)
		np->np_aqa = le32_get(r + R_AQA) & 0x0fff0fff;
	if (off < R_ASQ + 8 && off + size > R_ASQ)
		np->np_asq = le64_get(r + R_ASQ) & ~0xfffull;
	if (off < R_ACQ + 8 && off + size > R_ACQ)
		np->np_acq = le64_get(r + R_ACQ) & ~0xfffull;
}

static void doorbell(struct nvme_pci *np, unsigned idx, uint32_t v)
{
	unsigned qid = idx / 2;
	if (qid >= np->np_hello.h_nqids || !np->np_shared || !(np->np_csts & CSTS_RDY))
		return; /* no such queue, or not enabled: ignored */
	__atomic_store_n(&np->np_shared->s_db[idx], v, __ATOMIC_RELEASE);
	uint64_t one = 1;
	if (write(np->np_kick[qid], &one, sizeof(one)) != sizeof(one))
		return; /* the counter is non-zero: the card looks anyway */
}

void nvme_pci_bar_access(struct nvme_pci *np, uint64_t off, uint8_t *data, unsigned size,
			 bool write)
{
	pthread_mutex_lock(&np->np_lock);
	if (off < R_END && off + size <= R_END) {
		if (write) {
			reg_write(np, (unsigned)off, data, size);
		} else {
			uint8_t r[R_END];
			regs_image(np, r);
			memcpy(data, r + off, size);
		}
	} else if (off >= OFF_DB && off < OFF_DB + 2u * NVW_MAX_QIDS * 4) {
		if (write && size == 4 && !(off & 3))
			doorbell(np, (unsigned)(off - OFF_DB) / 4, le32_get(data));
		else if (!write)
			memset(data, 0, size);
	} else if (off >= OFF_MSIX && off + size <= OFF_MSIX + np->np_hello.h_nvectors * 16u) {
		unsigned o = (unsigned)(off - OFF_MSIX);
		if (write) {
			memcpy(np->np_msix_table + o, data, size);
			route_vector(np, o / 16);
		} else {
			memcpy(data, np->np_msix_table + o, size);
		}
	} else if (!write) {
		memset(data, 0, size);
	}
	pthread_mutex_unlock(&np->np_lock);
}

static void bar_access(struct pci_dev *d, uint64_t off, uint8_t *data, unsigned size, bool write)
{
	nvme_pci_bar_access(d->pd_opaque, off, data, size, write);
}

static void bar_moved(struct pci_dev *d, uint64_t addr)
{
	struct nvme_pci *np = d->pd_opaque;
	pthread_mutex_lock(&np->np_lock);
	bool on = np->np_io_evfd;
	io_doorbells(np, false);
	np->np_bar = addr;
	if (on)
		io_doorbells(np, true);
	pthread_mutex_unlock(&np->np_lock);
}

static const struct pci_dev_ops np_ops = {
    .bar_access = bar_access,
    .bar_moved = bar_moved,
};

/* ---- the card ---- */

/* NVW_MEM_ADD (one fd: the memfd) or NVW_MEM_REM of one region. */
static int region_op(void *ctx, bool add, const struct vu_mem_region *r)
{
	struct nvme_pci *np = ctx;
	struct vu_mem_region_single p = {.region = *r};
	int fd = np->np_vm->vm_mem.gm_fd;
	return card_request(np, add ? NVW_MEM_ADD : NVW_MEM_REM, &p, sizeof(p), add ? &fd : NULL,
			    add ? 1 : 0);
}

/* The whole table (guest memory without its holes): NVW_MEM with the first VU_MAX_REGIONS
 * regions, NVW_MEM_ADD for the others. 0, or non-zero when refused. */
static int send_mem(struct nvme_pci *np, const struct guest_mem *m)
{
	struct vu_mem_region *want;
	int n = mem_table_want(m, &want);
	if (n < 0)
		return -1;
	unsigned first = n < VU_MAX_REGIONS ? (unsigned)n : VU_MAX_REGIONS;
	struct vu_mem_table t = {.nregions = first};
	int fds[VU_MAX_REGIONS];
	for (unsigned i = 0; i < first; i++) {
		t.regions[i] = want[i];
		fds[i] = m->gm_fd;
	}
	int r =
	    card_request(np, NVW_MEM, &t, 8 + first * (uint32_t)sizeof(t.regions[0]), fds, first);
	if (r == 0 && (mem_table_set(&np->np_table, want, first) < 0 ||
		       mem_table_sync(&np->np_table, want, (unsigned)n, region_op, np) != 0))
		r = -1;
	free(want);
	return r;
}

int nvme_pci_sync_mem(struct nvme_pci *np, char *err, size_t errlen)
{
	pthread_mutex_lock(&np->np_lock);
	int r = 0;
	struct vu_mem_region *want = NULL;
	if (np->np_sock >= 0) { /* else: the reconnect sends the table as it is then */
		int n = mem_table_want(&np->np_vm->vm_mem, &want);
		if (n < 0 || mem_table_sync(&np->np_table, want, (unsigned)n, region_op, np) != 0) {
			snprintf(err, errlen, "nvme card %s: refused a change of its memory table",
				 np->np_path);
			r = -1;
		}
	}
	free(want);
	pthread_mutex_unlock(&np->np_lock);
	return r;
}

static int card_connect(struct nvme_pci *np, const struct guest_mem *m, char *err, size_t errlen)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	if (strlen(np->np_path) >= sizeof(a.sun_path))
		RETURN_ERR(-1, "card socket %s: path too long", np->np_path);
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", np->np_path);
	np->np_sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (np->np_sock < 0 || connect(np->np_sock, (struct sockaddr *)&a, sizeof(a)) < 0)
		RETURN_ERR(-1, "card socket %s: %s", np->np_path, strerror(errno));
	uint32_t version = NVW_VERSION;
	struct vu_wire_hdr h;
	struct nvw_hello hello;
	unsigned n;
	if (vu_wire_send(np->np_sock, NVW_HELLO, VU_FLAG_VERSION, &version, sizeof(version), NULL,
			 0) < 0 ||
	    vu_wire_recv(np->np_sock, &h, &hello, sizeof(hello), NULL, 0, &n, REPLY_MS) != 1 ||
	    h.request != NVW_HELLO || h.size != sizeof(hello) || hello.h_version != NVW_VERSION)
		RETURN_ERR(-1, "card %s: not an NVMe card of version %u", np->np_path, NVW_VERSION);
	if (hello.h_nqids < 2 || hello.h_nqids > NVW_MAX_QIDS || !hello.h_nvectors ||
	    hello.h_nvectors > NP_MAX_VECTORS || hello.h_mqes < 1)
		RETURN_ERR(-1, "card %s: bad geometry (%u queue ids, %u vectors)", np->np_path,
			   hello.h_nqids, hello.h_nvectors);
	if (np->np_hello.h_version && memcmp(&hello, &np->np_hello, sizeof(hello)))
		RETURN_ERR(-1, "card %s: came back with another geometry", np->np_path);
	np->np_hello = hello;
	if (send_mem(np, m) != 0 ||
	    card_request(np, NVW_SHARED, NULL, 0, &np->np_shared_fd, 1) != 0 ||
	    card_request(np, NVW_NOTE, NULL, 0, &np->np_note, 1) != 0)
		RETURN_ERR(-1, "card %s: refused the guest memory or the shared page", np->np_path);
	for (uint64_t q = 0; q < hello.h_nqids; q++)
		if (card_request(np, NVW_KICK, &q, sizeof(q), &np->np_kick[q], 1) != 0)
			RETURN_ERR(-1, "card %s: refused a doorbell eventfd", np->np_path);
	for (uint64_t v = 0; v < hello.h_nvectors; v++)
		if (card_request(np, NVW_CALL, &v, sizeof(v), &np->np_call[v], 1) != 0)
			RETURN_ERR(-1, "card %s: refused an interrupt eventfd", np->np_path);
	return 0;
}

/* A card came back: it takes the running controller over (the driver sees a pause), or,
 * when it cannot, the controller fails (CFS) and the driver's reset enables it again. */
static void resumed(struct nvme_pci *np)
{
	np->np_card_gone = false;
	bool running = (np->np_cc & CC_EN) && (np->np_csts & CSTS_RDY) &&
		       !(np->np_csts & CSTS_CFS) && !CC_SHN(np->np_cc);
	if (!running) {
		fprintf(stderr, "%s: nvme card %s: reconnected\n", util_prog(), np->np_path);
		return;
	}
	struct nvw_enable e = {
	    .e_cc = np->np_cc, .e_aqa = np->np_aqa, .e_asq = np->np_asq, .e_acq = np->np_acq};
	int r = card_request(np, NVW_RESUME, &e, sizeof(e), NULL, 0);
	if (r == 0) {
		fprintf(stderr, "%s: nvme card %s: reconnected, queues resumed\n", util_prog(),
			np->np_path);
		return;
	}
	fprintf(stderr, "%s: nvme card %s: reconnected\n", util_prog(), np->np_path);
	fail(np, r < 0 ? "the restarted card did not answer RESUME"
		       : "the restarted card could not resume the queues");
	io_doorbells(np, false);
}

/* The watcher: the card's notes (shadow doorbells on/off, fatal) and its connection. */
static void *watch(void *arg)
{
	struct nvme_pci *np = arg;
	pthread_setname_np(pthread_self(), "nvme-watch");
	for (;;) {
		struct pollfd p[3] = {{.fd = np->np_note, .events = POLLIN},
				      {.fd = np->np_stop, .events = POLLIN},
				      {.fd = np->np_sock, .events = POLLRDHUP}};
		if (poll(p, 3, -1) < 0)
			continue;
		if (p[1].revents)
			return NULL;
		if (p[2].revents & (POLLRDHUP | POLLHUP | POLLERR)) {
			pthread_mutex_lock(&np->np_lock);
			/* A running controller pauses: doorbells still land in the shared page
			 * and the kick eventfds (ioeventfds stay), and the card that comes back
			 * resumes from the state it saved there (NVW_RESUME). */
			bool resume = (np->np_cc & CC_EN) && (np->np_csts & CSTS_RDY) &&
				      !(np->np_csts & CSTS_CFS) && !CC_SHN(np->np_cc);
			if (resume) {
				fprintf(stderr,
					"%s: nvme card %s: went away; the controller pauses until "
					"it restarts\n",
					util_prog(), np->np_path);
			} else {
				fail(np, "the card went away");
				io_doorbells(np, false);
			}
			np->np_card_gone = true;
			close(np->np_sock);
			np->np_sock = -1;
			pthread_mutex_unlock(&np->np_lock);
			/* wait for it to come back */
			char err[256];
			for (;;) {
				struct pollfd s = {.fd = np->np_stop, .events = POLLIN};
				if (poll(&s, 1, 100) > 0)
					return NULL;
				pthread_mutex_lock(&np->np_lock);
				int r = card_connect(np, &np->np_vm->vm_mem, err, sizeof(err));
				if (r < 0 && np->np_sock >= 0) {
					close(np->np_sock);
					np->np_sock = -1;
				}
				if (r == 0)
					resumed(np);
				pthread_mutex_unlock(&np->np_lock);
				if (r == 0)
					break;
			}
			continue;
		}
		uint64_t n;
		if ((p[0].revents & POLLIN) && read(np->np_note, &n, sizeof(n)) == sizeof(n)) {
			pthread_mutex_lock(&np->np_lock);
			uint32_t f = __atomic_load_n(&np->np_shared->s_flags, __ATOMIC_ACQUIRE);
			io_doorbells(np, (f & NVW_F_DBBUF) && (np->np_csts & CSTS_RDY));
			pthread_mutex_unlock(&np->np_lock);
		}
	}
}

int nvme_pci_create(struct nvme_pci *np, struct vm *vm, struct pci_bus *bus, const char *socket,
		    char *err, size_t errlen)
{
	memset(np, 0, sizeof(*np));
	pthread_mutex_init(&np->np_lock, NULL);
	np->np_vm = vm;
	np->np_sock = np->np_stop = -1;
	snprintf(np->np_path, sizeof(np->np_path), "%s", socket);
	np->np_shared_fd = memfd_create("nitro-nvme-shared", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (np->np_shared_fd < 0 || ftruncate(np->np_shared_fd, NVW_SHARED_SIZE) < 0 ||
	    fcntl(np->np_shared_fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
		RETURN_ERR(-1, "nvme card %s: shared page: %s", socket, strerror(errno));
	np->np_shared =
	    mmap(NULL, NVW_SHARED_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, np->np_shared_fd, 0);
	if (np->np_shared == MAP_FAILED)
		RETURN_ERR(-1, "nvme card %s: shared page: %s", socket, strerror(errno));
	np->np_note = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	for (unsigned q = 0; q < NVW_MAX_QIDS; q++)
		np->np_kick[q] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	for (unsigned v = 0; v < NP_MAX_VECTORS; v++) {
		np->np_call[v] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		np->np_gsi[v] = -1;
	}
	if (np->np_note < 0 || np->np_kick[NVW_MAX_QIDS - 1] < 0 ||
	    np->np_call[NP_MAX_VECTORS - 1] < 0)
		RETURN_ERR(-1, "nvme card %s: out of eventfds", socket);
	if (card_connect(np, &vm->vm_mem, err, errlen) < 0)
		return -1;
	for (unsigned v = 0; v < np->np_hello.h_nvectors; v++)
		if ((np->np_gsi[v] = vm_msi_alloc(vm)) < 0)
			RETURN_ERR(-1, "nvme card %s: out of interrupt routes", socket);
	uint16_t dev = np->np_hello.h_device;
	pci_dev_init(&np->np_pci, 0x1d0f, dev, 0x010802, 0x1d0f, dev, BAR_SIZE, &np_ops, np);
	uint8_t msix[12] = {PCI_CAP_ID_MSIX, 0};
	le16_put(msix + 2, (uint16_t)(np->np_hello.h_nvectors - 1));
	le32_put(msix + 4, OFF_MSIX);
	le32_put(msix + 8, OFF_PBA);
	np->np_msix_cap = pci_cap_add(&np->np_pci, msix, sizeof(msix));
	np->np_pci.pd_wmask[np->np_msix_cap + 3] = (MSIX_ENABLE | MSIX_MASKALL) >> 8;
	if (!np->np_msix_cap || pci_add(bus, &np->np_pci) < 0)
		RETURN_ERR(-1, "nvme card %s: no room on the PCI bus", socket);
	np->np_stop = eventfd(0, EFD_CLOEXEC);
	if (np->np_stop < 0 || pthread_create(&np->np_thread, NULL, watch, np) != 0)
		RETURN_ERR(-1, "nvme card %s: cannot start its watcher", socket);
	return 0;
}

void nvme_pci_destroy(struct nvme_pci *np)
{
	uint64_t one = 1;
	if (np->np_stop < 0)
		return;
	if (write(np->np_stop, &one, sizeof(one)) == sizeof(one))
		pthread_join(np->np_thread, NULL);
	close(np->np_stop);
	np->np_stop = -1;
	if (np->np_sock >= 0)
		close(np->np_sock);
	np->np_sock = -1;
}
