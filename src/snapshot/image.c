/* Volumes from raw and qcow2 images through qemu-img (snapshot.h). The image is opened
 * once; qemu-img gets it as an inherited fd (/proc/self/fd/3), never by its path again. A qcow2
 * is converted by qemu-img into an unnamed temporary file (O_TMPFILE, beside the new
 * volume, gone when closed), which is then read like a raw image. */
#include "snapshot/snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "lib/util.h"

#define QEMU_IMG "qemu-img"
#define INFO_MAX (1u << 20)

/* Runs qemu-img with the image as fd 3 (and out_fd as fd 4 when >= 0); its stdout into
 * *out (at most INFO_MAX bytes) when out, else to stderr; stderr into errbuf. A hostile
 * image must not make `qemu-img info` (out set) run or grow without end: it gets 30 s of
 * CPU and 2 GiB of address space; a conversion gets 4 GiB of address space. */
static int run_qemu_img(char *const argv[], int img_fd, int out_fd, char **out, char *errbuf,
			size_t errlen)
{
	int po[2] = {-1, -1}, pe[2];
	if ((out && pipe2(po, O_CLOEXEC) < 0) || pipe2(pe, O_CLOEXEC) < 0)
		return -errno;
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		/* fds 3 and 4 may be among the ones being moved: go through high numbers. */
		int a = fcntl(img_fd, F_DUPFD, 100),
		    b = out_fd >= 0 ? fcntl(out_fd, F_DUPFD, 100) : -1;
		dup2(out ? po[1] : 2, 1);
		dup2(pe[1], 2);
		if (a < 0 || dup2(a, 3) < 0 || (b >= 0 && dup2(b, 4) < 0))
			_exit(126);
		signal(SIGPIPE, SIG_DFL);
		struct rlimit cpu = {30, 30},
			      as = {out ? 2ull << 30 : 4ull << 30, out ? 2ull << 30 : 4ull << 30};
		if ((out && setrlimit(RLIMIT_CPU, &cpu) < 0) || setrlimit(RLIMIT_AS, &as) < 0)
			_exit(126);
		execvp(QEMU_IMG, argv);
		_exit(127);
	}
	if (out)
		close(po[1]);
	close(pe[1]);
	size_t olen = 0, elen = 0;
	char *ob = out ? malloc(INFO_MAX + 1) : NULL;
	char eb[2048];
	/* stdout first (bounded), then stderr: qemu-img writes little to stderr. */
	while (ob) {
		ssize_t n = read(po[0], ob + olen, INFO_MAX - olen);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		olen += (size_t)n;
		if (olen == INFO_MAX)
			break;
	}
	for (;;) {
		ssize_t n = read(pe[0], eb + elen, sizeof(eb) - 1 - elen);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		elen += (size_t)n;
		if (elen == sizeof(eb) - 1)
			break;
	}
	eb[elen] = 0;
	while (elen && (eb[elen - 1] == '\n' || eb[elen - 1] == '\r'))
		eb[--elen] = 0;
	if (out)
		close(po[0]);
	close(pe[0]);
	if (olen == INFO_MAX)
		kill(pid, SIGKILL);
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	snprintf(errbuf, errlen, "%.*s", (int)(errlen ? errlen - 1 : 0), eb);
	if (ob)
		ob[olen] = 0;
	if (out)
		*out = ob;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
		return -ENOENT;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || olen == INFO_MAX) {
		if (out) {
			free(ob);
			*out = NULL;
		}
		return -EIO;
	}
	return 0;
}

/* qemu-img info: format (raw/qcow2 only), virtual size, no backing or data file. */
static int probe(int fd, const char *img, char fmt[16], uint64_t *vsize, char *err, size_t errlen)
{
	char *const argv[] = {QEMU_IMG, "info", "-U", "--output=json", "/proc/self/fd/3", NULL};
	char *out = NULL, qerr[1024];
	int r = run_qemu_img(argv, fd, -1, &out, qerr, sizeof(qerr));
	if (r == -ENOENT)
		RETURN_ERR(r, "image %s: qemu-img is not installed (Debian: qemu-utils)", img);
	if (r)
		RETURN_ERR(-EINVAL, "image %s: qemu-img cannot read it: %s", img,
			   *qerr ? qerr : "failed");
	json_error_t je;
	json_t *j = json_loads(out, 0, &je);
	free(out);
	if (!json_is_object(j)) {
		json_decref(j);
		RETURN_ERR(-EINVAL, "image %s: qemu-img info gave no JSON object", img);
	}
	const char *f = json_string_value(json_object_get(j, "format"));
	json_t *vs = json_object_get(j, "virtual-size");
	json_t *data = json_object_get(json_object_get(j, "format-specific"), "data");
	r = 0;
	if (!f || (strcmp(f, "raw") && strcmp(f, "qcow2")))
		r = snprintf(err, errlen, "image %s: format %s refused (raw or qcow2 only)", img,
			     f ? f : "unknown");
	else if (json_object_get(j, "backing-filename") ||
		 json_object_get(j, "full-backing-filename"))
		r = snprintf(err, errlen,
			     "image %s: has a backing file; refused (it would read another file: "
			     "flatten it with qemu-img convert first)",
			     img);
	else if (json_object_get(data, "data-file"))
		r = snprintf(err, errlen, "image %s: has an external data file; refused", img);
	else if (!json_is_integer(vs) || json_integer_value(vs) <= 0 ||
		 (uint64_t)json_integer_value(vs) > SNAP_IMAGE_MAX)
		r = snprintf(err, errlen,
			     "image %s: virtual size %lld refused (1 byte to %llu TiB)", img,
			     json_is_integer(vs) ? (long long)json_integer_value(vs) : -1,
			     SNAP_IMAGE_MAX >> 40);
	if (!r) {
		snprintf(fmt, 16, "%s", f);
		*vsize = (uint64_t)json_integer_value(vs);
	}
	json_decref(j);
	return r ? -EINVAL : 0;
}

static bool is_zero(const uint8_t *p, size_t len)
{
	return p[0] == 0 && memcmp(p, p + 1, len - 1) == 0;
}

/* Copies vsize bytes of raw data from src into the open volume, skipping holes and zeroes. */
static int copy_raw(int src, uint64_t vsize, struct volume *v, snap_progress_fn *pf, void *po,
		    char *err, size_t errlen)
{
	uint8_t *buf = malloc(SNAP_CHUNK);
	if (!buf)
		RETURN_ERR(-ENOMEM, "out of memory");
	int r = 0;
	for (uint64_t off = 0; off < vsize && !r; off += SNAP_CHUNK) {
		size_t len = vsize - off < SNAP_CHUNK ? (size_t)(vsize - off) : SNAP_CHUNK;
		if (pf && off % (16 * SNAP_CHUNK) == 0)
			pf(po, off, vsize);
		off_t d = lseek(src, (off_t)off, SEEK_DATA);
		if ((d < 0 && errno == ENXIO) || (d >= 0 && (uint64_t)d >= off + len))
			continue; /* a hole: the new volume reads zeroes there already */
		size_t got = 0;
		while (got < len) {
			ssize_t n = pread(src, buf + got, len - got, (off_t)(off + got));
			if (n < 0 && errno == EINTR)
				continue;
			if (n == 0) { /* qemu rounds a raw image up to whole sectors */
				memset(buf + got, 0, len - got);
				break;
			}
			if (n < 0) {
				r = -errno;
				snprintf(err, errlen, "image: read at %llu: %s",
					 (unsigned long long)(off + got), strerror(errno));
				break;
			}
			got += (size_t)n;
		}
		if (r)
			break;
		size_t padded = (len + VOL_SECTOR - 1) / VOL_SECTOR * VOL_SECTOR;
		memset(buf + len, 0, padded - len);
		if (is_zero(buf, padded))
			continue;
		r = vol_write(v, off / VOL_SECTOR, buf, padded, err, errlen);
	}
	OPENSSL_cleanse(buf, SNAP_CHUNK);
	free(buf);
	if (!r && pf)
		pf(po, vsize, vsize);
	return r;
}

int snap_import_image(const char *img, const char *path, uint64_t size, bool encrypted,
		      snap_progress_fn *pf, void *po, char vol_id[VOL_ID_LEN + 1], char *err,
		      size_t errlen)
{
	int fd = open(img, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		RETURN_ERR(-errno, "image %s: %s", img, strerror(errno));
	int r = snap_import_image_fd(fd, img, path, size, encrypted, pf, po, vol_id, err, errlen);
	close(fd);
	return r;
}

int snap_import_image_fd(int img_fd, const char *img, const char *path, uint64_t size,
			 bool encrypted, snap_progress_fn *pf, void *po,
			 char vol_id[VOL_ID_LEN + 1], char *err, size_t errlen)
{
	int fd = fcntl(img_fd, F_DUPFD_CLOEXEC, 3);
	if (fd < 0)
		RETURN_ERR(-errno, "image %s: %s", img, strerror(errno));
	struct stat st;
	char fmt[16];
	uint64_t vsize = 0;
	int r = fstat(fd, &st) < 0 ? -errno : 0;
	if (!r && !S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
		r = -EINVAL;
	if (r) {
		close(fd);
		RETURN_ERR(r, "image %s: %s", img,
			   r == -EINVAL ? "not a regular file or block device" : strerror(-r));
	}
	if ((r = probe(fd, img, fmt, &vsize, err, errlen))) {
		close(fd);
		return r;
	}
	uint64_t need = (vsize + VOL_SECTOR - 1) / VOL_SECTOR * VOL_SECTOR;
	if (size == 0)
		size = need;
	if (size < need) {
		close(fd);
		RETURN_ERR(-EINVAL, "image %s: --size %llu is smaller than the image (%llu bytes)",
			   img, (unsigned long long)size, (unsigned long long)vsize);
	}
	int src = fd;
	if (strcmp(fmt, "raw")) {
		/* qcow2: qemu-img converts into an unnamed file beside the new volume. */
		char dir[PATH_MAX];
		snprintf(dir, sizeof(dir), "%s", path);
		src = open(dirname(dir), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
		if (src < 0 || ftruncate(src, (off_t)vsize) < 0) {
			r = -errno;
			if (src >= 0)
				close(src);
			close(fd);
			RETURN_ERR(r, "image %s: a temporary file beside %s: %s", img, path,
				   strerror(-r));
		}
		char *const argv[] = {QEMU_IMG,
				      "convert",
				      "-U",
				      "-f",
				      fmt,
				      "-O",
				      "raw",
				      "-n",
				      pf ? "-p" : "-q",
				      "/proc/self/fd/3",
				      "/proc/self/fd/4",
				      NULL};
		char qerr[1024];
		if (pf)
			fprintf(stderr, "%s: converting %s (%s) with qemu-img\n", util_prog(), img,
				fmt);
		r = run_qemu_img(argv, fd, src, NULL, qerr, sizeof(qerr));
		close(fd);
		if (r) {
			close(src);
			RETURN_ERR(-EINVAL, "image %s: qemu-img convert failed: %s", img,
				   *qerr ? qerr : "no message");
		}
	}
	if ((r = vol_create(path, size, encrypted, vol_id, err, errlen))) {
		close(src);
		return r;
	}
	struct volume v;
	if ((r = vol_open(path, false, &v, err, errlen))) {
		close(src);
		unlink(path);
		return r;
	}
	r = copy_raw(src, vsize, &v, pf, po, err, errlen);
	close(src);
	if (!r)
		r = vol_flush(&v, err, errlen);
	vol_close(&v);
	if (r)
		unlink(path);
	return r;
}
