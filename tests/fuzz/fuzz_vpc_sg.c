/* libFuzzer target for the security-group file parser (vpc_sg_parse): any text either
 * parses into bounded rule lists or fails with a "NAME:LINE: reason" message. */
// fuzz-extra: src/cards/vpc/sg.c src/cards/vpc/pkt.c
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cards/vpc/sg.h"
#include "cards/vpc/vpc.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256] = "";
	struct vpc_sg *g = vpc_sg_parse((const char *)data, size, "f.sg", err, sizeof(err));
	if (!g) {
		unsigned line;
		CHECK(sscanf(err, "f.sg:%u: ", &line) == 1 && line >= 1);
		return 0;
	}
	CHECK(vpc_sg_rules(g, true) <= SG_MAX_RULES && vpc_sg_rules(g, false) <= SG_MAX_RULES);
	for (unsigned i = 0; i < 64; i++)
		(void)sg_allows(g, i & 1, (uint8_t)(i * 37), (uint16_t)(i * 1021), i * 0x01010101u,
				i & 2);
	vpc_sg_free(g);
	return 0;
}
