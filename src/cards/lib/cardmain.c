/* The option reader and event-loop set-up every card's main() shares: see cardmain.h. */
#include "cards/lib/cardmain.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "lib/util.h"

const char *card_opt(const char *name, int argc, char **argv, int *i, const char *usage)
{
	size_t n = strlen(name);
	if (strncmp(argv[*i], name, n))
		return NULL;
	if (argv[*i][n] == '=')
		return argv[*i] + n + 1;
	if (argv[*i][n])
		return NULL;
	if (*i + 1 >= argc)
		die_usage("%s needs a value\n%s", name, usage);
	return argv[++*i];
}

bool card_backend_opt(struct backend_opts *bo, int argc, char **argv, int *i)
{
	char err[256];
	int r = backend_parse_opt(bo, argc, argv, i, err, sizeof(err));
	if (r < 0)
		die_usage("%s", err);
	return r > 0;
}

void card_backend_opts_done(const struct backend_opts *bo, const char *type, const char *usage)
{
	char err[256];
	if (bo->bo_print_caps) {
		backend_print_capabilities(stdout, type, NULL);
		exit(0);
	}
	if (backend_check_opts(bo, err, sizeof(err)) < 0)
		die_usage("%s\n%s", err, usage);
}

static struct {
	void (*u_fn)(void *opaque);
	void *u_opaque;
} usr1;

static void on_usr1(struct loop *l, int fd, uint32_t events, void *opaque)
{
	struct signalfd_siginfo si;
	(void)l;
	(void)events;
	(void)opaque;
	while (read(fd, &si, sizeof(si)) == sizeof(si))
		usr1.u_fn(usr1.u_opaque);
}

int card_loop_init(struct loop *l, int *usr1_fd, void (*on_usr1_fn)(void *opaque), void *opaque,
		   char *err, size_t errlen)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, NULL);
	*usr1_fd = -1;
	int r = loop_init(l, true, err, errlen);
	if (r < 0)
		return r;
	usr1.u_fn = on_usr1_fn;
	usr1.u_opaque = opaque;
	*usr1_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (*usr1_fd < 0) {
		r = -errno;
		snprintf(err, errlen, "SIGUSR1 signalfd: %s", strerror(errno));
		return r;
	}
	char why[256];
	r = loop_add(l, *usr1_fd, on_usr1, NULL, why, sizeof(why));
	if (r < 0)
		snprintf(err, errlen, "SIGUSR1 signalfd: %s", why);
	return r;
}
