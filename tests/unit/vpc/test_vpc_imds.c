/* The IMDS: its HTTP request parser (hostile input: every status it answers, oversized
 * heads, pipelining, partial requests) and the service's answers (tokens, modes, paths,
 * bodies as EC2 sends them). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cards/vpc/imds.h"
#include "cards/vpc/imds_http.h"
#include "vpctest.h"

#define S_NS 1000000000ull

static enum http_result P(const char *s, struct http_req *r)
{
	return http_parse(s, strlen(s), r);
}

static void parse_get(void **state)
{
	(void)state;
	struct http_req r;
	const char *s = "GET /latest/meta-data/ HTTP/1.1\r\nHost: 169.254.169.254\r\n"
			"x-AWS-ec2-metadata-TOKEN:  abc \r\n\r\n";
	assert_int_equal(P(s, &r), HTTP_OK);
	assert_int_equal(r.rq_method, HTTP_GET);
	assert_int_equal(r.rq_path.n, strlen("/latest/meta-data/"));
	assert_memory_equal(r.rq_path.s, "/latest/meta-data/", r.rq_path.n);
	assert_true(r.rq_has_token);
	assert_int_equal(r.rq_token.n, 3);
	assert_memory_equal(r.rq_token.s, "abc", 3);
	assert_true(r.rq_keepalive);
	assert_int_equal(r.rq_used, strlen(s));
	/* bare LF lines and HTTP/1.0 */
	assert_int_equal(P("GET / HTTP/1.0\n\n", &r), HTTP_OK);
	assert_false(r.rq_keepalive);
	assert_int_equal(P("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &r), HTTP_OK);
	assert_true(r.rq_keepalive);
	assert_int_equal(P("GET / HTTP/1.1\r\nConnection: foo, close\r\n\r\n", &r), HTTP_OK);
	assert_false(r.rq_keepalive);
}

static void partial_and_pipelined(void **state)
{
	(void)state;
	struct http_req r;
	const char *two = "PUT /latest/api/token HTTP/1.1\r\n"
			  "X-aws-ec2-metadata-token-ttl-seconds: 21600\r\nContent-Length: 3\r\n\r\n"
			  "abcGET /x HTTP/1.1\r\n\r\n";
	size_t n = strlen(two);
	size_t first = (size_t)(strstr(two, "GET") - two);
	/* every prefix of the first request is "more" */
	for (size_t i = 0; i < first; i++)
		assert_int_equal(http_parse(two, i, &r), HTTP_MORE);
	assert_int_equal(http_parse(two, n, &r), HTTP_OK);
	assert_int_equal(r.rq_method, HTTP_PUT);
	assert_int_equal(r.rq_used, first);
	assert_int_equal(r.rq_body, 3);
	assert_true(r.rq_has_ttl);
	unsigned ttl;
	assert_true(http_parse_ttl(r.rq_ttl, &ttl));
	assert_int_equal(ttl, 21600);
	assert_int_equal(http_parse(two + first, n - first, &r), HTTP_OK);
	assert_memory_equal(r.rq_path.s, "/x", 2);
	assert_int_equal(r.rq_used, n - first);
}

static void bad_requests(void **state)
{
	(void)state;
	struct http_req r;
	static const struct {
		const char *req;
		unsigned status;
	} cases[] = {
	    {"GET\r\n\r\n", 400},
	    {"GET  / HTTP/1.1\r\n\r\n", 400},
	    {"GET x HTTP/1.1\r\n\r\n", 400},
	    {"GET / HTTP/1.1 \r\n\r\n", 400},
	    {"GET / HTTP/2.0\r\n\r\n", 505},
	    {"GET / HTTP/1.2\r\n\r\n", 505},
	    {"GET / FTP/1.1\r\n\r\n", 400},
	    {"GET /\x01 HTTP/1.1\r\n\r\n", 400},
	    {"GET / HTTP/1.1\r\nNoColon\r\n\r\n", 400},
	    {"GET / HTTP/1.1\r\n: empty\r\n\r\n", 400},
	    {"GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n", 400},
	    {"GET / HTTP/1.1\r\nA: b\rc\r\n\r\n", 400},
	    {"GET / HTTP/1.1\r\nA: b\x01\r\n\r\n", 400},
	    {"GET / HTTP/1.1\r\nBad Name: b\r\n\r\n", 400},
	    {"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 501},
	    {"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx", 400},
	    {"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400},
	    {"GET / HTTP/1.1\r\nContent-Length: 99999\r\n\r\n", 413},
	    {"GET / HTTP/1.1\r\nX-aws-ec2-metadata-token: a\r\n"
	     "X-aws-ec2-metadata-token: b\r\n\r\n",
	     400},
	    {"PUT / HTTP/1.1\r\nX-aws-ec2-metadata-token-ttl-seconds: 1\r\n"
	     "x-aws-ec2-metadata-token-ttl-seconds: 2\r\n\r\n",
	     400},
	    {"GET / HTTP/1.1\r\nConnection: close\r\nConnection: close\r\n\r\n", 400},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum http_result res = P(cases[i].req, &r);
		if (res != HTTP_BAD || r.rq_status != cases[i].status)
			fail_msg("case %zu (%s): %d %u", i, cases[i].req, res, r.rq_status);
	}
}

static void oversized(void **state)
{
	(void)state;
	struct http_req r;
	size_t n = HTTP_HEAD_MAX + 100;
	char *b = malloc(n);
	assert_non_null(b);
	/* a header block that never ends: more until the limit, then 431 */
	memcpy(b, "GET / HTTP/1.1\r\n", 16);
	for (size_t i = 16; i < n; i++)
		b[i] = (i % 64 == 63) ? '\n' : 'a';
	for (size_t i = 16; i + 1 < n; i += 64)
		memcpy(b + i, "X: ", 3);
	assert_int_equal(http_parse(b, HTTP_HEAD_MAX - 1, &r), HTTP_MORE);
	assert_int_equal(http_parse(b, n, &r), HTTP_BAD);
	assert_int_equal(r.rq_status, 431);
	/* a request line longer than any path: 414 before the head is complete */
	memcpy(b, "GET /", 5);
	memset(b + 5, 'a', n - 5);
	assert_int_equal(http_parse(b, HTTP_PATH_MAX + 100, &r), HTTP_BAD);
	assert_int_equal(r.rq_status, 414);
	memcpy(b + HTTP_PATH_MAX + 10, " HTTP/1.1\r\n\r\n", 13);
	assert_int_equal(http_parse(b, HTTP_PATH_MAX + 23, &r), HTTP_BAD);
	assert_int_equal(r.rq_status, 414);
	free(b);
}

static void ttl_values(void **state)
{
	(void)state;
	static const char *good[] = {"1", "60", "21600"};
	static const char *bad[] = {
	    "", "0", "21601", "-1", "+1", "01", "1.5", "abc", "99999999999999999999"};
	unsigned t;
	for (size_t i = 0; i < 3; i++)
		assert_true(http_parse_ttl((struct http_str){good[i], strlen(good[i])}, &t));
	assert_int_equal(t, 21600);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(http_parse_ttl((struct http_str){bad[i], strlen(bad[i])}, &t));
}

/* ---- the service ---- */

struct fx {
	struct imds *m;
	char out[IMDS_REPLY_MAX];
	struct imds_reply rep;
	const char *body;
	size_t blen;
};

static struct imds *make(enum imds_mode mode)
{
	static const char key[] = "ssh-ed25519 AAAAKEY test\n";
	static const char ud[] = "#cloud-config\n";
	struct imds_cfg c = {.ic_mode = mode,
			     .ic_instance_id = "i-0123456789abcdef1",
			     .ic_local_ipv4 = "10.0.0.11",
			     .ic_mac = "02:00:0a:00:00:0b",
			     .ic_subnet_cidr = "10.0.0.0/24",
			     .ic_vpc_cidr = "10.0.0.0/24",
			     .ic_domain = "nitro.internal",
			     .ic_ssh_key = (const uint8_t *)key,
			     .ic_ssh_key_len = strlen(key),
			     .ic_key_name = "k1",
			     .ic_user_data = (const uint8_t *)ud,
			     .ic_user_data_len = strlen(ud)};
	char err[256];
	struct imds *m = imds_new(&c, err, sizeof(err));
	if (!m)
		fail_msg("%s", err);
	return m;
}

/* Sends req; returns the status, body in f->body. */
static unsigned ask(struct fx *f, const char *req, uint64_t now)
{
	struct http_req r;
	enum http_result res = http_parse(req, strlen(req), &r);
	assert_int_not_equal(res, HTTP_MORE);
	imds_answer(f->m, res, &r, now, f->out, sizeof(f->out), &f->rep);
	f->out[f->rep.len < sizeof(f->out) ? f->rep.len : sizeof(f->out) - 1] = 0;
	const char *e = strstr(f->out, "\r\n\r\n");
	assert_non_null(e);
	f->body = e + 4;
	f->blen = f->rep.len - (size_t)(f->body - f->out);
	unsigned code;
	assert_int_equal(sscanf(f->out, "HTTP/1.1 %u ", &code), 1);
	assert_int_equal(code, f->rep.code);
	/* Content-Length says the body's length */
	const char *cl = strstr(f->out, "Content-Length: ");
	assert_non_null(cl);
	if (!strstr(req, "HEAD "))
		assert_int_equal(strtoul(cl + 16, NULL, 10), f->blen);
	return code;
}

static void body_is(struct fx *f, const char *want)
{
	if (f->blen != strlen(want) || memcmp(f->body, want, f->blen))
		fail_msg("body %.*s, want %s", (int)f->blen, f->body, want);
}

static char tok[IMDS_TOKEN_LEN + 1];

static const char *get(const char *path)
{
	static char b[2048];
	snprintf(b, sizeof(b), "GET %s HTTP/1.1\r\nX-aws-ec2-metadata-token: %s\r\n\r\n", path,
		 tok);
	return b;
}

static void token_flow(void **state)
{
	(void)state;
	struct fx f = {.m = make(IMDS_REQUIRED)};
	uint64_t t0 = 1000 * S_NS;
	assert_int_equal(ask(&f, "GET /latest/meta-data/instance-id HTTP/1.1\r\n\r\n", t0), 401);
	assert_int_equal(ask(&f, "PUT /latest/api/token HTTP/1.1\r\n\r\n", t0), 400);
	assert_int_equal(ask(&f,
			     "PUT /latest/api/token HTTP/1.1\r\n"
			     "X-aws-ec2-metadata-token-ttl-seconds: 0\r\n\r\n",
			     t0),
			 400);
	assert_int_equal(ask(&f,
			     "PUT /latest/api/token HTTP/1.1\r\n"
			     "X-aws-ec2-metadata-token-ttl-seconds: 10\r\n"
			     "X-Forwarded-For: 1.1.1.1\r\n\r\n",
			     t0),
			 403);
	assert_false(f.rep.ttl1);
	assert_int_equal(ask(&f,
			     "PUT /latest/api/token HTTP/1.1\r\n"
			     "X-aws-ec2-metadata-token-ttl-seconds: 10\r\n\r\n",
			     t0),
			 200);
	assert_true(f.rep.ttl1);
	assert_int_equal(f.blen, IMDS_TOKEN_LEN);
	assert_non_null(strstr(f.out, "X-Aws-Ec2-Metadata-Token-Ttl-Seconds: 10\r\n"));
	memcpy(tok, f.body, IMDS_TOKEN_LEN);
	assert_int_equal(ask(&f, get("/latest/meta-data/instance-id"), t0), 200);
	assert_false(f.rep.ttl1);
	body_is(&f, "i-0123456789abcdef1");
	/* expired after its TTL */
	assert_int_equal(ask(&f, get("/latest/meta-data/instance-id"), t0 + 10 * S_NS), 401);
	/* a token with one byte changed is unknown */
	tok[5] ^= 1;
	assert_int_equal(ask(&f, get("/latest/meta-data/instance-id"), t0), 401);
	tok[5] ^= 1;
	/* X-Forwarded-For on a GET with a good token: 403 */
	char b[512];
	snprintf(b, sizeof(b),
		 "GET /latest/meta-data/ HTTP/1.1\r\nX-aws-ec2-metadata-token: %s\r\n"
		 "X-Forwarded-For: 10.0.0.1\r\n\r\n",
		 tok);
	assert_int_equal(ask(&f, b, t0), 403);
	/* a GET on the token path, a POST: 405 */
	assert_int_equal(ask(&f, get("/latest/api/token"), t0), 405);
	assert_int_equal(ask(&f, "POST /latest/api/token HTTP/1.1\r\n\r\n", t0), 405);
	assert_int_equal(ask(&f,
			     "PUT /latest/meta-data/ HTTP/1.1\r\n"
			     "X-aws-ec2-metadata-token-ttl-seconds: 10\r\n\r\n",
			     t0),
			 405);
	/* a parse error gets its status and closes */
	struct http_req r;
	enum http_result res = P("GET / HTTP/1.1\r\nTransfer-Encoding: x\r\n\r\n", &r);
	imds_answer(f.m, res, &r, t0, f.out, sizeof(f.out), &f.rep);
	assert_int_equal(f.rep.code, 501);
	assert_true(f.rep.close);
	imds_free(f.m);
}

static void token_table_full(void **state)
{
	(void)state;
	struct fx f = {.m = make(IMDS_REQUIRED)};
	char first[IMDS_TOKEN_LEN + 1] = "";
	for (unsigned i = 0; i < IMDS_TOKENS_MAX + 1; i++) {
		assert_int_equal(ask(&f,
				     "PUT /latest/api/token HTTP/1.1\r\n"
				     "X-aws-ec2-metadata-token-ttl-seconds: 21600\r\n\r\n",
				     S_NS + i),
				 200);
		if (i == 0)
			memcpy(first, f.body, IMDS_TOKEN_LEN);
		memcpy(tok, f.body, IMDS_TOKEN_LEN);
	}
	/* the newest works; the oldest made room for it */
	assert_int_equal(ask(&f, get("/latest/meta-data/ami-id"), 2 * S_NS), 200);
	memcpy(tok, first, IMDS_TOKEN_LEN);
	assert_int_equal(ask(&f, get("/latest/meta-data/ami-id"), 2 * S_NS), 401);
	imds_free(f.m);
}

static void modes(void **state)
{
	(void)state;
	struct fx f = {.m = make(IMDS_OPTIONAL)};
	assert_int_equal(ask(&f, "GET /latest/meta-data/instance-type HTTP/1.1\r\n\r\n", 1), 200);
	body_is(&f, "m5.large");
	/* optional still refuses a present but unknown token */
	memset(tok, 'A', IMDS_TOKEN_LEN);
	assert_int_equal(ask(&f, get("/latest/meta-data/instance-type"), 1), 401);
	imds_free(f.m);
	f.m = make(IMDS_DISABLED);
	assert_int_equal(ask(&f,
			     "PUT /latest/api/token HTTP/1.1\r\n"
			     "X-aws-ec2-metadata-token-ttl-seconds: 10\r\n\r\n",
			     1),
			 403);
	assert_int_equal(ask(&f, "GET /latest/meta-data/ HTTP/1.1\r\n\r\n", 1), 403);
	imds_free(f.m);
	assert_int_equal(imds_parse_mode("optional"), IMDS_OPTIONAL);
	assert_int_equal(imds_parse_mode("Required"), -1);
}

static void paths(void **state)
{
	(void)state;
	struct fx f = {.m = make(IMDS_OPTIONAL)};
	static const struct {
		const char *path, *body;
	} cases[] = {
	    {"/latest/meta-data/local-ipv4", "10.0.0.11"},
	    {"/latest/meta-data/hostname", "ip-10-0-0-11.nitro.internal"},
	    {"/latest/meta-data/local-hostname", "ip-10-0-0-11.nitro.internal"},
	    {"/latest/meta-data/mac", "02:00:0a:00:00:0b"},
	    {"/latest/meta-data/placement/availability-zone", "us-east-1a"},
	    {"/latest/meta-data/placement/region", "us-east-1"},
	    {"/latest/meta-data/public-keys/", "0=k1"},
	    {"/latest/meta-data/public-keys/0/", "openssh-key"},
	    {"/latest/meta-data/public-keys/0=k1/openssh-key", "ssh-ed25519 AAAAKEY test"},
	    {"/latest/meta-data/public-keys/0/openssh-key", "ssh-ed25519 AAAAKEY test"},
	    {"/latest/meta-data/block-device-mapping/", "ami\nroot"},
	    {"/latest/meta-data/network/interfaces/macs/", "02:00:0a:00:00:0b/"},
	    {"/latest/meta-data/network/interfaces/macs/02:00:0a:00:00:0b/local-ipv4s",
	     "10.0.0.11"},
	    {"/latest/meta-data/network/interfaces/macs/02:00:0a:00:00:0b/device-number", "0"},
	    {"/latest/meta-data/network/interfaces/macs/02:00:0a:00:00:0b/vpc-ipv4-cidr-block",
	     "10.0.0.0/24"},
	    {"/latest/user-data", "#cloud-config\n"},
	    {"/latest/", "dynamic\nmeta-data\nuser-data"},
	    {"/latest", "dynamic\nmeta-data\nuser-data"},
	    {"/latest/dynamic/", "instance-identity/"},
	    {"/latest/dynamic/instance-identity/", "document"},
	    {"/", "1.0\n2009-04-04\n2016-09-02\n2018-09-24\n2021-03-23\nlatest"},
	    {"/2009-04-04/meta-data/instance-id", "i-0123456789abcdef1"},
	    {"/2016-09-02/meta-data/instance-id", "i-0123456789abcdef1"},
	    {"/2018-09-24/meta-data/instance-id", "i-0123456789abcdef1"},
	    {"/2021-03-23/meta-data/instance-id?x=1", "i-0123456789abcdef1"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char b[1024];
		snprintf(b, sizeof(b), "GET %s HTTP/1.1\r\n\r\n", cases[i].path);
		if (ask(&f, b, 1) != 200)
			fail_msg("%s: %u", cases[i].path, f.rep.code);
		body_is(&f, cases[i].body);
		assert_non_null(strstr(f.out, "Content-Type: text/plain\r\n"));
	}
	static const char *missing[] = {"/latest/meta-data/instance-id/",
					"/latest/meta-data/nope",
					"/2020-01-01/meta-data/",
					"/latest/meta-data/public-keys/1/openssh-key",
					"/latest/meta-data//",
					"/latest/x"};
	for (size_t i = 0; i < sizeof(missing) / sizeof(missing[0]); i++) {
		char b[1024];
		snprintf(b, sizeof(b), "GET %s HTTP/1.1\r\n\r\n", missing[i]);
		if (ask(&f, b, 1) != 404)
			fail_msg("%s: %u", missing[i], f.rep.code);
		assert_non_null(strstr(f.body, "<title>404 - Not Found</title>"));
	}
	/* the identity document names the instance */
	assert_int_equal(
	    ask(&f, "GET /latest/dynamic/instance-identity/document HTTP/1.1\r\n\r\n", 1), 200);
	assert_non_null(strstr(f.body, "\"instanceId\" : \"i-0123456789abcdef1\""));
	assert_non_null(strstr(f.body, "\"privateIp\" : \"10.0.0.11\""));
	/* HEAD: headers only */
	assert_int_equal(ask(&f, "HEAD /latest/meta-data/ami-id HTTP/1.1\r\n\r\n", 1), 200);
	assert_int_equal(f.blen, 0);
	imds_free(f.m);
}

/* ---- the VPC core's part: what reaches the IMDS, the link-local allowance ---- */

static void core_hands_imds_packets(void **state)
{
	(void)state;
	static struct vt t;
	vt_setup(&t, NULL);
	/* the guest's TCP to 169.254.169.254:80, through the gateway: VPC_TO_IMDS with the
	 * IPv4 packet, no security group (the default group would drop it) */
	size_t n = vt_tcp(t.frame, MAC_GW, MAC_A, "10.0.0.5", "169.254.169.254", 40000, 80, 0x02);
	vt_out_reset(&t);
	assert_int_equal(vpc_from_guest(t.p, t.frame, n, NS, &t.out), VPC_TO_IMDS);
	assert_ptr_equal(t.out.vo_data, t.frame + 14);
	assert_int_equal(t.out.vo_len, n - 14);
	/* another port, UDP, or a spoofed source: dropped */
	n = vt_tcp(t.frame, MAC_GW, MAC_A, "10.0.0.5", "169.254.169.254", 40000, 81, 0x02);
	vt_out_reset(&t);
	assert_int_equal(vpc_from_guest(t.p, t.frame, n, NS, &t.out), VPC_DROP);
	assert_int_equal(t.out.vo_drop, VPC_DROP_NO_ROUTE);
	n = vt_udp(t.frame, MAC_GW, MAC_A, "10.0.0.5", "169.254.169.254", 40000, 80, 8);
	vt_out_reset(&t);
	assert_int_equal(vpc_from_guest(t.p, t.frame, n, NS, &t.out), VPC_DROP);
	n = vt_tcp(t.frame, MAC_GW, MAC_A, "10.0.0.7", "169.254.169.254", 40000, 80, 0x02);
	vt_out_reset(&t);
	assert_int_equal(vpc_from_guest(t.p, t.frame, n, NS, &t.out), VPC_DROP);
	assert_int_equal(t.out.vo_drop, VPC_DROP_SPOOF_OUT);
	/* 1024 packets/s with a 100 ms burst: a burst of 200 at one instant passes ~102 */
	unsigned passed = 0;
	n = vt_tcp(t.frame, MAC_GW, MAC_A, "10.0.0.5", "169.254.169.254", 40001, 80, 0x10);
	for (int i = 0; i < 200; i++) {
		vt_out_reset(&t);
		passed += vpc_from_guest(t.p, t.frame, n, 5 * NS, &t.out) == VPC_TO_IMDS;
	}
	assert_in_range(passed, 100, 104);
	struct vpc_stats st;
	vpc_port_stats(t.p, &st);
	assert_int_equal(st.st_linklocal_allowance_exceeded, 200 - passed);
	assert_int_equal(st.st_drops[VPC_DROP_LINKLOCAL], 200 - passed);
	/* a second later the bucket is full again */
	vt_out_reset(&t);
	assert_int_equal(vpc_from_guest(t.p, t.frame, n, 6 * NS, &t.out), VPC_TO_IMDS);
	char text[8192];
	vpc_stats_format(&st, text, sizeof(text));
	assert_non_null(strstr(text, "linklocal_allowance_exceeded "));
	vt_teardown(&t);
}

static void bad_config(void **state)
{
	(void)state;
	char err[256];
	struct imds_cfg c = {.ic_instance_id = "i-123"};
	assert_null(imds_new(&c, err, sizeof(err)));
	assert_non_null(strstr(err, "instance id"));
	c.ic_instance_id = "i-0123456789ABCDEF0"; /* EC2's ids are lower case */
	assert_null(imds_new(&c, err, sizeof(err)));
	c.ic_instance_id = NULL;
	c.ic_instance_type = "m5.large\r\nX: y";
	assert_null(imds_new(&c, err, sizeof(err)));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(parse_get),
	    cmocka_unit_test(partial_and_pipelined),
	    cmocka_unit_test(bad_requests),
	    cmocka_unit_test(oversized),
	    cmocka_unit_test(ttl_values),
	    cmocka_unit_test(token_flow),
	    cmocka_unit_test(token_table_full),
	    cmocka_unit_test(modes),
	    cmocka_unit_test(paths),
	    cmocka_unit_test(bad_config),
	    cmocka_unit_test(core_hands_imds_packets),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
