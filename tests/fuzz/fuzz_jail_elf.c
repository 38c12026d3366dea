/* libFuzzer target: the jailer's ELF dependency parser (src/controller/jail_elf.c) on
 * hostile bytes. Accepted input must give NUL-terminated names: an absolute interpreter
 * (or none) and library names without '/'; rejected input an error message.
 */
// fuzz-extra: src/controller/jail_elf.c
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "controller/jail_elf.h"

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	static struct jail_elf_info info;
	char err[256] = "";
	if (jail_elf_parse(d, n, &info, err, sizeof(err)) < 0) {
		CHECK(err[0] && memchr(err, 0, sizeof(err)));
		return 0;
	}
	CHECK(memchr(info.ei_interp, 0, sizeof(info.ei_interp)));
	CHECK(info.ei_interp[0] == 0 || info.ei_interp[0] == '/');
	CHECK(info.ei_nneeded <= JAIL_ELF_MAX_NEEDED);
	for (unsigned i = 0; i < info.ei_nneeded; i++) {
		CHECK(memchr(info.ei_needed[i], 0, JAIL_ELF_NAME_MAX));
		CHECK(info.ei_needed[i][0] && !strchr(info.ei_needed[i], '/'));
	}
	return 0;
}
