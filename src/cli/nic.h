/* nitro run --nic and nitro net: one nitro-card-vpc process per network interface.
 *
 *   --nic vpc=ID,ip=A.B.C.D[/PREFIX][,sg=FILE][,mac=MAC|random][,pps=N][,bandwidth=MBIT]
 *   --underlay ADDR   this host's underlay address (default 127.0.0.1: one host)
 *   --map PATH        the mapping directory or file (default $NITRO_STATE/vpc-map)
 * The MAC is derived from (vpc, ip) unless given (random: 02 and 5 random bytes). The cards start before the hypervisor
 * (each on a socket in a private run folder, with a control socket beside it that
 * `nitro net stats` reads) and stop after it.
 */
#ifndef NITRO_CLI_NIC_H
#define NITRO_CLI_NIC_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RUN_MAX_NICS 7
#define RUN_MAX_PAIRS 7 /* nitro-hv serves up to 16 queues per device: 7 pairs + control */

struct run_nic {
	char rn_spec[PATH_MAX];
	uint32_t rn_vpc;
	char rn_ip[40]; /* A.B.C.D/P */
	char rn_vpc_s[16], rn_mac[24], rn_pps[24], rn_bw[24];
	char rn_sg[PATH_MAX];
	char rn_socket[PATH_MAX + 32], rn_ctl[PATH_MAX + 32];
	int rn_pid;
};

struct run_nics {
	struct run_nic n_nic[RUN_MAX_NICS];
	unsigned n_count;
	const char *n_underlay, *n_map;
	unsigned n_cpus; /* the guest's vCPUs: queue pairs per interface = min(7, vCPUs) */
	char n_dir[PATH_MAX];
};

/* If argv[*i] is --nic, --underlay or --map, consumes it and its value (dying with a
 * usage error on a bad one) and returns true. */
bool nic_arg(int argc, char **argv, int *i, struct run_nics *ns);
/* 0, or 2 (bad syntax) / 1 (unusable file) with err set. */
int nic_parse(const char *spec, struct run_nic *n, char *err, size_t errlen);
/* Starts the cards (dies on failure) and appends "--vhost-user net,SOCKET" for each to
 * hvargs from index k; returns the new k. */
int nics_start(struct run_nics *ns, char **hvargs, int k);
/* Stops the cards nics_start started (nothing when none). */
void nics_stop(void);
int cmd_net(int argc, char **argv);

#endif
