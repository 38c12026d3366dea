/* The mapping service: (VPC, private IP) -> (underlay address:port, MAC) for every
 * interface a card may send to, the VPC's "where does this address live".
 *
 * Two forms of the same records (one per line, "key=value" words):
 *   vpc=7 ip=10.0.0.5 mac=02:00:0a:00:00:05 underlay=192.0.2.1:40000 [default_sg=1]
 *       [pid=N host=NAME ctl=PATH]
 * - a directory (the default, $NITRO_STATE/vpc-map): one file per entry named VPC_IP,
 *   written atomically (temporary file + rename). Under nitrod the launcher writes and
 *   removes them (map_record_put/_remove: the folder is read-only in the cards' jails,
 *   the card runs with --map-ro); under `nitro run` each card at start, removed at
 *   exit, so cards started by separate `nitro run` processes find each other; a directory
 *   several hosts share (NFS, ...) works across hosts. A card refuses to take an entry
 *   whose owner is still running on this host (it holds a flock on its record while it
 *   runs: pids mean nothing across the cards' PID namespaces).
 * - a file of such lines (comments with #), written by whoever plans the network; cards
 *   only read it.
 * Lookups go through two caches. Found entries (MAP_CACHE_SLOTS, direct-mapped) are
 * re-read after MAP_TTL_MS. Misses go to a separate bounded negative cache (MAP_NEG_SETS
 * sets of MAP_NEG_WAYS, keyed with a random seed, the entry nearest its expiry replaced),
 * so a guest flooding unknown addresses can neither evict the found entries nor cost
 * more than one file lookup per address per MAP_NEG_TTL_MS (while the flood fits the
 * cache: MAP_NEG_SETS * MAP_NEG_WAYS addresses). inotify events name the record that
 * changed: only that address is forgotten, in both caches (a record created later is
 * found at once); a queue overflow forgets everything. m_misses counts the lookups that
 * went to the folder (or file table).
 * Every byte read is checked (map_parse_line is also a fuzz target).
 */
#ifndef NITRO_CARDS_VPC_MAPSVC_H
#define NITRO_CARDS_VPC_MAPSVC_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define MAP_CACHE_SLOTS 1024
#define MAP_TTL_MS 2000
#define MAP_NEG_TTL_MS 1000
#define MAP_NEG_SETS 1024
#define MAP_NEG_WAYS 8
#define MAP_LINE_MAX 512
#define MAP_VPC_MAX 16777215u /* a Geneve VNI */
#define MAP_DIR_NAME "vpc-map"

struct map_entry {
	uint32_t me_vpc;
	uint32_t me_ip; /* network order */
	uint8_t me_mac[6];
	uint32_t me_ul_ip;   /* network order */
	uint16_t me_ul_port; /* network order */
	bool me_default_sg;  /* the interface is in its VPC's default security group */
	pid_t me_pid;	     /* 0: unknown */
	char me_host[64];
	char me_ctl[108]; /* the card's control socket ("" when none) */
};

struct map_slot {
	bool ms_used;
	uint64_t ms_expires_ns;
	struct map_entry ms_e;
};

struct map_neg { /* (vpc, ip) has no record until nm_expires_ns; 0: free */
	uint32_t nm_vpc, nm_ip;
	uint64_t nm_expires_ns;
};

struct mapsvc {
	char m_path[PATH_MAX];
	bool m_dir;
	int m_inotify; /* -1 when not watching */
	/* file form: the whole table, re-read when the file changes */
	struct map_entry *m_table;
	size_t m_ntable;
	uint64_t m_checked_ns;
	struct timespec m_mtime;
	off_t m_size;
	char m_registered[PATH_MAX + 64]; /* our entry's file, "" when none */
	char m_reg_line[MAP_LINE_MAX];	  /* and its content, for mapsvc_unregister_crash */
	int m_reg_len;
	int m_own_fd; /* that file, flock'ed while we run (the owner's liveness); -1: none */
	struct map_slot m_cache[MAP_CACHE_SLOTS];
	struct map_neg m_neg[MAP_NEG_SETS][MAP_NEG_WAYS];
	uint64_t m_seed; /* keys both caches: a guest cannot aim addresses at one set */
	uint64_t m_lookups, m_misses, m_bad_records;
};

/* $NITRO_STATE/vpc-map (default ~/.local/state/nitro/vpc-map) into out. */
void map_default_path(char *out, size_t len);
/* Parses one record (len bytes, no newline needed). 0, or -1 with err. */
int map_parse_line(const char *line, size_t len, struct map_entry *e, char *err, size_t errlen);
/* The record as one line with a newline; the number of bytes, or -1 when it does not fit. */
int map_format(const struct map_entry *e, char *buf, size_t len);
/* The MAC nitro gives an interface: locally administered unicast (02:...), the rest a hash
 * of (vpc, ip), so the same interface always gets the same address. */
void map_default_mac(uint32_t vpc, uint32_t ip, uint8_t mac[6]);
/* "xx:xx:xx:xx:xx:xx" (a unicast address) into mac; false when malformed. */
bool map_parse_mac(const char *s, uint8_t mac[6]);
/* The entry's file name in the directory form: "VPC_A.B.C.D". */
void map_entry_name(uint32_t vpc, uint32_t ip, char *out, size_t len);

/* The launcher's side of the directory form (nitrod: a root-owned 0755 folder the cards
 * see read-only; the cards do not register, docs/vpc.md). map_record_put writes e as the
 * record of (vpc, ip) atomically (temporary file + rename, 0644), replacing any;
 * map_record_get reads one (1, 0 when none or malformed); map_record_remove removes it
 * only when its ctl= names a path under ctl_prefix (the instance's own run folder), so a
 * record another instance took is left alone. 0, or -1 with err. */
int map_record_put(const char *dir, const struct map_entry *e, char *err, size_t errlen);
int map_record_get(const char *dir, uint32_t vpc, uint32_t ip, struct map_entry *e);
void map_record_remove(const char *dir, uint32_t vpc, uint32_t ip, const char *ctl_prefix);

/* Opens path: an existing file, or a directory (created when missing). 0, or -1 with err. */
int mapsvc_open(struct mapsvc *m, const char *path, char *err, size_t errlen);
void mapsvc_close(struct mapsvc *m);
/* Directory form only: writes e as this card's entry; refuses when a live process on this
 * host (pid, host) holds it. 0, or -1 with err. */
int mapsvc_register(struct mapsvc *m, const struct map_entry *e, char *err, size_t errlen);
void mapsvc_unregister(struct mapsvc *m);
/* The same from a fatal-signal handler (SIGBUS, SIGSEGV, ...: async-signal-safe calls only,
 * no parsing): removes the entry only while the file holds exactly what we wrote, so a card
 * that dies does not leave peers sending to its dead address. */
void mapsvc_unregister_crash(const struct mapsvc *m);
/* 1 with *e filled, 0 when (vpc, ip) has no entry. now_ns: CLOCK_MONOTONIC (the caller's
 * per-batch reading: clock_gettime per packet costs more than the lookup). */
int mapsvc_lookup_at(struct mapsvc *m, uint32_t vpc, uint32_t ip, uint64_t now_ns,
		     struct map_entry *e);
int mapsvc_lookup(struct mapsvc *m, uint32_t vpc, uint32_t ip, struct map_entry *e);
/* The same without the copy: the cached entry (valid until the next lookup), or NULL. */
const struct map_entry *mapsvc_find(struct mapsvc *m, uint32_t vpc, uint32_t ip, uint64_t now_ns);
/* Forgets what the caches know about (vpc, ip) (a record appeared, changed or went). */
void mapsvc_forget(struct mapsvc *m, uint32_t vpc, uint32_t ip);
/* The inotify fd to watch (or -1), and what to call when it is readable. */
int mapsvc_fd(const struct mapsvc *m);
void mapsvc_on_event(struct mapsvc *m);
/* Calls fn for every entry (directory: each file; file: each line). */
int mapsvc_each(struct mapsvc *m, void (*fn)(const struct map_entry *e, void *arg), void *arg);

#endif
