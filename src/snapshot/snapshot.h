/* EBS snapshots: point-in-time, encrypted, incremental, content-addressed copies of a
 * volume in a snapshot store (a folder), shared by `nitro snapshot`/`nitro volume create
 * --from-snapshot` and nitrod's /v1/snapshots.
 *
 * Store layout (SNAPDIR):
 *   store.key          the store's 96-byte key (id | encryption | manifest MAC, 32 bytes
 *                      each), random, wrapped with AES-256-GCM under the host master key
 *   chunks/XX/ID       one chunk: "NITROCHK", 12-byte nonce, AES-256-GCM ciphertext of
 *                      the plaintext (the chunk id is the additional data), 16-byte tag
 *   manifests/snap-ID  one snapshot: header, then (chunk index, chunk id) for every chunk
 *                      that is not all zeroes, in increasing index order, then an HMAC
 *   lock               flock()ed: create and delete exclude each other
 * A chunk is SNAP_CHUNK bytes of the volume's plaintext (the last one may be shorter);
 * its id is HMAC-SHA-256(id key, plaintext), so equal chunks are stored once (across the
 * snapshots of a store: a second snapshot writes only the chunks that changed) while
 * someone without the key learns nothing from an id about the plaintext (no "is this the
 * block of a known file?" test). An all-zero chunk has the id 0...0 and is not stored.
 *
 * Hostile input: every manifest and chunk read from the store is untrusted. The parsers
 * below bound every length before using it; a manifest is used only after its HMAC
 * (under the store's MAC key) checks, a chunk only after its GCM tag checks and its
 * plaintext hashes to its id. A tampered store is refused with a message, never
 * restored from.
 *
 * Threads: none; a store handle belongs to one thread. Every function reports through
 * (err, errlen) and returns 0 or a negative errno value.
 */
#ifndef NITRO_SNAPSHOT_SNAPSHOT_H
#define NITRO_SNAPSHOT_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "volume/volume.h"

#define SNAP_CHUNK (1u << 20)
#define SNAP_ID_BYTES 32
#define SNAP_SNAPID_LEN 22	   /* "snap-" + 17 hex digits */
#define SNAP_MAX_CHUNKS (1u << 26) /* 64 TiB at 1 MiB a chunk */
#define SNAP_CHUNK_MAGIC "NITROCHK"
#define SNAP_CHUNK_OVERHEAD (8 + 12 + 16)

/* --- the chunk index: a set of chunk ids (open addressing, grows) --- */
struct snap_index {
	uint8_t (*si_slots)[SNAP_ID_BYTES];
	size_t si_cap; /* a power of two, or 0 */
	size_t si_count;
};
void snap_index_init(struct snap_index *ix);
void snap_index_free(struct snap_index *ix);
/* 1 when added, 0 when it was there, -ENOMEM. The zero id is never stored (0). */
int snap_index_add(struct snap_index *ix, const uint8_t id[SNAP_ID_BYTES]);
bool snap_index_has(const struct snap_index *ix, const uint8_t id[SNAP_ID_BYTES]);

/* --- manifests --- */
struct snap_manifest {
	char sm_id[SNAP_SNAPID_LEN + 1];
	char sm_vol[VOL_ID_LEN + 1];
	uint64_t sm_size;		  /* volume bytes, a multiple of 512 */
	uint64_t sm_created_ns;		  /* CLOCK_REALTIME */
	uint32_t sm_chunk;		  /* SNAP_CHUNK */
	uint64_t sm_nchunks;		  /* ceil(size / chunk) */
	uint64_t sm_nentries;		  /* chunks that are not all zeroes */
	uint64_t *sm_idx;		  /* malloc'd: their indexes, increasing */
	uint8_t (*sm_ids)[SNAP_ID_BYTES]; /* malloc'd: their ids (never the zero id) */
};
#define SNAP_MANIFEST_HDR 96
#define SNAP_ENTRY 40
#define SNAP_MANIFEST_MAC 32
/* Checks the structure of buf (magic, version, sizes, indexes, ids) and fills *m
 * (sm_idx, sm_ids malloc'd). Does not check the MAC: snap_manifest_verify() does. */
int snap_manifest_parse(const uint8_t *buf, size_t len, struct snap_manifest *m, char *err,
			size_t errlen);
/* The MAC at the end of buf is HMAC-SHA-256(key, the rest): 0 or -EBADMSG. */
int snap_manifest_verify(const uint8_t *buf, size_t len, const uint8_t key[32]);
int snap_manifest_encode(const struct snap_manifest *m, const uint8_t key[32], uint8_t **buf,
			 size_t *len);
void snap_manifest_free(struct snap_manifest *m);
/* Plaintext bytes of chunk i (SNAP_CHUNK, or less for the last). */
size_t snap_chunk_len(const struct snap_manifest *m, uint64_t i);
/* A chunk file's structure: magic and exact length for plain_len bytes of plaintext. */
int snap_chunk_check(const uint8_t *buf, size_t len, size_t plain_len);

/* --- stores --- */
struct snap_store {
	int ss_dir;  /* O_PATH|O_DIRECTORY of SNAPDIR */
	int ss_lock; /* flock()ed lock file */
	char ss_path[4096];
	uint8_t *ss_keys; /* locked page: id key, enc key, mac key (32 bytes each) */
};
/* Opens SNAPDIR (with create: makes it and its key when missing) and takes its lock. */
int snap_store_open(const char *dir, bool create, struct snap_store *s, char *err, size_t errlen);
void snap_store_close(struct snap_store *s);

struct snap_stats {
	uint64_t st_chunks;    /* chunks in the volume */
	uint64_t st_zero;      /* all-zero chunks (not stored) */
	uint64_t st_new;       /* chunks written now */
	uint64_t st_new_bytes; /* bytes of chunk files written now */
	uint64_t st_freed;     /* delete: chunk files removed */
	uint64_t st_freed_bytes;
};
/* Progress: called now and then with bytes done of total (stderr progress lines). */
typedef void snap_progress_fn(void *opaque, uint64_t done, uint64_t total);

/* Snapshot of an open volume (nothing may write it meanwhile: the caller holds it with
 * vol_open, or the card is paused). Fills id. */
int snap_create(struct snap_store *s, struct volume *v, snap_progress_fn *pf, void *po,
		char id[SNAP_SNAPID_LEN + 1], struct snap_stats *st, char *err, size_t errlen);
/* A crash-consistent snapshot of the volume file path that a running nitro-card-ebs
 * serves: connects to the card's control socket ctl (--ctl), has it pause (drain its
 * requests, flush) and reads the volume only once it answers "paused"; the card resumes
 * when this returns (the connection closes, also if this process dies). Waits at most
 * 30 s for the pause. */
int snap_create_paused(struct snap_store *s, const char *path, const char *ctl,
		       snap_progress_fn *pf, void *po, char id[SNAP_SNAPID_LEN + 1],
		       struct snap_stats *st, char *err, size_t errlen);
/* Reads, checks and verifies a manifest of the store (id NULL: the newest). */
int snap_load(struct snap_store *s, const char *id, struct snap_manifest *m, char *err,
	      size_t errlen);
/* A new volume file at path from snapshot id (NULL: the newest), of size bytes (0: the
 * snapshot's; never smaller). Fills vol_id. The file is removed on failure. */
int snap_restore(struct snap_store *s, const char *id, const char *path, uint64_t size,
		 bool encrypted, snap_progress_fn *pf, void *po, char vol_id[VOL_ID_LEN + 1],
		 char *err, size_t errlen);
/* Every snapshot of the store, verified, oldest first (*out malloc'd, sm_idx/sm_ids
 * NULL). */
int snap_list(struct snap_store *s, struct snap_manifest **out, size_t *n, char *err,
	      size_t errlen);
/* Removes a snapshot, then every chunk no remaining snapshot references. */
int snap_delete(struct snap_store *s, const char *id, struct snap_stats *st, char *err,
		size_t errlen);
bool snap_valid_id(const char *id);

/* --- images --- */
#define SNAP_IMAGE_MAX (16ull << 40) /* larger virtual sizes are refused */
/* A new volume file at path holding the raw or qcow2 image img (read through qemu-img;
 * backing files and external data files refused), of size bytes (0: the image's size
 * rounded up to 512; never smaller). Fills vol_id; removes the file on failure. */
int snap_import_image(const char *img, const char *path, uint64_t size, bool encrypted,
		      snap_progress_fn *pf, void *po, char vol_id[VOL_ID_LEN + 1], char *err,
		      size_t errlen);
/* The same from an image already open (fd, read-only; not closed); name is for messages. */
int snap_import_image_fd(int fd, const char *name, const char *path, uint64_t size, bool encrypted,
			 snap_progress_fn *pf, void *po, char vol_id[VOL_ID_LEN + 1], char *err,
			 size_t errlen);

/* A stderr progress reporter: silent for the first second, then a line at most twice a
 * second ("what: N of M MiB (P%)"), ended by snap_progress_end(). */
struct snap_progress {
	const char *sp_what;
	uint64_t sp_start_ns, sp_last_ns;
	bool sp_shown;
};
void snap_progress_begin(struct snap_progress *p, const char *what);
snap_progress_fn snap_progress_stderr;
void snap_progress_end(struct snap_progress *p);

#endif
