/* The cards' listening Unix sockets (listen.h). */
#include "cards/lib/listen.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib/util.h"

int listen_renamed(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	int n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s.%d~", path, (int)getpid());
	if (n < 0 || (size_t)n >= sizeof(sa.sun_path))
		RETURN_ERR(-ENAMETOOLONG, "%s: socket path too long", path);
	if (lstat(path, &st) == 0 && !S_ISSOCK(st.st_mode))
		RETURN_ERR(-EEXIST, "%s exists and is not a socket", path);
	unlink(sa.sun_path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		RETURN_ERR(-errno, "socket: %s", strerror(errno));
	/* The owner's only, whatever the umask: connecting needs write access, and every
	 * process of an instance (nitro-hv, its cards) runs as the instance's one uid. */
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(sa.sun_path, 0600) < 0 ||
	    listen(fd, 4) < 0 ||
	    rename(sa.sun_path, path) < 0) { /* replaces a stale socket of an earlier run */
		int e = errno;
		unlink(sa.sun_path);
		close(fd);
		RETURN_ERR(-e, "listening on %s: %s", path, strerror(e));
	}
	return fd;
}

int listen_replacing(const char *path, int backlog, char *err, size_t errlen)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path))
		RETURN_ERR(-ENAMETOOLONG, "control socket %s: path longer than %zu bytes", path,
			   sizeof(sa.sun_path) - 1);
	struct stat st;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			RETURN_ERR(-EEXIST, "control socket %s: exists and is not a socket", path);
		unlink(path);
	}
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		RETURN_ERR(-errno, "control socket: %s", strerror(errno));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, backlog) < 0) {
		int e = errno;
		close(fd);
		RETURN_ERR(-e, "control socket %s: %s", path, strerror(e));
	}
	return fd;
}
