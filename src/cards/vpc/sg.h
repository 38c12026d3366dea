/* Security-group rules inside the VPC core (the file format: docs/vpc-sg.md).
 *
 * A group is two lists of allow rules, ingress and egress. A rule matches a packet by
 * protocol (or any), port range (TCP/UDP: the destination port, the interface's own for
 * ingress, the remote one for egress; ICMP: the type) and peer (a CIDR holding the remote
 * address, or "the VPC's default group": a peer whose mapping entry says it is a member).
 * A group with no egress rules allows all egress (AWS's default outbound rule); a group
 * with no ingress rules allows no ingress. sg_untracked[proto] is set for TCP and UDP
 * when both directions allow that protocol from/to 0.0.0.0/0 on all ports: AWS does not
 * track such flows (ICMP is always tracked).
 */
#ifndef NITRO_CARDS_VPC_SG_H
#define NITRO_CARDS_VPC_SG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SG_MAX_RULES 1000 /* per direction */
#define SG_FILE_MAX (1u << 20)
#define SG_ANY_PROTO 256

struct sg_rule {
	uint16_t r_proto; /* IP protocol, or SG_ANY_PROTO */
	uint16_t r_lo, r_hi;
	uint32_t r_net, r_mask; /* network order */
	bool r_default_group;	/* peer: members of the VPC's default group */
	unsigned r_line;
};

struct vpc_sg {
	struct sg_rule *sg_in, *sg_out;
	unsigned sg_nin, sg_nout;
	bool sg_egress_all; /* no egress rules were given: allow all egress */
	bool sg_untracked_tcp, sg_untracked_udp;
	bool sg_static; /* the built-in default group: never freed */
};

/* The VPC's default group: ingress from default-group members, all egress. */
extern const struct vpc_sg sg_default_group;

/* Whether the group allows a new flow: ingress (remote -> us) or egress (us -> remote).
 * port is the destination port (TCP/UDP) or the ICMP type; peer_default says whether the
 * remote interface is in the VPC's default group. */
bool sg_allows(const struct vpc_sg *g, bool ingress, uint8_t proto, uint16_t port, uint32_t rip,
	       bool peer_default);

/* The card-facing API, re-exported by vpc.h (format: docs/vpc-sg.md). Errors are "FILE:LINE:
 * reason". */
struct vpc_sg *vpc_sg_load(const char *path, char *err, size_t errlen);
/* The same from text (name stands for the file in errors). */
struct vpc_sg *vpc_sg_parse(const char *text, size_t len, const char *name, char *err,
			    size_t errlen);
void vpc_sg_free(struct vpc_sg *sg);
/* Number of ingress / egress rules (for messages and tests). */
unsigned vpc_sg_rules(const struct vpc_sg *sg, bool ingress);

#endif
