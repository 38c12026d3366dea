/* The audit log: every API call, one hash-chained line, append-only (issue 5).
 *
 * File format: one line per call, fields separated by single spaces:
 *     TIME uid=UID method=METHOD route=ROUTE status=STATUS detail=DETAIL prev=PREV hash=HASH
 * TIME is UTC, 2026-11-26T19:40:00.123Z. METHOD, ROUTE and DETAIL are %-escaped: every byte
 * outside 0x21..0x7e and every '%' becomes %XX, so a field never holds a space or newline
 * (DETAIL is cut to 1024 bytes before escaping; "-" when empty). PREV is the HASH of the
 * line before (64 '0' on the first line). HASH is lower-case hex of
 *     SHA-256(PREV "\n" BODY)  where BODY is the line up to, not including, " prev="
 * The file is opened O_APPEND (never rewritten); each line is written with one write()
 * and, by default (AUDIT_SYNC_EACH), is durable (fdatasync) before audit_append returns;
 * concurrent callers share one fdatasync (group commit). A caller may choose per line
 * (audit_append_sync): nitrod makes the lines of calls that change state durable before
 * it answers and lets the background flusher sync those of reads. Thread-safe.
 *
 * nitrod writes two lines per call that may change state: a write-ahead intent line
 * (status AUDIT_INTENT_STATUS, detail "intent,body=LEN,sha256=HEX"), durable before the
 * call acts, then the outcome line; both are ordinary lines of the chain.
 *
 * audit_verify re-walks the chain and names the first bad line: an edited line fails its
 * own HASH; a removed line breaks the next line's PREV.
 *
 * Anchors (issue 10 item 15). With a signer (audit_set_anchor: nitrod's is the security
 * chip's attestation key), the chain head is signed every AUDIT_ANCHOR_LINES lines, at the
 * first line AUDIT_ANCHOR_MS after the last anchor, and by audit_anchor (start, shutdown),
 * as a line of its own:
 *     ... method=ANCHOR route=/audit status=200 detail=seq=N,head=HASH,sig=BASE64 ...
 * where HASH is the hash of line N (the line just before the anchor) and BASE64 the
 * signature of the text  "nitro-audit-head-v1\nseq=N\nhead=HASH\n". A rewrite of the
 * whole chain then no longer verifies against the key (audit_verify_anchored); what is
 * after the last anchor is reported as unanchored (a rewrite or a cut of those lines is
 * still not visible from the file alone: docs/security.md).
 *
 * Space. audit_reserve keeps AUDIT_RESERVE bytes allocated beyond the end of the file
 * (fallocate, FALLOC_FL_KEEP_SIZE), so a line written after a successful audit_reserve does
 * not fail for lack of space even when the file system is full; nitrod refuses a call
 * (503) when it fails. A write that fails anyway is cut back off the file (no torn line
 * stays behind), and a torn last line found by audit_open (a crash mid-write) is cut off
 * there and reported by audit_repaired, for the caller to audit.
 */
#ifndef NITRO_CONTROLLER_AUDIT_H
#define NITRO_CONTROLLER_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct audit;

/* Opens (creates 0600) the log at path and reads the last line's hash to continue the
 * chain. An incomplete last line (no newline: a torn write) is cut off the file first
 * (see audit_repaired). NULL with a message if the file cannot be opened or its last
 * complete line is not an audit line (foreign content). */
struct audit *audit_open(const char *path, char *err, size_t errlen);
/* After audit_open: the number of bytes of a torn last line it cut off (0: none), and the
 * first bytes of them (NUL-terminated, raw) in sample. */
size_t audit_repaired(const struct audit *a, char *sample, size_t len);
/* Signs the head, writes the anchor line of a pending signer and makes the log durable. */
void audit_close(struct audit *a);

/* Space for the next lines (see above): 0, or -1 with errno (ENOSPC) when the file system
 * has no room for AUDIT_RESERVE_MIN bytes more. Thread-safe; cheap when the reserve holds. */
#define AUDIT_RESERVE (256 * 1024)
int audit_reserve(struct audit *a);

/* The rate limit of refused callers' lines (403 before any route: a caller who may not
 * use nitrod could otherwise grow the log at will): true when this refusal of uid gets a
 * line, at most one per uid per AUDIT_REFUSAL_MS and AUDIT_REFUSAL_UIDS per AUDIT_REFUSAL_MS
 * for all uids together; *suppressed is then the number of
 * refusals not logged since the last line (of this uid, plus those of uids that fell out
 * of the AUDIT_REFUSAL_UIDS-entry table). false: counted, no line. Thread-safe. */
#define AUDIT_REFUSAL_MS 1000
#define AUDIT_REFUSAL_UIDS 64
bool audit_refusal_admit(struct audit *a, uid_t uid, unsigned long *suppressed);

/* The anchor signer: writes the base64 signature of msg into sig (NUL-terminated, at most
 * siglen bytes); 0, or -1. Called with the log's lock held, from the appending thread. */
typedef int (*audit_sign_fn)(void *ctx, const void *msg, size_t len, char *sig, size_t siglen);
#define AUDIT_ANCHOR_LINES 64
#define AUDIT_ANCHOR_MS 10000
void audit_set_anchor(struct audit *a, audit_sign_fn sign, void *ctx);
/* Anchors the head now (when a line came after the last anchor). 0, or -1 with errno. */
int audit_anchor(struct audit *a);

enum audit_sync {
	AUDIT_SYNC_EACH,       /* default: durable before audit_append returns */
	AUDIT_SYNC_BACKGROUND, /* written (survives a nitrod crash) before it returns; made
				  durable by a flusher thread: the flusher starts an fdatasync at
				  most AUDIT_BACKGROUND_MS after the line was written (a host
				  power cut can lose the lines of that window). For calls an
				  fsync per call would make slow (p99 of fdatasync: 8-70 ms on
				  a loaded disk). */
};
#define AUDIT_BACKGROUND_MS 20

/* Chooses the default durability of audit_append; -1 if the flusher cannot start. */
int audit_set_sync(struct audit *a, enum audit_sync mode);

/* The status of a call's write-ahead line (nitrod writes one, durable, before a call that
 * may change state acts; its outcome line with the answer's status follows). */
#define AUDIT_INTENT_STATUS 0

/* Appends one line with the default durability. method/route/detail may be NULL (stored
 * as "-"). Returns 0, or -1 with errno set when the write fails (the chain head is then
 * unchanged) or, when durable before return, when the fdatasync covering it fails (the
 * line is in the file). */
int audit_append(struct audit *a, uid_t uid, const char *method, const char *route, int status,
		 const char *detail);

/* The same with this line's own durability: AUDIT_SYNC_EACH waits for the fdatasync that
 * covers it (and every line before it); AUDIT_SYNC_BACKGROUND starts the flusher on first
 * use (when it cannot, the line is made durable now, as AUDIT_SYNC_EACH) and returns once
 * the line is written. Lines stay in chain order whatever their durability. */
int audit_append_sync(struct audit *a, enum audit_sync sync, uid_t uid, const char *method,
		      const char *route, int status, const char *detail);

/* Verifies the whole file. Returns the number of lines when the chain is intact, or -1
 * with err naming the first bad line ("audit log F line 7: hash mismatch (line edited)",
 * "... line 7: prev does not match line 6 (a line was removed or reordered)"). */
long audit_verify(const char *path, char *err, size_t errlen);

/* audit_verify, plus the anchors: each ANCHOR line must name the line before it (seq and
 * head) and, with verify, carry a signature verify accepts (verify returns 1 for a good
 * signature, base64 sig over msg). With verify, a log with lines but no anchor is refused
 * too. rep (may be NULL) gets the number of anchors, the seq of the last signed head (0:
 * none) and the lines after the last anchor line (unanchored). */
typedef int (*audit_verify_fn)(void *ctx, const void *msg, size_t len, const char *sig);
struct audit_report {
	unsigned long ar_lines, ar_anchors, ar_signed_seq, ar_unanchored;
};
long audit_verify_anchored(const char *path, audit_verify_fn verify, void *ctx,
			   struct audit_report *rep, char *err, size_t errlen);
/* A signed head as a witness keeps it (docs/security.md, "Signed heads"): line ah_seq
 * has hash ah_head, and line ah_seq + 1 is its anchor with signature ah_sig (base64). */
struct audit_head {
	unsigned long ah_seq;
	char ah_head[65];
	char ah_sig[256]; /* "" when a witness kept only seq and head */
};
/* Anchors the head now when a line came after the last anchor this process wrote (or it
 * wrote none), makes the log durable and gives that anchor's head: what
 * GET /v1/host/audit-head hands an off-host witness. 0, or -1 with errno (ENOTSUP: no
 * signer). Thread-safe. */
int audit_head_now(struct audit *a, struct audit_head *h);
/* audit_verify_anchored, and with w (may be NULL) the log must hold that witnessed head:
 * line w->ah_seq with hash w->ah_head, followed by its anchor (with w->ah_sig when not
 * ""). A log cut back to before it, or rewritten up to it (even re-signed with the key),
 * is refused. */
long audit_verify_witnessed(const char *path, audit_verify_fn verify, void *ctx,
			    const struct audit_head *w, struct audit_report *rep, char *err,
			    size_t errlen);
/* The signed text of an anchor (for signers and verifiers): length, or -1. */
int audit_anchor_text(unsigned long seq, const char *head, char *out, size_t len);

#endif
