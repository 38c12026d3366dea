/* Instances and volumes as JSON and in the store (see records.h). */
#include "controller/records.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controller/store.h"
#include "lib/util.h"

/* stored: defaults stay absent (so the document parses back as it was given); the API's
 * view shows the default image's paths. */
static json_t *spec_json(const struct inst_spec *s, bool stored)
{
	json_t *vols = json_array(), *nics = json_array();
	/* A volume used read-only is an object, any other its id alone (as given). */
	/* {id, readonly, bus, device}: the bus is always written, so a record read back
	 * without one is older than NVMe (virtio-blk then: inst_from_json). */
	for (unsigned i = 0; i < s->s_nvols; i++) {
		const struct vol_ref *r = &s->s_vols[i];
		json_t *o = json_pack("{s:s, s:b, s:s}", "id", r->vr_id, "readonly", r->vr_readonly,
				      "bus", r->vr_virtio ? "virtio" : "nvme");
		if (r->vr_device[0])
			json_object_set_new(o, "device", json_string(r->vr_device));
		json_array_append_new(vols, o);
	}
	for (unsigned i = 0; i < s->s_nnics; i++) {
		const struct nic_spec *n = &s->s_nics[i];
		json_t *o = json_pack("{s:I, s:s}", "vpc", (json_int_t)n->n_vpc, "ip", n->n_ip);
		if (n->n_mac[0])
			json_object_set_new(o, "mac", json_string(n->n_mac));
		if (n->n_sg[0])
			json_object_set_new(o, "sg", json_string(n->n_sg));
		if (n->n_pps != SPEC_UNSET)
			json_object_set_new(o, "pps", json_integer(n->n_pps));
		if (n->n_bandwidth_mbit != SPEC_UNSET)
			json_object_set_new(o, "bandwidth_mbit", json_integer(n->n_bandwidth_mbit));
		if (n->n_imds[0])
			json_object_set_new(o, "imds", json_string(n->n_imds));
		json_array_append_new(nics, o);
	}
	json_t *j = json_pack("{s:i, s:I, s:s, s:o, s:o, s:b}", "cpus", (int)s->s_cpus,
			      "memory_mib", (json_int_t)s->s_mem_mib, "cmdline", s->s_cmdline,
			      "volumes", vols, "nics", nics, "console", s->s_console);
	const struct {
		const char *k, *v;
	} meta[] = {{"instance_type", s->s_instance_type},
		    {"user_data", s->s_user_data},
		    {"ssh_key", s->s_ssh_key},
		    {"region", s->s_region}};
	for (size_t i = 0; i < sizeof(meta) / sizeof(meta[0]); i++)
		if (meta[i].v[0])
			json_object_set_new(j, meta[i].k, json_string(meta[i].v));
	json_object_set_new(j, "tpm", json_boolean(s->s_tpm));
	json_object_set_new(j, "enclaves", json_boolean(s->s_enclaves));
	if (s->s_istore_mib) {
		json_t *o = json_pack("{s:I}", "size_mib", (json_int_t)s->s_istore_mib);
		if (s->s_istore_dir[0])
			json_object_set_new(o, "dir", json_string(s->s_istore_dir));
		json_object_set_new(j, "instance_store", o);
	}
	char path[PATH_MAX + 16];
	if (s->s_kernel[0]) {
		json_object_set_new(j, "kernel", json_string(s->s_kernel));
	} else if (!stored) {
		sfmt(path, sizeof(path), "%s/vmlinuz", g_ctl.c_images_dir);
		json_object_set_new(j, "kernel", json_string(path));
	}
	if (s->s_no_initrd) {
		json_object_set_new(j, "initrd", json_null());
	} else if (s->s_initrd[0]) {
		json_object_set_new(j, "initrd", json_string(s->s_initrd));
	} else if (!stored) {
		sfmt(path, sizeof(path), "%s/guest.img", g_ctl.c_images_dir);
		json_object_set_new(j, "initrd", s->s_kernel[0] ? json_null() : json_string(path));
	}
	return j;
}

static json_t *proc_json(const struct proc *p)
{
	return json_pack("{s:i, s:I, s:I, s:i}", "kind", p->p_kind, "pid", (json_int_t)p->p_pid,
			 "start", (json_int_t)p->p_start, "restarts", (int)p->p_restarts);
}

json_t *inst_json(const struct instance *in, bool stored)
{
	json_t *j = spec_json(&in->i_spec, stored);
	json_object_set_new(j, "id", json_string(in->i_id));
	json_object_set_new(j, "state", json_string(state_name(in->i_state)));
	json_object_set_new(j, "reason", in->i_reason[0] ? json_string(in->i_reason) : json_null());
	json_object_set_new(j, "created", json_integer(in->i_created));
	json_object_set_new(j, "launched",
			    in->i_launched ? json_integer(in->i_launched) : json_null());
	unsigned restarts = 0;
	for (unsigned i = 0; i < in->i_ncards; i++)
		restarts += in->i_cards[i].p_restarts;
	json_object_set_new(j, "card_restarts", json_integer(restarts));
	json_object_set_new(j, "hv_pid",
			    in->i_hv.p_pid ? json_integer(in->i_hv.p_pid) : json_null());
	json_t *cards = json_array();
	for (unsigned i = 0; i < in->i_ncards; i++)
		json_array_append_new(
		    cards, in->i_cards[i].p_pid ? json_integer(in->i_cards[i].p_pid) : json_null());
	json_object_set_new(j, "card_pids", cards);
	json_object_set_new(j, "owner", json_integer(in->i_owner));
	if (stored) {
		json_object_set_new(j, "goal", json_integer(in->i_goal));
		json_object_set_new(j, "uid", json_integer(in->i_uid));
		json_object_set_new(j, "gid", json_integer(in->i_gid));
		json_object_set_new(j, "launches", json_integer(in->i_launches));
		json_object_set_new(j, "hv", proc_json(&in->i_hv));
		json_t *pc = json_array();
		for (unsigned i = 0; i < in->i_ncards; i++)
			json_array_append_new(pc, proc_json(&in->i_cards[i]));
		json_object_set_new(j, "cards", pc);
	}
	return j;
}

/* Every input of inst_json(in, false) (g_ctl.c_images_dir aside: fixed at start), and its
 * rendering. */
struct inst_view {
	char iv_id[INST_ID_LEN + 1];
	int iv_state;
	char iv_reason[sizeof(((struct instance *)0)->i_reason)];
	struct inst_spec iv_spec;
	uid_t iv_owner;
	int64_t iv_created, iv_launched;
	pid_t iv_hv_pid;
	unsigned iv_ncards;
	pid_t iv_card_pid[INST_MAX_CARDS];
	unsigned iv_card_restarts[INST_MAX_CARDS];
	char *iv_text;
	size_t iv_len;
};

static bool view_current(const struct inst_view *v, const struct instance *in)
{
	if (!v->iv_text || v->iv_state != in->i_state || v->iv_ncards != in->i_ncards ||
	    v->iv_owner != in->i_owner || v->iv_created != in->i_created ||
	    v->iv_launched != in->i_launched || v->iv_hv_pid != in->i_hv.p_pid ||
	    memcmp(v->iv_id, in->i_id, sizeof(v->iv_id)) ||
	    memcmp(v->iv_reason, in->i_reason, sizeof(v->iv_reason)) ||
	    memcmp(&v->iv_spec, &in->i_spec, sizeof(v->iv_spec)))
		return false;
	for (unsigned i = 0; i < in->i_ncards && i < INST_MAX_CARDS; i++)
		if (v->iv_card_pid[i] != in->i_cards[i].p_pid ||
		    v->iv_card_restarts[i] != in->i_cards[i].p_restarts)
			return false;
	return true;
}

char *inst_view_text(struct instance *in, size_t *len)
{
	struct inst_view *v = in->i_view;
	if (!v && !(v = in->i_view = calloc(1, sizeof(*v))))
		return NULL;
	if (!view_current(v, in)) {
		free(v->iv_text);
		v->iv_text = NULL;
		json_t *j = inst_json(in, false);
		char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
		json_decref(j);
		if (!text)
			return NULL;
		memcpy(v->iv_id, in->i_id, sizeof(v->iv_id));
		v->iv_state = in->i_state;
		v->iv_owner = in->i_owner;
		memcpy(v->iv_reason, in->i_reason, sizeof(v->iv_reason));
		memcpy(&v->iv_spec, &in->i_spec, sizeof(v->iv_spec));
		v->iv_created = in->i_created;
		v->iv_launched = in->i_launched;
		v->iv_hv_pid = in->i_hv.p_pid;
		v->iv_ncards = in->i_ncards;
		for (unsigned i = 0; i < in->i_ncards && i < INST_MAX_CARDS; i++) {
			v->iv_card_pid[i] = in->i_cards[i].p_pid;
			v->iv_card_restarts[i] = in->i_cards[i].p_restarts;
		}
		v->iv_text = text;
		v->iv_len = strlen(text);
	}
	char *copy = malloc(v->iv_len + 1);
	if (copy) {
		memcpy(copy, v->iv_text, v->iv_len + 1);
		*len = v->iv_len;
	}
	return copy;
}

json_t *vol_json(const struct volrec *v, bool stored)
{
	json_t *j = json_pack("{s:s, s:I, s:b, s:s, s:I}", "id", v->v_id, "size_mib",
			      (json_int_t)v->v_size_mib, "encrypted", v->v_encrypted, "state",
			      v->v_attached[0] ? "in-use" : "available", "created",
			      (json_int_t)v->v_created);
	json_object_set_new(j, "attached_to",
			    v->v_attached[0] ? json_string(v->v_attached) : json_null());
	json_object_set_new(j, "iops",
			    v->v_iops == SPEC_UNSET ? json_null() : json_integer(v->v_iops));
	json_object_set_new(j, "throughput_mib",
			    v->v_throughput_mib == SPEC_UNSET ? json_null()
							      : json_integer(v->v_throughput_mib));
	json_object_set_new(j, "gp2", json_boolean(v->v_gp2));
	json_object_set_new(j, "owner", json_integer(v->v_owner));
	if (stored)
		json_object_set_new(j, "path", json_string(v->v_path));
	return j;
}

/* "owner": a uid; absent in records written before owners existed: root. */
static int owner_from_json(json_t *j, uid_t *owner)
{
	json_t *o = json_object_get(j, "owner");
	*owner = 0;
	if (!o)
		return 0;
	if (!json_is_integer(o) || json_integer_value(o) < 0 || json_integer_value(o) > 0xfffffffe)
		return -1;
	*owner = (uid_t)json_integer_value(o);
	return 0;
}

static int proc_from_json(json_t *j, int kind, struct proc *p)
{
	memset(p, 0, sizeof(*p));
	p->p_kind = kind;
	p->p_pidfd = -1;
	if (!json_is_object(j))
		return -1;
	json_int_t pid = json_integer_value(json_object_get(j, "pid"));
	json_int_t start = json_integer_value(json_object_get(j, "start"));
	json_int_t r = json_integer_value(json_object_get(j, "restarts"));
	if (pid < 0 || pid > 0x3fffffff || start < 0 || r < 0 || r > 1000000)
		return -1;
	p->p_kind = (int)json_integer_value(json_object_get(j, "kind"));
	p->p_pid = (pid_t)pid;
	p->p_start = (unsigned long long)start;
	p->p_restarts = (unsigned)r;
	return 0;
}

int inst_from_json(json_t *j, struct instance *in, char *err, size_t errlen)
{
	memset(in, 0, sizeof(*in));
	in->i_hv.p_pidfd = -1;
	/* The spec part goes through the API's own checks. */
	json_t *spec = json_object();
	static const char *const fields[] = {"cpus",	  "memory_mib", "kernel",  "initrd",
					     "cmdline",	  "nics",	"console", "instance_type",
					     "user_data", "ssh_key",	"tpm",	   "instance_store",
					     "region",	  "enclaves"};
	for (unsigned i = 0; i < ARRAY_SIZE(fields); i++) {
		json_t *v = json_object_get(j, fields[i]);
		if (v)
			json_object_set(spec, fields[i], v);
	}
	/* A volume stored without a bus is from before NVMe: it stays virtio-blk. */
	json_t *vols = json_object_get(j, "volumes");
	if (vols) {
		json_t *copy = json_array();
		size_t i;
		json_t *e;
		json_array_foreach(vols, i, e)
		{
			json_t *o =
			    json_is_string(e) ? json_pack("{s:O}", "id", e) : json_deep_copy(e);
			if (json_is_object(o) && !json_object_get(o, "bus"))
				json_object_set_new(o, "bus", json_string("virtio"));
			json_array_append_new(copy, o ? o : json_null());
		}
		json_object_set_new(spec, "volumes", copy);
	}
	char *text = json_dumps(spec, JSON_COMPACT);
	json_decref(spec);
	int r = text ? spec_parse_instance(text, strlen(text), &in->i_spec, err, errlen) : -1;
	free(text);
	if (r)
		return -1;
	const char *id = json_string_value(json_object_get(j, "id"));
	if (!id || !spec_id_ok(id, "i-"))
		RETURN_ERR(-1, "bad instance id");
	snprintf(in->i_id, sizeof(in->i_id), "%s", id);
	in->i_state = state_parse(json_string_value(json_object_get(j, "state")));
	if (in->i_state < 0)
		RETURN_ERR(-1, "%s: bad state", id);
	const char *reason = json_string_value(json_object_get(j, "reason"));
	snprintf(in->i_reason, sizeof(in->i_reason), "%s", reason ? reason : "");
	in->i_created = json_integer_value(json_object_get(j, "created"));
	in->i_launched = json_integer_value(json_object_get(j, "launched"));
	in->i_goal = (int)json_integer_value(json_object_get(j, "goal"));
	in->i_uid = (uid_t)json_integer_value(json_object_get(j, "uid"));
	in->i_gid = (gid_t)json_integer_value(json_object_get(j, "gid"));
	in->i_launches = (unsigned)json_integer_value(json_object_get(j, "launches"));
	/* State from before owners were recorded: root's (docs/api.md, "Owners"). */
	if (owner_from_json(j, &in->i_owner))
		RETURN_ERR(-1, "%s: bad owner", id);
	if (in->i_goal < GOAL_RUN || in->i_goal > GOAL_FAIL || in->i_uid == 0)
		RETURN_ERR(-1, "%s: bad goal or uid", id);
	if (proc_from_json(json_object_get(j, "hv"), PK_HV, &in->i_hv))
		RETURN_ERR(-1, "%s: bad hv record", id);
	json_t *cards = json_object_get(j, "cards");
	size_t n = json_array_size(cards);
	if (n > INST_MAX_CARDS)
		RETURN_ERR(-1, "%s: too many cards", id);
	for (size_t i = 0; i < n; i++)
		if (proc_from_json(json_array_get(cards, i), PK_CARD_EBS, &in->i_cards[i]))
			RETURN_ERR(-1, "%s: bad card record", id);
	in->i_ncards = (unsigned)n;
	return 0;
}

int vol_from_json(json_t *j, struct volrec *v, char *err, size_t errlen)
{
	memset(v, 0, sizeof(*v));
	const char *id = json_string_value(json_object_get(j, "id"));
	const char *path = json_string_value(json_object_get(j, "path"));
	const char *att = json_string_value(json_object_get(j, "attached_to"));
	if (!id || !spec_id_ok(id, "vol-") || !path || strlen(path) >= sizeof(v->v_path))
		RETURN_ERR(-1, "bad volume record");
	if (att && !spec_id_ok(att, "i-"))
		RETURN_ERR(-1, "%s: bad attachment", id);
	snprintf(v->v_id, sizeof(v->v_id), "%s", id);
	snprintf(v->v_path, sizeof(v->v_path), "%s", path);
	snprintf(v->v_attached, sizeof(v->v_attached), "%s", att ? att : "");
	v->v_size_mib = (uint64_t)json_integer_value(json_object_get(j, "size_mib"));
	v->v_encrypted = json_is_true(json_object_get(j, "encrypted"));
	v->v_created = json_integer_value(json_object_get(j, "created"));
	/* The QoS goes through the API's own checks (absent in records older than it). */
	json_t *q = json_object();
	json_object_set_new(q, "size_mib", json_integer(1));
	static const char *const qos[] = {"iops", "throughput_mib", "gp2"};
	for (unsigned i = 0; i < ARRAY_SIZE(qos); i++) {
		json_t *x = json_object_get(j, qos[i]);
		if (x && !json_is_null(x))
			json_object_set(q, qos[i], x);
	}
	char *text = json_dumps(q, JSON_COMPACT);
	json_decref(q);
	struct vol_spec vs;
	int r = text ? spec_parse_volume(text, strlen(text), &vs, err, errlen) : -1;
	free(text);
	if (r)
		RETURN_ERR(-1, "%s: bad QoS", id);
	v->v_iops = vs.vs_iops;
	v->v_throughput_mib = vs.vs_throughput_mib;
	v->v_gp2 = vs.vs_gp2;
	if (owner_from_json(j, &v->v_owner))
		RETURN_ERR(-1, "%s: bad owner", id);
	return 0;
}

static int save_doc(const char *table, const char *id, json_t *j)
{
	char *doc = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	char err[512];
	int rc = 0;
	if (!doc || store_put(g_ctl.c_store, table, id, doc, err, sizeof(err))) {
		warnmsg("%s %s: not saved: %s", table, id, doc ? err : "out of memory");
		g_ctl.c_save_failed = true;
		sfmt(g_ctl.c_save_err, sizeof(g_ctl.c_save_err), "%s", doc ? err : "out of memory");
		rc = -1;
	}
	free(doc);
	return rc;
}

int inst_save(const struct instance *in)
{
	return save_doc("instances", in->i_id, inst_json(in, true));
}

int vol_save(const struct volrec *v)
{
	return save_doc("volumes", v->v_id, vol_json(v, true));
}

int vol_forget(const char *id, char *err, size_t errlen)
{
	return store_delete(g_ctl.c_store, "volumes", id, err, errlen);
}

json_t *vpc_json(const struct vpcrec *v)
{
	return json_pack("{s:I, s:s, s:b, s:I, s:I}", "id", (json_int_t)v->vp_id, "cidr",
			 v->vp_cidr, "internet_gateway", v->vp_igw, "owner",
			 (json_int_t)v->vp_owner, "created", (json_int_t)v->vp_created);
}

int vpc_from_json(json_t *j, struct vpcrec *v, char *err, size_t errlen)
{
	/* the API's own check of the fields a request gives, then the rest */
	json_t *q = json_pack("{s:O?, s:O?, s:O?}", "id", json_object_get(j, "id"), "cidr",
			      json_object_get(j, "cidr"), "internet_gateway",
			      json_object_get(j, "internet_gateway"));
	char *text = q ? json_dumps(q, JSON_COMPACT) : NULL;
	json_decref(q);
	struct vpc_spec vs;
	int r = text ? spec_parse_vpc(text, strlen(text), &vs, err, errlen) : -1;
	free(text);
	if (r)
		return -1;
	memset(v, 0, sizeof(*v));
	v->vp_id = vs.vp_id;
	memcpy(v->vp_cidr, vs.vp_cidr, sizeof(v->vp_cidr));
	v->vp_igw = vs.vp_igw;
	v->vp_created = (int64_t)json_integer_value(json_object_get(j, "created"));
	if (owner_from_json(j, &v->vp_owner))
		RETURN_ERR(-1, "vpc %u: bad owner", v->vp_id);
	return 0;
}

static void vpc_key(uint32_t id, char out[12])
{
	snprintf(out, 12, "%u", id);
}

int vpc_save(const struct vpcrec *v)
{
	char id[12];
	vpc_key(v->vp_id, id);
	return save_doc("vpcs", id, vpc_json(v));
}

int vpc_forget(uint32_t vid, char *err, size_t errlen)
{
	char id[12];
	vpc_key(vid, id);
	return store_delete(g_ctl.c_store, "vpcs", id, err, errlen);
}

void vpc_insert(struct vpcrec *v)
{
	struct vpcrec **pp = &g_ctl.c_vpcs;
	while (*pp && (*pp)->vp_id < v->vp_id)
		pp = &(*pp)->vp_next;
	v->vp_next = *pp;
	*pp = v;
}

static int load_vpc(const char *id, const char *doc, void *arg)
{
	(void)arg;
	char err[256] = "not JSON", key[12] = "";
	json_t *j = json_loads(doc, 0, NULL);
	struct vpcrec *v = calloc(1, sizeof(*v));
	int r = !v   ? (sfmt(err, sizeof(err), "out of memory"), -1)
		: !j ? -1
		     : vpc_from_json(j, v, err, sizeof(err));
	if (r == 0) {
		vpc_key(v->vp_id, key);
		if (strcmp(id, key) || vpc_find(v->vp_id)) {
			sfmt(err, sizeof(err), "its row's key and its id differ");
			r = -1;
		}
	}
	if (r) {
		warnmsg("state: vpc %s: skipped (%s)", id, err);
		free(v);
	} else {
		vpc_insert(v);
	}
	json_decref(j);
	return 0;
}

/* One stored document (arg: &g_ctl.c_volumes or &g_ctl.c_instances), checked like any
 * input and appended to its list, or skipped with a message. */
static int load_record(const char *id, const char *doc, void *arg)
{
	bool vol = arg == &g_ctl.c_volumes;
	char err[256] = "out of memory";
	json_t *j = json_loads(doc, 0, NULL);
	void *rec = calloc(1, vol ? sizeof(struct volrec) : sizeof(struct instance));
	if (!rec || !j ||
	    (vol ? vol_from_json(j, rec, err, sizeof(err))
		 : inst_from_json(j, rec, err, sizeof(err)))) {
		warnmsg("state: %s %s: skipped (%s)", vol ? "volume" : "instance", id,
			j ? err : "not JSON");
		free(rec);
	} else if (vol) {
		struct volrec **tail = &g_ctl.c_volumes;
		while (*tail)
			tail = &(*tail)->v_next;
		*tail = rec;
	} else {
		struct instance **tail = &g_ctl.c_instances;
		while (*tail)
			tail = &(*tail)->i_next;
		*tail = rec;
	}
	json_decref(j);
	return 0;
}

int records_load(char *err, size_t errlen)
{
	struct store *st = g_ctl.c_store;
	if (store_each(st, "volumes", load_record, &g_ctl.c_volumes, err, errlen) < 0 ||
	    store_each(st, "instances", load_record, &g_ctl.c_instances, err, errlen) < 0 ||
	    store_each(st, "vpcs", load_vpc, NULL, err, errlen) < 0)
		return -1;
	return 0;
}
