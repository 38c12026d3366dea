/* The Nitro Enclaves device's slot table and its 11 commands. */
#include "hv/ne_cmd.h"

#include <errno.h>
#include <string.h>

#include <linux/nitro_enclaves.h>

#include "lib/le.h"

void ne_reply_encode(const struct ne_reply *r, uint8_t out[NE_REPLY_SIZE])
{
	memset(out, 0, NE_REPLY_SIZE);
	le32_put(out, (uint32_t)r->rc);
	le64_put(out + 8, r->slot_uid);
	le64_put(out + 16, r->enclave_cid);
	le64_put(out + 24, r->slot_count);
	le64_put(out + 32, r->mem_regions);
	le64_put(out + 40, r->mem_size);
	le64_put(out + 48, r->nr_vcpus);
	le64_put(out + 56, r->flags);
	le16_put(out + 64, r->state);
}

void ne_reply_decode(const uint8_t in[NE_REPLY_SIZE], struct ne_reply *r)
{
	r->rc = (int32_t)le32_get(in);
	r->slot_uid = le64_get(in + 8);
	r->enclave_cid = le64_get(in + 16);
	r->slot_count = le64_get(in + 24);
	r->mem_regions = le64_get(in + 32);
	r->mem_size = le64_get(in + 40);
	r->nr_vcpus = le64_get(in + 48);
	r->flags = le64_get(in + 56);
	r->state = le16_get(in + 64);
}

void ne_cmd_init(struct ne_cmd *c, unsigned ncpus, const struct ne_mem_range *ram, unsigned nram)
{
	memset(c, 0, sizeof(*c));
	c->nc_ncpus = ncpus;
	c->nc_nram = nram > 2 ? 2 : nram;
	for (unsigned i = 0; i < c->nc_nram; i++)
		c->nc_ram[i] = ram[i];
	c->nc_next_uid = 1;
}

void ne_cmd_set_ops(struct ne_cmd *c, const struct ne_ops *ops)
{
	if (ops)
		c->nc_ops = *ops;
	else
		memset(&c->nc_ops, 0, sizeof(c->nc_ops));
}

struct ne_slot *ne_cmd_slot(struct ne_cmd *c, uint64_t uid)
{
	for (unsigned i = 0; uid && i < NE_MAX_SLOTS; i++)
		if (c->nc_used[i] && c->nc_slot[i].uid == uid)
			return &c->nc_slot[i];
	return NULL;
}

static uint64_t mem_size(const struct ne_slot *s)
{
	uint64_t n = 0;
	for (unsigned i = 0; i < s->nranges; i++)
		n += s->range[i].size;
	return n;
}

static void slot_info(const struct ne_slot *s, struct ne_reply *r)
{
	r->slot_uid = s->uid;
	r->enclave_cid = s->cid;
	r->mem_regions = s->nranges;
	r->mem_size = mem_size(s);
	r->nr_vcpus = s->nvcpus;
	r->flags = s->flags;
	r->state = s->state;
}

static void end_slot(struct ne_cmd *c, struct ne_slot *s)
{
	if (s->state == NE_STATE_RUNNING) {
		if (c->nc_ops.stop)
			c->nc_ops.stop(c->nc_ops.ctx, s);
		s->state = NE_STATE_STOPPED;
	}
}

/* [gpa, gpa + size) wholly inside one RAM range (no wrap). */
static bool in_ram(const struct ne_cmd *c, uint64_t gpa, uint64_t size)
{
	for (unsigned i = 0; i < c->nc_nram; i++) {
		const struct ne_mem_range *m = &c->nc_ram[i];
		if (gpa >= m->gpa && gpa - m->gpa <= m->size && size <= m->size - (gpa - m->gpa))
			return true;
	}
	return false;
}

static bool overlaps_any(const struct ne_cmd *c, uint64_t gpa, uint64_t size)
{
	for (unsigned i = 0; i < NE_MAX_SLOTS; i++) {
		if (!c->nc_used[i])
			continue;
		const struct ne_slot *s = &c->nc_slot[i];
		for (unsigned k = 0; k < s->nranges; k++)
			if (gpa < s->range[k].gpa + s->range[k].size &&
			    s->range[k].gpa < gpa + size)
				return true;
	}
	return false;
}

static bool vcpu_taken(const struct ne_cmd *c, uint32_t id)
{
	for (unsigned i = 0; i < NE_MAX_SLOTS; i++) {
		if (!c->nc_used[i])
			continue;
		for (unsigned k = 0; k < c->nc_slot[i].nvcpus; k++)
			if (c->nc_slot[i].vcpu[k] == id)
				return true;
	}
	return false;
}

static bool cid_taken(const struct ne_cmd *c, const struct ne_slot *self, uint64_t cid)
{
	for (unsigned i = 0; i < NE_MAX_SLOTS; i++)
		if (c->nc_used[i] && &c->nc_slot[i] != self && c->nc_slot[i].cid == cid)
			return true;
	return false;
}

static int32_t add_mem(struct ne_cmd *c, struct ne_slot *s, uint64_t gpa, uint64_t size)
{
	if (s->state != NE_STATE_INIT)
		return -NE_ERR_NOT_IN_INIT_STATE;
	if (!size || size % NE_REGION_ALIGN)
		return -NE_ERR_INVALID_MEM_REGION_SIZE;
	if (gpa % NE_REGION_ALIGN)
		return -NE_ERR_UNALIGNED_MEM_REGION_ADDR;
	if (!in_ram(c, gpa, size))
		return -NE_ERR_INVALID_MEM_REGION_ADDR;
	if (overlaps_any(c, gpa, size))
		return -NE_ERR_MEM_REGION_ALREADY_USED;
	if (s->nranges >= NE_MAX_REGIONS)
		return -NE_ERR_MEM_MAX_REGIONS;
	s->range[s->nranges++] = (struct ne_mem_range){.gpa = gpa, .size = size};
	return 0;
}

static int32_t add_vcpu(struct ne_cmd *c, struct ne_slot *s, uint32_t id)
{
	if (s->state != NE_STATE_INIT)
		return -NE_ERR_NOT_IN_INIT_STATE;
	if (id == 0 || id >= c->nc_ncpus)
		return -NE_ERR_INVALID_VCPU;
	if (vcpu_taken(c, id))
		return -NE_ERR_VCPU_ALREADY_USED;
	if (s->nvcpus >= NE_MAX_VCPUS)
		return -NE_ERR_INVALID_VCPU;
	s->vcpu[s->nvcpus++] = id;
	return 0;
}

static int32_t add_bulk(struct ne_cmd *c, struct ne_slot *s, uint64_t n)
{
	if (s->state != NE_STATE_INIT)
		return -NE_ERR_NOT_IN_INIT_STATE;
	if (n == 0)
		return -EINVAL;
	uint64_t free = 0;
	for (uint32_t id = 1; id < c->nc_ncpus; id++)
		free += !vcpu_taken(c, id);
	if (n > free || s->nvcpus + n > NE_MAX_VCPUS)
		return -NE_ERR_NO_CPUS_AVAIL_IN_POOL;
	for (uint32_t id = 1; id < c->nc_ncpus && n; id++)
		if (!vcpu_taken(c, id)) {
			s->vcpu[s->nvcpus++] = id;
			n--;
		}
	return 0;
}

static int32_t start(struct ne_cmd *c, struct ne_slot *s, uint64_t cid, uint64_t flags)
{
	if (s->state != NE_STATE_INIT)
		return -NE_ERR_NOT_IN_INIT_STATE;
	if (flags & ~NE_START_DEBUG)
		return -NE_ERR_INVALID_FLAG_VALUE;
	if ((cid >= 1 && cid <= NE_PARENT_CID) || cid >= UINT32_MAX)
		return -NE_ERR_INVALID_ENCLAVE_CID;
	if (cid && cid_taken(c, s, cid))
		return -NE_ERR_INVALID_ENCLAVE_CID;
	if (!s->nranges)
		return -NE_ERR_NO_MEM_REGIONS_ADDED;
	if (mem_size(s) < NE_MIN_ENCLAVE_MEM)
		return -NE_ERR_ENCLAVE_MEM_MIN_SIZE;
	if (!s->nvcpus)
		return -NE_ERR_NO_VCPUS_ADDED;
	if (!c->nc_ops.start)
		return -EOPNOTSUPP;
	if (!cid) /* at most NE_MAX_SLOTS are taken: one of the next ones is free */
		for (cid = NE_CID_AUTO_FIRST; cid_taken(c, s, cid); cid++)
			;
	s->cid = cid;
	s->flags = flags;
	int rc = c->nc_ops.start(c->nc_ops.ctx, s);
	if (rc != 0) {
		s->cid = 0;
		s->flags = 0;
		return rc < 0 ? rc : -EINVAL;
	}
	s->state = NE_STATE_RUNNING;
	return 0;
}

static void slot_free(struct ne_cmd *c, struct ne_slot *s)
{
	end_slot(c, s);
	c->nc_used[s - c->nc_slot] = false;
	memset(s, 0, sizeof(*s));
}

void ne_cmd_handle(struct ne_cmd *c, uint32_t type, const uint8_t *req, uint8_t *reply)
{
	struct ne_reply r = {0};
	uint64_t a0 = le64_get(req), a1 = le64_get(req + 8), a2 = le64_get(req + 16);
	struct ne_slot *s = NULL;
	switch (type) {
	case NE_CMD_ENCLAVE_START:
	case NE_CMD_ENCLAVE_STOP:
	case NE_CMD_SLOT_FREE:
	case NE_CMD_SLOT_ADD_MEM:
	case NE_CMD_SLOT_ADD_VCPU:
	case NE_CMD_SLOT_INFO:
	case NE_CMD_SLOT_ADD_BULK_VCPUS:
		s = ne_cmd_slot(c, a0);
		if (!s) {
			r.rc = -EINVAL;
			goto out;
		}
		r.slot_uid = s->uid;
		break;
	default:
		break;
	}
	switch (type) {
	case NE_CMD_ENCLAVE_START:
		r.rc = start(c, s, a1, a2);
		r.enclave_cid = s->cid;
		break;
	case NE_CMD_ENCLAVE_GET_SLOT:
		r.rc = -EINVAL;
		for (unsigned i = 0; a0 && i < NE_MAX_SLOTS; i++)
			if (c->nc_used[i] && c->nc_slot[i].cid == a0) {
				slot_info(&c->nc_slot[i], &r);
				r.rc = 0;
			}
		break;
	case NE_CMD_ENCLAVE_STOP:
		if (s->state == NE_STATE_INIT)
			r.rc = -EINVAL;
		else
			end_slot(c, s);
		r.state = s->state;
		break;
	case NE_CMD_SLOT_ALLOC: {
		unsigned i = 0;
		while (i < NE_MAX_SLOTS && c->nc_used[i])
			i++;
		if (i == NE_MAX_SLOTS) {
			r.rc = -ENOSPC;
			break;
		}
		c->nc_used[i] = true;
		s = &c->nc_slot[i];
		memset(s, 0, sizeof(*s));
		s->uid = c->nc_next_uid++;
		s->state = NE_STATE_INIT;
		r.slot_uid = s->uid;
		r.mem_regions = NE_MAX_REGIONS;
		r.state = s->state;
		break;
	}
	case NE_CMD_SLOT_FREE:
		slot_free(c, s);
		break;
	case NE_CMD_SLOT_ADD_MEM:
		r.rc = add_mem(c, s, a1, a2);
		break;
	case NE_CMD_SLOT_ADD_VCPU:
		r.rc = add_vcpu(c, s, le32_get(req + 8));
		break;
	case NE_CMD_SLOT_COUNT:
		for (unsigned i = 0; i < NE_MAX_SLOTS; i++)
			r.slot_count += c->nc_used[i];
		break;
	case NE_CMD_NEXT_SLOT: {
		/* The allocated slot with the smallest uid above a0 (a0 0: the first). */
		struct ne_slot *best = NULL;
		for (unsigned i = 0; i < NE_MAX_SLOTS; i++)
			if (c->nc_used[i] && c->nc_slot[i].uid > a0 &&
			    (!best || c->nc_slot[i].uid < best->uid))
				best = &c->nc_slot[i];
		if (best)
			slot_info(best, &r);
		else
			r.rc = -ENOENT;
		break;
	}
	case NE_CMD_SLOT_INFO:
		slot_info(s, &r);
		break;
	case NE_CMD_SLOT_ADD_BULK_VCPUS:
		r.rc = add_bulk(c, s, a1);
		break;
	default:
		r.rc = -EINVAL;
		break;
	}
out:
	memset(reply, 0, NE_DATA_SIZE);
	ne_reply_encode(&r, reply);
}

void ne_cmd_reset(struct ne_cmd *c)
{
	for (unsigned i = 0; i < NE_MAX_SLOTS; i++)
		if (c->nc_used[i])
			slot_free(c, &c->nc_slot[i]);
}

bool ne_cmd_exited(struct ne_cmd *c, uint64_t uid)
{
	struct ne_slot *s = ne_cmd_slot(c, uid);
	if (!s || s->state != NE_STATE_RUNNING)
		return false;
	s->state = NE_STATE_STOPPED;
	return true;
}
