/* The snapshot manifest parser, the MAC check, chunk-file checks and the chunk index
 * (src/snapshot/snapshot.c) on hostile bytes: a manifest the parser takes must describe
 * exactly the bytes given, re-encode to an identical body, and put every id it lists
 * into the index. */
// fuzz-extra: src/snapshot/snapshot.c src/volume/volume.c src/volume/xts.c -lcrypto
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "snapshot/snapshot.h"

static const uint8_t key[32] = {0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42,
				0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42,
				0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct snap_manifest m;
	char err[256];
	bool mac_ok = snap_manifest_verify(data, size, key) == 0;
	(void)mac_ok;
	for (size_t pl = 1; pl <= 64 && pl <= size; pl *= 4)
		CHECK(snap_chunk_check(data, size, pl) != 0 || size == pl + SNAP_CHUNK_OVERHEAD);
	if (snap_manifest_parse(data, size, &m, err, sizeof(err)) != 0) {
		CHECK(m.sm_ids == NULL && err[0]);
		return 0;
	}
	CHECK(size == SNAP_MANIFEST_HDR + m.sm_nentries * SNAP_ENTRY + SNAP_MANIFEST_MAC);
	CHECK(m.sm_nentries <= m.sm_nchunks);
	CHECK(m.sm_size && m.sm_size % 512 == 0 && m.sm_nchunks <= SNAP_MAX_CHUNKS);
	uint64_t total = 0;
	for (uint64_t i = 0; i < m.sm_nchunks; i++) {
		size_t l = snap_chunk_len(&m, i);
		CHECK(l > 0 && l <= SNAP_CHUNK);
		total += l;
	}
	CHECK(total == m.sm_size);
	CHECK(snap_valid_id(m.sm_id));

	uint8_t *b;
	size_t len;
	CHECK(snap_manifest_encode(&m, key, &b, &len) == 0);
	CHECK(len == size);
	CHECK(memcmp(b, data, size - SNAP_MANIFEST_MAC) == 0);
	CHECK(snap_manifest_verify(b, len, key) == 0);
	free(b);

	struct snap_index ix;
	snap_index_init(&ix);
	uint64_t added = 0;
	for (uint64_t i = 0; i < m.sm_nentries; i++) {
		CHECK(m.sm_idx[i] < m.sm_nchunks && (i == 0 || m.sm_idx[i] > m.sm_idx[i - 1]));
		int r = snap_index_add(&ix, m.sm_ids[i]);
		CHECK(r >= 0);
		added += (uint64_t)r;
	}
	CHECK(ix.si_count == added && added <= m.sm_nentries);
	for (uint64_t i = 0; i < m.sm_nentries; i++)
		CHECK(snap_index_has(&ix, m.sm_ids[i]));
	snap_index_free(&ix);
	snap_manifest_free(&m);
	return 0;
}
