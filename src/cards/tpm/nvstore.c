/* Encrypted NV blobs of the TPM card (contract in nvstore.h). */
#include "cards/tpm/nvstore.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/util.h"

#define NV_MAGIC "NTPMNV01"
#define NV_HDR (8 + 12 + 16)
#define NV_NAMES 4

static int g_dir = -1;
static uint8_t g_key[NV_KEY_BYTES];
static const char *const names[NV_NAMES] = {"permall", "volatilestate", "savestate", "resume"};
static struct {
	uint8_t *data;
	uint32_t len;
	bool set;
} g_mem[NV_NAMES];

static int name_index(const char *name)
{
	for (int i = 0; i < NV_NAMES; i++)
		if (!strcmp(name, names[i]))
			return i;
	return -1;
}

int nv_init(int dirfd, const uint8_t key[NV_KEY_BYTES], char *err, size_t errlen)
{
	(void)err;
	(void)errlen;
	g_dir = dirfd;
	memcpy(g_key, key, NV_KEY_BYTES);
	return 0;
}

static int nv_crypt(bool enc, const char *name, const uint8_t *nonce, const uint8_t *in, int len,
		    uint8_t *out, uint8_t *tag)
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int n = 0, ok = c && EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, g_key, nonce, enc) &&
			EVP_CipherUpdate(c, NULL, &n, (const uint8_t *)NV_MAGIC, 8) &&
			EVP_CipherUpdate(c, NULL, &n, (const uint8_t *)name, (int)strlen(name)) &&
			(len == 0 || EVP_CipherUpdate(c, out, &n, in, len));
	if (ok && !enc)
		ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, tag);
	if (ok)
		ok = EVP_CipherFinal_ex(c, out + (len ? n : 0), &n);
	if (ok && enc)
		ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, tag);
	EVP_CIPHER_CTX_free(c);
	return ok ? 0 : -1;
}

int nv_load(const char *name, uint8_t **data, uint32_t *len)
{
	int i = name_index(name);
	*data = NULL;
	*len = 0;
	if (i < 0)
		return 1;
	if (g_dir < 0) {
		if (!g_mem[i].set)
			return 1;
		*data = malloc(g_mem[i].len ? g_mem[i].len : 1);
		if (!*data)
			return -1;
		memcpy(*data, g_mem[i].data, g_mem[i].len);
		*len = g_mem[i].len;
		return 0;
	}
	char fn[32];
	snprintf(fn, sizeof(fn), "%s.nvs", name);
	int fd = openat(g_dir, fn, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT ? 1 : -1;
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size < NV_HDR ||
	    st.st_size > NV_HDR + NV_MAX_BLOB) {
		close(fd);
		return -1;
	}
	size_t n = (size_t)st.st_size;
	uint8_t *file = malloc(n), *plain = malloc(n - NV_HDR + 1);
	bool ok =
	    file && plain && pread(fd, file, n, 0) == (ssize_t)n && !memcmp(file, NV_MAGIC, 8) &&
	    nv_crypt(false, name, file + 8, file + NV_HDR, (int)(n - NV_HDR), plain, file + 20) ==
		0;
	close(fd);
	free(file);
	if (!ok) {
		free(plain);
		return -1;
	}
	*data = plain;
	*len = (uint32_t)(n - NV_HDR);
	return 0;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int store(const char *name, const uint8_t *data, uint32_t len, bool durable)
{
	int i = name_index(name);
	if (i < 0 || len > NV_MAX_BLOB)
		return -1;
	if (g_dir < 0) {
		uint8_t *copy = malloc(len ? len : 1);
		if (!copy)
			return -1;
		memcpy(copy, data, len);
		free(g_mem[i].data);
		g_mem[i].data = copy;
		g_mem[i].len = len;
		g_mem[i].set = true;
		return 0;
	}
	uint8_t *file = malloc(NV_HDR + (size_t)len);
	if (!file)
		return -1;
	memcpy(file, NV_MAGIC, 8);
	int rc = -1;
	if (RAND_bytes(file + 8, 12) != 1 ||
	    nv_crypt(true, name, file + 8, data, (int)len, file + NV_HDR, file + 20) < 0)
		goto out;
	char tmp[32], fn[32];
	snprintf(tmp, sizeof(tmp), "%s.tmp", name);
	snprintf(fn, sizeof(fn), "%s.nvs", name);
	int fd = openat(g_dir, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		goto out;
	bool ok = write_all(fd, file, NV_HDR + (size_t)len) == 0 && (!durable || fsync(fd) == 0);
	close(fd);
	if (ok && renameat(g_dir, tmp, g_dir, fn) == 0 && (!durable || fsync(g_dir) == 0))
		rc = 0;
	else
		unlinkat(g_dir, tmp, 0);
out:
	OPENSSL_cleanse(file, NV_HDR + (size_t)len);
	free(file);
	return rc;
}

int nv_store(const char *name, const uint8_t *data, uint32_t len)
{
	return store(name, data, len, true);
}

int nv_store_fast(const char *name, const uint8_t *data, uint32_t len)
{
	return store(name, data, len, false);
}

int nv_delete(const char *name)
{
	int i = name_index(name);
	if (i < 0)
		return -1;
	if (g_dir < 0) {
		free(g_mem[i].data);
		g_mem[i].data = NULL;
		g_mem[i].set = false;
		return 0;
	}
	char fn[32];
	snprintf(fn, sizeof(fn), "%s.nvs", name);
	if (unlinkat(g_dir, fn, 0) < 0)
		return errno == ENOENT ? 0 : -1;
	return fsync(g_dir);
}
