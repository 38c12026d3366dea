/* EBS snapshots: the chunk index, manifests, chunk files and the store (snapshot.h). */
#include "snapshot/snapshot.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "lib/le.h"
#include "lib/util.h"

#define MANIFEST_MAGIC "NITROSNP"
#define MANIFEST_VERSION 1
#define KEY_MAGIC "NITROSKY"
#define KEY_FILE_BYTES (16 + 12 + 96 + 16)
#define K_ID 0
#define K_ENC 32
#define K_MAC 64

static bool is_zero(const uint8_t *p, size_t len)
{
	return len == 0 || (p[0] == 0 && memcmp(p, p + 1, len - 1) == 0);
}

static uint64_t now_ns(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* --- the chunk index --- */

void snap_index_init(struct snap_index *ix)
{
	*ix = (struct snap_index){0};
}

void snap_index_free(struct snap_index *ix)
{
	free(ix->si_slots);
	*ix = (struct snap_index){0};
}

/* The ids are HMAC outputs (or, from a hostile store, anything): the first 8 bytes mixed
 * once more so that chosen ids cannot pile up in one probe run cheaply. */
static size_t slot_of(const struct snap_index *ix, const uint8_t *id)
{
	uint64_t h = le64_get(id) ^ le64_get(id + 8) * 0x9e3779b97f4a7c15ull;
	h ^= h >> 29;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 32;
	return (size_t)h & (ix->si_cap - 1);
}

static void put(struct snap_index *ix, const uint8_t *id)
{
	size_t i = slot_of(ix, id);
	while (!is_zero(ix->si_slots[i], SNAP_ID_BYTES))
		i = (i + 1) & (ix->si_cap - 1);
	memcpy(ix->si_slots[i], id, SNAP_ID_BYTES);
}

bool snap_index_has(const struct snap_index *ix, const uint8_t id[SNAP_ID_BYTES])
{
	if (!ix->si_cap || is_zero(id, SNAP_ID_BYTES))
		return false;
	for (size_t i = slot_of(ix, id);; i = (i + 1) & (ix->si_cap - 1)) {
		if (!memcmp(ix->si_slots[i], id, SNAP_ID_BYTES))
			return true;
		if (is_zero(ix->si_slots[i], SNAP_ID_BYTES))
			return false;
	}
}

int snap_index_add(struct snap_index *ix, const uint8_t id[SNAP_ID_BYTES])
{
	if (is_zero(id, SNAP_ID_BYTES) || snap_index_has(ix, id))
		return 0;
	if ((ix->si_count + 1) * 4 > ix->si_cap * 3) { /* keep it under 3/4 full */
		size_t cap = ix->si_cap ? ix->si_cap * 2 : 64;
		if (cap > SIZE_MAX / SNAP_ID_BYTES)
			return -ENOMEM;
		struct snap_index n = {.si_slots = calloc(cap, SNAP_ID_BYTES), .si_cap = cap};
		if (!n.si_slots)
			return -ENOMEM;
		for (size_t i = 0; i < ix->si_cap; i++)
			if (!is_zero(ix->si_slots[i], SNAP_ID_BYTES))
				put(&n, ix->si_slots[i]);
		n.si_count = ix->si_count;
		free(ix->si_slots);
		*ix = n;
	}
	put(ix, id);
	ix->si_count++;
	return 1;
}

/* --- manifests --- */

bool snap_valid_id(const char *id)
{
	if (strncmp(id, "snap-", 5) || strlen(id) != SNAP_SNAPID_LEN)
		return false;
	for (int i = 5; i < SNAP_SNAPID_LEN; i++)
		if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
			return false;
	return true;
}

static bool valid_vol_id(const char *id)
{
	if (strncmp(id, "vol-", 4) || strlen(id) != VOL_ID_LEN)
		return false;
	for (int i = 4; i < VOL_ID_LEN; i++)
		if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
			return false;
	return true;
}

/* A NUL-padded text field of n bytes: exactly one string, then only NULs. */
static bool text_field(const uint8_t *p, size_t n, char *out, size_t outlen)
{
	size_t l = strnlen((const char *)p, n);
	if (l == n || l >= outlen || !is_zero(p + l, n - l))
		return false;
	memcpy(out, p, l);
	out[l] = 0;
	return true;
}

size_t snap_chunk_len(const struct snap_manifest *m, uint64_t i)
{
	uint64_t off = i * m->sm_chunk;
	return (size_t)(m->sm_size - off < m->sm_chunk ? m->sm_size - off : m->sm_chunk);
}

int snap_manifest_parse(const uint8_t *buf, size_t len, struct snap_manifest *m, char *err,
			size_t errlen)
{
	*m = (struct snap_manifest){0};
	if (len < SNAP_MANIFEST_HDR + SNAP_MANIFEST_MAC || memcmp(buf, MANIFEST_MAGIC, 8))
		RETURN_ERR(-EBADMSG, "not a snapshot manifest (no NITROSNP header)");
	uint32_t ver = le32_get(buf + 8);
	if (ver != MANIFEST_VERSION)
		RETURN_ERR(-EBADMSG, "manifest version %u (expected %d)", ver, MANIFEST_VERSION);
	m->sm_chunk = le32_get(buf + 12);
	m->sm_size = le64_get(buf + 16);
	m->sm_created_ns = le64_get(buf + 24);
	m->sm_nchunks = le64_get(buf + 80);
	if (m->sm_chunk != SNAP_CHUNK)
		RETURN_ERR(-EBADMSG, "manifest chunk size %u (expected %u)", m->sm_chunk,
			   SNAP_CHUNK);
	if (m->sm_size == 0 || m->sm_size % VOL_SECTOR ||
	    m->sm_size > (uint64_t)SNAP_MAX_CHUNKS * SNAP_CHUNK)
		RETURN_ERR(-EBADMSG, "manifest volume size %llu out of range",
			   (unsigned long long)m->sm_size);
	if (m->sm_nchunks != (m->sm_size + SNAP_CHUNK - 1) / SNAP_CHUNK)
		RETURN_ERR(-EBADMSG, "manifest lists %llu chunks for %llu bytes",
			   (unsigned long long)m->sm_nchunks, (unsigned long long)m->sm_size);
	m->sm_nentries = le64_get(buf + 88);
	if (m->sm_nentries > m->sm_nchunks)
		RETURN_ERR(-EBADMSG, "manifest lists %llu entries for %llu chunks",
			   (unsigned long long)m->sm_nentries, (unsigned long long)m->sm_nchunks);
	/* nentries <= 2^26, so this cannot overflow. */
	if (len != SNAP_MANIFEST_HDR + m->sm_nentries * SNAP_ENTRY + SNAP_MANIFEST_MAC)
		RETURN_ERR(-EBADMSG, "manifest of %zu bytes for %llu entries", len,
			   (unsigned long long)m->sm_nentries);
	if (!text_field(buf + 32, 24, m->sm_id, sizeof(m->sm_id)) || !snap_valid_id(m->sm_id))
		RETURN_ERR(-EBADMSG, "manifest: bad snapshot id");
	if (!text_field(buf + 56, 24, m->sm_vol, sizeof(m->sm_vol)) || !valid_vol_id(m->sm_vol))
		RETURN_ERR(-EBADMSG, "manifest: bad volume id");
	size_t n = (size_t)m->sm_nentries;
	m->sm_idx = malloc(n ? n * sizeof(*m->sm_idx) : 1);
	m->sm_ids = malloc(n ? n * SNAP_ID_BYTES : 1);
	if (!m->sm_idx || !m->sm_ids) {
		snap_manifest_free(m);
		RETURN_ERR(-ENOMEM, "manifest: out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		const uint8_t *e = buf + SNAP_MANIFEST_HDR + i * SNAP_ENTRY;
		m->sm_idx[i] = le64_get(e);
		memcpy(m->sm_ids[i], e + 8, SNAP_ID_BYTES);
		if (m->sm_idx[i] >= m->sm_nchunks || (i && m->sm_idx[i] <= m->sm_idx[i - 1]) ||
		    is_zero(m->sm_ids[i], SNAP_ID_BYTES)) {
			snap_manifest_free(m);
			RETURN_ERR(-EBADMSG, "manifest entry %zu: bad chunk index or id", i);
		}
	}
	return 0;
}

static void hmac(const uint8_t *key, const uint8_t *p, size_t len, uint8_t out[32])
{
	unsigned n = 32;
	HMAC(EVP_sha256(), key, 32, p, len, out, &n);
}

int snap_manifest_verify(const uint8_t *buf, size_t len, const uint8_t key[32])
{
	uint8_t mac[32];
	if (len < SNAP_MANIFEST_MAC)
		return -EBADMSG;
	hmac(key, buf, len - SNAP_MANIFEST_MAC, mac);
	return CRYPTO_memcmp(mac, buf + len - SNAP_MANIFEST_MAC, 32) ? -EBADMSG : 0;
}

int snap_manifest_encode(const struct snap_manifest *m, const uint8_t key[32], uint8_t **out,
			 size_t *outlen)
{
	size_t len = SNAP_MANIFEST_HDR + m->sm_nentries * SNAP_ENTRY + SNAP_MANIFEST_MAC;
	uint8_t *b = calloc(1, len);
	if (!b)
		return -ENOMEM;
	memcpy(b, MANIFEST_MAGIC, 8);
	le32_put(b + 8, MANIFEST_VERSION);
	le32_put(b + 12, m->sm_chunk);
	le64_put(b + 16, m->sm_size);
	le64_put(b + 24, m->sm_created_ns);
	memcpy(b + 32, m->sm_id, strnlen(m->sm_id, sizeof(m->sm_id)));
	memcpy(b + 56, m->sm_vol, strnlen(m->sm_vol, sizeof(m->sm_vol)));
	le64_put(b + 80, m->sm_nchunks);
	le64_put(b + 88, m->sm_nentries);
	for (uint64_t i = 0; i < m->sm_nentries; i++) {
		le64_put(b + SNAP_MANIFEST_HDR + i * SNAP_ENTRY, m->sm_idx[i]);
		memcpy(b + SNAP_MANIFEST_HDR + i * SNAP_ENTRY + 8, m->sm_ids[i], SNAP_ID_BYTES);
	}
	hmac(key, b, len - SNAP_MANIFEST_MAC, b + len - SNAP_MANIFEST_MAC);
	*out = b;
	*outlen = len;
	return 0;
}

void snap_manifest_free(struct snap_manifest *m)
{
	free(m->sm_idx);
	free(m->sm_ids);
	m->sm_idx = NULL;
	m->sm_ids = NULL;
}

int snap_chunk_check(const uint8_t *buf, size_t len, size_t plain_len)
{
	if (plain_len == 0 || plain_len > SNAP_CHUNK || len != plain_len + SNAP_CHUNK_OVERHEAD ||
	    memcmp(buf, SNAP_CHUNK_MAGIC, 8))
		return -EBADMSG;
	return 0;
}

/* AES-256-GCM with a 12-byte nonce; aad = the chunk id. in and out may not overlap. */
static int gcm(bool enc, const uint8_t *key, const uint8_t *nonce, const uint8_t *aad,
	       size_t aadlen, const uint8_t *in, size_t len, uint8_t *out, uint8_t *tag)
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int ok = c != NULL, n = 0;
	ok = ok && EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) == 1;
	ok = ok && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, 12, NULL) == 1;
	ok = ok && EVP_CipherInit_ex(c, NULL, NULL, key, nonce, enc) == 1;
	ok = ok && EVP_CipherUpdate(c, NULL, &n, aad, (int)aadlen) == 1;
	ok = ok && EVP_CipherUpdate(c, out, &n, in, (int)len) == 1 && (size_t)n == len;
	if (ok && !enc)
		ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, tag) == 1;
	ok = ok && EVP_CipherFinal_ex(c, out + n, &n) == 1;
	if (ok && enc)
		ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, tag) == 1;
	EVP_CIPHER_CTX_free(c);
	return ok ? 0 : -EBADMSG;
}

/* --- files in the store --- */

static int full_read(int fd, void *buf, size_t len)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = read(fd, (uint8_t *)buf + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EBADMSG; /* shorter than it said */
		done += (size_t)n;
	}
	return 0;
}

static int full_write(int fd, const void *buf, size_t len)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = write(fd, (const uint8_t *)buf + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		done += (size_t)n;
	}
	return 0;
}

/* Reads the regular file name (no symlinks) under dirfd, of at most max bytes. */
static int read_at(int dirfd, const char *name, size_t max, uint8_t **buf, size_t *len)
{
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	struct stat st;
	int r = fstat(fd, &st) < 0 ? -errno : 0;
	if (!r && (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > max))
		r = -EBADMSG;
	*buf = NULL;
	if (!r && !(*buf = malloc(st.st_size ? (size_t)st.st_size : 1)))
		r = -ENOMEM;
	if (!r)
		r = full_read(fd, *buf, (size_t)st.st_size);
	close(fd);
	if (r) {
		free(*buf);
		*buf = NULL;
		return r;
	}
	*len = (size_t)st.st_size;
	return 0;
}

/* Writes a new file dirfd/name atomically (a temporary name, then rename). */
static int write_at(int dirfd, const char *name, const void *a, size_t alen, const void *b,
		    size_t blen, bool sync)
{
	char tmp[128];
	snprintf(tmp, sizeof(tmp), ".tmp-%d-%s", (int)getpid(), name);
	int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	int r = full_write(fd, a, alen);
	if (!r)
		r = full_write(fd, b, blen);
	if (!r && sync && fsync(fd) < 0)
		r = -errno;
	close(fd);
	if (!r && renameat(dirfd, tmp, dirfd, name) < 0)
		r = -errno;
	if (r)
		unlinkat(dirfd, tmp, 0);
	return r;
}

static void hex(const uint8_t *p, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = "0123456789abcdef"[p[i] >> 4];
		out[2 * i + 1] = "0123456789abcdef"[p[i] & 15];
	}
	out[2 * n] = 0;
}

static bool unhex(const char *s, uint8_t *out, size_t n)
{
	if (strlen(s) != 2 * n)
		return false;
	for (size_t i = 0; i < 2 * n; i++) {
		int v = s[i] >= '0' && s[i] <= '9'   ? s[i] - '0'
			: s[i] >= 'a' && s[i] <= 'f' ? s[i] - 'a' + 10
						     : -1;
		if (v < 0)
			return false;
		out[i / 2] = (uint8_t)(i % 2 ? (out[i / 2] << 4) | v : v);
	}
	return true;
}

/* "chunks/XX/<hex>" of an id. */
static void chunk_path(const uint8_t *id, char out[128])
{
	char h[2 * SNAP_ID_BYTES + 1];
	hex(id, SNAP_ID_BYTES, h);
	snprintf(out, 128, "chunks/%.2s/%s", h, h);
}

/* --- the store --- */

static int store_key(struct snap_store *s, bool create, char *err, size_t errlen)
{
	uint8_t mk[VOL_MASTER_KEY_BYTES], *buf = NULL, f[KEY_FILE_BYTES];
	size_t len = 0;
	int r = read_at(s->ss_dir, "store.key", KEY_FILE_BYTES, &buf, &len);
	if (r == -ENOENT && create) {
		if ((r = vol_master_key(mk, err, errlen)))
			return r;
		memset(f, 0, sizeof(f));
		memcpy(f, KEY_MAGIC, 8);
		le32_put(f + 8, 1);
		int ok = RAND_bytes(s->ss_keys, 96) == 1 && RAND_bytes(f + 16, 12) == 1 &&
			 gcm(true, mk, f + 16, f, 16, s->ss_keys, 96, f + 28, f + 124) == 0;
		OPENSSL_cleanse(mk, sizeof(mk));
		if (!ok)
			RETURN_ERR(-EIO, "snapshot store %s: making its key failed", s->ss_path);
		/* Another creator may win the race: then use its key. */
		char tmp[64];
		snprintf(tmp, sizeof(tmp), ".tmp-%d-store.key", (int)getpid());
		int fd = openat(s->ss_dir, tmp,
				O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd < 0)
			RETURN_ERR(-errno, "snapshot store %s: %s", s->ss_path, strerror(errno));
		r = full_write(fd, f, sizeof(f));
		if (!r && fsync(fd) < 0)
			r = -errno;
		close(fd);
		if (!r && linkat(s->ss_dir, tmp, s->ss_dir, "store.key", 0) < 0 && errno != EEXIST)
			r = -errno;
		unlinkat(s->ss_dir, tmp, 0);
		if (r)
			RETURN_ERR(r, "snapshot store %s: writing its key: %s", s->ss_path,
				   strerror(-r));
		r = read_at(s->ss_dir, "store.key", KEY_FILE_BYTES, &buf, &len);
	}
	if (r == -ENOENT)
		RETURN_ERR(r, "%s: not a snapshot store (no store.key)", s->ss_path);
	if (r)
		RETURN_ERR(r, "snapshot store %s: store.key: %s", s->ss_path,
			   r == -EBADMSG ? "not a key file" : strerror(-r));
	if (len != KEY_FILE_BYTES || memcmp(buf, KEY_MAGIC, 8) || le32_get(buf + 8) != 1) {
		free(buf);
		RETURN_ERR(-EBADMSG, "snapshot store %s: store.key is corrupt", s->ss_path);
	}
	if ((r = vol_master_key_existing(mk, err, errlen))) {
		free(buf);
		return r;
	}
	r = gcm(false, mk, buf + 16, buf, 16, buf + 28, 96, s->ss_keys, buf + 124);
	OPENSSL_cleanse(mk, sizeof(mk));
	free(buf);
	if (r)
		RETURN_ERR(-EKEYREJECTED,
			   "snapshot store %s: its key does not unwrap (another host's master key, "
			   "or store.key was altered)",
			   s->ss_path);
	return 0;
}

int snap_store_open(const char *dir, bool create, struct snap_store *s, char *err, size_t errlen)
{
	*s = (struct snap_store){.ss_dir = -1, .ss_lock = -1};
	snprintf(s->ss_path, sizeof(s->ss_path), "%s", dir);
	if (create && mkdir(dir, 0700) < 0 && errno != EEXIST)
		RETURN_ERR(-errno, "snapshot store %s: %s", dir, strerror(errno));
	s->ss_dir = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (s->ss_dir < 0)
		RETURN_ERR(-errno, "snapshot store %s: %s", dir, strerror(errno));
	int r = 0;
	if (create && ((mkdirat(s->ss_dir, "chunks", 0700) < 0 && errno != EEXIST) ||
		       (mkdirat(s->ss_dir, "manifests", 0700) < 0 && errno != EEXIST))) {
		r = -errno;
		snprintf(err, errlen, "snapshot store %s: %s", dir, strerror(errno));
		goto fail;
	}
	s->ss_lock =
	    openat(s->ss_dir, "lock", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0600);
	if (s->ss_lock < 0 && !create && errno == EACCES)
		s->ss_lock = openat(s->ss_dir, "lock", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (s->ss_lock < 0 || flock(s->ss_lock, LOCK_EX) < 0) {
		r = -errno;
		snprintf(err, errlen, "snapshot store %s: lock: %s", dir, strerror(errno));
		goto fail;
	}
	s->ss_keys = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (s->ss_keys == MAP_FAILED) {
		s->ss_keys = NULL;
		r = -ENOMEM;
		snprintf(err, errlen, "snapshot store %s: out of memory", dir);
		goto fail;
	}
	madvise(s->ss_keys, 4096, MADV_DONTDUMP);
	mlock(s->ss_keys, 4096); /* best effort */
	if ((r = store_key(s, create, err, errlen)))
		goto fail;
	return 0;
fail:
	snap_store_close(s);
	return r;
}

void snap_store_close(struct snap_store *s)
{
	if (s->ss_keys) {
		OPENSSL_cleanse(s->ss_keys, 4096);
		munlock(s->ss_keys, 4096);
		munmap(s->ss_keys, 4096);
	}
	s->ss_keys = NULL;
	if (s->ss_lock >= 0)
		close(s->ss_lock);
	if (s->ss_dir >= 0)
		close(s->ss_dir);
	s->ss_lock = s->ss_dir = -1;
}

/* --- create --- */

static void random_id(const char *prefix, char *out)
{
	uint8_t rnd[9];
	RAND_bytes(rnd, sizeof(rnd));
	size_t p = strlen(prefix);
	memcpy(out, prefix, p);
	for (int i = 0; i < 17; i++)
		out[p + i] = "0123456789abcdef"[(rnd[i / 2] >> (i % 2 ? 0 : 4)) & 15];
	out[p + 17] = 0;
}

/* Writes chunk id (plaintext p, len bytes) unless the store has it. Returns 1 when
 * written, 0 when there, or a negative errno value. */
static int put_chunk(struct snap_store *s, const uint8_t *id, const uint8_t *p, size_t len,
		     uint8_t *cbuf)
{
	char path[128], dir[16];
	chunk_path(id, path);
	if (faccessat(s->ss_dir, path, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
		return 0;
	memcpy(dir, path, 9);
	dir[9] = 0;
	if (mkdirat(s->ss_dir, dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	memcpy(cbuf, SNAP_CHUNK_MAGIC, 8);
	if (RAND_bytes(cbuf + 8, 12) != 1)
		return -EIO;
	if (gcm(true, s->ss_keys + K_ENC, cbuf + 8, id, SNAP_ID_BYTES, p, len, cbuf + 20,
		cbuf + 20 + len))
		return -EIO;
	int dfd = openat(s->ss_dir, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (dfd < 0)
		return -errno;
	int r = write_at(dfd, path + 10, cbuf, len + SNAP_CHUNK_OVERHEAD, NULL, 0, false);
	close(dfd);
	return r ? r : 1;
}

/* Is [off, off + len) of the volume's data a hole in its file? */
static bool hole(struct volume *v, uint64_t off, size_t len)
{
	off_t d = lseek(v->v_fd, (off_t)(VOL_DATA_OFFSET + off), SEEK_DATA);
	if (d < 0)
		return errno == ENXIO; /* no data after off */
	return (uint64_t)d >= VOL_DATA_OFFSET + off + len;
}

int snap_create(struct snap_store *s, struct volume *v, snap_progress_fn *pf, void *po,
		char id[SNAP_SNAPID_LEN + 1], struct snap_stats *st, char *err, size_t errlen)
{
	struct snap_manifest m = {.sm_size = v->v_size, .sm_chunk = SNAP_CHUNK};
	*st = (struct snap_stats){0};
	m.sm_nchunks = (v->v_size + SNAP_CHUNK - 1) / SNAP_CHUNK;
	if (m.sm_nchunks > SNAP_MAX_CHUNKS)
		RETURN_ERR(-EFBIG, "volume %s: too large for a snapshot", v->v_path);
	snprintf(m.sm_vol, sizeof(m.sm_vol), "%s", v->v_id);
	uint8_t *buf = malloc(SNAP_CHUNK), *cbuf = malloc(SNAP_CHUNK + SNAP_CHUNK_OVERHEAD);
	size_t cap = 0;
	struct snap_index seen;
	snap_index_init(&seen);
	int r = 0;
	if (!buf || !cbuf) {
		r = -ENOMEM;
		snprintf(err, errlen, "snapshot: out of memory");
		goto out;
	}
	for (uint64_t i = 0; i < m.sm_nchunks; i++) {
		uint64_t off = i * SNAP_CHUNK;
		size_t len = snap_chunk_len(&m, i);
		if (pf && i % 16 == 0)
			pf(po, off, v->v_size);
		if (v->v_fd >= 0 && hole(v, off, len)) {
			st->st_zero++;
			continue;
		}
		if ((r = vol_read(v, off / VOL_SECTOR, buf, len, err, errlen)))
			goto out;
		if (is_zero(buf, len)) {
			st->st_zero++;
			continue;
		}
		if (m.sm_nentries == cap) {
			cap = cap ? cap * 2 : 256;
			uint64_t *ni = realloc(m.sm_idx, cap * sizeof(*ni));
			if (ni)
				m.sm_idx = ni;
			uint8_t(*nd)[SNAP_ID_BYTES] =
			    ni ? realloc(m.sm_ids, cap * SNAP_ID_BYTES) : NULL;
			if (!nd) {
				r = -ENOMEM;
				snprintf(err, errlen, "snapshot: out of memory");
				goto out;
			}
			m.sm_ids = nd;
		}
		uint8_t *id_i = m.sm_ids[m.sm_nentries];
		m.sm_idx[m.sm_nentries++] = i;
		hmac(s->ss_keys + K_ID, buf, len, id_i);
		if ((r = snap_index_add(&seen, id_i)) < 0) {
			snprintf(err, errlen, "snapshot: out of memory");
			goto out;
		}
		if (r == 0)
			continue; /* already in this snapshot */
		if ((r = put_chunk(s, id_i, buf, len, cbuf)) < 0) {
			snprintf(err, errlen, "snapshot store %s: writing a chunk: %s", s->ss_path,
				 strerror(-r));
			goto out;
		}
		if (r == 1) {
			st->st_new++;
			st->st_new_bytes += len + SNAP_CHUNK_OVERHEAD;
		}
	}
	st->st_chunks = m.sm_nchunks;
	if (pf)
		pf(po, v->v_size, v->v_size);
	/* The chunks are durable before the manifest that names them exists. */
	if (syncfs(s->ss_dir) < 0) {
		r = -errno;
		snprintf(err, errlen, "snapshot store %s: syncfs: %s", s->ss_path, strerror(errno));
		goto out;
	}
	random_id("snap-", m.sm_id);
	m.sm_created_ns = now_ns(CLOCK_REALTIME);
	uint8_t *mb;
	size_t mlen;
	if ((r = snap_manifest_encode(&m, s->ss_keys + K_MAC, &mb, &mlen))) {
		snprintf(err, errlen, "snapshot: out of memory");
		goto out;
	}
	int mdir = openat(s->ss_dir, "manifests", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	r = mdir < 0 ? -errno : write_at(mdir, m.sm_id, mb, mlen, NULL, 0, true);
	if (!r && fsync(mdir) < 0)
		r = -errno;
	if (mdir >= 0)
		close(mdir);
	free(mb);
	if (r) {
		snprintf(err, errlen, "snapshot store %s: writing the manifest: %s", s->ss_path,
			 strerror(-r));
		goto out;
	}
	memcpy(id, m.sm_id, sizeof(m.sm_id));
out:
	snap_index_free(&seen);
	OPENSSL_cleanse(buf ? buf : cbuf, buf ? SNAP_CHUNK : 0);
	free(buf);
	free(cbuf);
	snap_manifest_free(&m);
	return r < 0 ? r : 0;
}

/* --- through a running card --- */

/* One line from the card (at most len - 1 bytes), waiting at most ms. */
static int ctl_line(int fd, char *buf, size_t len, int ms)
{
	size_t got = 0;
	while (got < len - 1) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int r = poll(&p, 1, ms);
		if (r == 0)
			return -ETIMEDOUT;
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		ssize_t n = read(fd, buf + got, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -ECONNRESET;
		if (buf[got] == '\n')
			break;
		got++;
	}
	buf[got] = 0;
	return 0;
}

int snap_create_paused(struct snap_store *s, const char *path, const char *ctl,
		       snap_progress_fn *pf, void *po, char id[SNAP_SNAPID_LEN + 1],
		       struct snap_stats *st, char *err, size_t errlen)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(ctl) >= sizeof(sa.sun_path))
		RETURN_ERR(-ENAMETOOLONG, "card control socket %s: path too long", ctl);
	strcpy(sa.sun_path, ctl);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		RETURN_ERR(-e, "card control socket %s: %s", ctl, strerror(e));
	}
	char line[128];
	int r = write(fd, "pause\n", 6) == 6 ? 0 : -EIO;
	if (!r)
		r = ctl_line(fd, line, sizeof(line), 30000);
	if (!r && strcmp(line, "paused")) {
		snprintf(err, errlen, "the card did not pause: %s", line);
		close(fd);
		return strcmp(line, "busy") ? -EIO : -EBUSY;
	}
	if (r) {
		close(fd);
		RETURN_ERR(r, "the card did not pause: %s", strerror(-r));
	}
	struct volume v;
	r = vol_open_paused(path, &v, err, errlen);
	if (!r) {
		r = snap_create(s, &v, pf, po, id, st, err, errlen);
		vol_close(&v);
	}
	/* Still paused all along? The card answers "resumed" only to the client that
	 * paused it, and resumes on its own only when that connection breaks. */
	int w = write(fd, "resume\n", 7) == 7 ? 0 : -EIO;
	if (!w)
		w = ctl_line(fd, line, sizeof(line), 30000);
	close(fd);
	if (!r && (w || strcmp(line, "resumed"))) {
		snap_delete(s, id, &(struct snap_stats){0}, line, sizeof(line));
		RETURN_ERR(-EIO, "the card did not stay paused during the snapshot; discarded");
	}
	return r;
}

/* --- load, list --- */

static int load_named(struct snap_store *s, int mdir, const char *id, struct snap_manifest *m,
		      char *err, size_t errlen)
{
	uint8_t *buf;
	size_t len;
	int r = read_at(
	    mdir, id, SNAP_MANIFEST_HDR + (size_t)SNAP_MAX_CHUNKS * SNAP_ENTRY + SNAP_MANIFEST_MAC,
	    &buf, &len);
	if (r == -ENOENT)
		RETURN_ERR(r, "snapshot %s not found in %s", id, s->ss_path);
	if (r)
		RETURN_ERR(r, "snapshot %s: %s", id,
			   r == -EBADMSG ? "manifest is not a regular file of a sane size"
					 : strerror(-r));
	if (snap_manifest_verify(buf, len, s->ss_keys + K_MAC)) {
		free(buf);
		RETURN_ERR(-EBADMSG,
			   "snapshot %s: manifest fails its MAC (altered or not of this store)",
			   id);
	}
	char perr[256];
	r = snap_manifest_parse(buf, len, m, perr, sizeof(perr));
	free(buf);
	if (r)
		RETURN_ERR(r, "snapshot %s: %s", id, perr);
	if (strcmp(m->sm_id, id)) {
		snap_manifest_free(m);
		RETURN_ERR(-EBADMSG, "snapshot %s: its manifest names %s", id, m->sm_id);
	}
	return 0;
}

static int cmp_created(const void *a, const void *b)
{
	const struct snap_manifest *x = a, *y = b;
	return x->sm_created_ns < y->sm_created_ns ? -1 : x->sm_created_ns > y->sm_created_ns;
}

/* Every manifest, verified; with keep_ids their chunk ids too. */
static int list_all(struct snap_store *s, bool keep_ids, struct snap_manifest **out, size_t *n,
		    char *err, size_t errlen)
{
	*out = NULL;
	*n = 0;
	int mdir = openat(s->ss_dir, "manifests", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (mdir < 0)
		RETURN_ERR(-errno, "snapshot store %s: manifests: %s", s->ss_path, strerror(errno));
	int dfd = dup(mdir);
	DIR *d = dfd < 0 ? NULL : fdopendir(dfd);
	if (!d) {
		close(mdir);
		RETURN_ERR(-errno, "snapshot store %s: %s", s->ss_path, strerror(errno));
	}
	struct dirent *e;
	size_t cap = 0;
	int r = 0;
	while ((e = readdir(d))) {
		if (!snap_valid_id(e->d_name))
			continue; /* temporaries and anything else */
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			struct snap_manifest *g = realloc(*out, cap * sizeof(**out));
			if (!g) {
				r = -ENOMEM;
				snprintf(err, errlen, "out of memory");
				break;
			}
			*out = g;
		}
		if ((r = load_named(s, mdir, e->d_name, &(*out)[*n], err, errlen)))
			break;
		if (!keep_ids)
			snap_manifest_free(&(*out)[*n]);
		(*n)++;
	}
	closedir(d);
	close(mdir);
	if (r) {
		for (size_t i = 0; i < *n; i++)
			snap_manifest_free(&(*out)[i]);
		free(*out);
		*out = NULL;
		*n = 0;
		return r;
	}
	if (*n)
		qsort(*out, *n, sizeof(**out), cmp_created);
	return 0;
}

int snap_list(struct snap_store *s, struct snap_manifest **out, size_t *n, char *err, size_t errlen)
{
	return list_all(s, false, out, n, err, errlen);
}

int snap_load(struct snap_store *s, const char *id, struct snap_manifest *m, char *err,
	      size_t errlen)
{
	char newest[SNAP_SNAPID_LEN + 1];
	if (!id) {
		struct snap_manifest *all;
		size_t n;
		int r = snap_list(s, &all, &n, err, errlen);
		if (r)
			return r;
		if (n)
			memcpy(newest, all[n - 1].sm_id, sizeof(newest));
		free(all);
		if (!n)
			RETURN_ERR(-ENOENT, "snapshot store %s holds no snapshot", s->ss_path);
		id = newest;
	}
	if (!snap_valid_id(id))
		RETURN_ERR(-EINVAL, "%s is not a snapshot id (snap- and 17 hex digits)", id);
	int mdir = openat(s->ss_dir, "manifests", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (mdir < 0)
		RETURN_ERR(-errno, "snapshot store %s: manifests: %s", s->ss_path, strerror(errno));
	int r = load_named(s, mdir, id, m, err, errlen);
	close(mdir);
	return r;
}

/* --- restore --- */

int snap_restore(struct snap_store *s, const char *id, const char *path, uint64_t size,
		 bool encrypted, snap_progress_fn *pf, void *po, char vol_id[VOL_ID_LEN + 1],
		 char *err, size_t errlen)
{
	struct snap_manifest m;
	int r = snap_load(s, id, &m, err, errlen);
	if (r)
		return r;
	if (size == 0)
		size = m.sm_size;
	if (size < m.sm_size) {
		snap_manifest_free(&m);
		RETURN_ERR(-EINVAL, "--size %llu is smaller than snapshot %s (%llu bytes)",
			   (unsigned long long)size, m.sm_id, (unsigned long long)m.sm_size);
	}
	if ((r = vol_create(path, size, encrypted, vol_id, err, errlen))) {
		snap_manifest_free(&m);
		return r;
	}
	struct volume v;
	if ((r = vol_open(path, false, &v, err, errlen))) {
		unlink(path);
		snap_manifest_free(&m);
		return r;
	}
	uint8_t *buf = malloc(SNAP_CHUNK), *cbuf = NULL, got[SNAP_ID_BYTES];
	if (!buf) {
		r = -ENOMEM;
		snprintf(err, errlen, "out of memory");
	}
	for (uint64_t e = 0; !r && e < m.sm_nentries; e++) {
		uint64_t i = m.sm_idx[e];
		size_t len = snap_chunk_len(&m, i), clen = 0;
		char cp[128];
		if (pf && e % 16 == 0)
			pf(po, i * SNAP_CHUNK, m.sm_size);
		chunk_path(m.sm_ids[e], cp);
		r = read_at(s->ss_dir, cp, len + SNAP_CHUNK_OVERHEAD, &cbuf, &clen);
		if (r == -ENOENT) {
			snprintf(err, errlen, "snapshot %s: chunk %s is missing from the store",
				 m.sm_id, cp);
			break;
		}
		if (!r && snap_chunk_check(cbuf, clen, len))
			r = -EBADMSG;
		if (!r && gcm(false, s->ss_keys + K_ENC, cbuf + 8, m.sm_ids[e], SNAP_ID_BYTES,
			      cbuf + 20, len, buf, cbuf + 20 + len))
			r = -EBADMSG;
		if (!r) {
			hmac(s->ss_keys + K_ID, buf, len, got);
			if (CRYPTO_memcmp(got, m.sm_ids[e], SNAP_ID_BYTES))
				r = -EBADMSG;
		}
		free(cbuf);
		cbuf = NULL;
		if (r) {
			snprintf(err, errlen,
				 "snapshot %s: chunk %s %s (the store was altered; nothing "
				 "restored)",
				 m.sm_id, cp, r == -EBADMSG ? "fails its check" : strerror(-r));
			break;
		}
		r = vol_write(&v, i * (SNAP_CHUNK / VOL_SECTOR), buf, len, err, errlen);
	}
	if (!r)
		r = vol_flush(&v, err, errlen);
	if (!r && pf)
		pf(po, m.sm_size, m.sm_size);
	if (buf)
		OPENSSL_cleanse(buf, SNAP_CHUNK);
	free(buf);
	vol_close(&v);
	snap_manifest_free(&m);
	if (r)
		unlink(path);
	return r;
}

/* --- delete --- */

int snap_delete(struct snap_store *s, const char *id, struct snap_stats *st, char *err,
		size_t errlen)
{
	*st = (struct snap_stats){0};
	if (!snap_valid_id(id))
		RETURN_ERR(-EINVAL, "%s is not a snapshot id (snap- and 17 hex digits)", id);
	int mdir = openat(s->ss_dir, "manifests", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (mdir < 0)
		RETURN_ERR(-errno, "snapshot store %s: manifests: %s", s->ss_path, strerror(errno));
	int r = unlinkat(mdir, id, 0) < 0 ? -errno : 0;
	if (!r)
		fsync(mdir);
	close(mdir);
	if (r == -ENOENT)
		RETURN_ERR(r, "snapshot %s not found in %s", id, s->ss_path);
	if (r)
		RETURN_ERR(r, "snapshot %s: %s", id, strerror(-r));

	/* Every chunk the remaining (verified) manifests name stays; the rest goes. A store
	 * with a manifest that does not verify keeps every chunk. */
	struct snap_manifest *all;
	size_t n;
	if ((r = list_all(s, true, &all, &n, err, errlen)))
		return r;
	struct snap_index keep;
	snap_index_init(&keep);
	for (size_t i = 0; i < n && !r; i++)
		for (uint64_t c = 0; c < all[i].sm_nentries && !r; c++)
			if (snap_index_add(&keep, all[i].sm_ids[c]) < 0)
				r = -ENOMEM;
	for (size_t i = 0; i < n; i++)
		snap_manifest_free(&all[i]);
	free(all);
	if (r) {
		snap_index_free(&keep);
		RETURN_ERR(r, "out of memory");
	}
	int cdir = openat(s->ss_dir, "chunks", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	DIR *d = cdir < 0 ? NULL : fdopendir(cdir);
	struct dirent *e;
	while (d && (e = readdir(d))) {
		uint8_t b;
		if (!unhex(e->d_name, &b, 1))
			continue;
		int sub = openat(cdir, e->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
		int sdup = sub < 0 ? -1 : dup(sub);
		DIR *sd = sdup < 0 ? NULL : fdopendir(sdup);
		struct dirent *f;
		while (sd && (f = readdir(sd))) {
			uint8_t cid[SNAP_ID_BYTES];
			struct stat cst;
			bool tmp = !strncmp(f->d_name, ".tmp-", 5);
			if (!tmp &&
			    (!unhex(f->d_name, cid, SNAP_ID_BYTES) || snap_index_has(&keep, cid)))
				continue;
			if (fstatat(sub, f->d_name, &cst, AT_SYMLINK_NOFOLLOW) < 0)
				continue;
			if (unlinkat(sub, f->d_name, 0) == 0 && !tmp) {
				st->st_freed++;
				st->st_freed_bytes += (uint64_t)cst.st_size;
			}
		}
		if (sd)
			closedir(sd);
		if (sub >= 0)
			close(sub);
	}
	if (d)
		closedir(d);
	else if (cdir >= 0)
		close(cdir);
	snap_index_free(&keep);
	return 0;
}

/* --- progress --- */

void snap_progress_begin(struct snap_progress *p, const char *what)
{
	*p = (struct snap_progress){.sp_what = what, .sp_start_ns = now_ns(CLOCK_MONOTONIC)};
}

void snap_progress_stderr(void *opaque, uint64_t done, uint64_t total)
{
	struct snap_progress *p = opaque;
	uint64_t t = now_ns(CLOCK_MONOTONIC);
	if (t - p->sp_start_ns < 1000000000ull || t - p->sp_last_ns < 500000000ull)
		return;
	p->sp_last_ns = t;
	p->sp_shown = true;
	fprintf(stderr, "%s: %s: %llu of %llu MiB (%llu%%)\n", util_prog(), p->sp_what,
		(unsigned long long)(done >> 20), (unsigned long long)(total >> 20),
		(unsigned long long)(total ? done * 100 / total : 100));
}

void snap_progress_end(struct snap_progress *p)
{
	if (p->sp_shown)
		fprintf(stderr, "%s: %s: done in %.1f s\n", util_prog(), p->sp_what,
			(double)(now_ns(CLOCK_MONOTONIC) - p->sp_start_ns) / 1e9);
}
