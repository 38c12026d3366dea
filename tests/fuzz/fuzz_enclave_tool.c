/* libFuzzer target for nitro-enclave's parsers of outside text (src/enclave/tool): CPU lists
 * (sysfs, the user's ne_cpus) with a format/parse round trip that must give the same set,
 * the early EIF check (the user's file), and the command line (NUL-separated arguments).
 * The first byte picks one. */
// fuzz-extra: src/enclave/tool/cpus.c src/enclave/tool/eifcheck.c src/enclave/tool/args.c
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "enclave/tool/args.h"
#include "enclave/tool/cpus.h"
#include "enclave/tool/eifcheck.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	if (n < 1)
		return 0;
	uint8_t which = d[0] % 3;
	d++, n--;
	char err[512];
	if (which == 1) {
		net_eif_check(d, n, err, sizeof(err));
		return 0;
	}
	char *s = malloc(n + 1);
	memcpy(s, d, n);
	s[n] = 0;
	if (which == 0) {
		static bool a[NET_CPU_MAX], b[NET_CPU_MAX];
		static char list[8192];
		int k = net_cpulist_parse(s, a);
		if (k >= 0 && net_cpulist_format(a, list, sizeof(list)) >= 0) {
			if (net_cpulist_parse(list, b) != k || memcmp(a, b, sizeof(a)))
				abort(); /* the round trip must keep the set */
		}
	} else {
		char *argv[34] = {"nitro-enclave"};
		int argc = 1;
		for (char *p = s; argc < 33 && p <= s + n; p += strlen(p) + 1)
			argv[argc++] = p;
		argv[argc] = NULL;
		struct net_args a;
		if (net_parse(argc, argv, &a, err, sizeof(err)) == 0 && a.cmd == NET_RUN &&
		    (a.memory_mib < NET_MIN_MEMORY_MIB || a.memory_mib % 2 || !a.cpu_count ||
		     (a.enclave_cid && a.enclave_cid < 4)))
			abort(); /* accepted values stay in range */
	}
	free(s);
	return 0;
}
