/* The nitrod API: routes, their checks and their answers (issue 5; docs/api.md).
 *
 * api_handle takes one complete request (the HTTP layer has checked the caller's uid and
 * the body's size) and fills the response: a status and a malloc'd body (JSON, or the
 * console's text), plus a short detail for the audit log (the id acted on, or the error).
 * Errors are {"error": "message"} with 400 (bad body or argument), 403 (console off,
 * launch refused is *not* an error: the instance is created `failed`), 404 (no such
 * route or id), 405 (method not allowed on a route), 409 (wrong state). It takes
 * g_ctl.c_lock itself.
 *
 * Owners (issue 10 item 14): an instance or a volume belongs to the uid that created it.
 * For any other caller it does not exist (404, left out of lists), unless the caller is
 * root, nitrod's own uid or an --admin-uid (g_ctl.c_admin). An instance takes only its
 * owner's volumes (409 otherwise, for admins too).
 */
#ifndef NITRO_CONTROLLER_API_H
#define NITRO_CONTROLLER_API_H

#include <stddef.h>
#include <sys/types.h>

#define API_MAX_BODY (64u * 1024u)
#define API_MAX_CONSOLE (1u << 20) /* the last MiB of serial output */

struct api_req {
	const char *ar_method;
	const char *ar_url;	 /* path only, canonical (spec_route_canon) */
	const char *ar_nonce;	 /* ?nonce= of GET /v1/host/attestation, or NULL */
	const char *ar_key_type; /* ?key_type= of GET /v1/instances/ID/tpm/ek, or NULL */
	const char *ar_body;
	size_t ar_len;
	uid_t ar_uid;
};

struct api_resp {
	int rs_status;
	char *rs_body; /* malloc'd */
	size_t rs_len;
	const char *rs_type;  /* content type */
	const char *rs_allow; /* for 405: the methods the route takes */
	char rs_detail[256];
};

void api_handle(const struct api_req *rq, struct api_resp *rs);

#endif
