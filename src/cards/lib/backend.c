/* vhost-user back-end program conventions: options, capabilities, listening socket. */
#include "cards/lib/backend.h"
#include "cards/lib/listen.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib/util.h"

void backend_opts_init(struct backend_opts *o)
{
	*o = (struct backend_opts){.bo_fd = -1};
}

/* The value of --name=VALUE or --name VALUE in argv[*i]; NULL if argv[*i] is not --name. */
static const char *opt_value(const char *name, int argc, char **argv, int *i, bool *missing)
{
	size_t n = strlen(name);
	const char *a = argv[*i];
	*missing = false;
	if (strncmp(a, name, n) != 0)
		return NULL;
	if (a[n] == '=')
		return a + n + 1;
	if (a[n] != '\0')
		return NULL;
	if (*i + 1 >= argc) {
		*missing = true;
		return NULL;
	}
	return argv[++*i];
}

int backend_parse_opt(struct backend_opts *o, int argc, char **argv, int *i, char *err,
		      size_t errlen)
{
	bool missing;
	const char *v;

	if (strcmp(argv[*i], "--print-capabilities") == 0) {
		o->bo_print_caps = true;
		return 1;
	}
	if ((v = opt_value("--socket-path", argc, argv, i, &missing)) || missing) {
		if (!v || !*v)
			RETURN_ERR(-EINVAL, "--socket-path needs a path");
		if (strlen(v) >= sizeof(((struct sockaddr_un *)0)->sun_path))
			RETURN_ERR(-ENAMETOOLONG, "--socket-path %s: longer than %zu bytes", v,
				   sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
		o->bo_socket_path = v;
		return 1;
	}
	if ((v = opt_value("--fd", argc, argv, i, &missing)) || missing) {
		uint64_t fd;
		if (!v || !parse_u64(v, 0, 1 << 20, &fd))
			RETURN_ERR(-EINVAL, "--fd needs a file descriptor number, not '%s'",
				   v ? v : "");
		o->bo_fd = (int)fd;
		return 1;
	}
	return 0;
}

int backend_check_opts(const struct backend_opts *o, char *err, size_t errlen)
{
	if (o->bo_print_caps)
		return 0;
	if (o->bo_socket_path && o->bo_fd >= 0)
		RETURN_ERR(-EINVAL, "--socket-path and --fd are incompatible");
	if (!o->bo_socket_path && o->bo_fd < 0)
		RETURN_ERR(-EINVAL, "--socket-path or --fd is required");
	return 0;
}

static void json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

void backend_print_capabilities(FILE *f, const char *type, const char *const *features)
{
	fputs("{\n  \"type\": ", f);
	json_string(f, type);
	fputs(",\n  \"features\": [", f);
	for (unsigned i = 0; features && features[i]; i++) {
		fputs(i ? ",\n    " : "\n    ", f);
		json_string(f, features[i]);
	}
	fputs(features && features[0] ? "\n  ]\n}\n" : "]\n}\n", f);
}

static void on_listen(struct loop *l, int fd, uint32_t events, void *opaque);

static void on_listen(struct loop *l, int fd, uint32_t events, void *opaque)
{
	struct backend *b = opaque;
	char err[256];
	(void)events;
	int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
	if (c < 0) {
		if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
			warnmsg("vhost-user: accept on %s: %s", b->be_path, strerror(errno));
		return;
	}
	if (b->be_serial)
		loop_del(l, fd); /* one frontend at a time: later ones wait in the backlog */
	else
		backend_stop(b); /* one frontend per card */
	if (vu_dev_attach(b->be_dev, c, err, sizeof(err)) < 0) {
		warnmsg("vhost-user: %s", err);
		if (!b->be_serial || backend_next(b) < 0)
			loop_stop(b->be_loop);
	}
}

int backend_next(struct backend *b)
{
	char err[256];
	if (b->be_listen_fd < 0 ||
	    loop_add(b->be_loop, b->be_listen_fd, on_listen, b, err, sizeof(err)) < 0)
		return -1;
	return 0;
}

static int listen_on(struct backend *b, const char *path, char *err, size_t errlen)
{
	/* The socket appears under its name only once it listens (listen.h). */
	int fd = listen_renamed(path, err, errlen);
	if (fd < 0)
		return fd;
	b->be_listen_fd = fd;
	snprintf(b->be_path, sizeof(b->be_path), "%s", path);
	int ret = loop_add(b->be_loop, fd, on_listen, b, err, errlen);
	if (ret)
		backend_stop(b);
	return ret;
}

int backend_start(struct backend *b, struct vu_dev *d, struct loop *l, const struct backend_opts *o,
		  char *err, size_t errlen)
{
	*b = (struct backend){
	    .be_dev = d, .be_loop = l, .be_listen_fd = -1, .be_serial = o->bo_serial};
	if (o->bo_socket_path)
		return listen_on(b, o->bo_socket_path, err, errlen);
	int type = 0;
	socklen_t len = sizeof(type);
	struct sockaddr_un peer;
	socklen_t plen = sizeof(peer);
	if (fcntl(o->bo_fd, F_GETFD) < 0)
		RETURN_ERR(-EBADF, "--fd %d is not an open file descriptor", o->bo_fd);
	if (getsockopt(o->bo_fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_STREAM ||
	    getpeername(o->bo_fd, (struct sockaddr *)&peer, &plen) < 0 ||
	    peer.sun_family != AF_UNIX)
		RETURN_ERR(-ENOTSOCK, "--fd %d is not a connected Unix stream socket", o->bo_fd);
	fcntl(o->bo_fd, F_SETFD, FD_CLOEXEC);
	return vu_dev_attach(d, o->bo_fd, err, errlen);
}

void backend_stop(struct backend *b)
{
	if (b->be_listen_fd >= 0) {
		loop_del(b->be_loop, b->be_listen_fd);
		close(b->be_listen_fd);
		b->be_listen_fd = -1;
	}
	if (b->be_path[0]) {
		unlink(b->be_path);
		b->be_path[0] = '\0';
	}
}
