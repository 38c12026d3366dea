/* libFuzzer target for nitrod's request-body checks (src/controller/spec.h): any bytes
 * either parse into a spec whose every field is in range, or fail with a message. */
// fuzz-extra: src/controller/spec.c src/boot/config.c src/launch/launch.c src/launch/cidr.c
// fuzz-extra: -ljansson
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controller/spec.h"
#include "fuzz.h"
#include "launch/launch.h"

/* Without a seed corpus the fuzzer rarely writes valid JSON: inputs starting with a byte
 * below 0x10 are spliced into one of these bodies (at the "@"). */
static const char *const templates[] = {
    "{\"cpus\": @, \"memory_mib\": 256}",
    "{\"kernel\": \"@\", \"initrd\": null, \"console\": true}",
    "{\"console\": false, \"tpm\": @}",
    "{\"cmdline\": \"@\"}",
    "{\"volumes\": [\"vol-0123456789abcdef0\", @]}",
    "{\"volumes\": [{\"id\": \"vol-0123456789abcdef0\", @}]}",
    "{\"nics\": [{\"vpc\": 7, \"ip\": \"10.0.0.5/24\", @}]}",
    "{\"nics\": [{\"vpc\": 7, \"ip\": \"10.0.0.5/24\", \"pps\": @}]}",
    "{\"size_mib\": @, \"encrypted\": false}",
    "{\"size_mib\": 8, \"iops\": @}",
    "{\"size_mib\": 8, \"throughput_mib\": 5, @}",
    "{\"instance_id\": \"i-@\"}",
    "{\"instance_id\": \"i-0123456789abcdef0\", \"readonly\": @}",
    "{@}",
    "{\"volumes\": [{\"id\": \"vol-0123456789abcdef0\", \"device\": \"@\"}, "
    "\"vol-0123456789abcdef1\"]}",
    "{\"instance_store\": {\"size_mib\": 4, @}}",
    "{\"id\": 3, \"cidr\": \"@\", \"internet_gateway\": true}",
    "{\"id\": @, \"cidr\": \"10.0.0.0/16\"}",
};

static int one(const char *body, size_t size);

/* The bytes as a request path (up to the first NUL): the canonical route is whole or
 * refused, starts with '/', has no empty segment, and is its own canonical form. */
static void route(const char *body, size_t size)
{
	char *path = strndup(body, size);
	if (!path)
		return;
	char out[SPEC_MAX_ROUTE + 1], again[SPEC_MAX_ROUTE + 1];
	size_t n = spec_route_canon(path, out);
	if (n > SPEC_MAX_ROUTE) {
		CHECK(out[0] == 0);
	} else {
		CHECK(strlen(out) == n && out[0] == '/' && !strstr(out, "//"));
		CHECK(n == 1 || out[n - 1] != '/');
		CHECK(spec_route_canon(out, again) == n && !strcmp(again, out));
		size_t segs = 0;
		for (const char *p = path; *p; p++)
			segs += *p != '/';
		size_t kept = 0;
		for (const char *p = out; *p; p++)
			kept += *p != '/';
		CHECK(segs == kept); /* only slashes are dropped */
	}
	free(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0 || data[0] >= 0x10)
		return one((const char *)data, size);
	const char *t = templates[data[0] % (sizeof(templates) / sizeof(templates[0]))];
	const char *at = strchr(t, '@');
	size_t pre = (size_t)(at - t), post = strlen(at + 1);
	char *buf = malloc(pre + size - 1 + post);
	if (!buf)
		return 0;
	memcpy(buf, t, pre);
	memcpy(buf + pre, data + 1, size - 1);
	memcpy(buf + pre + size - 1, at + 1, post);
	one(buf, pre + size - 1 + post);
	free(buf);
	return 0;
}

static int one(const char *body, size_t size)
{
	char err[512] = "";
	struct inst_spec s;
	if (spec_parse_instance(body, size, &s, err, sizeof(err)) == 0) {
		CHECK(s.s_cpus >= 1 && s.s_cpus <= 254);
		CHECK(s.s_mem_mib >= 64 && s.s_mem_mib <= 1024 * 1024);
		CHECK(s.s_nvols <= SPEC_MAX_VOLUMES && s.s_nnics <= SPEC_MAX_NICS);
		CHECK(strlen(s.s_cmdline) <= SPEC_MAX_CMDLINE);
		CHECK(!s.s_kernel[0] || s.s_kernel[0] == '/');
		CHECK(!strchr(s.s_kernel, ',') && !strchr(s.s_initrd, ','));
		for (unsigned i = 0; i < s.s_nvols; i++) {
			CHECK(spec_id_ok(s.s_vols[i].vr_id, "vol-"));
			/* an NVMe volume always has a valid name, used once; virtio none */
			CHECK(s.s_vols[i].vr_virtio ? !s.s_vols[i].vr_device[0]
						    : launch_device_ok(s.s_vols[i].vr_device));
			for (unsigned k = 0; k < i; k++)
				CHECK(s.s_vols[i].vr_virtio ||
				      strcmp(s.s_vols[i].vr_device, s.s_vols[k].vr_device));
		}
		CHECK(s.s_istore_mib <= SPEC_MAX_VOLUME_MIB);
		CHECK(!s.s_istore_mib || s.s_nvols < LAUNCH_MAX_VOLUMES);
		CHECK(!s.s_istore_dir[0] ||
		      (s.s_istore_dir[0] == '/' && !strstr(s.s_istore_dir, "/../") &&
		       !strchr(s.s_istore_dir, ',')));
		for (unsigned i = 0; i < s.s_nnics; i++) {
			CHECK(s.s_nics[i].n_pps >= SPEC_UNSET &&
			      s.s_nics[i].n_pps <= LAUNCH_MAX_PPS);
			CHECK(s.s_nics[i].n_bandwidth_mbit >= SPEC_UNSET &&
			      s.s_nics[i].n_bandwidth_mbit <= LAUNCH_MAX_BANDWIDTH_MBIT);
		}
		for (const char *c = s.s_cmdline; *c; c++)
			CHECK(*c >= 0x20 && *c <= 0x7e);
	} else {
		CHECK(err[0]);
	}
	struct vol_spec v;
	err[0] = 0;
	if (spec_parse_volume(body, size, &v, err, sizeof(err)) == 0) {
		CHECK(v.vs_size_mib >= 1 && v.vs_size_mib <= SPEC_MAX_VOLUME_MIB);
		CHECK(v.vs_iops >= SPEC_UNSET && v.vs_iops <= LAUNCH_MAX_IOPS);
		CHECK(v.vs_throughput_mib >= SPEC_UNSET &&
		      v.vs_throughput_mib <= LAUNCH_MAX_THROUGHPUT_MIB);
		CHECK(!(v.vs_gp2 && v.vs_iops != SPEC_UNSET));
	} else
		CHECK(err[0]);
	char id[SPEC_ID_LEN];
	struct vol_ref ref;
	err[0] = 0;
	if (spec_parse_attach(body, size, id, &ref, err, sizeof(err)) == 0)
		CHECK(spec_id_ok(id, "i-") &&
		      (!ref.vr_device[0] || (!ref.vr_virtio && launch_device_ok(ref.vr_device))));
	else
		CHECK(err[0]);
	/* a VPC record: an id in range, a CIDR that parses again the same way, /16../28
	 * without host bits, inside which its own network lies */
	struct vpc_spec vp;
	err[0] = 0;
	if (spec_parse_vpc(body, size, &vp, err, sizeof(err)) == 0) {
		uint32_t net;
		unsigned p;
		CHECK(vp.vp_id >= 1 && vp.vp_id <= 0xffffff);
		CHECK(launch_cidr_parse(vp.vp_cidr, LAUNCH_VPC_PREFIX_MIN, LAUNCH_VPC_PREFIX_MAX,
					false, &net, &p));
		CHECK(launch_subnet_in(vp.vp_cidr, vp.vp_cidr));
	} else {
		CHECK(err[0]);
	}
	char *idstr = strndup(body, size < 16 ? size : 16);
	if (idstr) {
		uint32_t v = spec_vpc_id(idstr);
		CHECK(v <= 0xffffff);
		if (v) { /* only the canonical decimal form */
			char back[16];
			snprintf(back, sizeof(back), "%u", v);
			CHECK(!strcmp(back, idstr));
		}
		free(idstr);
	}
	err[0] = 0;
	if (spec_parse_empty(body, size, err, sizeof(err)) != 0)
		CHECK(err[0]);
	route(body, size);
	return 0;
}
