/* cgroup v2 limits for jailed processes (issue 10 item 9).
 *
 * Layout under the cgroup v2 root (default /sys/fs/cgroup):
 *     nitro/                    memory, pids and cpu enabled for its children
 *     nitro/<instance>/         the instance's total: memory.max, pids.max, cpu.weight
 *     nitro/<instance>/<proc>   one leaf per process ("hv", "c0", "c1", ...), its own limits
 * A jailed process is cloned straight into its leaf (CLONE_INTO_CGROUP, jailer.h): it is
 * limited from its first page, and so is everything it could fork.
 *
 * Default limits (cg_limits_*), from the instance's size:
 *   hv        memory.max = guest RAM + CG_HV_OVERHEAD_MIB, pids.max = CG_HV_PIDS + vCPUs,
 *             cpu.weight 100
 *   each card memory.max = guest RAM + CG_CARD_OVERHEAD_MIB (a card maps the guest's RAM,
 *             and a guest page a card touches first is charged to the card), pids.max
 *             CG_CARD_PIDS (threads and io_uring workers), cpu.weight 100
 *   instance  memory.max = guest RAM + CG_HV_OVERHEAD_MIB + CG_CARD_OVERHEAD_MIB per card
 *             (what bounds the whole instance: guest RAM is one memfd, counted once),
 *             pids.max = the sum of its processes', cpu.weight 100 per vCPU (max 10000)
 * memory.swap.max is 0 everywhere (guest memory and keys never go to swap through us).
 *
 * Not thread-safe by itself: nitrod calls it with its global lock held. Paths come from
 * nitrod (instance ids it made), never from a caller.
 */
#ifndef NITRO_CONTROLLER_CGROUP_H
#define NITRO_CONTROLLER_CGROUP_H

#include <stddef.h>
#include <stdint.h>

#define CG_DEFAULT_ROOT "/sys/fs/cgroup"
#define CG_NITRO "nitro"
#define CG_HV_OVERHEAD_MIB 256
#define CG_CARD_OVERHEAD_MIB 128
#define CG_HV_PIDS 32
#define CG_CARD_PIDS 64

struct cg_limits {
	uint64_t cl_memory_max; /* bytes; 0: "max" */
	uint64_t cl_pids_max;	/* 0: "max" */
	unsigned cl_cpu_weight; /* 1..10000; 0: leave the default (100) */
};

/* Checks that root is a cgroup v2 hierarchy offering memory, pids and cpu, enables them
 * for root's children and for root/nitro (created). 0, or -1 with err saying what is
 * missing (e.g. a host whose memory controller is bound to a cgroup v1 hierarchy). */
int cg_setup(const char *root, char *err, size_t errlen);

/* Makes (or reuses) root/nitro/<inst> with il and its leaf <name> with l; returns an fd of
 * the leaf directory (O_DIRECTORY, close-on-exec) for jail_spec.js_cgroup_fd, or -1 with
 * err. */
int cg_make(const char *root, const char *inst, const struct cg_limits *il, const char *name,
	    const struct cg_limits *l, char *err, size_t errlen);

/* Removes the leaf <name> of inst, or with name NULL every leaf and inst's folder. A
 * folder whose processes have not all exited yet is retried for up to ~200 ms. 0, or -1
 * (errno) when something is left. */
int cg_remove(const char *root, const char *inst, const char *name);

void cg_limits_hv(uint64_t mem_mib, unsigned cpus, struct cg_limits *l);
void cg_limits_card(uint64_t mem_mib, struct cg_limits *l);
void cg_limits_instance(uint64_t mem_mib, unsigned cpus, unsigned ncards, struct cg_limits *l);
/* An instance with enclaves ("enclaves": true): nitro-hv's leaf also holds its enclave
 * spawner and up to cpus - 1 enclave nitro-hv processes (each has at least one donated
 * vCPU, and CPU 0 stays the parent's) whose guest RAM is the parent's memfd, charged
 * once: each adds CG_HV_PIDS + its vCPUs and CG_ENCLAVE_OVERHEAD_MIB. Added to the hv
 * leaf's and the instance's limits alike. */
#define CG_ENCLAVE_OVERHEAD_MIB 64
void cg_limits_add_enclaves(unsigned cpus, struct cg_limits *l);

#endif
