/* nitro-enclave's command line (src/enclave/tool; docs/enclaves.md): pure parsing and the
 * sizing rules of `run`, so that the unit tests check them without a device.
 *
 * Contract: no global state, no I/O; argv is the user's (checked, never trusted).
 * Every refusal is one line in err that names the option and what to change. */
#ifndef NITRO_ENCLAVE_TOOL_ARGS_H
#define NITRO_ENCLAVE_TOOL_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NET_MIN_MEMORY_MIB 64u		      /* the device's minimum enclave size */
#define NET_MAX_CPUS 256u		      /* far above any parent here */
#define NET_MAX_MEMORY_MIB (1024u * 1024u)    /* 1 TiB */
#define NET_HUGEPAGE (2u << 20)		      /* the only page size used */
#define NET_IMAGE_OFFSET_DEFAULT (8ull << 20) /* NE_GET_IMAGE_LOAD_INFO's usual answer */
#define NET_NAME_MAX 64

enum net_cmd { NET_NONE, NET_RUN, NET_DESCRIBE, NET_CONSOLE, NET_TERMINATE, NET_HELP };

struct net_args {
	enum net_cmd cmd;
	/* run */
	const char *eif_path;
	unsigned cpu_count;
	unsigned memory_mib; /* rounded up to an even number (2 MiB pages) */
	bool debug_mode;
	uint64_t enclave_cid; /* 0: the device picks */
	char name[NET_NAME_MAX];
	/* console, terminate */
	const char *enclave_id; /* an EnclaveID or an EnclaveName */
	bool all;
};

/* Parses argv (argv[0] the program). 0, or -1 with the reason in err. */
int net_parse(int argc, char **argv, struct net_args *out, char *err, size_t errlen);

/* The usage text. */
const char *net_usage(void);

/* 0 if an enclave of memory_mib can hold an image of eif_size at image_offset, else -1
 * with what to change in err (the --memory that fits). */
int net_check_fit(unsigned memory_mib, uint64_t eif_size, uint64_t image_offset, char *err,
		  size_t errlen);

/* How long `run` waits for the heartbeat, in ms (nitro-cli's rule, reference §5): 90 s per
 * started 6 GiB of image plus 90 s per started 100 GiB of memory. */
uint64_t net_heartbeat_timeout_ms(uint64_t eif_size, uint64_t memory_bytes);

/* The enclave's name when --enclave-name is not given: the EIF's file name without its
 * directory and ".eif" (nitro-cli's default), at most NET_NAME_MAX - 1 bytes. */
void net_default_name(const char *eif_path, char *out, size_t len);

#endif
