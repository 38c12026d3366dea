/* The IMDS HTTP/1.x request parser: pure, no allocation, no I/O.
 *
 * Contract:
 * - Every byte is hostile (it comes from the guest). http_parse() looks at buf[0..len)
 *   (what the connection has received so far, not NUL-terminated) and returns
 *   HTTP_MORE (the request head is not complete yet: read more, unless len has reached
 *   HTTP_HEAD_MAX, which is then HTTP_BAD with status 431), HTTP_BAD (req->rq_status says
 *   the status to answer: 400, 413, 414, 431, 501, 505; the connection must be closed
 *   after the answer) or HTTP_OK (req filled; req->rq_used bytes belong to this request,
 *   head and body, so a pipelined next request starts at buf + rq_used).
 * - A body is accepted only with Content-Length (at most HTTP_BODY_MAX, else 413; skipped, never
 *   read by IMDS); Transfer-Encoding is refused (501), as is any request line or header
 *   with control bytes, bare CR, obs-fold or a missing colon (400).
 * - Strings in req point into buf (pointer + length), valid while buf is.
 * - The headers IMDS reads are parsed case-insensitively; a duplicated one is 400 (no
 *   ambiguity between two values); all others are checked for syntax and skipped.
 */
#ifndef NITRO_CARDS_VPC_IMDS_HTTP_H
#define NITRO_CARDS_VPC_IMDS_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_HEAD_MAX 8192 /* request line + headers */
#define HTTP_PATH_MAX 1024
#define HTTP_BODY_MAX 4096

enum http_result { HTTP_MORE = 0, HTTP_OK, HTTP_BAD };

enum http_method { HTTP_GET = 1, HTTP_HEAD, HTTP_PUT, HTTP_OTHER };

struct http_str {
	const char *s;
	size_t n;
};

struct http_req {
	enum http_method rq_method;
	struct http_str rq_path;
	unsigned rq_minor; /* HTTP/1.rq_minor (0 or 1) */
	bool rq_keepalive; /* 1.1 without "Connection: close", 1.0 with keep-alive */
	bool rq_forwarded; /* X-Forwarded-For present (any value) */
	bool rq_has_token; /* X-aws-ec2-metadata-token present */
	struct http_str rq_token;
	bool rq_has_ttl;	/* X-aws-ec2-metadata-token-ttl-seconds present */
	struct http_str rq_ttl; /* raw value, trimmed */
	size_t rq_body;		/* Content-Length */
	size_t rq_used;		/* head + body */
	unsigned rq_status;	/* HTTP_BAD: the status to answer */
};

enum http_result http_parse(const char *buf, size_t len, struct http_req *req);

/* "1".."21600" exactly (digits only, no sign, no leading zero): true with *ttl. */
bool http_parse_ttl(struct http_str v, unsigned *ttl);

#endif
