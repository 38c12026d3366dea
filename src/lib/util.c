#include "lib/util.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *prog = "nitro";

void util_set_prog(const char *name)
{
	prog = name;
}

const char *util_prog(void)
{
	return prog;
}

static void vmsg(const char *fmt, va_list ap)
{
	char line[1024];
	int n = snprintf(line, sizeof(line), "%s: ", prog);
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	fprintf(stderr, "%s\n", line);
}

void warnmsg(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vmsg(fmt, ap);
	va_end(ap);
}

void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vmsg(fmt, ap);
	va_end(ap);
	exit(1);
}

void die_usage(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vmsg(fmt, ap);
	va_end(ap);
	exit(2);
}

bool parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	if (!s || !*s)
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
		unsigned d = (unsigned)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	if (v < min || v > max)
		return false;
	*out = v;
	return true;
}

bool parse_size(const char *s, uint64_t *out)
{
	char num[32];
	size_t n = 0;
	unsigned shift = 0;
	while (s[n] >= '0' && s[n] <= '9' && n < sizeof(num) - 1) {
		num[n] = s[n];
		n++;
	}
	num[n] = 0;
	if (s[n]) {
		switch (s[n]) {
		case 'K':
		case 'k':
			shift = 10;
			break;
		case 'M':
		case 'm':
			shift = 20;
			break;
		case 'G':
		case 'g':
			shift = 30;
			break;
		case 'T':
		case 't':
			shift = 40;
			break;
		default:
			return false;
		}
		if (s[n + 1] && !(s[n + 1] == 'i' && s[n + 2] == 'B' && !s[n + 3]) &&
		    !(s[n + 1] == 'B' && !s[n + 2]))
			return false;
	}
	uint64_t v;
	if (!parse_u64(num, 0, UINT64_MAX >> shift, &v))
		return false;
	*out = v << shift;
	return true;
}

int read_fd(int fd, size_t max, uint8_t **buf, size_t *len)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return errno;
	if (!S_ISREG(st.st_mode))
		return S_ISDIR(st.st_mode) ? EISDIR : ENODEV;
	if ((uint64_t)st.st_size > max)
		return EFBIG;
	size_t cap = (size_t)st.st_size, got = 0;
	uint8_t *b = malloc(cap ? cap : 1);
	if (!b)
		return ENOMEM;
	while (got < cap) {
		ssize_t r = pread(fd, b + got, cap - got, (off_t)got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			int e = r < 0 ? errno : EIO;
			free(b);
			return e;
		}
		got += (size_t)r;
	}
	*buf = b;
	*len = got;
	return 0;
}

int read_file(const char *path, size_t max, uint8_t **buf, size_t *len)
{
	/* O_NONBLOCK: opening a FIFO nobody writes to must not hang. */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return errno;
	int e = read_fd(fd, max, buf, len);
	close(fd);
	return e;
}

size_t pct_escape(const char *s, size_t n, char *out)
{
	static const char hx[] = "0123456789ABCDEF";
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch < 0x21 || ch > 0x7e || ch == '%') {
			out[o++] = '%';
			out[o++] = hx[ch >> 4];
			out[o++] = hx[ch & 15];
		} else {
			out[o++] = (char)ch;
		}
	}
	out[o] = 0;
	return o;
}

void loopback_up(const char *who)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct ifreq ifr = {0};
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	if (s >= 0 && ioctl(s, SIOCGIFFLAGS, &ifr) == 0 && !(ifr.ifr_flags & IFF_UP)) {
		ifr.ifr_flags |= IFF_UP;
		if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
			warnmsg("%scannot bring up lo for the VPC underlay: %s", who, strerror(errno));
	}
	if (s >= 0)
		close(s);
}
