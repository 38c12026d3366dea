/* The CRB register state machine (src/hv/crb.c): every transition a driver makes, and
 * the abuse a guest can try (start while busy, without the locality, other localities,
 * odd sizes and offsets, writes to read-only registers). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hv/crb.h"
#include "lib/le.h"

static uint32_t rd(struct crb *c, uint64_t off)
{
	uint8_t d[4];
	assert_int_equal(crb_access(c, off, d, 4, false), CRB_ACT_NONE);
	return le32_get(d);
}

static enum crb_action wr(struct crb *c, uint64_t off, uint32_t v)
{
	uint8_t d[4];
	le32_put(d, v);
	return crb_access(c, off, d, 4, true);
}

static void init(struct crb *c)
{
	crb_init(c, TPM_CRB_BUF, TPM_CRB_BUF_SIZE);
}

static void test_reset_values(void **state)
{
	(void)state;
	struct crb c;
	init(&c);
	assert_int_equal(rd(&c, CRB_LOC_STATE), CRB_LOC_STATE_VALID | CRB_LOC_STATE_ESTABLISHED);
	assert_int_equal(rd(&c, CRB_CTRL_STS), CRB_CTRL_STS_IDLE);
	assert_int_equal(rd(&c, CRB_CTRL_START), 0);
	assert_int_equal(rd(&c, CRB_INTF_ID), CRB_INTF_ID_LO);
	assert_int_equal(rd(&c, CRB_INTF_ID) & 0xf, 1); /* CRB active */
	assert_int_equal(rd(&c, CRB_CTRL_CMD_SIZE), TPM_CRB_BUF_SIZE);
	assert_int_equal(rd(&c, CRB_CTRL_CMD_LADDR), TPM_CRB_BUF);
	assert_int_equal(rd(&c, CRB_CTRL_CMD_HADDR), 0);
	assert_int_equal(rd(&c, CRB_CTRL_RSP_SIZE), TPM_CRB_BUF_SIZE);
	uint8_t d[8];
	crb_access(&c, CRB_CTRL_RSP_ADDR, d, 8, false);
	assert_int_equal(le64_get(d), TPM_CRB_BUF);
}

/* What Linux's tpm_crb does per command: locality, cmdReady, start, poll, goIdle,
 * relinquish. */
static void test_driver_sequence(void **state)
{
	(void)state;
	struct crb c;
	init(&c);
	assert_int_equal(wr(&c, CRB_LOC_CTRL, CRB_LOC_CTRL_REQUEST), CRB_ACT_NONE);
	assert_int_equal(rd(&c, CRB_LOC_STATE) & (CRB_LOC_STATE_ASSIGNED | CRB_LOC_STATE_VALID),
			 CRB_LOC_STATE_ASSIGNED | CRB_LOC_STATE_VALID);
	assert_int_equal(rd(&c, CRB_LOC_STS), CRB_LOC_STS_GRANTED);
	wr(&c, CRB_CTRL_REQ, CRB_CTRL_REQ_CMD_READY);
	assert_int_equal(rd(&c, CRB_CTRL_REQ), 0); /* request bits clear at once */
	assert_int_equal(rd(&c, CRB_CTRL_STS) & CRB_CTRL_STS_IDLE, 0);
	assert_int_equal(wr(&c, CRB_CTRL_START, CRB_START_INVOKE), CRB_ACT_START);
	assert_true(crb_busy(&c));
	assert_int_equal(rd(&c, CRB_CTRL_START), 1);
	crb_complete(&c);
	assert_int_equal(rd(&c, CRB_CTRL_START), 0);
	assert_int_equal(rd(&c, CRB_CTRL_STS) & CRB_CTRL_STS_ERROR, 0);
	wr(&c, CRB_CTRL_REQ, CRB_CTRL_REQ_GO_IDLE);
	assert_int_equal(rd(&c, CRB_CTRL_STS) & CRB_CTRL_STS_IDLE, CRB_CTRL_STS_IDLE);
	wr(&c, CRB_LOC_CTRL, CRB_LOC_CTRL_RELINQUISH);
	assert_int_equal(rd(&c, CRB_LOC_STATE) & CRB_LOC_STATE_ASSIGNED, 0);
	assert_int_equal(rd(&c, CRB_LOC_STS), 0);
}

static void test_start_while_busy(void **state)
{
	(void)state;
	struct crb c;
	init(&c);
	wr(&c, CRB_LOC_CTRL, CRB_LOC_CTRL_REQUEST);
	assert_int_equal(wr(&c, CRB_CTRL_START, 1), CRB_ACT_START);
	assert_int_equal(wr(&c, CRB_CTRL_START, 1), CRB_ACT_NONE); /* no second command */
	wr(&c, CRB_CTRL_REQ, CRB_CTRL_REQ_GO_IDLE);		   /* ignored while busy */
	assert_int_equal(rd(&c, CRB_CTRL_STS) & CRB_CTRL_STS_IDLE, 0);
	assert_int_equal(wr(&c, CRB_CTRL_START, 0), CRB_ACT_NONE); /* cannot clear START */
	assert_true(crb_busy(&c));
	assert_int_equal(wr(&c, CRB_CTRL_CANCEL, CRB_CANCEL_INVOKE), CRB_ACT_CANCEL);
	assert_int_equal(rd(&c, CRB_CTRL_CANCEL), 1);
	crb_complete(&c);
	assert_int_equal(rd(&c, CRB_CTRL_CANCEL), 0);
	assert_int_equal(wr(&c, CRB_CTRL_CANCEL, CRB_CANCEL_INVOKE), CRB_ACT_NONE);
	assert_int_equal(wr(&c, CRB_CTRL_START, 1), CRB_ACT_START);
}

static void test_wrong_locality(void **state)
{
	(void)state;
	struct crb c;
	init(&c);
	/* No locality: start, cmdReady and cancel are ignored. */
	assert_int_equal(wr(&c, CRB_CTRL_START, 1), CRB_ACT_NONE);
	wr(&c, CRB_CTRL_REQ, CRB_CTRL_REQ_CMD_READY);
	assert_int_equal(rd(&c, CRB_CTRL_STS) & CRB_CTRL_STS_IDLE, CRB_CTRL_STS_IDLE);
	/* Localities 1..4 are not implemented: all ones, writes do nothing. */
	for (unsigned loc = 1; loc <= 4; loc++) {
		uint64_t base = (uint64_t)loc << 12;
		assert_int_equal(rd(&c, base + CRB_LOC_STATE), 0xffffffffu);
		assert_int_equal(wr(&c, base + CRB_LOC_CTRL, CRB_LOC_CTRL_REQUEST), CRB_ACT_NONE);
		assert_int_equal(wr(&c, base + CRB_CTRL_START, 1), CRB_ACT_NONE);
	}
	assert_int_equal(rd(&c, CRB_LOC_STATE) & CRB_LOC_STATE_ASSIGNED, 0);
	/* Past the range, and an access crossing the page end. */
	assert_int_equal(rd(&c, TPM_CRB_SIZE), 0xffffffffu);
	uint8_t d[8];
	memset(d, 0, sizeof(d));
	crb_access(&c, 0xffc, d, 8, false);
	assert_int_equal(le64_get(d), UINT64_MAX);
}

static void test_bad_sizes_and_readonly(void **state)
{
	(void)state;
	struct crb c;
	init(&c);
	wr(&c, CRB_LOC_CTRL, CRB_LOC_CTRL_REQUEST);
	uint8_t d[8] = {1, 0, 0, 0, 0, 0, 0, 0};
	/* Byte, word, quad and unaligned writes of START do nothing. */
	assert_int_equal(crb_access(&c, CRB_CTRL_START, d, 1, true), CRB_ACT_NONE);
	assert_int_equal(crb_access(&c, CRB_CTRL_START, d, 2, true), CRB_ACT_NONE);
	assert_int_equal(crb_access(&c, CRB_CTRL_START, d, 8, true), CRB_ACT_NONE);
	assert_int_equal(crb_access(&c, CRB_CTRL_START + 1, d, 4, true), CRB_ACT_NONE);
	assert_int_equal(crb_access(&c, CRB_CTRL_START, d, 3, true), CRB_ACT_NONE);
	assert_false(crb_busy(&c));
	/* Start with another value than 1. */
	assert_int_equal(wr(&c, CRB_CTRL_START, 3), CRB_ACT_NONE);
	/* The buffer's address and size cannot be moved by the guest (oversized size
	 * fields): they read back unchanged. */
	wr(&c, CRB_CTRL_CMD_SIZE, 0xffffffffu);
	wr(&c, CRB_CTRL_CMD_LADDR, 0x1000);
	wr(&c, CRB_CTRL_RSP_SIZE, 0x100000);
	wr(&c, CRB_CTRL_RSP_ADDR, 0);
	wr(&c, CRB_INTF_ID, 0);
	assert_int_equal(rd(&c, CRB_CTRL_CMD_SIZE), TPM_CRB_BUF_SIZE);
	assert_int_equal(rd(&c, CRB_CTRL_CMD_LADDR), TPM_CRB_BUF);
	assert_int_equal(rd(&c, CRB_CTRL_RSP_SIZE), TPM_CRB_BUF_SIZE);
	assert_int_equal(rd(&c, CRB_CTRL_RSP_ADDR), TPM_CRB_BUF);
	assert_int_equal(rd(&c, CRB_INTF_ID), CRB_INTF_ID_LO);
	/* Byte reads of a register. */
	crb_access(&c, CRB_CTRL_CMD_LADDR + 2, d, 1, false);
	assert_int_equal(d[0], (TPM_CRB_BUF >> 16) & 0xff);
	/* Interrupt status is write-one-to-clear, enable keeps its defined bits. */
	wr(&c, CRB_INT_ENABLE, 0xffffffffu);
	assert_int_equal(rd(&c, CRB_INT_ENABLE), 0x8000000fu);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_reset_values),	   cmocka_unit_test(test_driver_sequence),
	    cmocka_unit_test(test_start_while_busy),	   cmocka_unit_test(test_wrong_locality),
	    cmocka_unit_test(test_bad_sizes_and_readonly),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
