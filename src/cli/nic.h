/* nitro run --nic and nitro net: one nitro-card-vpc process per network interface.
 *
 *   --nic vpc=ID,ip=A.B.C.D[/PREFIX][,sg=FILE][,mac=MAC|random][,pps=N][,bandwidth=MBIT]
 *         [,imds=required|optional|disabled]
 *   --user-data FILE, --ssh-key FILE   the instance metadata (IMDS) every card serves
 *   --underlay ADDR   this host's underlay address (default 127.0.0.1: one host)
 *   --map PATH        the mapping directory or file (default $NITRO_STATE/vpc-map)
 * The MAC is derived from (vpc, ip) unless given (random: 02 and 5 random bytes). The
 * cards start before the hypervisor (src/launch: each on a socket in a private run folder,
 * with a control socket beside it that `nitro net stats` reads) and stop after it.
 */
#ifndef NITRO_CLI_NIC_H
#define NITRO_CLI_NIC_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "launch/launch.h"

/* If argv[*i] is --nic, --underlay, --map, --user-data or --ssh-key, consumes it and its
 * value (dying with a usage error on a bad one) into s (a NIC, the IMDS files) or e
 * (--underlay, --map) and returns true. */
bool nic_arg(int argc, char **argv, int *i, struct launch_spec *s, struct launch_env *e);
/* 0, or 2 (bad syntax) / 1 (unusable file) with err set. */
int nic_parse(const char *spec, struct launch_nic *n, char *err, size_t errlen);
int cmd_net(int argc, char **argv);
/* nitro vpc create|list|delete (src/cli/vpc.c). */
int cmd_vpc(int argc, char **argv);
/* The VPC record of n->ln_vpc, when there is one: its CIDR and internet gateway into n
 * (the interface's subnet must lie in the CIDR). 1 applied, 0 no record, -1 with err. */
int vpc_apply(struct launch_nic *n, char *err, size_t errlen);

#endif
