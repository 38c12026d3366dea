/* libFuzzer target for nitro-enclave's parsers of outside text (src/enclave/tool): CPU lists
 * (sysfs, the user's ne_cpus) with a format/parse round trip that must give the same set,
 * the early EIF check (the user's file), the command line (NUL-separated arguments), and
 * the heartbeat broker's table under any sequence of joins, CIDs (the enclaves' and the
 * runs') and departures (each a key, a result checked against a model). The first byte
 * picks one. */
// fuzz-extra: src/enclave/tool/cpus.c src/enclave/tool/eifcheck.c src/enclave/tool/args.c
// fuzz-extra: src/enclave/tool/hbtab.c
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "enclave/tool/args.h"
#include "enclave/tool/cpus.h"
#include "enclave/tool/eifcheck.h"
#include "enclave/tool/hbtab.h"

/* Ops of 3 bytes: kind, key (0-79), CID (0-7, few so that they meet). A heartbeat handed
 * to a key must be that waiter's named CID; the table stays within its bounds. */
static void hb_ops(const uint8_t *d, size_t n)
{
	static struct net_hb_table t;
	static int64_t named[80]; /* -2 not waiting, -1 waiting without a CID, else the CID */
	net_hb_init(&t);
	for (int k = 0; k < 80; k++)
		named[k] = -2;
	for (size_t i = 0; i + 3 <= n; i += 3) {
		int key = d[i + 1] % 80;
		uint64_t cid = d[i + 2] % 8;
		switch (d[i] % 4) {
		case 0:
			if (net_hb_add(&t, key) == 0) {
				if (named[key] != -2)
					abort();
				named[key] = -1;
			}
			break;
		case 1:
			if (net_hb_set_cid(&t, key, cid)) {
				if (named[key] != -1)
					abort();
				named[key] = -2;
			} else if (named[key] == -1) {
				named[key] = (int64_t)cid;
			}
			break;
		case 2: {
			int got = net_hb_heartbeat(&t, cid);
			if (got >= 0) {
				if (got >= 80 || named[got] != (int64_t)cid)
					abort();
				named[got] = -2;
			}
			break;
		}
		default:
			net_hb_remove(&t, key);
			named[key] = -2;
		}
		unsigned w = 0;
		for (int k = 0; k < 80; k++)
			w += named[k] != -2;
		if (t.nwait != w || t.nwait > NET_HB_MAX || t.nseen > NET_HB_MAX)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	if (n < 1)
		return 0;
	uint8_t which = d[0] % 4;
	d++, n--;
	if (which == 3) {
		hb_ops(d, n);
		return 0;
	}
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
