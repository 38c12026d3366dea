/* Command-line parsing and the checks that need no KVM. */
#include "boot/config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/virtio_ids.h>

#include "boot/kernel.h"
#include "boot/memory.h"
#include "lib/util.h"

const char hv_options_help[] =
    "  --kernel PATH        bzImage to boot\n"
    "  --initrd PATH        initramfs\n"
    "  --kernel-fd N, --initrd-fd N\n"
    "                       the same, from an open file (nitrod hands over what it measured)\n"
    "  --kernel-sha384 HEX, --initrd-sha384 HEX, --vmlinux-sha384 HEX\n"
    "                       refuse a kernel, initrd or host-decompressed vmlinux whose\n"
    "                       SHA-384 differs (what the security chip measured)\n"
    "  --kernel-sha256 HEX, --initrd-sha256 HEX\n"
    "                       the same file's SHA-256, computed in the pass that gave its\n"
    "                       --*-sha384: extended into the TPM's SHA-256 bank as given\n"
    "  --cmdline STR        kernel command line (default: \"" HV_DEFAULT_CMDLINE "\")\n"
    "  --cpus N             vCPUs (default 1)\n"
    "  --memory MiB         guest RAM in MiB (default 256, at least 64)\n"
    "  --no-reboot          exit 0 when the guest reboots instead of booting it again\n"
    "  --console-log PATH   also append the serial console to PATH\n"
    "  --console-max BYTES  cap a console file (stdout when a regular file, --console-log):\n"
    "                       past it the oldest half is dropped (4096 or more; default none)\n"
    "  --no-host-decompress let the guest decompress its kernel itself\n"
    "  --require-kvm        fail instead of using the emulated host when /dev/kvm is missing\n"
    "  --stats              print the hypervisor's exit counts when the guest ends\n"
    "  --instance-type T    SMBIOS product name (default: from --cpus/--memory, e.g. m5.large)\n"
    "  --instance-id ID     i- and 17 hex digits: SMBIOS system UUID and serial ec2...\n"
    "  --vhost-user blk,SOCKET | net,SOCKET | nvme,SOCKET | vsock,SOCKET | nsm,SOCKET\n"
    "                       a virtio-blk, virtio-net, virtio-vsock or NSM PCI device, or an\n"
    "                       NVMe controller (docs/nvme.md), served by the card at SOCKET\n"
    "                       (repeatable); vsock,fd=N | nsm,fd=N: a connection the enclave\n"
    "                       spawner made and identified, at fd N (enclave mode)\n"
    "  --enclave-hello cid=N[,debug]\n"
    "                       act as enclave CID N towards the vsock and NSM cards (tests: the\n"
    "                       ENW_HELLO an enclave sends, docs/vsock.md)\n"
    "  --tpm-card SOCKET    a TPM 2.0 (CRB, measured boot) served by nitro-card-tpm at SOCKET\n"
    "  --enclaves           the Nitro Enclaves PCI device (1d0f:e4c1; docs/enclaves.md) and\n"
    "                       the enclave spawner\n"
    "  --enclave-vsock SOCKET, --enclave-nsm SOCKET\n"
    "                       the cards its enclaves connect to\n"
    "  --enclave-console-dir DIR\n"
    "                       debug-mode enclaves' consoles: DIR/enclave-UID.log, the newest\n"
    "                       64 KiB at least, kept after the enclave ends\n"
    "  --enclave-exe-fd N   the spawner execs fd N (this executable, as its launcher measured\n"
    "                       it) rather than /proc/self/exe (a jail has no /proc)\n"
    "  --enclave            enclave mode: boot the EIF at 8 MiB in --enclave-mem (no --kernel)\n"
    "  --enclave-mem FD:OFF:SIZE[,OFF:SIZE...]\n"
    "                       the enclave's RAM: ranges of the memfd FD, in guest order\n"
    "  --enclave-cid C, --enclave-slot UID, --enclave-parent-id ID, --enclave-debug,\n"
    "  --enclave-ready-fd N the enclave's identity; N gets one byte once the EIF is accepted\n"
    "  --enclave-console-feed fd=N\n"
    "                       debug mode: the console feed to the vsock card the spawner opened\n";

void hv_config_defaults(struct hv_config *c)
{
	memset(c, 0, sizeof(*c));
	c->cmdline = HV_DEFAULT_CMDLINE;
	c->cpus = HV_DEFAULT_CPUS;
	c->mem_mib = HV_DEFAULT_MEM_MIB;
	c->kernel_fd = c->initrd_fd = -1;
	c->enclave_mem_fd = c->enclave_ready_fd = c->enclave_exe_fd = c->enclave_feed_fd = -1;
}

int hv_enclave_mem_parse(const char *v, struct hv_config *c, char *err, size_t errlen)
{
	char buf[16 * 1024];
	if (strlen(v) >= sizeof(buf))
		RETURN_ERR(-1, "--enclave-mem: too long");
	strcpy(buf, v);
	char *colon = strchr(buf, ':');
	uint64_t n;
	if (!colon)
		RETURN_ERR(-1, "--enclave-mem %s: expected FD:OFF:SIZE[,OFF:SIZE...]", v);
	*colon = 0;
	if (!parse_u64(buf, 0, INT32_MAX, &n))
		RETURN_ERR(-1, "--enclave-mem: %s is not a file descriptor", buf);
	c->enclave_mem_fd = (int)n;
	c->enclave_npieces = 0;
	char *save = NULL;
	for (char *t = strtok_r(colon + 1, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		char *sep = strchr(t, ':');
		uint64_t off, size;
		if (!sep)
			RETURN_ERR(-1, "--enclave-mem: range %s: expected OFF:SIZE", t);
		*sep = 0;
		if (!parse_u64(t, 0, MEM_MAX, &off) || !parse_u64(sep + 1, 1, MEM_MAX, &size))
			RETURN_ERR(-1, "--enclave-mem: range %s:%s: not byte numbers", t, sep + 1);
		if ((off | size) & 0xfff)
			RETURN_ERR(-1, "--enclave-mem: range %s:%s: not page aligned", t, sep + 1);
		if (c->enclave_npieces == MEM_MAX_PIECES)
			RETURN_ERR(-1, "--enclave-mem: more than %d ranges", MEM_MAX_PIECES);
		c->enclave_mem[c->enclave_npieces++] =
		    (struct mem_piece){.mp_fd_off = off, .mp_size = size};
	}
	if (!c->enclave_npieces)
		RETURN_ERR(-1, "--enclave-mem %s: no range", v);
	return 0;
}

static bool parse_hex(const char *s, uint8_t *out, size_t n)
{
	if (strlen(s) != 2 * n)
		return false;
	for (size_t i = 0; i < 2 * n; i++) {
		char ch = s[i];
		int x = ch >= '0' && ch <= '9'	 ? ch - '0'
			: ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
						 : -1;
		if (x < 0)
			return false;
		if (i % 2 == 0)
			out[i / 2] = (uint8_t)(x << 4);
		else
			out[i / 2] |= (uint8_t)x;
	}
	return true;
}

#define USAGE(...) RETURN_ERR(2, __VA_ARGS__)

bool hv_instance_id_ok(const char *v)
{
	if (strncmp(v, "i-", 2) || strlen(v) != 19)
		return false;
	for (int i = 2; i < 19; i++)
		if (!((v[i] >= '0' && v[i] <= '9') || (v[i] >= 'a' && v[i] <= 'f')))
			return false;
	return true;
}

const char *hv_default_instance_type(unsigned ncpus, uint64_t mem_mib, char buf[32])
{
	static const char *const big[] = {"large",   "xlarge",	 "2xlarge",  "4xlarge",
					  "8xlarge", "12xlarge", "16xlarge", "24xlarge"};
	static const unsigned big_cpus[] = {2, 4, 8, 16, 32, 48, 64};
	static const char *const t3[] = {"nano", "micro", "small", "medium", "large", "xlarge"};
	uint64_t per = ncpus ? mem_mib / ncpus : mem_mib;
	if (per < 1536) { /* burstable: named by memory */
		size_t i = 0;
		for (uint64_t m = 512; i + 1 < sizeof(t3) / sizeof(t3[0]) && mem_mib > m; m *= 2)
			i++;
		snprintf(buf, 32, "t3.%s", mem_mib > 16384 ? "2xlarge" : t3[i]);
		return buf;
	}
	size_t i = 0;
	while (i < sizeof(big_cpus) / sizeof(big_cpus[0]) && ncpus > big_cpus[i])
		i++;
	snprintf(buf, 32, "%s.%s", per >= 7168 ? "r5" : per >= 3584 ? "m5" : "c5", big[i]);
	return buf;
}

bool hv_instance_type_ok(const char *v)
{
	size_t n = strlen(v);
	if (n < 3 || n > 64 || !strchr(v, '.'))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((v[i] >= '0' && v[i] <= '9') || (v[i] >= 'a' && v[i] <= 'z') || v[i] == '.' ||
		      v[i] == '-'))
			return false;
	return true;
}

static uint64_t host_ram_mib(void)
{
	long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
	if (pages <= 0 || psz <= 0)
		return HV_MAX_MEM_MIB;
	return (uint64_t)pages * (uint64_t)psz >> 20;
}

bool hv_card_enclave_facing(unsigned type)
{
	return type == VIRTIO_ID_VSOCK || type == VIRTIO_ID_NITRO_SEC_MOD;
}

/* --enclave-hello cid=N[,debug]: a test enclave's identity (zero PCRs). 0, or -1. */
static int parse_hello(const char *v, struct enw_hello *h)
{
	char buf[64], *save = NULL;
	uint64_t cid = 0;
	if (strlen(v) >= sizeof(buf))
		return -1;
	snprintf(buf, sizeof(buf), "%s", v);
	memset(h, 0, sizeof(*h));
	h->version = ENW_VERSION;
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (!strncmp(t, "cid=", 4) && !cid) {
			if (!parse_u64(t + 4, 4, UINT32_MAX - 1, &cid))
				return -1;
		} else if (!strcmp(t, "debug")) {
			h->flags |= ENW_FLAG_DEBUG;
		} else {
			return -1;
		}
	}
	if (!cid)
		return -1;
	h->cid = cid;
	snprintf(h->module_id, sizeof(h->module_id), "i-test-enc%llu", (unsigned long long)cid);
	return enw_hello_check(h) ? -1 : 0;
}

int hv_config_parse(int argc, char **argv, struct hv_config *c, char *err, size_t errlen)
{
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		bool takes =
		    !strcmp(a, "--kernel") || !strcmp(a, "--initrd") || !strcmp(a, "--cmdline") ||
		    !strcmp(a, "--cpus") || !strcmp(a, "--memory") || !strcmp(a, "--console-log") ||
		    !strcmp(a, "--console-max") || !strcmp(a, "--cache-dir") ||
		    !strcmp(a, "--vhost-user") || !strcmp(a, "--tpm-card") ||
		    !strcmp(a, "--kernel-fd") || !strcmp(a, "--initrd-fd") ||
		    !strcmp(a, "--kernel-sha384") || !strcmp(a, "--initrd-sha384") ||
		    !strcmp(a, "--vmlinux-sha384") || !strcmp(a, "--kernel-sha256") ||
		    !strcmp(a, "--initrd-sha256") || !strcmp(a, "--instance-type") ||
		    !strcmp(a, "--instance-id") || !strcmp(a, "--enclave-mem") ||
		    !strcmp(a, "--enclave-cid") || !strcmp(a, "--enclave-slot") ||
		    !strcmp(a, "--enclave-parent-id") || !strcmp(a, "--enclave-ready-fd") ||
		    !strcmp(a, "--enclave-vsock") || !strcmp(a, "--enclave-nsm") ||
		    !strcmp(a, "--enclave-hello") || !strcmp(a, "--enclave-exe-fd") ||
		    !strcmp(a, "--enclave-console-dir") || !strcmp(a, "--enclave-console-feed");
		if (takes && !v)
			USAGE("%s: missing value", a);
		if (takes)
			i++;
		uint64_t n;
		if (!strcmp(a, "--kernel")) {
			c->kernel = v;
			c->kernel_fd = -1;
		} else if (!strcmp(a, "--initrd")) {
			c->initrd = v;
			c->initrd_fd = -1;
		} else if (!strcmp(a, "--kernel-fd") || !strcmp(a, "--initrd-fd")) {
			if (!parse_u64(v, 3, INT32_MAX, &n))
				USAGE("%s %s: expected an open file descriptor (3 or more)", a, v);
			bool k = a[2] == 'k';
			char *label = k ? c->kernel_label : c->initrd_label;
			snprintf(label, sizeof(c->kernel_label), "fd %d", (int)n);
			*(k ? &c->kernel_fd : &c->initrd_fd) = (int)n;
			*(k ? &c->kernel : &c->initrd) = label;
		} else if (!strcmp(a, "--kernel-sha384") || !strcmp(a, "--initrd-sha384") ||
			   !strcmp(a, "--vmlinux-sha384")) {
			uint8_t *d = a[2] == 'k'   ? c->kernel_sha384
				     : a[2] == 'i' ? c->initrd_sha384
						   : c->vmlinux_sha384;
			if (!parse_hex(v, d, HV_DIGEST_LEN))
				USAGE("%s: expected %d lower-case hex digits", a,
				      2 * HV_DIGEST_LEN);
			*(a[2] == 'k'	? &c->want_kernel
			  : a[2] == 'i' ? &c->want_initrd
					: &c->want_vmlinux) = true;
		} else if (!strcmp(a, "--kernel-sha256") || !strcmp(a, "--initrd-sha256")) {
			bool k = a[2] == 'k';
			if (!parse_hex(v, k ? c->kernel_sha256 : c->initrd_sha256, HV_SHA256_LEN))
				USAGE("%s: expected %d lower-case hex digits", a,
				      2 * HV_SHA256_LEN);
			*(k ? &c->have_kernel_sha256 : &c->have_initrd_sha256) = true;
		} else if (!strcmp(a, "--cmdline")) {
			c->cmdline = v;
		} else if (!strcmp(a, "--console-log")) {
			c->console_log = v;
		} else if (!strcmp(a, "--console-max")) {
			if (!parse_u64(v, 4096, UINT64_MAX / 2, &n))
				USAGE("--console-max %s: expected a number of bytes, at least 4096",
				      v);
			c->console_max = n;
		} else if (!strcmp(a, "--instance-type")) {
			if (!hv_instance_type_ok(v))
				USAGE("--instance-type %s: expected a name like m5.large", v);
			c->instance_type = v;
		} else if (!strcmp(a, "--instance-id")) {
			if (!hv_instance_id_ok(v))
				USAGE("--instance-id %s: expected i- and 17 hex digits", v);
			c->instance_id = v;
		} else if (!strcmp(a, "--cache-dir")) {
			c->cache_dir = v;
		} else if (!strcmp(a, "--cpus")) {
			if (!parse_u64(v, 0, UINT64_MAX, &n))
				USAGE("--cpus %s: not a number", v);
			if (n < 1 || n > HV_MAX_CPUS)
				USAGE("--cpus %s: must be 1 to %u", v, HV_MAX_CPUS);
			c->cpus = (unsigned)n;
		} else if (!strcmp(a, "--memory")) {
			if (!parse_u64(v, 0, UINT64_MAX, &n))
				USAGE("--memory %s: not a number of MiB", v);
			if (n < HV_MIN_MEM_MIB || n > HV_MAX_MEM_MIB)
				USAGE("--memory %s: must be %u to %u MiB", v, HV_MIN_MEM_MIB,
				      HV_MAX_MEM_MIB);
			if (n > host_ram_mib())
				USAGE("--memory %s: more than this host's %llu MiB of RAM", v,
				      (unsigned long long)host_ram_mib());
			c->mem_mib = n;
		} else if (!strcmp(a, "--vhost-user")) {
			if (c->ncards == HV_MAX_CARDS)
				USAGE("--vhost-user: at most %u devices", HV_MAX_CARDS);
			static const struct {
				const char *prefix;
				unsigned type;
			} kinds[] = {{"blk,", VIRTIO_ID_BLOCK},
				     {"net,", VIRTIO_ID_NET},
				     {"nvme,", HV_CARD_NVME},
				     {"vsock,", VIRTIO_ID_VSOCK},
				     {"nsm,", VIRTIO_ID_NITRO_SEC_MOD}};
			unsigned type = 0;
			size_t skip = 0;
			for (size_t k = 0; k < ARRAY_SIZE(kinds); k++)
				if (!strncmp(v, kinds[k].prefix, strlen(kinds[k].prefix))) {
					type = kinds[k].type;
					skip = strlen(kinds[k].prefix);
				}
			if (!type || !v[skip])
				USAGE("--vhost-user %s: expected blk,SOCKET, net,SOCKET, "
				      "nvme,SOCKET, "
				      "vsock,SOCKET or nsm,SOCKET",
				      v);
			struct hv_card card = {.type = type,
					       .socket = v + skip,
					       .fd = -1,
					       .enclave = hv_card_enclave_facing(type)};
			if (!strncmp(v + skip, "fd=", 3)) {
				if (!card.enclave || !parse_u64(v + skip + 3, 3, INT32_MAX, &n))
					USAGE("--vhost-user %s: fd=N (3 or more) only for vsock "
					      "and nsm",
					      v);
				card.fd = (int)n;
				card.socket = NULL;
			}
			c->cards[c->ncards++] = card;
		} else if (!strcmp(a, "--enclave-hello")) {
			if (parse_hello(v, &c->hello))
				USAGE("--enclave-hello %s: expected cid=N[,debug] with N from 4 to "
				      "4294967294",
				      v);
			c->have_hello = true;
			c->pcrs = (struct enw_pcrs){.version = ENW_VERSION};
		} else if (!strcmp(a, "--tpm-card")) {
			if (!*v)
				USAGE("--tpm-card: empty socket path");
			c->tpm_card = v;
		} else if (!strcmp(a, "--enclave")) {
			c->enclave = true;
		} else if (!strcmp(a, "--enclave-debug")) {
			c->enclave_debug = true;
		} else if (!strcmp(a, "--enclaves")) {
			c->enclaves = true;
		} else if (!strcmp(a, "--enclave-mem")) {
			if (hv_enclave_mem_parse(v, c, err, errlen) < 0)
				return 2;
		} else if (!strcmp(a, "--enclave-cid")) {
			if (!parse_u64(v, 4, UINT32_MAX - 1ull, &n))
				USAGE("--enclave-cid %s: must be 4 to %u", v, UINT32_MAX - 1);
			c->enclave_cid = n;
		} else if (!strcmp(a, "--enclave-slot")) {
			if (!parse_u64(v, 0, UINT64_MAX, &n))
				USAGE("--enclave-slot %s: not a number", v);
			c->enclave_slot = n;
		} else if (!strcmp(a, "--enclave-parent-id")) {
			if (!hv_instance_id_ok(v))
				USAGE("--enclave-parent-id %s: expected i- and 17 hex digits", v);
			c->enclave_parent = v;
		} else if (!strcmp(a, "--enclave-ready-fd")) {
			if (!parse_u64(v, 3, INT32_MAX, &n))
				USAGE(
				    "--enclave-ready-fd %s: expected a file descriptor (3 or more)",
				    v);
			c->enclave_ready_fd = (int)n;
		} else if (!strcmp(a, "--enclave-console-feed")) {
			if (strncmp(v, "fd=", 3) || !parse_u64(v + 3, 3, INT32_MAX, &n))
				USAGE("--enclave-console-feed %s: expected fd=N (3 or more)", v);
			c->enclave_feed_fd = (int)n;
		} else if (!strcmp(a, "--enclave-exe-fd")) {
			if (!parse_u64(v, 3, INT32_MAX, &n))
				USAGE("--enclave-exe-fd %s: expected a file descriptor (3 or more)",
				      v);
			c->enclave_exe_fd = (int)n;
		} else if (!strcmp(a, "--enclave-vsock") || !strcmp(a, "--enclave-nsm")) {
			if (!*v)
				USAGE("%s: empty socket path", a);
			*(a[10] == 'v' ? &c->enclave_vsock : &c->enclave_nsm) = v;
		} else if (!strcmp(a, "--enclave-console-dir")) {
			if (!*v)
				USAGE("%s: empty folder", a);
			c->enclave_console_dir = v;
		} else if (!strcmp(a, "--no-reboot")) {
			c->no_reboot = true;
		} else if (!strcmp(a, "--stats")) {
			c->stats = true;
		} else if (!strcmp(a, "--no-host-decompress")) {
			c->no_decompress = true;
		} else if (!strcmp(a, "--require-kvm")) {
			c->require_kvm = true;
		} else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			c->help = true;
		} else {
			USAGE("%s: unknown option", a);
		}
	}
	if (c->enclave) {
		if (c->kernel || c->initrd)
			USAGE("--enclave: the kernel and ramdisks come from the EIF, not --kernel");
		if (!c->enclave_npieces)
			USAGE("--enclave: no --enclave-mem");
		if (!c->enclave_cid)
			USAGE("--enclave: no --enclave-cid");
		if (c->enclaves || c->tpm_card || c->have_hello)
			USAGE("--enclave: no --enclaves, --tpm-card or --enclave-hello in an "
			      "enclave");
		for (unsigned i = 0; i < c->ncards; i++)
			if (c->cards[i].fd < 0)
				USAGE("--enclave: --vhost-user %s: an enclave's cards are "
				      "connections its spawner made (KIND,fd=N)",
				      c->cards[i].socket);
		return 0;
	}
	for (unsigned i = 0; i < c->ncards; i++)
		if (c->cards[i].fd >= 0)
			USAGE("--vhost-user ...,fd=%d: only in enclave mode (--enclave)",
			      c->cards[i].fd);
	if (c->enclave_npieces || c->enclave_cid || c->enclave_debug || c->enclave_ready_fd >= 0 ||
	    c->enclave_feed_fd >= 0)
		USAGE("--enclave-*: only with --enclave");
	if (!c->kernel && !c->help && !c->kernel_optional)
		USAGE("--kernel: missing");
	if (c->want_initrd && !c->initrd)
		USAGE("--initrd-sha384: no --initrd");
	/* A SHA-256 is taken as given only beside the SHA-384 the loaded bytes must match. */
	if (c->have_kernel_sha256 && !c->want_kernel)
		USAGE("--kernel-sha256: no --kernel-sha384");
	if (c->have_initrd_sha256 && !c->want_initrd)
		USAGE("--initrd-sha256: no --initrd-sha384");
	return 0;
}

#define FAIL(...) RETURN_ERR(1, __VA_ARGS__)

int hv_config_check(const struct hv_config *c, struct hv_images *img, char *err, size_t errlen)
{
	memset(img, 0, sizeof(*img));
	img->initrd_fd = -1;
	int e = c->kernel_fd >= 0
		    ? read_fd(c->kernel_fd, HV_KERNEL_MAX, &img->kernel, &img->kernel_len)
		    : read_file(c->kernel, HV_KERNEL_MAX, &img->kernel, &img->kernel_len);
	if (e == ENODEV)
		FAIL("kernel %s: not a regular file", c->kernel);
	if (e == EFBIG)
		FAIL("kernel %s: larger than %u MiB, not a kernel", c->kernel, HV_KERNEL_MAX >> 20);
	if (e)
		FAIL("kernel %s: %s", c->kernel, strerror(e));
	if (c->want_kernel || (c->cache_dir && !c->no_decompress)) {
		if (kernel_sha384(img->kernel, img->kernel_len, img->kernel_sha384) < 0)
			FAIL("kernel %s: SHA-384 unavailable", c->kernel);
		img->have_sha384 = true;
		if (c->want_kernel && memcmp(img->kernel_sha384, c->kernel_sha384, HV_DIGEST_LEN))
			FAIL("kernel %s: not the file that was measured (SHA-384 differs)",
			     c->kernel);
	}
	char why[256];
	if (bzimage_parse(img->kernel, img->kernel_len, &img->bz, why, sizeof(why)) < 0)
		FAIL("kernel %s: %s", c->kernel, why);
	if (boot_check_cmdline(&img->bz, c->cmdline, why, sizeof(why)) < 0)
		FAIL("--cmdline: %s", why);
	if (c->initrd) {
		int fd = c->initrd_fd >= 0 ? c->initrd_fd
					   : open(c->initrd, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
		struct stat st;
		if (fd < 0 || fstat(fd, &st) < 0) {
			e = errno;
			if (fd >= 0 && fd != c->initrd_fd)
				close(fd);
			FAIL("initrd %s: %s", c->initrd, strerror(e));
		}
		img->initrd_fd = fd;
		if (!S_ISREG(st.st_mode))
			FAIL("initrd %s: not a regular file", c->initrd);
		if (st.st_size == 0)
			FAIL("initrd %s: empty file", c->initrd);
		img->initrd_size = (uint64_t)st.st_size;
	}
	struct guest_mem layout;
	mem_layout(&layout, c->mem_mib << 20);
	struct boot_plan bp;
	uint64_t kend = img->bz.bz_pref_address + img->bz.bz_init_size;
	if (kend > layout.gm_regions[0].mr_size)
		FAIL("--memory %llu: this kernel needs at least %llu MiB",
		     (unsigned long long)c->mem_mib, (unsigned long long)((kend >> 20) + 16));
	if (boot_plan(&img->bz, &layout, 0, BOOT_HIGH, kend, img->initrd_size, &bp, why,
		      sizeof(why)) < 0)
		FAIL("initrd %s: %s", c->initrd, why);
	return 0;
}

void hv_images_release(const struct hv_config *c, struct hv_images *img)
{
	free(img->kernel);
	img->kernel = NULL;
	if (img->initrd_fd >= 0 && img->initrd_fd != c->initrd_fd)
		close(img->initrd_fd);
	img->initrd_fd = -1;
}
