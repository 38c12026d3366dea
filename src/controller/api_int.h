/* What the nitrod API's route files share (api.c, api_vpc.c): answers, the call's commit
 * and the caller's role. Called with g_ctl.c_lock held, inside api_handle. */
#ifndef NITRO_CONTROLLER_API_INT_H
#define NITRO_CONTROLLER_API_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>

#include "controller/api.h"
#include "controller/spec.h"

/* The answer: status and j (taken); an error {"error": message}, also the audit detail;
 * 405 with the Allow header. */
void api_set_json(struct api_resp *rs, int status, json_t *j);
void __attribute__((format(printf, 3, 4)))
api_fail(struct api_resp *rs, int status, const char *fmt, ...);
void api_not_allowed(struct api_resp *rs, const char *allow);
/* m is one of the ", "-separated methods of allow. */
bool api_method_in(const char *m, const char *allow);
/* Commits the call's records before it acts: 0, or -1 with rs failed (503), nothing
 * written. */
int api_commit(struct api_resp *rs);
/* Root, nitrod's own uid and every --admin-uid. */
bool api_is_admin(uid_t uid);

/* /v1/vpcs[/ID] (api_vpc.c; docs/api.md "VPCs"). */
void vpcs_route(const struct api_req *rq, char **seg, int nseg, struct api_resp *rs);
/* An instance's nics against the VPC records: each one in a VPC with a record must lie in
 * its CIDR. 0, or -1 with rs failed (400). */
int vpcs_check_nics(const struct inst_spec *s, struct api_resp *rs);

#endif
