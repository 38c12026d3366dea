/* Request bodies of the nitrod API, checked field by field (issue 5).
 *
 * Every body is a JSON object whose fields are listed in a table: a field that is not in
 * the table, a value of the wrong type or out of range fails with a message naming the
 * field ("memory_mib: expected an integer from 64 to 1048576"). Nothing here touches the
 * file system or the daemon's state, so the fuzz target (tests/fuzz/fuzz_api_spec.c) runs
 * it on any bytes.
 *
 *   instance: {cpus, memory_mib, kernel, initrd, cmdline, volumes[], nics[], console, tpm,
 *             instance_type, user_data, ssh_key, instance_store, region, enclaves}
 *             volumes[]: "vol-..." or {id, readonly, bus, device} (how this instance uses
 *             the volume); instance_store: {size_mib, dir}
 *   nic:      {vpc, ip, mac, sg, pps, bandwidth_mbit}
 *   volume:   {size_mib, encrypted, iops, throughput_mib, gp2} (its QoS, as EC2's volume
 *             types: gp3 with iops/throughput, or gp2 burst credits)
 *   attach:   {instance_id, readonly}
 *   vpc:      {id, cidr, internet_gateway}
 * The QoS and allowance ranges are the launch description's (src/launch/launch.h), the
 * same `nitro run` checks.
 */
#ifndef NITRO_CONTROLLER_SPEC_H
#define NITRO_CONTROLLER_SPEC_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SPEC_MAX_VOLUMES 8
#define SPEC_MAX_NICS 4
#define SPEC_MAX_CMDLINE 2048
#define SPEC_MAX_PATH 1024
#define SPEC_ID_LEN 24
#define SPEC_MAX_VOLUME_MIB (1024u * 1024u) /* 1 TiB */

#define SPEC_UNSET (-1) /* an optional number not given (the card's default) */

struct nic_spec {
	uint32_t n_vpc;
	char n_ip[40]; /* A.B.C.D/P */
	char n_mac[24];
	char n_sg[SPEC_MAX_PATH];
	int64_t n_pps;		  /* SPEC_UNSET: unlimited */
	int64_t n_bandwidth_mbit; /* SPEC_UNSET: unlimited */
	char n_imds[12];	  /* "imds": "" (required, the default), "optional", "disabled" */
};

/* A volume as an instance uses it: "bus" "nvme" (the default, as `nitro run`) or
 * "virtio"; an NVMe volume's "device" name (launch_device_ok), resolved when parsed: a
 * volume that names none gets `nitro run`'s default for its place (sda1, then sdf, sdg, ...
 * launch_default_device), so a stored record keeps its names across attach and detach. */
#define SPEC_DEVICE_LEN 33
struct vol_ref {
	char vr_id[SPEC_ID_LEN];
	bool vr_readonly;
	bool vr_virtio;
	char vr_device[SPEC_DEVICE_LEN]; /* "" for virtio */
};

struct inst_spec {
	unsigned s_cpus;
	uint64_t s_mem_mib;
	char s_kernel[SPEC_MAX_PATH]; /* "" = the default image */
	char s_initrd[SPEC_MAX_PATH]; /* "" = the default image when the kernel is default */
	bool s_no_initrd;	      /* "initrd": null */
	char s_cmdline[SPEC_MAX_CMDLINE + 1];
	bool s_console;
	bool s_tpm;	 /* a NitroTPM card (docs/tpm.md) */
	bool s_enclaves; /* the Nitro Enclaves device (docs/enclaves.md) */
	unsigned s_nvols;
	struct vol_ref s_vols[SPEC_MAX_VOLUMES];
	unsigned s_nnics;
	struct nic_spec s_nics[SPEC_MAX_NICS];
	/* The instance metadata (SMBIOS and the IMDS): "instance_type" ("" = from cpus and
	 * memory), "user_data" and "ssh_key" (files, read by the VPC cards) */
	char s_instance_type[72];
	char s_user_data[SPEC_MAX_PATH];
	char s_ssh_key[SPEC_MAX_PATH];
	/* "region": the VPC cards' IMDS placement and DNS names (launch.h ls_region); "" =
	 * us-east-1 */
	char s_region[33];
	/* "instance_store": {size_mib, dir}: the instance-storage card (docs/nvme.md), a
	 * local NVMe disk after the volumes; 0 = none. dir: "" = nitrod's default folder, else
	 * one of its instance-store folders or a folder beneath one (checked at create and at
	 * every launch: launcher.h). */
	uint64_t s_istore_mib;
	char s_istore_dir[SPEC_MAX_PATH];
};

struct vol_spec {
	uint64_t vs_size_mib;
	bool vs_encrypted;
	bool vs_overcommit;	   /* "overcommit": create even past the free space (docs/api.md) */
	int64_t vs_iops;	   /* SPEC_UNSET: gp3's 3000 (excludes vs_gp2) */
	int64_t vs_throughput_mib; /* SPEC_UNSET: gp3's 125 */
	bool vs_gp2;
	char vs_from_image[SPEC_MAX_PATH];  /* "from_image": a raw/qcow2 file, or "" */
	char vs_from_snapshot[SPEC_ID_LEN]; /* "from_snapshot": snap-<17 hex>, or "" */
};

/* POST /v1/vpcs: {id: 1..16777215, cidr: "A.B.C.D/16..28" without host bits,
 * internet_gateway: bool (false)}. */
struct vpc_spec {
	uint32_t vp_id;
	char vp_cidr[20];
	bool vp_igw;
};
int spec_parse_vpc(const char *body, size_t len, struct vpc_spec *v, char *err, size_t errlen);
/* A VPC id of a URL: decimal 1..16777215 without sign or leading zero; 0 when it is not. */
uint32_t spec_vpc_id(const char *s);

/* Each parses a whole body (len bytes, not NUL-terminated). 0, or -1 with err set. */
int spec_parse_instance(const char *body, size_t len, struct inst_spec *s, char *err,
			size_t errlen);
int spec_parse_volume(const char *body, size_t len, struct vol_spec *v, char *err, size_t errlen);
/* POST /v1/snapshots: {"volume_id": "vol-..."}. */
int spec_parse_snapshot(const char *body, size_t len, char vol[SPEC_ID_LEN], char *err,
			size_t errlen);
/* POST /v1/volumes/ID/attach: {instance_id, readonly, bus, device} (r->vr_id left ""; the
 * device "" when not given: the caller picks a free default). */
int spec_parse_attach(const char *body, size_t len, char id[SPEC_ID_LEN], struct vol_ref *r,
		      char *err, size_t errlen);
/* The device name an attached NVMe volume gets when it names none: the default for its
 * place among s's NVMe volumes, else the first of sdf..sdz no volume of s has. 0, or -1
 * when every name is taken. */
int spec_free_device(const struct inst_spec *s, char out[SPEC_DEVICE_LEN]);
/* An empty body or {} (stop, start, reboot, detach). */
int spec_parse_empty(const char *body, size_t len, char *err, size_t errlen);

/* "i-", "vol-" or "snap-" followed by 17 lower-case hex digits. */
bool spec_id_ok(const char *id, const char *prefix);

/* A request's route in canonical form, the one the router dispatches and the audit log
 * records: "/" + the path's non-empty '/'-separated segments joined by single slashes
 * ("//v1///instances/" -> "/v1/instances", "" -> "/"). Writes at most SPEC_MAX_ROUTE bytes
 * and a NUL to out[SPEC_MAX_ROUTE + 1] and returns the canonical length; when the
 * canonical route is longer than SPEC_MAX_ROUTE, returns that length and leaves out "":
 * such a request is refused whole (414), never routed or logged cut. */
#define SPEC_MAX_ROUTE 255
size_t spec_route_canon(const char *path, char out[SPEC_MAX_ROUTE + 1]);

#endif
