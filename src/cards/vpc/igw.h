/* The internet gateway of a VPC, on the card's side (issue 15 item 5; docs/vpc.md).
 *
 * A VPC created with `nitro vpc create ID --cidr C --internet-gateway` has one NAT process
 * per interface, nitro-vpc-igw (src/igw: libslirp in the host's network namespace, its
 * own seccomp list, no guest memory), started by the launcher and joined to the card by a
 * SOCK_SEQPACKET socketpair (card option --igw-fd N): one Ethernet frame per message,
 * both ways. The card itself keeps no socket of its own (it stays in its empty network
 * namespace and socket-less seccomp list).
 *
 * The core (vpc.h, with vc_igw set) hands the card VPC_TO_IGW for a guest packet to the
 * VPC router (base + 1: slirp's host alias, the host's loopback) or to an address
 * outside the VPC's CIDR that igw_policy.h allows, after the interface's security group
 * (egress, conntrack) and allowances; vpc_from_igw takes the NAT's frames back through
 * the same checks (ingress: conntrack lets replies in) and rewrites the MACs (the gateway
 * MAC to the guest's). Without the gateway nothing changes: outside traffic is
 * no_route, as before. Counters igw_tx / igw_rx.
 *
 * The VPC resolver forwards through its own socket (--dns-fd). The NAT also offers slirp's
 * nameserver alias (UDP/TCP port 53 to subnet base + 3, igw_policy.h; the host's
 * resolver), unused today: a resolver in the card could forward on this link, taking the
 * replies from base + 3 before vpc_from_igw (which drops them).
 */
#ifndef NITRO_CARDS_VPC_IGW_H
#define NITRO_CARDS_VPC_IGW_H

#include "cards/vpc/igw_policy.h"
#include "cards/vpc/vpc.h"

#endif
