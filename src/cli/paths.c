/* Cache, image and tool locations; the KVM usability check. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli.h"
#include "lib/util.h"

const char *cache_dir(void)
{
	static char buf[PATH_MAX];
	if (buf[0])
		return buf;
	const char *c = getenv("NITRO_CACHE");
	if (c && *c)
		snprintf(buf, sizeof(buf), "%s", c);
	else
		snprintf(buf, sizeof(buf), "%s/.cache/nitro", getenv("HOME") ? getenv("HOME") : "/root");
	return buf;
}

void exe_sibling(const char *name, char *out, size_t len)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0) {
		snprintf(out, len, "%s", name);
		return;
	}
	exe[n] = 0;
	char *slash = strrchr(exe, '/');
	if (slash)
		*slash = 0;
	snprintf(out, len, "%s/%s", exe, name);
}

void tool_path(const char *name, char *out, size_t len)
{
	char t[PATH_MAX];
	snprintf(t, sizeof(t), "../tools/%s", name);
	exe_sibling(t, out, len);
}

void image_path(const char *name, char *out, size_t len)
{
	snprintf(out, len, "%s/images/%s", cache_dir(), name);
}

int images_ensure(void)
{
	char script[PATH_MAX];
	tool_path("images.sh", script, sizeof(script));
	pid_t pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		setenv("NITRO_CACHE", cache_dir(), 1);
		execl("/bin/sh", "sh", script, (char *)NULL);
		fprintf(stderr, "nitro: images: cannot run %s: %s\n", script, strerror(errno));
		_exit(127);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1;
}

bool kvm_usable(char *why, size_t len)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		snprintf(why, len, "/dev/kvm: %s", strerror(errno));
		return false;
	}
	close(fd);
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[4096];
	bool hw = false;
	while (f && !hw && fgets(line, sizeof(line), f))
		if (!strncmp(line, "flags", 5) && (strstr(line, " vmx") || strstr(line, " svm")))
			hw = true;
	if (f)
		fclose(f);
	if (!hw)
		snprintf(why, len, "/dev/kvm is not hardware-assisted (this CPU has no VMX/SVM)");
	return hw;
}
