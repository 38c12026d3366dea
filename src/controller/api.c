/* The nitrod API routes (see api.h). */
#include "controller/api.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "controller/api_int.h"
#include "controller/audit.h"
#include "controller/bootfile.h"
#include "controller/ctl.h"
#include "controller/enclave_ca.h"
#include "controller/istore.h"
#include "controller/launcher.h"
#include "controller/records.h"
#include "controller/store.h"
#include "controller/supervise.h"
#include "lib/util.h"
#include "securitychip/chip.h"
#include "securitychip/identity.h"
#include "snapshot/snapshot.h"
#include "volume/volume.h"

/* Copies a string, cut to fit (details and paths whose length the caller bounds). */
static void scopy(char *dst, size_t len, const char *src)
{
	size_t n = strnlen(src, len - 1);
	memcpy(dst, src, n);
	dst[n] = 0;
}

static void set_json(struct api_resp *rs, int status, json_t *j)
{
	rs->rs_status = status;
	rs->rs_body = json_dumps(j, JSON_COMPACT);
	rs->rs_len = rs->rs_body ? strlen(rs->rs_body) : 0;
	rs->rs_type = "application/json";
	json_decref(j);
}

static void __attribute__((format(printf, 3, 4)))
fail(struct api_resp *rs, int status, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	scopy(rs->rs_detail, sizeof(rs->rs_detail), msg);
	set_json(rs, status, json_pack("{s:s}", "error", msg));
}

static void not_allowed(struct api_resp *rs, const char *allow)
{
	rs->rs_allow = allow;
	fail(rs, 405, "method not allowed (this route takes %s)", allow);
}

/* m is one of the ", "-separated methods of allow. */
static bool method_in(const char *m, const char *allow)
{
	size_t n = strlen(m);
	for (const char *p = allow; n && *p;) {
		const char *e = strchr(p, ',');
		size_t l = e ? (size_t)(e - p) : strlen(p);
		if (l == n && !strncmp(p, m, n))
			return true;
		p = e ? e + 2 : p + l;
	}
	return false;
}

static void ok_inst(struct api_resp *rs, int status, struct instance *in)
{
	sfmt(rs->rs_detail, sizeof(rs->rs_detail), "%s %s", in->i_id, state_name(in->i_state));
	rs->rs_status = status;
	rs->rs_type = "application/json";
	rs->rs_len = 0;
	rs->rs_body = inst_view_text(in, &rs->rs_len);
}

static void ok_vol(struct api_resp *rs, int status, const struct volrec *v)
{
	sfmt(rs->rs_detail, sizeof(rs->rs_detail), "%s", v->v_id);
	set_json(rs, status, vol_json(v, false));
}

static void new_id(const char *prefix, char *out, size_t len)
{
	uint8_t r[9];
	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
		for (size_t i = 0; i < sizeof(r); i++)
			r[i] = (uint8_t)(rand() ^ (int)time(NULL));
	char hex[19];
	for (int i = 0; i < 9; i++)
		sfmt(hex + 2 * i, 3, "%02x", r[i]);
	hex[17] = 0;
	sfmt(out, len, "%s%s", prefix, hex);
}

/* An id from the URL: named in messages only when well-formed. */
static const char *shown(const char *id, const char *prefix)
{
	return spec_id_ok(id, prefix) ? id : "(malformed id)";
}

/* A host file named in a request must be a regular file inside one of the folders nitrod
 * serves boot files from (--images, --files), reached without a symbolic link: checked
 * here for a clear 400, and opened the same way again by every launch, which measures
 * and hands over that open file (bootfile.h). */
static int check_file(const char *what, const char *path, uid_t owner, struct api_resp *rs)
{
	char err[PATH_MAX + 256];
	int fd = bootfile_open(what, path, owner, err, sizeof(err));
	if (fd < 0) {
		fail(rs, 400, "%s", err);
		return -1;
	}
	close(fd);
	return 0;
}

/* A call's records (issue 10 item 6): a call that may change state writes them in one
 * transaction (store.h) and commits it before it acts (starts or signals processes,
 * answers); a commit that fails rolls them back and fails the call with 503, and the route
 * restores what it changed in memory: nothing changed. */
static bool changes_state(const char *method)
{
	return strcmp(method, "GET") && strcmp(method, "HEAD");
}

/* Commits the call's records: 0, or -1 with rs failed (503), the records rolled back. */
static int commit(struct api_resp *rs)
{
	char err[512];
	if (!g_ctl.c_save_failed && store_txn_commit(g_ctl.c_store, err, sizeof(err)) == 0) {
		store_txn_begin(g_ctl.c_store); /* the call's later records: a new transaction */
		return 0;
	}
	if (g_ctl.c_save_failed)
		sfmt(err, sizeof(err), "%s", g_ctl.c_save_err);
	store_txn_rollback(g_ctl.c_store);
	g_ctl.c_save_failed = false;
	store_txn_begin(g_ctl.c_store);
	fail(rs, 503, "the state database cannot be written (%s): nothing was changed", err);
	return -1;
}

/* Records the state an instance action moves it to, before acting: 0, or -1 (503, the
 * instance as it was). */
static int record_intent(struct instance *in, int state, int goal, struct api_resp *rs)
{
	int os = in->i_state, og = in->i_goal;
	in->i_state = state;
	in->i_goal = goal;
	inst_save(in);
	if (commit(rs) == 0)
		return 0;
	in->i_state = os;
	in->i_goal = og;
	return -1;
}

/* --- owners: an instance or a volume is its creator's (docs/api.md, "Owners") --- */

/* Root, nitrod's own uid and every --admin-uid see and act on everything. */
static bool is_admin(uid_t uid)
{
	if (uid == 0 || uid == geteuid())
		return true;
	for (unsigned i = 0; i < g_ctl.c_nadmin; i++)
		if (g_ctl.c_admin[i] == uid)
			return true;
	return false;
}

/* What another uid owns does not exist for the caller: the same 404 as an unknown id, so
 * that ids cannot be probed. */
static struct instance *inst_visible(const struct api_req *rq, const char *id)
{
	struct instance *in = inst_find(id);
	return in && (in->i_owner == rq->ar_uid || is_admin(rq->ar_uid)) ? in : NULL;
}

static struct volrec *vol_visible(const struct api_req *rq, const char *id)
{
	struct volrec *v = vol_find(id);
	return v && (v->v_owner == rq->ar_uid || is_admin(rq->ar_uid)) ? v : NULL;
}

static uid_t next_uid(void)
{
	uid_t max = g_ctl.c_uid_base;
	for (struct instance *in = g_ctl.c_instances; in; in = in->i_next)
		if (in->i_uid >= max)
			max = in->i_uid + 1;
	return max;
}

/* --- instances --- */

static void instances_create(const struct api_req *rq, struct api_resp *rs)
{
	struct inst_spec s;
	char err[512];
	if (spec_parse_instance(rq->ar_body, rq->ar_len, &s, err, sizeof(err))) {
		fail(rs, 400, "%s", err);
		return;
	}
	if (s.s_nnics) {
		char vpc[PATH_MAX + 32];
		sfmt(vpc, sizeof(vpc), "%s/nitro-card-vpc", g_ctl.c_bin_dir);
		if (access(vpc, X_OK) != 0) {
			fail(rs, 400, "nics: nitro-card-vpc is not installed on this host");
			return;
		}
		for (unsigned i = 0; i < s.s_nnics; i++)
			if (s.s_nics[i].n_sg[0] &&
			    check_file("nics sg", s.s_nics[i].n_sg, rq->ar_uid, rs))
				return;
		/* In a VPC with a record: inside its CIDR (its gateway comes with the launch) */
		if (vpcs_check_nics(&s, rs))
			return;
	}
	if (s.s_kernel[0] && check_file("kernel", s.s_kernel, rq->ar_uid, rs))
		return;
	/* The cards serve these to the guest: only files of the served folders. */
	if (s.s_user_data[0] && check_file("user_data", s.s_user_data, rq->ar_uid, rs))
		return;
	if (s.s_ssh_key[0] && check_file("ssh_key", s.s_ssh_key, rq->ar_uid, rs))
		return;
	if (s.s_initrd[0] && check_file("initrd", s.s_initrd, rq->ar_uid, rs))
		return;
	/* Only a folder nitrod serves instance stores from (istore.h). */
	if (s.s_istore_mib && istore_check(s.s_istore_dir, err, sizeof(err))) {
		fail(rs, 400, "%s", err);
		return;
	}
	for (unsigned i = 0; i < s.s_nvols; i++) {
		struct volrec *v = vol_visible(rq, s.s_vols[i].vr_id);
		if (!v) {
			fail(rs, 404, "volume %s not found", s.s_vols[i].vr_id);
			return;
		}
		/* An admin, too, gives an instance only volumes of the instance's owner. */
		if (v->v_owner != rq->ar_uid) {
			fail(rs, 409,
			     "volume %s belongs to uid %u: an instance takes only its owner's "
			     "volumes",
			     v->v_id, (unsigned)v->v_owner);
			return;
		}
		if (v->v_attached[0]) {
			fail(rs, 409, "volume %s is attached to %s", v->v_id, v->v_attached);
			return;
		}
	}
	struct instance *in = calloc(1, sizeof(*in));
	if (!in) {
		fail(rs, 500, "out of memory");
		return;
	}
	do
		new_id("i-", in->i_id, sizeof(in->i_id));
	while (inst_find(in->i_id));
	in->i_spec = s;
	in->i_uid = next_uid();
	in->i_gid = in->i_uid;
	in->i_owner = rq->ar_uid;
	in->i_created = (int64_t)time(NULL);
	in->i_hv.p_pidfd = -1;
	for (unsigned i = 0; i < s.s_nvols; i++) {
		struct volrec *v = vol_find(s.s_vols[i].vr_id);
		sfmt(v->v_attached, sizeof(v->v_attached), "%s", in->i_id);
		vol_save(v);
	}
	/* Newest last: lists come out in creation order. */
	struct instance **tail = &g_ctl.c_instances;
	while (*tail)
		tail = &(*tail)->i_next;
	*tail = in;
	inst_save(in);
	if (commit(rs) < 0) {
		for (unsigned i = 0; i < s.s_nvols; i++)
			vol_find(s.s_vols[i].vr_id)->v_attached[0] = 0;
		*tail = NULL;
		free(in);
		return;
	}
	inst_launch(in);
	ok_inst(rs, 201, in);
	if (in->i_state == ST_FAILED)
		sfmt(rs->rs_detail, sizeof(rs->rs_detail), "%s failed: %.200s", in->i_id,
		     in->i_reason);
}

static void instances_list(const struct api_req *rq, struct api_resp *rs)
{
	json_t *a = json_array();
	for (struct instance *in = g_ctl.c_instances; in; in = in->i_next)
		if (in->i_owner == rq->ar_uid || is_admin(rq->ar_uid))
			json_array_append_new(a, inst_json(in, false));
	set_json(rs, 200, json_pack("{s:o}", "instances", a));
}

static void console(struct instance *in, struct api_resp *rs)
{
	if (!in->i_spec.s_console) {
		fail(rs, 403,
		     "the serial console of %s is off (an instance must be launched with "
		     "\"console\": true)",
		     in->i_id);
		return;
	}
	char path[PATH_MAX];
	inst_console_path(in, path, sizeof(path));
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	rs->rs_status = 200;
	rs->rs_type = "text/plain; charset=utf-8";
	sfmt(rs->rs_detail, sizeof(rs->rs_detail), "%s console", in->i_id);
	if (fd < 0 || fstat(fd, &st) < 0) {
		if (fd >= 0)
			close(fd);
		rs->rs_body = strdup("");
		rs->rs_len = 0;
		return;
	}
	size_t len = (size_t)st.st_size > API_MAX_CONSOLE ? API_MAX_CONSOLE : (size_t)st.st_size;
	rs->rs_body = malloc(len + 1);
	ssize_t n = rs->rs_body ? pread(fd, rs->rs_body, len, st.st_size - (off_t)len) : -1;
	close(fd);
	rs->rs_len = n > 0 ? (size_t)n : 0;
}

/* A DER object as PEM text (malloc'd), or NULL. */
static char *pem_of(int (*write)(BIO *, void *), void *obj)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *text = NULL, *data;
	if (b && write(b, obj) == 1) {
		long n = BIO_get_mem_data(b, &data);
		if (n > 0 && (text = malloc((size_t)n + 1))) {
			memcpy(text, data, (size_t)n);
			text[n] = 0;
		}
	}
	BIO_free(b);
	return text;
}

static int write_cert(BIO *b, void *x)
{
	return PEM_write_bio_X509(b, x);
}

static int write_pubkey(BIO *b, void *k)
{
	return PEM_write_bio_PUBKEY(b, k);
}

/* GET /v1/instances/ID/tpm/ek[?key_type=ecc-nist-p256|rsa-2048]: the TPM's endorsement
 * key and its certificate from the chip's EK CA (AWS's GetInstanceTpmEkPub), from nitrod's
 * own copy of the certificate (launcher.h): never from the card or the guest. The public
 * key is the certificate's. */
static void tpm_ek(struct instance *in, const struct api_req *rq, struct api_resp *rs)
{
	const char *type = rq->ar_key_type ? rq->ar_key_type : "ecc-nist-p256";
	bool rsa = !strcmp(type, "rsa-2048");
	if (!rsa && strcmp(type, "ecc-nist-p256")) {
		fail(rs, 400, "key_type: expected ecc-nist-p256 or rsa-2048");
		return;
	}
	if (!in->i_spec.s_tpm) {
		fail(rs, 404, "instance %s has no TPM (it was launched without \"tpm\": true)",
		     in->i_id);
		return;
	}
	if (in->i_state == ST_TERMINATED) {
		fail(rs, 409, "instance %s is terminated: its TPM was destroyed", in->i_id);
		return;
	}
	char path[PATH_MAX];
	uint8_t *der = NULL;
	size_t len = 0;
	inst_tpm_cert_path(in, rsa, path, sizeof(path));
	int r = read_file(path, 8192, &der, &len);
	if (r) {
		fail(rs, 409, "the TPM of instance %s has no %s endorsement yet (%s)", in->i_id,
		     type, r == ENOENT ? "it has not started" : strerror(r));
		return;
	}
	const unsigned char *p = der;
	X509 *x = d2i_X509(NULL, &p, (long)len);
	EVP_PKEY *k = x ? X509_get0_pubkey(x) : NULL;
	char *cert = k ? pem_of(write_cert, x) : NULL;
	char *pub = k ? pem_of(write_pubkey, k) : NULL;
	free(der);
	if (!cert || !pub) {
		fail(rs, 500, "the EK certificate of instance %s cannot be read", in->i_id);
	} else {
		set_json(rs, 200,
			 json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "instance_id", in->i_id,
				   "key_type", type, "key_format", "pem", "nv_index",
				   rsa ? "0x01c00002" : "0x01c0000a", "public_key", pub,
				   "certificate", cert));
		sfmt(rs->rs_detail, sizeof(rs->rs_detail), "%s tpm ek %s", in->i_id, type);
	}
	X509_free(x);
	free(cert);
	free(pub);
}

static void instance_action(struct instance *in, const char *action, const struct api_req *rq,
			    struct api_resp *rs)
{
	char err[512];
	if (spec_parse_empty(rq->ar_body, rq->ar_len, err, sizeof(err))) {
		fail(rs, 400, "%s", err);
		return;
	}
	const char *st = state_name(in->i_state);
	if (!strcmp(action, "stop")) {
		if (in->i_state != ST_RUNNING) {
			fail(rs, 409, "instance %s is %s: only a running instance can be stopped",
			     in->i_id, st);
			return;
		}
		if (record_intent(in, ST_STOPPING, GOAL_STOP, rs) < 0)
			return;
		inst_stop(in, GOAL_STOP);
	} else if (!strcmp(action, "start")) {
		if (in->i_state != ST_STOPPED && in->i_state != ST_FAILED) {
			fail(rs, 409,
			     "instance %s is %s: only a stopped or failed instance can be started",
			     in->i_id, st);
			return;
		}
		if (record_intent(in, ST_PENDING, GOAL_RUN, rs) < 0)
			return;
		inst_launch(in);
	} else if (!strcmp(action, "reboot")) {
		if (in->i_state != ST_RUNNING || in->i_goal != GOAL_RUN) {
			fail(rs, 409, "instance %s is %s: only a running instance can be rebooted",
			     in->i_id, in->i_goal == GOAL_REBOOT ? "rebooting" : st);
			return;
		}
		if (record_intent(in, in->i_state, GOAL_REBOOT, rs) < 0)
			return;
		inst_stop(in, GOAL_REBOOT);
	}
	ok_inst(rs, 200, in);
}

static void instances_route(const struct api_req *rq, char **seg, int nseg, struct api_resp *rs)
{
	const char *m = rq->ar_method;
	if (nseg == 2) {
		if (!strcmp(m, "POST"))
			instances_create(rq, rs);
		else if (!strcmp(m, "GET"))
			instances_list(rq, rs);
		else
			not_allowed(rs, "GET, POST");
		return;
	}
	struct instance *in = inst_visible(rq, seg[2]);
	bool ek_route = nseg == 5 && !strcmp(seg[3], "tpm") && !strcmp(seg[4], "ek");
	if (nseg == 5 && !ek_route) {
		fail(rs, 404, "no route %s", rq->ar_url);
		return;
	}
	if (nseg == 4 && strcmp(seg[3], "stop") && strcmp(seg[3], "start") &&
	    strcmp(seg[3], "reboot") && strcmp(seg[3], "console")) {
		fail(rs, 404, "no route %s", rq->ar_url);
		return;
	}
	bool console_route = nseg == 4 && !strcmp(seg[3], "console");
	const char *allow = nseg == 3 ? "GET, DELETE" : console_route || ek_route ? "GET" : "POST";
	if (!method_in(m, allow)) {
		not_allowed(rs, allow);
		return;
	}
	if (!in) {
		fail(rs, 404, "instance %s not found", shown(seg[2], "i-"));
		return;
	}
	if (nseg == 3 && !strcmp(m, "GET")) {
		ok_inst(rs, 200, in);
	} else if (nseg == 3) { /* DELETE: terminate */
		char err[512];
		if (spec_parse_empty(rq->ar_body, rq->ar_len, err, sizeof(err))) {
			fail(rs, 400, "%s", err);
			return;
		}
		if (in->i_state == ST_TERMINATED || in->i_goal == GOAL_TERMINATE) {
			fail(rs, 409, "instance %s is already %s", in->i_id,
			     in->i_state == ST_TERMINATED ? "terminated" : "terminating");
			return;
		}
		if (record_intent(in, ST_STOPPING, GOAL_TERMINATE, rs) < 0)
			return;
		inst_stop(in, GOAL_TERMINATE);
		ok_inst(rs, 200, in);
	} else if (console_route) {
		console(in, rs);
	} else if (ek_route) {
		tpm_ek(in, rq, rs);
	} else {
		instance_action(in, seg[3], rq, rs);
	}
}

/* --- volumes --- */

/* What a new volume may take of the state file system without overcommitting it: the
 * free space less what the existing volumes (sparse files) may still grow by. */
static int64_t volume_room(const char *dir)
{
	struct statvfs sv;
	if (statvfs(dir, &sv) < 0)
		return -1;
	int64_t room = (int64_t)(sv.f_bavail * (unsigned long long)sv.f_frsize);
	for (struct volrec *v = g_ctl.c_volumes; v; v = v->v_next) {
		struct stat st;
		int64_t size = (int64_t)(v->v_size_mib << 20);
		if (stat(v->v_path, &st) == 0 && size > (int64_t)st.st_blocks * 512)
			room -= size - (int64_t)st.st_blocks * 512;
	}
	return room;
}

/* The caller's snapshot store: $state/snapshots/uid-N. One store per uid: a caller sees,
 * restores and deletes only its own snapshots, and chunks are shared (deduplicated) only
 * among one uid's snapshots, so no caller learns whether another holds the same data. */
static int open_store(uid_t uid, bool create, struct snap_store *st, struct api_resp *rs)
{
	char dir[PATH_MAX + 64], err[1024];
	sfmt(dir, sizeof(dir), "%s/snapshots", g_ctl.c_state_dir);
	if (create)
		mkdir(dir, 0700);
	sfmt(dir, sizeof(dir), "%s/snapshots/uid-%u", g_ctl.c_state_dir, (unsigned)uid);
	if (!create && access(dir, F_OK) < 0) {
		fail(rs, 404, "no snapshots");
		return -1;
	}
	if (snap_store_open(dir, create, st, err, sizeof(err))) {
		fail(rs, 500, "%s", err);
		return -1;
	}
	return 0;
}

/* An image named in a request: opened once, then the opened file must be a regular file
 * inside the folders nitrod serves files from (as kernels and initrds: check_file), so a
 * caller cannot import another host file (/etc/shadow) into a volume it can read. */
static int open_image_as(const char *path, uid_t uid, struct api_resp *rs);

/* The image is looked up and opened with the caller's rights (bootfile.h): root reads
 * nothing into a caller's volume that the caller could not read itself. */
static int open_image(const char *path, uid_t uid, struct api_resp *rs)
{
	struct bootfile_creds bc;
	if (bootfile_as_owner(&bc, uid) < 0) {
		fail(rs, 500, "from_image %s: cannot take uid %u's rights: %s", path, (unsigned)uid,
		     strerror(errno));
		return -1;
	}
	int fd = open_image_as(path, uid, rs);
	bootfile_as_root(&bc);
	return fd;
}

static int open_image_as(const char *path, uid_t uid, struct api_resp *rs)
{
	/* O_PATH first: naming a device (/dev/watchdog, a tape) must not open it. */
	int pfd = open(path, O_PATH | O_CLOEXEC);
	if (pfd < 0 && errno == EACCES && uid != 0) {
		fail(rs, 400, "from_image %s: uid %u may not read it; refused", path,
		     (unsigned)uid);
		return -1;
	}
	if (pfd < 0) {
		fail(rs, 400, "from_image %s: %s", path, strerror(errno));
		return -1;
	}
	char link[64], real[PATH_MAX];
	struct stat st;
	sfmt(link, sizeof(link), "/proc/self/fd/%d", pfd);
	ssize_t n = readlink(link, real, sizeof(real) - 1);
	if (n <= 0 || fstat(pfd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(pfd);
		fail(rs, 400, "from_image %s: not a regular file", path);
		return -1;
	}
	real[n] = 0;
	for (unsigned i = 0; i < g_ctl.c_nfile_dirs; i++) {
		size_t l = strlen(g_ctl.c_file_dirs[i]);
		if (strncmp(real, g_ctl.c_file_dirs[i], l) || real[l] != '/')
			continue;
		/* The very file checked, opened for reading through its O_PATH descriptor. */
		int fd = open(link, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
		int e = errno;
		close(pfd);
		if (fd < 0 && e == EACCES && uid != 0)
			fail(rs, 400, "from_image %s: uid %u may not read it; refused", path,
			     (unsigned)uid);
		else if (fd < 0)
			fail(rs, 400, "from_image %s: %s", path, strerror(e));
		return fd < 0 ? -1 : fd;
	}
	close(pfd);
	fail(rs, 400,
	     "from_image %s: outside the folders nitrod serves files from (--images, --files)",
	     path);
	return -1;
}

/* A new volume file tmp from an image or one of the caller's snapshots; fills id and the
 * size in MiB. 0, or -1 with rs failed and tmp gone. */
static int volume_from(const struct vol_spec *vs, const struct api_req *rq, const char *tmp,
		       char id[VOL_ID_LEN + 1], uint64_t *size_mib, struct api_resp *rs)
{
	char err[1024];
	int r;
	if (vs->vs_from_image[0]) {
		int fd = open_image(vs->vs_from_image, rq->ar_uid, rs);
		if (fd < 0)
			return -1;
		r = snap_import_image_fd(fd, vs->vs_from_image, tmp, vs->vs_size_mib << 20,
					 vs->vs_encrypted, NULL, NULL, id, err, sizeof(err));
		close(fd);
		if (r) {
			fail(rs, r == -EINVAL ? 400 : 500, "%s", err);
			return -1;
		}
	} else {
		struct snap_store st;
		if (open_store(rq->ar_uid, false, &st, rs) < 0) {
			if (rs->rs_status == 404) {
				free(rs->rs_body);
				fail(rs, 404, "snapshot %s not found", vs->vs_from_snapshot);
			}
			return -1;
		}
		r = snap_restore(&st, vs->vs_from_snapshot, tmp, vs->vs_size_mib << 20,
				 vs->vs_encrypted, NULL, NULL, id, err, sizeof(err));
		snap_store_close(&st);
		if (r) {
			fail(rs, r == -ENOENT ? 404 : r == -EINVAL ? 400 : 500, "%s", err);
			return -1;
		}
	}
	struct volume v;
	if (vol_info(tmp, &v, err, sizeof(err))) {
		unlink(tmp);
		fail(rs, 500, "%s", err);
		return -1;
	}
	*size_mib = (v.v_size + (1 << 20) - 1) >> 20;
	if (*size_mib > SPEC_MAX_VOLUME_MIB) {
		unlink(tmp);
		fail(rs, 400, "the new volume would be %llu MiB (at most %u)",
		     (unsigned long long)*size_mib, SPEC_MAX_VOLUME_MIB);
		return -1;
	}
	/* What it may still grow to counts against the free space, as for any volume. */
	struct stat sb;
	if (!vs->vs_overcommit && stat(tmp, &sb) == 0) {
		char dir[PATH_MAX + 16];
		sfmt(dir, sizeof(dir), "%s/volumes", g_ctl.c_state_dir);
		int64_t room = volume_room(dir);
		if (room < 0 || (int64_t)v.v_size - (int64_t)sb.st_blocks * 512 > room) {
			unlink(tmp);
			fail(rs, 507,
			     "volume of %llu MiB: the state file system has no room for it; ask "
			     "with \"overcommit\": true to create it anyway",
			     (unsigned long long)*size_mib);
			return -1;
		}
	}
	return 0;
}

static void volumes_create(const struct api_req *rq, struct api_resp *rs)
{
	struct vol_spec vs;
	char err[512];
	if (spec_parse_volume(rq->ar_body, rq->ar_len, &vs, err, sizeof(err))) {
		fail(rs, 400, "%s", err);
		return;
	}
	char dir[PATH_MAX + 16], tmp[PATH_MAX + 64], id[VOL_ID_LEN + 1];
	sfmt(dir, sizeof(dir), "%s/volumes", g_ctl.c_state_dir);
	mkdir(dir, 0700);
	if (!vs.vs_overcommit) {
		int64_t room = volume_room(dir);
		if (room < 0 || (int64_t)(vs.vs_size_mib << 20) > room) {
			fail(rs, 507,
			     "volume of %llu MiB: the state file system has room for %lld MiB "
			     "(free space less what existing volumes may still take); ask with "
			     "\"overcommit\": true to create it anyway",
			     (unsigned long long)vs.vs_size_mib,
			     room < 0 ? 0LL : (long long)(room >> 20));
			return;
		}
	}
	char tid[32];
	new_id("new-", tid, sizeof(tid));
	sfmt(tmp, sizeof(tmp), "%s/%s.vol", dir, tid);
	uint64_t size_mib = vs.vs_size_mib;
	if (vs.vs_from_image[0] || vs.vs_from_snapshot[0]) {
		if (volume_from(&vs, rq, tmp, id, &size_mib, rs) < 0)
			return;
	} else if (vol_create(tmp, vs.vs_size_mib << 20, vs.vs_encrypted, id, err, sizeof(err))) {
		unlink(tmp);
		fail(rs, 500, "%s", err);
		return;
	}
	struct volrec *v = calloc(1, sizeof(*v));
	if (!v) {
		unlink(tmp);
		fail(rs, 500, "out of memory");
		return;
	}
	sfmt(v->v_id, sizeof(v->v_id), "%s", id);
	sfmt(v->v_path, sizeof(v->v_path), "%s/%s.vol", dir, id);
	if (rename(tmp, v->v_path) < 0) {
		unlink(tmp);
		free(v);
		fail(rs, 500, "volume %s: %s", id, strerror(errno));
		return;
	}
	v->v_size_mib = size_mib;
	v->v_encrypted = vs.vs_encrypted;
	v->v_iops = vs.vs_iops;
	v->v_throughput_mib = vs.vs_throughput_mib;
	v->v_gp2 = vs.vs_gp2;
	v->v_owner = rq->ar_uid;
	v->v_created = (int64_t)time(NULL);
	struct volrec **tail = &g_ctl.c_volumes;
	while (*tail)
		tail = &(*tail)->v_next;
	*tail = v;
	vol_save(v);
	if (commit(rs) < 0) {
		*tail = NULL;
		unlink(v->v_path);
		free(v);
		return;
	}
	ok_vol(rs, 201, v);
}

static void volume_attach(struct volrec *v, bool attach, const struct api_req *rq,
			  struct api_resp *rs)
{
	char err[512], iid[SPEC_ID_LEN];
	struct vol_ref ref;
	struct instance *in;
	if (attach) {
		if (spec_parse_attach(rq->ar_body, rq->ar_len, iid, &ref, err, sizeof(err))) {
			fail(rs, 400, "%s", err);
			return;
		}
		if (!(in = inst_visible(rq, iid))) {
			fail(rs, 404, "instance %s not found", iid);
			return;
		}
		if (in->i_owner != v->v_owner) {
			fail(
			    rs, 409,
			    "volume %s belongs to uid %u, instance %s to uid %u: an instance takes "
			    "only its owner's volumes",
			    v->v_id, (unsigned)v->v_owner, in->i_id, (unsigned)in->i_owner);
			return;
		}
		if (v->v_attached[0]) {
			fail(rs, 409, "volume %s is already attached to %s", v->v_id,
			     v->v_attached);
			return;
		}
	} else {
		if (spec_parse_empty(rq->ar_body, rq->ar_len, err, sizeof(err))) {
			fail(rs, 400, "%s", err);
			return;
		}
		if (!v->v_attached[0] || !(in = inst_find(v->v_attached))) {
			fail(rs, 409, "volume %s is not attached", v->v_id);
			return;
		}
	}
	if (in->i_state != ST_STOPPED && in->i_state != ST_FAILED) {
		fail(rs, 409,
		     "instance %s is %s: volumes are attached and detached while it is stopped",
		     in->i_id, state_name(in->i_state));
		return;
	}
	struct inst_spec *s = &in->i_spec;
	unsigned old_nvols = s->s_nvols;
	struct vol_ref old_vols[SPEC_MAX_VOLUMES];
	char old_att[sizeof(v->v_attached)];
	memcpy(old_vols, s->s_vols, sizeof(old_vols));
	memcpy(old_att, v->v_attached, sizeof(old_att));
	if (attach) {
		if (s->s_nvols == SPEC_MAX_VOLUMES) {
			fail(rs, 409, "instance %s already has %u volumes", in->i_id,
			     SPEC_MAX_VOLUMES);
			return;
		}
		/* An NVMe volume keeps the name given, else gets a free one (spec.h). */
		for (unsigned i = 0; i < s->s_nvols && ref.vr_device[0]; i++)
			if (!strcmp(s->s_vols[i].vr_device, ref.vr_device)) {
				fail(rs, 409, "instance %s: device %s is volume %s's already",
				     in->i_id, ref.vr_device, s->s_vols[i].vr_id);
				return;
			}
		if (!ref.vr_virtio && !ref.vr_device[0] && spec_free_device(s, ref.vr_device)) {
			fail(rs, 409, "instance %s: no free device name left", in->i_id);
			return;
		}
		if (s->s_istore_mib && s->s_nvols + 1 >= SPEC_MAX_VOLUMES) {
			fail(rs, 409,
			     "instance %s already has %u volumes beside its instance store",
			     in->i_id, SPEC_MAX_VOLUMES - 1);
			return;
		}
		struct vol_ref *r = &s->s_vols[s->s_nvols++];
		*r = ref;
		sfmt(r->vr_id, sizeof(r->vr_id), "%s", v->v_id);
		sfmt(v->v_attached, sizeof(v->v_attached), "%s", in->i_id);
	} else {
		for (unsigned i = 0; i < s->s_nvols; i++)
			if (!strcmp(s->s_vols[i].vr_id, v->v_id)) {
				memmove(&s->s_vols[i], &s->s_vols[i + 1],
					(s->s_nvols - i - 1) * sizeof(s->s_vols[0]));
				s->s_nvols--;
				break;
			}
		v->v_attached[0] = 0;
	}
	inst_save(in);
	vol_save(v);
	if (commit(rs) < 0) {
		s->s_nvols = old_nvols;
		memcpy(s->s_vols, old_vols, sizeof(old_vols));
		memcpy(v->v_attached, old_att, sizeof(old_att));
		return;
	}
	ok_vol(rs, 200, v);
}

static void volumes_route(const struct api_req *rq, char **seg, int nseg, struct api_resp *rs)
{
	const char *m = rq->ar_method;
	if (nseg == 2) {
		if (!strcmp(m, "POST"))
			volumes_create(rq, rs);
		else if (!strcmp(m, "GET")) {
			json_t *a = json_array();
			for (struct volrec *v = g_ctl.c_volumes; v; v = v->v_next)
				if (v->v_owner == rq->ar_uid || is_admin(rq->ar_uid))
					json_array_append_new(a, vol_json(v, false));
			set_json(rs, 200, json_pack("{s:o}", "volumes", a));
		} else
			not_allowed(rs, "GET, POST");
		return;
	}
	if (nseg == 4 && strcmp(seg[3], "attach") && strcmp(seg[3], "detach")) {
		fail(rs, 404, "no route %s", rq->ar_url);
		return;
	}
	const char *allow = nseg == 3 ? "GET, DELETE" : "POST";
	if (!method_in(m, allow)) {
		not_allowed(rs, allow);
		return;
	}
	struct volrec *v = vol_visible(rq, seg[2]);
	if (!v) {
		fail(rs, 404, "volume %s not found", shown(seg[2], "vol-"));
		return;
	}
	if (nseg == 4) {
		volume_attach(v, !strcmp(seg[3], "attach"), rq, rs);
		return;
	}
	if (!strcmp(m, "GET")) {
		ok_vol(rs, 200, v);
		return;
	}
	char err[512];
	if (spec_parse_empty(rq->ar_body, rq->ar_len, err, sizeof(err))) {
		fail(rs, 400, "%s", err);
		return;
	}
	if (v->v_attached[0]) {
		fail(rs, 409, "volume %s is attached to %s: detach it first", v->v_id,
		     v->v_attached);
		return;
	}
	/* The record first: a volume whose record cannot be dropped stays whole. */
	if (vol_forget(v->v_id, err, sizeof(err))) {
		g_ctl.c_save_failed = true;
		sfmt(g_ctl.c_save_err, sizeof(g_ctl.c_save_err), "%s", err);
	}
	if (commit(rs) < 0)
		return;
	if (unlink(v->v_path) < 0 && errno != ENOENT)
		warnmsg("volume %s: %s: %s (its record is gone: remove the file by hand)", v->v_id,
			v->v_path, strerror(errno));
	struct volrec **pp = &g_ctl.c_volumes;
	while (*pp != v)
		pp = &(*pp)->v_next;
	*pp = v->v_next;
	sfmt(rs->rs_detail, sizeof(rs->rs_detail), "%s deleted", v->v_id);
	set_json(rs, 200, json_pack("{s:s, s:s}", "id", v->v_id, "state", "deleted"));
	free(v);
}

/* --- snapshots --- */

static json_t *snap_json(const struct snap_manifest *m)
{
	return json_pack("{s:s, s:s, s:I, s:I, s:I}", "id", m->sm_id, "volume_id", m->sm_vol,
			 "size_bytes", (json_int_t)m->sm_size, "size_mib",
			 (json_int_t)((m->sm_size + (1 << 20) - 1) >> 20), "created",
			 (json_int_t)(m->sm_created_ns / 1000000000ull));
}

static void snapshot_create(const struct api_req *rq, struct api_resp *rs)
{
	char vid[SPEC_ID_LEN], err[1024], sid[SNAP_SNAPID_LEN + 1];
	if (spec_parse_snapshot(rq->ar_body, rq->ar_len, vid, err, sizeof(err))) {
		fail(rs, 400, "%s", err);
		return;
	}
	struct volrec *vr = vol_visible(rq, vid); /* another uid's volume: 404 */
	if (!vr) {
		fail(rs, 404, "volume %s not found", vid);
		return;
	}
	struct instance *in = vr->v_attached[0] ? inst_find(vr->v_attached) : NULL;
	char ctl[PATH_MAX + 16];
	struct volume v;
	struct snap_stats ss;
	struct snap_store st;
	int r;
	if (in && in->i_state != ST_STOPPED && in->i_state != ST_FAILED) {
		/* A card serves it (virtio-blk or NVMe): the card pauses (drains, flushes)
		 * while the store reads it, so the snapshot is crash-consistent; never a copy
		 * of a changing volume. */
		if (in->i_state != ST_RUNNING || inst_volume_ctl(in, vr->v_id, ctl, sizeof(ctl))) {
			fail(rs, 409,
			     "volume %s: instance %s is %s: try again when it runs or stops",
			     vr->v_id, in->i_id, state_name(in->i_state));
			return;
		}
		if (open_store(rq->ar_uid, true, &st, rs) < 0)
			return;
		r = snap_create_paused(&st, vr->v_path, ctl, NULL, NULL, sid, &ss, err,
				       sizeof(err));
		if (r) {
			snap_store_close(&st);
			fail(rs, r == -EBUSY ? 409 : 500, "volume %s (instance %s): %s", vr->v_id,
			     in->i_id, err);
			return;
		}
	} else {
		if (vol_open(vr->v_path, true, &v, err, sizeof(err))) {
			fail(rs, 409, "%s", err);
			return;
		}
		if (open_store(rq->ar_uid, true, &st, rs) < 0) {
			vol_close(&v);
			return;
		}
		r = snap_create(&st, &v, NULL, NULL, sid, &ss, err, sizeof(err));
		vol_close(&v);
	}
	struct snap_manifest m;
	if (!r)
		r = snap_load(&st, sid, &m, err, sizeof(err));
	snap_store_close(&st);
	if (r) {
		fail(rs, 500, "%s", err);
		return;
	}
	json_t *j = snap_json(&m);
	snap_manifest_free(&m);
	json_object_set_new(j, "new_chunks", json_integer((json_int_t)ss.st_new));
	json_object_set_new(j, "new_bytes", json_integer((json_int_t)ss.st_new_bytes));
	sfmt(rs->rs_detail, sizeof(rs->rs_detail), "%s of %s: %llu new chunks", sid, vr->v_id,
	     (unsigned long long)ss.st_new);
	set_json(rs, 201, j);
}

static void snapshots_route(const struct api_req *rq, char **seg, int nseg, struct api_resp *rs)
{
	const char *m = rq->ar_method;
	char err[1024];
	struct snap_store st;
	if (nseg == 2) {
		if (!strcmp(m, "POST")) {
			snapshot_create(rq, rs);
		} else if (!strcmp(m, "GET")) {
			json_t *a = json_array();
			struct snap_manifest *all = NULL;
			size_t n = 0;
			char dir[PATH_MAX + 64];
			sfmt(dir, sizeof(dir), "%s/snapshots/uid-%u", g_ctl.c_state_dir,
			     (unsigned)rq->ar_uid);
			if (access(dir, F_OK) == 0) {
				if (open_store(rq->ar_uid, false, &st, rs) < 0) {
					json_decref(a);
					return;
				}
				int r = snap_list(&st, &all, &n, err, sizeof(err));
				snap_store_close(&st);
				if (r) {
					json_decref(a);
					fail(rs, 500, "%s", err);
					return;
				}
			}
			for (size_t i = 0; i < n; i++)
				json_array_append_new(a, snap_json(&all[i]));
			free(all);
			set_json(rs, 200, json_pack("{s:o}", "snapshots", a));
		} else {
			not_allowed(rs, "GET, POST");
		}
		return;
	}
	if (nseg != 3) {
		fail(rs, 404, "no route %s", rq->ar_url);
		return;
	}
	if (!method_in(m, "GET, DELETE")) {
		not_allowed(rs, "GET, DELETE");
		return;
	}
	if (!spec_id_ok(seg[2], "snap-")) {
		fail(rs, 404, "snapshot %s not found", shown(seg[2], "snap-"));
		return;
	}
	if (open_store(rq->ar_uid, false, &st, rs) < 0) {
		if (rs->rs_status == 404) {
			free(rs->rs_body);
			fail(rs, 404, "snapshot %s not found", seg[2]);
		}
		return;
	}
	int r;
	if (!strcmp(m, "GET")) {
		struct snap_manifest mf;
		r = snap_load(&st, seg[2], &mf, err, sizeof(err));
		snap_store_close(&st);
		if (r) {
			fail(rs, r == -ENOENT ? 404 : 500, "%s", err);
			return;
		}
		set_json(rs, 200, snap_json(&mf));
		snap_manifest_free(&mf);
		return;
	}
	if (spec_parse_empty(rq->ar_body, rq->ar_len, err, sizeof(err))) {
		snap_store_close(&st);
		fail(rs, 400, "%s", err);
		return;
	}
	struct snap_stats ss;
	r = snap_delete(&st, seg[2], &ss, err, sizeof(err));
	snap_store_close(&st);
	if (r) {
		fail(rs, r == -ENOENT ? 404 : 500, "%s", err);
		return;
	}
	sfmt(rs->rs_detail, sizeof(rs->rs_detail), "%s deleted, %llu chunks freed", seg[2],
	     (unsigned long long)ss.st_freed);
	set_json(rs, 200,
		 json_pack("{s:s, s:s, s:I, s:I}", "id", seg[2], "state", "deleted", "freed_chunks",
			   (json_int_t)ss.st_freed, "freed_bytes", (json_int_t)ss.st_freed_bytes));
}

static void attestation(const struct api_req *rq, struct api_resp *rs)
{
	if (strcmp(rq->ar_method, "GET")) {
		not_allowed(rs, "GET");
		return;
	}
	/* The event log names every instance's boot files and command lines, whoever owns
	 * them: only root, nitrod's own uid and --admin-uid callers read it. */
	if (!is_admin(rq->ar_uid)) {
		fail(rs, 403,
		     "the host attestation shows every owner's measurements: root or an "
		     "--admin-uid only");
		return;
	}
	char nonce[40], err[512];
	new_id("", nonce, sizeof(nonce));
	char *doc =
	    chip_attestation(g_ctl.c_chip, rq->ar_nonce ? rq->ar_nonce : nonce, err, sizeof(err));
	if (!doc) {
		fail(rs, 400, "%s", err);
		return;
	}
	rs->rs_status = 200;
	rs->rs_body = doc;
	rs->rs_len = strlen(doc);
	rs->rs_type = "application/json";
	sfmt(rs->rs_detail, sizeof(rs->rs_detail), "attestation");
}

/* The latest signed head of the audit log, anchored now (audit_head_now): what an off-host
 * witness records, so that a log cut back to before it, or rewritten and re-signed on the
 * host, is refused later (nitro-audit-verify --head; docs/security.md, "Signed heads").
 * Admins only, like the attestation: the log is every owner's. */
static void audit_head(const struct api_req *rq, struct api_resp *rs)
{
	if (strcmp(rq->ar_method, "GET")) {
		not_allowed(rs, "GET");
		return;
	}
	if (!is_admin(rq->ar_uid)) {
		fail(rs, 403,
		     "the audit log's head covers every owner's calls: root or an "
		     "--admin-uid only");
		return;
	}
	struct audit_head h;
	if (!g_ctl.c_audit || audit_head_now(g_ctl.c_audit, &h) < 0) {
		fail(rs, 503, "the audit log's head cannot be signed now (%s)", strerror(errno));
		return;
	}
	char text[160], arg[400];
	if (audit_anchor_text(h.ah_seq, h.ah_head, text, sizeof(text)) < 0) {
		fail(rs, 500, "the anchor's text does not fit");
		return;
	}
	sfmt(arg, sizeof(arg), "seq=%lu,head=%s,sig=%s", h.ah_seq, h.ah_head, h.ah_sig);
	set_json(rs, 200,
		 json_pack("{s:I, s:s, s:s, s:s, s:s}", "seq", (json_int_t)h.ah_seq, "head",
			   h.ah_head, "sig", h.ah_sig, "signed_data", text, "witness", arg));
	sfmt(rs->rs_detail, sizeof(rs->rs_detail), "audit head seq=%lu", h.ah_seq);
}

/* The certificate of the chip's instance-identity key (identity.h): what verifies the
 * signatures of the identity documents the instances' IMDS serve. */
static void identity_cert(const struct api_req *rq, struct api_resp *rs)
{
	if (strcmp(rq->ar_method, "GET")) {
		not_allowed(rs, "GET");
		return;
	}
	char err[512];
	char *pem = chip_identity_cert(g_ctl.c_chip, err, sizeof(err));
	if (!pem) {
		fail(rs, 500, "%s", err);
		return;
	}
	set_json(rs, 200, json_pack("{s:s}", "certificate", pem));
	free(pem);
	sfmt(rs->rs_detail, sizeof(rs->rs_detail), "identity certificate");
}

/* The root certificate of the enclave attestation chain (enclave_ca.h): what verifies the
 * documents the NSM gives every enclave of this host's instances. Any allowed caller
 * (like the identity certificate: it is public); the keys behind it have no route. */
static void enclave_root(const struct api_req *rq, struct api_resp *rs)
{
	if (strcmp(rq->ar_method, "GET")) {
		not_allowed(rs, "GET");
		return;
	}
	char err[700];
	char *pem = enclave_ca_root_pem(err, sizeof(err));
	if (!pem) {
		fail(rs, 500, "%s", err);
		return;
	}
	set_json(rs, 200, json_pack("{s:s}", "certificate", pem));
	free(pem);
	sfmt(rs->rs_detail, sizeof(rs->rs_detail), "enclave root certificate");
}

/* --- for the other route files (api_int.h) --- */

void api_set_json(struct api_resp *rs, int status, json_t *j)
{
	set_json(rs, status, j);
}

void api_fail(struct api_resp *rs, int status, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fail(rs, status, "%s", msg);
}

void api_not_allowed(struct api_resp *rs, const char *allow)
{
	not_allowed(rs, allow);
}

bool api_method_in(const char *m, const char *allow)
{
	return method_in(m, allow);
}

int api_commit(struct api_resp *rs)
{
	return commit(rs);
}

bool api_is_admin(uid_t uid)
{
	return is_admin(uid);
}

void api_handle(const struct api_req *rq, struct api_resp *rs)
{
	memset(rs, 0, sizeof(*rs));
	char path[512];
	if (strlen(rq->ar_url) >= sizeof(path)) {
		fail(rs, 404, "no such route");
		return;
	}
	sfmt(path, sizeof(path), "%s", rq->ar_url);
	char *seg[6], *save = NULL;
	int nseg = 0;
	for (char *t = strtok_r(path, "/", &save); t; t = strtok_r(NULL, "/", &save)) {
		if (nseg == 5) {
			nseg = 6;
			break;
		}
		seg[nseg++] = t;
	}
	pthread_mutex_lock(&g_ctl.c_lock);
	bool txn = changes_state(rq->ar_method);
	if (txn) {
		g_ctl.c_save_failed = false;
		store_txn_begin(g_ctl.c_store);
	}
	if (nseg >= 2 && nseg <= 5 && !strcmp(seg[0], "v1") && !strcmp(seg[1], "instances"))
		instances_route(rq, seg, nseg, rs);
	else if (nseg >= 2 && nseg <= 4 && !strcmp(seg[0], "v1") && !strcmp(seg[1], "volumes"))
		volumes_route(rq, seg, nseg, rs);
	else if (nseg >= 2 && nseg <= 3 && !strcmp(seg[0], "v1") && !strcmp(seg[1], "snapshots"))
		snapshots_route(rq, seg, nseg, rs);
	else if (nseg >= 2 && nseg <= 3 && !strcmp(seg[0], "v1") && !strcmp(seg[1], "vpcs"))
		vpcs_route(rq, seg, nseg, rs);
	else if (nseg == 3 && !strcmp(seg[0], "v1") && !strcmp(seg[1], "host") &&
		 !strcmp(seg[2], "attestation"))
		attestation(rq, rs);
	else if (nseg == 3 && !strcmp(seg[0], "v1") && !strcmp(seg[1], "host") &&
		 !strcmp(seg[2], "identity-cert"))
		identity_cert(rq, rs);
	else if (nseg == 3 && !strcmp(seg[0], "v1") && !strcmp(seg[1], "host") &&
		 !strcmp(seg[2], "audit-head"))
		audit_head(rq, rs);
	else if (nseg == 3 && !strcmp(seg[0], "v1") && !strcmp(seg[1], "host") &&
		 !strcmp(seg[2], "enclave-root"))
		enclave_root(rq, rs);
	else
		fail(rs, 404, "no such route (see docs/api.md)");
	if (txn) {
		/* Every route commits before it acts; what is left was written after that
		 * (a launch's own records, which log their failures like the supervisor's). */
		char err[512];
		if (store_txn_commit(g_ctl.c_store, err, sizeof(err)) < 0)
			warnmsg("%s", err);
		g_ctl.c_save_failed = false;
	}
	pthread_mutex_unlock(&g_ctl.c_lock);
	if (!rs->rs_body) {
		rs->rs_status = 500;
		rs->rs_body = strdup("{\"error\":\"out of memory\"}");
		rs->rs_len = rs->rs_body ? strlen(rs->rs_body) : 0;
		rs->rs_type = "application/json";
	}
}
