/* The instance metadata service (IMDS) of one interface: EC2's HTTP API at
 * 169.254.169.254, without any transport (imds_net.c carries it over the guest's TCP).
 *
 * Contract:
 * - Single-threaded (the card's loop). now_ns is CLOCK_MONOTONIC; tokens expire on it.
 * - The metadata comes from the launcher (struct imds_cfg, copied at imds_new), never from
 *   the guest. Requests are hostile: imds_answer() takes a request parsed by http_parse()
 *   and writes the whole reply (status line, headers, body) into out.
 * - IMDSv2: PUT /latest/api/token with X-aws-ec2-metadata-token-ttl-seconds 1..21600 gives
 *   a random token (400 for a missing or bad TTL); with IMDS_REQUIRED a GET without a
 *   valid token is 401, with IMDS_OPTIONAL only a present but unknown/expired token is;
 *   IMDS_DISABLED answers 403 to everything; any request with X-Forwarded-For is 403.
 *   The token reply is marked (rep->ttl1) to leave with IP TTL 1.
 * - Bodies are EC2's: no trailing newline; listings one name a line, directories with "/".
 */
#ifndef NITRO_CARDS_VPC_IMDS_H
#define NITRO_CARDS_VPC_IMDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cards/vpc/imds_http.h"

#define IMDS_IP 0xa9fea9feu /* 169.254.169.254, host order */
#define IMDS_TOKENS_MAX 1024
#define IMDS_TOKEN_LEN 56
#define IMDS_USERDATA_MAX 16384 /* EC2's limit */
#define IMDS_REPLY_MAX (IMDS_USERDATA_MAX + 8192)

enum imds_mode { IMDS_REQUIRED = 0, IMDS_OPTIONAL, IMDS_DISABLED };

/* Everything a field of EC2's metadata needs; NULL strings get EC2-like defaults. */
struct imds_cfg {
	enum imds_mode ic_mode;
	const char *ic_instance_id;   /* "i-" + 17 hex */
	const char *ic_instance_type; /* "m5.large" */
	const char *ic_ami_id;	      /* "ami-" + 17 hex */
	const char *ic_region;	      /* "us-east-1" */
	const char *ic_az;	      /* region + "a" */
	const char *ic_account_id;    /* 12 digits */
	char ic_local_ipv4[16];	      /* dotted */
	char ic_mac[18];	      /* xx:xx:xx:xx:xx:xx */
	char ic_subnet_cidr[32];
	char ic_vpc_cidr[32];
	const char *ic_domain;	     /* "nitro.internal" (local-hostname's suffix) */
	const char *ic_vpc_id;	     /* "vpc-..." */
	const char *ic_subnet_id;    /* "subnet-..." */
	const char *ic_sg_ids;	     /* "sg-..." (lines) */
	const char *ic_interface_id; /* "eni-..." */
	unsigned ic_device_number;
	const char *ic_key_name;   /* public-keys/0=NAME */
	const uint8_t *ic_ssh_key; /* NULL: no public-keys/ */
	size_t ic_ssh_key_len;
	const uint8_t *ic_user_data; /* NULL: /latest/user-data is 404, as on EC2 */
	size_t ic_user_data_len;
	/* The identity document and its signatures, signed by the launcher (NULL: the
	 * document is built here and the signatures are absent). */
	const uint8_t *ic_doc, *ic_pkcs7, *ic_signature, *ic_rsa2048;
	size_t ic_doc_len, ic_pkcs7_len, ic_signature_len, ic_rsa2048_len;
	uint64_t ic_pending_time; /* launch time, Unix seconds */
};

struct imds;

struct imds_reply {
	size_t len;    /* bytes written to out */
	unsigned code; /* the status */
	bool ttl1;     /* send with IP TTL 1 (the token) */
	bool close;    /* close the connection after it */
};

/* NULL with err when a field is malformed (the ids, sizes). */
struct imds *imds_new(const struct imds_cfg *cfg, char *err, size_t errlen);
void imds_free(struct imds *m);
enum imds_mode imds_mode(const struct imds *m);

/* The reply to a request parsed by http_parse: res is its result (HTTP_OK or HTTP_BAD
 * with req->rq_status). out needs IMDS_REPLY_MAX bytes. */
void imds_answer(struct imds *m, enum http_result res, const struct http_req *req, uint64_t now_ns,
		 char *out, size_t cap, struct imds_reply *rep);

/* The body at a version-relative path ("meta-data/instance-id") for tests and the
 * identity document: NULL when none (a listing is built in buf). */
const char *imds_lookup(struct imds *m, const char *rel, size_t rlen, char *buf, size_t cap,
			size_t *len);

/* The identity document imds_new serves when cfg gives none (EC2's JSON layout, from the
 * same fields and defaults): what a launcher signs and passes back in ic_doc. snprintf
 * semantics. */
int imds_identity_document(const struct imds_cfg *cfg, char *buf, size_t cap);

/* "required", "optional", "disabled" -> mode; -1 otherwise. */
int imds_parse_mode(const char *s);

#endif
