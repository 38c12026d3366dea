/* The hypervisor's command line, shared by `nitro-hv` and `nitro run` (which checks
 * everything it can before it starts a hypervisor or an emulated host).
 *
 * hv_config_parse() takes the options below and fails with status 2 (usage) on an
 * unknown flag, a missing value or a number out of range. hv_config_check() then reads
 * the kernel, checks its setup header, the initrd and the command line against the
 * memory size, and fails with status 1. Messages name the argument and the reason.
 */
#ifndef NITRO_BOOT_CONFIG_H
#define NITRO_BOOT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "boot/boot.h"
#include "boot/memory.h"
#include "lib/enclave_wire.h"

#define HV_DEFAULT_CMDLINE "console=ttyS0 reboot=k panic=-1"
#define HV_DEFAULT_CPUS 1
#define HV_DEFAULT_MEM_MIB 256
#define HV_MIN_MEM_MIB 64
#define HV_MAX_MEM_MIB (1024u * 1024u) /* 1 TiB */
#define HV_MAX_CPUS 254
#define HV_KERNEL_MAX (256u << 20)

#define HV_MAX_CARDS 8

#define HV_CARD_NVME 0x100 /* an NVMe controller (src/hv/nvme_pci.c), not a virtio id */

struct hv_card {
	unsigned type; /* VIRTIO_ID_NET, _BLOCK, _VSOCK, _NITRO_SEC_MOD (<linux/virtio_ids.h>) or
			* HV_CARD_NVME */
	const char *socket; /* NULL with fd */
	/* --vhost-user KIND,fd=N: a connection already made and identified by the enclave
	 * spawner (enclave_wire.h), handed over at fd N (enclave-facing kinds only); else -1.
	 * It cannot be made again: no reconnection after a card restart. */
	int fd;
	/* A card that serves several VMs (vsock; nsm): when nitro-hv has an enclave identity
	 * (hv_config.hello), its connection opens with that ENW_HELLO (hv_card_enclave_facing). */
	bool enclave;
};

/* Whether a card of this type gets the hello (src/lib/enclave_wire.h). */
bool hv_card_enclave_facing(unsigned type);

#define HV_DIGEST_LEN 48 /* SHA-384 */
#define HV_SHA256_LEN 32

struct hv_config {
	const char *kernel; /* a path, or "fd N" with --kernel-fd */
	const char *initrd; /* a path, "fd N" with --initrd-fd, or NULL */
	int kernel_fd;	    /* --kernel-fd: an open file handed over by nitrod; else -1 */
	int initrd_fd;
	/* --kernel-sha384 / --initrd-sha384 / --vmlinux-sha384: what the security chip
	 * measured; the bytes loaded must have exactly these digests. */
	bool want_kernel, want_initrd, want_vmlinux;
	uint8_t kernel_sha384[HV_DIGEST_LEN], initrd_sha384[HV_DIGEST_LEN],
	    vmlinux_sha384[HV_DIGEST_LEN];
	/* --kernel-sha256 / --initrd-sha256: the same files' SHA-256 from the pass that gave
	 * the SHA-384 above (only with it), for the TPM's SHA-256 bank. */
	bool have_kernel_sha256, have_initrd_sha256;
	uint8_t kernel_sha256[HV_SHA256_LEN], initrd_sha256[HV_SHA256_LEN];
	char kernel_label[24], initrd_label[24]; /* "fd N" */
	const char *cmdline;
	const char *console_log;
	/* --console-max: the console files' size cap (0: none) */
	uint64_t console_max;
	const char *cache_dir; /* host-decompressed kernels; NULL: none */
	/* SMBIOS (src/hv/smbios.h): --instance-type (NULL: derived from cpus/memory) and
	 * --instance-id ("i-" + 17 hex; the system UUID and serial derive from it) */
	const char *instance_type;
	const char *instance_id;
	unsigned cpus;
	uint64_t mem_mib;
	bool no_reboot;
	bool no_decompress;
	bool require_kvm;
	bool stats;			    /* print exit counts when the guest ends */
	bool help;			    /* --help or -h was given */
	bool kernel_optional;		    /* set before parsing: a missing --kernel is no error */
	struct hv_card cards[HV_MAX_CARDS]; /* --vhost-user TYPE,SOCKET */
	const char *tpm_card;		    /* --tpm-card SOCKET; NULL: no TPM */
	/* The enclave identity sent first on every enclave-facing card connection; set by
	 * enclave mode, or by --enclave-hello cid=N[,debug] for an ordinary guest acting as
	 * an enclave in tests (cid 4..U32_MAX-1; PCRs zero, module_id "i-test-encN"). */
	bool have_hello;
	struct enw_hello hello;
	/* The ENW_PCRS sent first on an NSM connection after its hello: enclave mode's measured
	 * PCRs, or zeros with --enclave-hello (have_hello). */
	struct enw_pcrs pcrs;
	unsigned ncards;
	/* Enclave mode (docs/enclaves.md): --enclave, no --kernel; the EIF comes from the
	 * guest memory --enclave-mem FD:OFF:SIZE[,OFF:SIZE...] (byte offsets and sizes in the
	 * memfd FD, page aligned, laid out from guest-physical 0 in this order). */
	bool enclave;
	int enclave_mem_fd;
	unsigned enclave_npieces;
	struct mem_piece enclave_mem[MEM_MAX_PIECES];
	uint64_t enclave_cid;	    /* --enclave-cid C (4 .. U32_MAX - 1) */
	uint64_t enclave_slot;	    /* --enclave-slot UID */
	bool enclave_debug;	    /* --enclave-debug: console, PCR0-2 reported as zeros */
	const char *enclave_parent; /* --enclave-parent-id i-...: PCR4 and module_id */
	int enclave_ready_fd;	    /* --enclave-ready-fd N: one byte once the EIF is accepted */
	/* --enclave-console-feed fd=N: the debug console's feed to the vsock card, opened and
	 * identified by the spawner (src/hv/enclave_console.h); -1: none */
	int enclave_feed_fd;
	/* Parent side: --enclaves gives the spawner (src/hv/enclave_spawn.h); the cards the
	 * enclaves connect to: --enclave-vsock SOCKET, --enclave-nsm SOCKET. */
	bool enclaves;
	const char *enclave_vsock, *enclave_nsm;
	/* --enclave-console-dir DIR: where the spawner keeps debug-mode consoles; NULL none. */
	const char *enclave_console_dir;
	/* --enclave-exe-fd N: an fd of this very executable (nitrod's: the file its security
	 * chip measured) that the spawner execs; -1: /proc/self/exe (none in a jail). */
	int enclave_exe_fd;
};

/* Parses --enclave-mem's value into c (fd, pieces); 0, or -1 with err. */
int hv_enclave_mem_parse(const char *v, struct hv_config *c, char *err, size_t errlen);

/* "i-" + 17 lower-case hex digits (EC2's instance ids). */
bool hv_instance_id_ok(const char *v);
/* An instance type name: [a-z0-9.-], with a dot, 3..64 bytes. */
bool hv_instance_type_ok(const char *v);

/* The instance type EC2 would call this shape (SMBIOS product name and IMDS
 * instance-type when --instance-type is not given): by memory per vCPU r5 (8 GiB),
 * m5 (4 GiB, e.g. m5.large = 2 vCPUs, 8 GiB), c5 (2 GiB), else t3 named by memory. */
const char *hv_default_instance_type(unsigned ncpus, uint64_t mem_mib, char buf[32]);

/* Options usage text, one per line, for --help. */
extern const char hv_options_help[];

void hv_config_defaults(struct hv_config *c);
/* Parses argv[0..argc); returns 0, or 2 with err set. */
int hv_config_parse(int argc, char **argv, struct hv_config *c, char *err, size_t errlen);

struct hv_images {
	uint8_t *kernel; /* whole file */
	size_t kernel_len;
	struct bzimage bz;
	uint8_t kernel_sha384[HV_DIGEST_LEN]; /* of the bytes above, when have_sha384 */
	bool have_sha384;
	int initrd_fd; /* the initrd opened once (or handed over), -1 without */
	uint64_t initrd_size;
};

/* Reads and checks kernel, initrd, command line and memory; 0, or 1 with err set. The
 * kernel is read once (from its fd, or opened by path) and, with want_kernel or a cache
 * in use, hashed: a kernel that is not what was measured is refused here. The initrd is
 * opened once and kept in img->initrd_fd for loading (hv_images_release closes it). */
int hv_config_check(const struct hv_config *c, struct hv_images *img, char *err, size_t errlen);
void hv_images_release(const struct hv_config *c, struct hv_images *img);

#endif
