/* cmocka tests of the snapshot chunk index and manifests (src/snapshot/snapshot.c): the
 * index as a set (growth, duplicates, the zero id), manifest round trips, the MAC over
 * every byte, and the parser refusing each malformed field; plus a store round trip
 * (snapshot, restore, an altered chunk refused) on volume files in a temporary folder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/le.h"
#include "snapshot/snapshot.h"

static void make_id(uint8_t id[SNAP_ID_BYTES], uint32_t n)
{
	memset(id, 0, SNAP_ID_BYTES);
	le32_put(id + 28, n + 1); /* never the zero id */
	id[0] = (uint8_t)(n * 7);
}

static void test_index_set(void **state)
{
	(void)state;
	struct snap_index ix;
	uint8_t id[SNAP_ID_BYTES];
	snap_index_init(&ix);
	for (uint32_t i = 0; i < 20000; i++) {
		make_id(id, i);
		assert_int_equal(snap_index_add(&ix, id), 1);
	}
	for (uint32_t i = 0; i < 20000; i++) {
		make_id(id, i);
		assert_true(snap_index_has(&ix, id));
		assert_int_equal(snap_index_add(&ix, id), 0); /* already there */
	}
	assert_int_equal(ix.si_count, 20000);
	assert_true(ix.si_cap >= 20000 * 4 / 3);
	make_id(id, 20000);
	assert_false(snap_index_has(&ix, id));
	memset(id, 0, sizeof(id)); /* the zero chunk is never stored */
	assert_int_equal(snap_index_add(&ix, id), 0);
	assert_false(snap_index_has(&ix, id));
	snap_index_free(&ix);
	assert_false(snap_index_has(&ix, id));
}

/* Ids that share their first 16 bytes (what slot_of mixes) still all land. */
static void test_index_colliding(void **state)
{
	(void)state;
	struct snap_index ix;
	uint8_t id[SNAP_ID_BYTES];
	snap_index_init(&ix);
	for (uint32_t i = 0; i < 500; i++) {
		memset(id, 0xab, 16);
		memset(id + 16, 0, 16);
		le32_put(id + 16, i);
		assert_int_equal(snap_index_add(&ix, id), 1);
	}
	for (uint32_t i = 0; i < 500; i++) {
		memset(id, 0xab, 16);
		memset(id + 16, 0, 16);
		le32_put(id + 16, i);
		assert_true(snap_index_has(&ix, id));
	}
	snap_index_free(&ix);
}

static const uint8_t key[32] = {1, 2, 3};

static void sample(struct snap_manifest *m, uint64_t size)
{
	*m = (struct snap_manifest){.sm_size = size, .sm_chunk = SNAP_CHUNK, .sm_created_ns = 7};
	m->sm_nchunks = (size + SNAP_CHUNK - 1) / SNAP_CHUNK;
	strcpy(m->sm_id, "snap-0123456789abcdef0");
	strcpy(m->sm_vol, "vol-0123456789abcdef0");
	m->sm_idx = calloc(m->sm_nchunks, sizeof(uint64_t));
	m->sm_ids = calloc(m->sm_nchunks, SNAP_ID_BYTES);
	for (uint64_t i = 0; i < m->sm_nchunks; i += 2) { /* every other chunk holds data */
		m->sm_idx[m->sm_nentries] = i;
		make_id(m->sm_ids[m->sm_nentries++], (uint32_t)i);
	}
}

static void test_manifest_roundtrip(void **state)
{
	(void)state;
	struct snap_manifest m, p;
	uint8_t *b;
	size_t len;
	char err[256];
	sample(&m, 5 * SNAP_CHUNK + 512); /* a short last chunk */
	assert_int_equal(snap_manifest_encode(&m, key, &b, &len), 0);
	assert_int_equal(len, SNAP_MANIFEST_HDR + 3 * SNAP_ENTRY + SNAP_MANIFEST_MAC);
	assert_int_equal(snap_manifest_verify(b, len, key), 0);
	assert_int_equal(snap_manifest_parse(b, len, &p, err, sizeof(err)), 0);
	assert_string_equal(p.sm_id, m.sm_id);
	assert_string_equal(p.sm_vol, m.sm_vol);
	assert_int_equal(p.sm_size, m.sm_size);
	assert_int_equal(p.sm_nchunks, 6);
	assert_int_equal(p.sm_created_ns, 7);
	assert_int_equal(p.sm_nentries, 3);
	assert_memory_equal(p.sm_ids, m.sm_ids, 3 * 32);
	assert_memory_equal(p.sm_idx, m.sm_idx, 3 * sizeof(uint64_t));
	assert_int_equal(snap_chunk_len(&p, 0), SNAP_CHUNK);
	assert_int_equal(snap_chunk_len(&p, 5), 512);
	/* Every single flipped bit fails the MAC; another key fails it too. */
	for (size_t i = 0; i < len; i++) {
		b[i] ^= 0x10;
		assert_int_equal(snap_manifest_verify(b, len, key), -EBADMSG);
		b[i] ^= 0x10;
	}
	uint8_t other[32] = {9};
	assert_int_equal(snap_manifest_verify(b, len, other), -EBADMSG);
	assert_int_equal(snap_manifest_verify(b, 10, key), -EBADMSG);
	free(b);
	snap_manifest_free(&p);
	snap_manifest_free(&m);
}

/* Encodes the sample, lets edit() break it, and expects the parser to refuse it. */
static void refused(void (*edit)(uint8_t *b, size_t *len))
{
	struct snap_manifest m, p;
	uint8_t *b, *c;
	size_t len;
	char err[256];
	sample(&m, 3 * SNAP_CHUNK);
	assert_int_equal(snap_manifest_encode(&m, key, &b, &len), 0);
	c = realloc(b, len + 64);
	assert_non_null(c);
	edit(c, &len);
	assert_int_equal(snap_manifest_parse(c, len, &p, err, sizeof(err)), -EBADMSG);
	assert_null(p.sm_ids);
	assert_null(p.sm_idx);
	assert_true(strlen(err) > 0);
	free(c);
	snap_manifest_free(&m);
}

static void e_magic(uint8_t *b, size_t *l)
{
	(void)l;
	b[0] = 'X';
}
static void e_version(uint8_t *b, size_t *l)
{
	(void)l;
	le32_put(b + 8, 2);
}
static void e_chunk(uint8_t *b, size_t *l)
{
	(void)l;
	le32_put(b + 12, 4096);
}
static void e_size0(uint8_t *b, size_t *l)
{
	(void)l;
	le64_put(b + 16, 0);
}
static void e_size_odd(uint8_t *b, size_t *l)
{
	(void)l;
	le64_put(b + 16, 3 * SNAP_CHUNK - 1);
}
static void e_size_huge(uint8_t *b, size_t *l)
{
	(void)l;
	le64_put(b + 16, UINT64_MAX - 511);
	le64_put(b + 80, 3);
}
static void e_nchunks(uint8_t *b, size_t *l)
{
	(void)l;
	le64_put(b + 80, 4);
}
/* nchunks and size agree, but far beyond the bytes there are (no overflow to a match). */
static void e_nchunks_big(uint8_t *b, size_t *l)
{
	(void)l;
	le64_put(b + 16, (uint64_t)SNAP_MAX_CHUNKS * SNAP_CHUNK);
	le64_put(b + 80, SNAP_MAX_CHUNKS);
	le64_put(b + 88, SNAP_MAX_CHUNKS); /* entries the bytes cannot hold */
}
static void e_entries(uint8_t *b, size_t *l)
{
	(void)l;
	le64_put(b + 88, 4);
}
static void e_entries_many(uint8_t *b, size_t *l)
{
	*l += SNAP_ENTRY;
	le64_put(b + 88, 3);
	memset(b + SNAP_MANIFEST_HDR + 2 * SNAP_ENTRY, 1, SNAP_ENTRY);
	le64_put(b + SNAP_MANIFEST_HDR + 2 * SNAP_ENTRY, 1);
}
static void e_idx_range(uint8_t *b, size_t *l)
{
	(void)l;
	le64_put(b + SNAP_MANIFEST_HDR + SNAP_ENTRY, 3);
}
static void e_idx_order(uint8_t *b, size_t *l)
{
	(void)l;
	le64_put(b + SNAP_MANIFEST_HDR + SNAP_ENTRY, 0);
}
static void e_zero_id(uint8_t *b, size_t *l)
{
	(void)l;
	memset(b + SNAP_MANIFEST_HDR + 8, 0, 32);
}
static void e_short(uint8_t *b, size_t *l)
{
	(void)b;
	*l -= 1;
}
static void e_long(uint8_t *b, size_t *l)
{
	b[*l] = 0;
	*l += 1;
}
static void e_tiny(uint8_t *b, size_t *l)
{
	(void)b;
	*l = SNAP_MANIFEST_HDR;
}
static void e_id(uint8_t *b, size_t *l)
{
	(void)l;
	b[32 + 6] = 'G';
}
static void e_id_pad(uint8_t *b, size_t *l)
{
	(void)l;
	b[32 + 23] = 'x';
}
static void e_id_full(uint8_t *b, size_t *l)
{
	(void)l;
	memset(b + 32, 'a', 24);
}
static void e_vol(uint8_t *b, size_t *l)
{
	(void)l;
	memcpy(b + 56, "voL", 3);
}

static void test_manifest_refused(void **state)
{
	(void)state;
	void (*edits[])(uint8_t *, size_t *) = {
	    e_magic,	 e_version,	 e_chunk,	e_size0,     e_size_odd,
	    e_size_huge, e_nchunks,	 e_nchunks_big, e_short,     e_long,
	    e_tiny,	 e_id,		 e_id_pad,	e_id_full,   e_vol,
	    e_entries,	 e_entries_many, e_idx_range,	e_idx_order, e_zero_id};
	for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
		refused(edits[i]);
	}
}

static void test_chunk_check(void **state)
{
	(void)state;
	uint8_t b[64 + SNAP_CHUNK_OVERHEAD] = "NITROCHK";
	assert_int_equal(snap_chunk_check(b, 64 + SNAP_CHUNK_OVERHEAD, 64), 0);
	assert_int_equal(snap_chunk_check(b, 63 + SNAP_CHUNK_OVERHEAD, 64), -EBADMSG);
	assert_int_equal(snap_chunk_check(b, 64 + SNAP_CHUNK_OVERHEAD, 0), -EBADMSG);
	assert_int_equal(snap_chunk_check(b, 64 + SNAP_CHUNK_OVERHEAD, SNAP_CHUNK + 1), -EBADMSG);
	b[0] = 'n';
	assert_int_equal(snap_chunk_check(b, 64 + SNAP_CHUNK_OVERHEAD, 64), -EBADMSG);
}

/* A real store: a 3.5 MiB volume with two equal chunks, a snapshot (two chunk files: one
 * data chunk stored once, the short last one), a restore equal to it, an unchanged second
 * snapshot that writes nothing, then one altered chunk byte refused on restore. */
static void test_store_roundtrip(void **state)
{
	(void)state;
	char dir[] = "/tmp/nitro-snaptest-XXXXXX", p[512], err[512];
	assert_non_null(mkdtemp(dir));
	setenv("NITRO_STATE", dir, 1);
	snprintf(p, sizeof(p), "%s/a.vol", dir);
	char vid[VOL_ID_LEN + 1], vid2[VOL_ID_LEN + 1], sid[SNAP_SNAPID_LEN + 1],
	    sid2[SNAP_SNAPID_LEN + 1];
	uint64_t size = 3 * SNAP_CHUNK + SNAP_CHUNK / 2;
	assert_int_equal(vol_create(p, size, true, vid, err, sizeof(err)), 0);
	struct volume v;
	assert_int_equal(vol_open(p, false, &v, err, sizeof(err)), 0);
	uint8_t *buf = malloc(SNAP_CHUNK), *back = malloc(SNAP_CHUNK);
	for (size_t i = 0; i < SNAP_CHUNK; i++)
		buf[i] = (uint8_t)(i * 31 + 5);
	assert_int_equal(vol_write(&v, 0, buf, SNAP_CHUNK, err, sizeof(err)), 0);
	assert_int_equal(vol_write(&v, 2 * SNAP_CHUNK / 512, buf, SNAP_CHUNK, err, sizeof(err)), 0);
	assert_int_equal(vol_write(&v, 3 * SNAP_CHUNK / 512, buf, 512, err, sizeof(err)), 0);
	struct snap_store s;
	struct snap_stats st;
	snprintf(p, sizeof(p), "%s/store", dir);
	assert_int_equal(snap_store_open(p, true, &s, err, sizeof(err)), 0);
	assert_int_equal(snap_create(&s, &v, NULL, NULL, sid, &st, err, sizeof(err)), 0);
	assert_int_equal(st.st_chunks, 4);
	assert_int_equal(st.st_zero, 1);
	assert_int_equal(st.st_new, 2);
	assert_int_equal(snap_create(&s, &v, NULL, NULL, sid2, &st, err, sizeof(err)), 0);
	assert_int_equal(st.st_new, 0);
	vol_close(&v);

	snprintf(p, sizeof(p), "%s/b.vol", dir);
	assert_int_equal(snap_restore(&s, sid, p, 0, true, NULL, NULL, vid2, err, sizeof(err)), 0);
	assert_string_not_equal(vid, vid2);
	assert_int_equal(vol_open(p, true, &v, err, sizeof(err)), 0);
	assert_int_equal(v.v_size, size);
	assert_int_equal(vol_read(&v, 2 * SNAP_CHUNK / 512, back, SNAP_CHUNK, err, sizeof(err)), 0);
	assert_memory_equal(back, buf, SNAP_CHUNK);
	assert_int_equal(vol_read(&v, SNAP_CHUNK / 512, back, SNAP_CHUNK, err, sizeof(err)), 0);
	assert_true(back[0] == 0 && !memcmp(back, back + 1, SNAP_CHUNK - 1));
	vol_close(&v);
	unlink(p);

	/* Alter one byte of the first data chunk's ciphertext. */
	struct snap_manifest m;
	assert_int_equal(snap_load(&s, sid, &m, err, sizeof(err)), 0);
	assert_int_equal(m.sm_nentries, 3);
	assert_int_equal(m.sm_idx[2], 3);
	char hexid[65], cp[600];
	for (int i = 0; i < 32; i++)
		sprintf(hexid + 2 * i, "%02x", m.sm_ids[0][i]);
	snprintf(cp, sizeof(cp), "%s/store/chunks/%.2s/%s", dir, hexid, hexid);
	snap_manifest_free(&m);
	int fd = open(cp, O_RDWR);
	assert_true(fd >= 0);
	uint8_t c;
	assert_int_equal(pread(fd, &c, 1, 100), 1);
	c ^= 1;
	assert_int_equal(pwrite(fd, &c, 1, 100), 1);
	close(fd);
	assert_int_equal(snap_restore(&s, sid, p, 0, true, NULL, NULL, vid2, err, sizeof(err)),
			 -EBADMSG);
	assert_non_null(strstr(err, "fails its check"));
	assert_int_equal(access(p, F_OK), -1); /* nothing left behind */

	assert_int_equal(snap_delete(&s, sid, &st, err, sizeof(err)), 0);
	assert_int_equal(st.st_freed, 0); /* sid2 still names both chunks */
	assert_int_equal(snap_delete(&s, sid2, &st, err, sizeof(err)), 0);
	assert_int_equal(st.st_freed, 2);
	snap_store_close(&s);
	free(buf);
	free(back);
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_index_set),	       cmocka_unit_test(test_index_colliding),
	    cmocka_unit_test(test_manifest_roundtrip), cmocka_unit_test(test_manifest_refused),
	    cmocka_unit_test(test_chunk_check),	       cmocka_unit_test(test_store_roundtrip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
