/* The security chip: trust anchor, file digests (cached), the event log and the PCRs. */
#include "securitychip/chip.h"
#include "securitychip/chip_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/util.h"

#define LOG_LINE_MAX 2048

void chip_hex(const uint8_t *d, size_t len, char *out)
{
	static const char hx[] = "0123456789abcdef";
	for (size_t i = 0; i < len; i++) {
		out[2 * i] = hx[d[i] >> 4];
		out[2 * i + 1] = hx[d[i] & 15];
	}
	out[2 * len] = 0;
}

int chip_unhex(const char *s, size_t n, uint8_t *out)
{
	for (size_t i = 0; i < n; i++) {
		int v = 0;
		for (int k = 0; k < 2; k++) {
			char ch = s[2 * i + k];
			int x;
			if (ch >= '0' && ch <= '9')
				x = ch - '0';
			else if (ch >= 'a' && ch <= 'f')
				x = ch - 'a' + 10;
			else
				return -1;
			v = v * 16 + x;
		}
		out[i] = (uint8_t)v;
	}
	return 0;
}

static bool type_ok(const char *t)
{
	size_t n = strlen(t);
	if (n == 0 || n > 31)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = t[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '-' || ch == '_'))
			return false;
	}
	return true;
}

int chip_sha384(const void *data, size_t len, uint8_t out[CHIP_DIGEST_LEN])
{
	unsigned int n = 0;
	return EVP_Digest(data, len, out, &n, EVP_sha384(), NULL) == 1 ? 0 : -1;
}

void chip_extend(uint8_t pcr[CHIP_DIGEST_LEN], const uint8_t d[CHIP_DIGEST_LEN])
{
	uint8_t buf[2 * CHIP_DIGEST_LEN];
	memcpy(buf, pcr, CHIP_DIGEST_LEN);
	memcpy(buf + CHIP_DIGEST_LEN, d, CHIP_DIGEST_LEN);
	chip_sha384(buf, sizeof(buf), pcr);
}

/* Parses one event-log line (without its newline) into ev. */
static int parse_event(const char *line, struct chip_event *ev)
{
	char type[40], hex[100], desc[LOG_LINE_MAX];
	unsigned long seq;
	unsigned pcr;
	int used = 0;
	if (strlen(line) >= LOG_LINE_MAX)
		return -1;
	if (sscanf(line, "%lu %u %39s %99s %2047s%n", &seq, &pcr, type, hex, desc, &used) != 5 ||
	    (size_t)used != strlen(line))
		return -1;
	if (pcr >= CHIP_NR_PCRS || !type_ok(type) || strlen(hex) != 2 * CHIP_DIGEST_LEN ||
	    chip_unhex(hex, CHIP_DIGEST_LEN, ev->ev_digest) < 0)
		return -1;
	/* The line must be exactly what we would write. */
	char again[LOG_LINE_MAX + 200];
	snprintf(again, sizeof(again), "%lu %u %s %s %s", seq, pcr, type, hex, desc);
	if (strcmp(again, line) != 0)
		return -1;
	ev->ev_seq = seq;
	ev->ev_pcr = pcr;
	memcpy(ev->ev_type, type, strlen(type) + 1); /* type_ok: at most 31 */
	ev->ev_desc = strdup(desc);
	return ev->ev_desc ? 0 : -1;
}

char *chip_event_line(const struct chip_event *e, size_t *len)
{
	char hex[2 * CHIP_DIGEST_LEN + 1];
	chip_hex(e->ev_digest, CHIP_DIGEST_LEN, hex);
	char *line = NULL;
	int n =
	    asprintf(&line, "%lu %u %s %s %s\n", e->ev_seq, e->ev_pcr, e->ev_type, hex, e->ev_desc);
	if (n < 0)
		return NULL;
	*len = (size_t)n;
	return line;
}

static int add_event(struct chip *c, const struct chip_event *ev)
{
	if (c->c_nevents == c->c_capevents) {
		size_t cap = c->c_capevents ? 2 * c->c_capevents : 32;
		struct chip_event *n = realloc(c->c_events, cap * sizeof(*n));
		if (!n)
			return -1;
		c->c_events = n;
		c->c_capevents = cap;
	}
	c->c_events[c->c_nevents++] = *ev;
	chip_extend(c->c_pcr[ev->ev_pcr], ev->ev_digest);
	return 0;
}

static int replay_log(struct chip *c, char *err, size_t errlen)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int fd = open(c->c_log_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		RETURN_ERR(-1, "event log %s: %s", c->c_log_path, strerror(errno));
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		RETURN_ERR(-1, "event log %s: not a regular file", c->c_log_path);
	}
	len = (size_t)st.st_size;
	buf = malloc(len + 1);
	if (!buf) {
		close(fd);
		RETURN_ERR(-1, "event log %s: out of memory", c->c_log_path);
	}
	size_t got = 0;
	while (got < len) {
		ssize_t r = read(fd, buf + got, len - got);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	if (got != len) {
		free(buf);
		RETURN_ERR(-1, "event log %s: short read", c->c_log_path);
	}
	buf[len] = 0;
	if (len && buf[len - 1] != '\n') {
		free(buf);
		RETURN_ERR(-1, "event log %s: last line incomplete (torn write?)", c->c_log_path);
	}
	if (memchr(buf, 0, len)) {
		free(buf);
		RETURN_ERR(-1, "event log %s: contains a NUL byte", c->c_log_path);
	}
	char *p = (char *)buf;
	unsigned long lineno = 0;
	while (*p) {
		char *nl = strchr(p, '\n');
		*nl = 0;
		lineno++;
		if (lineno == 1) {
			int cp = chip_checkpoint_load(c, p, err, errlen);
			if (cp < 0) {
				free(buf);
				return -1;
			}
			if (cp > 0) {
				p = nl + 1;
				continue;
			}
		}
		struct chip_event ev = {0};
		if (parse_event(p, &ev) < 0 || ev.ev_seq != c->c_base_seq + c->c_nevents) {
			free(ev.ev_desc);
			free(buf);
			RETURN_ERR(-1, "event log %s line %lu: malformed or out of sequence",
				   c->c_log_path, lineno);
		}
		if (add_event(c, &ev) < 0) {
			free(ev.ev_desc);
			free(buf);
			RETURN_ERR(-1, "event log %s: out of memory", c->c_log_path);
		}
		p = nl + 1;
	}
	free(buf);
	return 0;
}

static int default_anchor(char *out, size_t outlen)
{
	const char *env = getenv("NITRO_TRUST_ANCHOR");
	if (env && *env) {
		snprintf(out, outlen, "%s", env);
		return 0;
	}
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return -1;
	exe[n] = 0;
	snprintf(out, outlen, "%s/keys/dev-anchor.pub.pem", dirname(exe));
	return 0;
}

/* The common anchor, an Ed25519 key exactly as `openssl pkey -pubout` writes it (its
 * SubjectPublicKeyInfo is a fixed 12-byte prefix and the 32-byte key), read without
 * OpenSSL's decoder framework (half a millisecond of nitrod's start-up). NULL for
 * anything else, which PEM_read_PUBKEY then reads (or refuses) as before. */
static EVP_PKEY *ed25519_pem(FILE *f)
{
	static const char begin[] = "-----BEGIN PUBLIC KEY-----\n";
	static const char end[] = "-----END PUBLIC KEY-----\n";
	static const uint8_t spki[12] = {0x30, 0x2a, 0x30, 0x05, 0x06, 0x03,
					 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00};
	char text[sizeof(begin) - 1 + 61 + sizeof(end) - 1 + 1];
	size_t n = fread(text, 1, sizeof(text), f);
	if (n != sizeof(text) - 1 || memcmp(text, begin, sizeof(begin) - 1) ||
	    text[sizeof(begin) - 1 + 60] != '\n' ||
	    memcmp(text + sizeof(begin) - 1 + 61, end, sizeof(end) - 1))
		return NULL;
	uint8_t der[45];
	if (EVP_DecodeBlock(der, (const unsigned char *)text + sizeof(begin) - 1, 60) != 45 ||
	    text[sizeof(begin) - 1 + 59] != '=' || text[sizeof(begin) - 1 + 58] == '=' ||
	    memcmp(der, spki, sizeof(spki)))
		return NULL;
	return EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, der + sizeof(spki), 32);
}

struct chip *chip_open(const char *state_dir, const char *anchor_pub, char *err, size_t errlen)
{
	char apath[PATH_MAX];
	if (anchor_pub)
		snprintf(apath, sizeof(apath), "%s", anchor_pub);
	else if (default_anchor(apath, sizeof(apath)) < 0)
		RETURN_ERR(NULL, "security chip: cannot locate the development trust anchor");
	if (mkdir(state_dir, 0700) < 0 && errno != EEXIST)
		RETURN_ERR(NULL, "security chip state %s: %s", state_dir, strerror(errno));
	FILE *f = fopen(apath, "re");
	if (!f)
		RETURN_ERR(NULL, "trust anchor %s: %s", apath, strerror(errno));
	EVP_PKEY *anchor = ed25519_pem(f);
	if (!anchor) {
		rewind(f);
		anchor = PEM_read_PUBKEY(f, NULL, NULL, NULL);
	}
	fclose(f);
	if (!anchor)
		RETURN_ERR(NULL, "trust anchor %s: not a PEM public key", apath);
	if (EVP_PKEY_get_id(anchor) != EVP_PKEY_ED25519) {
		EVP_PKEY_free(anchor);
		RETURN_ERR(NULL, "trust anchor %s: not an Ed25519 key", apath);
	}
	struct chip *c = calloc(1, sizeof(*c));
	if (!c) {
		EVP_PKEY_free(anchor);
		RETURN_ERR(NULL, "security chip: out of memory");
	}
	pthread_mutex_init(&c->c_lock, NULL);
	c->c_log_max = CHIP_LOG_MAX_EVENTS;
	c->c_anchor = anchor;
	c->c_log_fd = -1;
	c->c_anchor_path = strdup(apath);
	c->c_dir = strdup(state_dir);
	if (asprintf(&c->c_log_path, "%s/eventlog", state_dir) < 0)
		c->c_log_path = NULL;
	if (!c->c_anchor_path || !c->c_dir || !c->c_log_path) {
		chip_close(c);
		RETURN_ERR(NULL, "security chip: out of memory");
	}
	if (replay_log(c, err, errlen) < 0) {
		chip_close(c);
		return NULL;
	}
	c->c_log_fd = open(c->c_log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (c->c_log_fd < 0) {
		snprintf(err, errlen, "event log %s: %s", c->c_log_path, strerror(errno));
		chip_close(c);
		return NULL;
	}
	return c;
}

void chip_close(struct chip *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->c_nevents; i++)
		free(c->c_events[i].ev_desc);
	free(c->c_events);
	free(c->c_checkpoint);
	if (c->c_log_fd >= 0)
		close(c->c_log_fd);
	EVP_PKEY_free(c->c_anchor);
	EVP_PKEY_free(c->c_attest_key);
	free(c->c_anchor_path);
	free(c->c_dir);
	free(c->c_log_path);
	pthread_mutex_destroy(&c->c_lock);
	free(c);
}

const char *chip_anchor_path(const struct chip *c)
{
	return c->c_anchor_path;
}

int chip_read_pcr(struct chip *c, unsigned pcr, uint8_t out[CHIP_DIGEST_LEN])
{
	if (pcr >= CHIP_NR_PCRS)
		return -1;
	pthread_mutex_lock(&c->c_lock);
	memcpy(out, c->c_pcr[pcr], CHIP_DIGEST_LEN);
	pthread_mutex_unlock(&c->c_lock);
	return 0;
}

/* fdatasync of the event log when a lazy event is pending. Lock held. */
static int sync_log(struct chip *c, char *err, size_t errlen)
{
	if (c->c_unsynced && fdatasync(c->c_log_fd) < 0)
		RETURN_ERR(-1, "event log %s: fdatasync: %s", c->c_log_path, strerror(errno));
	c->c_unsynced = false;
	return 0;
}

/* Appends an event (unless the same one is already logged) and extends; durable before
 * it returns unless lazy (then by the next durable record or chip_sync). Lock held. */
static int record(struct chip *c, unsigned pcr, const char *type, const char *desc, size_t dlen,
		  const uint8_t d[CHIP_DIGEST_LEN], bool lazy, char *err, size_t errlen)
{
	char edesc[3 * CHIP_DESC_MAX + 1];
	if (dlen > CHIP_DESC_MAX)
		dlen = CHIP_DESC_MAX;
	if (dlen == 0)
		snprintf(edesc, sizeof(edesc), "-");
	else
		pct_escape(desc, dlen, edesc);
	for (size_t i = 0; i < c->c_nevents; i++) {
		struct chip_event *e = &c->c_events[i];
		if (e->ev_pcr == pcr && !memcmp(e->ev_digest, d, CHIP_DIGEST_LEN) &&
		    !strcmp(e->ev_type, type) && !strcmp(e->ev_desc, edesc))
			return lazy ? 0 : sync_log(c, err, errlen);
	}
	struct chip_event ev = {.ev_seq = c->c_base_seq + c->c_nevents, .ev_pcr = pcr};
	snprintf(ev.ev_type, sizeof(ev.ev_type), "%s", type);
	memcpy(ev.ev_digest, d, CHIP_DIGEST_LEN);
	ev.ev_desc = strdup(edesc);
	if (!ev.ev_desc)
		RETURN_ERR(-1, "security chip: out of memory");
	char hex[2 * CHIP_DIGEST_LEN + 1];
	chip_hex(d, CHIP_DIGEST_LEN, hex);
	char line[LOG_LINE_MAX + 200];
	int n = snprintf(line, sizeof(line), "%lu %u %s %s %s\n", ev.ev_seq, pcr, type, hex, edesc);
	if (write(c->c_log_fd, line, (size_t)n) != n) {
		free(ev.ev_desc);
		RETURN_ERR(-1, "event log %s: write: %s", c->c_log_path, strerror(errno));
	}
	c->c_unsynced = true;
	if (!lazy && sync_log(c, err, errlen) < 0) {
		free(ev.ev_desc);
		return -1;
	}
	if (add_event(c, &ev) < 0) {
		free(ev.ev_desc);
		RETURN_ERR(-1, "security chip: out of memory");
	}
	/* The log is bounded: past c_log_max events its older half becomes a checkpoint. A
	 * compaction that fails leaves the log as it is (valid, longer); the event stands. */
	char cerr[256];
	if (c->c_nevents > c->c_log_max && chip_compact(c, cerr, sizeof(cerr)) < 0)
		warnmsg("%s", cerr);
	return 0;
}

void chip_set_log_max(struct chip *c, size_t events)
{
	pthread_mutex_lock(&c->c_lock);
	c->c_log_max = events < 2 ? 2 : events;
	pthread_mutex_unlock(&c->c_lock);
}

/* Digest of an open regular file, from the cache when its identity is unchanged. */
static int file_digest(struct chip *c, int fd, const char *path, uint8_t out[CHIP_DIGEST_LEN],
		       uint8_t *sha256, char *err, size_t errlen)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		RETURN_ERR(-1, "%s: %s", path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		RETURN_ERR(-1, "%s: not a regular file", path);
	for (size_t i = 0; i < CHIP_CACHE_SIZE; i++) {
		struct chip_cache *ce = &c->c_cache[i];
		if (ce->cc_valid && ce->cc_dev == st.st_dev && ce->cc_ino == st.st_ino &&
		    ce->cc_size == st.st_size && ce->cc_mtime.tv_sec == st.st_mtim.tv_sec &&
		    ce->cc_mtime.tv_nsec == st.st_mtim.tv_nsec &&
		    ce->cc_ctime.tv_sec == st.st_ctim.tv_sec &&
		    ce->cc_ctime.tv_nsec == st.st_ctim.tv_nsec && (!sha256 || ce->cc_have_sha256)) {
			memcpy(out, ce->cc_digest, CHIP_DIGEST_LEN);
			if (sha256)
				memcpy(sha256, ce->cc_sha256, CHIP_SHA256_LEN);
			return 0;
		}
	}
	EVP_MD_CTX *ctx = EVP_MD_CTX_new(), *ctx2 = sha256 ? EVP_MD_CTX_new() : NULL;
	if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha384(), NULL) != 1 ||
	    (sha256 && (!ctx2 || EVP_DigestInit_ex(ctx2, EVP_sha256(), NULL) != 1))) {
		EVP_MD_CTX_free(ctx);
		EVP_MD_CTX_free(ctx2);
		RETURN_ERR(-1, "%s: SHA-384 unavailable", path);
	}
	static __thread uint8_t buf[1 << 16];
	off_t off = 0;
	for (;;) {
		ssize_t r = pread(fd, buf, sizeof(buf), off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			EVP_MD_CTX_free(ctx);
			EVP_MD_CTX_free(ctx2);
			RETURN_ERR(-1, "%s: read: %s", path, strerror(errno));
		}
		if (r == 0)
			break;
		EVP_DigestUpdate(ctx, buf, (size_t)r);
		if (ctx2)
			EVP_DigestUpdate(ctx2, buf, (size_t)r);
		off += r;
	}
	unsigned int n = 0;
	EVP_DigestFinal_ex(ctx, out, &n);
	EVP_MD_CTX_free(ctx);
	if (ctx2)
		EVP_DigestFinal_ex(ctx2, sha256, &n);
	EVP_MD_CTX_free(ctx2);
	if (off != st.st_size)
		RETURN_ERR(-1, "%s: changed while it was measured", path);
	struct chip_cache *ce = &c->c_cache[c->c_cache_next++ % CHIP_CACHE_SIZE];
	*ce = (struct chip_cache){.cc_valid = true,
				  .cc_dev = st.st_dev,
				  .cc_ino = st.st_ino,
				  .cc_size = st.st_size,
				  .cc_mtime = st.st_mtim,
				  .cc_ctime = st.st_ctim,
				  .cc_have_sha256 = sha256 != NULL};
	memcpy(ce->cc_digest, out, CHIP_DIGEST_LEN);
	if (sha256)
		memcpy(ce->cc_sha256, sha256, CHIP_SHA256_LEN);
	return 0;
}

static const char *base_name(const char *p)
{
	const char *s = strrchr(p, '/');
	return s ? s + 1 : p;
}

static int verify_sig(struct chip *c, const char *path, const uint8_t d[CHIP_DIGEST_LEN], char *err,
		      size_t errlen)
{
	char spath[PATH_MAX];
	if (snprintf(spath, sizeof(spath), "%s.sig", path) >= (int)sizeof(spath))
		RETURN_ERR(-1, "%s %s: path too long", base_name(path), path);
	int fd = open(spath, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		RETURN_ERR(-1, "%s %s: no signature (%s: %s); refused", base_name(path), path,
			   spath, strerror(errno));
	uint8_t sig[65];
	ssize_t n = read(fd, sig, sizeof(sig));
	close(fd);
	if (n != 64)
		RETURN_ERR(-1, "%s %s: signature %s is not 64 bytes of Ed25519; refused",
			   base_name(path), path, spath);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok = ctx && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, c->c_anchor) == 1 &&
		 EVP_DigestVerify(ctx, sig, 64, d, CHIP_DIGEST_LEN) == 1;
	EVP_MD_CTX_free(ctx);
	if (!ok)
		RETURN_ERR(-1, "%s %s: signature does not verify with trust anchor %s; refused",
			   base_name(path), path, c->c_anchor_path);
	return 0;
}

static int measure_exec(struct chip *c, const char *path, int *fd_out, uint8_t *digest_out,
			bool lazy, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		RETURN_ERR(-1, "%s %s: %s", base_name(path), path, strerror(errno));
	uint8_t d[CHIP_DIGEST_LEN];
	pthread_mutex_lock(&c->c_lock);
	int rc = file_digest(c, fd, path, d, NULL, err, errlen);
	if (rc == 0)
		rc = verify_sig(c, path, d, err, errlen);
	if (rc == 0)
		rc = record(c, CHIP_PCR_EXEC, "exec", path, strlen(path), d, lazy, err, errlen);
	pthread_mutex_unlock(&c->c_lock);
	if (rc < 0 || !fd_out)
		close(fd);
	else
		*fd_out = fd;
	if (rc == 0 && digest_out)
		memcpy(digest_out, d, CHIP_DIGEST_LEN);
	return rc;
}

int chip_measure_exec(struct chip *c, const char *path, int *fd_out, uint8_t *digest_out, char *err,
		      size_t errlen)
{
	return measure_exec(c, path, fd_out, digest_out, false, err, errlen);
}

int chip_measure_self(struct chip *c, const char *path, char *err, size_t errlen)
{
	return measure_exec(c, path, NULL, NULL, true, err, errlen);
}

int chip_sync(struct chip *c, char *err, size_t errlen)
{
	pthread_mutex_lock(&c->c_lock);
	int rc = sync_log(c, err, errlen);
	pthread_mutex_unlock(&c->c_lock);
	return rc;
}

int chip_measure_file(struct chip *c, unsigned pcr, const char *type, const char *path,
		      uint8_t *digest_out, char *err, size_t errlen)
{
	if (pcr >= CHIP_NR_PCRS || !type || !type_ok(type))
		RETURN_ERR(-1, "security chip: bad pcr %u or event type", pcr);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		RETURN_ERR(-1, "%s %s: %s", type, path, strerror(errno));
	uint8_t d[CHIP_DIGEST_LEN];
	pthread_mutex_lock(&c->c_lock);
	int rc = file_digest(c, fd, path, d, NULL, err, errlen);
	if (rc == 0)
		rc = record(c, pcr, type, path, strlen(path), d, false, err, errlen);
	pthread_mutex_unlock(&c->c_lock);
	close(fd);
	if (rc == 0 && digest_out)
		memcpy(digest_out, d, CHIP_DIGEST_LEN);
	return rc;
}

int chip_measure_fd(struct chip *c, unsigned pcr, const char *type, int fd, const char *desc,
		    uint8_t *digest_out, uint8_t *sha256_out, char *err, size_t errlen)
{
	if (pcr >= CHIP_NR_PCRS || !type || !type_ok(type) || !desc)
		RETURN_ERR(-1, "security chip: bad pcr %u or event type", pcr);
	uint8_t d[CHIP_DIGEST_LEN];
	pthread_mutex_lock(&c->c_lock);
	int rc = file_digest(c, fd, desc, d, sha256_out, err, errlen);
	if (rc == 0)
		rc = record(c, pcr, type, desc, strlen(desc), d, false, err, errlen);
	pthread_mutex_unlock(&c->c_lock);
	if (rc == 0 && digest_out)
		memcpy(digest_out, d, CHIP_DIGEST_LEN);
	return rc;
}

int chip_measure_digest(struct chip *c, unsigned pcr, const char *type, const char *desc,
			const uint8_t digest[CHIP_DIGEST_LEN], char *err, size_t errlen)
{
	if (pcr >= CHIP_NR_PCRS || !type || !type_ok(type))
		RETURN_ERR(-1, "security chip: bad pcr %u or event type", pcr);
	pthread_mutex_lock(&c->c_lock);
	int rc = record(c, pcr, type, desc ? desc : "", desc ? strlen(desc) : 0, digest, false, err,
			errlen);
	pthread_mutex_unlock(&c->c_lock);
	return rc;
}

int chip_measure_blob(struct chip *c, unsigned pcr, const char *type, const char *desc,
		      const void *data, size_t len, uint8_t *digest_out, char *err, size_t errlen)
{
	if (pcr >= CHIP_NR_PCRS || !type || !type_ok(type))
		RETURN_ERR(-1, "security chip: bad pcr %u or event type", pcr);
	if (!data && len)
		RETURN_ERR(-1, "security chip: no data");
	uint8_t d[CHIP_DIGEST_LEN];
	if (chip_sha384(data ? data : "", len, d) < 0)
		RETURN_ERR(-1, "security chip: SHA-384 unavailable");
	pthread_mutex_lock(&c->c_lock);
	int rc =
	    record(c, pcr, type, desc ? desc : "", desc ? strlen(desc) : 0, d, false, err, errlen);
	pthread_mutex_unlock(&c->c_lock);
	if (rc == 0 && digest_out)
		memcpy(digest_out, d, CHIP_DIGEST_LEN);
	return rc;
}
