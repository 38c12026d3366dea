/* The instance metadata service (contract: imds.h). */
#include "cards/vpc/imds.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

struct leaf {
	char *path; /* version-relative: "meta-data/instance-id" */
	uint8_t *body;
	size_t len;
};

struct token {
	char t[IMDS_TOKEN_LEN];
	uint64_t expires; /* ns; 0 = free */
};

struct imds {
	enum imds_mode mode;
	struct leaf *leaves;
	size_t nleaves, capleaves;
	struct token tokens[IMDS_TOKENS_MAX];
	uint8_t rnd[1024];
	size_t rnd_used;
	bool oom;
};

static const char *const versions[] = {"1.0",	     "2009-04-04", "2016-09-02",
				       "2018-09-24", "2021-03-23", "latest"};

int imds_parse_mode(const char *s)
{
	if (!strcmp(s, "required"))
		return IMDS_REQUIRED;
	if (!strcmp(s, "optional"))
		return IMDS_OPTIONAL;
	if (!strcmp(s, "disabled"))
		return IMDS_DISABLED;
	return -1;
}

enum imds_mode imds_mode(const struct imds *m)
{
	return m->mode;
}

static void add(struct imds *m, const char *path, const void *body, size_t len)
{
	if (m->nleaves == m->capleaves) {
		size_t nc = m->capleaves ? m->capleaves * 2 : 64;
		struct leaf *l = realloc(m->leaves, nc * sizeof(*l));
		if (!l) {
			m->oom = true;
			return;
		}
		m->leaves = l;
		m->capleaves = nc;
	}
	struct leaf *l = &m->leaves[m->nleaves];
	l->path = strdup(path);
	l->body = malloc(len ? len : 1);
	if (!l->path || !l->body) {
		free(l->path);
		free(l->body);
		m->oom = true;
		return;
	}
	memcpy(l->body, body, len);
	l->len = len;
	m->nleaves++;
}

static void adds(struct imds *m, const char *path, const char *body)
{
	add(m, path, body, strlen(body));
}

static bool hex_id(const char *s, const char *prefix, size_t nhex)
{
	size_t pl = strlen(prefix);
	if (strncmp(s, prefix, pl) || strlen(s) != pl + nhex)
		return false;
	for (size_t i = pl; s[i]; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

static bool printable(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
			return false;
	return true;
}

#define DEF(x, d) ((x) ? (x) : (d))

/* The identity document as EC2 formats it. */
static int doc_build(const struct imds_cfg *c, const char *iid, const char *itype, const char *ami,
		     const char *region, const char *az, const char *acct, char *buf, size_t cap)
{
	char when[32] = "1970-01-01T00:00:00Z";
	time_t t = (time_t)c->ic_pending_time;
	struct tm tm;
	if (gmtime_r(&t, &tm))
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return snprintf(buf, cap,
			"{\n"
			"  \"accountId\" : \"%s\",\n"
			"  \"architecture\" : \"x86_64\",\n"
			"  \"availabilityZone\" : \"%s\",\n"
			"  \"billingProducts\" : null,\n"
			"  \"devpayProductCodes\" : null,\n"
			"  \"marketplaceProductCodes\" : null,\n"
			"  \"imageId\" : \"%s\",\n"
			"  \"instanceId\" : \"%s\",\n"
			"  \"instanceType\" : \"%s\",\n"
			"  \"kernelId\" : null,\n"
			"  \"pendingTime\" : \"%s\",\n"
			"  \"privateIp\" : \"%s\",\n"
			"  \"ramdiskId\" : null,\n"
			"  \"region\" : \"%s\",\n"
			"  \"version\" : \"2017-09-30\"\n"
			"}",
			acct, az, ami, iid, itype, when, c->ic_local_ipv4, region);
}

int imds_identity_document(const struct imds_cfg *c, char *buf, size_t cap)
{
	const char *region = DEF(c->ic_region, "us-east-1");
	char az[64];
	snprintf(az, sizeof(az), "%s%s", c->ic_az ? c->ic_az : region, c->ic_az ? "" : "a");
	return doc_build(c, DEF(c->ic_instance_id, "i-0123456789abcdef0"),
			 DEF(c->ic_instance_type, "m5.large"),
			 DEF(c->ic_ami_id, "ami-0123456789abcdef0"), region, az,
			 DEF(c->ic_account_id, "123456789012"), buf, cap);
}

struct imds *imds_new(const struct imds_cfg *c, char *err, size_t errlen)
{
	const char *iid = DEF(c->ic_instance_id, "i-0123456789abcdef0");
	const char *itype = DEF(c->ic_instance_type, "m5.large");
	const char *ami = DEF(c->ic_ami_id, "ami-0123456789abcdef0");
	const char *region = DEF(c->ic_region, "us-east-1");
	const char *acct = DEF(c->ic_account_id, "123456789012");
	const char *domain = DEF(c->ic_domain, "ec2.internal");
	char az[64];
	snprintf(az, sizeof(az), "%s", c->ic_az ? c->ic_az : region);
	if (!c->ic_az && strlen(az) + 1 < sizeof(az))
		strcat(az, "a");
	if (!hex_id(iid, "i-", 17)) {
		snprintf(err, errlen, "instance id %s: expected i- and 17 hex digits", iid);
		return NULL;
	}
	const char *strs[] = {itype,
			      ami,
			      region,
			      acct,
			      domain,
			      az,
			      DEF(c->ic_vpc_id, ""),
			      DEF(c->ic_subnet_id, ""),
			      DEF(c->ic_sg_ids, ""),
			      DEF(c->ic_interface_id, ""),
			      DEF(c->ic_key_name, "")};
	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
		if (!printable(strs[i]) || strlen(strs[i]) > 255) {
			snprintf(err, errlen, "metadata field \"%s\": printable, 255 at most",
				 strs[i]);
			return NULL;
		}
	if (c->ic_user_data_len > IMDS_USERDATA_MAX) {
		snprintf(err, errlen, "user data: %zu bytes, at most %d", c->ic_user_data_len,
			 IMDS_USERDATA_MAX);
		return NULL;
	}
	if (c->ic_ssh_key_len > 8192 || c->ic_pkcs7_len > 8192 || c->ic_signature_len > 8192 ||
	    c->ic_rsa2048_len > 8192 || c->ic_doc_len > 8192) {
		snprintf(err, errlen, "SSH key or identity document: 8 KiB at most");
		return NULL;
	}
	struct imds *m = calloc(1, sizeof(*m));
	if (!m) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	m->mode = c->ic_mode;
	m->rnd_used = sizeof(m->rnd);

	char host[128], b[512];
	unsigned a0 = 0, a1 = 0, a2 = 0, a3 = 0;
	sscanf(c->ic_local_ipv4, "%u.%u.%u.%u", &a0, &a1, &a2, &a3);
	snprintf(host, sizeof(host), "ip-%u-%u-%u-%u.%s", a0, a1, a2, a3, domain);
	adds(m, "meta-data/ami-id", ami);
	adds(m, "meta-data/ami-launch-index", "0");
	adds(m, "meta-data/ami-manifest-path", "(unknown)");
	adds(m, "meta-data/block-device-mapping/ami", "/dev/xvda");
	adds(m, "meta-data/block-device-mapping/root", "/dev/xvda");
	adds(m, "meta-data/hostname", host);
	adds(m, "meta-data/instance-action", "none");
	adds(m, "meta-data/instance-id", iid);
	adds(m, "meta-data/instance-life-cycle", "on-demand");
	adds(m, "meta-data/instance-type", itype);
	adds(m, "meta-data/local-hostname", host);
	adds(m, "meta-data/local-ipv4", c->ic_local_ipv4);
	adds(m, "meta-data/mac", c->ic_mac);
	char mp[128];
#define MACP(leaf, body)                                                                           \
	do {                                                                                       \
		snprintf(mp, sizeof(mp), "meta-data/network/interfaces/macs/%s/" leaf, c->ic_mac); \
		adds(m, mp, body);                                                                 \
	} while (0)
	snprintf(b, sizeof(b), "%u", c->ic_device_number);
	MACP("device-number", b);
	MACP("interface-id", DEF(c->ic_interface_id, "eni-0123456789abcdef0"));
	MACP("local-hostname", host);
	MACP("local-ipv4s", c->ic_local_ipv4);
	MACP("mac", c->ic_mac);
	MACP("owner-id", acct);
	MACP("security-group-ids", DEF(c->ic_sg_ids, "sg-0123456789abcdef0"));
	MACP("security-groups", "default");
	MACP("subnet-id", DEF(c->ic_subnet_id, "subnet-0123456789abcdef0"));
	MACP("subnet-ipv4-cidr-block", c->ic_subnet_cidr);
	MACP("vpc-id", DEF(c->ic_vpc_id, "vpc-0123456789abcdef0"));
	MACP("vpc-ipv4-cidr-block", c->ic_vpc_cidr);
	MACP("vpc-ipv4-cidr-blocks", c->ic_vpc_cidr);
#undef MACP
	adds(m, "meta-data/placement/availability-zone", az);
	adds(m, "meta-data/placement/availability-zone-id", "use1-az1");
	adds(m, "meta-data/placement/region", region);
	adds(m, "meta-data/profile", "default-hvm");
	if (c->ic_ssh_key) {
		/* EC2 serves the key with the newline the uploaded file had stripped. */
		size_t n = c->ic_ssh_key_len;
		while (n && (c->ic_ssh_key[n - 1] == '\n' || c->ic_ssh_key[n - 1] == '\r'))
			n--;
		add(m, "meta-data/public-keys/0/openssh-key", c->ic_ssh_key, n);
	}
	adds(m, "meta-data/reservation-id", "r-0123456789abcdef0");
	adds(m, "meta-data/security-groups", "default");
	adds(m, "meta-data/services/domain", "amazonaws.com");
	adds(m, "meta-data/services/partition", "aws");
	if (c->ic_user_data)
		add(m, "user-data", c->ic_user_data, c->ic_user_data_len);
	char doc[2048];
	if (c->ic_doc) {
		add(m, "dynamic/instance-identity/document", c->ic_doc, c->ic_doc_len);
	} else {
		int n = imds_identity_document(c, doc, sizeof(doc));
		add(m, "dynamic/instance-identity/document", doc, (size_t)n);
	}
	if (c->ic_pkcs7)
		add(m, "dynamic/instance-identity/pkcs7", c->ic_pkcs7, c->ic_pkcs7_len);
	if (c->ic_rsa2048)
		add(m, "dynamic/instance-identity/rsa2048", c->ic_rsa2048, c->ic_rsa2048_len);
	if (c->ic_signature)
		add(m, "dynamic/instance-identity/signature", c->ic_signature, c->ic_signature_len);
	/* public-keys/ lists "0=NAME" (EC2); the name is kept for the listing. */
	if (c->ic_ssh_key)
		adds(m, "\x01key-name", DEF(c->ic_key_name, "nitro"));
	if (m->oom) {
		imds_free(m);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	return m;
}

void imds_free(struct imds *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->nleaves; i++) {
		free(m->leaves[i].path);
		free(m->leaves[i].body);
	}
	free(m->leaves);
	free(m);
}

static const struct leaf *find(const struct imds *m, const char *p, size_t n)
{
	for (size_t i = 0; i < m->nleaves; i++)
		if (strlen(m->leaves[i].path) == n && !memcmp(m->leaves[i].path, p, n))
			return &m->leaves[i];
	return NULL;
}

const char *imds_lookup(struct imds *m, const char *rel, size_t rlen, char *buf, size_t cap,
			size_t *len)
{
	char p[HTTP_PATH_MAX + 2];
	size_t n = 0;
	/* "public-keys/0=NAME/..." is "public-keys/0/..." (the listing names it so). */
	for (size_t i = 0; i < rlen && n < sizeof(p) - 2;) {
		size_t s = i;
		while (i < rlen && rel[i] != '/')
			i++;
		size_t seg = i - s;
		const char *eq = memchr(rel + s, '=', seg);
		if (eq && n >= 12 && !memcmp(p + n - 12, "public-keys/", 12))
			seg = (size_t)(eq - (rel + s));
		if (n + seg + 1 >= sizeof(p) - 2)
			return NULL;
		memcpy(p + n, rel + s, seg);
		n += seg;
		if (i < rlen) {
			p[n++] = '/';
			i++;
		}
	}
	const struct leaf *l = find(m, p, n);
	if (l) {
		*len = l->len;
		return (const char *)l->body;
	}
	if (n && p[n - 1] == '/')
		n--;
	if (n && find(m, p, n)) /* "instance-id/" is not a directory */
		return NULL;
	if (!n) { /* a version's root: EC2 lists its three names without slashes */
		int w = snprintf(buf, cap, "dynamic\nmeta-data%s",
				 find(m, "user-data", 9) ? "\nuser-data" : "");
		if (w < 0 || (size_t)w >= cap)
			return NULL;
		*len = (size_t)w;
		return buf;
	}
	/* A directory: the next name of every leaf below it, once, in order. */
	size_t o = 0;
	for (size_t i = 0; i < m->nleaves; i++) {
		const char *lp = m->leaves[i].path;
		if (n && (strncmp(lp, p, n) || lp[n] != '/'))
			continue;
		if (lp[0] == '\x01')
			continue;
		const char *rest = n ? lp + n + 1 : lp;
		const char *slash = strchr(rest, '/');
		size_t nl = slash ? (size_t)(slash - rest) + 1 : strlen(rest);
		char name[256];
		if (nl >= sizeof(name))
			continue;
		memcpy(name, rest, nl);
		name[nl] = 0;
		bool keys = n == 21 && !memcmp(p, "meta-data/public-keys", 21);
		if (keys) {
			const struct leaf *k = find(m, "\x01key-name", 9);
			snprintf(name, sizeof(name), "0=%.*s", k ? (int)k->len : 0,
				 k ? (const char *)k->body : "");
		}
		/* once: search what is already listed */
		bool dup = false;
		for (size_t s = 0; s < o;) {
			size_t e = s;
			while (e < o && buf[e] != '\n')
				e++;
			if (e - s == strlen(name) && !memcmp(buf + s, name, e - s))
				dup = true;
			s = e + 1;
		}
		if (dup)
			continue;
		size_t need = strlen(name) + (o ? 1 : 0);
		if (o + need >= cap)
			return NULL;
		if (o)
			buf[o++] = '\n';
		memcpy(buf + o, name, strlen(name));
		o += strlen(name);
	}
	if (!o)
		return NULL;
	*len = o;
	return buf;
}

/* ---- replies ---- */

static const char *reason(unsigned code)
{
	switch (code) {
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 413:
		return "Request Entity Too Large";
	case 414:
		return "Request-URI Too Long";
	case 431:
		return "Request Header Fields Too Large";
	case 501:
		return "Not Implemented";
	case 505:
		return "HTTP Version Not Supported";
	default:
		return "Error";
	}
}

static void reply(char *out, size_t cap, struct imds_reply *rep, unsigned code, const char *ctype,
		  const char *extra, const void *body, size_t blen, bool head_only)
{
	int n =
	    snprintf(out, cap,
		     "HTTP/1.1 %u %s\r\n"
		     "Content-Type: %s\r\n"
		     "Accept-Ranges: none\r\n"
		     "%s"
		     "Content-Length: %zu\r\n"
		     "Server: EC2ws\r\n"
		     "Connection: %s\r\n\r\n",
		     code, reason(code), ctype, extra, blen, rep->close ? "close" : "keep-alive");
	size_t o = n < 0 ? 0 : (size_t)n;
	if (o >= cap)
		o = cap - 1;
	if (!head_only) {
		if (blen > cap - o)
			blen = cap - o;
		memcpy(out + o, body, blen);
		o += blen;
	}
	rep->len = o;
	rep->code = code;
}

static void error(char *out, size_t cap, struct imds_reply *rep, unsigned code, bool head)
{
	char body[512];
	int n = snprintf(body, sizeof(body),
			 "<?xml version=\"1.0\" encoding=\"iso-8859-1\"?>\n"
			 "<!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0 Transitional//EN\"\n"
			 "\t\"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd\">\n"
			 "<html xmlns=\"http://www.w3.org/1999/xhtml\" xml:lang=\"en\" "
			 "lang=\"en\">\n"
			 " <head>\n"
			 "  <title>%u - %s</title>\n"
			 " </head>\n"
			 " <body>\n"
			 "  <h1>%u - %s</h1>\n"
			 " </body>\n"
			 "</html>\n",
			 code, reason(code), code, reason(code));
	if (code >= 400 && code != 404 && code != 401)
		rep->close = true;
	reply(out, cap, rep, code, "text/html", "", body, (size_t)n, head);
}

static uint8_t rnd_byte(struct imds *m)
{
	if (m->rnd_used == sizeof(m->rnd)) {
		size_t got = 0;
		while (got < sizeof(m->rnd)) {
			ssize_t r = getrandom(m->rnd + got, sizeof(m->rnd) - got, 0);
			if (r < 0) {
				if (errno == EINTR)
					continue;
				abort(); /* no randomness: no tokens */
			}
			got += (size_t)r;
		}
		m->rnd_used = 0;
	}
	return m->rnd[m->rnd_used++];
}

static void new_token(struct imds *m, uint64_t expires, char *t)
{
	static const char b64[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	uint8_t raw[IMDS_TOKEN_LEN / 4 * 3];
	for (size_t i = 0; i < sizeof(raw); i++)
		raw[i] = rnd_byte(m);
	for (size_t i = 0, o = 0; i < sizeof(raw); i += 3) {
		uint32_t v = (uint32_t)raw[i] << 16 | (uint32_t)raw[i + 1] << 8 | raw[i + 2];
		t[o++] = b64[v >> 18 & 63];
		t[o++] = b64[v >> 12 & 63];
		t[o++] = b64[v >> 6 & 63];
		t[o++] = b64[v & 63];
	}
	/* The slot that expires first (a free slot has expires 0). */
	struct token *slot = &m->tokens[0];
	for (size_t i = 1; i < IMDS_TOKENS_MAX && slot->expires; i++)
		if (m->tokens[i].expires < slot->expires)
			slot = &m->tokens[i];
	memcpy(slot->t, t, IMDS_TOKEN_LEN);
	slot->expires = expires;
}

/* Constant time in the token's bytes: every live slot is compared in full (which slots
 * are live, i.e. how many tokens exist, is no secret). */
static bool token_ok(const struct imds *m, struct http_str tok, uint64_t now)
{
	if (tok.n != IMDS_TOKEN_LEN)
		return false;
	bool ok = false;
	for (size_t i = 0; i < IMDS_TOKENS_MAX; i++) {
		const struct token *s = &m->tokens[i];
		if (s->expires <= now)
			continue;
		uint8_t d = 0;
		for (size_t k = 0; k < IMDS_TOKEN_LEN; k++)
			d |= (uint8_t)(s->t[k] ^ tok.s[k]);
		ok |= d == 0 && s->expires > now;
	}
	return ok;
}

static bool is_version(const char *p, size_t n)
{
	for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++)
		if (strlen(versions[i]) == n && !memcmp(versions[i], p, n))
			return true;
	return false;
}

void imds_answer(struct imds *m, enum http_result res, const struct http_req *q, uint64_t now,
		 char *out, size_t cap, struct imds_reply *rep)
{
	*rep = (struct imds_reply){.close = res != HTTP_OK || !q->rq_keepalive};
	bool head = res == HTTP_OK && q->rq_method == HTTP_HEAD;
	if (res != HTTP_OK) {
		error(out, cap, rep, q->rq_status ? q->rq_status : 400, false);
		return;
	}
	if (q->rq_forwarded || m->mode == IMDS_DISABLED) {
		error(out, cap, rep, 403, head);
		return;
	}
	/* Strip the query (EC2 ignores it). */
	size_t plen = q->rq_path.n;
	const char *qm = memchr(q->rq_path.s, '?', plen);
	if (qm)
		plen = (size_t)(qm - q->rq_path.s);
	const char *path = q->rq_path.s;
	bool token_path = plen == 17 && !memcmp(path, "/latest/api/token", 17);
	if (q->rq_method == HTTP_PUT) {
		unsigned ttl;
		if (!token_path) {
			error(out, cap, rep, 405, false);
			return;
		}
		if (!q->rq_has_ttl || !http_parse_ttl(q->rq_ttl, &ttl)) {
			error(out, cap, rep, 400, false);
			return;
		}
		char tok[IMDS_TOKEN_LEN], extra[80];
		new_token(m, now + (uint64_t)ttl * 1000000000ull, tok);
		snprintf(extra, sizeof(extra), "X-Aws-Ec2-Metadata-Token-Ttl-Seconds: %u\r\n", ttl);
		reply(out, cap, rep, 200, "text/plain", extra, tok, sizeof(tok), false);
		rep->ttl1 = true;
		return;
	}
	if (q->rq_method != HTTP_GET && q->rq_method != HTTP_HEAD) {
		error(out, cap, rep, 405, false);
		return;
	}
	if (token_path) {
		error(out, cap, rep, 405, head);
		return;
	}
	if (q->rq_has_token ? !token_ok(m, q->rq_token, now) : m->mode == IMDS_REQUIRED) {
		error(out, cap, rep, 401, head);
		return;
	}
	char list[4096];
	const char *body = NULL;
	size_t blen = 0;
	if (plen == 1) { /* "/": the versions */
		size_t o = 0;
		for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++)
			o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%s", i ? "\n" : "",
					      versions[i]);
		body = list;
		blen = o;
	} else {
		const char *v = path + 1, *slash = memchr(v, '/', plen - 1);
		size_t vlen = slash ? (size_t)(slash - v) : plen - 1;
		if (is_version(v, vlen)) {
			const char *rel = slash ? slash + 1 : v + vlen;
			body = imds_lookup(m, rel, (size_t)(path + plen - rel), list, sizeof(list),
					   &blen);
		}
	}
	if (!body) {
		error(out, cap, rep, 404, head);
		return;
	}
	reply(out, cap, rep, 200, "text/plain", "", body, blen, head);
}
