/* nitro-enclave run (tool.h): the NE ioctls of Documentation/virt/ne_overview.rst, with
 * the huge pages and the CPU pool handled here.
 *
 * Order: check the image; fork the enclave process; in it, join the heartbeat broker
 * (hb.h: one listener on vsock port 9000 for every run that waits), then, under
 * NET_RUN_DIR/lock, reserve 2 MiB huge pages (raising nr_hugepages by what is missing),
 * map and populate them, fill the CPU pool if it is empty and NE_CREATE_VM; drop the lock;
 * NE_GET_IMAGE_LOAD_INFO, write the image at its offset, NE_SET_USER_MEMORY_REGION,
 * NE_ADD_VCPU (0: from the pool) per vCPU, NE_START_ENCLAVE, name the CID to the broker,
 * wait for its word that the 0xB7 heartbeat came, report, serve. Concurrent runs boot
 * their enclaves at the same time: the lock covers only the counting and taking of huge
 * pages and the pool (and their give-back in release), never a boot. Any failure is one
 * line on stderr of `run` and exit 1; closing the enclave fd (the process exiting) gives
 * everything taken back. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/nitro_enclaves.h>
#include <linux/vm_sockets.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "enclave/tool/cpus.h"
#include "enclave/tool/eifcheck.h"
#include "enclave/tool/errors.h"
#include "enclave/tool/hb.h"
#include "enclave/tool/tool.h"

#ifndef MAP_HUGE_2MB
#define MAP_HUGE_2MB (21 << 26)
#endif
#define NE_DEV "/dev/nitro_enclaves"
#define NE_POOL "/sys/module/nitro_enclaves/parameters/ne_cpus"
#define HP_DIR "/sys/kernel/mm/hugepages/hugepages-2048kB"
#define POOL_MARK NET_RUN_DIR "/pool-set-by-nitro-enclave"
#define HEARTBEAT 0xB7
#define fail net_fail

static int report_fd = -1; /* the pipe to `run`, while it waits */
static int enclave_fd = -1;
static int lock_fd = -1;
static unsigned hp_raised; /* huge pages this process added to nr_hugepages */
static void *mem_map;
static size_t mem_len;
static char sock_path[256];

static int write_text(const char *path, const char *text);

/* The CPU pool back to the instance when this tool set it and no enclave is left: writing
 * an empty list makes the driver tear the pool down (its CPUs come back online) and then
 * refuse the empty list (EINVAL, expected); with an enclave left it refuses (EPERM) and
 * the pool stays for that enclave's process to give back. */
static void pool_give_back(void)
{
	char mark[4096] = "", now[4096] = "";
	FILE *f = fopen(POOL_MARK, "r");
	if (f && !fgets(mark, sizeof(mark), f))
		mark[0] = 0;
	if (f)
		fclose(f);
	f = fopen(NE_POOL, "r");
	if (f && !fgets(now, sizeof(now), f))
		now[0] = 0;
	if (f)
		fclose(f);
	mark[strcspn(mark, "\n")] = 0;
	now[strcspn(now, "\n")] = 0;
	if (!mark[0])
		return;
	if (strcmp(mark, now)) { /* changed since by the user: theirs now */
		unlink(POOL_MARK);
		return;
	}
	write_text(NE_POOL, "\n");
	f = fopen(NE_POOL, "r");
	if (f && !fgets(now, sizeof(now), f))
		now[0] = 0;
	if (f)
		fclose(f);
	if (!f || now[0] == 0 || now[0] == '\n')
		unlink(POOL_MARK);
}

/* Gives back what this process took: the mapping, the huge pages it added and (when this
 * tool set it and no enclave is left) the CPU pool. The fd is closed first (by exit or by
 * the caller), so the driver has freed the slot, the CPUs and the pages' pins. */
static void release(void)
{
	if (mem_map) {
		munmap(mem_map, mem_len);
		mem_map = NULL;
	}
	if (sock_path[0])
		unlink(sock_path);
	int l = lock_fd >= 0 ? lock_fd : open(NET_RUN_DIR "/lock", O_RDWR | O_CLOEXEC);
	/* Never while another run counts free pages or sets the pool (it holds the lock for
	 * that only, not for a boot): the count it acts on would be wrong. */
	if (l >= 0 && (l == lock_fd || flock(l, LOCK_EX) == 0)) {
		FILE *f = hp_raised ? fopen(HP_DIR "/nr_hugepages", "r+") : NULL;
		unsigned long nr;
		if (f && fscanf(f, "%lu", &nr) == 1) {
			rewind(f);
			fprintf(f, "%lu\n", nr > hp_raised ? nr - hp_raised : 0);
		}
		if (f)
			fclose(f);
		hp_raised = 0;
		pool_give_back();
	}
	if (l >= 0 && l != lock_fd)
		close(l);
}

_Noreturn void net_fail(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (enclave_fd >= 0)
		close(enclave_fd); /* the driver frees the slot before the pool is looked at */
	release();
	if (report_fd >= 0) {
		dprintf(report_fd, "E%s", msg);
		close(report_fd);
	}
	_exit(1);
}

static _Noreturn void fail_ioctl(const char *what, int e)
{
	const char *t = net_ne_error(e), *n = net_ne_error_name(e);
	if (t && n)
		fail("%s: %s (%s)", what, t, n);
	if (t)
		fail("%s: %s (%s)", what, t, strerror(e));
	fail("%s: %s (errno %d)", what, strerror(e), e);
}

static int read_ulong(const char *path, unsigned long *v)
{
	FILE *f = fopen(path, "r");
	int ok = f && fscanf(f, "%lu", v) == 1;
	if (f)
		fclose(f);
	return ok ? 0 : -1;
}

static int write_text(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = write(fd, text, strlen(text));
	int e = n < 0 ? errno : 0;
	close(fd);
	return n < 0 ? -e : 0;
}

static uint64_t now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

static void reserve_hugepages(unsigned pages, unsigned memory_mib)
{
	unsigned long nr, free_pages, after;
	if (read_ulong(HP_DIR "/nr_hugepages", &nr) ||
	    read_ulong(HP_DIR "/free_hugepages", &free_pages))
		fail("this kernel has no 2 MiB huge pages (" HP_DIR "): it needs CONFIG_HUGETLBFS");
	if (free_pages >= pages)
		return;
	char v[32];
	snprintf(v, sizeof(v), "%lu\n", nr + (pages - free_pages));
	int rc = write_text(HP_DIR "/nr_hugepages", v);
	if (rc < 0)
		fail("cannot raise " HP_DIR "/nr_hugepages to %lu: %s (run as root)",
		     nr + (pages - free_pages), strerror(-rc));
	if (read_ulong(HP_DIR "/nr_hugepages", &after) == 0 && after > nr)
		hp_raised = (unsigned)(after - nr);
	if (read_ulong(HP_DIR "/free_hugepages", &free_pages) || free_pages < pages)
		fail("--memory %u needs %u huge pages of 2 MiB, the instance could reserve only "
		     "%lu: "
		     "lower --memory or give the instance more memory (nitro run --memory)",
		     memory_mib, pages, free_pages);
}

/* The core of each online CPU: the first CPU of its thread_siblings_list. */
static int read_topology(int core_of[NET_CPU_MAX])
{
	bool online[NET_CPU_MAX], sib[NET_CPU_MAX];
	char line[4096], path[128];
	FILE *f = fopen("/sys/devices/system/cpu/online", "r");
	if (!f || !fgets(line, sizeof(line), f) || net_cpulist_parse(line, online) < 0) {
		if (f)
			fclose(f);
		return -1;
	}
	fclose(f);
	int n = 0;
	for (int c = 0; c < NET_CPU_MAX; c++) {
		core_of[c] = -1;
		if (!online[c])
			continue;
		n = c + 1;
		snprintf(path, sizeof(path),
			 "/sys/devices/system/cpu/cpu%d/topology/thread_siblings_list", c);
		f = fopen(path, "r");
		core_of[c] = c;
		if (f && fgets(line, sizeof(line), f) && net_cpulist_parse(line, sib) > 0)
			for (int d = 0; d < NET_CPU_MAX; d++)
				if (sib[d]) {
					core_of[c] = d;
					break;
				}
		if (f)
			fclose(f);
	}
	return n;
}

static void ensure_pool(unsigned want)
{
	char line[4096] = "";
	bool pool[NET_CPU_MAX];
	FILE *f = fopen(NE_POOL, "r");
	if (!f)
		fail("no " NE_POOL ": load the driver (modprobe nitro_enclaves)");
	if (!fgets(line, sizeof(line), f))
		line[0] = 0;
	fclose(f);
	int n = net_cpulist_parse(line, pool);
	if (n > 0)
		return; /* the user's pool: NE_ADD_VCPU says if it is too small */
	static int core_of[NET_CPU_MAX];
	int ncpus = read_topology(core_of);
	unsigned eligible = 0;
	if (ncpus < 0 || net_pool_choose(core_of, ncpus, want, pool, &eligible) < 0)
		fail("--cpu-count %u: the enclave CPU pool takes whole cores other than CPU 0's, "
		     "and "
		     "this instance has %u such CPU(s) online: lower --cpu-count or start the "
		     "instance with more vCPUs (nitro run --cpus %u or more)",
		     want, eligible, want + 2);
	char list[1024];
	if (net_cpulist_format(pool, list, sizeof(list)) < 0)
		fail("CPU pool list too long");
	int rc = write_text(NE_POOL, list);
	if (rc < 0)
		fail("cannot set the enclave CPU pool (" NE_POOL " = %s): %s", list, strerror(-rc));
	FILE *m = fopen(POOL_MARK, "w"); /* given back by the last enclave's process */
	if (m) {
		fprintf(m, "%s\n", list);
		fclose(m);
	}
}

static void instance_id(char *out, size_t len)
{
	FILE *f = fopen("/sys/devices/virtual/dmi/id/board_asset_tag", "r");
	out[0] = 0;
	if (f) {
		if (!fgets(out, (int)len, f))
			out[0] = 0;
		fclose(f);
	}
	out[strcspn(out, " \t\r\n")] = 0;
}

/* The broker's word that the enclave's heartbeat came (hb.h); an enclave that stops first
 * is reported at once. */
static void wait_heartbeat(int hb, int efd, uint64_t timeout_ms)
{
	uint64_t end = now_ms() + timeout_ms;
	for (;;) {
		uint64_t t = now_ms();
		if (t >= end)
			fail("the enclave sent no heartbeat within %" PRIu64
			     " s: its init must connect "
			     "to CID 3 port 9000 and send 0xB7 (aws-nitro-enclaves-sdk-bootstrap's "
			     "init "
			     "does); run it with --debug-mode and read `nitro-enclave console`",
			     timeout_ms / 1000);
		struct pollfd p[2] = {{.fd = hb, .events = POLLIN}, {.fd = efd, .events = POLLIN}};
		int r = poll(p, 2, (int)(end - t));
		if (r < 0 && errno != EINTR)
			fail("poll: %s", strerror(errno));
		if (r <= 0)
			continue;
		if (p[1].revents & (POLLHUP | POLLERR))
			fail(
			    "the enclave stopped before its heartbeat (the image did not boot: run "
			    "it with --debug-mode and read `nitro-enclave console`)");
		if (!p[0].revents)
			continue;
		unsigned char b = 0;
		if (read(hb, &b, 1) == 1 && b == HEARTBEAT)
			return;
		fail("the heartbeat listener of " NET_RUN_DIR "/heartbeat.sock ended before the "
		     "enclave's heartbeat came (too many runs at once, or it was killed)");
	}
}

/* The enclave process: everything of `run` after the fork. */
static _Noreturn void enclave_process(const struct net_args *a, const uint8_t *eif, size_t eif_len)
{
	struct net_enclave e = {
	    .pid = getpid(), .debug = a->debug_mode, .memory_mib = a->memory_mib};
	snprintf(e.name, sizeof(e.name), "%s", a->name);
	/* a minimal instance (an initramfs guest) may have no /run at all */
	if ((mkdir("/run", 0755) < 0 && errno != EEXIST) ||
	    (mkdir(NET_RUN_DIR, 0700) < 0 && errno != EEXIST))
		fail("cannot create " NET_RUN_DIR ": %s (run as root)", strerror(errno));
	char err[512];
	int hb = net_hb_join(err, sizeof(err)); /* before any fd or mapping a fork would copy */
	if (hb < 0)
		fail("%s", err);
	lock_fd = open(NET_RUN_DIR "/lock", O_CREAT | O_RDWR | O_CLOEXEC, 0600);
	if (lock_fd < 0 || flock(lock_fd, LOCK_EX) < 0)
		fail("cannot lock " NET_RUN_DIR "/lock: %s", strerror(errno));

	int nefd = open(NE_DEV, O_RDWR | O_CLOEXEC);
	if (nefd < 0) {
		struct stat st;
		if (errno == ENOENT && stat("/sys/module/nitro_enclaves", &st) == 0)
			fail(NE_DEV
			     " is missing: the nitro_enclaves driver found no Nitro Enclaves "
			     "device; start the instance with enclaves (nitro run --enclaves)");
		if (errno == ENOENT)
			fail(NE_DEV
			     " is missing: load the driver (modprobe nitro_enclaves, or insmod "
			     "nitro_enclaves.ko)");
		fail_ioctl("open " NE_DEV, errno);
	}
	unsigned pages = a->memory_mib / 2;
	reserve_hugepages(pages, a->memory_mib);
	mem_len = (size_t)a->memory_mib << 20;
	void *m =
	    mmap(NULL, mem_len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_HUGE_2MB | MAP_POPULATE, -1, 0);
	if (m == MAP_FAILED)
		fail("cannot map %u MiB of 2 MiB huge pages: %s: lower --memory or give the "
		     "instance more memory",
		     a->memory_mib, strerror(errno));
	mem_map = m;
	ensure_pool(a->cpu_count);

	int efd = ioctl(nefd, NE_CREATE_VM, &e.slot);
	if (efd < 0)
		fail_ioctl("NE_CREATE_VM", errno);
	enclave_fd = efd;
	close(nefd);
	close(lock_fd); /* the pages are taken, the pool set, the enclave counted */
	lock_fd = -1;
	struct ne_image_load_info li = {.flags = NE_EIF_IMAGE};
	if (ioctl(efd, NE_GET_IMAGE_LOAD_INFO, &li) < 0)
		fail_ioctl("NE_GET_IMAGE_LOAD_INFO", errno);
	if (net_check_fit(a->memory_mib, eif_len, li.memory_offset, err, sizeof(err)))
		fail("%s", err);
	memcpy((uint8_t *)m + li.memory_offset, eif, eif_len);
	struct ne_user_memory_region r = {.flags = NE_DEFAULT_MEMORY_REGION,
					  .memory_size = mem_len,
					  .userspace_addr = (uintptr_t)m};
	if (ioctl(efd, NE_SET_USER_MEMORY_REGION, &r) < 0)
		fail_ioctl("NE_SET_USER_MEMORY_REGION", errno);
	for (unsigned i = 0; i < a->cpu_count; i++) {
		uint32_t id = 0;
		if (ioctl(efd, NE_ADD_VCPU, &id) < 0) {
			char what[64];
			snprintf(what, sizeof(what), "NE_ADD_VCPU (vCPU %u of %u)", i + 1,
				 a->cpu_count);
			fail_ioctl(what, errno);
		}
		e.cpu[e.ncpus++] = id;
	}

	struct ne_enclave_start_info si = {.flags = a->debug_mode ? NE_ENCLAVE_DEBUG_MODE
								  : NE_ENCLAVE_PRODUCTION_MODE,
					   .enclave_cid = a->enclave_cid};
	if (ioctl(efd, NE_START_ENCLAVE, &si) < 0)
		fail_ioctl("NE_START_ENCLAVE", errno);
	e.cid = si.enclave_cid;
	if (net_hb_name_cid(hb, e.cid) < 0)
		fail("the heartbeat listener of " NET_RUN_DIR "/heartbeat.sock is gone");
	wait_heartbeat(hb, efd, net_heartbeat_timeout_ms(eif_len, mem_len));
	close(hb);

	char inst[64];
	instance_id(inst, sizeof(inst));
	net_enclave_id(inst, e.slot, e.id, sizeof(e.id));
	snprintf(sock_path, sizeof(sock_path), NET_RUN_DIR "/%s.sock", e.id);
	net_serve(efd, &e, sock_path, release);
}

void net_report_ready(const char *json)
{
	if (report_fd < 0)
		return;
	dprintf(report_fd, "J%s", json);
	close(report_fd);
	report_fd = -1;
}

int net_cmd_run(const struct net_args *a)
{
	int fd = open(a->eif_path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		fprintf(stderr, "nitro-enclave: run: %s: %s\n", a->eif_path, strerror(errno));
		return 1;
	}
	if (!S_ISREG(st.st_mode) || st.st_size <= 0) {
		fprintf(stderr, "nitro-enclave: run: %s: not a regular, non-empty file\n",
			a->eif_path);
		return 1;
	}
	size_t len = (size_t)st.st_size;
	uint8_t *eif = malloc(len);
	size_t got = 0;
	while (eif && got < len) {
		ssize_t n = read(fd, eif + got, len - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	char err[512];
	if (!eif || got != len) {
		fprintf(stderr, "nitro-enclave: run: cannot read %s\n", a->eif_path);
		return 1;
	}
	if (net_eif_check(eif, len, err, sizeof(err))) {
		fprintf(stderr, "nitro-enclave: run: %s: %s\n", a->eif_path, err);
		return 1;
	}
	if (net_check_fit(a->memory_mib, len, NET_IMAGE_OFFSET_DEFAULT, err, sizeof(err))) {
		fprintf(stderr, "nitro-enclave: %s\n", err);
		return 1;
	}
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0) {
		perror("nitro-enclave: pipe");
		return 1;
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		perror("nitro-enclave: fork");
		return 1;
	}
	if (pid == 0) {
		close(p[0]);
		report_fd = p[1];
		setsid();
		if (chdir("/") < 0) {
			/* nothing relies on the working directory */
		}
		int nul = open("/dev/null", O_RDWR);
		if (nul >= 0) { /* never keep the caller's pipes open */
			dup2(nul, 0);
			dup2(nul, 1);
			dup2(nul, 2);
			if (nul > 2)
				close(nul);
		}
		enclave_process(a, eif, len);
	}
	close(p[1]);
	free(eif);
	static char msg[NET_CTL_MAX + 8];
	size_t o = 0;
	ssize_t n;
	while (o + 1 < sizeof(msg) && (n = read(p[0], msg + o, sizeof(msg) - 1 - o)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		o += (size_t)n;
	}
	msg[o] = 0;
	close(p[0]);
	if (o > 0 && msg[0] == 'J') {
		printf("%s\n", msg + 1);
		return 0;
	}
	waitpid(pid, NULL, WNOHANG);
	fprintf(stderr, "nitro-enclave: run: %s\n",
		o > 1 ? msg + 1 : "the enclave process ended without a word");
	return 1;
}
