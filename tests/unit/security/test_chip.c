/* Unit tests for the security chip (src/securitychip): signed executables accepted, a
 * flipped byte / missing or foreign signature refused with nothing logged, PCR extension
 * and replay across chip_open, measure-once, a corrupt event log refused, the digest cache
 * noticing a rewrite, nitrod's lazily synced self-measurement, and an attestation whose signature
 * verifies over signed_data and fails once anything in it changes; the event log compacted
 * to a signed checkpoint (bounded, same PCRs, replayed, forgeries refused).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "securitychip/chip.h"
#include "securitychip/chip_internal.h" /* c_unsynced: the lazy self-measurement */

struct fx {
	char dir[64];
	char state[96], anchor[96], bin[96], other_anchor[96];
	EVP_PKEY *key, *other;
};

static void write_file(const char *path, const void *d, size_t n)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(d, 1, n, f), n);
	fclose(f);
}

static void write_pub(EVP_PKEY *k, const char *path)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(PEM_write_PUBKEY(f, k), 1);
	fclose(f);
}

static void sha384(const void *d, size_t n, uint8_t out[48])
{
	unsigned int l;
	assert_int_equal(EVP_Digest(d, n, out, &l, EVP_sha384(), NULL), 1);
}

/* PATH.sig = Ed25519(key, SHA-384(file)), as tools/sign.sh makes it. */
static void sign_file(EVP_PKEY *k, const char *path)
{
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	static uint8_t buf[1 << 20];
	size_t n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	uint8_t d[48], sig[64];
	size_t sl = sizeof(sig);
	sha384(buf, n, d);
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	assert_int_equal(EVP_DigestSignInit(c, NULL, NULL, NULL, k), 1);
	assert_int_equal(EVP_DigestSign(c, sig, &sl, d, sizeof(d)), 1);
	EVP_MD_CTX_free(c);
	char sp[128];
	snprintf(sp, sizeof(sp), "%s.sig", path);
	write_file(sp, sig, sl);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	strcpy(f->dir, "/tmp/nitro-chip-test-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->state, sizeof(f->state), "%s/state", f->dir);
	snprintf(f->anchor, sizeof(f->anchor), "%s/anchor.pem", f->dir);
	snprintf(f->other_anchor, sizeof(f->other_anchor), "%s/other.pem", f->dir);
	snprintf(f->bin, sizeof(f->bin), "%s/nitro-hv", f->dir);
	f->key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	f->other = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	write_pub(f->key, f->anchor);
	write_pub(f->other, f->other_anchor);
	char body[4096];
	for (size_t i = 0; i < sizeof(body); i++)
		body[i] = (char)(i * 7);
	write_file(f->bin, body, sizeof(body));
	sign_file(f->key, f->bin);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char cmd[200];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	EVP_PKEY_free(f->key);
	EVP_PKEY_free(f->other);
	free(f);
	return 0;
}

static size_t count_lines(const char *path)
{
	FILE *fp = fopen(path, "r");
	if (!fp)
		return 0;
	size_t n = 0;
	int ch;
	while ((ch = fgetc(fp)) != EOF)
		n += ch == '\n';
	fclose(fp);
	return n;
}

static void test_signed_exec_measured(void **state)
{
	struct fx *f = *state;
	char err[512];
	struct chip *c = chip_open(f->state, f->anchor, err, sizeof(err));
	assert_non_null(c);
	uint8_t d[48], want[48], pcr[48], zero[96] = {0};
	int fd = -1;
	assert_int_equal(chip_measure_exec(c, f->bin, &fd, d, err, sizeof(err)), 0);
	assert_true(fd >= 0);
	close(fd);
	char body[4096];
	for (size_t i = 0; i < sizeof(body); i++)
		body[i] = (char)(i * 7);
	sha384(body, sizeof(body), want);
	assert_memory_equal(d, want, 48);
	/* PCR0 = SHA-384(0^48 || digest) */
	memcpy(zero + 48, d, 48);
	sha384(zero, 96, want);
	assert_int_equal(chip_read_pcr(c, CHIP_PCR_EXEC, pcr), 0);
	assert_memory_equal(pcr, want, 48);
	/* Measured again: same event, not logged twice, PCR unchanged. */
	assert_int_equal(chip_measure_exec(c, f->bin, NULL, NULL, err, sizeof(err)), 0);
	assert_int_equal(chip_read_pcr(c, CHIP_PCR_EXEC, pcr), 0);
	assert_memory_equal(pcr, want, 48);
	chip_close(c);
	char log[128];
	snprintf(log, sizeof(log), "%s/eventlog", f->state);
	assert_int_equal(count_lines(log), 1);
	/* Replayed by a new chip_open. */
	c = chip_open(f->state, f->anchor, err, sizeof(err));
	assert_non_null(c);
	assert_int_equal(chip_read_pcr(c, CHIP_PCR_EXEC, pcr), 0);
	assert_memory_equal(pcr, want, 48);
	assert_int_equal(chip_read_pcr(c, CHIP_NR_PCRS, pcr), -1);
	chip_close(c);
}

/* chip_measure_self: the line is in the log at once, durable only at the next sync (an
 * explicit chip_sync, or any other measurement, even one already logged); a bad signature
 * is refused as by chip_measure_exec. */
static void test_self_measurement_lazy(void **state)
{
	struct fx *f = *state;
	char err[512], log[128];
	snprintf(log, sizeof(log), "%s/eventlog", f->state);
	struct chip *c = chip_open(f->state, f->anchor, err, sizeof(err));
	assert_non_null(c);
	assert_int_equal(chip_measure_self(c, f->bin, err, sizeof(err)), 0);
	assert_int_equal(count_lines(log), 1);
	assert_true(c->c_unsynced);
	assert_int_equal(chip_sync(c, err, sizeof(err)), 0);
	assert_false(c->c_unsynced);
	assert_int_equal(chip_sync(c, err, sizeof(err)), 0); /* nothing pending: no-op */
	uint8_t pcr[48], again[48];
	assert_int_equal(chip_read_pcr(c, CHIP_PCR_EXEC, pcr), 0);
	chip_close(c);

	/* A durable measurement covers a pending lazy line: a new one ... */
	char log2[160];
	snprintf(log2, sizeof(log2), "%s/state2", f->dir);
	c = chip_open(log2, f->anchor, err, sizeof(err));
	assert_non_null(c);
	assert_int_equal(chip_measure_self(c, f->bin, err, sizeof(err)), 0);
	assert_true(c->c_unsynced);
	assert_int_equal(chip_measure_blob(c, CHIP_PCR_CMDLINE, "cmdline", "console=ttyS0",
					   "console=ttyS0", 13, NULL, err, sizeof(err)),
			 0);
	assert_false(c->c_unsynced);
	/* ... or one already logged (measure-once writes nothing, still syncs). */
	chip_close(c);
	snprintf(log2, sizeof(log2), "%s/state3", f->dir);
	c = chip_open(log2, f->anchor, err, sizeof(err));
	assert_non_null(c);
	assert_int_equal(chip_measure_self(c, f->bin, err, sizeof(err)), 0);
	assert_true(c->c_unsynced);
	assert_int_equal(chip_measure_exec(c, f->bin, NULL, NULL, err, sizeof(err)), 0);
	assert_false(c->c_unsynced);
	assert_int_equal(chip_read_pcr(c, CHIP_PCR_EXEC, again), 0);
	assert_memory_equal(pcr, again, 48); /* the same event extends the same way */
	chip_close(c);

	/* A foreign signature: refused, nothing written. */
	snprintf(log2, sizeof(log2), "%s/state4", f->dir);
	c = chip_open(log2, f->other_anchor, err, sizeof(err));
	assert_non_null(c);
	assert_int_equal(chip_measure_self(c, f->bin, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "signature"));
	assert_false(c->c_unsynced);
	snprintf(log2, sizeof(log2), "%s/state4/eventlog", f->dir);
	assert_int_equal(count_lines(log2), 0);
	chip_close(c);
}

static void test_flipped_byte_refused(void **state)
{
	struct fx *f = *state;
	char err[512];
	int fd = open(f->bin, O_RDWR);
	uint8_t b;
	assert_int_equal(pread(fd, &b, 1, 1000), 1);
	b ^= 0x01;
	assert_int_equal(pwrite(fd, &b, 1, 1000), 1);
	close(fd);
	struct chip *c = chip_open(f->state, f->anchor, err, sizeof(err));
	assert_non_null(c);
	int out = -1;
	assert_int_equal(chip_measure_exec(c, f->bin, &out, NULL, err, sizeof(err)), -1);
	assert_int_equal(out, -1);
	assert_non_null(strstr(err, f->bin));
	assert_non_null(strstr(err, "signature does not verify with trust anchor"));
	uint8_t pcr[48], zero[48] = {0};
	chip_read_pcr(c, CHIP_PCR_EXEC, pcr);
	assert_memory_equal(pcr, zero, 48);
	chip_close(c);
	char log[128];
	snprintf(log, sizeof(log), "%s/eventlog", f->state);
	assert_int_equal(count_lines(log), 0);
}

static void test_missing_and_foreign_signature(void **state)
{
	struct fx *f = *state;
	char err[512];
	/* Signed by a key that is not the anchor. */
	struct chip *c = chip_open(f->state, f->other_anchor, err, sizeof(err));
	assert_non_null(c);
	assert_int_equal(chip_measure_exec(c, f->bin, NULL, NULL, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "does not verify"));
	chip_close(c);
	char sp[128];
	snprintf(sp, sizeof(sp), "%s.sig", f->bin);
	/* A truncated signature, then none. */
	truncate(sp, 10);
	c = chip_open(f->state, f->anchor, err, sizeof(err));
	assert_int_equal(chip_measure_exec(c, f->bin, NULL, NULL, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not 64 bytes"));
	unlink(sp);
	assert_int_equal(chip_measure_exec(c, f->bin, NULL, NULL, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "no signature"));
	chip_close(c);
	/* No anchor at all. */
	assert_null(chip_open(f->state, "/nonexistent/anchor.pem", err, sizeof(err)));
	assert_non_null(strstr(err, "/nonexistent/anchor.pem"));
}

static void test_cache_sees_rewrite(void **state)
{
	struct fx *f = *state;
	char err[512];
	struct chip *c = chip_open(f->state, f->anchor, err, sizeof(err));
	uint8_t d1[48], d2[48];
	assert_int_equal(
	    chip_measure_file(c, CHIP_PCR_KERNEL, "kernel", f->bin, d1, err, sizeof(err)), 0);
	/* Same size, new content: ctime changes even if mtime were restored. */
	int fd = open(f->bin, O_RDWR);
	assert_int_equal(pwrite(fd, "XYZ", 3, 0), 3);
	close(fd);
	assert_int_equal(
	    chip_measure_file(c, CHIP_PCR_KERNEL, "kernel", f->bin, d2, err, sizeof(err)), 0);
	assert_memory_not_equal(d1, d2, 48);
	/* Bad arguments. */
	assert_int_equal(chip_measure_file(c, 99, "kernel", f->bin, NULL, err, sizeof(err)), -1);
	assert_int_equal(chip_measure_file(c, 1, "bad type!", f->bin, NULL, err, sizeof(err)), -1);
	assert_int_equal(chip_measure_file(c, 1, "kernel", f->dir, NULL, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not a regular file"));
	chip_close(c);
}

/* chip_measure_fd measures the open file it is given (not whatever its path names later),
 * leaves the fd's offset alone; chip_measure_digest records a digest as given. */
static void test_measure_fd_and_digest(void **state)
{
	struct fx *f = *state;
	char err[512];
	struct chip *c = chip_open(f->state, f->anchor, err, sizeof(err));
	assert_non_null(c);
	static uint8_t body[4096];
	int fd = open(f->bin, O_RDONLY);
	assert_int_equal(read(fd, body, sizeof(body)), (ssize_t)sizeof(body));
	uint8_t want[48], d[48];
	sha384(body, sizeof(body), want);
	/* The path now names another file: the open one is measured. */
	char moved[128];
	snprintf(moved, sizeof(moved), "%s.old", f->bin);
	assert_int_equal(rename(f->bin, moved), 0);
	write_file(f->bin, "other", 5);
	assert_int_equal(
	    chip_measure_fd(c, CHIP_PCR_KERNEL, "kernel", fd, "/k/path", d, NULL, err, sizeof(err)),
	    0);
	assert_memory_equal(d, want, 48);
	assert_int_equal(lseek(fd, 0, SEEK_CUR), (off_t)sizeof(body));
	/* With sha256_out: the SHA-256 of the same bytes, from the same pass (the cached entry
	 * without one is not enough), then from the cache. */
	uint8_t s256[32], want256[32], d2[48];
	unsigned int n256 = 0;
	assert_int_equal(EVP_Digest(body, sizeof(body), want256, &n256, EVP_sha256(), NULL), 1);
	for (int round = 0; round < 2; round++) {
		memset(s256, 0, sizeof(s256));
		assert_int_equal(chip_measure_fd(c, CHIP_PCR_INITRD, "initrd", fd, "/k/path", d2,
						 s256, err, sizeof(err)),
				 0);
		assert_memory_equal(d2, want, 48);
		assert_memory_equal(s256, want256, 32);
	}
	close(fd);
	uint8_t pcr[48], expect[48], buf[96] = {0};
	memcpy(buf + 48, want, 48);
	sha384(buf, sizeof(buf), expect);
	chip_read_pcr(c, CHIP_PCR_KERNEL, pcr);
	assert_memory_equal(pcr, expect, 48);
	/* Not a regular file. */
	int dfd = open(f->dir, O_RDONLY | O_DIRECTORY);
	assert_int_equal(
	    chip_measure_fd(c, CHIP_PCR_KERNEL, "kernel", dfd, "/a/dir", d, NULL, err, sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "not a regular file"));
	close(dfd);
	/* A digest computed elsewhere, logged as given. */
	uint8_t vd[48];
	memset(vd, 0xab, sizeof(vd));
	size_t before = count_lines(c->c_log_path);
	assert_int_equal(chip_measure_digest(c, CHIP_PCR_KERNEL, "vmlinux", "from-kernel=x", vd,
					     err, sizeof(err)),
			 0);
	assert_int_equal(count_lines(c->c_log_path), before + 1);
	memcpy(buf, expect, 48);
	memcpy(buf + 48, vd, 48);
	sha384(buf, sizeof(buf), expect);
	chip_read_pcr(c, CHIP_PCR_KERNEL, pcr);
	assert_memory_equal(pcr, expect, 48);
	assert_int_equal(chip_measure_digest(c, 99, "vmlinux", "x", vd, err, sizeof(err)), -1);
	chip_close(c);
}

static void test_corrupt_log_refused(void **state)
{
	struct fx *f = *state;
	char err[512], log[128];
	struct chip *c = chip_open(f->state, f->anchor, err, sizeof(err));
	assert_int_equal(chip_measure_blob(c, CHIP_PCR_CMDLINE, "cmdline", "console=ttyS0 x\ny",
					   "console=ttyS0", 13, NULL, err, sizeof(err)),
			 0);
	chip_close(c);
	snprintf(log, sizeof(log), "%s/eventlog", f->state);
	/* The description's space and newline were escaped: one line. */
	assert_int_equal(count_lines(log), 1);
	FILE *fp = fopen(log, "a");
	fputs("1 9 exec zz nonsense\n", fp);
	fclose(fp);
	assert_null(chip_open(f->state, f->anchor, err, sizeof(err)));
	assert_non_null(strstr(err, "line 2"));
	truncate(log, 10); /* a torn line */
	assert_null(chip_open(f->state, f->anchor, err, sizeof(err)));
	assert_non_null(strstr(err, "incomplete"));
}

static json_t *attest(struct chip *c, const char *nonce)
{
	char err[512];
	char *s = chip_attestation(c, nonce, err, sizeof(err));
	assert_non_null(s);
	json_t *j = json_loads(s, 0, NULL);
	free(s);
	assert_non_null(j);
	return j;
}

static int verify_doc(json_t *j, const char *data)
{
	const char *pem = json_string_value(json_object_get(j, "public_key"));
	const char *sig64 = json_string_value(json_object_get(j, "signature"));
	BIO *b = BIO_new_mem_buf(pem, -1);
	EVP_PKEY *k = PEM_read_bio_PUBKEY(b, NULL, NULL, NULL);
	BIO_free(b);
	assert_non_null(k);
	uint8_t sig[100];
	int sl = EVP_DecodeBlock(sig, (const uint8_t *)sig64, (int)strlen(sig64));
	assert_true(sl >= 64);
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	EVP_DigestVerifyInit(c, NULL, NULL, NULL, k);
	int ok = EVP_DigestVerify(c, sig, 64, (const uint8_t *)data, strlen(data));
	EVP_MD_CTX_free(c);
	EVP_PKEY_free(k);
	return ok;
}

static void test_attestation(void **state)
{
	struct fx *f = *state;
	char err[512];
	struct chip *c = chip_open(f->state, f->anchor, err, sizeof(err));
	assert_int_equal(chip_measure_exec(c, f->bin, NULL, NULL, err, sizeof(err)), 0);
	json_t *j = attest(c, "nonce-1234");
	const char *data = json_string_value(json_object_get(j, "signed_data"));
	assert_non_null(data);
	assert_non_null(strstr(data, "nonce=nonce-1234\n"));
	assert_int_equal(verify_doc(j, data), 1);
	/* One changed character in the signed data: the signature fails. */
	char *bad = strdup(data);
	char *p = strstr(bad, "pcr0=") + 5;
	*p = *p == '0' ? '1' : '0';
	assert_int_not_equal(verify_doc(j, bad), 1);
	free(bad);
	/* The PCR in signed_data matches the pcrs object and the event log replays to it. */
	const char *pcr0 = json_string_value(json_object_get(json_object_get(j, "pcrs"), "0"));
	char line[120];
	snprintf(line, sizeof(line), "pcr0=%s\n", pcr0);
	assert_non_null(strstr(data, line));
	json_t *ev = json_array_get(json_object_get(j, "event_log"), 0);
	assert_string_equal(json_string_value(json_object_get(ev, "type")), "exec");
	json_decref(j);
	/* The key persists (0600) and is reused. */
	char kp[128];
	snprintf(kp, sizeof(kp), "%s/attestation-key.pem", f->state);
	struct stat st;
	assert_int_equal(stat(kp, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	chip_close(c);
	c = chip_open(f->state, f->anchor, err, sizeof(err));
	json_t *j2 = attest(c, "n2");
	assert_int_equal(verify_doc(j2, json_string_value(json_object_get(j2, "signed_data"))), 1);
	json_decref(j2);
	/* Bad nonces. */
	assert_null(chip_attestation(c, "", err, sizeof(err)));
	assert_null(chip_attestation(c, "has space", err, sizeof(err)));
	assert_null(chip_attestation(c, NULL, err, sizeof(err)));
	char longn[200];
	memset(longn, 'a', sizeof(longn) - 1);
	longn[199] = 0;
	assert_null(chip_attestation(c, longn, err, sizeof(err)));
	chip_close(c);
}

/* PCRs from a replay of every digest measured, without any checkpoint. */
static void expected_pcrs(const uint8_t (*digests)[48], const unsigned *pcrs, size_t n,
			  uint8_t out[CHIP_NR_PCRS][48])
{
	memset(out, 0, CHIP_NR_PCRS * 48);
	for (size_t i = 0; i < n; i++) {
		uint8_t buf[96];
		memcpy(buf, out[pcrs[i]], 48);
		memcpy(buf + 48, digests[i], 48);
		sha384(buf, sizeof(buf), out[pcrs[i]]);
	}
}

static void assert_pcrs(struct chip *c, uint8_t want[CHIP_NR_PCRS][48])
{
	for (unsigned p = 0; p < CHIP_NR_PCRS; p++) {
		uint8_t v[48];
		assert_int_equal(chip_read_pcr(c, p, v), 0);
		assert_memory_equal(v, want[p], 48);
	}
}

/* Issue 10 item 6: every launch appends an event, replayed at each start and sent in
 * each attestation. 1000 launches (and a reboot of the chip every 100) with a bound of
 * 64 events: the log stays small, the PCRs are those of the uncompacted log, the
 * attestation replays from its checkpoint, and a forged checkpoint is refused. */
static void test_event_log_compaction(void **state)
{
	struct fx *f = *state;
	char err[512], log[128];
	snprintf(log, sizeof(log), "%s/eventlog", f->state);
	enum { N = 1000 };
	static uint8_t digests[N][48];
	static unsigned pcrs[N];
	struct chip *c = chip_open(f->state, f->anchor, err, sizeof(err));
	assert_non_null(c);
	chip_set_log_max(c, 64);
	off_t biggest = 0;
	for (unsigned i = 0; i < N; i++) {
		char desc[96];
		snprintf(desc, sizeof(desc), "i-%u,launch=%u,kernel=abc", i % 7, i);
		pcrs[i] = i % 3 ? CHIP_PCR_CONFIG : CHIP_PCR_CMDLINE;
		assert_int_equal(chip_measure_blob(c, pcrs[i], "launch", desc, desc, strlen(desc),
						   digests[i], err, sizeof(err)),
				 0);
		struct stat st;
		assert_int_equal(stat(log, &st), 0);
		if (st.st_size > biggest)
			biggest = st.st_size;
		if (i % 100 == 99) { /* a reboot: replayed from the checkpoint */
			chip_close(c);
			c = chip_open(f->state, f->anchor, err, sizeof(err));
			assert_non_null(c);
			chip_set_log_max(c, 64);
		}
	}
	/* 65 event lines at most, plus the checkpoint (~1 KiB): under 16 KiB, where 1000
	 * lines were ~100 KiB. */
	assert_true(count_lines(log) <= 66);
	assert_true(biggest < 16384);
	uint8_t want[CHIP_NR_PCRS][48];
	expected_pcrs((const uint8_t(*)[48])digests, pcrs, N, want);
	assert_pcrs(c, want);
	/* The attestation: signed, with the checkpoint whose own signature verifies. */
	json_t *j = attest(c, "after-compaction");
	const char *data = json_string_value(json_object_get(j, "signed_data"));
	assert_int_equal(verify_doc(j, data), 1);
	json_t *cp = json_object_get(j, "checkpoint");
	assert_non_null(cp);
	assert_non_null(strstr(data, "checkpoint="));
	json_t *cpdoc = json_pack("{s:O, s:O}", "public_key", json_object_get(j, "public_key"),
				  "signature", json_object_get(cp, "signature"));
	assert_int_equal(verify_doc(cpdoc, json_string_value(json_object_get(cp, "signed_data"))),
			 1);
	json_decref(cpdoc);
	/* Replayed from the checkpoint's PCRs, the events give the signed PCRs. */
	uint8_t pcr[CHIP_NR_PCRS][48];
	for (unsigned p = 0; p < CHIP_NR_PCRS; p++) {
		char key[4];
		snprintf(key, sizeof(key), "%u", p);
		const char *h =
		    json_string_value(json_object_get(json_object_get(cp, "pcrs"), key));
		for (int k = 0; k < 48; k++)
			sscanf(h + 2 * k, "%2hhx", &pcr[p][k]);
	}
	size_t ne = json_array_size(json_object_get(j, "event_log"));
	assert_true(ne >= 32 && ne <= 64);
	for (size_t i = 0; i < ne; i++) {
		json_t *e = json_array_get(json_object_get(j, "event_log"), i);
		unsigned p = (unsigned)json_integer_value(json_object_get(e, "pcr"));
		const char *h = json_string_value(json_object_get(e, "sha384"));
		uint8_t buf[96];
		memcpy(buf, pcr[p], 48);
		for (int k = 0; k < 48; k++)
			sscanf(h + 2 * k, "%2hhx", &buf[48 + k]);
		sha384(buf, sizeof(buf), pcr[p]);
		assert_int_equal(json_integer_value(json_object_get(e, "seq")),
				 json_integer_value(json_object_get(cp, "seq")) + (json_int_t)i);
	}
	assert_memory_equal(pcr, want, sizeof(pcr));
	char cptext[1024];
	snprintf(cptext, sizeof(cptext), "%s",
		 json_string_value(json_object_get(cp, "signed_data")));
	json_decref(j);
	chip_close(c);

	/* Forged checkpoints: a PCR changed (signature kept), the right text signed by
	 * another key, a checkpoint line after an event: each refused at replay. */
	FILE *fp = fopen(log, "r");
	static char text[1 << 16];
	size_t n = fread(text, 1, sizeof(text) - 1, fp);
	fclose(fp);
	text[n] = 0;
	assert_non_null(strstr(text, " checkpoint pcr0="));
	char *pcr4 = strstr(text, "pcr4=") + 5;
	char keep = *pcr4;
	*pcr4 = keep == 'a' ? 'b' : 'a';
	write_file(log, text, n);
	assert_null(chip_open(f->state, f->anchor, err, sizeof(err)));
	assert_non_null(strstr(err, "forged checkpoint"));
	*pcr4 = keep;
	char *sig = strstr(text, ",sig=") + 5;
	uint8_t raw[64];
	size_t sl = sizeof(raw);
	EVP_MD_CTX *m = EVP_MD_CTX_new();
	assert_int_equal(EVP_DigestSignInit(m, NULL, NULL, NULL, f->other), 1);
	char *nl = strchr(text, '\n');
	assert_int_equal(EVP_DigestSign(m, raw, &sl, (uint8_t *)cptext, strlen(cptext)), 1);
	EVP_MD_CTX_free(m);
	char saved[89];
	memcpy(saved, sig, 88);
	EVP_EncodeBlock((unsigned char *)sig, raw, 64);
	sig[88] = '\n'; /* EncodeBlock's NUL */
	write_file(log, text, n);
	assert_null(chip_open(f->state, f->anchor, err, sizeof(err)));
	assert_non_null(strstr(err, "forged checkpoint"));
	memcpy(sig, saved, 88);
	write_file(log, text, n);
	c = chip_open(f->state, f->anchor, err, sizeof(err));
	assert_non_null(c);
	assert_pcrs(c, want);
	chip_close(c);
	/* The first line only: a checkpoint after an event is no event line. */
	char twice[1 << 17];
	size_t first = (size_t)(nl - text) + 1;
	memcpy(twice, nl + 1, n - first);
	memcpy(twice + n - first, text, first);
	write_file(log, twice, n);
	assert_null(chip_open(f->state, f->anchor, err, sizeof(err)));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_signed_exec_measured, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_self_measurement_lazy, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_flipped_byte_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_missing_and_foreign_signature, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cache_sees_rewrite, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_measure_fd_and_digest, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_corrupt_log_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_attestation, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_event_log_compaction, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
