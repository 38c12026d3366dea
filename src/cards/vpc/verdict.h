/* The VPC core's verdicts, shared by the pipeline's pieces (pkt.c, sg.c, arp.c, dhcp.c,
 * geneve.c, vpc.c) and re-exported by the card-facing vpc.h: what to do with a frame
 * (enum vpc_action), why one was dropped (enum vpc_drop), the result (struct vpc_out),
 * and the gateway MAC every answer of the core comes from (vpc_drop(), which records a
 * drop in the port's stats, is in core.h with the port). Includes nothing of the core, so no piece
 * needs vpc.h (or vpc.c) for these. Contract of the fields: vpc.h.
 */
#ifndef NITRO_CARDS_VPC_VERDICT_H
#define NITRO_CARDS_VPC_VERDICT_H

#include <stddef.h>
#include <stdint.h>

/* The gateway's MAC: answers ARP for .1 and anything off-subnet, source of routed frames. */
extern const uint8_t vpc_gateway_mac[6];

enum vpc_action {
	VPC_DROP = 0,
	VPC_TO_GUEST,
	VPC_TO_UNDERLAY,
	VPC_TO_IMDS,	/* TCP to 169.254.169.254:80: vo_data = the IPv4 packet, for imds_net */
	VPC_TO_SERVICE, /* UDP to the resolver or time server: the IPv4 packet, for svc_net */
	VPC_TO_IGW,	/* to the internet gateway's NAT: vo_data = the Ethernet frame (igw.h) */
};

/* Why a frame was dropped; each has a counter "drop_NAME" (vpc_drop_name). */
enum vpc_drop {
	VPC_DROP_NONE = 0,
	VPC_DROP_RUNT,	      /* shorter than its headers */
	VPC_DROP_OVERSIZE,    /* longer than 14 + MTU */
	VPC_DROP_VLAN,	      /* 802.1Q / 802.1ad tagged */
	VPC_DROP_ETHERTYPE,   /* not IPv4 or ARP (IPv6, ...) */
	VPC_DROP_BROADCAST,   /* broadcast/multicast that is not ARP or DHCP */
	VPC_DROP_BAD_IP,      /* IPv4 header: version, lengths, checksum, reserved flag */
	VPC_DROP_FRAGMENT,    /* IPv4 fragments (MF or offset) */
	VPC_DROP_BAD_L4,      /* truncated or malformed TCP/UDP/ICMP header */
	VPC_DROP_BAD_ARP,     /* malformed ARP or an ARP reply from the guest */
	VPC_DROP_ARP_UNKNOWN, /* ARP for a same-subnet address nobody has */
	VPC_DROP_BAD_DHCP,    /* malformed DHCP, or a message we do not answer */
	VPC_DROP_SPOOF_OUT,   /* guest's source MAC/IP is not its own */
	VPC_DROP_NO_ROUTE,    /* destination not in the mapping (or .1/.2/self) */
	VPC_DROP_SG_OUT,      /* egress denied by the security group */
	VPC_DROP_SG_IN,	      /* ingress denied by the security group */
	VPC_DROP_CONNTRACK,   /* new flow, conntrack table full of assured flows */
	VPC_DROP_PPS,	      /* pps allowance */
	VPC_DROP_BW_OUT,      /* bandwidth allowance, guest -> underlay */
	VPC_DROP_BW_IN,	      /* bandwidth allowance, underlay -> guest */
	VPC_DROP_BAD_GENEVE,  /* short, version, option length, critical/OAM, protocol */
	VPC_DROP_WRONG_VNI,   /* another VPC's packet */
	VPC_DROP_SPOOF_IN,    /* inner source does not match the mapping */
	VPC_DROP_NOT_FOR_US,  /* inner destination MAC/IP is not this interface */
	VPC_DROP_NO_ROOM,     /* vo_cap too small for the result */
	VPC_DROP_LINKLOCAL,   /* link-local allowance (IMDS, DNS, NTP: 1024 packets/s) */
	VPC_DROP__COUNT
};

struct vpc_out {
	uint8_t *vo_buf;	/* caller's buffer */
	size_t vo_cap;		/* its size (VPC_OUT_MIN is always enough) */
	const uint8_t *vo_data; /* result: in vo_buf or (from_underlay) inside the input */
	size_t vo_len;
	uint32_t vo_ul_ip;     /* VPC_TO_UNDERLAY: destination underlay address */
	uint16_t vo_ul_port;   /* and port */
	enum vpc_drop vo_drop; /* VPC_DROP: the reason */
};

#endif
