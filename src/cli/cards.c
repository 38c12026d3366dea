/* nitro run --volume: one nitro-card-ebs process per volume, started before the
 * hypervisor and stopped after it. Each card serves its volume on a unix socket in a
 * private run folder; nitro-hv connects to it as the vhost-user frontend. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "lib/util.h"

#define CARD_START_MS 30000 /* a card starts in ms; an emulated host can be 100x slower */

int volume_parse(const char *spec, struct run_volume *v, char *err, size_t errlen)
{
	memset(v, 0, sizeof(*v));
	snprintf(v->rv_spec, sizeof(v->rv_spec), "%s", spec);
	char *save = NULL, *tok = strtok_r(v->rv_spec, ",", &save);
	if (!tok || !*tok)
		RETURN_ERR(2, "--volume %s: missing path", spec);
	v->rv_path = tok;
	while ((tok = strtok_r(NULL, ",", &save))) {
		uint64_t n;
		if (!strncmp(tok, "iops=", 5)) {
			if (!parse_u64(tok + 5, 0, 1000000, &n))
				RETURN_ERR(2, "--volume %s: iops must be 0 to 1000000", spec);
			snprintf(v->rv_iops, sizeof(v->rv_iops), "%llu", (unsigned long long)n);
		} else if (!strncmp(tok, "throughput=", 11)) {
			if (!parse_u64(tok + 11, 0, 100000, &n))
				RETURN_ERR(2, "--volume %s: throughput must be 0 to 100000 MiB/s",
					   spec);
			snprintf(v->rv_tput, sizeof(v->rv_tput), "%llu", (unsigned long long)n);
		} else if (!strcmp(tok, "readonly")) {
			v->rv_readonly = true;
		} else if (!strcmp(tok, "gp2")) {
			v->rv_gp2 = true;
		} else if (!strncmp(tok, "header=", 7) && tok[7]) {
			v->rv_header = tok + 7;
		} else {
			RETURN_ERR(2,
				   "--volume %s: unknown option %s (iops=N, throughput=MiB, gp2, "
				   "header=PATH, readonly)",
				   spec, tok);
		}
	}
	if (v->rv_gp2 && v->rv_iops[0])
		RETURN_ERR(2, "--volume %s: gp2 and iops= exclude each other", spec);
	/* Network and null volumes are checked by their card (a missing NBD server is
	 * reported by it before the guest starts). */
	static const char *const remote[] = {"nbd://", "nbd+unix://", "nbds://", "nbds+unix://",
					     "null:"};
	for (size_t i = 0; i < sizeof(remote) / sizeof(remote[0]); i++)
		if (!strncmp(v->rv_path, remote[i], strlen(remote[i])))
			return 0;
	if (v->rv_header)
		RETURN_ERR(2, "--volume %s: header= is for nbd:// volumes", spec);
	v->rv_file = true;
	if (access(v->rv_path, R_OK | (v->rv_readonly ? 0 : W_OK)) != 0)
		RETURN_ERR(1, "volume %s: %s", v->rv_path, strerror(errno));
	return 0;
}

bool card_spawn(const char *exe, char *const argv[], const char *socket, pid_t *pid)
{
	*pid = fork();
	if (*pid < 0)
		die("run: fork: %s", strerror(errno));
	if (*pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGTERM); /* never outlive nitro run */
		execv(exe, argv);
		fprintf(stderr, "nitro: run: cannot start %s: %s\n", exe, strerror(errno));
		_exit(127);
	}
	/* Cards rename their socket into place once it listens (src/cards/lib/backend.c).
	 * The card's stderr is ours: its own reason is printed above; say how it ended, so
	 * that a card that died without a word (a signal) or hung is never a mystery. */
	const char *name = strrchr(exe, '/') ? strrchr(exe, '/') + 1 : exe;
	for (int ms = 0; ms < CARD_START_MS; ms += 10) {
		struct stat st;
		int status;
		if (stat(socket, &st) == 0 && S_ISSOCK(st.st_mode))
			return true;
		if (waitpid(*pid, &status, WNOHANG) == *pid) {
			*pid = -1;
			if (WIFSIGNALED(status))
				warnmsg("run: %s was killed by signal %d (%s) before it served",
					name, WTERMSIG(status), strsignal(WTERMSIG(status)));
			else
				warnmsg("run: %s exited with status %d before it served", name,
					WEXITSTATUS(status));
			return false;
		}
		nanosleep(&(struct timespec){0, 10000000}, NULL);
	}
	warnmsg("run: %s did not serve within %d s; stopped", name, CARD_START_MS / 1000);
	return false;
}

int cards_start(struct run_volume *v, unsigned n, char *dir, size_t dirlen)
{
	const char *rt = getenv("XDG_RUNTIME_DIR");
	snprintf(dir, dirlen, "%s/nitro-run-XXXXXX", rt && *rt ? rt : "/tmp");
	if (!mkdtemp(dir))
		die("run: cannot create a folder for the card sockets in %s: %s",
		    rt && *rt ? rt : "/tmp", strerror(errno));
	char card[PATH_MAX];
	exe_sibling("nitro-card-ebs", card, sizeof(card));
	for (unsigned i = 0; i < n; i++) {
		snprintf(v[i].rv_socket, sizeof(v[i].rv_socket), "%s/vol%u.sock", dir, i);
		char *argv[16];
		int k = 0;
		argv[k++] = card;
		argv[k++] = "--socket-path";
		argv[k++] = v[i].rv_socket;
		if (v[i].rv_iops[0]) {
			argv[k++] = "--iops";
			argv[k++] = v[i].rv_iops;
		}
		if (v[i].rv_tput[0]) {
			argv[k++] = "--throughput";
			argv[k++] = v[i].rv_tput;
		}
		if (v[i].rv_readonly)
			argv[k++] = "--readonly";
		if (v[i].rv_gp2)
			argv[k++] = "--gp2";
		if (v[i].rv_header) {
			argv[k++] = "--header";
			argv[k++] = (char *)v[i].rv_header;
		}
		argv[k++] = (char *)v[i].rv_path;
		argv[k] = NULL;
		if (!card_spawn(card, argv, v[i].rv_socket, &v[i].rv_pid)) {
			cards_stop(v, i + 1, dir);
			die("run: the card for volume %s did not start (see above)", v[i].rv_path);
		}
	}
	return 0;
}

void cards_stop(struct run_volume *v, unsigned n, const char *dir)
{
	for (unsigned i = 0; i < n; i++)
		if (v[i].rv_pid > 0)
			kill(v[i].rv_pid, SIGTERM);
	for (unsigned i = 0; i < n; i++)
		if (v[i].rv_pid > 0) {
			while (waitpid(v[i].rv_pid, NULL, 0) < 0 && errno == EINTR)
				;
			unlink(v[i].rv_socket);
		}
	rmdir(dir);
}
