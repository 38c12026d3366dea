/* The mapping service: records, the directory and file forms, and the lookup cache. */
#include "vpcmap/mapsvc.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/util.h"
#include "vpcmap/underlay.h"

#define MAP_FILE_MAX (4u << 20)

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void map_default_path(char *out, size_t len)
{
	const char *st = getenv("NITRO_STATE"), *home = getenv("HOME");
	if (st && *st)
		snprintf(out, len, "%s/%s", st, MAP_DIR_NAME);
	else
		snprintf(out, len, "%s/.local/state/nitro/%s", home && *home ? home : "/root",
			 MAP_DIR_NAME);
}

static bool parse_mac(const char *s, uint8_t mac[6]);

bool map_parse_mac(const char *s, uint8_t mac[6])
{
	return strlen(s) == 17 && parse_mac(s, mac) && !(mac[0] & 1);
}

void map_entry_name(uint32_t vpc, uint32_t ip, char *out, size_t len)
{
	char a[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &ip, a, sizeof(a));
	snprintf(out, len, "%u_%s", vpc, a);
}

void map_default_mac(uint32_t vpc, uint32_t ip, uint8_t mac[6])
{
	uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a over vpc then ip */
	uint8_t in[8];
	memcpy(in, &vpc, 4);
	memcpy(in + 4, &ip, 4);
	for (int i = 0; i < 8; i++)
		h = (h ^ in[i]) * 0x100000001b3ull;
	mac[0] = 0x02;
	for (int i = 1; i < 6; i++)
		mac[i] = (uint8_t)(h >> (8 * i));
}

static bool parse_mac(const char *s, uint8_t mac[6])
{
	for (int i = 0; i < 6; i++) {
		unsigned v = 0;
		for (int k = 0; k < 2; k++) {
			char c = s[3 * i + k];
			int d = c >= '0' && c <= '9'   ? c - '0'
				: c >= 'a' && c <= 'f' ? c - 'a' + 10
				: c >= 'A' && c <= 'F' ? c - 'A' + 10
						       : -1;
			if (d < 0)
				return false;
			v = v * 16 + (unsigned)d;
		}
		if (s[3 * i + 2] != (i == 5 ? 0 : ':'))
			return false;
		mac[i] = (uint8_t)v;
	}
	return true;
}

int map_parse_line(const char *line, size_t len, struct map_entry *e, char *err, size_t errlen)
{
	char buf[MAP_LINE_MAX];
	if (len >= sizeof(buf))
		RETURN_ERR(-1, "record longer than %d bytes", MAP_LINE_MAX - 1);
	memcpy(buf, line, len);
	buf[len] = 0;
	if (memchr(buf, 0, len))
		RETURN_ERR(-1, "record contains a NUL byte");
	memset(e, 0, sizeof(*e));
	bool have_vpc = false, have_ip = false, have_mac = false, have_ul = false;
	char *save = NULL;
	for (char *w = strtok_r(buf, " \t\r\n", &save); w; w = strtok_r(NULL, " \t\r\n", &save)) {
		char *eq = strchr(w, '=');
		if (!eq)
			RETURN_ERR(-1, "'%.40s': expected key=value", w);
		*eq = 0;
		const char *k = w, *v = eq + 1;
		uint64_t n;
		if (!strcmp(k, "vpc")) {
			if (!parse_u64(v, 1, MAP_VPC_MAX, &n))
				RETURN_ERR(-1, "vpc=%.40s: expected 1..%u", v, MAP_VPC_MAX);
			e->me_vpc = (uint32_t)n;
			have_vpc = true;
		} else if (!strcmp(k, "ip")) {
			struct in_addr a;
			if (inet_pton(AF_INET, v, &a) != 1)
				RETURN_ERR(-1, "ip=%.40s: not an IPv4 address", v);
			e->me_ip = a.s_addr;
			have_ip = true;
		} else if (!strcmp(k, "mac")) {
			if (strlen(v) != 17 || !parse_mac(v, e->me_mac))
				RETURN_ERR(-1, "mac=%.40s: expected xx:xx:xx:xx:xx:xx", v);
			have_mac = true;
		} else if (!strcmp(k, "underlay")) {
			struct sockaddr_in sa;
			char why[128];
			if (ul_parse_addr(v, &sa, why, sizeof(why)) || !sa.sin_port)
				RETURN_ERR(-1, "underlay=%.40s: expected IPv4:PORT", v);
			e->me_ul_ip = sa.sin_addr.s_addr;
			e->me_ul_port = sa.sin_port;
			have_ul = true;
		} else if (!strcmp(k, "default_sg")) {
			if (strcmp(v, "0") && strcmp(v, "1"))
				RETURN_ERR(-1, "default_sg=%.40s: expected 0 or 1", v);
			e->me_default_sg = v[0] == '1';
		} else if (!strcmp(k, "pid")) {
			if (!parse_u64(v, 1, 1u << 30, &n))
				RETURN_ERR(-1, "pid=%.40s: not a process id", v);
			e->me_pid = (pid_t)n;
		} else if (!strcmp(k, "host")) {
			if (strlen(v) >= sizeof(e->me_host))
				RETURN_ERR(-1, "host= longer than %zu bytes",
					   sizeof(e->me_host) - 1);
			strcpy(e->me_host, v);
		} else if (!strcmp(k, "ctl")) {
			if (strlen(v) >= sizeof(e->me_ctl) || v[0] != '/')
				RETURN_ERR(-1,
					   "ctl=%.40s: expected an absolute path under %zu bytes",
					   v, sizeof(e->me_ctl));
			strcpy(e->me_ctl, v);
		} else {
			RETURN_ERR(-1, "unknown key '%.40s'", k);
		}
	}
	if (!have_vpc || !have_ip || !have_mac || !have_ul)
		RETURN_ERR(-1, "record needs vpc=, ip=, mac= and underlay=");
	if (e->me_mac[0] & 1)
		RETURN_ERR(-1, "mac= is a multicast address");
	return 0;
}

int map_format(const struct map_entry *e, char *buf, size_t len)
{
	char ip[INET_ADDRSTRLEN], ul[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &e->me_ip, ip, sizeof(ip));
	inet_ntop(AF_INET, &e->me_ul_ip, ul, sizeof(ul));
	const uint8_t *m = e->me_mac;
	int n =
	    snprintf(buf, len, "vpc=%u ip=%s mac=%02x:%02x:%02x:%02x:%02x:%02x underlay=%s:%u",
		     e->me_vpc, ip, m[0], m[1], m[2], m[3], m[4], m[5], ul, ntohs(e->me_ul_port));
	if (n > 0 && (size_t)n < len && e->me_default_sg)
		n += snprintf(buf + n, len - (size_t)n, " default_sg=1");
	if (n > 0 && (size_t)n < len && e->me_pid)
		n += snprintf(buf + n, len - (size_t)n, " pid=%d", (int)e->me_pid);
	if (n > 0 && (size_t)n < len && e->me_host[0])
		n += snprintf(buf + n, len - (size_t)n, " host=%s", e->me_host);
	if (n > 0 && (size_t)n < len && e->me_ctl[0])
		n += snprintf(buf + n, len - (size_t)n, " ctl=%s", e->me_ctl);
	if (n > 0 && (size_t)n + 1 < len) {
		buf[n++] = '\n';
		buf[n] = 0;
		return n;
	}
	return -1;
}

static void forget_all(struct mapsvc *m)
{
	memset(m->m_cache, 0, sizeof(m->m_cache));
	memset(m->m_neg, 0, sizeof(m->m_neg));
}

/* ---- the file form ---- */

static int load_file(struct mapsvc *m, char *err, size_t errlen)
{
	uint8_t *buf;
	size_t len;
	struct stat st;
	int r = read_file(m->m_path, MAP_FILE_MAX, &buf, &len);
	if (r)
		RETURN_ERR(-1, "mapping file %s: %s", m->m_path, strerror(r));
	if (stat(m->m_path, &st) == 0) {
		m->m_mtime = st.st_mtim;
		m->m_size = st.st_size;
	}
	size_t cap = 16, n = 0;
	struct map_entry *t = malloc(cap * sizeof(*t));
	const char *p = (const char *)buf, *end = p + len;
	unsigned lineno = 0;
	while (t && p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t l = nl ? (size_t)(nl - p) : (size_t)(end - p);
		lineno++;
		size_t s = 0;
		while (s < l && (p[s] == ' ' || p[s] == '\t'))
			s++;
		if (s < l && p[s] != '#' && p[s] != '\r') {
			char why[160];
			if (n == cap) {
				cap *= 2;
				struct map_entry *nt = realloc(t, cap * sizeof(*t));
				if (!nt) {
					free(t);
					t = NULL;
					break;
				}
				t = nt;
			}
			if (map_parse_line(p, l, &t[n], why, sizeof(why)) == 0) {
				n++;
			} else {
				m->m_bad_records++;
				warnmsg("mapping file %s:%u: %s (line ignored)", m->m_path, lineno,
					why);
			}
		}
		p += l + (nl ? 1 : 0);
	}
	free(buf);
	if (!t)
		RETURN_ERR(-1, "mapping file %s: out of memory", m->m_path);
	free(m->m_table);
	m->m_table = t;
	m->m_ntable = n;
	return 0;
}

/* Re-reads the file when it changed (checked at most every MAP_NEG_TTL_MS). */
static void file_refresh(struct mapsvc *m, uint64_t now)
{
	if (now - m->m_checked_ns < (uint64_t)MAP_NEG_TTL_MS * 1000000)
		return;
	m->m_checked_ns = now;
	struct stat st;
	if (stat(m->m_path, &st) < 0)
		return;
	if (st.st_mtim.tv_sec == m->m_mtime.tv_sec && st.st_mtim.tv_nsec == m->m_mtime.tv_nsec &&
	    st.st_size == m->m_size)
		return;
	char err[256];
	if (load_file(m, err, sizeof(err)))
		warnmsg("%s (keeping the previous table)", err);
	forget_all(m);
}

/* ---- the directory form ---- */

static int read_entry_at(const char *dir, const char *name, struct map_entry *e, uint64_t *bad);

static int read_entry(struct mapsvc *m, const char *name, struct map_entry *e)
{
	return read_entry_at(m->m_path, name, e, &m->m_bad_records);
}

int map_record_put(const char *dir, const struct map_entry *e, char *err, size_t errlen)
{
	char name[64], path[PATH_MAX + 64], tmp[PATH_MAX + 96], line[MAP_LINE_MAX];
	map_entry_name(e->me_vpc, e->me_ip, name, sizeof(name));
	int n = map_format(e, line, sizeof(line));
	if (n < 0)
		RETURN_ERR(-1, "mapping record too long");
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	snprintf(tmp, sizeof(tmp), "%s/.%s.%d.tmp", dir, name, (int)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		RETURN_ERR(-1, "mapping %s: %s", tmp, strerror(errno));
	bool ok = write(fd, line, (size_t)n) == n && fchmod(fd, 0644) == 0;
	int e2 = errno;
	if (close(fd) < 0 && ok) {
		ok = false;
		e2 = errno;
	}
	if (!ok || rename(tmp, path) < 0) {
		if (ok)
			e2 = errno;
		unlink(tmp);
		RETURN_ERR(-1, "mapping %s: %s", path, strerror(e2));
	}
	return 0;
}

static int read_entry_at(const char *dir, const char *name, struct map_entry *e, uint64_t *bad)
{
	char path[PATH_MAX + 64], buf[MAP_LINE_MAX], why[160];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return 0;
	struct stat st;
	ssize_t n = -1;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
		n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	const char *nl = memchr(buf, '\n', (size_t)n);
	size_t l = nl ? (size_t)(nl - buf) : (size_t)n;
	if (map_parse_line(buf, l, e, why, sizeof(why))) {
		if (bad)
			(*bad)++;
		return 0;
	}
	return 1;
}

int map_record_get(const char *dir, uint32_t vpc, uint32_t ip, struct map_entry *e)
{
	char name[64];
	map_entry_name(vpc, ip, name, sizeof(name));
	return read_entry_at(dir, name, e, NULL) && e->me_vpc == vpc && e->me_ip == ip;
}

void map_record_remove(const char *dir, uint32_t vpc, uint32_t ip, const char *ctl_prefix)
{
	struct map_entry e;
	char name[64], path[PATH_MAX + 64];
	size_t pl = strlen(ctl_prefix);
	if (!pl || !map_record_get(dir, vpc, ip, &e) || strncmp(e.me_ctl, ctl_prefix, pl))
		return;
	map_entry_name(vpc, ip, name, sizeof(name));
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	unlink(path);
}

int mapsvc_open(struct mapsvc *m, const char *path, char *err, size_t errlen)
{
	memset(m, 0, sizeof(*m));
	m->m_inotify = -1;
	if (getrandom(&m->m_seed, sizeof(m->m_seed), GRND_NONBLOCK) != sizeof(m->m_seed))
		m->m_seed = now_ns() * 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
	m->m_own_fd = -1;
	if (strlen(path) >= sizeof(m->m_path) - 80)
		RETURN_ERR(-1, "mapping %s: path too long", path);
	snprintf(m->m_path, sizeof(m->m_path), "%s", path);
	struct stat st;
	if (stat(path, &st) < 0) {
		if (errno != ENOENT)
			RETURN_ERR(-1, "mapping %s: %s", path, strerror(errno));
		/* A missing path becomes the directory form (parents too, as mkdir -p). */
		char tmp[PATH_MAX];
		snprintf(tmp, sizeof(tmp), "%s", path);
		for (char *p = tmp + 1; *p; p++)
			if (*p == '/') {
				*p = 0;
				mkdir(tmp, 0700);
				*p = '/';
			}
		if (mkdir(path, 0700) < 0 && errno != EEXIST)
			RETURN_ERR(-1, "mapping directory %s: %s", path, strerror(errno));
		if (stat(path, &st) < 0)
			RETURN_ERR(-1, "mapping %s: %s", path, strerror(errno));
	}
	if (S_ISDIR(st.st_mode)) {
		m->m_dir = true;
		m->m_inotify = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
		if (m->m_inotify >= 0 &&
		    inotify_add_watch(m->m_inotify, path,
				      IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE |
					  IN_CREATE) < 0) {
			close(m->m_inotify);
			m->m_inotify = -1; /* the TTLs still bound staleness */
		}
		return 0;
	}
	if (!S_ISREG(st.st_mode))
		RETURN_ERR(-1, "mapping %s: neither a file nor a directory", path);
	m->m_checked_ns = now_ns();
	return load_file(m, err, errlen);
}

void mapsvc_close(struct mapsvc *m)
{
	mapsvc_unregister(m);
	if (m->m_inotify >= 0)
		close(m->m_inotify);
	m->m_inotify = -1;
	free(m->m_table);
	m->m_table = NULL;
	m->m_ntable = 0;
}

/* A record of this host is alive while its card holds the flock it took before the
 * record appeared (released by the kernel when the card ends, however it ends). Not a
 * pid: a jailed card is pid 1 of its own PID namespace and sees no other card's pid. */
static bool owner_alive(const struct mapsvc *m, const char *name, const struct map_entry *e)
{
	char host[64] = "", path[PATH_MAX + 64];
	gethostname(host, sizeof(host) - 1);
	if (strcmp(e->me_host, host))
		return false; /* another host's: we cannot tell, the newer record wins */
	snprintf(path, sizeof(path), "%s/%s", m->m_path, name);
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return false;
	bool held = flock(fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK;
	close(fd);
	return held;
}

int mapsvc_register(struct mapsvc *m, const struct map_entry *e, char *err, size_t errlen)
{
	char name[64], path[PATH_MAX + 64], tmp[PATH_MAX + 96], line[MAP_LINE_MAX];
	if (!m->m_dir)
		RETURN_ERR(-1, "mapping %s is a file: cards only read it (add the interface there)",
			   m->m_path);
	map_entry_name(e->me_vpc, e->me_ip, name, sizeof(name));
	int n = map_format(e, line, sizeof(line));
	if (n < 0)
		RETURN_ERR(-1, "mapping record too long");
	snprintf(path, sizeof(path), "%s/%s", m->m_path, name);
	snprintf(tmp, sizeof(tmp), "%s/.%s.%d.tmp", m->m_path, name, (int)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		RETURN_ERR(-1, "mapping %s: %s", tmp, strerror(errno));
	/* Locked before it is visible, for as long as this card runs (owner_alive). */
	bool ok = flock(fd, LOCK_EX | LOCK_NB) == 0 && write(fd, line, (size_t)n) == n;
	if (!ok) {
		int e2 = errno;
		close(fd);
		unlink(tmp);
		RETURN_ERR(-1, "mapping %s: %s", tmp, strerror(e2));
	}
	/* link() creates the record only if there is none: two cards started at once for
	 * one address cannot both win. An existing record is replaced (rename) only when
	 * its owner is gone. */
	if (link(tmp, path) == 0) {
		unlink(tmp);
	} else {
		struct map_entry old;
		if (errno == EEXIST && read_entry(m, name, &old) && owner_alive(m, name, &old)) {
			char ip[INET_ADDRSTRLEN];
			close(fd);
			unlink(tmp);
			inet_ntop(AF_INET, &e->me_ip, ip, sizeof(ip));
			RETURN_ERR(-1,
				   "VPC %u address %s is already in use by process %d on this host",
				   e->me_vpc, ip, (int)old.me_pid);
		}
		if (rename(tmp, path) < 0) {
			int e2 = errno;
			close(fd);
			unlink(tmp);
			RETURN_ERR(-1, "mapping %s: %s", path, strerror(e2));
		}
	}
	memcpy(m->m_reg_line, line, (size_t)n);
	m->m_reg_len = n;
	m->m_own_fd = fd;
	snprintf(m->m_registered, sizeof(m->m_registered), "%s", path);
	return 0;
}

void mapsvc_unregister_crash(const struct mapsvc *m)
{
	char buf[MAP_LINE_MAX];
	if (!m->m_registered[0])
		return;
	int fd = open(m->m_registered, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return;
	ssize_t n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n == m->m_reg_len && memcmp(buf, m->m_reg_line, (size_t)n) == 0)
		unlink(m->m_registered);
}

void mapsvc_unregister(struct mapsvc *m)
{
	if (!m->m_registered[0])
		return;
	/* Only our own record (the very file we hold): a successor may have replaced it. */
	struct stat a, b;
	if (m->m_own_fd >= 0 && fstat(m->m_own_fd, &a) == 0 && stat(m->m_registered, &b) == 0 &&
	    a.st_dev == b.st_dev && a.st_ino == b.st_ino)
		unlink(m->m_registered);
	if (m->m_own_fd >= 0)
		close(m->m_own_fd);
	m->m_own_fd = -1;
	m->m_registered[0] = 0;
}

static uint64_t key_hash(const struct mapsvc *m, uint32_t vpc, uint32_t ip)
{
	uint64_t x = ((uint64_t)vpc << 32 | ip) ^ m->m_seed;
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	return x ^ (x >> 33);
}

static struct map_slot *slot_of(struct mapsvc *m, uint32_t vpc, uint32_t ip)
{
	return &m->m_cache[key_hash(m, vpc, ip) % MAP_CACHE_SLOTS];
}

static struct map_neg *neg_set(struct mapsvc *m, uint32_t vpc, uint32_t ip)
{
	return m->m_neg[(key_hash(m, vpc, ip) >> 32) % MAP_NEG_SETS];
}

/* The live negative entry for (vpc, ip), or NULL. */
static struct map_neg *neg_find(struct mapsvc *m, uint32_t vpc, uint32_t ip, uint64_t now)
{
	struct map_neg *set = neg_set(m, vpc, ip);
	for (unsigned w = 0; w < MAP_NEG_WAYS; w++)
		if (set[w].nm_expires_ns > now && set[w].nm_vpc == vpc && set[w].nm_ip == ip)
			return &set[w];
	return NULL;
}

/* Remembers a miss: a free or expired way, else the one nearest its expiry. */
static void neg_add(struct mapsvc *m, uint32_t vpc, uint32_t ip, uint64_t now)
{
	struct map_neg *set = neg_set(m, vpc, ip), *victim = &set[0];
	for (unsigned w = 0; w < MAP_NEG_WAYS; w++) {
		if (set[w].nm_expires_ns <= now) {
			victim = &set[w];
			break;
		}
		if (set[w].nm_expires_ns < victim->nm_expires_ns)
			victim = &set[w];
	}
	*victim = (struct map_neg){
	    .nm_vpc = vpc, .nm_ip = ip, .nm_expires_ns = now + (uint64_t)MAP_NEG_TTL_MS * 1000000};
}

void mapsvc_forget(struct mapsvc *m, uint32_t vpc, uint32_t ip)
{
	struct map_slot *s = slot_of(m, vpc, ip);
	if (s->ms_used && s->ms_e.me_vpc == vpc && s->ms_e.me_ip == ip)
		s->ms_used = false;
	struct map_neg *set = neg_set(m, vpc, ip);
	for (unsigned w = 0; w < MAP_NEG_WAYS; w++)
		if (set[w].nm_vpc == vpc && set[w].nm_ip == ip)
			set[w].nm_expires_ns = 0;
}

int mapsvc_lookup(struct mapsvc *m, uint32_t vpc, uint32_t ip, struct map_entry *e)
{
	return mapsvc_lookup_at(m, vpc, ip, now_ns(), e);
}

const struct map_entry *mapsvc_find(struct mapsvc *m, uint32_t vpc, uint32_t ip, uint64_t now)
{
	struct map_slot *s = slot_of(m, vpc, ip);
	m->m_lookups++;
	if (!m->m_dir)
		file_refresh(m, now);
	if (s->ms_used && s->ms_e.me_vpc == vpc && s->ms_e.me_ip == ip && now < s->ms_expires_ns)
		return &s->ms_e;
	if (neg_find(m, vpc, ip, now))
		return NULL;
	m->m_misses++;
	struct map_entry found;
	int r = 0;
	if (m->m_dir) {
		char name[64];
		map_entry_name(vpc, ip, name, sizeof(name));
		r = read_entry(m, name, &found) && found.me_vpc == vpc && found.me_ip == ip;
	} else {
		for (size_t i = 0; i < m->m_ntable && !r; i++)
			if (m->m_table[i].me_vpc == vpc && m->m_table[i].me_ip == ip) {
				found = m->m_table[i];
				r = 1;
			}
	}
	if (!r) {
		neg_add(m, vpc, ip, now);
		return NULL;
	}
	/* A found entry replaces whatever shared its slot; misses never do. */
	s->ms_used = true;
	s->ms_e = found;
	s->ms_expires_ns = now + (uint64_t)MAP_TTL_MS * 1000000;
	return &s->ms_e;
}

int mapsvc_lookup_at(struct mapsvc *m, uint32_t vpc, uint32_t ip, uint64_t now, struct map_entry *e)
{
	const struct map_entry *f = mapsvc_find(m, vpc, ip, now);
	if (f)
		*e = *f;
	return f != NULL;
}

int mapsvc_fd(const struct mapsvc *m)
{
	return m->m_inotify;
}

/* "VPC_A.B.C.D" -> (vpc, ip); false for anything else (temporary files, ...). */
static bool parse_entry_name(const char *name, uint32_t *vpc, uint32_t *ip)
{
	char *end;
	if (name[0] < '1' || name[0] > '9')
		return false;
	errno = 0;
	unsigned long v = strtoul(name, &end, 10);
	struct in_addr a;
	if (errno || *end != '_' || v > MAP_VPC_MAX || inet_pton(AF_INET, end + 1, &a) != 1)
		return false;
	*vpc = (uint32_t)v;
	*ip = a.s_addr;
	return true;
}

void mapsvc_on_event(struct mapsvc *m)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t n;
	while (m->m_inotify >= 0 && (n = read(m->m_inotify, buf, sizeof(buf))) > 0) {
		for (ssize_t off = 0; off + (ssize_t)sizeof(struct inotify_event) <= n;) {
			const struct inotify_event *ev = (const struct inotify_event *)(buf + off);
			off += (ssize_t)sizeof(*ev) + ev->len;
			uint32_t vpc, ip;
			if (ev->mask & IN_Q_OVERFLOW)
				forget_all(m); /* events were lost: forget everything */
			else if (ev->len && memchr(ev->name, 0, ev->len) &&
				 parse_entry_name(ev->name, &vpc, &ip))
				mapsvc_forget(m, vpc, ip);
		}
	}
}

int mapsvc_each(struct mapsvc *m, void (*fn)(const struct map_entry *e, void *arg), void *arg)
{
	if (!m->m_dir) {
		for (size_t i = 0; i < m->m_ntable; i++)
			fn(&m->m_table[i], arg);
		return 0;
	}
	DIR *d = opendir(m->m_path);
	if (!d)
		return -1;
	struct dirent *de;
	while ((de = readdir(d))) {
		struct map_entry e;
		if (de->d_name[0] != '.' && read_entry(m, de->d_name, &e))
			fn(&e, arg);
	}
	closedir(d);
	return 0;
}
