/* JSON of an enclave, nitro-cli's field names (json.h). */
#include "enclave/tool/json.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void net_enclave_id(const char *instance_id, uint64_t slot, char *out, size_t len)
{
	char inst[64];
	size_t o = 0;
	for (const char *p = instance_id ? instance_id : ""; *p && o + 1 < sizeof(inst); p++)
		if (isalnum((unsigned char)*p) || *p == '-')
			inst[o++] = *p;
	inst[o] = 0;
	snprintf(out, len, "%s-enc%" PRIx64, o ? inst : "i-0000000000000000", slot);
}

struct buf {
	char *p;
	size_t len, o;
	bool over;
};

__attribute__((format(printf, 2, 3))) static void put(struct buf *b, const char *fmt, ...)
{
	if (b->over)
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(b->p + b->o, b->len - b->o, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= b->len - b->o)
		b->over = true;
	else
		b->o += (size_t)n;
}

static void str(struct buf *b, const char *s)
{
	put(b, "\"");
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			put(b, "\\%c", c);
		else if (c < 0x20)
			put(b, "\\u%04x", c);
		else
			put(b, "%c", c);
	}
	put(b, "\"");
}

int net_enclave_json(const struct net_enclave *e, bool describe, int indent, char *out, size_t len)
{
	struct buf b = {out, len, 0, len == 0};
	int i = indent, j = indent + 2;
	put(&b, "%*s{\n%*s\"EnclaveName\": ", i, "", j, "");
	str(&b, e->name);
	put(&b, ",\n%*s\"EnclaveID\": ", j, "");
	str(&b, e->id);
	put(&b, ",\n%*s\"ProcessID\": %ld,\n", j, "", (long)e->pid);
	put(&b, "%*s\"EnclaveCID\": %" PRIu64 ",\n", j, "", e->cid);
	put(&b, "%*s\"NumberOfCPUs\": %u,\n%*s\"CPUIDs\": [", j, "", e->ncpus, j, "");
	for (unsigned c = 0; c < e->ncpus && c < NET_MAX_CPUS; c++)
		put(&b, "%s\n%*s%u", c ? "," : "", j + 2, "", e->cpu[c]);
	put(&b, "%s%*s],\n", e->ncpus ? "\n" : "", e->ncpus ? j : 0, "");
	put(&b, "%*s\"MemoryMiB\": %u", j, "", e->memory_mib);
	if (describe)
		put(&b, ",\n%*s\"State\": \"RUNNING\",\n%*s\"Flags\": \"%s\"", j, "", j, "",
		    e->debug ? "DEBUG_MODE" : "NONE");
	put(&b, "\n%*s}", i, "");
	return b.over ? -1 : (int)b.o;
}
