/* The IMDS HTTP request parser (contract: imds_http.h). */
#include "cards/vpc/imds_http.h"

#include <string.h>

static bool is_tchar(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

static bool ieq(struct http_str a, const char *b)
{
	size_t n = strlen(b);
	if (a.n != n)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char x = (unsigned char)a.s[i], y = (unsigned char)b[i];
		if (x >= 'A' && x <= 'Z')
			x = (unsigned char)(x + 32);
		if (y >= 'A' && y <= 'Z')
			y = (unsigned char)(y + 32);
		if (x != y)
			return false;
	}
	return true;
}

static enum http_result bad(struct http_req *r, unsigned status)
{
	r->rq_status = status;
	return HTTP_BAD;
}

/* The end of the head ("\r\n\r\n" or "\n\n"): the offset just after it, or 0. */
static size_t head_end(const char *b, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (b[i] != '\n')
			continue;
		if (i + 1 < len && b[i + 1] == '\n')
			return i + 2;
		if (i + 2 < len && b[i + 1] == '\r' && b[i + 2] == '\n')
			return i + 3;
	}
	return 0;
}

/* One line [p, end of line): returns its length without CR/LF; *next after the LF. A bare
 * CR inside is an error (-1). */
static long line_at(const char *b, size_t len, size_t p, size_t *next)
{
	for (size_t i = p; i < len; i++) {
		if (b[i] == '\n') {
			size_t e = i;
			if (e > p && b[e - 1] == '\r')
				e--;
			for (size_t k = p; k < e; k++)
				if (b[k] == '\r')
					return -1;
			*next = i + 1;
			return (long)(e - p);
		}
	}
	return -1;
}

static enum http_result request_line(const char *l, size_t n, struct http_req *r)
{
	size_t i = 0;
	while (i < n && is_tchar((unsigned char)l[i]))
		i++;
	if (i == 0 || i >= n || l[i] != ' ')
		return bad(r, 400);
	struct http_str m = {l, i};
	if (m.n == 3 && !memcmp(l, "GET", 3))
		r->rq_method = HTTP_GET;
	else if (m.n == 4 && !memcmp(l, "HEAD", 4))
		r->rq_method = HTTP_HEAD;
	else if (m.n == 3 && !memcmp(l, "PUT", 3))
		r->rq_method = HTTP_PUT;
	else
		r->rq_method = HTTP_OTHER;
	size_t ps = ++i;
	while (i < n && l[i] != ' ') {
		unsigned char c = (unsigned char)l[i];
		if (c <= 0x20 || c >= 0x7f)
			return bad(r, 400);
		i++;
	}
	if (i == ps || i >= n)
		return bad(r, 400);
	if (i - ps > HTTP_PATH_MAX)
		return bad(r, 414);
	r->rq_path = (struct http_str){l + ps, i - ps};
	if (l[ps] != '/')
		return bad(r, 400);
	i++;
	if (n - i != 8 || memcmp(l + i, "HTTP/1.", 7))
		return bad(r, (n - i == 8 && !memcmp(l + i, "HTTP/", 5)) ? 505 : 400);
	char v = l[i + 7];
	if (v != '0' && v != '1')
		return bad(r, 505);
	r->rq_minor = (unsigned)(v - '0');
	r->rq_keepalive = r->rq_minor == 1;
	return HTTP_OK;
}

static struct http_str trim(const char *s, size_t n)
{
	while (n && (*s == ' ' || *s == '\t'))
		s++, n--;
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	return (struct http_str){s, n};
}

static bool parse_size(struct http_str v, size_t max, size_t *out)
{
	size_t x = 0;
	if (v.n == 0 || v.n > 10)
		return false;
	for (size_t i = 0; i < v.n; i++) {
		if (v.s[i] < '0' || v.s[i] > '9')
			return false;
		x = x * 10 + (size_t)(v.s[i] - '0');
	}
	if (x > max)
		return false;
	*out = x;
	return true;
}

bool http_parse_ttl(struct http_str v, unsigned *ttl)
{
	size_t x;
	if (v.n == 0 || v.s[0] == '0' || !parse_size(v, 21600, &x) || x < 1)
		return false;
	*ttl = (unsigned)x;
	return true;
}

/* Does a Connection header value list the token? */
static bool conn_has(struct http_str v, const char *tok)
{
	size_t i = 0;
	while (i < v.n) {
		size_t s = i;
		while (i < v.n && v.s[i] != ',')
			i++;
		if (ieq(trim(v.s + s, i - s), tok))
			return true;
		i++;
	}
	return false;
}

enum http_result http_parse(const char *buf, size_t len, struct http_req *r)
{
	memset(r, 0, sizeof(*r));
	/* Leading empty lines before a request are allowed (RFC 9112 2.2). */
	size_t p = 0;
	while (p < len && p < 64 && (buf[p] == '\r' || buf[p] == '\n'))
		p++;
	size_t end = head_end(buf + p, len - p > HTTP_HEAD_MAX ? HTTP_HEAD_MAX : len - p);
	if (!end) {
		if (len - p >= HTTP_HEAD_MAX)
			return bad(r, 431);
		/* A request line longer than the path allows will never be good. */
		size_t i = p;
		while (i < len && buf[i] != '\n')
			i++;
		if (i == len && len - p > HTTP_PATH_MAX + 32)
			return bad(r, 414);
		return HTTP_MORE;
	}
	end += p;
	size_t next;
	long n = line_at(buf, end, p, &next);
	if (n <= 0)
		return bad(r, 400);
	enum http_result res = request_line(buf + p, (size_t)n, r);
	if (res != HTTP_OK)
		return res;
	bool have_len = false, have_conn = false;
	for (p = next;;) {
		n = line_at(buf, end, p, &next);
		if (n < 0)
			return bad(r, 400);
		if (n == 0)
			break;
		const char *l = buf + p;
		if (l[0] == ' ' || l[0] == '\t') /* obs-fold */
			return bad(r, 400);
		size_t i = 0;
		while (i < (size_t)n && is_tchar((unsigned char)l[i]))
			i++;
		if (i == 0 || i >= (size_t)n || l[i] != ':')
			return bad(r, 400);
		for (size_t k = i + 1; k < (size_t)n; k++) {
			unsigned char c = (unsigned char)l[k];
			if ((c < 0x20 && c != '\t') || c == 0x7f)
				return bad(r, 400);
		}
		struct http_str name = {l, i}, val = trim(l + i + 1, (size_t)n - i - 1);
		if (ieq(name, "x-forwarded-for")) {
			r->rq_forwarded = true;
		} else if (ieq(name, "x-aws-ec2-metadata-token")) {
			if (r->rq_has_token)
				return bad(r, 400);
			r->rq_has_token = true;
			r->rq_token = val;
		} else if (ieq(name, "x-aws-ec2-metadata-token-ttl-seconds")) {
			if (r->rq_has_ttl)
				return bad(r, 400);
			r->rq_has_ttl = true;
			r->rq_ttl = val;
		} else if (ieq(name, "content-length")) {
			if (have_len || !parse_size(val, (size_t)-1 / 2, &r->rq_body))
				return bad(r, 400);
			if (r->rq_body > HTTP_BODY_MAX)
				return bad(r, 413);
			have_len = true;
		} else if (ieq(name, "transfer-encoding")) {
			return bad(r, 501);
		} else if (ieq(name, "connection")) {
			if (have_conn)
				return bad(r, 400);
			have_conn = true;
			if (conn_has(val, "close"))
				r->rq_keepalive = false;
			else if (r->rq_minor == 0 && conn_has(val, "keep-alive"))
				r->rq_keepalive = true;
		}
		p = next;
	}
	if (len - end < r->rq_body)
		return HTTP_MORE;
	r->rq_used = end + r->rq_body;
	return HTTP_OK;
}
