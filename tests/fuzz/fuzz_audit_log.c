/* libFuzzer target: audit_verify and audit_open (src/controller/audit.c) on hostile logs.
 * Input byte 0 picks the mode:
 *   even: the rest is the log file as is. Either the chain is accepted with no more lines
 *         than newlines, and audit_open can continue it (the appended line verifies), or
 *         the error names the file; a witnessed head (audit_verify_witnessed) is held
 *         only by an accepted log long enough to have it.
 *   odd:  a valid log is written with audit_append (routes and details from the input),
 *         then up to 4 bytes are changed at input-chosen offsets: any real change must be
 *         caught by audit_verify.
 */
// fuzz-extra: src/controller/audit.c -lcrypto
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "controller/audit.h"

#include "fuzz.h"

static char path[64];

static void write_all(const uint8_t *d, size_t n)
{
	FILE *f = fopen(path, "w");
	CHECK(f);
	CHECK(fwrite(d, 1, n, f) == n);
	fclose(f);
}

static void raw(const uint8_t *d, size_t n)
{
	char err[512] = "";
	write_all(d, n);
	long lines = audit_verify(path, err, sizeof(err));
	size_t nl = 0;
	for (size_t i = 0; i < n; i++)
		nl += d[i] == '\n';
	if (lines < 0) {
		CHECK(strstr(err, path));
		return;
	}
	CHECK((size_t)lines <= nl);
	/* A witnessed head (nitro-audit-verify --head): accepted only for a log that is
	 * accepted anyway and reaches the witnessed anchor's line; a refusal names the file. */
	struct audit_head w = {.ah_seq = 1 + n % 8};
	memset(w.ah_head, n & 1 ? 'a' : '0', 64);
	long wl = audit_verify_witnessed(path, NULL, NULL, &w, NULL, err, sizeof(err));
	CHECK(wl < 0 ? strstr(err, path) != NULL : wl == lines && (unsigned long)wl > w.ah_seq);
	struct audit *a = audit_open(path, err, sizeof(err));
	CHECK(a);
	CHECK(audit_append(a, 1, "GET", "/v1/x", 200, "d") == 0);
	audit_close(a);
	CHECK(audit_verify(path, err, sizeof(err)) == lines + 1);
}

static void edited(const uint8_t *d, size_t n)
{
	char err[512];
	write_all(NULL, 0);
	struct audit *a = audit_open(path, err, sizeof(err));
	CHECK(a);
	/* Lines from the input: up to 8 chunks of up to 64 bytes each as the detail. */
	size_t off = 8 < n ? 8 : n;
	int lines = 0;
	for (; lines < 8 && off < n; lines++) {
		size_t len = d[off] % 64;
		char detail[65] = "";
		off++;
		if (len > n - off)
			len = n - off;
		memcpy(detail, d + off, len);
		detail[len] = 0;
		off += len;
		CHECK(audit_append(a, (uid_t)lines, "POST", detail, 200 + lines, detail) == 0);
	}
	if (lines == 0) {
		CHECK(audit_append(a, 0, "GET", "/", 200, NULL) == 0);
		lines = 1;
	}
	audit_close(a);
	CHECK(audit_verify(path, err, sizeof(err)) == lines);
	FILE *f = fopen(path, "r+");
	CHECK(f);
	static char before[1 << 16], after[1 << 16];
	long size = (long)fread(before, 1, sizeof(before), f);
	CHECK(size > 0 && size < (long)sizeof(before));
	for (int i = 0; i < 4 && 1 + 2 * i + 1 < (int)(n < 9 ? n : 9); i++) {
		long pos = (long)(d[1 + 2 * i] * 37u) % size;
		uint8_t nb = d[2 + 2 * i];
		fseek(f, pos, SEEK_SET);
		fputc(nb, f);
	}
	fseek(f, 0, SEEK_SET);
	CHECK((long)fread(after, 1, sizeof(after), f) == size);
	fclose(f);
	if (memcmp(before, after, (size_t)size) != 0)
		CHECK(audit_verify(path, err, sizeof(err)) < 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	if (!path[0])
		snprintf(path, sizeof(path), "/tmp/fuzz-audit-%d.log", (int)getpid());
	if (n == 0)
		return 0;
	if (d[0] & 1)
		edited(d, n);
	else
		raw(d + 1, n - 1);
	unlink(path);
	return 0;
}
