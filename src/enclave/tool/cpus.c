/* CPU lists and the choice of whole cores for the enclave pool (cpus.h). */
#include "enclave/tool/cpus.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int num(const char **p)
{
	if (!isdigit((unsigned char)**p))
		return -1;
	long v = 0;
	while (isdigit((unsigned char)**p)) {
		v = v * 10 + (**p - '0');
		if (v >= NET_CPU_MAX)
			return -1;
		(*p)++;
	}
	return (int)v;
}

int net_cpulist_parse(const char *s, bool set[NET_CPU_MAX])
{
	memset(set, 0, NET_CPU_MAX * sizeof(bool));
	const char *p = s;
	int n = 0;
	while (*p == ' ')
		p++;
	if (!*p || *p == '\n')
		return 0;
	for (;;) {
		int a = num(&p), b = a;
		if (a < 0)
			return -1;
		if (*p == '-') {
			p++;
			b = num(&p);
			if (b < a)
				return -1;
		}
		for (int c = a; c <= b; c++)
			if (!set[c]) {
				set[c] = true;
				n++;
			}
		if (*p == ',') {
			p++;
			continue;
		}
		if (*p == '\n')
			p++;
		return *p ? -1 : n;
	}
}

int net_cpulist_format(const bool set[NET_CPU_MAX], char *out, size_t len)
{
	size_t o = 0;
	if (len)
		out[0] = 0;
	for (int c = 0; c < NET_CPU_MAX; c++) {
		if (!set[c])
			continue;
		int e = c;
		while (e + 1 < NET_CPU_MAX && set[e + 1])
			e++;
		int w = e == c ? snprintf(out + o, len - o, "%s%d", o ? "," : "", c)
			       : snprintf(out + o, len - o, "%s%d-%d", o ? "," : "", c, e);
		if (w < 0 || (size_t)w >= len - o)
			return -1;
		o += (size_t)w;
		c = e;
	}
	return (int)o;
}

int net_pool_choose(const int *core_of, int ncpus, unsigned want, bool pool[NET_CPU_MAX],
		    unsigned *eligible)
{
	memset(pool, 0, NET_CPU_MAX * sizeof(bool));
	if (ncpus > NET_CPU_MAX)
		ncpus = NET_CPU_MAX;
	int core0 = ncpus > 0 ? core_of[0] : -1;
	unsigned total = 0, chosen = 0;
	for (int c = 0; c < ncpus; c++) /* what whole non-CPU-0 cores there are */
		if (core_of[c] >= 0 && core_of[c] != core0)
			total++;
	*eligible = total;
	if (want == 0 || total < want)
		return -1;
	/* Cores in order of their lowest CPU; a core is taken whole. */
	for (int c = 0; c < ncpus && chosen < want; c++) {
		if (core_of[c] < 0 || core_of[c] == core0 || pool[c])
			continue;
		for (int d = c; d < ncpus; d++)
			if (core_of[d] == core_of[c]) {
				pool[d] = true;
				chosen++;
			}
	}
	return (int)chosen;
}
