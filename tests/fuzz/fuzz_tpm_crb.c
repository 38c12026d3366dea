/* libFuzzer target: the CRB register state machine (src/hv/crb.c) driven by a program of
 * 8-byte steps: offset (16 bits, within the five localities and a little past), size
 * selector, write flag, completion flag, value (32 bits). Invariants after every step: the
 * buffer's address and size never change, START is only ever 0 or 1, an action is only
 * returned for an accepted write (START from idle START with the locality held; CANCEL
 * while busy), and a completion always clears START and CANCEL.
 */
// fuzz-extra: src/hv/crb.c
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "hv/crb.h"
#include "lib/le.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	struct crb c;
	crb_init(&c, TPM_CRB_BUF, TPM_CRB_BUF_SIZE);
	static const unsigned sizes[] = {1, 2, 4, 8, 3, 4, 4, 16};
	for (size_t i = 0; i + 8 <= n; i += 8) {
		uint64_t off = le16_get(d + i) % (TPM_CRB_SIZE + 0x100);
		unsigned size = sizes[d[i + 2] & 7];
		bool write = d[i + 3] & 1, complete = d[i + 3] & 2;
		uint8_t data[16];
		memset(data, 0, sizeof(data));
		memcpy(data, d + i + 4, 4);
		bool was_busy = crb_busy(&c), had_loc = c.loc_state & CRB_LOC_STATE_ASSIGNED;
		enum crb_action a = crb_access(&c, off, data, size, write);
		if (a == CRB_ACT_START)
			CHECK(write && !was_busy && had_loc && off == CRB_CTRL_START &&
			      crb_busy(&c));
		if (a == CRB_ACT_CANCEL)
			CHECK(write && was_busy && off == CRB_CTRL_CANCEL);
		if (a == CRB_ACT_NONE && !complete)
			CHECK(crb_busy(&c) == was_busy);
		CHECK(c.ctrl_start <= 1);
		CHECK(c.buf_gpa == TPM_CRB_BUF && c.buf_size == TPM_CRB_BUF_SIZE);
		if (complete) {
			crb_complete(&c);
			CHECK(!crb_busy(&c) && c.ctrl_cancel == 0);
		}
	}
	return 0;
}
