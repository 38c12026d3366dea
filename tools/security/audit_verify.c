/* nitro-audit-verify: checks an audit log's hash chain and its signed heads
 * (src/controller/audit.h).
 *
 *   nitro-audit-verify [--key PEM | --state DIR] [--strict] [FILE]
 *
 * Exit 0 with "FILE: N lines, chain intact" (and, with a key, the last signed head and how
 * many lines after it are unanchored), or 1 naming the first bad line. --key PEM is the
 * security chip's attestation public key (the public_key of GET /v1/host/attestation; a
 * private key PEM works too); --state DIR takes nitrod's state folder: the key of
 * DIR/chip/attestation-key.pem and, without FILE, DIR/audit.log. With a key, every anchor's
 * signature must verify and at least one line must be anchored; --strict also refuses
 * unanchored lines after the last signed head (a log of a stopped nitrod ends anchored).
 * --head seq=N,head=HEX[,sig=BASE64] is a signed head an off-host witness recorded earlier
 * (GET /v1/host/audit-head, or an anchor line's detail): the log must still hold it (line N
 * with that hash, anchored by line N + 1 with that signature), so a log cut back to an
 * earlier anchor, or rewritten and re-signed by whoever holds the key, is refused.
 *
 * nitro-audit-verify --append FILE UID METHOD ROUTE STATUS [DETAIL] appends one line
 * (what nitrod does per API call; for tests and tools).
 */
#include "controller/audit.h"
#include "lib/util.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <string.h>

static int verify_sig(void *ctx, const void *msg, size_t len, const char *sig)
{
	unsigned char raw[100];
	size_t sl = strlen(sig);
	if (sl != 88 || EVP_DecodeBlock(raw, (const unsigned char *)sig, (int)sl) != 66)
		return 0;
	EVP_MD_CTX *m = EVP_MD_CTX_new();
	int ok = m && EVP_DigestVerifyInit(m, NULL, NULL, NULL, ctx) == 1 &&
		 EVP_DigestVerify(m, raw, 64, msg, len) == 1;
	EVP_MD_CTX_free(m);
	return ok;
}

static EVP_PKEY *load_key(const char *path)
{
	FILE *f = fopen(path, "re");
	if (!f)
		die("key %s: %m", path);
	EVP_PKEY *k = PEM_read_PUBKEY(f, NULL, NULL, NULL);
	if (!k) {
		rewind(f);
		k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	}
	fclose(f);
	if (!k || EVP_PKEY_get_id(k) != EVP_PKEY_ED25519)
		die("key %s: not an Ed25519 key in PEM", path);
	return k;
}

/* seq=N,head=HEX[,sig=BASE64] */
static bool parse_head(const char *s, struct audit_head *h)
{
	int used = 0;
	memset(h, 0, sizeof(*h));
	if (strncmp(s, "seq=", 4) || s[4] < '1' || s[4] > '9' || /* %lu takes "-1" */
	    sscanf(s, "seq=%lu,head=%64[0-9a-f]%n", &h->ah_seq, h->ah_head, &used) != 2 ||
	    strlen(h->ah_head) != 64 || !h->ah_seq)
		return false;
	s += used;
	if (!*s)
		return true;
	int u2 = 0;
	return sscanf(s, ",sig=%255[A-Za-z0-9+/=]%n", h->ah_sig, &u2) == 1 && !s[u2];
}

int main(int argc, char **argv)
{
	util_set_prog("nitro-audit-verify");
	char err[512];
	if (argc >= 7 && argc <= 8 && !strcmp(argv[1], "--append")) {
		uint64_t uid, status;
		if (!parse_u64(argv[3], 0, 0xffffffff, &uid) ||
		    !parse_u64(argv[6], 0, 999, &status))
			die_usage("--append: UID and STATUS must be numbers");
		struct audit *a = audit_open(argv[2], err, sizeof(err));
		if (!a)
			die("%s", err);
		if (audit_append(a, (uid_t)uid, argv[4], argv[5], (int)status,
				 argc == 8 ? argv[7] : NULL) < 0)
			die("audit log %s: append failed", argv[2]);
		audit_close(a);
		return 0;
	}
	static const char usage[] =
	    "usage: nitro-audit-verify [--key PEM | --state DIR] [--strict] "
	    "[--head seq=N,head=HEX[,sig=B64]] [FILE] | --append FILE UID METHOD ROUTE STATUS "
	    "[DETAIL]";
	const char *key = NULL, *state = NULL, *file = NULL;
	bool strict = false;
	struct audit_head head, *witness = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--head") && i + 1 < argc) {
			if (!parse_head(argv[++i], &head))
				die_usage("--head: seq=N,head=HEX[,sig=BASE64] (N > 0, 64 hex)");
			witness = &head;
		} else if (!strcmp(argv[i], "--key") && i + 1 < argc)
			key = argv[++i];
		else if (!strcmp(argv[i], "--state") && i + 1 < argc)
			state = argv[++i];
		else if (!strcmp(argv[i], "--strict"))
			strict = true;
		else if (argv[i][0] != '-' && !file)
			file = argv[i];
		else
			die_usage("%s", usage);
	}
	char kpath[4096], fpath[4096];
	if (state) {
		if (key)
			die_usage("--key and --state: one of them");
		snprintf(kpath, sizeof(kpath), "%s/chip/attestation-key.pem", state);
		key = kpath;
		if (!file) {
			snprintf(fpath, sizeof(fpath), "%s/audit.log", state);
			file = fpath;
		}
	}
	if (!file)
		die_usage("%s", usage);
	EVP_PKEY *k = key ? load_key(key) : NULL;
	struct audit_report rep;
	long n =
	    audit_verify_witnessed(file, k ? verify_sig : NULL, k, witness, &rep, err, sizeof(err));
	EVP_PKEY_free(k);
	if (n < 0)
		die("%s", err);
	printf("%s: %ld lines, chain intact\n", file, n);
	if (witness)
		printf("%s: holds the witnessed head of line %lu\n", file, witness->ah_seq);
	if (!key) {
		if (rep.ar_anchors)
			printf("%s: %lu anchors not checked (no --key or --state)\n", file,
			       rep.ar_anchors);
		return 0;
	}
	printf("%s: %lu signed heads verify; the last signs line %lu\n", file, rep.ar_anchors,
	       rep.ar_signed_seq);
	if (rep.ar_unanchored) {
		printf("%s: WARNING: %lu lines after the last signed head are unanchored (lines "
		       "%lu-%lu: a rewrite or cut of these is not detectable)\n",
		       file, rep.ar_unanchored, rep.ar_lines - rep.ar_unanchored + 1, rep.ar_lines);
		if (strict)
			die("%s: unanchored lines (--strict)", file);
	}
	return 0;
}
