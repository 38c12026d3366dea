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
 * audit_verify re-walks the chain and names the first bad line: an edited line fails its
 * own HASH; a removed line breaks the next line's PREV. Limits (documented in
 * docs/security.md): cutting lines off the end, or rewriting the whole chain after an
 * edit, is not visible from the file alone.
 */
#ifndef NITRO_CONTROLLER_AUDIT_H
#define NITRO_CONTROLLER_AUDIT_H

#include <stddef.h>
#include <sys/types.h>

struct audit;

/* Opens (creates 0600) the log at path and reads the last line's hash to continue the
 * chain. NULL with a message if the file cannot be opened or its last line is not a
 * complete audit line (torn write, foreign content). */
struct audit *audit_open(const char *path, char *err, size_t errlen);
void audit_close(struct audit *a);

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

#endif
