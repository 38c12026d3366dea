/* nitrod-loadgen: API latency under concurrent clients, for bench/api.py.
 *
 *   nitrod-loadgen SOCKET PATH CLIENTS REQUESTS
 * Each of CLIENTS threads opens one keep-alive HTTP/1.1 connection to the Unix socket and
 * sends REQUESTS x "GET PATH", timing each from the write to the end of the reply. Prints
 * "n=N p50_us=X p99_us=Y max_us=Z errors=E" (errors: non-200 replies or broken
 * connections). Replies are parsed with bounds checks (a reply is hostile like any input).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

struct client {
	pthread_t c_thread;
	const char *c_sock, *c_path;
	unsigned c_n;
	double *c_us;
	unsigned c_done, c_errors;
};

static pthread_barrier_t start;

static double now_us(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static int dial(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Reads one reply; returns its status, or -1. */
static int read_reply(int fd, char *buf, size_t cap)
{
	size_t len = 0;
	char *end = NULL;
	while (!end) {
		if (len + 1 >= cap)
			return -1;
		/* Waits in poll() (as HTTP client libraries do), not in a blocking read(): a
		 * reader blocked in read() on a Unix socket is woken, for nothing, when the
		 * server consumes the request it sent (the socket's write-space wake-up), one
		 * more context switch per request on the cores nitrod shares with us. */
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		if (poll(&pfd, 1, -1) < 0)
			return -1;
		ssize_t r = read(fd, buf + len, cap - 1 - len);
		if (r <= 0)
			return -1;
		len += (size_t)r;
		buf[len] = 0;
		end = strstr(buf, "\r\n\r\n");
	}
	int status = 0;
	if (sscanf(buf, "HTTP/1.1 %d", &status) != 1)
		return -1;
	const char *cl = strcasestr(buf, "\r\nContent-Length:");
	if (!cl || cl > end)
		return -1;
	long body = strtol(cl + 17, NULL, 10);
	size_t want = (size_t)(end + 4 - buf) + (size_t)(body < 0 ? 0 : body);
	if (body < 0 || want >= cap)
		return -1;
	while (len < want) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		if (poll(&pfd, 1, -1) < 0)
			return -1;
		ssize_t r = read(fd, buf + len, want - len);
		if (r <= 0)
			return -1;
		len += (size_t)r;
	}
	return status;
}

static void *run(void *arg)
{
	struct client *c = arg;
	char req[512], buf[65536];
	int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: nitrod\r\n\r\n", c->c_path);
	int fd = dial(c->c_sock);
	pthread_barrier_wait(&start);
	for (unsigned i = 0; i < c->c_n; i++) {
		if (fd < 0 && (fd = dial(c->c_sock)) < 0) {
			c->c_errors++;
			continue;
		}
		double t0 = now_us();
		int st = write(fd, req, (size_t)n) == n ? read_reply(fd, buf, sizeof(buf)) : -1;
		double t1 = now_us();
		if (st != 200) {
			c->c_errors++;
			close(fd);
			fd = -1;
			continue;
		}
		c->c_us[c->c_done++] = t1 - t0;
	}
	if (fd >= 0)
		close(fd);
	return NULL;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: nitrod-loadgen SOCKET PATH CLIENTS REQUESTS\n");
		return 2;
	}
	unsigned nc = (unsigned)atoi(argv[3]), nr = (unsigned)atoi(argv[4]);
	if (nc < 1 || nc > 1024 || nr < 1 || nr > 1000000) {
		fprintf(stderr, "nitrod-loadgen: CLIENTS 1..1024, REQUESTS 1..1000000\n");
		return 2;
	}
	struct client *cs = calloc(nc, sizeof(*cs));
	double *all = calloc((size_t)nc * nr, sizeof(double));
	if (!cs || !all)
		return 1;
	pthread_barrier_init(&start, NULL, nc);
	for (unsigned i = 0; i < nc; i++) {
		cs[i] = (struct client){
		    .c_sock = argv[1], .c_path = argv[2], .c_n = nr, .c_us = all + (size_t)i * nr};
		if (pthread_create(&cs[i].c_thread, NULL, run, &cs[i])) {
			fprintf(stderr, "nitrod-loadgen: pthread_create: %s\n", strerror(errno));
			return 1;
		}
	}
	size_t n = 0;
	unsigned errors = 0;
	for (unsigned i = 0; i < nc; i++) {
		pthread_join(cs[i].c_thread, NULL);
		errors += cs[i].c_errors;
	}
	for (unsigned i = 0; i < nc; i++)
		for (unsigned k = 0; k < cs[i].c_done; k++)
			all[n++] = cs[i].c_us[k];
	if (!n) {
		printf("n=0 errors=%u\n", errors);
		return 1;
	}
	qsort(all, n, sizeof(double), cmp);
	printf("n=%zu p50_us=%.1f p99_us=%.1f max_us=%.1f errors=%u\n", n, all[n / 2],
	       all[(size_t)((double)n * 0.99)], all[n - 1], errors);
	return errors ? 1 : 0;
}
