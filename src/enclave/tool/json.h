/* An enclave as nitro-enclave reports it, and its JSON (nitro-cli's run-enclave and
 * describe-enclaves field names: EnclaveName, EnclaveID, ProcessID, EnclaveCID,
 * NumberOfCPUs, CPUIDs, MemoryMiB, and for describe State and Flags).
 *
 * Contract: pure, thread-safe. Names are checked by args.c (no quote, backslash or control
 * character) and escaped again here, so the output is always valid JSON. */
#ifndef NITRO_ENCLAVE_TOOL_JSON_H
#define NITRO_ENCLAVE_TOOL_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "enclave/tool/args.h"

struct net_enclave {
	char name[NET_NAME_MAX];
	char id[128]; /* INSTANCE-ID-encSLOT (nitro-cli's form) */
	pid_t pid;    /* the process holding the enclave's fd */
	uint64_t cid;
	uint64_t slot; /* the device's slot uid */
	unsigned ncpus;
	uint32_t cpu[NET_MAX_CPUS];
	unsigned memory_mib;
	bool debug;
};

/* The enclave ID from the instance id (NULL or empty: i-0000000000000000, as nitro-cli)
 * and the slot uid: "i-...-enc<slot in hex>". Characters other than [A-Za-z0-9-] are
 * dropped from the instance id. */
void net_enclave_id(const char *instance_id, uint64_t slot, char *out, size_t len);

/* run-enclave's object (describe = false) or describe-enclaves' (describe = true, adding
 * State "RUNNING" and Flags "NONE"/"DEBUG_MODE"), pretty-printed with `indent` spaces
 * before each line. The length, or -1 if it does not fit. */
int net_enclave_json(const struct net_enclave *e, bool describe, int indent, char *out, size_t len);

#endif
