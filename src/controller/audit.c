/* The audit log: append-only, SHA-256 hash-chained lines (contract in audit.h). */
#include "controller/audit.h"
#include "lib/util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#define HASH_HEX 64
#define DETAIL_MAX 1024
#define FIELD_MAX 512
#define LINE_MAX_LEN (3 * (DETAIL_MAX + 2 * FIELD_MAX) + 400)
/* Room kept for the lines of a call (its own, an anchor, a refusal): four of the longest. */
#define AUDIT_RESERVE_MIN (4 * (LINE_MAX_LEN + 2))
#define SCAN_CHUNK 65536
static const char anchor_mark[] = " method=ANCHOR route=/audit status=200 detail=seq=";

struct refusal {
	uid_t rf_uid;
	bool rf_used, rf_logged;
	int64_t rf_last_ms; /* monotonic ms of its last line */
	unsigned long rf_suppressed;
};

struct audit {
	pthread_mutex_t a_lock;
	pthread_cond_t a_synced_cv; /* a_synced moved */
	pthread_cond_t a_flush_cv;  /* (CLOCK_MONOTONIC) the flusher should look */
	int a_fd;
	char a_head[HASH_HEX + 1];
	char *a_path;
	EVP_MD_CTX *a_ctx; /* the writer's hash context and SHA-256, fetched once */
	EVP_MD *a_md;
	/* Group commit: lines written so far, lines known durable, one fdatasync at a time. */
	unsigned long a_written, a_synced;
	bool a_syncing;
	int a_sync_errno; /* last fdatasync failure, reported to the lines it covered */
	enum audit_sync a_mode;
	/* When the oldest line no fdatasync has started on yet was written, if that line was
	 * left to the flusher (0: none such). */
	int64_t a_bg_first_ns;
	pthread_t a_flusher;
	bool a_flusher_on, a_stop;
	off_t a_size;	   /* the file's length: the end of the last line */
	off_t a_alloc_end; /* allocated (reserved) up to here */
	size_t a_cut;	   /* bytes of a torn last line audit_open cut off */
	char a_cut_sample[129];
	struct refusal a_rf[AUDIT_REFUSAL_UIDS];
	unsigned long a_rf_lost; /* suppressed counts of evicted uids */
	int64_t a_rf_window_ms;	 /* all uids together: the window's start ... */
	unsigned a_rf_window_n;	 /* ... and the refusal lines in it */
	audit_sign_fn a_sign;
	void *a_sign_ctx;
	unsigned long a_seq;	    /* lines in the file */
	unsigned long a_anchor_seq; /* the last anchor line's number (0: none) */
	int64_t a_anchor_ms;	    /* monotonic ms of the last anchor (0: none yet) */
	struct audit_head a_last;   /* the last anchor this process wrote (ah_seq 0: none) */
};

static int anchor_locked(struct audit *a);

static const char zero_hash[HASH_HEX + 1] =
    "0000000000000000000000000000000000000000000000000000000000000000";

static void escape(const char *s, size_t max, char *out)
{
	if (!s || !*s)
		strcpy(out, "-");
	else
		pct_escape(s, strnlen(s, max), out);
}

/* hex SHA-256(prev "\n" body[0..n)); ctx/md: reused by the writer (NULL: made here). */
static void chain_hash(EVP_MD_CTX *ctx, const EVP_MD *md, const char *prev, const char *body,
		       size_t n, char out[HASH_HEX + 1])
{
	static const char hx[] = "0123456789abcdef";
	uint8_t d[32];
	unsigned int dl = 0;
	EVP_MD_CTX *own = ctx ? NULL : EVP_MD_CTX_new();
	if (!ctx)
		ctx = own;
	EVP_DigestInit_ex(ctx, md ? md : EVP_sha256(), NULL);
	EVP_DigestUpdate(ctx, prev, HASH_HEX);
	EVP_DigestUpdate(ctx, "\n", 1);
	EVP_DigestUpdate(ctx, body, n);
	EVP_DigestFinal_ex(ctx, d, &dl);
	EVP_MD_CTX_free(own);
	for (int i = 0; i < 32; i++) {
		out[2 * i] = hx[d[i] >> 4];
		out[2 * i + 1] = hx[d[i] & 15];
	}
	out[HASH_HEX] = 0;
}

static bool is_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/* Splits a line (no newline) into body, prev and hash. -1 when malformed. */
static int split_line(const char *line, size_t n, size_t *body_len, const char **prev,
		      const char **hash)
{
	static const char tail_fmt[] = " prev=" /* 64 */ " hash=" /* 64 */;
	size_t tail = sizeof(tail_fmt) - 1 + 2 * HASH_HEX;
	if (n < tail + 20)
		return -1;
	const char *t = line + n - tail;
	if (memcmp(t, " prev=", 6) || memcmp(t + 6 + HASH_HEX, " hash=", 6) ||
	    !is_hex(t + 6, HASH_HEX) || !is_hex(t + 12 + HASH_HEX, HASH_HEX))
		return -1;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)line[i] < 0x20 || (unsigned char)line[i] > 0x7e)
			return -1;
	if (memcmp(line + 24, " uid=", 5) != 0)
		return -1;
	*body_len = (size_t)(t - line);
	*prev = t + 6;
	*hash = t + 12 + HASH_HEX;
	return 0;
}

/* "seq=N" of an anchor line (its detail), or 0 when line is no anchor line. */
static unsigned long anchor_seq_of(const char *line, size_t n)
{
	const char *m = memmem(line, n, " method=", 8); /* the first is the field */
	size_t k = sizeof(anchor_mark) - 1;
	if (!m || (size_t)(line + n - m) < k || memcmp(m, anchor_mark, k) != 0)
		return 0;
	unsigned long v = 0;
	for (const char *p = m + k; p < line + n && *p >= '0' && *p <= '9' && v < ULONG_MAX / 20;
	     p++)
		v = v * 10 + (unsigned long)(*p - '0');
	return v;
}

/* Lines in the first size bytes (which end with a newline), forward. */
static unsigned long count_forward(int fd, off_t size)
{
	char *buf = malloc(SCAN_CHUNK);
	unsigned long n = 0;
	for (off_t o = 0; buf && o < size;) {
		size_t want = size - o > SCAN_CHUNK ? SCAN_CHUNK : (size_t)(size - o);
		ssize_t r = pread(fd, buf, want, o);
		if (r <= 0)
			break;
		for (ssize_t i = 0; i < r; i++)
			n += buf[i] == '\n';
		o += r;
	}
	free(buf);
	return n;
}

/* The number of lines of the file (size bytes, ending with a newline) and of the last
 * anchor line: read backwards to the last anchor line (its seq), else counted. */
static void count_lines(int fd, off_t size, unsigned long *seq, unsigned long *anchor)
{
	char *buf = malloc(SCAN_CHUNK);
	unsigned long after = 0;
	off_t end = size;
	*seq = *anchor = 0;
	while (buf && end > 0) {
		off_t start = end > SCAN_CHUNK ? end - SCAN_CHUNK : 0;
		if (pread(fd, buf, (size_t)(end - start), start) != end - start)
			break;
		ssize_t e = (ssize_t)(end - start); /* buf[e - 1] is a newline */
		for (;;) {
			ssize_t s = e - 2;
			while (s >= 0 && buf[s] != '\n')
				s--;
			if (s < 0 && start > 0)
				break; /* the line starts in the chunk before */
			unsigned long as = anchor_seq_of(buf + s + 1, (size_t)(e - 1 - (s + 1)));
			if (as) {
				*anchor = as + 1;
				*seq = as + 1 + after;
				free(buf);
				return;
			}
			after++;
			e = s + 1;
			if (e == 0)
				break;
		}
		if (start == 0 && e == 0) {
			*seq = after; /* no anchor at all */
			free(buf);
			return;
		}
		if (e == (ssize_t)(end - start))
			break; /* a line longer than a chunk: not an audit line; count */
		end = start + e;
	}
	free(buf);
	*seq = count_forward(fd, end) + after;
}

/* Cuts an incomplete last line (no newline: a write torn by a crash or a full disk) off
 * the file, keeping every complete line. */
static int cut_torn(struct audit *a, int fd, off_t *size, char *err, size_t errlen)
{
	char buf[4096];
	off_t end = *size, keep = 0;
	while (end > 0) {
		off_t start = end > (off_t)sizeof(buf) ? end - (off_t)sizeof(buf) : 0;
		if (pread(fd, buf, (size_t)(end - start), start) != end - start)
			RETURN_ERR(-1, "audit log %s: cannot read its last line", a->a_path);
		char *nl = memrchr(buf, '\n', (size_t)(end - start));
		if (nl) {
			keep = start + (nl - buf) + 1;
			break;
		}
		end = start;
	}
	a->a_cut = (size_t)(*size - keep);
	ssize_t r = pread(fd, a->a_cut_sample, sizeof(a->a_cut_sample) - 1, keep);
	a->a_cut_sample[r > 0 ? r : 0] = 0;
	if (ftruncate(fd, keep) < 0 || fdatasync(fd) < 0)
		RETURN_ERR(-1, "audit log %s: cutting a torn last line: %s", a->a_path,
			   strerror(errno));
	warnmsg("audit log %s: cut a torn last line (%zu bytes)", a->a_path, a->a_cut);
	*size = keep;
	return 0;
}

/* The last line's hash, or zero_hash for an empty file; cuts a torn last line first. */
static int read_head(struct audit *a, int fd, char head[HASH_HEX + 1], char *err, size_t errlen)
{
	const char *path = a->a_path;
	struct stat st;
	if (fstat(fd, &st) < 0)
		RETURN_ERR(-1, "audit log %s: %s", path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		RETURN_ERR(-1, "audit log %s: not a regular file", path);
	off_t size = st.st_size;
	char last;
	if (size > 0 && (pread(fd, &last, 1, size - 1) != 1 || last != '\n') &&
	    cut_torn(a, fd, &size, err, errlen) < 0)
		return -1;
	a->a_size = a->a_alloc_end = size;
	if (size == 0) {
		memcpy(head, zero_hash, sizeof(zero_hash));
		return 0;
	}
	char buf[LINE_MAX_LEN + 2];
	off_t start = size > (off_t)sizeof(buf) ? size - (off_t)sizeof(buf) : 0;
	ssize_t r = pread(fd, buf, (size_t)(size - start), start);
	if (r != size - start)
		RETURN_ERR(-1, "audit log %s: cannot read its last line", path);
	if (buf[r - 1] != '\n')
		RETURN_ERR(-1, "audit log %s: last line incomplete (torn write?)", path);
	ssize_t s = r - 2;
	while (s >= 0 && buf[s] != '\n')
		s--;
	if (s < 0 && start > 0)
		RETURN_ERR(-1, "audit log %s: last line too long", path);
	size_t bl;
	const char *prev, *hash;
	if (split_line(buf + s + 1, (size_t)(r - s - 2), &bl, &prev, &hash) < 0)
		RETURN_ERR(-1, "audit log %s: last line is not an audit line", path);
	memcpy(head, hash, HASH_HEX);
	head[HASH_HEX] = 0;
	count_lines(fd, size, &a->a_seq, &a->a_anchor_seq);
	return 0;
}

size_t audit_repaired(const struct audit *a, char *sample, size_t len)
{
	if (len)
		snprintf(sample, len, "%s", a->a_cut_sample);
	return a->a_cut;
}

struct audit *audit_open(const char *path, char *err, size_t errlen)
{
	int fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		RETURN_ERR(NULL, "audit log %s: %s", path, strerror(errno));
	struct audit *a = calloc(1, sizeof(*a));
	if (!a || !(a->a_path = strdup(path)) || !(a->a_ctx = EVP_MD_CTX_new()) ||
	    !(a->a_md = EVP_MD_fetch(NULL, "SHA256", NULL))) {
		if (a) {
			EVP_MD_CTX_free(a->a_ctx);
			free(a->a_path);
		}
		free(a);
		close(fd);
		RETURN_ERR(NULL, "audit log %s: out of memory", path);
	}
	if (read_head(a, fd, a->a_head, err, errlen) < 0) {
		EVP_MD_CTX_free(a->a_ctx);
		EVP_MD_free(a->a_md);
		free(a->a_path);
		free(a);
		close(fd);
		return NULL;
	}
	a->a_fd = fd;
	a->a_mode = AUDIT_SYNC_EACH;
	pthread_mutex_init(&a->a_lock, NULL);
	pthread_cond_init(&a->a_synced_cv, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&a->a_flush_cv, &ca);
	pthread_condattr_destroy(&ca);
	return a;
}

/* Makes every line written so far durable; lock held, dropped around the fdatasync.
 * Returns 0, or -1 with errno when the fdatasync covering line `upto` failed. */
static int sync_upto(struct audit *a, unsigned long upto)
{
	while (a->a_synced < upto) {
		if (a->a_syncing) {
			pthread_cond_wait(&a->a_synced_cv, &a->a_lock);
			continue;
		}
		a->a_syncing = true;
		unsigned long target = a->a_written;
		a->a_bg_first_ns = 0; /* this fdatasync covers every line written so far */
		pthread_mutex_unlock(&a->a_lock);
		int rc = fdatasync(a->a_fd);
		int e = errno;
		pthread_mutex_lock(&a->a_lock);
		a->a_syncing = false;
		if (rc < 0) {
			a->a_sync_errno = e;
			pthread_cond_broadcast(&a->a_synced_cv);
			errno = e;
			return -1;
		}
		a->a_synced = target;
		pthread_cond_broadcast(&a->a_synced_cv);
	}
	return 0;
}

static int64_t mono_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* Group commit for AUDIT_SYNC_BACKGROUND lines: idle until such a line is written, then
 * one fdatasync AUDIT_BACKGROUND_MS after the oldest of them (covering every line written
 * by then), unless a durable caller's fdatasync covered them first. */
static void *flusher(void *arg)
{
	struct audit *a = arg;
	pthread_mutex_lock(&a->a_lock);
	while (!a->a_stop) {
		if (a->a_synced >= a->a_written)
			a->a_bg_first_ns = 0;
		if (!a->a_bg_first_ns) {
			pthread_cond_wait(&a->a_flush_cv, &a->a_lock);
			continue;
		}
		int64_t due = a->a_bg_first_ns + AUDIT_BACKGROUND_MS * 1000000LL;
		if (mono_ns() < due) {
			struct timespec ts = {.tv_sec = due / 1000000000,
					      .tv_nsec = due % 1000000000};
			pthread_cond_timedwait(&a->a_flush_cv, &a->a_lock, &ts);
			continue;
		}
		if (sync_upto(a, a->a_written) < 0) {
			warnmsg("audit log %s: fdatasync: %s", a->a_path, strerror(errno));
			a->a_bg_first_ns = mono_ns(); /* try again one period later */
		}
	}
	pthread_mutex_unlock(&a->a_lock);
	return NULL;
}

/* Lock held. */
static int start_flusher(struct audit *a)
{
	if (a->a_flusher_on)
		return 0;
	a->a_stop = false;
	int e = pthread_create(&a->a_flusher, NULL, flusher, a);
	if (e) {
		errno = e;
		return -1;
	}
	a->a_flusher_on = true;
	return 0;
}

int audit_set_sync(struct audit *a, enum audit_sync mode)
{
	pthread_mutex_lock(&a->a_lock);
	int rc = mode == AUDIT_SYNC_BACKGROUND ? start_flusher(a) : 0;
	if (rc == 0)
		a->a_mode = mode;
	pthread_mutex_unlock(&a->a_lock);
	return rc;
}

void audit_close(struct audit *a)
{
	if (!a)
		return;
	pthread_mutex_lock(&a->a_lock);
	bool join = a->a_flusher_on;
	a->a_stop = true;
	pthread_cond_broadcast(&a->a_flush_cv);
	pthread_mutex_unlock(&a->a_lock);
	if (join)
		pthread_join(a->a_flusher, NULL);
	pthread_mutex_lock(&a->a_lock);
	if (a->a_sign && a->a_seq != a->a_anchor_seq && anchor_locked(a) < 0)
		warnmsg("audit log %s: anchor: %s", a->a_path, strerror(errno));
	if (sync_upto(a, a->a_written) < 0)
		warnmsg("audit log %s: fdatasync: %s", a->a_path, strerror(errno));
	pthread_mutex_unlock(&a->a_lock);
	close(a->a_fd);
	pthread_cond_destroy(&a->a_synced_cv);
	pthread_cond_destroy(&a->a_flush_cv);
	pthread_mutex_destroy(&a->a_lock);
	EVP_MD_CTX_free(a->a_ctx);
	EVP_MD_free(a->a_md);
	free(a->a_path);
	free(a);
}

int audit_append(struct audit *a, uid_t uid, const char *method, const char *route, int status,
		 const char *detail)
{
	pthread_mutex_lock(&a->a_lock);
	enum audit_sync mode = a->a_mode;
	pthread_mutex_unlock(&a->a_lock);
	return audit_append_sync(a, mode, uid, method, route, status, detail);
}

/* The body of a line (up to " prev="); its length. */
static int format_body(char *line, size_t cap, uid_t uid, const char *method, const char *route,
		       int status, const char *detail)
{
	char em[3 * FIELD_MAX + 1], er[3 * FIELD_MAX + 1], ed[3 * DETAIL_MAX + 1];
	escape(method, FIELD_MAX, em);
	escape(route, FIELD_MAX, er);
	escape(detail, DETAIL_MAX, ed);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	return snprintf(line, cap,
			"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ uid=%lu method=%s route=%s "
			"status=%d detail=%s",
			tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
			tm.tm_sec, ts.tv_nsec / 1000000, (unsigned long)uid, em, er, status, ed);
}

/* Chains and writes one line (body of n bytes in line, room for the tail). Lock held.
 * A write that fails is cut back off the file. 0, or -1 with errno. */
static int append_locked(struct audit *a, char *line, int n, size_t cap)
{
	char h[HASH_HEX + 1];
	chain_hash(a->a_ctx, a->a_md, a->a_head, line, (size_t)n, h);
	n += snprintf(line + n, cap - (size_t)n, " prev=%s hash=%s\n", a->a_head, h);
	ssize_t w = write(a->a_fd, line, (size_t)n);
	if (w != n) {
		int e = w >= 0 ? ENOSPC : errno;
		/* No torn line stays behind: the next line would be glued to it. */
		if (w > 0 && ftruncate(a->a_fd, a->a_size) < 0)
			warnmsg("audit log %s: cutting a torn line: %s", a->a_path,
				strerror(errno));
		errno = e;
		return -1;
	}
	/* The line is in the file: the chain continues from it whatever the sync does. */
	memcpy(a->a_head, h, sizeof(h));
	a->a_size += n;
	a->a_seq++;
	a->a_written++;
	return 0;
}

int audit_anchor_text(unsigned long seq, const char *head, char *out, size_t len)
{
	int n = snprintf(out, len, "nitro-audit-head-v1\nseq=%lu\nhead=%.64s\n", seq, head);
	return n > 0 && (size_t)n < len ? n : -1;
}

/* Signs the head and writes the anchor line. Lock held. */
static int anchor_locked(struct audit *a)
{
	char msg[160], sig[256], detail[400];
	int mn = audit_anchor_text(a->a_seq, a->a_head, msg, sizeof(msg));
	if (mn < 0 || a->a_sign(a->a_sign_ctx, msg, (size_t)mn, sig, sizeof(sig)) < 0) {
		errno = EIO;
		return -1;
	}
	snprintf(detail, sizeof(detail), "seq=%lu,head=%s,sig=%s", a->a_seq, a->a_head, sig);
	struct audit_head signed_head = {.ah_seq = a->a_seq};
	memcpy(signed_head.ah_head, a->a_head, sizeof(signed_head.ah_head));
	snprintf(signed_head.ah_sig, sizeof(signed_head.ah_sig), "%s", sig);
	char line[LINE_MAX_LEN + 2];
	int n = format_body(line, sizeof(line), geteuid(), "ANCHOR", "/audit", 200, detail);
	if (append_locked(a, line, n, sizeof(line)) < 0)
		return -1;
	a->a_last = signed_head;
	a->a_anchor_seq = a->a_seq;
	a->a_anchor_ms = mono_ns() / 1000000;
	if (!a->a_anchor_ms)
		a->a_anchor_ms = 1;
	return 0;
}

/* After a line: an anchor when AUDIT_ANCHOR_LINES lines or AUDIT_ANCHOR_MS passed. */
static void maybe_anchor(struct audit *a)
{
	if (!a->a_sign || a->a_seq == a->a_anchor_seq)
		return;
	if (a->a_seq - a->a_anchor_seq < AUDIT_ANCHOR_LINES && a->a_anchor_ms &&
	    mono_ns() / 1000000 - a->a_anchor_ms < AUDIT_ANCHOR_MS)
		return;
	if (anchor_locked(a) < 0)
		warnmsg("audit log %s: anchor: %s", a->a_path, strerror(errno));
}

void audit_set_anchor(struct audit *a, audit_sign_fn sign, void *ctx)
{
	pthread_mutex_lock(&a->a_lock);
	a->a_sign = sign;
	a->a_sign_ctx = ctx;
	pthread_mutex_unlock(&a->a_lock);
}

int audit_anchor(struct audit *a)
{
	pthread_mutex_lock(&a->a_lock);
	int rc = 0;
	if (a->a_sign && a->a_seq != a->a_anchor_seq) {
		rc = anchor_locked(a);
		if (rc == 0)
			rc = sync_upto(a, a->a_written);
	}
	pthread_mutex_unlock(&a->a_lock);
	return rc;
}

int audit_head_now(struct audit *a, struct audit_head *h)
{
	pthread_mutex_lock(&a->a_lock);
	int rc = -1;
	if (!a->a_sign)
		errno = ENOTSUP;
	else if ((a->a_seq == a->a_anchor_seq && a->a_last.ah_seq) || anchor_locked(a) == 0)
		rc = sync_upto(a, a->a_written);
	if (rc == 0)
		*h = a->a_last;
	pthread_mutex_unlock(&a->a_lock);
	return rc;
}

int audit_reserve(struct audit *a)
{
	pthread_mutex_lock(&a->a_lock);
	int rc = 0;
	if (a->a_alloc_end - a->a_size < AUDIT_RESERVE_MIN) {
		if (fallocate(a->a_fd, FALLOC_FL_KEEP_SIZE, a->a_size, AUDIT_RESERVE) == 0) {
			a->a_alloc_end = a->a_size + AUDIT_RESERVE;
		} else if (errno == EOPNOTSUPP) {
			/* No preallocation here: at least the room must be free now. */
			struct statvfs sv;
			if (fstatvfs(a->a_fd, &sv) < 0) {
				rc = -1;
			} else if ((unsigned long long)sv.f_bavail * sv.f_frsize <
				   AUDIT_RESERVE_MIN) {
				errno = ENOSPC;
				rc = -1;
			}
		} else {
			rc = -1;
		}
	}
	pthread_mutex_unlock(&a->a_lock);
	return rc;
}

bool audit_refusal_admit(struct audit *a, uid_t uid, unsigned long *suppressed)
{
	int64_t now = mono_ns() / 1000000;
	pthread_mutex_lock(&a->a_lock);
	struct refusal *r = NULL, *lru = NULL;
	for (unsigned i = 0; i < AUDIT_REFUSAL_UIDS; i++) {
		struct refusal *x = &a->a_rf[i];
		if (x->rf_used && x->rf_uid == uid) {
			r = x;
			break;
		}
		if (!x->rf_used) {
			if (!lru || lru->rf_used)
				lru = x;
		} else if (!lru || (lru->rf_used && x->rf_last_ms < lru->rf_last_ms)) {
			lru = x;
		}
	}
	if (!r) {
		r = lru;
		if (r->rf_used)
			a->a_rf_lost += r->rf_suppressed;
		*r = (struct refusal){.rf_uid = uid, .rf_used = true};
	}
	bool admit = !r->rf_logged || now - r->rf_last_ms >= AUDIT_REFUSAL_MS;
	/* And at most AUDIT_REFUSAL_UIDS lines per window for all uids together: uids
	 * cycling through more entries than the table (a user with a subordinate uid range
	 * has thousands) would otherwise each get a line per refusal. */
	if (admit && now - a->a_rf_window_ms >= AUDIT_REFUSAL_MS) {
		a->a_rf_window_ms = now;
		a->a_rf_window_n = 0;
	}
	if (admit && a->a_rf_window_n >= AUDIT_REFUSAL_UIDS)
		admit = false;
	if (admit) {
		a->a_rf_window_n++;
		*suppressed = r->rf_suppressed + a->a_rf_lost;
		a->a_rf_lost = 0;
		r->rf_suppressed = 0;
		r->rf_logged = true;
		r->rf_last_ms = now;
	} else {
		r->rf_suppressed++;
	}
	pthread_mutex_unlock(&a->a_lock);
	return admit;
}

int audit_append_sync(struct audit *a, enum audit_sync sync, uid_t uid, const char *method,
		      const char *route, int status, const char *detail)
{
	char line[LINE_MAX_LEN + 2];
	int n = format_body(line, sizeof(line), uid, method, route, status, detail);
	pthread_mutex_lock(&a->a_lock);
	if (sync == AUDIT_SYNC_BACKGROUND && start_flusher(a) < 0)
		sync = AUDIT_SYNC_EACH; /* no flusher: durable now rather than never */
	int rc = append_locked(a, line, n, sizeof(line));
	if (rc == 0) {
		maybe_anchor(a);
		unsigned long mine = a->a_written;
		if (sync == AUDIT_SYNC_EACH) {
			rc = sync_upto(a, mine);
		} else if (!a->a_bg_first_ns) {
			a->a_bg_first_ns = mono_ns();
			pthread_cond_signal(&a->a_flush_cv);
		}
	}
	pthread_mutex_unlock(&a->a_lock);
	return rc;
}

/* Checks an anchor line (lineno, whose prev is prev): its seq and head name the line
 * before, and verify (when given) accepts its signature. */
static int check_anchor(const char *path, long lineno, const char *line, size_t bl,
			const char *prev, audit_verify_fn verify, void *ctx, char *err,
			size_t errlen)
{
	const char *d = memmem(line, bl, anchor_mark, sizeof(anchor_mark) - 1);
	/* The detail as written: seq=N,head=HEX,sig=BASE64 (nothing in it is escaped). */
	char detail[400];
	size_t off = (size_t)(d - line) + sizeof(anchor_mark) - 1 - 4;
	size_t dl = bl - off;
	if (dl >= sizeof(detail))
		RETURN_ERR(-1, "audit log %s line %ld: malformed anchor", path, lineno);
	memcpy(detail, line + off, dl);
	detail[dl] = 0;
	unsigned long seq;
	char head[HASH_HEX + 1], sig[256];
	int used = 0;
	if (sscanf(detail, "seq=%lu,head=%64[0-9a-f],sig=%255[A-Za-z0-9+/=]%n", &seq, head, sig,
		   &used) != 3 ||
	    (size_t)used != dl || strlen(head) != HASH_HEX)
		RETURN_ERR(-1, "audit log %s line %ld: malformed anchor", path, lineno);
	if (seq != (unsigned long)lineno - 1 || memcmp(head, prev, HASH_HEX) != 0)
		RETURN_ERR(-1,
			   "audit log %s line %ld: the anchor names line %lu with head %.16s..., "
			   "not the line before it (lines were rewritten, added or removed)",
			   path, lineno, seq, head);
	char msg[160];
	int mn = audit_anchor_text(seq, head, msg, sizeof(msg));
	if (verify && (mn < 0 || verify(ctx, msg, (size_t)mn, sig) != 1))
		RETURN_ERR(-1,
			   "audit log %s line %ld: the anchor's signature does not verify with the "
			   "key (the log was rewritten)",
			   path, lineno);
	return 0;
}

long audit_verify(const char *path, char *err, size_t errlen)
{
	return audit_verify_anchored(path, NULL, NULL, NULL, err, errlen);
}

long audit_verify_anchored(const char *path, audit_verify_fn verify, void *ctx,
			   struct audit_report *rep, char *err, size_t errlen)
{
	return audit_verify_witnessed(path, verify, ctx, NULL, rep, err, errlen);
}

/* Line lineno (body bl bytes, hash lh) against the witnessed head w: line w->ah_seq must
 * have the head's hash and the line after it must be its anchor (the same signature). */
static int check_witness(const char *path, long lineno, const char *line, size_t bl, const char *lh,
			 const struct audit_head *w, char *err, size_t errlen)
{
	if ((unsigned long)lineno == w->ah_seq && memcmp(lh, w->ah_head, HASH_HEX) != 0)
		RETURN_ERR(-1,
			   "audit log %s line %ld: its hash %.16s... is not the witnessed head "
			   "%.16s... (the log was rewritten up to a head a witness recorded)",
			   path, lineno, lh, w->ah_head);
	if ((unsigned long)lineno != w->ah_seq + 1)
		return 0;
	char want[400];
	int k = snprintf(want, sizeof(want), " detail=seq=%lu,head=%s,sig=%s", w->ah_seq,
			 w->ah_head, w->ah_sig);
	bool sig = w->ah_sig[0] != 0;
	const char *d =
	    k > 0 && (size_t)k < sizeof(want) ? memmem(line, bl, want, (size_t)k) : NULL;
	if (!d || !anchor_seq_of(line, bl) || (sig && d + k != line + bl))
		RETURN_ERR(-1,
			   "audit log %s line %ld: not the witnessed anchor of line %lu (the log "
			   "was rewritten or re-signed)",
			   path, lineno, w->ah_seq);
	return 0;
}

long audit_verify_witnessed(const char *path, audit_verify_fn verify, void *ctx,
			    const struct audit_head *w, struct audit_report *rep, char *err,
			    size_t errlen)
{
	/* Line numbers are longs from 1: a seq past them (or one whose next line wraps to 0)
	 * would match no line and pass the "cut back" check below for any log. */
	if (w && (w->ah_seq == 0 || w->ah_seq >= (unsigned long)LONG_MAX))
		RETURN_ERR(-1, "witnessed head: seq %lu is no line of an audit log", w->ah_seq);
	FILE *f = fopen(path, "re");
	if (!f)
		RETURN_ERR(-1, "audit log %s: %s", path, strerror(errno));
	char prev[HASH_HEX + 1];
	memcpy(prev, zero_hash, sizeof(prev));
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	long lineno = 0;
	long rc = -1;
	struct audit_report r = {0};
	unsigned long last_anchor = 0;
	while ((n = getline(&line, &cap, f)) > 0) {
		lineno++;
		if (line[n - 1] != '\n') {
			snprintf(err, errlen, "audit log %s line %ld: incomplete (no newline)",
				 path, lineno);
			goto out;
		}
		line[--n] = 0;
		size_t bl;
		const char *lp, *lh;
		if ((size_t)n > LINE_MAX_LEN || memchr(line, 0, (size_t)n) ||
		    split_line(line, (size_t)n, &bl, &lp, &lh) < 0) {
			snprintf(err, errlen, "audit log %s line %ld: not an audit line", path,
				 lineno);
			goto out;
		}
		char h[HASH_HEX + 1];
		chain_hash(NULL, NULL, lp, line, bl, h);
		if (memcmp(h, lh, HASH_HEX) != 0) {
			snprintf(err, errlen, "audit log %s line %ld: hash mismatch (line edited)",
				 path, lineno);
			goto out;
		}
		if (memcmp(lp, prev, HASH_HEX) != 0) {
			if (lineno == 1)
				snprintf(err, errlen,
					 "audit log %s line 1: prev is not the start of a chain "
					 "(lines removed from the start)",
					 path);
			else
				snprintf(
				    err, errlen,
				    "audit log %s line %ld: prev does not match line %ld (a line "
				    "was removed or reordered)",
				    path, lineno, lineno - 1);
			goto out;
		}
		if (anchor_seq_of(line, bl)) {
			if (check_anchor(path, lineno, line, bl, prev, verify, ctx, err, errlen) <
			    0)
				goto out;
			r.ar_anchors++;
			r.ar_signed_seq = (unsigned long)lineno - 1;
			last_anchor = (unsigned long)lineno;
		}
		if (w && check_witness(path, lineno, line, bl, lh, w, err, errlen) < 0)
			goto out;
		memcpy(prev, lh, HASH_HEX);
	}
	if (ferror(f)) {
		snprintf(err, errlen, "audit log %s: read error", path);
		goto out;
	}
	r.ar_lines = (unsigned long)lineno;
	r.ar_unanchored = (unsigned long)lineno - last_anchor;
	if (verify && lineno > 0 && !r.ar_anchors) {
		snprintf(err, errlen,
			 "audit log %s: no line carries a signed head (%ld lines, none anchored: "
			 "a rewritten or foreign log)",
			 path, lineno);
		goto out;
	}
	if (w && (unsigned long)lineno < w->ah_seq + 1) {
		snprintf(err, errlen,
			 "audit log %s: %ld lines, but a witness recorded the signed head of line "
			 "%lu (anchored by line %lu): the log was cut back",
			 path, lineno, w->ah_seq, w->ah_seq + 1);
		goto out;
	}
	if (rep)
		*rep = r;
	rc = lineno;
out:
	free(line);
	fclose(f);
	return rc;
}
