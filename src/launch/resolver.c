/* The host's resolver for the VPC cards (contract: resolver.h). */
#include "launch/resolver.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/util.h"

int launch_host_resolver(const char *path, char *out, size_t len)
{
	FILE *f = fopen(path, "re");
	char line[512];
	int r = -1;
	if (!f)
		return -1;
	while (r < 0 && fgets(line, sizeof(line), f)) {
		char word[16], addr[64];
		struct in_addr a;
		if (sscanf(line, " %15s %63s", word, addr) == 2 && !strcmp(word, "nameserver") &&
		    inet_pton(AF_INET, addr, &a) == 1) {
			snprintf(out, len, "%s:53", addr);
			r = 0;
		}
	}
	fclose(f);
	return r;
}

int launch_usable_resolver(const char *path, char *out, size_t len)
{
	char err[256];
	if (launch_host_resolver(path, out, len) < 0)
		return -1;
	int s = launch_dns_socket(out, err, sizeof(err));
	if (s < 0) {
		out[0] = 0;
		return -1;
	}
	close(s);
	return 0;
}

int launch_dns_socket(const char *addr, char *err, size_t errlen)
{
	char a[64];
	uint64_t port;
	const char *colon = strrchr(addr, ':');
	struct sockaddr_in sin = {.sin_family = AF_INET};
	size_t l = colon ? (size_t)(colon - addr) : 0;
	if (!colon || l >= sizeof(a))
		RETURN_ERR(-1, "resolver %s: expected A.B.C.D:PORT", addr);
	memcpy(a, addr, l);
	a[l] = 0;
	if (inet_pton(AF_INET, a, &sin.sin_addr) != 1 || !parse_u64(colon + 1, 1, 65535, &port))
		RETURN_ERR(-1, "resolver %s: expected A.B.C.D:PORT", addr);
	sin.sin_port = htons((uint16_t)port);
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0 || connect(s, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
		int e = errno;
		if (s >= 0)
			close(s);
		RETURN_ERR(-1, "resolver %s: %s", addr, strerror(e));
	}
	return s;
}
