/* The security chip: measured launch and host attestation (issue 5).
 *
 * Measurement. Every executable of the host stack and every boot artifact is hashed with
 * SHA-384 before it is used. Each measurement appends one event to an append-only event
 * log (STATE_DIR/eventlog, one line per event, never rewritten) and extends a PCR:
 *     PCR[n] = SHA-384(PCR[n] || digest)          (48 bytes each, all zero at first)
 * chip_open replays the existing log, so PCRs always equal a replay of the whole log and a
 * verifier can recompute them from the attestation. An event identical to one already in
 * the log (same pcr, type, digest and description) is not appended again (IMA-style
 * measure-once), so the log grows only with what is new.
 *
 * Signed executables. An executable is accepted only with a detached signature PATH.sig:
 * 64 raw bytes, Ed25519 (pure) by the trust anchor over the file's 48-byte raw SHA-384
 * digest. Check by hand:
 *     openssl dgst -sha384 -binary FILE > FILE.d
 *     openssl pkeyutl -verify -pubin -inkey ANCHOR.pem -rawin -in FILE.d -sigfile FILE.sig
 * The trust anchor is a PEM public key: chip_open's anchor_pub, else $NITRO_TRUST_ANCHOR,
 * else the development anchor `make` creates next to the binaries:
 * DIR_OF(/proc/self/exe)/keys/dev-anchor.pub.pem (private key beside it, never committed;
 * tools/sign.sh signs build/nitro-hv, build/nitro-card-* and build/nitrod).
 *
 * Digests are cached per file identity (dev, inode, size, mtime, ctime): a launch re-hashes
 * nothing that did not change. Every function is thread-safe (one mutex per chip).
 *
 * Attestation. chip_attestation returns JSON signed by the host attestation key (Ed25519,
 * generated on first use as STATE_DIR/attestation-key.pem, mode 0600); see
 * docs/security.md for the exact openssl commands that verify it.
 *
 * Errors go to (err, errlen) and name the file and the reason, e.g.
 *   "nitro-hv /x/build/nitro-hv: signature does not verify with trust anchor /y/anchor.pem"
 */
#ifndef NITRO_SECURITYCHIP_CHIP_H
#define NITRO_SECURITYCHIP_CHIP_H

#include <stddef.h>
#include <stdint.h>

#define CHIP_NR_PCRS 8
#define CHIP_DIGEST_LEN 48 /* SHA-384 */
#define CHIP_SHA256_LEN 32

/* PCR allocation (the rest are free for chip_measure_blob callers). */
enum {
	CHIP_PCR_EXEC = 0,    /* host stack executables: nitrod, nitro-hv, cards */
	CHIP_PCR_KERNEL = 1,  /* guest kernels */
	CHIP_PCR_INITRD = 2,  /* guest initrds */
	CHIP_PCR_CMDLINE = 3, /* guest kernel command lines */
	CHIP_PCR_CONFIG = 4,  /* anything else a caller measures (instance config ...) */
};

struct chip;

/* Opens (creates, 0700) the chip state in state_dir, loads the trust anchor and replays
 * the event log. NULL with a message on failure (missing anchor, corrupt log ...). */
struct chip *chip_open(const char *state_dir, const char *anchor_pub, char *err, size_t errlen);
void chip_close(struct chip *c);

/* Path of the trust anchor in use (for messages). */
const char *chip_anchor_path(const struct chip *c);

/* Measures an executable: SHA-384 of the file, verify PATH.sig with the trust anchor, log
 * the event (type "exec", description = path) and extend CHIP_PCR_EXEC. Returns 0, or -1
 * with a clear error when the file or its signature is missing, unreadable or does not
 * verify (then nothing is logged or extended). If fd_out is not NULL it receives an
 * O_RDONLY|O_CLOEXEC fd of the very file measured (exec it with execveat(fd, "",
 * AT_EMPTY_PATH) / the jailer's js_exec_fd to avoid a swap between measure and exec).
 * digest_out (48 bytes) may be NULL. */
int chip_measure_exec(struct chip *c, const char *path, int *fd_out, uint8_t *digest_out, char *err,
		      size_t errlen);

/* chip_measure_exec(c, path, NULL, NULL, ...) for the controller's own executable at
 * start-up: the event is written to the log before it returns but made durable only by
 * chip_sync() or the next measurement (each fdatasyncs the whole log), so a power cut in
 * between can lose just that line, which the next start-up measures again. Every other
 * measurement is durable before it returns (and makes any earlier line durable too). */
int chip_measure_self(struct chip *c, const char *path, char *err, size_t errlen);
/* Makes a pending chip_measure_self event durable. 0, or -1 with a message. */
int chip_sync(struct chip *c, char *err, size_t errlen);

/* Measures a file (kernel, initrd ...) into pcr with an event type such as "kernel" or
 * "initrd" (letters, digits, '-', '_'; at most 31). No signature needed. */
int chip_measure_file(struct chip *c, unsigned pcr, const char *type, const char *path,
		      uint8_t *digest_out, char *err, size_t errlen);

/* Measures the open file fd (a boot file the caller opened once, e.g. beneath a served
 * folder: what is measured is exactly what the caller then hands on, never a path looked
 * up again). desc (e.g. its path) goes into the log; fd must be a regular file and is
 * read with pread (its offset is left alone); the caller keeps it. sha256_out (or NULL)
 * gets the file's SHA-256 from the same single pass (for the instance's TPM, docs/tpm.md);
 * both digests are cached by the file's identity like the SHA-384 alone. */
int chip_measure_fd(struct chip *c, unsigned pcr, const char *type, int fd, const char *desc,
		    uint8_t *digest_out, uint8_t *sha256_out, char *err, size_t errlen);

/* Records a digest computed elsewhere (e.g. of the vmlinux nitrod decompressed from a
 * measured kernel) as an event of pcr, type and desc. */
int chip_measure_digest(struct chip *c, unsigned pcr, const char *type, const char *desc,
			const uint8_t digest[CHIP_DIGEST_LEN], char *err, size_t errlen);

/* Measures bytes (a command line, a config) into pcr; desc is stored in the log with
 * control characters escaped (at most 512 bytes kept). */
int chip_measure_blob(struct chip *c, unsigned pcr, const char *type, const char *desc,
		      const void *data, size_t len, uint8_t *digest_out, char *err, size_t errlen);

/* The event log's bound (default CHIP_LOG_MAX_EVENTS, at least 2): once it holds more
 * events, its oldest ones (all but the newest events / 2) are replaced by one checkpoint
 * line carrying the PCRs at that point and the SHA-384 of the replaced lines, signed by
 * the attestation key; chip_open starts its replay from it (a checkpoint that does not
 * verify with this chip's key is refused) and chip_attestation sends it. The PCRs are the
 * same as without compaction. Measure-once then remembers only the events kept. */
void chip_set_log_max(struct chip *c, size_t events);

/* Current PCR value (48 bytes); -1 if pcr >= CHIP_NR_PCRS. */
int chip_read_pcr(struct chip *c, unsigned pcr, uint8_t out[CHIP_DIGEST_LEN]);

/* Attestation document, malloc'd JSON (free()):
 *   {"version":1, "algorithm":"ed25519", "nonce":NONCE,
 *    "pcrs":{"0":"hex96",...,"7":"hex96"},
 *    ["checkpoint":{"seq":S,"pcrs":{...},"prefix_sha384":H,"signed_data":T,"signature":B,
 *                   "line":L},]   (a compacted log only: the PCRs before event S)
 *    "event_log":[{"seq":N,"pcr":P,"type":T,"sha384":"hex96","description":D},...],
 *    "signed_data":TEXT, "signature":"base64 of 64 bytes", "public_key":"PEM"}
 * signed_data is the exact byte string signed (UTF-8/ASCII, verify it as is):
 *   "nitro-attestation-v1\nnonce=NONCE\npcr0=HEX\n...pcr7=HEX\n[checkpoint=S\n]events=N\n
 *    eventlog-sha384=HEX\n"
 * where eventlog-sha384 is the SHA-384 of the event log file's bytes (the checkpoint's
 * line, then the lines the event_log array was parsed from). The nonce is 1..128 characters of
 * [A-Za-z0-9._:+/=-] (anything else: NULL with an error, so callers can answer 400). */
char *chip_attestation(struct chip *c, const char *nonce, char *err, size_t errlen);

/* Signs msg with the host attestation key (the key of chip_attestation; Ed25519, pure):
 * the base64 of the 64-byte signature into sig_b64 (at least 89 bytes). The signed text
 * must name its purpose in its first line (e.g. "nitro-audit-head-v1", docs/security.md)
 * so that a signature made for one purpose cannot be passed off as another. 0, or -1. */
int chip_sign(struct chip *c, const char *purpose, const void *msg, size_t len, char *sig_b64,
	      size_t cap, char *err, size_t errlen);
/* The attestation key's public key as PEM, malloc'd; NULL with err. */
char *chip_public_key(struct chip *c, char *err, size_t errlen);

/* Lower-case hex of a digest into out (2*len+1 bytes). */
void chip_hex(const uint8_t *d, size_t len, char *out);

#endif
