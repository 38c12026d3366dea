/* Request bodies of the nitrod API: strict, table-driven field checks (see spec.h). */
#include "controller/spec.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "boot/config.h"
#include "launch/launch.h"
#include "lib/util.h"

bool spec_id_ok(const char *id, const char *prefix)
{
	size_t p = strlen(prefix);
	if (strncmp(id, prefix, p) || strlen(id) != p + 17)
		return false;
	for (const char *c = id + p; *c; c++)
		if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f')))
			return false;
	return true;
}

/* Parses an object body; NULL with err set for anything else. */
static json_t *load_object(const char *body, size_t len, bool empty_ok, char *err, size_t errlen)
{
	if (len == 0 && empty_ok)
		return json_object();
	json_error_t je;
	json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
	if (!j) {
		snprintf(err, errlen, "malformed JSON at line %d column %d: %s", je.line, je.column,
			 je.text);
		return NULL;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		snprintf(err, errlen, "the body must be a JSON object");
		return NULL;
	}
	return j;
}

/* Every key of obj must be one of names[]. */
static int only_fields(json_t *obj, const char *what, const char *const *names, size_t n, char *err,
		       size_t errlen)
{
	const char *k;
	json_t *v;
	json_object_foreach(obj, k, v)
	{
		bool ok = false;
		for (size_t i = 0; i < n && !ok; i++)
			ok = !strcmp(k, names[i]);
		if (!ok && n == 0)
			RETURN_ERR(-1, "%s%sunknown field \"%.64s\" (this call takes no fields)",
				   what, *what ? ": " : "", k);
		if (!ok) {
			char list[512] = "";
			for (size_t i = 0; i < n; i++)
				snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
					 i ? ", " : "", names[i]);
			RETURN_ERR(-1, "%s%sunknown field \"%.64s\" (known: %s)", what,
				   *what ? ": " : "", k, list);
		}
	}
	return 0;
}

static int get_uint(json_t *obj, const char *name, uint64_t min, uint64_t max, uint64_t *out,
		    char *err, size_t errlen)
{
	json_t *v = json_object_get(obj, name);
	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    (uint64_t)json_integer_value(v) < min || (uint64_t)json_integer_value(v) > max)
		RETURN_ERR(-1, "%s: expected an integer from %llu to %llu", name,
			   (unsigned long long)min, (unsigned long long)max);
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

/* An optional number: SPEC_UNSET when absent. */
static int get_opt_uint(json_t *obj, const char *what, const char *name, uint64_t max, int64_t *out,
			char *err, size_t errlen)
{
	*out = SPEC_UNSET;
	json_t *v = json_object_get(obj, name);
	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    (uint64_t)json_integer_value(v) > max)
		RETURN_ERR(-1, "%s%s%s: expected an integer from 0 to %llu", what, *what ? "." : "",
			   name, (unsigned long long)max);
	*out = (int64_t)json_integer_value(v);
	return 0;
}

static int get_bool(json_t *obj, const char *name, bool *out, char *err, size_t errlen)
{
	json_t *v = json_object_get(obj, name);
	if (!v)
		return 0;
	if (!json_is_boolean(v))
		RETURN_ERR(-1, "%s: expected true or false", name);
	*out = json_is_true(v);
	return 0;
}

/* A string of printable ASCII without control characters, at most cap-1 bytes. */
static int str_copy(json_t *v, const char *name, char *out, size_t cap, char *err, size_t errlen)
{
	if (!json_is_string(v))
		RETURN_ERR(-1, "%s: expected a string", name);
	const char *s = json_string_value(v);
	size_t n = json_string_length(v);
	if (n >= cap)
		RETURN_ERR(-1, "%s: longer than %zu bytes", name, cap - 1);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			RETURN_ERR(-1, "%s: only printable ASCII characters are allowed", name);
	memcpy(out, s, n);
	out[n] = 0;
	return 0;
}

/* Host paths: absolute, no "..", no ',' (nitro-hv's option syntax). */
static int path_copy(json_t *v, const char *name, char *out, size_t cap, char *err, size_t errlen)
{
	if (str_copy(v, name, out, cap, err, errlen))
		return -1;
	if (out[0] != '/' || strstr(out, "/../") || strstr(out, "/./") || strchr(out, ',') ||
	    (strlen(out) >= 3 && !strcmp(out + strlen(out) - 3, "/..")))
		RETURN_ERR(-1, "%s: expected an absolute path without \"..\" or ','", name);
	return 0;
}

static int parse_nic(json_t *o, unsigned idx, struct nic_spec *n, char *err, size_t errlen)
{
	static const char *const names[] = {"vpc", "ip", "mac", "sg", "pps", "bandwidth_mbit",
					    "imds"};
	char what[32];
	snprintf(what, sizeof(what), "nics[%u]", idx);
	if (!json_is_object(o))
		RETURN_ERR(-1, "%s: expected an object {vpc, ip, mac, sg, pps, bandwidth_mbit}",
			   what);
	if (only_fields(o, what, names, ARRAY_SIZE(names), err, errlen))
		return -1;
	memset(n, 0, sizeof(*n));
	uint64_t vpc = 0;
	json_t *v = json_object_get(o, "vpc");
	if (!v || !json_is_integer(v) || json_integer_value(v) < 1 ||
	    json_integer_value(v) > 0xffffff)
		RETURN_ERR(-1, "%s.vpc: expected an integer from 1 to 16777215", what);
	vpc = (uint64_t)json_integer_value(v);
	n->n_vpc = (uint32_t)vpc;
	v = json_object_get(o, "ip");
	if (!v)
		RETURN_ERR(-1, "%s.ip: required (A.B.C.D/PREFIX)", what);
	if (str_copy(v, "ip", n->n_ip, sizeof(n->n_ip), err, errlen))
		return -1;
	for (const char *c = n->n_ip; *c; c++)
		if (!((*c >= '0' && *c <= '9') || *c == '.' || *c == '/'))
			RETURN_ERR(-1, "%s.ip: expected A.B.C.D/PREFIX", what);
	if ((v = json_object_get(o, "mac"))) {
		if (str_copy(v, "mac", n->n_mac, sizeof(n->n_mac), err, errlen))
			return -1;
		for (const char *c = n->n_mac; *c; c++)
			if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f') ||
			      (*c >= 'A' && *c <= 'F') || *c == ':'))
				RETURN_ERR(-1, "%s.mac: expected xx:xx:xx:xx:xx:xx", what);
	}
	if ((v = json_object_get(o, "sg")) &&
	    path_copy(v, "sg", n->n_sg, sizeof(n->n_sg), err, errlen))
		return -1;
	if (get_opt_uint(o, what, "pps", LAUNCH_MAX_PPS, &n->n_pps, err, errlen) ||
	    get_opt_uint(o, what, "bandwidth_mbit", LAUNCH_MAX_BANDWIDTH_MBIT, &n->n_bandwidth_mbit,
			 err, errlen))
		return -1;
	if ((v = json_object_get(o, "imds"))) {
		if (str_copy(v, "imds", n->n_imds, sizeof(n->n_imds), err, errlen))
			return -1;
		if (strcmp(n->n_imds, "required") && strcmp(n->n_imds, "optional") &&
		    strcmp(n->n_imds, "disabled"))
			RETURN_ERR(-1,
				   "%s.imds: expected \"required\", \"optional\" or \"disabled\"",
				   what);
	}
	return 0;
}

/* A volume's "bus" and "device" (of an object o; absent: nvme, device ""). */
static int parse_bus_device(json_t *o, const char *what, struct vol_ref *r, char *err,
			    size_t errlen)
{
	json_t *bus = json_object_get(o, "bus"), *dev = json_object_get(o, "device");
	if (bus && (!json_is_string(bus) || (strcmp(json_string_value(bus), "nvme") &&
					     strcmp(json_string_value(bus), "virtio"))))
		RETURN_ERR(-1, "%s%sbus: expected \"nvme\" or \"virtio\"", what, *what ? "." : "");
	r->vr_virtio = bus && !strcmp(json_string_value(bus), "virtio");
	if (!dev)
		return 0;
	if (r->vr_virtio)
		RETURN_ERR(-1, "%s%sdevice: a device name needs bus nvme", what, *what ? "." : "");
	if (!json_is_string(dev) || !launch_device_ok(json_string_value(dev)))
		RETURN_ERR(-1,
			   "%s%sdevice: expected 1 to %d of a-z and 0-9 starting with a letter "
			   "(like \"sdf\")",
			   what, *what ? "." : "", LAUNCH_DEVICE_MAX);
	snprintf(r->vr_device, sizeof(r->vr_device), "%s", json_string_value(dev));
	return 0;
}

/* volumes[i]: "vol-..." or {id, readonly, bus, device}. */
static int parse_vol_ref(json_t *e, size_t i, struct vol_ref *r, char *err, size_t errlen)
{
	static const char *const names[] = {"id", "readonly", "bus", "device"};
	char what[32];
	snprintf(what, sizeof(what), "volumes[%zu]", i);
	memset(r, 0, sizeof(*r));
	json_t *id = e;
	if (json_is_object(e)) {
		if (only_fields(e, what, names, ARRAY_SIZE(names), err, errlen))
			return -1;
		id = json_object_get(e, "id");
		json_t *ro = json_object_get(e, "readonly");
		if (ro && !json_is_boolean(ro))
			RETURN_ERR(-1, "%s.readonly: expected true or false", what);
		r->vr_readonly = json_is_true(ro);
		if (parse_bus_device(e, what, r, err, errlen))
			return -1;
	}
	if (!id || !json_is_string(id) || !spec_id_ok(json_string_value(id), "vol-"))
		RETURN_ERR(-1,
			   "%s: expected a volume id (vol-<17 hex digits>) or {\"id\": VOL-ID, "
			   "\"readonly\": bool, \"bus\": \"nvme\"|\"virtio\", \"device\": NAME}",
			   what);
	snprintf(r->vr_id, sizeof(r->vr_id), "%s", json_string_value(id));
	return 0;
}

/* The NVMe volumes without a name get nitro run's default for their place; no name twice. */
static int resolve_devices(struct inst_spec *s, char *err, size_t errlen)
{
	unsigned nth = 0;
	for (unsigned i = 0; i < s->s_nvols; i++) {
		struct vol_ref *r = &s->s_vols[i];
		if (r->vr_virtio)
			continue;
		if (!r->vr_device[0])
			launch_default_device(nth, r->vr_device);
		nth++;
	}
	for (unsigned i = 0; i < s->s_nvols; i++)
		for (unsigned k = 0; k < i && s->s_vols[i].vr_device[0]; k++)
			if (!strcmp(s->s_vols[k].vr_device, s->s_vols[i].vr_device))
				RETURN_ERR(-1, "volumes[%u].device: %s is volumes[%u]'s already", i,
					   s->s_vols[i].vr_device, k);
	return 0;
}

int spec_free_device(const struct inst_spec *s, char out[SPEC_DEVICE_LEN])
{
	unsigned nth = 0;
	for (unsigned i = 0; i < s->s_nvols; i++)
		nth += !s->s_vols[i].vr_virtio;
	for (unsigned k = 0; k < 22; k++) {
		/* first the default for its place, then sdf..sdz */
		launch_default_device(k == 0 ? nth : k, out);
		bool used = false;
		for (unsigned i = 0; i < s->s_nvols && !used; i++)
			used = !strcmp(s->s_vols[i].vr_device, out);
		if (!used)
			return 0;
	}
	out[0] = 0;
	return -1;
}

/* "instance_store": {size_mib, dir}. */
static int parse_istore(json_t *o, struct inst_spec *s, char *err, size_t errlen)
{
	static const char *const names[] = {"size_mib", "dir"};
	if (!json_is_object(o))
		RETURN_ERR(-1, "instance_store: expected an object {size_mib, dir}");
	if (only_fields(o, "instance_store", names, ARRAY_SIZE(names), err, errlen))
		return -1;
	json_t *v = json_object_get(o, "size_mib");
	if (!v || !json_is_integer(v) || json_integer_value(v) < 1 ||
	    json_integer_value(v) > SPEC_MAX_VOLUME_MIB)
		RETURN_ERR(-1, "instance_store.size_mib: expected an integer from 1 to %u",
			   SPEC_MAX_VOLUME_MIB);
	s->s_istore_mib = (uint64_t)json_integer_value(v);
	if ((v = json_object_get(o, "dir")) && path_copy(v, "instance_store.dir", s->s_istore_dir,
							 sizeof(s->s_istore_dir), err, errlen))
		return -1;
	return 0;
}

static int parse_instance(json_t *o, struct inst_spec *s, char *err, size_t errlen)
{
	static const char *const names[] = {"cpus",	      "memory_mib", "kernel",  "initrd",
					    "cmdline",	      "volumes",    "nics",    "console",
					    "instance_type",  "user_data",  "ssh_key", "tpm",
					    "instance_store", "region",	    "enclaves"};
	if (only_fields(o, "", names, ARRAY_SIZE(names), err, errlen))
		return -1;
	memset(s, 0, sizeof(*s));
	uint64_t cpus = 1, mem = 256;
	if (get_uint(o, "cpus", 1, 254, &cpus, err, errlen) ||
	    get_uint(o, "memory_mib", 64, 1024 * 1024, &mem, err, errlen) ||
	    get_bool(o, "console", &s->s_console, err, errlen) ||
	    get_bool(o, "tpm", &s->s_tpm, err, errlen) ||
	    get_bool(o, "enclaves", &s->s_enclaves, err, errlen))
		return -1;
	s->s_cpus = (unsigned)cpus;
	s->s_mem_mib = mem;
	json_t *v;
	if ((v = json_object_get(o, "kernel")) &&
	    path_copy(v, "kernel", s->s_kernel, sizeof(s->s_kernel), err, errlen))
		return -1;
	if ((v = json_object_get(o, "initrd"))) {
		if (json_is_null(v))
			s->s_no_initrd = true;
		else if (path_copy(v, "initrd", s->s_initrd, sizeof(s->s_initrd), err, errlen))
			return -1;
	}
	if ((v = json_object_get(o, "instance_type"))) {
		if (str_copy(v, "instance_type", s->s_instance_type, sizeof(s->s_instance_type),
			     err, errlen))
			return -1;
		if (!hv_instance_type_ok(s->s_instance_type))
			RETURN_ERR(-1, "instance_type: expected a name like \"m5.large\"");
	}
	if ((v = json_object_get(o, "region"))) {
		if (str_copy(v, "region", s->s_region, sizeof(s->s_region), err, errlen))
			return -1;
		if (!launch_region_ok(s->s_region))
			RETURN_ERR(-1,
				   "region: expected a name like \"eu-west-1\" (1 to %d of a-z, "
				   "0-9 and '-', not starting or ending with '-')",
				   LAUNCH_REGION_MAX);
	}
	if ((v = json_object_get(o, "user_data")) &&
	    path_copy(v, "user_data", s->s_user_data, sizeof(s->s_user_data), err, errlen))
		return -1;
	if ((v = json_object_get(o, "ssh_key")) &&
	    path_copy(v, "ssh_key", s->s_ssh_key, sizeof(s->s_ssh_key), err, errlen))
		return -1;
	snprintf(s->s_cmdline, sizeof(s->s_cmdline), "console=ttyS0 reboot=k panic=-1");
	if ((v = json_object_get(o, "cmdline")) &&
	    str_copy(v, "cmdline", s->s_cmdline, sizeof(s->s_cmdline), err, errlen))
		return -1;
	if ((v = json_object_get(o, "volumes"))) {
		if (!json_is_array(v))
			RETURN_ERR(-1, "volumes: expected an array of volume ids");
		if (json_array_size(v) > SPEC_MAX_VOLUMES)
			RETURN_ERR(-1, "volumes: at most %u", SPEC_MAX_VOLUMES);
		size_t i;
		json_t *e;
		json_array_foreach(v, i, e)
		{
			struct vol_ref *r = &s->s_vols[s->s_nvols];
			if (parse_vol_ref(e, i, r, err, errlen))
				return -1;
			for (unsigned k = 0; k < s->s_nvols; k++)
				if (!strcmp(s->s_vols[k].vr_id, r->vr_id))
					RETURN_ERR(-1, "volumes[%zu]: %s is listed twice", i,
						   r->vr_id);
			s->s_nvols++;
		}
		if (resolve_devices(s, err, errlen))
			return -1;
	}
	if ((v = json_object_get(o, "instance_store"))) {
		if (parse_istore(v, s, err, errlen))
			return -1;
		if (s->s_nvols >= LAUNCH_MAX_VOLUMES)
			RETURN_ERR(-1,
				   "instance_store: at most %u volumes beside an instance store",
				   LAUNCH_MAX_VOLUMES - 1);
	}
	if ((v = json_object_get(o, "nics"))) {
		if (!json_is_array(v))
			RETURN_ERR(
			    -1,
			    "nics: expected an array of {vpc, ip, mac, sg, pps, bandwidth_mbit}");
		if (json_array_size(v) > SPEC_MAX_NICS)
			RETURN_ERR(-1, "nics: at most %u", SPEC_MAX_NICS);
		size_t i;
		json_t *e;
		json_array_foreach(v, i, e)
		{
			if (parse_nic(e, (unsigned)i, &s->s_nics[s->s_nnics], err, errlen))
				return -1;
			s->s_nnics++;
		}
	}
	return 0;
}

int spec_parse_instance(const char *body, size_t len, struct inst_spec *s, char *err, size_t errlen)
{
	json_t *o = load_object(body, len, false, err, errlen);
	if (!o)
		return -1;
	int r = parse_instance(o, s, err, errlen);
	json_decref(o);
	return r;
}

int spec_parse_volume(const char *body, size_t len, struct vol_spec *vs, char *err, size_t errlen)
{
	static const char *const names[] = {"size_mib",	  "encrypted",	    "overcommit",
					    "iops",	  "throughput_mib", "gp2",
					    "from_image", "from_snapshot"};
	json_t *o = load_object(body, len, false, err, errlen);
	if (!o)
		return -1;
	int r = -1;
	vs->vs_encrypted = true;
	vs->vs_overcommit = false;
	vs->vs_size_mib = 0;
	vs->vs_gp2 = false;
	vs->vs_iops = vs->vs_throughput_mib = SPEC_UNSET;
	vs->vs_from_image[0] = vs->vs_from_snapshot[0] = 0;
	json_t *img = json_object_get(o, "from_image"), *snap = json_object_get(o, "from_snapshot");
	if (only_fields(o, "", names, ARRAY_SIZE(names), err, errlen) ||
	    get_uint(o, "size_mib", 1, SPEC_MAX_VOLUME_MIB, &vs->vs_size_mib, err, errlen) ||
	    get_bool(o, "encrypted", &vs->vs_encrypted, err, errlen) ||
	    get_bool(o, "overcommit", &vs->vs_overcommit, err, errlen) ||
	    get_opt_uint(o, "", "iops", LAUNCH_MAX_IOPS, &vs->vs_iops, err, errlen) ||
	    get_opt_uint(o, "", "throughput_mib", LAUNCH_MAX_THROUGHPUT_MIB, &vs->vs_throughput_mib,
			 err, errlen) ||
	    get_bool(o, "gp2", &vs->vs_gp2, err, errlen) ||
	    (img && str_copy(img, "from_image", vs->vs_from_image, sizeof(vs->vs_from_image), err,
			     errlen)) ||
	    (snap && str_copy(snap, "from_snapshot", vs->vs_from_snapshot,
			      sizeof(vs->vs_from_snapshot), err, errlen)))
		goto out;
	if (img && snap) {
		snprintf(err, errlen, "from_image and from_snapshot exclude each other");
		goto out;
	}
	if (img && vs->vs_from_image[0] != '/') {
		snprintf(err, errlen, "from_image: expected an absolute path");
		goto out;
	}
	if (snap && !spec_id_ok(vs->vs_from_snapshot, "snap-")) {
		snprintf(err, errlen,
			 "from_snapshot: expected a snapshot id (snap-<17 hex digits>)");
		goto out;
	}
	if (!vs->vs_size_mib && !img && !snap) {
		snprintf(err, errlen,
			 "size_mib: required (1 to %u) unless from_image or "
			 "from_snapshot gives the size",
			 SPEC_MAX_VOLUME_MIB);
		goto out;
	}
	if (vs->vs_gp2 && vs->vs_iops != SPEC_UNSET) {
		snprintf(err, errlen,
			 "iops: gp2 volumes get their IOPS from their size (gp2 and "
			 "iops exclude each other)");
		goto out;
	}
	r = 0;
out:
	json_decref(o);
	return r;
}

int spec_parse_snapshot(const char *body, size_t len, char vol[SPEC_ID_LEN], char *err,
			size_t errlen)
{
	static const char *const names[] = {"volume_id"};
	json_t *o = load_object(body, len, false, err, errlen);
	if (!o)
		return -1;
	int r = -1;
	json_t *v = json_object_get(o, "volume_id");
	if (only_fields(o, "", names, ARRAY_SIZE(names), err, errlen))
		goto out;
	if (!v || !json_is_string(v) || !spec_id_ok(json_string_value(v), "vol-")) {
		snprintf(err, errlen, "volume_id: expected a volume id (vol-<17 hex digits>)");
		goto out;
	}
	snprintf(vol, SPEC_ID_LEN, "%s", json_string_value(v));
	r = 0;
out:
	json_decref(o);
	return r;
}

int spec_parse_attach(const char *body, size_t len, char id[SPEC_ID_LEN], struct vol_ref *r,
		      char *err, size_t errlen)
{
	static const char *const names[] = {"instance_id", "readonly", "bus", "device"};
	json_t *o = load_object(body, len, false, err, errlen);
	if (!o)
		return -1;
	int rc = -1;
	json_t *v = json_object_get(o, "instance_id");
	memset(r, 0, sizeof(*r));
	if (only_fields(o, "", names, ARRAY_SIZE(names), err, errlen) ||
	    get_bool(o, "readonly", &r->vr_readonly, err, errlen) ||
	    parse_bus_device(o, "", r, err, errlen))
		goto out;
	if (!v || !json_is_string(v) || !spec_id_ok(json_string_value(v), "i-")) {
		snprintf(err, errlen, "instance_id: expected an instance id (i-<17 hex digits>)");
		goto out;
	}
	snprintf(id, SPEC_ID_LEN, "%s", json_string_value(v));
	rc = 0;
out:
	json_decref(o);
	return rc;
}

int spec_parse_vpc(const char *body, size_t len, struct vpc_spec *vp, char *err, size_t errlen)
{
	static const char *const names[] = {"id", "cidr", "internet_gateway"};
	json_t *o = load_object(body, len, false, err, errlen);
	if (!o)
		return -1;
	int r = -1;
	memset(vp, 0, sizeof(*vp));
	json_t *id = json_object_get(o, "id"), *cidr = json_object_get(o, "cidr");
	uint32_t net;
	unsigned prefix;
	if (only_fields(o, "", names, ARRAY_SIZE(names), err, errlen) ||
	    get_bool(o, "internet_gateway", &vp->vp_igw, err, errlen))
		goto out;
	if (!id || !json_is_integer(id) || json_integer_value(id) < 1 ||
	    json_integer_value(id) > 0xffffff) {
		snprintf(err, errlen,
			 "id: expected an integer from 1 to 16777215 (the VPC of nics)");
		goto out;
	}
	vp->vp_id = (uint32_t)json_integer_value(id);
	if (!cidr || !json_is_string(cidr) || json_string_length(cidr) >= sizeof(vp->vp_cidr) ||
	    strlen(json_string_value(cidr)) != json_string_length(cidr) ||
	    !launch_cidr_parse(json_string_value(cidr), LAUNCH_VPC_PREFIX_MIN,
			       LAUNCH_VPC_PREFIX_MAX, false, &net, &prefix)) {
		snprintf(err, errlen,
			 "cidr: expected \"A.B.C.D/P\" with P from %d to %d and no host bits",
			 LAUNCH_VPC_PREFIX_MIN, LAUNCH_VPC_PREFIX_MAX);
		goto out;
	}
	snprintf(vp->vp_cidr, sizeof(vp->vp_cidr), "%s", json_string_value(cidr));
	r = 0;
out:
	json_decref(o);
	return r;
}

uint32_t spec_vpc_id(const char *s)
{
	size_t n = strlen(s);
	if (n < 1 || n > 8 || s[0] == '0')
		return 0;
	uint32_t v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
		v = v * 10 + (uint32_t)(s[i] - '0');
	}
	return v <= 0xffffff ? v : 0;
}

int spec_parse_empty(const char *body, size_t len, char *err, size_t errlen)
{
	json_t *o = load_object(body, len, true, err, errlen);
	if (!o)
		return -1;
	int r = only_fields(o, "", NULL, 0, err, errlen);
	json_decref(o);
	return r;
}

size_t spec_route_canon(const char *path, char out[SPEC_MAX_ROUTE + 1])
{
	size_t n = 0;
	for (const char *p = path; *p;) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		size_t l = strcspn(p, "/");
		if (n + 1 + l <= SPEC_MAX_ROUTE) {
			out[n] = '/';
			memcpy(out + n + 1, p, l);
		}
		n += 1 + l;
		p += l;
	}
	if (n == 0) {
		out[0] = '/';
		n = 1;
	}
	out[n <= SPEC_MAX_ROUTE ? n : 0] = 0;
	return n;
}
