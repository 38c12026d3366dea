/* Unit tests for the audit log (src/controller/audit.c): the chain verifies, continues
 * across audit_open, keeps hostile fields on one line, and audit_verify names the first
 * edited line, a removed line and foreign content; a torn last line is cut off by
 * audit_open (issue 10 item 6), the refusal rate limit bounds lines, and signed anchors
 * (item 15) catch a consistent rewrite of the whole chain, and a witnessed head catches a
 * log cut back.
 */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "controller/audit.h"

static char path[64];

static int setup(void **state)
{
	(void)state;
	strcpy(path, "/tmp/nitro-audit-test-XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(path);
	return 0;
}

static void fill(int n)
{
	char err[256];
	struct audit *a = audit_open(path, err, sizeof(err));
	assert_non_null(a);
	for (int i = 0; i < n; i++)
		assert_int_equal(
		    audit_append(a, 1000 + (uid_t)i, "GET", "/v1/instances", 200, NULL), 0);
	audit_close(a);
}

/* Lines of the file, malloc'd. */
static int read_lines(char *lines[], int max)
{
	FILE *f = fopen(path, "r");
	char *l = NULL;
	size_t cap = 0;
	int n = 0;
	while (n < max && getline(&l, &cap, f) > 0)
		lines[n++] = strdup(l);
	free(l);
	fclose(f);
	return n;
}

static void write_lines(char *lines[], int n, int skip)
{
	FILE *f = fopen(path, "w");
	for (int i = 0; i < n; i++)
		if (i != skip)
			fputs(lines[i], f);
	fclose(f);
}

static void test_chain_verifies_and_continues(void **state)
{
	(void)state;
	char err[256];
	fill(3);
	fill(2); /* a second open continues the chain */
	assert_int_equal(audit_verify(path, err, sizeof(err)), 5);
	struct audit *a = audit_open(path, err, sizeof(err));
	/* Hostile fields: spaces, newline, '%', non-ASCII stay on one line. */
	assert_int_equal(audit_append(a, 0, "POST", "/v1/x y\nz", 400,
				      "bad \"json\"\n% \xff fake prev=00 hash=11"),
			 0);
	audit_close(a);
	assert_int_equal(audit_verify(path, err, sizeof(err)), 6);
	char *l[10];
	int n = read_lines(l, 10);
	assert_int_equal(n, 6);
	assert_non_null(strstr(l[5], "route=/v1/x%20y%0Az"));
	assert_non_null(strstr(l[5], " uid=0 "));
	assert_non_null(strstr(l[0], "prev=0000000000000000"));
	for (int i = 0; i < n; i++)
		free(l[i]);
}

static void test_edited_line_found(void **state)
{
	(void)state;
	char err[256];
	fill(5);
	char *l[10];
	int n = read_lines(l, 10);
	char *s = strstr(l[2], "status=200");
	assert_non_null(s);
	memcpy(s, "status=404", 10);
	write_lines(l, n, -1);
	assert_int_equal(audit_verify(path, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "line 3: hash mismatch (line edited)"));
	for (int i = 0; i < n; i++)
		free(l[i]);
}

static void test_removed_line_found(void **state)
{
	(void)state;
	char err[256];
	fill(5);
	char *l[10];
	int n = read_lines(l, 10);
	write_lines(l, n, 3); /* drop the 4th line */
	assert_int_equal(audit_verify(path, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "line 4: prev does not match line 3"));
	write_lines(l, n, 0); /* drop the first */
	assert_int_equal(audit_verify(path, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "line 1"));
	for (int i = 0; i < n; i++)
		free(l[i]);
}

static void test_foreign_and_torn(void **state)
{
	(void)state;
	char err[256];
	fill(2);
	FILE *f = fopen(path, "a");
	fputs("hello world\n", f);
	fclose(f);
	assert_int_equal(audit_verify(path, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "line 3: not an audit line"));
	assert_null(audit_open(path, err, sizeof(err)));
	f = fopen(path, "w");
	fputs("2026-11-26T19:40:00.123Z uid=1 method=GET", f); /* no newline */
	fclose(f);
	/* A torn last line (all there is) is cut off and reported; the chain starts over. */
	struct audit *a = audit_open(path, err, sizeof(err));
	assert_non_null(a);
	char sample[64];
	assert_int_equal(audit_repaired(a, sample, sizeof(sample)), 41);
	assert_string_equal(sample, "2026-11-26T19:40:00.123Z uid=1 method=GET");
	audit_close(a);
	assert_int_equal(audit_verify(path, err, sizeof(err)), 0);
	assert_int_equal(audit_verify("/nonexistent/audit.log", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "/nonexistent/audit.log"));
}

/* A crash (or a full disk, before) tore the last line: the next open cuts exactly the torn
 * bytes, keeps every complete line, and the chain continues and verifies. */
static void test_torn_tail_cut(void **state)
{
	(void)state;
	char err[256];
	fill(3);
	FILE *f = fopen(path, "a");
	fputs("2026-11-26T19:40:00.123Z uid=7 method=POST route=/v1/vol", f);
	fclose(f);
	assert_int_equal(audit_verify(path, err, sizeof(err)), -1);
	struct audit *a = audit_open(path, err, sizeof(err));
	assert_non_null(a);
	assert_int_equal(audit_repaired(a, NULL, 0), 56);
	assert_int_equal(audit_append(a, 0, "REPAIR", "/audit", 200, "cut"), 0);
	audit_close(a);
	assert_int_equal(audit_verify(path, err, sizeof(err)), 4);
	a = audit_open(path, err, sizeof(err));
	assert_int_equal(audit_repaired(a, NULL, 0), 0);
	audit_close(a);
}

/* 1000 refusals of one uid in a burst get one line; after AUDIT_REFUSAL_MS the next one
 * is logged with the count of those that were not. */
static void test_refusal_rate_limit(void **state)
{
	(void)state;
	char err[256];
	struct audit *a = audit_open(path, err, sizeof(err));
	unsigned long sup = 99, admitted = 0;
	for (int i = 0; i < 1000; i++)
		admitted += audit_refusal_admit(a, 4242, &sup);
	assert_int_equal(admitted, 1);
	assert_true(audit_refusal_admit(a, 4243, &sup)); /* another uid: its own line */
	usleep((AUDIT_REFUSAL_MS + 50) * 1000);
	assert_true(audit_refusal_admit(a, 4242, &sup));
	assert_int_equal(sup, 999);
	/* More uids than the table, cycling (a user with a subordinate uid range): before,
	 * each refusal evicted the oldest entry and every one got a line. Now at most
	 * AUDIT_REFUSAL_UIDS lines a window for all uids, and every refusal not logged is
	 * still counted in a later line. */
	usleep((AUDIT_REFUSAL_MS + 50) * 1000);
	unsigned long total = 0;
	admitted = 0;
	for (int r = 0; r < 10; r++)
		for (uid_t u = 10000; u < 10000 + 2 * AUDIT_REFUSAL_UIDS; u++)
			if (audit_refusal_admit(a, u, &sup)) {
				admitted++;
				total += sup;
			}
	assert_int_equal(admitted, AUDIT_REFUSAL_UIDS);
	assert_int_equal(total, 0);
	/* The next window: 64 lines again, which report what the others owed. */
	usleep((AUDIT_REFUSAL_MS + 50) * 1000);
	for (uid_t u = 10000; u < 10000 + 2 * AUDIT_REFUSAL_UIDS; u++)
		if (audit_refusal_admit(a, u, &sup)) {
			admitted++;
			total += sup;
		}
	print_message("refusal lines %lu, refusals they count %lu\n", admitted, total);
	assert_int_equal(admitted, 2 * AUDIT_REFUSAL_UIDS);
	assert_true(admitted + total <= 11 * 2 * AUDIT_REFUSAL_UIDS);
	assert_true(admitted + total >= 10 * 2 * AUDIT_REFUSAL_UIDS); /* the burst is all counted */
	audit_close(a);
}

/* A toy signer for the anchors: "sig" = hex of a keyed checksum, base64 alphabet only. */
static int toy_sign(void *ctx, const void *msg, size_t len, char *sig, size_t siglen)
{
	unsigned long h = (unsigned long)(uintptr_t)ctx;
	for (size_t i = 0; i < len; i++)
		h = h * 131 + ((const unsigned char *)msg)[i];
	snprintf(sig, siglen, "%016lx", h);
	return 0;
}

static int toy_verify(void *ctx, const void *msg, size_t len, const char *sig)
{
	char want[32];
	toy_sign(ctx, msg, len, want, sizeof(want));
	return strcmp(want, sig) == 0;
}

/* Anchors: signed every AUDIT_ANCHOR_LINES lines and at close; a consistent rewrite of the
 * whole chain (a forged line, every hash recomputed) verifies without the key and is
 * refused with it; lines after the last anchor are reported as unanchored. */
static void test_anchors(void **state)
{
	(void)state;
	char err[512];
	void *key = (void *)(uintptr_t)12345;
	struct audit *a = audit_open(path, err, sizeof(err));
	audit_set_anchor(a, toy_sign, key);
	for (int i = 0; i < 100; i++)
		assert_int_equal(audit_append(a, 1000, "GET", "/v1/volumes", 200, NULL), 0);
	audit_close(a); /* anchors the tail */
	struct audit_report rep;
	long n = audit_verify_anchored(path, toy_verify, key, &rep, err, sizeof(err));
	assert_true(n > 100);
	assert_true(rep.ar_anchors >= 2);
	assert_int_equal(rep.ar_unanchored, 0);
	assert_int_equal(rep.ar_signed_seq, (unsigned long)n - 1);
	/* A wrong key refuses it. */
	assert_int_equal(audit_verify_anchored(path, toy_verify, (void *)1, NULL, err, sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "signature does not verify"));
	/* Reopening continues the count from the last anchor (seq stays right). */
	a = audit_open(path, err, sizeof(err));
	audit_set_anchor(a, toy_sign, key);
	assert_int_equal(audit_append(a, 1, "GET", "/x", 200, NULL), 0);
	assert_int_equal(audit_append(a, 1, "GET", "/y", 200, NULL), 0);
	audit_close(a);
	assert_true(audit_verify_anchored(path, toy_verify, key, &rep, err, sizeof(err)) > 0);
	assert_int_equal(rep.ar_unanchored, 0);
	/* Lines after the last anchor (appended without a signer) are reported. */
	a = audit_open(path, err, sizeof(err));
	assert_int_equal(audit_append(a, 1, "GET", "/z", 200, NULL), 0);
	assert_int_equal(audit_append(a, 1, "GET", "/z", 200, NULL), 0);
	audit_close(a);
	assert_true(audit_verify_anchored(path, toy_verify, key, &rep, err, sizeof(err)) > 0);
	assert_int_equal(rep.ar_unanchored, 2);
}

/* The witnessed head (item 15, GET /v1/host/audit-head): audit_head_now anchors and hands
 * out the head; a log still holding it verifies, one cut back to before it (to an earlier
 * anchor, or to the head's own line) or carrying another signature there is refused. */
static void test_witnessed_head(void **state)
{
	(void)state;
	char err[512];
	void *key = (void *)(uintptr_t)777;
	struct audit *a = audit_open(path, err, sizeof(err));
	audit_set_anchor(a, toy_sign, key);
	for (int i = 0; i < 10; i++)
		assert_int_equal(audit_append(a, 1000, "POST", "/v1/volumes", 201, NULL), 0);
	struct audit_head h, again;
	assert_int_equal(audit_head_now(a, &h), 0);
	assert_int_equal(audit_head_now(a, &again), 0); /* nothing new: the same anchor */
	assert_memory_equal(&h, &again, sizeof(h));
	for (int i = 0; i < 5; i++)
		assert_int_equal(audit_append(a, 1000, "GET", "/v1/volumes", 200, NULL), 0);
	audit_close(a);
	assert_true(audit_verify_witnessed(path, toy_verify, key, &h, NULL, err, sizeof(err)) >
		    (long)h.ah_seq);
	struct audit_head bare = h;
	bare.ah_sig[0] = 0; /* seq and head only */
	assert_true(audit_verify_witnessed(path, NULL, NULL, &bare, NULL, err, sizeof(err)) > 0);
	struct audit_head other = h;
	other.ah_sig[0] = other.ah_sig[0] == '0' ? '1' : '0';
	assert_int_equal(audit_verify_witnessed(path, NULL, NULL, &other, NULL, err, sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "not the witnessed anchor"));
	/* A witnessed seq whose next line number wraps (ULONG_MAX, "seq=-1" through strtoul)
	 * matched no line and passed the "cut back" check vacuously: any log, any head. */
	struct audit_head wrap = bare;
	wrap.ah_seq = ULONG_MAX;
	memset(wrap.ah_head, 'a', 64);
	assert_int_equal(audit_verify_witnessed(path, NULL, NULL, &wrap, NULL, err, sizeof(err)),
			 -1);
	wrap.ah_seq = 0;
	assert_int_equal(audit_verify_witnessed(path, NULL, NULL, &wrap, NULL, err, sizeof(err)),
			 -1);
	char *lines[64];
	int n = read_lines(lines, 64);
	assert_true(n > (int)h.ah_seq + 1);
	/* Cut back to the first anchor (line 2, after the first line): verifies alone. */
	write_lines(lines, 2, -1);
	assert_int_equal(audit_verify_anchored(path, toy_verify, key, NULL, err, sizeof(err)), 2);
	assert_int_equal(audit_verify_witnessed(path, toy_verify, key, &h, NULL, err, sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "cut back"));
	/* Cut to the head's own line (its anchor gone). */
	write_lines(lines, (int)h.ah_seq, -1);
	assert_int_equal(audit_verify_witnessed(path, NULL, NULL, &h, NULL, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "cut back"));
	for (int i = 0; i < n; i++)
		free(lines[i]);
}

static struct audit *shared;

static void *appender(void *arg)
{
	uid_t uid = (uid_t)(uintptr_t)arg;
	for (int i = 0; i < 40; i++)
		if (audit_append(shared, uid, "GET", "/v1/instances/i-1", 200, "concurrent") < 0)
			return (void *)1;
	return NULL;
}

/* Concurrent callers (group commit) and the background mode keep one intact chain. */
static void test_concurrent_and_background(void **state)
{
	(void)state;
	char err[256];
	for (int mode = 0; mode < 2; mode++) {
		shared = audit_open(path, err, sizeof(err));
		assert_non_null(shared);
		if (mode)
			assert_int_equal(audit_set_sync(shared, AUDIT_SYNC_BACKGROUND), 0);
		pthread_t t[8];
		for (uintptr_t i = 0; i < 8; i++)
			assert_int_equal(pthread_create(&t[i], NULL, appender, (void *)(i + 1)), 0);
		for (int i = 0; i < 8; i++) {
			void *r;
			pthread_join(t[i], &r);
			assert_null(r);
		}
		audit_close(shared);
		assert_int_equal(audit_verify(path, err, sizeof(err)), 320 * (mode + 1));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_chain_verifies_and_continues, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_edited_line_found, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_removed_line_found, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_foreign_and_torn, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_concurrent_and_background, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_torn_tail_cut, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_refusal_rate_limit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_anchors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_witnessed_head, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
