/* The audit log: append-only, SHA-256 hash-chained lines (contract in audit.h). */
#include "controller/audit.h"
#include "lib/util.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define HASH_HEX 64
#define DETAIL_MAX 1024
#define FIELD_MAX 512
#define LINE_MAX_LEN (3 * (DETAIL_MAX + 2 * FIELD_MAX) + 400)

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
};

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

/* The last line's hash, or zero_hash for an empty file. */
static int read_head(int fd, const char *path, char head[HASH_HEX + 1], char *err, size_t errlen)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		RETURN_ERR(-1, "audit log %s: %s", path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		RETURN_ERR(-1, "audit log %s: not a regular file", path);
	if (st.st_size == 0) {
		memcpy(head, zero_hash, sizeof(zero_hash));
		return 0;
	}
	char buf[LINE_MAX_LEN + 2];
	off_t start = st.st_size > (off_t)sizeof(buf) ? st.st_size - (off_t)sizeof(buf) : 0;
	ssize_t r = pread(fd, buf, (size_t)(st.st_size - start), start);
	if (r != st.st_size - start)
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
	return 0;
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
	if (read_head(fd, path, a->a_head, err, errlen) < 0) {
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

int audit_append_sync(struct audit *a, enum audit_sync sync, uid_t uid, const char *method,
		      const char *route, int status, const char *detail)
{
	char em[3 * FIELD_MAX + 1], er[3 * FIELD_MAX + 1], ed[3 * DETAIL_MAX + 1];
	escape(method, FIELD_MAX, em);
	escape(route, FIELD_MAX, er);
	escape(detail, DETAIL_MAX, ed);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	char line[LINE_MAX_LEN + 2];
	int n = snprintf(line, sizeof(line),
			 "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ uid=%lu method=%s route=%s "
			 "status=%d detail=%s",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
			 tm.tm_sec, ts.tv_nsec / 1000000, (unsigned long)uid, em, er, status, ed);
	pthread_mutex_lock(&a->a_lock);
	if (sync == AUDIT_SYNC_BACKGROUND && start_flusher(a) < 0)
		sync = AUDIT_SYNC_EACH; /* no flusher: durable now rather than never */
	char h[HASH_HEX + 1];
	chain_hash(a->a_ctx, a->a_md, a->a_head, line, (size_t)n, h);
	n += snprintf(line + n, sizeof(line) - (size_t)n, " prev=%s hash=%s\n", a->a_head, h);
	int rc = 0;
	ssize_t w = write(a->a_fd, line, (size_t)n);
	if (w != n) {
		if (w >= 0)
			errno = EIO; /* a torn line: audit_verify will point at it */
		rc = -1;
	} else {
		/* The line is in the file: the chain continues from it whatever the sync does. */
		memcpy(a->a_head, h, sizeof(h));
		unsigned long mine = ++a->a_written;
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

long audit_verify(const char *path, char *err, size_t errlen)
{
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
		memcpy(prev, lh, HASH_HEX);
	}
	if (ferror(f)) {
		snprintf(err, errlen, "audit log %s: read error", path);
		goto out;
	}
	rc = lineno;
out:
	free(line);
	fclose(f);
	return rc;
}
