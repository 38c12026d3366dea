/* The TPM's Command Response Buffer interface (TCG PC Client Platform TPM Profile,
 * section 6.5 "CRB"), locality 0 only: the register state machine, without I/O.
 *
 * nitro-hv maps TPM_CRB_SIZE bytes of registers at TPM_CRB_BASE (localities 0..4, one
 * page each: only locality 0 answers; the others read as all ones and ignore writes) and
 * the command/response buffer, a page of memory shared with the TPM card, at
 * TPM_CRB_BUF. crb_access() applies one guest access and says what the caller must do:
 * CRB_ACT_START (a command is in the buffer: send it) or CRB_ACT_CANCEL. The caller later
 * calls crb_complete(). Hostile input: any offset, size and value; a start while a
 * command runs, without the locality, or with any value but 1 is ignored.
 * Not thread-safe: the caller serialises every call on one struct crb.
 */
#ifndef NITRO_HV_CRB_H
#define NITRO_HV_CRB_H

#include <stdbool.h>
#include <stdint.h>

#define TPM_CRB_BASE 0xfed40000u
#define TPM_CRB_SIZE 0x5000u /* localities 0..4 */
#define TPM_CRB_BUF 0xfed45000u
#define TPM_CRB_BUF_SIZE 0x1000u
#define TPM_CRB_CTRL (TPM_CRB_BASE + 0x40) /* the TPM2 table's control area */

/* Register offsets in a locality's page. */
#define CRB_LOC_STATE 0x00
#define CRB_LOC_CTRL 0x08
#define CRB_LOC_STS 0x0c
#define CRB_INTF_ID 0x30
#define CRB_CTRL_EXT 0x38
#define CRB_CTRL_REQ 0x40
#define CRB_CTRL_STS 0x44
#define CRB_CTRL_CANCEL 0x48
#define CRB_CTRL_START 0x4c
#define CRB_INT_ENABLE 0x50
#define CRB_INT_STS 0x54
#define CRB_CTRL_CMD_SIZE 0x58
#define CRB_CTRL_CMD_LADDR 0x5c
#define CRB_CTRL_CMD_HADDR 0x60
#define CRB_CTRL_RSP_SIZE 0x64
#define CRB_CTRL_RSP_ADDR 0x68
#define CRB_REGS_END 0x80

#define CRB_LOC_STATE_ESTABLISHED (1u << 0)
#define CRB_LOC_STATE_ASSIGNED (1u << 1)
#define CRB_LOC_STATE_VALID (1u << 7)
#define CRB_LOC_CTRL_REQUEST (1u << 0)
#define CRB_LOC_CTRL_RELINQUISH (1u << 1)
#define CRB_LOC_STS_GRANTED (1u << 0)
#define CRB_CTRL_REQ_CMD_READY (1u << 0)
#define CRB_CTRL_REQ_GO_IDLE (1u << 1)
#define CRB_CTRL_STS_ERROR (1u << 0)
#define CRB_CTRL_STS_IDLE (1u << 1)
#define CRB_START_INVOKE 1u
#define CRB_CANCEL_INVOKE 1u

/* INTF_ID: CRB interface, version 1, 64-byte transfers, CRB only, selector CRB; vendor
 * 0x1d0f (Amazon). */
#define CRB_INTF_ID_LO 0x00025811u
#define CRB_INTF_ID_HI 0x00001d0fu

enum crb_action { CRB_ACT_NONE, CRB_ACT_START, CRB_ACT_CANCEL };

struct crb {
	uint32_t loc_state, loc_sts, ctrl_sts, ctrl_start, ctrl_cancel, int_enable, int_sts;
	uint64_t buf_gpa;
	uint32_t buf_size;
};

void crb_init(struct crb *c, uint64_t buf_gpa, uint32_t buf_size);
/* One access at offset off (from TPM_CRB_BASE) of size 1, 2, 4 or 8 bytes. */
enum crb_action crb_access(struct crb *c, uint64_t off, uint8_t *data, unsigned size, bool write);
/* The command sent on CRB_ACT_START has its response in the buffer: START clears. */
void crb_complete(struct crb *c);
/* True while a command runs (START set). */
bool crb_busy(const struct crb *c);

#endif
