/* /v1/vpcs: the VPC records of this host (docs/api.md, "VPCs"; issue 15 item 5).
 *
 * A record gives a VPC (the "vpc" of nics) its CIDR and, optionally, an internet gateway:
 * every NIC of the VPC must lie in the CIDR, and each gets a nitro-vpc-igw NAT beside its
 * card (launcher.c), which reaches outside addresses and the host's loopback services
 * through the router address. That is a host resource, so records are the admins' (root,
 * nitrod's uid, --admin-uid): others may read them (their instances' nics use them) but
 * get 403 on create and delete. Ids are decimal (the Geneve VNI), as nics name them.
 * Overlapping CIDRs of different VPCs are allowed, as on AWS: VPCs are isolated.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "controller/api_int.h"
#include "controller/ctl.h"
#include "controller/records.h"
#include "launch/launch.h"

/* Whether an instance still has its nics (every state but terminated) and processes. */
static bool holds_nics(const struct instance *in)
{
	return in->i_state != ST_TERMINATED;
}

static bool has_processes(const struct instance *in)
{
	return in->i_state == ST_PENDING || in->i_state == ST_RUNNING || in->i_state == ST_STOPPING;
}

/* The first nic of in in VPC id (its index), or -1. */
static int nic_in(const struct instance *in, uint32_t id)
{
	for (unsigned i = 0; i < in->i_spec.s_nnics; i++)
		if (in->i_spec.s_nics[i].n_vpc == id)
			return (int)i;
	return -1;
}

int vpcs_check_nics(const struct inst_spec *s, struct api_resp *rs)
{
	for (unsigned i = 0; i < s->s_nnics; i++) {
		const struct vpcrec *v = vpc_find(s->s_nics[i].n_vpc);
		if (v && !launch_subnet_in(s->s_nics[i].n_ip, v->vp_cidr)) {
			api_fail(rs, 400, "nics[%u].ip: %s is not inside VPC %u's CIDR %s", i,
				 s->s_nics[i].n_ip, v->vp_id, v->vp_cidr);
			return -1;
		}
	}
	return 0;
}

static void vpc_create(const struct api_req *rq, struct api_resp *rs)
{
	struct vpc_spec vs;
	char err[512];
	if (!api_is_admin(rq->ar_uid)) {
		api_fail(rs, 403,
			 "VPC records (and their internet gateways, which reach this host's "
			 "loopback) are the host's: root or an --admin-uid only");
		return;
	}
	if (spec_parse_vpc(rq->ar_body, rq->ar_len, &vs, err, sizeof(err))) {
		api_fail(rs, 400, "%s", err);
		return;
	}
	if (vpc_find(vs.vp_id)) {
		api_fail(rs, 409, "VPC %u exists (delete it first)", vs.vp_id);
		return;
	}
	/* The nics already in the VPC (made without a record): a running one cannot change
	 * what it started with (its processes and their order would), a stopped one must lie
	 * in the CIDR. */
	for (struct instance *in = g_ctl.c_instances; in; in = in->i_next) {
		int n = holds_nics(in) ? nic_in(in, vs.vp_id) : -1;
		if (n < 0)
			continue;
		if (has_processes(in)) {
			api_fail(rs, 409,
				 "VPC %u has a nic of %s, which is %s: stop or terminate it first",
				 vs.vp_id, in->i_id, state_name(in->i_state));
			return;
		}
		for (unsigned i = 0; i < in->i_spec.s_nnics; i++)
			if (in->i_spec.s_nics[i].n_vpc == vs.vp_id &&
			    !launch_subnet_in(in->i_spec.s_nics[i].n_ip, vs.vp_cidr)) {
				api_fail(rs, 409, "%s's nic %s in VPC %u is not inside %s",
					 in->i_id, in->i_spec.s_nics[i].n_ip, vs.vp_id, vs.vp_cidr);
				return;
			}
	}
	struct vpcrec *v = calloc(1, sizeof(*v));
	if (!v) {
		api_fail(rs, 500, "out of memory");
		return;
	}
	v->vp_id = vs.vp_id;
	memcpy(v->vp_cidr, vs.vp_cidr, sizeof(v->vp_cidr));
	v->vp_igw = vs.vp_igw;
	v->vp_owner = rq->ar_uid;
	v->vp_created = (int64_t)time(NULL);
	vpc_save(v);
	if (api_commit(rs) < 0) {
		free(v);
		return;
	}
	vpc_insert(v);
	snprintf(rs->rs_detail, sizeof(rs->rs_detail), "vpc %u cidr=%s igw=%d", v->vp_id,
		 v->vp_cidr, v->vp_igw);
	api_set_json(rs, 201, vpc_json(v));
}

static void vpc_delete(const struct api_req *rq, struct vpcrec *v, struct api_resp *rs)
{
	char err[512];
	if (!api_is_admin(rq->ar_uid)) {
		api_fail(rs, 403, "VPC records are the host's: root or an --admin-uid only");
		return;
	}
	if (spec_parse_empty(rq->ar_body, rq->ar_len, err, sizeof(err))) {
		api_fail(rs, 400, "%s", err);
		return;
	}
	/* As AWS (DependencyViolation): not while an interface is in it. */
	for (struct instance *in = g_ctl.c_instances; in; in = in->i_next)
		if (holds_nics(in) && nic_in(in, v->vp_id) >= 0) {
			api_fail(rs, 409, "VPC %u is in use by %s (%s): terminate it first",
				 v->vp_id, in->i_id, state_name(in->i_state));
			return;
		}
	if (vpc_forget(v->vp_id, err, sizeof(err))) {
		g_ctl.c_save_failed = true;
		snprintf(g_ctl.c_save_err, sizeof(g_ctl.c_save_err), "%s", err);
	}
	if (api_commit(rs) < 0)
		return;
	struct vpcrec **pp = &g_ctl.c_vpcs;
	while (*pp != v)
		pp = &(*pp)->vp_next;
	*pp = v->vp_next;
	snprintf(rs->rs_detail, sizeof(rs->rs_detail), "vpc %u deleted", v->vp_id);
	api_set_json(rs, 200,
		     json_pack("{s:I, s:s}", "id", (json_int_t)v->vp_id, "state", "deleted"));
	free(v);
}

void vpcs_route(const struct api_req *rq, char **seg, int nseg, struct api_resp *rs)
{
	const char *m = rq->ar_method;
	if (nseg == 2) {
		if (!strcmp(m, "POST")) {
			vpc_create(rq, rs);
		} else if (!strcmp(m, "GET")) {
			json_t *a = json_array();
			for (struct vpcrec *v = g_ctl.c_vpcs; v; v = v->vp_next)
				json_array_append_new(a, vpc_json(v));
			api_set_json(rs, 200, json_pack("{s:o}", "vpcs", a));
		} else {
			api_not_allowed(rs, "GET, POST");
		}
		return;
	}
	if (!api_method_in(m, "GET, DELETE")) {
		api_not_allowed(rs, "GET, DELETE");
		return;
	}
	uint32_t id = spec_vpc_id(seg[2]);
	struct vpcrec *v = id ? vpc_find(id) : NULL;
	if (!v) {
		api_fail(rs, 404, "VPC %s not found", id ? seg[2] : "(malformed id)");
		return;
	}
	if (!strcmp(m, "GET")) {
		snprintf(rs->rs_detail, sizeof(rs->rs_detail), "vpc %u", v->vp_id);
		api_set_json(rs, 200, vpc_json(v));
		return;
	}
	vpc_delete(rq, v, rs);
}
