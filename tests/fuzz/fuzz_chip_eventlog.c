/* libFuzzer target: the security chip's event-log replay (chip_open in
 * src/securitychip/chip.c) on a hostile STATE_DIR/eventlog. Either chip_open refuses it with
 * a message naming the log, or it accepts it and an attestation over it can be made whose
 * signed data counts exactly the log's lines (a checkpoint line aside). An odd first byte
 * puts a valid event line in front of the rest, bit 1 a checkpoint line in the exact form
 * (src/securitychip/checkpoint.c), so the fuzzer starts from the format.
 */
// clang-format off
// fuzz-extra: src/securitychip/chip.c src/securitychip/attest.c src/securitychip/checkpoint.c -lcrypto -ljansson
// clang-format on
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "securitychip/chip.h"

#include "fuzz.h"

static char dir[64], anchor[96], log_path[96];

static void init(void)
{
	snprintf(dir, sizeof(dir), "/tmp/fuzz-chip-%d", (int)getpid());
	mkdir(dir, 0700);
	snprintf(anchor, sizeof(anchor), "%s/anchor.pem", dir);
	snprintf(log_path, sizeof(log_path), "%s/eventlog", dir);
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	FILE *f = fopen(anchor, "w");
	CHECK(k && f && PEM_write_PUBKEY(f, k) == 1);
	fclose(f);
	EVP_PKEY_free(k);
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	if (!dir[0])
		init();
	static const char valid[] =
	    "0 0 exec 00112233445566778899aabbccddeeff00112233445566778899aa"
	    "bbccddeeff00112233445566778899aabbccddeeff /usr/bin/x\n";
	bool prefix = n && (d[0] & 1), cp = n && (d[0] & 2);
	if (n) {
		d++;
		n--;
	}
	FILE *f = fopen(log_path, "w");
	CHECK(f);
	if (cp) {
		/* A checkpoint line in the exact form (its signature cannot verify). */
		fputs("0 checkpoint ", f);
		for (int i = 0; i < 8; i++)
			fprintf(f, "pcr%d=%096d,", i, 0);
		fprintf(f, "prefix-sha384=%096d,sig=%087dA=\n", 0, 0);
	}
	if (prefix)
		CHECK(fwrite(valid, 1, sizeof(valid) - 1, f) == sizeof(valid) - 1);
	CHECK(fwrite(d, 1, n, f) == n);
	fclose(f);
	char err[512] = "";
	struct chip *c = chip_open(dir, anchor, err, sizeof(err));
	if (!c) {
		CHECK(strstr(err, "event log") || strstr(err, "security chip"));
		return 0;
	}
	size_t nl = prefix;
	for (size_t i = 0; i < n; i++)
		nl += d[i] == '\n';
	char *doc = chip_attestation(c, "fuzz", err, sizeof(err));
	CHECK(doc);
	char want[64];
	if (strstr(doc, "\\ncheckpoint="))
		nl--; /* the first line was a checkpoint (one the chip's key signed) */
	snprintf(want, sizeof(want), "events=%zu\\n", nl);
	CHECK(strstr(doc, want));
	free(doc);
	chip_close(c);
	return 0;
}
