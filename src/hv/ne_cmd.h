/* The NE device's slots as the enclave glue sees them (ENCLAVE-DESIGN.md "Interfaces").
 * PLACEHOLDER of the encvm branch: the `ne` branch owns this file and its command handler;
 * the struct ne_slot / struct ne_ops text below is the design's, kept identical so the two
 * merge. */
#ifndef NITRO_HV_NE_CMD_H
#define NITRO_HV_NE_CMD_H

#include <stdint.h>

#ifndef NE_MAX_REGIONS
#define NE_MAX_REGIONS 256
#endif
#ifndef NE_MAX_VCPUS
#define NE_MAX_VCPUS 64
#endif

struct ne_dev;

struct ne_mem_range { uint64_t gpa, size; };   /* parent guest-physical */
struct ne_slot { uint64_t uid, cid, flags; uint16_t state;
                 unsigned nranges; struct ne_mem_range range[NE_MAX_REGIONS];
                 unsigned nvcpus; uint32_t vcpu[NE_MAX_VCPUS]; };
struct ne_ops {
    /* START: the glue validates, splits memory, spawns; 0 (s->cid set, auto-assigned
     * if it was 0) or a negative NE reply rc (the kernel maps it to an errno). */
    int (*start)(void *ctx, struct ne_slot *s);
    /* STOP / SLOT_FREE of a running slot / device reset: end it, scrub, give back. */
    void (*stop)(void *ctx, struct ne_slot *s);
    void *ctx; };
/* Called by the glue when an enclave exited on its own: state STOPPED, MSI-X vector 1. */
void ne_enclave_exited(struct ne_dev *d, uint64_t slot_uid);

#endif
