/* One launch description for `nitro run` and nitrod (issue 11, item 1).
 *
 * A launch is described twice over:
 *   - struct launch_spec: WHAT runs (the instance: kernel, initrd, command line, vCPUs,
 *     memory, volumes with their QoS, NICs with their allowances). `nitro run` fills it
 *     from its options (src/cli/run.c), nitrod from its API spec and volume records
 *     (src/controller/launcher.c); both resolve defaults (the default image) first.
 *   - struct launch_env: WHERE it runs on this host (the folder of the executables, the run
 *     folder for the card sockets, the kernel cache, the VPC mapping folder ...).
 * launch_plan() turns the two into the processes, in the order they start: one card per
 * device (all volumes, then all NICs: the card table in launch.c, one entry per card kind)
 * and nitro-hv last with `--vhost-user TYPE,SOCKET` per card. For each process the plan
 * holds its executable, argv, the socket it listens on, the fds it keeps (a list: roles
 * the launcher opens and puts at those numbers), the host paths it opens (what a jail must
 * bind) and the environment it needs. The plan is pure: no file is touched, no process
 * started. Each side spawns it its own way (nitro run: fork/exec, waiting for each socket;
 * nitrod: measured and jailed, src/controller/launcher.c).
 *
 * Adding a card kind: its fields in launch_spec, a kind below, one entry in the card table
 * (launch.c) that builds its argv; nitro-hv's --vhost-user and the start order follow.
 * Adding a kept fd (e.g. a boot file or a volume key passed as an fd): a role below, and
 * an entry in the process's lp_fds with the argv naming the number; each launcher opens
 * the role's fd (launch_fd_role_name names it in messages and JSON).
 *
 * Values in launch_spec are trusted: both sides check them first (the limits below are the
 * shared ranges). Strings of the plan live inside the plan (no pointers into the spec);
 * a plan is large (about 0.7 MB): allocate it, do not put it on a thread's stack.
 * Not thread-safe per plan; no global state.
 */
#ifndef NITRO_LAUNCH_LAUNCH_H
#define NITRO_LAUNCH_LAUNCH_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LAUNCH_MAX_VOLUMES 8
#define LAUNCH_MAX_NICS 7
/* cards, the TPM, vsock and NSM cards and one internet gateway NAT per NIC */
#define LAUNCH_MAX_CARDS (LAUNCH_MAX_VOLUMES + 2 * LAUNCH_MAX_NICS + 3)
#define LAUNCH_MAX_PROCS (LAUNCH_MAX_CARDS + 1)
#define LAUNCH_MAX_CMDLINE 4096
#define LAUNCH_MAX_ARGS 80
#define LAUNCH_MAX_FDS 8
#define LAUNCH_MAX_PATHS 8
#define LAUNCH_MAX_ENV 4
#define LAUNCH_STRINGS 40960

/* The shared ranges of the QoS and allowance values (`nitro run` and nitrod check them). */
#define LAUNCH_UNSET (-1) /* an int64 option not given: the card's default */
#define LAUNCH_MAX_IOPS 1000000
#define LAUNCH_MAX_THROUGHPUT_MIB 100000
#define LAUNCH_MAX_PPS 100000000
#define LAUNCH_MAX_BANDWIDTH_MBIT 400000
#define LAUNCH_MAX_QUEUE_PAIRS 7 /* nitro-hv serves 16 queues per device: 7 pairs + control */
#define LAUNCH_REGION_MAX 32	 /* "us-east-1", "eu-west-1", ... */

enum launch_bus {
	LAUNCH_BUS_VIRTIO, /* virtio-blk */
	LAUNCH_BUS_NVME,   /* an NVMe controller (docs/nvme.md): nitro-hv --vhost-user nvme */
};

struct launch_volume {
	char lv_path[PATH_MAX];	   /* a volume file, nbd://..., nbd+unix://... or null:SIZE */
	char lv_header[PATH_MAX];  /* "" or the volume file whose key an NBD export uses */
	int64_t lv_iops;	   /* LAUNCH_UNSET: gp3's 3000 */
	int64_t lv_throughput_mib; /* LAUNCH_UNSET: gp3's 125 */
	bool lv_gp2;		   /* gp2 burst credits instead of gp3 */
	bool lv_readonly;
	bool lv_file;	/* a local file (a jail binds it; its folder is shared with an emuhost) */
	bool lv_key_fd; /* its launcher passes the data key on fd 3 (--key-fd): the card never
			   reads the master key (nitrod, for encrypted volume files) */
	enum launch_bus lv_bus;
	char lv_device[33]; /* NVMe: EC2's device name; "": sda1 for the first, then sdf, ... */
	/* The instance-storage card instead of a volume (NVMe; lv_path is the size, lv_dir
	 * the folder of its nameless file). */
	bool lv_instance;
	char lv_dir[PATH_MAX];
	char lv_ctl[108]; /* the card's control socket (snapshots); "": its socket + ".ctl" */
};

struct launch_nic {
	uint32_t ln_vpc;
	char ln_ip[40];		   /* A.B.C.D/PREFIX */
	char ln_mac[24];	   /* "": derived from (vpc, ip) by the card */
	char ln_sg[PATH_MAX];	   /* "": the VPC's default security group */
	int64_t ln_pps;		   /* LAUNCH_UNSET: unlimited */
	int64_t ln_bandwidth_mbit; /* LAUNCH_UNSET: unlimited */
	/* The IMDS: "" (the card's default: required), "optional" or "disabled"; the folder
	 * of the signed identity document ("": none; nitrod signs one per NIC). */
	char ln_imds[12];
	char ln_identity[PATH_MAX];
	/* The VPC's record (`nitro vpc create`): its CIDR ("": the subnet) and whether it has
	 * an internet gateway (a nitro-vpc-igw NAT beside the card, joined by a socketpair:
	 * roles LAUNCH_FD_IGW / LAUNCH_FD_IGW_NAT of the NIC's index). */
	char ln_vpc_cidr[24];
	bool ln_igw;
};

/* A device whose vhost-user back end someone else started (nitro run --vhost-user). */
#define LAUNCH_MAX_EXTERNAL 8
struct launch_external {
	char lx_type[8]; /* "blk", "net" */
	char lx_socket[PATH_MAX];
};

struct launch_spec {
	char ls_kernel[PATH_MAX];
	char ls_initrd[PATH_MAX]; /* "": none */
	char ls_cmdline[LAUNCH_MAX_CMDLINE];
	unsigned ls_cpus;
	uint64_t ls_mem_mib;
	/* nitro-hv options only `nitro run` sets (nitrod: a jailed hypervisor's console and
	 * reboots are the supervisor's). */
	char ls_console_log[PATH_MAX]; /* "": none */
	uint64_t ls_console_max;       /* nitro-hv --console-max: the console files' cap; 0 none */
	bool ls_no_reboot, ls_no_decompress, ls_stats, ls_require_kvm;
	unsigned ls_nvols;
	struct launch_volume ls_vols[LAUNCH_MAX_VOLUMES];
	unsigned ls_nnics;
	struct launch_nic ls_nics[LAUNCH_MAX_NICS];
	/* The instance metadata, for nitro-hv's SMBIOS (id, type) and the VPC cards' IMDS:
	 * "i-" + 17 hex ("": none); the type ("": derived from vCPUs and memory); the user
	 * data and SSH key files ("": none). */
	char ls_instance_id[24];
	char ls_instance_type[72];
	char ls_user_data[PATH_MAX];
	char ls_ssh_key[PATH_MAX];
	/* The region the VPC cards' IMDS and resolver name (placement/region, the availability
	 * zone REGION + "a", DHCP's domain and instance names ip-A-B-C-D.REGION.compute.internal):
	 * launch_region_ok, "" = the card's default (us-east-1). */
	char ls_region[LAUNCH_REGION_MAX + 1];

	unsigned ls_nexternal; /* nitro-hv sees these first, then the cards */
	struct launch_external ls_external[LAUNCH_MAX_EXTERNAL];
	/* NitroTPM: one nitro-card-tpm (nitro-hv --tpm-card) with its state in ls_tpm_state
	 * (a folder the launcher made; the card's key comes as an fd, LAUNCH_FD_TPM_KEY). */
	bool ls_tpm;
	char ls_tpm_state[PATH_MAX];
	/* `nitro run --tpm`: kernel and initrd digests from the CLI's one pass over each file
	 * (lower-case hex, "": none). nitro-hv refuses bytes whose SHA-384 differs and extends
	 * these into the TPM's banks (nitrod passes its security chip's instead, bootfile.h). */
	char ls_kernel_sha384[97], ls_kernel_sha256[65], ls_initrd_sha384[97], ls_initrd_sha256[65];
	/* The vsock card (nitro-card-vsock, docs/vsock.md): the instance's virtio-vsock device,
	 * guest CID 3 (the parent of its enclaves). */
	bool ls_vsock;
	/* nitro-hv --enclave-hello VALUE ("": none): an ordinary guest that acts as an enclave
	 * towards a vsock card (tests; docs/vsock.md). */
	char ls_enclave_hello[40];
	/* Nitro Enclaves: nitro-hv --enclaves, the NE PCI device (docs/enclaves.md); brings
	 * the vsock card (as ls_vsock, plus its enclave socket: nitro-hv --enclave-vsock) and
	 * the NSM card (its socket the enclaves': nitro-hv --enclave-nsm, not --vhost-user). */
	bool ls_enclaves;
	/* The Nitro Secure Module card of the instance's enclaves (nitro-card-nsm, nitro-hv
	 * --vhost-user nsm): its launcher hands it the attestation chain on an fd
	 * (LAUNCH_FD_NSM_CHAIN). `nitro run --nsm` (tests: a guest with --enclave-hello). */
	bool ls_nsm;
	/* Next kinds: their fields here. */
};

struct launch_env {
	char le_bin_dir[PATH_MAX];	/* nitro-hv and the cards */
	char le_run_dir[PATH_MAX];	/* the card sockets: c0.sock, c1.sock, ... */
	char le_kernel_cache[PATH_MAX]; /* nitro-hv --cache-dir; "": none */
	char le_card_state[PATH_MAX];	/* NITRO_STATE of the EBS cards (the master key); "":
					   inherited */
	char le_vpc_map[PATH_MAX];	/* the VPC cards' --map; "": their default */
	char le_underlay[64];		/* the VPC cards' --underlay; "": their default */
	bool le_map_by_launcher;	/* the launcher writes and removes each VPC card's record
					   (nitrod): the folder is bound read-only, the card gets --map-ro
					 */
	bool le_underlay_fd; /* the launcher makes each VPC card's underlay socket and passes
				it on fd 3 (--underlay-fd): the card needs no network (nitrod) */
	char le_dns[64];     /* the host's resolver "A.B.C.D:PORT" (resolver.h): each VPC card
				gets a socket connected to it on fd 4 (--dns-fd); "": none */
};

enum launch_kind {
	LAUNCH_HV,
	LAUNCH_CARD_EBS,
	LAUNCH_CARD_VPC,
	LAUNCH_CARD_TPM,
	LAUNCH_CARD_NSM,
	LAUNCH_IGW, /* the internet gateway's NAT of one NIC (no socket; started before it) */
	LAUNCH_CARD_VSOCK,
};

/* What a kept fd is; the launcher opens it. */
enum launch_fd_role {
	LAUNCH_FD_CONSOLE_IN,  /* the guest's serial input (nitro run: its stdin) */
	LAUNCH_FD_CONSOLE_OUT, /* the guest's serial output (nitro run: its stdout) */
	LAUNCH_FD_LOG,	       /* the process's messages (nitro run: its stderr) */
	LAUNCH_FD_VOLUME_KEY,  /* a pipe with the volume's data key (--key-fd; nitrod) */
	LAUNCH_FD_UNDERLAY,    /* the VPC card's bound UDP underlay socket (--underlay-fd) */
	LAUNCH_FD_TPM_KEY,     /* the TPM card's 32-byte state key, then EOF (a pipe) */
	LAUNCH_FD_DNS,	       /* the VPC card's UDP socket connected to the host's resolver */
	LAUNCH_FD_IGW,	       /* the VPC card's end of its NAT link (SOCK_SEQPACKET pair; fd 5:
				  fd 4 is the DNS socket's) */
	LAUNCH_FD_IGW_NAT,     /* the NAT's end of that pair (same item: the NIC's index) */
	LAUNCH_FD_NSM_CHAIN,   /* the NSM card's chain: host key, host and root certificates
				  (PEM, then EOF; a pipe: src/enclave/chain_fd.h) */
};

struct launch_fd {
	int lf_fd; /* the number in the process */
	enum launch_fd_role lf_role;
	unsigned lf_item; /* for per-device roles: the volume or NIC index */
};

enum {
	LAUNCH_PATH_RW = 1 << 0,  /* opened for writing (else read-only) */
	LAUNCH_PATH_DEV = 1 << 1, /* a device node */
};

struct launch_path {
	const char *lpa_path; /* inside the plan's strings */
	unsigned lpa_flags;
};

enum {
	LAUNCH_HOST_NET = 1 << 0, /* needs the host's network (the VPC card's underlay) */
};

struct launch_proc {
	enum launch_kind lp_kind;
	const char *lp_name;	/* "nitro-card-ebs" */
	const char *lp_profile; /* "card-ebs": the jail's kind and seccomp allow-list */
	const char *lp_vhost;	/* nitro-hv --vhost-user TYPE ("blk", "net"); NULL for hv,
				   the TPM card (nitro-hv --tpm-card) and the NAT */
	unsigned lp_card;	/* cards: index among the cards (socket c<N>.sock) */
	unsigned lp_item;	/* cards: index among the volumes or the NICs */
	unsigned lp_flags;	/* LAUNCH_HOST_NET */
	const char *lp_exe;	/* le_bin_dir/lp_name */
	const char *lp_socket;	/* the vhost-user socket it listens on; NULL for hv and the
				   NAT (LAUNCH_IGW: nothing to wait for) */
	const char *lp_enclave; /* the socket the instance's enclaves connect to (the vsock
				   card's second one, the NSM card's only one); NULL if none */
	const char *lp_ctl;	/* a further socket it makes (VPC: counters; EBS, virtio-blk
				   or NVMe: pause for snapshots); NULL if none */
	unsigned lp_argc;
	char *lp_argv[LAUNCH_MAX_ARGS + 1]; /* NULL-terminated */
	unsigned lp_nfds;
	struct launch_fd lp_fds[LAUNCH_MAX_FDS]; /* stdio included; unlisted 0..2: /dev/null */
	unsigned lp_npaths;
	struct launch_path lp_paths[LAUNCH_MAX_PATHS];
	unsigned lp_nenv;
	char *lp_env[LAUNCH_MAX_ENV + 1]; /* what it needs besides the launcher's own */
	size_t lp_used;
	char lp_strings[LAUNCH_STRINGS];
};

struct launch_plan {
	unsigned pl_nprocs; /* the cards in start order, then nitro-hv */
	unsigned pl_ncards;
	struct launch_proc pl_procs[LAUNCH_MAX_PROCS];
};

/* Fills a spec with nitro-hv's defaults (1 vCPU, 256 MiB, no volumes). */
void launch_spec_init(struct launch_spec *s);
void launch_volume_init(struct launch_volume *v);
void launch_nic_init(struct launch_nic *n);
/* NVMe device names (EC2's "block device mapping" names the card writes into Identify
 * Controller, docs/nvme.md): 1 to LAUNCH_DEVICE_MAX characters of [a-z0-9], starting with a
 * letter ("sdf", "xvdb", "sda1"). */
#define LAUNCH_DEVICE_MAX 32
bool launch_device_ok(const char *name);
/* The default name of the nth (from 0) NVMe volume of a launch that names none: sda1 for
 * the first, then sdf, sdg, ... (EC2's; wraps after sdz). out[LAUNCH_DEVICE_MAX + 1]. */
void launch_default_device(unsigned nth, char *out);
/* The device name volume item of s gets (its lv_device, else the default for its place
 * among the NVMe volumes that are not instance stores); "" for virtio and instance stores. */
void launch_volume_device(const struct launch_spec *s, unsigned item, char *out);
/* The volume rules both sides share: a device name is valid, given only with bus nvme (not
 * for an instance store) and used once per launch. 0, or -1 with err naming "volume N". */
int launch_check_volumes(const struct launch_spec *s, char *err, size_t errlen);
/* VPC records (`nitro vpc`, nitrod's /v1/vpcs) and NIC subnets. launch_cidr_parse:
 * "A.B.C.D/P" (a dotted quad, P in lo..hi without sign or leading zero) -> *net (host
 * order, host bits kept when host_bits_ok, else they refuse it) and *prefix.
 * launch_subnet_in: the subnet "A.B.C.D/P" (host bits allowed: an interface's address)
 * lies inside cidr (no host bits). launch_region_ok: 1 to LAUNCH_REGION_MAX of a-z, 0-9
 * and '-', not starting or ending with '-' (a DNS label: it becomes part of names). */
#define LAUNCH_VPC_PREFIX_MIN 16 /* as AWS: a VPC's CIDR is /16 to /28 */
#define LAUNCH_VPC_PREFIX_MAX 28
bool launch_cidr_parse(const char *s, unsigned lo, unsigned hi, bool host_bits_ok, uint32_t *net,
		       unsigned *prefix);
bool launch_subnet_in(const char *subnet, const char *cidr);
bool launch_region_ok(const char *region);
/* Builds the plan of s on e. 0, or -1 with err (too many devices or arguments). */
int launch_plan(const struct launch_spec *s, const struct launch_env *e, struct launch_plan *p,
		char *err, size_t errlen);
/* The process of card idx, and nitro-hv's (the last one). */
const struct launch_proc *launch_plan_card(const struct launch_plan *p, unsigned idx);
const struct launch_proc *launch_plan_hv(const struct launch_plan *p);
/* The fd of p with role r (for item), or -1. */
int launch_proc_fd(const struct launch_proc *p, enum launch_fd_role r, unsigned item);
const char *launch_fd_role_name(enum launch_fd_role r);
/* The plan as one JSON document (malloc'd text, NULL when out of memory):
 * {"run_dir", "kernel_cache", "processes": [{"kind", "exe", "argv": [...], "socket",
 * "vhost_user", "fds": [{"fd", "role"}], "paths": [{"path", "rw", "device"}], "env"}]}.
 * nitro run --dry-run prints it; nitrod writes it to each instance's launch.json. */
char *launch_plan_json(const struct launch_plan *p, const struct launch_env *e);

#endif
