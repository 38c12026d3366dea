/* Unit tests of the parent's side of enclave memory isolation: guest-memory holes
 * (src/boot/memory.c: made from ranges, merged; gpa_ptr refuses them; the table a card
 * gets leaves them out) and the card table's sync (src/hv/mem_table.c: additions before
 * removals, the table following each operation, a refusal stopping it).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "boot/memory.h"
#include "hv/mem_table.h"

#define MiB (1ull << 20)
#define GiB (1ull << 30)

static void test_holes_make(void **state)
{
	(void)state;
	struct mem_hole in[] = {{8 * MiB, 2 * MiB}, {2 * MiB, 2 * MiB}, {4 * MiB, 2 * MiB},
				{9 * MiB, 4 * MiB}, {20 * MiB, 0},	{UINT64_MAX - 4095, 8192}};
	struct mem_holes *h = mem_holes_make(in, 6);
	assert_non_null(h);
	assert_int_equal(h->n,
			 2); /* [2, 6) touching, [8, 13) overlapping; empty, wrapping dropped */
	assert_int_equal(h->h[0].gpa, 2 * MiB);
	assert_int_equal(h->h[0].size, 4 * MiB);
	assert_int_equal(h->h[1].gpa, 8 * MiB);
	assert_int_equal(h->h[1].size, 5 * MiB);
	assert_true(mem_holes_touch(h, 6 * MiB - 1, 1));
	assert_false(mem_holes_touch(h, 6 * MiB, 2 * MiB));
	assert_true(mem_holes_touch(h, 6 * MiB, 2 * MiB + 1));
	assert_true(mem_holes_touch(h, 0, UINT64_MAX)); /* no overflow */
	assert_false(mem_holes_touch(h, 13 * MiB, UINT64_MAX - 13 * MiB));
	assert_false(mem_holes_touch(NULL, 0, UINT64_MAX));
	free(h);
}

/* A layout with a fake mapping base (gpa_ptr only computes pointers). */
static void layout(struct guest_mem *m, uint64_t size)
{
	mem_layout(m, size);
	m->gm_base = (uint8_t *)(uintptr_t)0x100000000000ull;
}

static void test_gpa_ptr_and_regions(void **state)
{
	(void)state;
	struct guest_mem *m = malloc(sizeof(*m));
	layout(m, 4 * GiB); /* [0, 3 GiB) and [4 GiB, 5 GiB) = memfd [3 GiB, 4 GiB) */
	struct mem_hole in[] = {{64 * MiB, 2 * MiB}, {4 * GiB + 2 * MiB, 4 * MiB}};
	struct mem_holes *h = mem_holes_make(in, 2);
	assert_non_null(gpa_ptr(m, 64 * MiB, 4096));
	mem_set_holes(m, h);
	assert_null(gpa_ptr(m, 64 * MiB, 4096));
	assert_null(gpa_ptr(m, 64 * MiB - 4, 8)); /* straddling into the hole */
	assert_null(gpa_ptr(m, 4 * GiB + 6 * MiB - 1, 1));
	assert_ptr_equal(gpa_ptr(m, 66 * MiB, 8), m->gm_base + 66 * MiB);
	assert_ptr_equal(gpa_ptr(m, 4 * GiB + 6 * MiB, 8), m->gm_base + 3 * GiB + 6 * MiB);
	struct mem_fd_region r[8];
	int n = mem_fd_regions(m, r, 8);
	assert_int_equal(n, 4);
	assert_int_equal(r[0].gpa, 0);
	assert_int_equal(r[0].size, 64 * MiB);
	assert_int_equal(r[1].gpa, 66 * MiB);
	assert_int_equal(r[1].size, 3 * GiB - 66 * MiB);
	assert_int_equal(r[1].fd_off, 66 * MiB);
	assert_ptr_equal(r[1].host, m->gm_base + 66 * MiB);
	assert_int_equal(r[2].gpa, 4 * GiB);
	assert_int_equal(r[2].size, 2 * MiB);
	assert_int_equal(r[2].fd_off, 3 * GiB);
	assert_int_equal(r[3].gpa, 4 * GiB + 6 * MiB);
	assert_int_equal(r[3].fd_off, 3 * GiB + 6 * MiB);
	assert_int_equal(r[3].size, GiB - 6 * MiB);
	assert_int_equal(mem_fd_regions(m, r, 3), -1); /* does not fit */
	mem_set_holes(m, NULL);
	assert_int_equal(mem_fd_regions(m, r, 8), 2);
	free(h);
	free(m);
}

struct rec {
	char ops[32];
	unsigned n, fail_at;
};

static int op(void *ctx, bool add, const struct vu_mem_region *r)
{
	struct rec *c = ctx;
	(void)r;
	if (++c->n == c->fail_at)
		return 7;
	c->ops[strlen(c->ops)] = add ? '+' : '-';
	return 0;
}

static void test_sync(void **state)
{
	(void)state;
	struct guest_mem *m = malloc(sizeof(*m));
	layout(m, 1 * GiB);
	struct mem_table t = {0};
	struct vu_mem_region *want;
	int n = mem_table_want(m, &want);
	assert_int_equal(n, 1);
	assert_int_equal(mem_table_set(&t, want, 1), 0);
	free(want);
	/* an enclave takes two ranges: 3 pieces added, then the whole removed */
	struct mem_hole in[] = {{64 * MiB, 2 * MiB}, {128 * MiB, 2 * MiB}};
	struct mem_holes *h = mem_holes_make(in, 2);
	mem_set_holes(m, h);
	n = mem_table_want(m, &want);
	assert_int_equal(n, 3);
	struct rec c = {{0}, 0, 0};
	assert_int_equal(mem_table_sync(&t, want, 3, op, &c), 0);
	assert_string_equal(c.ops, "+++-");
	assert_int_equal(t.n, 3);
	/* nothing to do the second time */
	memset(&c, 0, sizeof(c));
	assert_int_equal(mem_table_sync(&t, want, 3, op, &c), 0);
	assert_string_equal(c.ops, "");
	free(want);
	/* it stops: the whole added back, the pieces removed; a refusal half-way stops there */
	mem_set_holes(m, NULL);
	n = mem_table_want(m, &want);
	c = (struct rec){{0}, 0, 3};
	assert_int_equal(mem_table_sync(&t, want, 1, op, &c), 7);
	assert_string_equal(c.ops, "+-");
	assert_int_equal(t.n, 3); /* the whole and the two pieces not yet removed */
	memset(&c, 0, sizeof(c));
	assert_int_equal(mem_table_sync(&t, want, 1, op, &c), 0);
	assert_string_equal(c.ops, "--");
	assert_int_equal(t.n, 1);
	assert_int_equal(t.r[0].size, 1 * GiB);
	free(want);
	mem_table_free(&t);
	free(h);
	free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_holes_make),
	    cmocka_unit_test(test_gpa_ptr_and_regions),
	    cmocka_unit_test(test_sync),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
