/* The host's resolver as the VPC cards reach it: the VPC resolver in each card forwards
 * what is no instance name there, through a connected UDP socket its launcher (nitro
 * run, nitrod) makes in the host's network namespace and passes as --dns-fd (the card
 * lives in an empty one and may not create sockets).
 *
 * Contract: plain functions, no globals; /etc/resolv.conf is read as the host's
 * administrator wrote it (only "nameserver A.B.C.D" lines are used, the first one).
 */
#ifndef NITRO_LAUNCH_RESOLVER_H
#define NITRO_LAUNCH_RESOLVER_H

#include <stddef.h>

#define LAUNCH_RESOLV_CONF "/etc/resolv.conf"

/* The first IPv4 nameserver of resolv.conf at path as "A.B.C.D:53" in out: 0, or -1 when
 * there is none (or the file cannot be read). */
int launch_host_resolver(const char *path, char *out, size_t len);
/* A connected, close-on-exec UDP socket to "A.B.C.D:PORT", or -1 with err (e.g. the host
 * has no route to it). */
int launch_dns_socket(const char *addr, char *err, size_t errlen);

/* launch_host_resolver() when a socket to it can be connected now (the launchers set
 * launch_env.le_dns with it): 0, or -1 (no resolver, or no route to it: the cards then
 * refuse names that are not instances'). */
int launch_usable_resolver(const char *path, char *out, size_t len);

#endif
