/* nitro-enclave's command line and the sizing rules of `run` (args.h). */
#include "enclave/tool/args.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *net_usage(void)
{
	return "usage: nitro-enclave COMMAND [OPTIONS]\n"
	       "  run --eif-path FILE --cpu-count N --memory MIB [--debug-mode]\n"
	       "      [--enclave-cid CID] [--enclave-name NAME]\n"
	       "                    start an enclave; prints its description as JSON\n"
	       "  describe          the running enclaves as JSON\n"
	       "  console --enclave-id ID|NAME\n"
	       "                    a debug-mode enclave's console (vsock CID 0, port CID+10000)\n"
	       "  terminate --enclave-id ID|NAME | --all\n"
	       "                    stop enclaves; their CPUs and memory go back to the instance\n";
}

__attribute__((format(printf, 3, 4))) static int bad(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
	return -1;
}

/* A decimal number in [lo, hi]; 0 or -1. */
static int number(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	if (!s || !*s || *s == '-' || *s == '+')
		return -1;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

static int parse_run(int argc, char **argv, struct net_args *a, char *err, size_t len)
{
	bool have_cpus = false, have_mem = false;
	const char *name = NULL;
	for (int i = 0; i < argc; i++) {
		const char *o = argv[i];
		if (!strcmp(o, "--debug-mode")) {
			a->debug_mode = true;
			continue;
		}
		if (strcmp(o, "--eif-path") && strcmp(o, "--cpu-count") && strcmp(o, "--memory") &&
		    strcmp(o, "--enclave-cid") && strcmp(o, "--enclave-name"))
			return bad(err, len, "run: unknown option %s (see nitro-enclave --help)",
				   o);
		if (i + 1 >= argc)
			return bad(err, len, "run: %s needs a value", o);
		const char *v = argv[++i];
		uint64_t n;
		if (!strcmp(o, "--eif-path")) {
			if (!*v)
				return bad(err, len, "run: --eif-path is empty");
			a->eif_path = v;
		} else if (!strcmp(o, "--cpu-count")) {
			if (number(v, 1, NET_MAX_CPUS, &n))
				return bad(
				    err, len,
				    "run: --cpu-count %s: give a whole number of vCPUs from 1 "
				    "to 256",
				    v);
			a->cpu_count = (unsigned)n;
			have_cpus = true;
		} else if (!strcmp(o, "--memory")) {
			if (number(v, 1, NET_MAX_MEMORY_MIB, &n))
				return bad(err, len,
					   "run: --memory %s: give the enclave's memory in MiB, a "
					   "whole number",
					   v);
			if (n < NET_MIN_MEMORY_MIB)
				return bad(
				    err, len,
				    "run: --memory %s: an enclave needs at least 64 MiB; use "
				    "--memory 64 or more",
				    v);
			a->memory_mib = (unsigned)((n + 1) & ~1ull);
			have_mem = true;
		} else if (!strcmp(o, "--enclave-cid")) {
			if (number(v, 4, UINT32_MAX - 1ull, &n))
				return bad(
				    err, len,
				    "run: --enclave-cid %s: CIDs 0-3 and 4294967295 are "
				    "reserved (3 is the parent); give 4 to 4294967294 or omit "
				    "it to have one assigned",
				    v);
			a->enclave_cid = n;
		} else {
			if (!*v || strlen(v) >= NET_NAME_MAX || strpbrk(v, "\"\\/\n\t"))
				return bad(err, len,
					   "run: --enclave-name %s: 1 to 63 characters without "
					   "quotes, backslashes, slashes or control characters",
					   v);
			name = v;
		}
	}
	if (!a->eif_path)
		return bad(err, len, "run: --eif-path FILE is required");
	if (!have_cpus)
		return bad(err, len, "run: --cpu-count N is required");
	if (!have_mem)
		return bad(err, len, "run: --memory MIB is required");
	if (name)
		snprintf(a->name, sizeof(a->name), "%s", name);
	else
		net_default_name(a->eif_path, a->name, sizeof(a->name));
	return 0;
}

static int parse_target(const char *cmd, int argc, char **argv, struct net_args *a, bool allow_all,
			char *err, size_t len)
{
	for (int i = 0; i < argc; i++) {
		if (allow_all && !strcmp(argv[i], "--all")) {
			a->all = true;
		} else if (!strcmp(argv[i], "--enclave-id") || !strcmp(argv[i], "--enclave-name")) {
			if (i + 1 >= argc || !argv[i + 1][0])
				return bad(err, len, "%s: %s needs a value", cmd, argv[i]);
			a->enclave_id = argv[++i];
		} else
			return bad(err, len, "%s: unknown option %s (see nitro-enclave --help)",
				   cmd, argv[i]);
	}
	if (a->all && a->enclave_id)
		return bad(err, len, "%s: give --enclave-id or --all, not both", cmd);
	if (!a->all && !a->enclave_id)
		return bad(err, len,
			   "%s: --enclave-id ID%s is required; `nitro-enclave describe` lists them",
			   cmd, allow_all ? " (or --all)" : "");
	return 0;
}

int net_parse(int argc, char **argv, struct net_args *a, char *err, size_t len)
{
	memset(a, 0, sizeof(*a));
	if (argc < 2)
		return bad(err, len, "no command given (run, describe, console, terminate)");
	const char *c = argv[1];
	int n = argc - 2;
	char **v = argv + 2;
	if (!strcmp(c, "--help") || !strcmp(c, "-h") || !strcmp(c, "help")) {
		a->cmd = NET_HELP;
		return 0;
	}
	if (!strcmp(c, "run") || !strcmp(c, "run-enclave")) {
		a->cmd = NET_RUN;
		return parse_run(n, v, a, err, len);
	}
	if (!strcmp(c, "describe") || !strcmp(c, "describe-enclaves")) {
		a->cmd = NET_DESCRIBE;
		if (n > 0)
			return bad(err, len, "describe: takes no options (got %s)", v[0]);
		return 0;
	}
	if (!strcmp(c, "console")) {
		a->cmd = NET_CONSOLE;
		return parse_target("console", n, v, a, false, err, len);
	}
	if (!strcmp(c, "terminate") || !strcmp(c, "terminate-enclave")) {
		a->cmd = NET_TERMINATE;
		return parse_target("terminate", n, v, a, true, err, len);
	}
	return bad(err, len, "unknown command %s (run, describe, console, terminate)", c);
}

int net_check_fit(unsigned memory_mib, uint64_t eif_size, uint64_t image_offset, char *err,
		  size_t errlen)
{
	uint64_t mem = (uint64_t)memory_mib << 20;
	if (image_offset + eif_size <= mem)
		return 0;
	uint64_t need = (image_offset + eif_size + (2u << 20) - 1) >> 20;
	need = (need + 1) & ~1ull;
	snprintf(err, errlen,
		 "run: --memory %u: the image (%" PRIu64 " bytes) is written at %" PRIu64
		 " MiB into enclave memory and does not fit; use --memory %" PRIu64
		 " or more (the kernel also needs room to unpack its ramdisks)",
		 memory_mib, eif_size, image_offset >> 20, need);
	return -1;
}

uint64_t net_heartbeat_timeout_ms(uint64_t eif_size, uint64_t memory_bytes)
{
	const uint64_t gib = 1ull << 30, step = 90000;
	uint64_t e = eif_size ? 1 + (eif_size - 1) / (6 * gib) : 1;
	uint64_t m = memory_bytes ? 1 + (memory_bytes - 1) / (100 * gib) : 1;
	return (e + m) * step;
}

void net_default_name(const char *eif_path, char *out, size_t len)
{
	const char *b = strrchr(eif_path, '/');
	b = b ? b + 1 : eif_path;
	size_t n = strlen(b);
	if (n > 4 && !strcmp(b + n - 4, ".eif"))
		n -= 4;
	if (n >= len)
		n = len - 1;
	size_t o = 0;
	for (size_t i = 0; i < n; i++) /* the name goes into JSON and a file name */
		out[o++] = (b[i] == '"' || b[i] == '\\' || (unsigned char)b[i] < 0x20) ? '_' : b[i];
	out[o] = 0;
	if (!o)
		snprintf(out, len, "enclave");
}
