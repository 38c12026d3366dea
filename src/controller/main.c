/* nitrod: the controller daemon (issue 5). Serves the API on a Unix socket, keeps its
 * state in SQLite under the state folder, measures and launches instances through the
 * jailer, supervises them, and writes every call to the audit log.
 *
 *   nitrod --socket PATH [--state DIR] [--allow-uid N]... [--admin-uid N]...
 *          [--timeout SECONDS] [--request-deadline SECONDS] [--max-connections N]
 *          [--max-conn-per-uid N] [--threads N] [--anchor PEM] [--images DIR]
 *          [--console-max BYTES] [--no-jail]
 *
 * SIGTERM/SIGINT stop serving; running instances keep running and are re-adopted by the
 * next nitrod on the same state folder.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "controller/audit.h"
#include "controller/cgroup.h"
#include "controller/ctl.h"
#include "controller/http.h"
#include "controller/records.h"
#include "controller/store.h"
#include "controller/supervise.h"
#include "lib/util.h"
#include "securitychip/chip.h"

static const char usage_text[] =
    "usage: nitrod --socket PATH [options]\n"
    "  --socket PATH        the API's Unix socket (created 0600)\n"
    "  --state DIR          state folder (default $NITRO_STATE/nitrod, else\n"
    "                       ~/.local/state/nitro/nitrod)\n"
    "  --allow-uid N        also serve this uid (repeatable; the socket becomes 0666 and\n"
    "                       SO_PEERCRED decides); root and nitrod's own uid always may\n"
    "  --admin-uid N        serve this uid and let it see and act on every instance and\n"
    "                       volume (repeatable); other uids see only their own\n"
    "  --timeout SECONDS    drop a client idle this long (default 10)\n"
    "  --request-deadline SECONDS\n"
    "                       a whole request must arrive within this (default 10)\n"
    "  --max-connections N  open connections (default 512, at least 64; the last 32 are\n"
    "                       kept for root and nitrod's own uid)\n"
    "  --max-conn-per-uid N open connections of one uid (default 16; root and nitrod's\n"
    "                       own uid: no such cap)\n"
    "  --threads N          HTTP worker threads (default 1)\n"
    "  --anchor PEM         trust anchor for executables (default: the development key)\n"
    "  --images DIR         default kernel/initrd folder (default $NITRO_CACHE/images)\n"
    "  --files DIR          also take kernels, initrds and security groups from DIR\n"
    "                       (repeatable; requests may name files in these folders only)\n"
    "  --instance-store-dir DIR\n"
    "                       also make instance stores (\"instance_store\": {\"dir\"}) in\n"
    "                       DIR or folders beneath it (repeatable, at most 4; root's or\n"
    "                       nitrod's, not writable by others; default STATE/instance-store)\n"
    "  --console-max BYTES  cap of an instance's console.log: past it the oldest half\n"
    "                       is dropped (default 1048576; 4096 to 1073741824)\n"
    "  --no-jail            start processes without the jailer (development only)\n"
    "  --cgroup-root DIR    the cgroup v2 hierarchy for jailed processes' limits\n"
    "                       (default /sys/fs/cgroup; nitrod uses DIR/nitro)\n"
    "  --no-cgroups         run jailed processes without cgroup limits (without it, a\n"
    "                       host lacking cgroup v2 memory/pids/cpu refuses launches)\n";

/* The audit log's anchor signer: the security chip's attestation key (audit.h). */
static int sign_audit_head(void *ctx, const void *msg, size_t len, char *sig, size_t siglen)
{
	char err[512];
	if (chip_sign(ctx, "audit head", msg, len, sig, siglen, err, sizeof(err)) < 0) {
		warnmsg("audit log: %s", err);
		return -1;
	}
	return 0;
}

struct state_load {
	int sl_rc;
	char sl_err[768];
};

/* Makes the state's folders, opens the audit log and the database and loads the records
 * (main's second thread). */
static void *load_state(void *arg)
{
	struct state_load *sl = arg;
	char path[PATH_MAX + 32];
	static const char *const sub[] = {"instances", "run",	 "jail",
					  "volumes",   "kcache", "instance-store"};
	for (unsigned i = 0; i < ARRAY_SIZE(sub); i++) {
		sfmt(path, sizeof(path), "%s/%s", g_ctl.c_state_dir, sub[i]);
		mode_t mode = !strcmp(sub[i], "run") || !strcmp(sub[i], "instance-store") ? 0711
			      : !strcmp(sub[i], "kcache")				  ? 0755
											  : 0700;
		if (mkdir(path, mode) < 0 && errno != EEXIST) {
			snprintf(sl->sl_err, sizeof(sl->sl_err), "state folder %.700s: %s", path,
				 strerror(errno));
			return NULL;
		}
	}
	snprintf(path, sizeof(path), "%s/audit.log", g_ctl.c_state_dir);
	g_ctl.c_audit = audit_open(path, sl->sl_err, sizeof(sl->sl_err));
	if (!g_ctl.c_audit) {
		char e[sizeof(sl->sl_err)];
		snprintf(e, sizeof(e), "%s", sl->sl_err);
		snprintf(sl->sl_err, sizeof(sl->sl_err), "audit log: %.700s", e);
		return NULL;
	}
	snprintf(path, sizeof(path), "%s/nitrod.db", g_ctl.c_state_dir);
	g_ctl.c_store = store_open(path, sl->sl_err, sizeof(sl->sl_err));
	if (!g_ctl.c_store)
		return NULL;
	if (records_load(sl->sl_err, sizeof(sl->sl_err)) < 0)
		return NULL;
	sl->sl_rc = 0;
	return NULL;
}

static void default_state(char *out, size_t len)
{
	const char *s = getenv("NITRO_STATE");
	if (s && *s)
		snprintf(out, len, "%s/nitrod", s);
	else
		snprintf(out, len, "%s/.local/state/nitro/nitrod",
			 getenv("HOME") ? getenv("HOME") : "/root");
}

static void default_images(char *out, size_t len)
{
	const char *c = getenv("NITRO_CACHE");
	if (c && *c)
		snprintf(out, len, "%s/images", c);
	else
		snprintf(out, len, "%s/.cache/nitro/images",
			 getenv("HOME") ? getenv("HOME") : "/root");
}

static int mkdirs(const char *path, mode_t mode)
{
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s", path);
	for (char *s = p + 1; *s; s++)
		if (*s == '/') {
			*s = 0;
			if (mkdir(p, 0755) < 0 && errno != EEXIST)
				return -1;
			*s = '/';
		}
	if (mkdir(p, mode) < 0 && errno != EEXIST)
		return -1;
	return 0;
}

int main(int argc, char **argv)
{
	util_set_prog("nitrod");
	const char *sock = NULL, *state = NULL, *anchor = NULL, *images = NULL, *files[7];
	unsigned nfiles = 0;
	const char *istores[4];
	unsigned nistores = 0;
	uint64_t timeout = 10, threads = 1, console_max = CTL_CONSOLE_MAX,
		 deadline = HTTP_DEADLINE_S, max_conns = HTTP_MAX_CONNS, per_uid = HTTP_MAX_PER_UID;
	bool jail = true;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		uint64_t n;
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			fputs(usage_text, stdout);
			return 0;
		} else if (!strcmp(a, "--no-jail")) {
			jail = false;
			continue;
		} else if (!strcmp(a, "--no-cgroups")) {
			g_ctl.c_no_cgroups = true;
			continue;
		} else if (!v) {
			die_usage("%s: %s\n%s", a,
				  a[0] == '-' ? "missing value" : "unexpected argument",
				  usage_text);
		} else if (!strcmp(a, "--socket")) {
			sock = v;
		} else if (!strcmp(a, "--state")) {
			state = v;
		} else if (!strcmp(a, "--anchor")) {
			anchor = v;
		} else if (!strcmp(a, "--images")) {
			images = v;
		} else if (!strcmp(a, "--cgroup-root")) {
			snprintf(g_ctl.c_cgroup_root, sizeof(g_ctl.c_cgroup_root), "%s", v);
		} else if (!strcmp(a, "--files")) {
			if (nfiles == ARRAY_SIZE(files))
				die_usage("--files: at most %zu", ARRAY_SIZE(files));
			files[nfiles++] = v;
		} else if (!strcmp(a, "--instance-store-dir")) {
			if (nistores == ARRAY_SIZE(istores))
				die_usage("--instance-store-dir: at most %zu", ARRAY_SIZE(istores));
			istores[nistores++] = v;
		} else if (!strcmp(a, "--timeout")) {
			if (!parse_u64(v, 1, 3600, &timeout))
				die_usage("--timeout %s: expected 1 to 3600 seconds", v);
		} else if (!strcmp(a, "--console-max")) {
			if (!parse_u64(v, 4096, 1ULL << 30, &console_max))
				die_usage("--console-max %s: expected 4096 to 1073741824 bytes", v);
		} else if (!strcmp(a, "--request-deadline")) {
			if (!parse_u64(v, 1, 3600, &deadline))
				die_usage("--request-deadline %s: expected 1 to 3600 seconds", v);
		} else if (!strcmp(a, "--max-connections")) {
			if (!parse_u64(v, HTTP_MIN_CONNS, 65536, &max_conns))
				die_usage("--max-connections %s: expected %d to 65536", v,
					  HTTP_MIN_CONNS);
		} else if (!strcmp(a, "--max-conn-per-uid")) {
			if (!parse_u64(v, 1, 65536, &per_uid))
				die_usage("--max-conn-per-uid %s: expected 1 to 65536", v);
		} else if (!strcmp(a, "--admin-uid")) {
			if (!parse_u64(v, 0, 0xfffffffe, &n))
				die_usage("--admin-uid %s: expected a uid", v);
			if (g_ctl.c_nadmin == ARRAY_SIZE(g_ctl.c_admin))
				die_usage("--admin-uid: at most %zu", ARRAY_SIZE(g_ctl.c_admin));
			g_ctl.c_admin[g_ctl.c_nadmin++] = (uid_t)n;
		} else if (!strcmp(a, "--threads")) {
			if (!parse_u64(v, 1, 64, &threads))
				die_usage("--threads %s: expected 1 to 64", v);
		} else if (!strcmp(a, "--allow-uid")) {
			if (!parse_u64(v, 0, 0xfffffffe, &n))
				die_usage("--allow-uid %s: expected a uid", v);
			if (g_ctl.c_nallow == ARRAY_SIZE(g_ctl.c_allow))
				die_usage("--allow-uid: at most %zu", ARRAY_SIZE(g_ctl.c_allow));
			g_ctl.c_allow[g_ctl.c_nallow++] = (uid_t)n;
		} else {
			die_usage("%s: unknown option\n%s", a, usage_text);
		}
		i++;
	}
	if (!sock)
		die_usage("--socket PATH is required\n%s", usage_text);
	g_ctl.c_jail = jail;
	g_ctl.c_console_max = console_max;
	if (jail && geteuid() != 0)
		die("the jailer needs root (run as root, or with --no-jail for development)");
	if (!g_ctl.c_cgroup_root[0])
		snprintf(g_ctl.c_cgroup_root, sizeof(g_ctl.c_cgroup_root), "%s", CG_DEFAULT_ROOT);
	if (jail && g_ctl.c_no_cgroups)
		warnmsg("--no-cgroups: jailed processes run without memory, pids and cpu limits");
	else if (jail &&
		 cg_setup(g_ctl.c_cgroup_root, g_ctl.c_cgroup_err, sizeof(g_ctl.c_cgroup_err)) < 0)
		warnmsg("%s: instances will be refused (start nitrod with --no-cgroups to run "
			"them without limits)",
			g_ctl.c_cgroup_err);
	else if (jail)
		g_ctl.c_cgroups = true;
	g_ctl.c_uid_base = 400000;
	if (state)
		snprintf(g_ctl.c_state_dir, sizeof(g_ctl.c_state_dir), "%s", state);
	else
		default_state(g_ctl.c_state_dir, sizeof(g_ctl.c_state_dir));
	if (images)
		snprintf(g_ctl.c_images_dir, sizeof(g_ctl.c_images_dir), "%s", images);
	else
		default_images(g_ctl.c_images_dir, sizeof(g_ctl.c_images_dir));
	/* The folders requests may name files in (the images folder may not exist yet). */
	const char *roots[8] = {g_ctl.c_images_dir};
	for (unsigned i = 0; i < nfiles; i++)
		roots[i + 1] = files[i];
	for (unsigned i = 0; i < nfiles + 1; i++) {
		char *d = g_ctl.c_file_dirs[g_ctl.c_nfile_dirs++];
		if (realpath(roots[i], d))
			continue;
		if (i > 0)
			die("--files %s: %s", roots[i], strerror(errno));
		sfmt(d, PATH_MAX, "%s", roots[0]);
	}
	if (strlen(g_ctl.c_state_dir) > CTL_MAX_STATE_DIR)
		die("state folder %.64s...: longer than %d bytes", g_ctl.c_state_dir,
		    CTL_MAX_STATE_DIR);
	if (mkdirs(g_ctl.c_state_dir, 0700) < 0)
		die("state folder %s: %s", g_ctl.c_state_dir, strerror(errno));
	chmod(g_ctl.c_state_dir, 0700);
	char abs[PATH_MAX];
	if (!realpath(g_ctl.c_state_dir, abs))
		die("state folder %s: %s", g_ctl.c_state_dir, strerror(errno));
	if (strlen(abs) > CTL_MAX_STATE_DIR)
		die("state folder %.64s...: longer than %d bytes", abs, CTL_MAX_STATE_DIR);
	sfmt(g_ctl.c_state_dir, sizeof(g_ctl.c_state_dir), "%s", abs);
	/* The folders instance stores are made in (istore.h): the state's own (made by
	 * load_state) and each --instance-store-dir. */
	sfmt(g_ctl.c_istore_dirs[g_ctl.c_nistore_dirs++], PATH_MAX, "%s/instance-store",
	     g_ctl.c_state_dir);
	for (unsigned i = 0; i < nistores; i++)
		if (!realpath(istores[i], g_ctl.c_istore_dirs[g_ctl.c_nistore_dirs++]))
			die("--instance-store-dir %s: %s", istores[i], strerror(errno));
	/* Volumes' master key lives in the state folder. */
	setenv("NITRO_STATE", g_ctl.c_state_dir, 1);

	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		die("/proc/self/exe: %s", strerror(errno));
	self[n] = 0;
	snprintf(g_ctl.c_bin_dir, sizeof(g_ctl.c_bin_dir), "%s", self);
	*strrchr(g_ctl.c_bin_dir, '/') = 0;

	/* Signals go to the main thread only. */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (getenv("NITRO_EMULATED_HOST"))
		loopback_up("");
	/* The state (audit log, database) loads on a second thread while the chip measures
	 * nitrod itself: on disk their fdatasyncs overlap the hashing. Nothing is served,
	 * adopted or launched before both are done and the measurement passed. */
	struct state_load sl = {.sl_rc = -1};
	pthread_t loader;
	int lr = pthread_create(&loader, NULL, load_state, &sl);
	if (lr)
		die("state loader thread: %s", strerror(lr));
	char err[768], path[PATH_MAX + 32];
	snprintf(path, sizeof(path), "%s/chip", g_ctl.c_state_dir);
	g_ctl.c_chip = chip_open(path, anchor, err, sizeof(err));
	bool refused =
	    !g_ctl.c_chip || chip_measure_self(g_ctl.c_chip, self, err, sizeof(err)) != 0;
	pthread_join(loader, NULL); /* before any exit: it uses OpenSSL and SQLite */
	if (!g_ctl.c_chip)
		die("security chip: %s", err);
	if (refused)
		die("refusing to serve: %s", err);
	if (sl.sl_rc)
		die("%s", sl.sl_err);
	/* The chain head is signed by the chip from now on (the first line is anchored). */
	audit_set_anchor(g_ctl.c_audit, sign_audit_head, g_ctl.c_chip);
	char torn[129];
	size_t cut = audit_repaired(g_ctl.c_audit, torn, sizeof(torn));
	if (cut) {
		char detail[400];
		sfmt(detail, sizeof(detail), "cut %zu bytes of a torn last line: %s", cut, torn);
		/* Not a reason to refuse to start (the cut freed the room it needs). */
		if (audit_reserve(g_ctl.c_audit) < 0 ||
		    audit_append(g_ctl.c_audit, geteuid(), "REPAIR", "/audit", 200, detail) < 0)
			warnmsg("audit log: recording the cut of a torn line: %s", strerror(errno));
	}
	if (sup_init(err, sizeof(err)))
		die("%s", err);
	pthread_mutex_lock(&g_ctl.c_lock);
	for (struct instance *in = g_ctl.c_instances; in; in = in->i_next)
		inst_adopt(in);
	pthread_mutex_unlock(&g_ctl.c_lock);
	if (sup_start(err, sizeof(err)))
		die("%s", err);
	struct http_opts ho = {.ho_timeout_s = (unsigned)timeout,
			       .ho_deadline_s = (unsigned)deadline,
			       .ho_threads = (unsigned)threads,
			       .ho_max_conns = (unsigned)max_conns,
			       .ho_max_per_uid = (unsigned)per_uid};
	/* Before the socket serves, so no call's line precedes it. Not waited for: nitrod
	 * changed nothing yet (docs/security.md, "Audit log"). */
	if (audit_append_sync(g_ctl.c_audit, AUDIT_SYNC_BACKGROUND, geteuid(), "START", sock, 200,
			      "nitrod serving") < 0)
		warnmsg("audit log: %s", strerror(errno));
	if (http_start(sock, &ho, err, sizeof(err)))
		die("%s", err);
	/* nitrod's own measurement: durable now, off the path to serving (chip.h). */
	if (chip_sync(g_ctl.c_chip, err, sizeof(err)) < 0)
		warnmsg("security chip: %s", err);

	int sig = 0;
	while (sigwait(&sigs, &sig) != 0)
		;
	http_stop();
	pthread_mutex_lock(&g_ctl.c_lock);
	audit_append(g_ctl.c_audit, geteuid(), "STOP", sock, 200, "nitrod stopped by a signal");
	/* The last signed head: a log of a stopped nitrod ends anchored. */
	if (audit_anchor(g_ctl.c_audit) < 0)
		warnmsg("audit log: anchor: %s", strerror(errno));
	/* Instances keep running: the next nitrod re-adopts them. Held lock: no more events. */
	return 0;
}
