/* security-bench: what measurement and jailing add to a launch, each beside its peer
 * measured in the same run (median of N):
 *   jail_spawn of /bin/true (mount ns + tmpfs root + binds + pivot_root + uid switch, with
 *   and without its own network namespace) vs plain fork+execve+wait of /bin/true;
 *   chip_measure_exec of nitro-hv and chip_measure_file of the guest kernel, first time
 *   (hash) and cached, vs reading the same file once.
 * Usage: sec-bench NITRO_HV KERNEL [N]. Needs root. */
#include "controller/jailer.h"
#include "lib/util.h"
#include "securitychip/chip.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_us(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(double), cmp_d);
	return v[n / 2];
}

static void report(const char *what, double us, const char *peer, double peer_us)
{
	printf("%-44s %9.1f us   %-28s %9.1f us   ratio %.2f  (+%.1f us)\n", what, us, peer,
	       peer_us, us / peer_us, us - peer_us);
}

/* until_exec: stop the clock when the child has exec'ed (a close-on-exec pipe hits EOF),
 * as jail_spawn returns; else when it has exited and been reaped. */
static double plain_spawn(bool until_exec)
{
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) < 0)
		die("pipe");
	double t = now_us();
	pid_t p = fork();
	if (p == 0) {
		char *av[] = {"/bin/true", NULL};
		execve(av[0], av, NULL);
		_exit(127);
	}
	close(pfd[1]);
	char c;
	if (read(pfd[0], &c, 1) < 0)
		die("read");
	close(pfd[0]);
	double exec_done = now_us() - t;
	waitpid(p, NULL, 0);
	return until_exec ? exec_done : now_us() - t;
}

static double jailed_spawn(unsigned flags, bool until_exec)
{
	struct jail_spec js;
	jail_spec_init(&js, "bench", 60001, 60001, "/tmp/nitro-sec-bench-jail");
	js.js_flags = flags;
	js.js_seccomp = false;
	char *av[] = {"/bin/true", NULL};
	char err[512];
	double t = now_us();
	pid_t p = jail_spawn(&js, av, err, sizeof(err));
	if (p < 0)
		die("%s", err);
	double exec_done = now_us() - t;
	waitpid(p, NULL, 0);
	return until_exec ? exec_done : now_us() - t;
}

static double read_file_us(const char *path)
{
	static char buf[1 << 16];
	double t = now_us();
	int fd = open(path, O_RDONLY);
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	close(fd);
	return now_us() - t;
}

int main(int argc, char **argv)
{
	util_set_prog("sec-bench");
	if (argc < 3)
		die_usage("usage: sec-bench NITRO_HV KERNEL [N]");
	int n = argc > 3 ? atoi(argv[3]) : 30;
	if (n < 3 || n > 10000)
		die_usage("N: 3..10000");
	double *a = calloc((size_t)n, sizeof(double)), *b = calloc((size_t)n, sizeof(double)),
	       *c = calloc((size_t)n, sizeof(double));
	jailed_spawn(0, true); /* warm the library-closure cache like a running nitrod */
	/* Interleaved, so a busy neighbour slows all columns alike. */
	double *m[6];
	for (int k = 0; k < 6; k++)
		m[k] = calloc((size_t)n, sizeof(double));
	for (int i = 0; i < n; i++) {
		m[0][i] = plain_spawn(true);
		m[1][i] = jailed_spawn(0, true);
		m[2][i] = jailed_spawn(JAIL_NEWNET, true);
		m[3][i] = plain_spawn(false);
		m[4][i] = jailed_spawn(0, false);
		m[5][i] = jailed_spawn(JAIL_NEWNET, false);
	}
	double p0 = median(m[0], n), p1 = median(m[3], n);
	report("jail_spawn /bin/true, until exec", median(m[1], n), "fork+execve, until exec", p0);
	report("jail_spawn, own netns, until exec", median(m[2], n), "fork+execve, until exec", p0);
	report("jail_spawn /bin/true + exit + wait", median(m[4], n), "fork+execve+exit+wait", p1);
	report("jail_spawn, own netns, + exit + wait", median(m[5], n), "fork+execve+exit+wait",
	       p1);
	for (int k = 0; k < 6; k++)
		free(m[k]);

	char dir[] = "/tmp/nitro-sec-bench-XXXXXX";
	if (!mkdtemp(dir))
		die("mkdtemp failed");
	char err[512];
	for (int f = 0; f < 2; f++) {
		const char *path = argv[1 + f];
		for (int i = 0; i < n; i++) {
			char st[128];
			snprintf(st, sizeof(st), "%s/s%d-%d", dir, f, i);
			struct chip *ch = chip_open(st, NULL, err, sizeof(err));
			if (!ch)
				die("%s", err);
			a[i] = read_file_us(path);
			double t = now_us();
			int rc = f == 0 ? chip_measure_exec(ch, path, NULL, NULL, err, sizeof(err))
					: chip_measure_file(ch, CHIP_PCR_KERNEL, "kernel", path,
							    NULL, err, sizeof(err));
			b[i] = now_us() - t;
			if (rc < 0)
				die("%s", err);
			t = now_us();
			rc = f == 0 ? chip_measure_exec(ch, path, NULL, NULL, err, sizeof(err))
				    : chip_measure_file(ch, CHIP_PCR_KERNEL, "kernel", path, NULL,
							err, sizeof(err));
			c[i] = now_us() - t;
			chip_close(ch);
		}
		struct stat sb;
		stat(path, &sb);
		char w1[96], w2[96];
		snprintf(w1, sizeof(w1), "%s (%.1f MB) first measure",
			 f == 0 ? "nitro-hv exec" : "kernel file", (double)sb.st_size / 1e6);
		snprintf(w2, sizeof(w2), "%s cached measure",
			 f == 0 ? "nitro-hv exec" : "kernel file");
		double rd = median(a, n);
		report(w1, median(b, n), "read the file once", rd);
		report(w2, median(c, n), "read the file once", rd);
	}
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		warnmsg("cannot remove %s", dir);
	return 0;
}
