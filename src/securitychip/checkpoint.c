/* The event log's checkpoints: compaction of the oldest events into one signed line, and
 * its verification at replay (contract in chip.h, format in docs/security.md).
 *
 * A checkpoint line (only ever the first line of the log):
 *     SEQ checkpoint pcr0=HEX,...,pcr7=HEX,prefix-sha384=HEX,sig=BASE64
 * SEQ is the seq of the first event after it; pcrN the PCRs after every event before SEQ;
 * prefix-sha384 the SHA-384 of the lines it replaced, exactly as they were in the file
 * (an earlier checkpoint line included); sig the attestation key's Ed25519 signature of
 *     "nitro-eventlog-checkpoint-v1\nseq=SEQ\npcr0=HEX\n...pcr7=HEX\nprefix-sha384=HEX\n".
 * The line is hostile input at replay: parsed strictly, rebuilt and compared, verified.
 */
#include "securitychip/chip_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HEX384 (2 * CHIP_DIGEST_LEN)
#define SIG_B64 88 /* 64 bytes */

/* The signed text of a checkpoint into out (room for 1024); its length. */
static int checkpoint_text(unsigned long seq, const uint8_t pcr[CHIP_NR_PCRS][CHIP_DIGEST_LEN],
			   const uint8_t prefix[CHIP_DIGEST_LEN], char *out, size_t cap)
{
	char hex[HEX384 + 1];
	size_t off = (size_t)snprintf(out, cap, "nitro-eventlog-checkpoint-v1\nseq=%lu\n", seq);
	for (unsigned i = 0; i < CHIP_NR_PCRS; i++) {
		chip_hex(pcr[i], CHIP_DIGEST_LEN, hex);
		off += (size_t)snprintf(out + off, cap - off, "pcr%u=%s\n", i, hex);
	}
	chip_hex(prefix, CHIP_DIGEST_LEN, hex);
	off += (size_t)snprintf(out + off, cap - off, "prefix-sha384=%s\n", hex);
	return (int)off;
}

/* The checkpoint line (no newline) into out (room for 1200). */
static void checkpoint_line(unsigned long seq, const uint8_t pcr[CHIP_NR_PCRS][CHIP_DIGEST_LEN],
			    const uint8_t prefix[CHIP_DIGEST_LEN], const char *sig, char *out,
			    size_t cap)
{
	char hex[HEX384 + 1];
	size_t off = (size_t)snprintf(out, cap, "%lu checkpoint ", seq);
	for (unsigned i = 0; i < CHIP_NR_PCRS; i++) {
		chip_hex(pcr[i], CHIP_DIGEST_LEN, hex);
		off += (size_t)snprintf(out + off, cap - off, "pcr%u=%s,", i, hex);
	}
	chip_hex(prefix, CHIP_DIGEST_LEN, hex);
	snprintf(out + off, cap - off, "prefix-sha384=%s,sig=%s", hex, sig);
}

/* "NAME=" then 96 hex characters at *p into d; advances *p. */
static int take_hex(const char **p, const char *name, uint8_t d[CHIP_DIGEST_LEN])
{
	size_t n = strlen(name);
	if (strncmp(*p, name, n) || (*p)[n] != '=' || strnlen(*p + n + 1, HEX384) != HEX384 ||
	    chip_unhex(*p + n + 1, CHIP_DIGEST_LEN, d) < 0)
		return -1;
	*p += n + 1 + HEX384;
	return 0;
}

int chip_checkpoint_load(struct chip *c, const char *line, char *err, size_t errlen)
{
	unsigned long seq;
	int used = 0;
	if (sscanf(line, "%lu checkpoint %n", &seq, &used) != 1 || !used)
		return 0;
	uint8_t pcr[CHIP_NR_PCRS][CHIP_DIGEST_LEN], prefix[CHIP_DIGEST_LEN];
	const char *p = line + used;
	for (unsigned i = 0; i < CHIP_NR_PCRS; i++) {
		char name[8];
		snprintf(name, sizeof(name), "pcr%u", i);
		if (take_hex(&p, name, pcr[i]) < 0 || *p++ != ',')
			goto malformed;
	}
	if (take_hex(&p, "prefix-sha384", prefix) < 0 || strncmp(p, ",sig=", 5))
		goto malformed;
	p += 5;
	char sig[SIG_B64 + 1];
	if (strlen(p) != SIG_B64 || strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
					      "0123456789+/=") != SIG_B64)
		goto malformed;
	memcpy(sig, p, sizeof(sig));
	/* The line must be exactly what chip_compact writes. */
	char again[1200];
	checkpoint_line(seq, (const uint8_t(*)[CHIP_DIGEST_LEN])pcr, prefix, sig, again,
			sizeof(again));
	if (strcmp(again, line))
		goto malformed;
	uint8_t raw[SIG_B64];
	char text[1024];
	int tn = checkpoint_text(seq, (const uint8_t(*)[CHIP_DIGEST_LEN])pcr, prefix, text,
				 sizeof(text));
	/* The key must be there already: one made now could only refuse the checkpoint. */
	char kp[PATH_MAX];
	snprintf(kp, sizeof(kp), "%s/attestation-key.pem", c->c_dir);
	if (!c->c_attest_key && access(kp, F_OK) < 0)
		RETURN_ERR(-1,
			   "event log %s line 1: a checkpoint, but no attestation key %s to verify "
			   "it",
			   c->c_log_path, kp);
	if (chip_attest_key(c, err, errlen) < 0)
		return -1;
	EVP_MD_CTX *m = EVP_MD_CTX_new();
	int ok = m && EVP_DecodeBlock(raw, (const unsigned char *)sig, SIG_B64) == 66 &&
		 EVP_DigestVerifyInit(m, NULL, NULL, NULL, c->c_attest_key) == 1 &&
		 EVP_DigestVerify(m, raw, 64, (const uint8_t *)text, (size_t)tn) == 1;
	EVP_MD_CTX_free(m);
	if (!ok)
		RETURN_ERR(-1,
			   "event log %s line 1: the checkpoint's signature does not verify with "
			   "the chip's attestation key (a forged checkpoint)",
			   c->c_log_path);
	if (!(c->c_checkpoint = strdup(line)))
		RETURN_ERR(-1, "security chip: out of memory");
	c->c_base_seq = seq;
	memcpy(c->c_base_pcr, pcr, sizeof(pcr));
	memcpy(c->c_pcr, pcr, sizeof(pcr));
	return 1;
malformed:
	RETURN_ERR(-1, "event log %s line 1: malformed checkpoint", c->c_log_path);
}

/* Writes the compacted log (checkpoint line, then events[drop..]) to a new file, makes it
 * durable and renames it over the log; the new fd in *fd_out. 0, or -1. */
static int write_compacted(struct chip *c, const char *cp, size_t drop, int *fd_out, char *err,
			   size_t errlen)
{
	char tmp[PATH_MAX];
	snprintf(tmp, sizeof(tmp), "%s.new", c->c_log_path);
	unlink(tmp);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0)
		RETURN_ERR(-1, "event log %s: compaction: %s", tmp, strerror(errno));
	bool ok = dprintf(fd, "%s\n", cp) > 0;
	for (size_t i = drop; ok && i < c->c_nevents; i++) {
		size_t n;
		char *l = chip_event_line(&c->c_events[i], &n);
		ok = l && write(fd, l, n) == (ssize_t)n;
		free(l);
	}
	if (!ok || fsync(fd) < 0 || rename(tmp, c->c_log_path) < 0) {
		int e = errno;
		close(fd);
		unlink(tmp);
		RETURN_ERR(-1, "event log %s: compaction: %s", c->c_log_path, strerror(e));
	}
	int dfd = open(c->c_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	*fd_out = fd;
	return 0;
}

int chip_compact(struct chip *c, char *err, size_t errlen)
{
	size_t keep = c->c_log_max / 2, drop = c->c_nevents > keep ? c->c_nevents - keep : 0;
	if (!drop)
		return 0;
	if (chip_attest_key(c, err, errlen) < 0)
		return -1;
	/* The PCRs after the dropped events, and the digest of the lines they were. */
	uint8_t pcr[CHIP_NR_PCRS][CHIP_DIGEST_LEN], prefix[CHIP_DIGEST_LEN];
	memcpy(pcr, c->c_base_pcr, sizeof(pcr));
	EVP_MD_CTX *h = EVP_MD_CTX_new();
	bool ok = h && EVP_DigestInit_ex(h, EVP_sha384(), NULL) == 1;
	if (ok && c->c_checkpoint)
		ok = EVP_DigestUpdate(h, c->c_checkpoint, strlen(c->c_checkpoint)) == 1 &&
		     EVP_DigestUpdate(h, "\n", 1) == 1;
	for (size_t i = 0; ok && i < drop; i++) {
		struct chip_event *e = &c->c_events[i];
		chip_extend(pcr[e->ev_pcr], e->ev_digest);
		size_t n;
		char *l = chip_event_line(e, &n);
		ok = l && EVP_DigestUpdate(h, l, n) == 1;
		free(l);
	}
	unsigned pl = 0;
	ok = ok && EVP_DigestFinal_ex(h, prefix, &pl) == 1;
	EVP_MD_CTX_free(h);
	unsigned long seq = c->c_events[drop].ev_seq;
	char text[1024], b64[SIG_B64 + 1];
	int tn = checkpoint_text(seq, (const uint8_t(*)[CHIP_DIGEST_LEN])pcr, prefix, text,
				 sizeof(text));
	uint8_t sig[64];
	size_t sl = sizeof(sig);
	EVP_MD_CTX *s = ok ? EVP_MD_CTX_new() : NULL;
	ok = s && EVP_DigestSignInit(s, NULL, NULL, NULL, c->c_attest_key) == 1 &&
	     EVP_DigestSign(s, sig, &sl, (const uint8_t *)text, (size_t)tn) == 1 && sl == 64;
	EVP_MD_CTX_free(s);
	if (!ok)
		RETURN_ERR(-1, "event log %s: compaction: signing the checkpoint failed",
			   c->c_log_path);
	EVP_EncodeBlock((unsigned char *)b64, sig, 64);
	char line[1200];
	checkpoint_line(seq, (const uint8_t(*)[CHIP_DIGEST_LEN])pcr, prefix, b64, line,
			sizeof(line));
	char *cp = strdup(line);
	int fd;
	if (!cp || write_compacted(c, line, drop, &fd, err, errlen) < 0) {
		if (!cp)
			snprintf(err, errlen, "security chip: out of memory");
		free(cp);
		return -1;
	}
	close(c->c_log_fd);
	c->c_log_fd = fd;
	c->c_unsynced = false; /* the new file is durable, a pending self-measurement too */
	for (size_t i = 0; i < drop; i++)
		free(c->c_events[i].ev_desc);
	memmove(c->c_events, c->c_events + drop, (c->c_nevents - drop) * sizeof(*c->c_events));
	c->c_nevents -= drop;
	free(c->c_checkpoint);
	c->c_checkpoint = cp;
	c->c_base_seq = seq;
	memcpy(c->c_base_pcr, pcr, sizeof(pcr));
	return 0;
}

json_t *chip_checkpoint_json(const struct chip *c)
{
	if (!c->c_checkpoint)
		return NULL;
	const char *ph = strstr(c->c_checkpoint, ",prefix-sha384="),
		   *sg = strstr(c->c_checkpoint, ",sig=");
	uint8_t prefix[CHIP_DIGEST_LEN];
	if (!ph || !sg || chip_unhex(ph + 15, CHIP_DIGEST_LEN, prefix) < 0)
		return NULL;
	char text[1024], hex[HEX384 + 1];
	checkpoint_text(c->c_base_seq, (const uint8_t(*)[CHIP_DIGEST_LEN])c->c_base_pcr, prefix,
			text, sizeof(text));
	json_t *pcrs = json_object();
	for (unsigned i = 0; i < CHIP_NR_PCRS; i++) {
		char key[8];
		snprintf(key, sizeof(key), "%u", i);
		chip_hex(c->c_base_pcr[i], CHIP_DIGEST_LEN, hex);
		json_object_set_new(pcrs, key, json_string(hex));
	}
	chip_hex(prefix, CHIP_DIGEST_LEN, hex);
	return json_pack("{s:I, s:o, s:s, s:s, s:s, s:s}", "seq", (json_int_t)c->c_base_seq, "pcrs",
			 pcrs, "prefix_sha384", hex, "signed_data", text, "signature", sg + 5,
			 "line", c->c_checkpoint);
}
