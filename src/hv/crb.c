/* CRB register state machine (contract in crb.h). */
#include "hv/crb.h"

#include <string.h>

#include "lib/le.h"

void crb_init(struct crb *c, uint64_t buf_gpa, uint32_t buf_size)
{
	memset(c, 0, sizeof(*c));
	c->loc_state = CRB_LOC_STATE_VALID | CRB_LOC_STATE_ESTABLISHED;
	c->ctrl_sts = CRB_CTRL_STS_IDLE;
	c->buf_gpa = buf_gpa;
	c->buf_size = buf_size;
}

bool crb_busy(const struct crb *c)
{
	return c->ctrl_start & CRB_START_INVOKE;
}

void crb_complete(struct crb *c)
{
	c->ctrl_start = 0;
	c->ctrl_cancel = 0;
}

/* Locality 0's registers as the guest reads them. */
static void regs(const struct crb *c, uint8_t r[CRB_REGS_END])
{
	memset(r, 0, CRB_REGS_END);
	le32_put(r + CRB_LOC_STATE, c->loc_state);
	le32_put(r + CRB_LOC_STS, c->loc_sts);
	le32_put(r + CRB_INTF_ID, CRB_INTF_ID_LO);
	le32_put(r + CRB_INTF_ID + 4, CRB_INTF_ID_HI);
	le32_put(r + CRB_CTRL_STS, c->ctrl_sts);
	le32_put(r + CRB_CTRL_CANCEL, c->ctrl_cancel);
	le32_put(r + CRB_CTRL_START, c->ctrl_start);
	le32_put(r + CRB_INT_ENABLE, c->int_enable);
	le32_put(r + CRB_INT_STS, c->int_sts);
	le32_put(r + CRB_CTRL_CMD_SIZE, c->buf_size);
	le32_put(r + CRB_CTRL_CMD_LADDR, (uint32_t)c->buf_gpa);
	le32_put(r + CRB_CTRL_CMD_HADDR, (uint32_t)(c->buf_gpa >> 32));
	le32_put(r + CRB_CTRL_RSP_SIZE, c->buf_size);
	le64_put(r + CRB_CTRL_RSP_ADDR, c->buf_gpa);
}

static bool assigned(const struct crb *c)
{
	return c->loc_state & CRB_LOC_STATE_ASSIGNED;
}

enum crb_action crb_access(struct crb *c, uint64_t off, uint8_t *data, unsigned size, bool write)
{
	if (size != 1 && size != 2 && size != 4 && size != 8)
		return CRB_ACT_NONE;
	if (off >= TPM_CRB_SIZE || size > TPM_CRB_SIZE - off || (off & 0xfff) + size > 0x1000 ||
	    off >= 0x1000) {
		/* Another locality (or past the end): not implemented. */
		if (!write)
			memset(data, 0xff, size);
		return CRB_ACT_NONE;
	}
	if (!write) {
		uint8_t r[CRB_REGS_END];
		regs(c, r);
		for (unsigned i = 0; i < size; i++)
			data[i] = off + i < CRB_REGS_END ? r[off + i] : 0;
		return CRB_ACT_NONE;
	}
	/* Writes: whole 32-bit registers only (what drivers do). */
	if (size != 4 || (off & 3))
		return CRB_ACT_NONE;
	uint32_t v = le32_get(data);
	switch (off) {
	case CRB_LOC_CTRL:
		if (v == CRB_LOC_CTRL_REQUEST) {
			c->loc_state |= CRB_LOC_STATE_ASSIGNED;
			c->loc_sts = CRB_LOC_STS_GRANTED;
		} else if (v == CRB_LOC_CTRL_RELINQUISH) {
			c->loc_state &= ~CRB_LOC_STATE_ASSIGNED;
			c->loc_sts = 0;
		}
		break;
	case CRB_CTRL_REQ:
		if (!assigned(c))
			break;
		if (v == CRB_CTRL_REQ_CMD_READY)
			c->ctrl_sts &= ~CRB_CTRL_STS_IDLE;
		else if (v == CRB_CTRL_REQ_GO_IDLE && !crb_busy(c))
			c->ctrl_sts |= CRB_CTRL_STS_IDLE;
		break;
	case CRB_CTRL_CANCEL:
		if (!assigned(c))
			break;
		if (v == CRB_CANCEL_INVOKE && crb_busy(c)) {
			c->ctrl_cancel = CRB_CANCEL_INVOKE;
			return CRB_ACT_CANCEL;
		}
		if (v == 0)
			c->ctrl_cancel = 0;
		break;
	case CRB_CTRL_START:
		if (v != CRB_START_INVOKE || crb_busy(c) || !assigned(c))
			break;
		c->ctrl_start = CRB_START_INVOKE;
		c->ctrl_sts &= ~CRB_CTRL_STS_IDLE;
		return CRB_ACT_START;
	case CRB_INT_ENABLE:
		c->int_enable = v & 0x8000000fu;
		break;
	case CRB_INT_STS:
		c->int_sts &= ~v;
		break;
	default: /* read-only registers */
		break;
	}
	return CRB_ACT_NONE;
}
