/* libFuzzer target for the IMDS request parser and the service behind it: the input is a
 * guest's byte stream to 169.254.169.254:80. Every request it holds (pipelined) is parsed
 * and answered, as imds_net.c does; the parser never reads past the input, a request's
 * length stays inside it, and every answer is a complete HTTP/1.1 reply within its buffer. */
// fuzz-extra: src/cards/vpc/imds.c src/cards/vpc/imds_http.c
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cards/vpc/imds.h"
#include "cards/vpc/imds_http.h"
#include "fuzz.h"

static struct imds *service(void)
{
	static struct imds *m;
	if (!m) {
		static const char ud[] = "#!/bin/sh\n";
		struct imds_cfg c = {.ic_mode = IMDS_OPTIONAL,
				     .ic_local_ipv4 = "10.0.0.5",
				     .ic_mac = "02:00:0a:00:00:05",
				     .ic_user_data = (const uint8_t *)ud,
				     .ic_user_data_len = sizeof(ud) - 1};
		char err[256];
		m = imds_new(&c, err, sizeof(err));
		CHECK(m);
	}
	return m;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char out[IMDS_REPLY_MAX];
	/* an exact-size copy, so ASan sees any read past the end */
	char *buf = malloc(size ? size : 1);
	CHECK(buf);
	memcpy(buf, data, size);
	size_t off = 0;
	for (unsigned n = 0; n < 64 && off < size; n++) {
		struct http_req r;
		enum http_result res = http_parse(buf + off, size - off, &r);
		if (res == HTTP_MORE)
			break;
		if (res == HTTP_OK) {
			CHECK(r.rq_used > 0 && r.rq_used <= size - off);
			CHECK(r.rq_path.s >= buf + off && r.rq_path.s + r.rq_path.n <= buf + size);
			CHECK(r.rq_path.n >= 1 && r.rq_path.n <= HTTP_PATH_MAX);
		} else {
			CHECK(r.rq_status >= 400 && r.rq_status < 600);
		}
		struct imds_reply rep;
		imds_answer(service(), res, &r, (uint64_t)n * 1000000000ull, out, sizeof(out),
			    &rep);
		CHECK(rep.len > 12 && rep.len <= sizeof(out));
		CHECK(!memcmp(out, "HTTP/1.1 ", 9));
		CHECK(memmem(out, rep.len, "\r\n\r\n", 4));
		if (res != HTTP_OK || rep.close)
			break;
		off += r.rq_used;
	}
	free(buf);
	return 0;
}
