/* The enclave process's control socket and the commands that use it: describe, terminate,
 * console (tool.h). Protocol: one line per connection, "describe" or "terminate", answered
 * by one JSON object and the connection closed. Only root reaches the sockets (NET_RUN_DIR
 * is 0700, each socket 0600); a client that sends nothing within 2 s is dropped. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/vm_sockets.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "enclave/tool/tool.h"

static volatile sig_atomic_t stop_requested;
static void on_signal(int s)
{
	(void)s;
	stop_requested = 1;
}

static void reply(int c, const char *text)
{
	size_t n = strlen(text), o = 0;
	while (o < n) {
		ssize_t w = write(c, text + o, n - o);
		if (w <= 0)
			break;
		o += (size_t)w;
	}
}

_Noreturn void net_serve(int efd, const struct net_enclave *e, const char *path,
			 void (*cleanup)(void))
{
	struct sockaddr_un un = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(un.sun_path))
		net_fail("control socket path too long: %s", path);
	snprintf(un.sun_path, sizeof(un.sun_path), "%s", path);
	unlink(path);
	int ls = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (ls < 0 || bind(ls, (struct sockaddr *)&un, sizeof(un)) < 0 || chmod(path, 0600) < 0 ||
	    listen(ls, 8) < 0)
		net_fail("cannot listen on %s: %s", path, strerror(errno));
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	char json[NET_CTL_MAX];
	if (net_enclave_json(e, false, 0, json, sizeof(json)) < 0)
		net_fail("description too long");
	net_report_ready(json);

	while (!stop_requested) {
		struct pollfd p[2] = {{.fd = efd, .events = POLLIN}, {.fd = ls, .events = POLLIN}};
		if (poll(p, 2, -1) < 0)
			continue; /* EINTR: a signal; the loop condition decides */
		if (p[0].revents & (POLLHUP | POLLERR))
			break; /* the enclave ended by itself */
		if (!(p[1].revents & POLLIN))
			continue;
		int c = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0)
			continue;
		char line[64] = "";
		struct pollfd q = {.fd = c, .events = POLLIN};
		ssize_t n = poll(&q, 1, 2000) == 1 ? read(c, line, sizeof(line) - 1) : -1;
		line[n > 0 ? n : 0] = 0;
		line[strcspn(line, "\r\n")] = 0;
		if (!strcmp(line, "describe")) {
			if (net_enclave_json(e, true, 2, json, sizeof(json)) >= 0)
				reply(c, json);
		} else if (!strcmp(line, "terminate")) {
			close(efd); /* the driver stops the enclave, frees its slot and CPUs */
			cleanup();
			snprintf(json, sizeof(json),
				 "{\n  \"EnclaveName\": \"%s\",\n  \"EnclaveID\": \"%s\",\n"
				 "  \"Terminated\": true\n}",
				 e->name, e->id);
			reply(c, json);
			close(c);
			_exit(0);
		} else
			reply(c, "{\"Error\": \"unknown request\"}");
		close(c);
	}
	close(efd);
	cleanup();
	_exit(0);
}

/* Sends one request to a control socket; the reply (malloc'd) or NULL (stale: removed). */
static char *ask(const char *path, const char *req)
{
	struct sockaddr_un un = {.sun_family = AF_UNIX};
	snprintf(un.sun_path, sizeof(un.sun_path), "%s", path);
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return NULL;
	if (connect(s, (struct sockaddr *)&un, sizeof(un)) < 0) {
		if (errno == ECONNREFUSED)
			unlink(path); /* its process is gone */
		close(s);
		return NULL;
	}
	reply(s, req);
	shutdown(s, SHUT_WR);
	char *buf = malloc(NET_CTL_MAX + 1);
	size_t o = 0;
	ssize_t n;
	while (buf && o < NET_CTL_MAX && (n = read(s, buf + o, NET_CTL_MAX - o)) > 0)
		o += (size_t)n;
	close(s);
	if (buf)
		buf[o] = 0;
	if (buf && !o) {
		free(buf);
		return NULL;
	}
	return buf;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

/* The control sockets' paths, sorted; count, or -1. */
static int list_sockets(char paths[][300], int max)
{
	struct dirent **d;
	int n = scandir(NET_RUN_DIR, &d, NULL, by_name), k = 0;
	for (int i = 0; i < n; i++) {
		size_t l = strlen(d[i]->d_name);
		if (k < max && l > 5 && !strcmp(d[i]->d_name + l - 5, ".sock"))
			snprintf(paths[k++], 300, NET_RUN_DIR "/%s", d[i]->d_name);
		free(d[i]);
	}
	if (n >= 0)
		free(d);
	return k;
}

/* A string field of a describe reply (our own JSON: "Key": "value"). */
static int field(const char *json, const char *key, char *out, size_t len)
{
	char pat[64];
	snprintf(pat, sizeof(pat), "\"%s\": ", key);
	const char *p = strstr(json, pat);
	if (!p)
		return -1;
	p += strlen(pat);
	size_t n = strcspn(p, "\",\n");
	if (*p == '"')
		p++, n = strcspn(p, "\"");
	if (n >= len)
		return -1;
	memcpy(out, p, n);
	out[n] = 0;
	return 0;
}

#define MAX_ENCLAVES 64

int net_cmd_describe(void)
{
	static char paths[MAX_ENCLAVES][300];
	int n = list_sockets(paths, MAX_ENCLAVES), shown = 0;
	printf("[");
	for (int i = 0; i < n; i++) {
		char *r = ask(paths[i], "describe\n");
		if (!r)
			continue;
		printf("%s\n%s", shown++ ? "," : "", r);
		free(r);
	}
	printf("%s]\n", shown ? "\n" : "");
	return 0;
}

/* The describe reply of the enclave with this ID or name (malloc'd), and its socket. */
static char *find(const char *id, char *path, size_t len)
{
	static char paths[MAX_ENCLAVES][300];
	int n = list_sockets(paths, MAX_ENCLAVES);
	for (int i = 0; i < n; i++) {
		char *r = ask(paths[i], "describe\n");
		char eid[128], name[NET_NAME_MAX];
		if (r && ((!field(r, "EnclaveID", eid, sizeof(eid)) && !strcmp(eid, id)) ||
			  (!field(r, "EnclaveName", name, sizeof(name)) && !strcmp(name, id)))) {
			size_t l = strnlen(paths[i], sizeof(paths[i]) - 1);
			l = l < len ? l : len - 1;
			memcpy(path, paths[i], l);
			path[l] = 0;
			return r;
		}
		free(r);
	}
	return NULL;
}

int net_cmd_terminate(const struct net_args *a)
{
	static char paths[MAX_ENCLAVES][300];
	char one[300];
	int n;
	if (a->all) {
		n = list_sockets(paths, MAX_ENCLAVES);
	} else {
		char *r = find(a->enclave_id, one, sizeof(one));
		if (!r) {
			fprintf(
			    stderr,
			    "nitro-enclave: terminate: no running enclave has the ID or name %s "
			    "(`nitro-enclave describe` lists them)\n",
			    a->enclave_id);
			return 1;
		}
		free(r);
		snprintf(paths[0], sizeof(paths[0]), "%s", one);
		n = 1;
	}
	int rc = 0;
	for (int i = 0; i < n; i++) {
		char *r = ask(paths[i], "terminate\n");
		if (!r) {
			if (!a->all) {
				fprintf(stderr, "nitro-enclave: terminate: the enclave process did "
						"not answer\n");
				rc = 1;
			}
			continue;
		}
		printf("%s\n", r);
		free(r);
	}
	return rc;
}

int net_cmd_console(const struct net_args *a)
{
	char path[300], cid_s[32], flags[32];
	char *r = find(a->enclave_id, path, sizeof(path));
	if (!r) {
		fprintf(stderr,
			"nitro-enclave: console: no running enclave has the ID or name %s "
			"(`nitro-enclave describe` lists them)\n",
			a->enclave_id);
		return 1;
	}
	int ok = !field(r, "EnclaveCID", cid_s, sizeof(cid_s)) &&
		 !field(r, "Flags", flags, sizeof(flags));
	free(r);
	if (!ok)
		return fprintf(stderr, "nitro-enclave: console: bad description\n"), 1;
	if (strcmp(flags, "DEBUG_MODE")) {
		fprintf(stderr,
			"nitro-enclave: console: %s was not started with --debug-mode: only "
			"a debug-mode enclave has a console (terminate it and run it again "
			"with --debug-mode)\n",
			a->enclave_id);
		return 1;
	}
	uint64_t cid = strtoull(cid_s, NULL, 10);
	struct sockaddr_vm sa = {.svm_family = AF_VSOCK,
				 .svm_cid = VMADDR_CID_HYPERVISOR,
				 .svm_port = (unsigned)(cid + 10000)};
	/* As nitro-cli: the hypervisor (here the vsock card, src/cards/vsock/console.h) serves
	 * the kept output, then live output, and ends the stream when the enclave ends. */
	int s = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0 || connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		fprintf(stderr, "nitro-enclave: console: connect to vsock CID 0 port %u: %s%s\n",
			sa.svm_port, strerror(e),
			e == ECONNRESET ? " (no console there: the enclave has just ended, or the "
					  "host's vsock card serves no consoles)"
					: "");
		return 1;
	}
	char buf[4096];
	ssize_t n;
	while ((n = read(s, buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR))
		if (n > 0 && write(1, buf, (size_t)n) != n)
			break;
	int e = errno;
	close(s);
	if (n < 0) {
		fprintf(stderr, "nitro-enclave: console: %s\n", strerror(e));
		return 1;
	}
	return 0;
}
