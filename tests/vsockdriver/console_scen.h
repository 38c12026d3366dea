/* vsock-attack's console scenarios (console.c) and what they share with main.c. */
#ifndef NITRO_TESTS_VSOCKDRIVER_CONSOLE_SCEN_H
#define NITRO_TESTS_VSOCKDRIVER_CONSOLE_SCEN_H

#include "tvm.h"

struct scen {
	const char *name;
	void (*fn)(void);
};

/* NULL-terminated. */
extern const struct scen console_scenarios[];
void console_scen_init(const char *parent, const char *enclaves);

/* main.c: one RW parent -> e received whole (its latency in ms); nothing for v in ms. */
uint64_t ping_pub(struct tvm *p, struct tvm *e, uint32_t n, int timeout_ms);
void quiet_for(struct tvm *v, int ms, const char *who);

#endif
