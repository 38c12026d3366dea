/* EBS volume files: header, master key, data key wrapping and sector encryption. */
#include "volume/volume.h"
#include "volume/xts.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "lib/le.h"
#include "lib/util.h"

/* Header layout. */
#define H_MAGIC 0
#define H_VERSION 8
#define H_FLAGS 12
#define H_SIZE 16
#define H_ID 24
#define H_ID_BYTES 24
#define H_AAD_END 48 /* magic..id: bound to the wrapped key */
#define H_NONCE 48
#define H_NONCE_BYTES 12
#define H_WRAPPED 64
#define H_TAG 128
#define H_TAG_BYTES 16
#define H_KCV 144 /* key check: HMAC-SHA-256(data key, KCV_LABEL || magic..id); 0s: none */
#define H_KCV_BYTES 32
#define H_SUM 4064
#define KCV_LABEL "nitro volume key check v1"
#define H_BYTES VOL_DATA_OFFSET

#define BOUNCE_BYTES (256u << 10)

struct vol_crypt {
	struct xts *vc_enc, *vc_dec;
	uint8_t *vc_bounce; /* BOUNCE_BYTES of ciphertext on its way out */
};

void vol_master_key_path(char *out, size_t len)
{
	const char *st = getenv("NITRO_STATE");
	if (st && *st) {
		snprintf(out, len, "%s/master.key", st);
		return;
	}
	const char *home = getenv("HOME");
	snprintf(out, len, "%s/.local/state/nitro/master.key", home && *home ? home : ".");
}

static int full_pread(int fd, void *buf, size_t len, off_t off, size_t *got)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = pread(fd, (uint8_t *)buf + done, len - done, off + (off_t)done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		done += (size_t)n;
	}
	if (got)
		*got = done;
	return 0;
}

static int full_pwrite(int fd, const void *buf, size_t len, off_t off)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = pwrite(fd, (const uint8_t *)buf + done, len - done, off + (off_t)done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		done += (size_t)n;
	}
	return 0;
}

/* mkdir -p for the master key's directory; the last component gets mode 0700. */
static int make_dirs(char *dir, char *err, size_t errlen)
{
	for (char *p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		int r = mkdir(dir, 0700);
		*p = '/';
		if (r < 0 && errno != EEXIST)
			RETURN_ERR(-errno, "creating %.*s: %s", (int)(p - dir), dir,
				   strerror(errno));
	}
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		RETURN_ERR(-errno, "creating %s: %s", dir, strerror(errno));
	return 0;
}

static int load_master_key(const char *path, uint8_t key[VOL_MASTER_KEY_BYTES], char *err,
			   size_t errlen)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		RETURN_ERR(-errno, "master key %s: %s", path, strerror(errno));
	size_t got = 0;
	int r = fstat(fd, &st) < 0 ? -errno : 0;
	if (!r && (!S_ISREG(st.st_mode) || st.st_size != VOL_MASTER_KEY_BYTES)) {
		close(fd);
		RETURN_ERR(-EINVAL, "master key %s: not a %d-byte regular file", path,
			   VOL_MASTER_KEY_BYTES);
	}
	if (!r)
		r = full_pread(fd, key, VOL_MASTER_KEY_BYTES, 0, &got);
	close(fd);
	if (r < 0)
		RETURN_ERR(r, "master key %s: %s", path, strerror(-r));
	if (got != VOL_MASTER_KEY_BYTES)
		RETURN_ERR(-EINVAL, "master key %s: truncated", path);
	return 0;
}

/* Loads the master key, creating it (0600, atomically via link) when missing. */
static int get_master_key(uint8_t key[VOL_MASTER_KEY_BYTES], char *err, size_t errlen)
{
	char path[PATH_MAX], dir[PATH_MAX], tmp[PATH_MAX + 32];
	vol_master_key_path(path, sizeof(path));
	if (access(path, F_OK) == 0 || errno != ENOENT)
		return load_master_key(path, key, err, errlen);
	snprintf(dir, sizeof(dir), "%s", path);
	*strrchr(dir, '/') = '\0';
	int r = make_dirs(dir, err, errlen);
	if (r)
		return r;
	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		RETURN_ERR(-errno, "creating master key %s: %s", tmp, strerror(errno));
	uint8_t fresh[VOL_MASTER_KEY_BYTES];
	r = RAND_bytes(fresh, sizeof(fresh)) == 1 ? 0 : -EIO;
	if (!r)
		r = full_pwrite(fd, fresh, sizeof(fresh), 0);
	if (!r && fsync(fd) < 0)
		r = -errno;
	close(fd);
	OPENSSL_cleanse(fresh, sizeof(fresh));
	if (!r && link(tmp, path) < 0 && errno != EEXIST) /* EEXIST: another creator won */
		r = -errno;
	unlink(tmp);
	if (r)
		RETURN_ERR(r, "creating master key %s: %s", path, strerror(-r));
	return load_master_key(path, key, err, errlen);
}

int vol_master_key(uint8_t key[VOL_MASTER_KEY_BYTES], char *err, size_t errlen)
{
	return get_master_key(key, err, errlen);
}

int vol_master_key_existing(uint8_t key[VOL_MASTER_KEY_BYTES], char *err, size_t errlen)
{
	char path[PATH_MAX];
	vol_master_key_path(path, sizeof(path));
	return load_master_key(path, key, err, errlen);
}

/* AES-256-GCM of the data key under the master key; aad = header[0, H_AAD_END). */
static int gcm(bool enc, const uint8_t *mk, const uint8_t *nonce, const uint8_t *aad,
	       const uint8_t *in, uint8_t *out, uint8_t *tag)
{
	/* The context holds the master key's schedule: in the secure heap when there is one
	 * (xts.h); the cipher is fetched outside, its caches are not secret. */
	EVP_CIPHER *aes = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
	xts_secure_begin();
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int ok = c != NULL && aes != NULL, n = 0;
	ok = ok && EVP_CipherInit_ex(c, aes, NULL, NULL, NULL, enc) == 1;
	ok = ok && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, H_NONCE_BYTES, NULL) == 1;
	ok = ok && EVP_CipherInit_ex(c, NULL, NULL, mk, nonce, enc) == 1;
	ok = ok && EVP_CipherUpdate(c, NULL, &n, aad, H_AAD_END) == 1;
	ok = ok && EVP_CipherUpdate(c, out, &n, in, VOL_KEY_BYTES) == 1 && n == VOL_KEY_BYTES;
	if (ok && !enc)
		ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, H_TAG_BYTES, tag) == 1;
	ok = ok && EVP_CipherFinal_ex(c, out + n, &n) == 1;
	if (ok && enc)
		ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, H_TAG_BYTES, tag) == 1;
	EVP_CIPHER_CTX_free(c);
	xts_secure_end();
	EVP_CIPHER_free(aes);
	return ok ? 0 : -1;
}

/* The key check value of data key dk for header h: lets a card that is handed only the
 * data key (never the master key) tell the right key from a wrong one. */
static int key_check(const uint8_t *dk, const uint8_t *h, uint8_t out[H_KCV_BYTES])
{
	uint8_t msg[sizeof(KCV_LABEL) + H_AAD_END];
	unsigned n = H_KCV_BYTES;
	memcpy(msg, KCV_LABEL, sizeof(KCV_LABEL));
	memcpy(msg + sizeof(KCV_LABEL), h, H_AAD_END);
	return HMAC(EVP_sha256(), dk, VOL_KEY_BYTES, msg, sizeof(msg), out, &n) ? 0 : -1;
}

static bool has_key_check(const uint8_t *h)
{
	for (int i = 0; i < H_KCV_BYTES; i++)
		if (h[H_KCV + i])
			return true;
	return false;
}

static void header_sum(const uint8_t *h, uint8_t out[32])
{
	unsigned n = 32;
	EVP_Digest(h, H_SUM, out, &n, EVP_sha256(), NULL);
}

static bool valid_id(const char *id)
{
	if (strncmp(id, "vol-", 4))
		return false;
	for (int i = 4; i < VOL_ID_LEN; i++)
		if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
			return false;
	return true;
}

int vol_create(const char *path, uint64_t size, bool encrypted, char id[VOL_ID_LEN + 1], char *err,
	       size_t errlen)
{
	if (size == 0 || size % VOL_SECTOR || size > (uint64_t)INT64_MAX - VOL_DATA_OFFSET)
		RETURN_ERR(-EINVAL, "volume %s: size %llu is not a positive multiple of %d bytes",
			   path, (unsigned long long)size, VOL_SECTOR);
	uint8_t h[H_BYTES] = {0}, rnd[9], mk[VOL_MASTER_KEY_BYTES], dk[VOL_KEY_BYTES];
	int r;
	if (encrypted && (r = get_master_key(mk, err, errlen)))
		return r;
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		RETURN_ERR(-EIO, "volume %s: no random bytes for the id", path);
	memcpy(id, "vol-", 4);
	for (int i = 0; i < 17; i++)
		id[4 + i] = "0123456789abcdef"[(rnd[i / 2] >> (i % 2 ? 0 : 4)) & 15];
	id[VOL_ID_LEN] = '\0';

	memcpy(h + H_MAGIC, VOL_MAGIC, 8);
	le32_put(h + H_VERSION, VOL_VERSION);
	le32_put(h + H_FLAGS, encrypted ? VOL_F_ENCRYPTED : 0);
	le64_put(h + H_SIZE, size);
	memcpy(h + H_ID, id, VOL_ID_LEN);
	if (encrypted) {
		int ok = RAND_bytes(dk, sizeof(dk)) == 1 &&
			 RAND_bytes(h + H_NONCE, H_NONCE_BYTES) == 1 &&
			 CRYPTO_memcmp(dk, dk + 32, 32) != 0 && /* XTS refuses equal halves */
			 gcm(true, mk, h + H_NONCE, h, dk, h + H_WRAPPED, h + H_TAG) == 0 &&
			 key_check(dk, h, h + H_KCV) == 0;
		OPENSSL_cleanse(dk, sizeof(dk));
		OPENSSL_cleanse(mk, sizeof(mk));
		if (!ok)
			RETURN_ERR(-EIO, "volume %s: wrapping the data key failed", path);
	}
	header_sum(h, h + H_SUM);

	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		RETURN_ERR(-errno, "volume %s: %s", path,
			   errno == EEXIST ? "already exists (not overwritten)" : strerror(errno));
	r = full_pwrite(fd, h, sizeof(h), 0);
	if (!r && ftruncate(fd, (off_t)(VOL_DATA_OFFSET + size)) < 0)
		r = -errno;
	if (!r && fsync(fd) < 0)
		r = -errno;
	close(fd);
	if (r) {
		unlink(path);
		RETURN_ERR(r, "volume %s: writing: %s", path, strerror(-r));
	}
	return 0;
}

/* Reads and checks the header of fd; leaves it in h. */
static int read_header(int fd, const char *path, uint8_t h[H_BYTES], struct volume *v, char *err,
		       size_t errlen)
{
	size_t got = 0;
	struct stat st;
	int r = full_pread(fd, h, H_BYTES, 0, &got);
	if (r)
		RETURN_ERR(r, "volume %s: reading the header: %s", path, strerror(-r));
	if (got < 8 || memcmp(h + H_MAGIC, VOL_MAGIC, 8))
		RETURN_ERR(-EINVAL, "volume %s: not a nitro volume (no NITROVOL magic)", path);
	if (got < H_BYTES)
		RETURN_ERR(-EINVAL, "volume %s: truncated header (%zu of %d bytes)", path, got,
			   H_BYTES);
	uint8_t sum[32];
	header_sum(h, sum);
	if (CRYPTO_memcmp(sum, h + H_SUM, 32))
		RETURN_ERR(-EINVAL, "volume %s: corrupt header (checksum mismatch)", path);
	uint32_t ver = le32_get(h + H_VERSION), flags = le32_get(h + H_FLAGS);
	if (ver != VOL_VERSION)
		RETURN_ERR(-EINVAL, "volume %s: unsupported version %u (expected %d)", path, ver,
			   VOL_VERSION);
	if (flags & ~VOL_F_ENCRYPTED)
		RETURN_ERR(-EINVAL, "volume %s: unknown flags 0x%x", path, flags);
	v->v_size = le64_get(h + H_SIZE);
	if (v->v_size == 0 || v->v_size % VOL_SECTOR ||
	    v->v_size > (uint64_t)INT64_MAX - VOL_DATA_OFFSET)
		RETURN_ERR(-EINVAL, "volume %s: corrupt header (size %llu)", path,
			   (unsigned long long)v->v_size);
	memcpy(v->v_id, h + H_ID, VOL_ID_LEN);
	v->v_id[VOL_ID_LEN] = '\0';
	for (int i = VOL_ID_LEN; i < H_ID_BYTES; i++)
		if (h[H_ID + i])
			v->v_id[0] = '\0';
	if (!valid_id(v->v_id))
		RETURN_ERR(-EINVAL, "volume %s: corrupt header (bad volume id)", path);
	v->v_encrypted = flags & VOL_F_ENCRYPTED;
	if (fstat(fd, &st) < 0)
		RETURN_ERR(-errno, "volume %s: %s", path, strerror(errno));
	if ((uint64_t)st.st_size < VOL_DATA_OFFSET + v->v_size)
		RETURN_ERR(-EINVAL, "volume %s: truncated (%lld bytes; the header says %llu)", path,
			   (long long)st.st_size,
			   (unsigned long long)(VOL_DATA_OFFSET + v->v_size));
	return 0;
}

int vol_info(const char *path, struct volume *v, char *err, size_t errlen)
{
	uint8_t h[H_BYTES];
	*v = (struct volume){.v_fd = -1};
	snprintf(v->v_path, sizeof(v->v_path), "%s", path);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		RETURN_ERR(-errno, "volume %s: %s", path, strerror(errno));
	int r = read_header(fd, path, h, v, err, errlen);
	close(fd);
	return r;
}

static struct vol_crypt *crypt_new(const uint8_t *dk)
{
	size_t len = (sizeof(struct vol_crypt) + 4095) & ~(size_t)4095;
	struct vol_crypt *c =
	    mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (c == MAP_FAILED)
		return NULL;
	madvise(c, len, MADV_DONTDUMP);
	mlock(c, len); /* best effort: RLIMIT_MEMLOCK may be small */
	c->vc_enc = xts_new(dk, true);
	c->vc_dec = xts_new(dk, false);
	c->vc_bounce = malloc(BOUNCE_BYTES);
	if (c->vc_enc && c->vc_dec && c->vc_bounce)
		return c;
	xts_free(c->vc_enc);
	xts_free(c->vc_dec);
	free(c->vc_bounce);
	munmap(c, len);
	return NULL;
}

static void crypt_free(struct vol_crypt *c)
{
	size_t len = (sizeof(struct vol_crypt) + 4095) & ~(size_t)4095;
	xts_free(c->vc_enc); /* cleanses the key schedules */
	xts_free(c->vc_dec);
	free(c->vc_bounce);
	OPENSSL_cleanse(c, len);
	munlock(c, len);
	munmap(c, len);
}

/* An anonymous page kept out of swap and core dumps, for a plaintext key. */
static uint8_t *key_page(void)
{
	uint8_t *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	madvise(p, 4096, MADV_DONTDUMP);
	mlock(p, 4096);
	return p;
}

static void key_page_free(uint8_t *p)
{
	OPENSSL_cleanse(p, 4096);
	munlock(p, 4096);
	munmap(p, 4096);
}

/* Unwraps the data key of header h (read from path) with the master key into dk. */
static int unwrap(const char *path, uint8_t *h, uint8_t *dk, char *err, size_t errlen)
{
	char mpath[PATH_MAX];
	uint8_t mk[VOL_MASTER_KEY_BYTES];
	vol_master_key_path(mpath, sizeof(mpath));
	if (access(mpath, F_OK) < 0 && errno == ENOENT)
		RETURN_ERR(-ENOKEY,
			   "volume %s: no master key at %s (the key that wrapped "
			   "its data key is on another host or lost)",
			   path, mpath);
	int r = load_master_key(mpath, mk, err, errlen);
	if (r)
		return r;
	int ok = gcm(false, mk, h + H_NONCE, h, h + H_WRAPPED, dk, h + H_TAG) == 0;
	OPENSSL_cleanse(mk, sizeof(mk));
	if (!ok)
		RETURN_ERR(-EKEYREJECTED,
			   "volume %s: wrong master key (the data key does not unwrap)", path);
	return 0;
}

int vol_unwrap_key(const char *path, uint8_t dk[VOL_KEY_BYTES], char *err, size_t errlen)
{
	uint8_t h[H_BYTES];
	struct volume v = {.v_fd = -1};
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		RETURN_ERR(-errno, "volume %s: %s", path, strerror(errno));
	int r = read_header(fd, path, h, &v, err, errlen);
	close(fd);
	if (r)
		return r;
	if (!v.v_encrypted)
		RETURN_ERR(-EINVAL, "volume %s: not encrypted (no data key)", path);
	uint8_t *k = key_page();
	if (!k)
		RETURN_ERR(-ENOMEM, "volume %s: out of memory", path);
	r = unwrap(path, h, k, err, errlen);
	if (!r && !has_key_check(h)) {
		/* A volume made before key checks: the key just unwrapped (authenticated by
		 * GCM) is right; record its check value so key-only openers can verify it. */
		r = key_check(k, h, h + H_KCV) < 0 ? -EIO : 0;
		header_sum(h, h + H_SUM);
		fd = r ? -1 : open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
		if (!r && fd < 0)
			r = -errno;
		if (!r)
			r = full_pwrite(fd, h, H_BYTES, 0);
		if (!r && fsync(fd) < 0)
			r = -errno;
		if (fd >= 0)
			close(fd);
		if (r)
			snprintf(err, errlen, "volume %s: adding the key check: %s", path,
				 strerror(-r));
	}
	if (!r)
		memcpy(dk, k, VOL_KEY_BYTES);
	key_page_free(k);
	return r;
}

static int open_volume(const char *path, bool readonly, bool lock, const uint8_t *key,
		       struct volume *v, char *err, size_t errlen);

int vol_open_key(const char *path, bool readonly, const uint8_t *key, struct volume *v, char *err,
		 size_t errlen)
{
	return open_volume(path, readonly, true, key, v, err, errlen);
}

int vol_open_paused(const char *path, struct volume *v, char *err, size_t errlen)
{
	return open_volume(path, true, false, NULL, v, err, errlen);
}

static int open_volume(const char *path, bool readonly, bool lock, const uint8_t *key,
		       struct volume *v, char *err, size_t errlen)
{
	uint8_t h[H_BYTES];
	*v = (struct volume){.v_fd = -1, .v_readonly = readonly};
	snprintf(v->v_path, sizeof(v->v_path), "%s", path);
	int fd = open(path, (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (fd < 0)
		RETURN_ERR(-errno, "volume %s: %s", path, strerror(errno));
	int r = read_header(fd, path, h, v, err, errlen);
	if (r)
		goto fail;
	if (lock && flock(fd, (readonly ? LOCK_SH : LOCK_EX) | LOCK_NB) < 0) {
		r = -errno;
		snprintf(err, errlen, "volume %s: in use by another process (%s)", path,
			 strerror(errno));
		goto fail;
	}
	if (key && !v->v_encrypted) {
		r = -EINVAL;
		snprintf(err, errlen, "volume %s: not encrypted, but a data key was given", path);
		goto fail;
	}
	if (v->v_encrypted) {
		/* The plaintext key goes straight into a locked page. */
		uint8_t *dk = key_page();
		if (!dk) {
			r = -ENOMEM;
			snprintf(err, errlen, "volume %s: out of memory", path);
			goto fail;
		}
		if (key) {
			uint8_t kcv[H_KCV_BYTES];
			memcpy(dk, key, VOL_KEY_BYTES);
			if (!has_key_check(h)) {
				r = -ENOKEY;
				snprintf(err, errlen,
					 "volume %s: the header has no key check, so the data key "
					 "given cannot be verified (its launcher adds one)",
					 path);
			} else if (key_check(dk, h, kcv) < 0 ||
				   CRYPTO_memcmp(kcv, h + H_KCV, H_KCV_BYTES)) {
				r = -EKEYREJECTED;
				snprintf(err, errlen,
					 "volume %s: wrong data key (the header's key check does "
					 "not match)",
					 path);
			}
		} else {
			r = unwrap(path, h, dk, err, errlen);
		}
		if (!r && !(v->v_crypt = crypt_new(dk))) {
			r = -EIO;
			snprintf(err, errlen, "volume %s: setting up AES-256-XTS failed", path);
		}
		key_page_free(dk);
		if (r)
			goto fail;
	}
	v->v_fd = fd;
	return 0;
fail:
	close(fd);
	return r;
}

int vol_open(const char *path, bool readonly, struct volume *v, char *err, size_t errlen)
{
	return vol_open_key(path, readonly, NULL, v, err, errlen);
}

void vol_close(struct volume *v)
{
	if (v->v_crypt)
		crypt_free(v->v_crypt);
	v->v_crypt = NULL;
	if (v->v_fd >= 0)
		close(v->v_fd);
	v->v_fd = -1;
}

static bool all_zero(const uint8_t *p, size_t len)
{
	return p[0] == 0 && memcmp(p, p + 1, len - 1) == 0;
}

static off_t data_off(uint64_t sector)
{
	return (off_t)(VOL_DATA_OFFSET + sector * VOL_SECTOR);
}

int vol_read(struct volume *v, uint64_t sector, void *buf, size_t len, char *err, size_t errlen)
{
	uint8_t *p = buf;
	size_t got;
	int r = full_pread(v->v_fd, p, len, data_off(sector), &got);
	if (r)
		RETURN_ERR(r, "volume %s: read: %s", v->v_path, strerror(-r));
	memset(p + got, 0, len - got);
	if (v->v_crypt && vol_decrypt(v, sector, p, p, len))
		RETURN_ERR(-EIO, "volume %s: decryption failed", v->v_path);
	return 0;
}

int vol_write(struct volume *v, uint64_t sector, const void *buf, size_t len, char *err,
	      size_t errlen)
{
	const uint8_t *p = buf;
	int r;
	if (!v->v_crypt) {
		if ((r = full_pwrite(v->v_fd, p, len, data_off(sector))))
			RETURN_ERR(r, "volume %s: write: %s", v->v_path, strerror(-r));
		return 0;
	}
	while (len) {
		size_t n = len < BOUNCE_BYTES ? len : BOUNCE_BYTES;
		if (xts_run(v->v_crypt->vc_enc, sector, p, v->v_crypt->vc_bounce, n))
			RETURN_ERR(-EIO, "volume %s: encryption failed", v->v_path);
		if ((r = full_pwrite(v->v_fd, v->v_crypt->vc_bounce, n, data_off(sector))))
			RETURN_ERR(r, "volume %s: write: %s", v->v_path, strerror(-r));
		p += n;
		len -= n;
		sector += n / VOL_SECTOR;
	}
	return 0;
}

static int punch(struct volume *v, int mode, uint64_t sector, uint64_t nsectors)
{
	if (fallocate(v->v_fd, mode, data_off(sector), (off_t)(nsectors * VOL_SECTOR)) < 0)
		return -errno;
	return 0;
}

int vol_write_zeroes(struct volume *v, uint64_t sector, uint64_t nsectors, bool unmap, char *err,
		     size_t errlen)
{
	static const uint8_t zero[64 * VOL_SECTOR];
	if (!v->v_crypt) {
		int mode = unmap ? FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
				 : FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;
		if (punch(v, mode, sector, nsectors) == 0 ||
		    punch(v, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, sector, nsectors) == 0)
			return 0;
	}
	/* Encrypted zeroes (or no fallocate support): write them out. */
	while (nsectors) {
		uint64_t n = nsectors < 64 ? nsectors : 64;
		int r = vol_write(v, sector, zero, n * VOL_SECTOR, err, errlen);
		if (r)
			return r;
		sector += n;
		nsectors -= n;
	}
	return 0;
}

int vol_discard(struct volume *v, uint64_t sector, uint64_t nsectors, char *err, size_t errlen)
{
	int r = punch(v, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, sector, nsectors);
	if (r && r != -EOPNOTSUPP)
		RETURN_ERR(r, "volume %s: discard: %s", v->v_path, strerror(-r));
	return 0; /* discard is advisory: unsupported means nothing to do */
}

int vol_flush(struct volume *v, char *err, size_t errlen)
{
	if (fdatasync(v->v_fd) < 0)
		RETURN_ERR(-errno, "volume %s: fdatasync: %s", v->v_path, strerror(errno));
	return 0;
}

int vol_encrypt(struct volume *v, uint64_t sector, const void *in, void *out, size_t len)
{
	return xts_run(v->v_crypt->vc_enc, sector, in, out, len);
}

int vol_decrypt(struct volume *v, uint64_t sector, const void *in, void *out, size_t len)
{
	const uint8_t *p = in;
	uint8_t *q = out;
	size_t off = 0;
	while (off < len) {
		/* A never-written (or discarded) sector is a hole: it reads as zeroes. */
		if (all_zero(p + off, VOL_SECTOR)) {
			if (q != p)
				memset(q + off, 0, VOL_SECTOR);
			off += VOL_SECTOR;
			continue;
		}
		size_t end = off + VOL_SECTOR; /* the run of written sectors from off */
		while (end < len && !all_zero(p + end, VOL_SECTOR))
			end += VOL_SECTOR;
		if (xts_run(v->v_crypt->vc_dec, sector + off / VOL_SECTOR, p + off, q + off,
			    end - off))
			return -EIO;
		off = end;
	}
	return 0;
}

void vol_init_raw(struct volume *v, const char *name, uint64_t size, bool readonly)
{
	uint8_t sum[32];
	unsigned n = sizeof(sum);
	*v = (struct volume){.v_fd = -1, .v_size = size, .v_readonly = readonly};
	snprintf(v->v_path, sizeof(v->v_path), "%s", name);
	EVP_Digest(name, strlen(name), sum, &n, EVP_sha256(), NULL);
	memcpy(v->v_id, "vol-", 4);
	for (int i = 0; i < 17; i++)
		v->v_id[4 + i] = "0123456789abcdef"[(sum[i / 2] >> (i % 2 ? 0 : 4)) & 15];
	v->v_id[VOL_ID_LEN] = '\0';
}

int vol_set_ephemeral_key(struct volume *v, char *err, size_t errlen)
{
	uint8_t *dk = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (dk == MAP_FAILED)
		RETURN_ERR(-ENOMEM, "volume %s: out of memory", v->v_path);
	mlock(dk, 4096);
	int ok = RAND_bytes(dk, VOL_KEY_BYTES) == 1 && CRYPTO_memcmp(dk, dk + 32, 32) != 0;
	if (ok)
		v->v_crypt = crypt_new(dk);
	OPENSSL_cleanse(dk, 4096);
	munlock(dk, 4096);
	munmap(dk, 4096);
	if (!ok || !v->v_crypt)
		RETURN_ERR(-EIO, "volume %s: setting up an ephemeral AES-256-XTS key failed",
			   v->v_path);
	v->v_encrypted = true;
	return 0;
}
