/* Description: realloc and reallocarray. realloc(NULL, n) is malloc(n);
 * realloc(p, 0) frees p and returns NULL (hakmem follows glibc here);
 * contents survive growing and shrinking across size classes and the
 * small/large/huge boundaries; a request that cannot be served returns
 * NULL with ENOMEM and leaves the block intact; a huge block whose
 * mapping the program split still grows; reallocarray detects
 * overflow of count * size. */
#include "helpers.h"

#include <malloc.h>
#include <sys/mman.h>

static void check_block(void *p, size_t size)
{
  cr_assert_not_null(p, "realloc to %zu returned NULL", size);
  cr_assert_eq((uintptr_t)p % 16, 0, "realloc to %zu gave %p, not 16-byte aligned", size, p);
  cr_assert_geq(malloc_usable_size(p), size);
}

Test(realloc, null_pointer_is_malloc)
{
  static const size_t sizes[] = {1, 16, 100, 4096, 40 * KiB, 64 * KiB, 3 * MiB};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    void *p = realloc(launder(NULL), launder_size(sizes[i]));
    check_block(p, sizes[i]);
    memset(p, 0x5C, sizes[i]);
    free(p);
  }
  void *z = realloc(launder(NULL), launder_size(0));
  cr_assert_not_null(z, "realloc(NULL, 0) is malloc(0): a unique pointer");
  free(z);
}

/* glibc and hakmem: realloc(p, 0) with p != NULL frees p and returns NULL.
 * That the block really was freed shows when its memory comes back. */
Test(realloc, zero_size_frees_and_returns_null)
{
  static const size_t sizes[] = {1, 48, 2000, 40 * KiB, 100 * KiB, 4 * MiB};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    void *p = malloc(launder_size(sizes[i]));
    cr_assert_not_null(p);
    errno = 0;
    void *q = realloc(p, launder_size(0));
    cr_assert_null(q, "realloc(%p, 0) of a %zu B block returned %p, expected NULL", p,
                   sizes[i], q);
    cr_assert_eq(errno, 0, "realloc(p, 0) set errno to %d", errno);
  }
  /* A small block freed by realloc(p, 0) is reused by the next malloc of
   * its size class: the same thread cache serves it. */
  int reused = 0;
  for (int i = 0; i < 100 && !reused; i++) {
    void *p = malloc(launder_size(64));
    cr_assert_not_null(p);
    cr_assert_null(realloc(p, launder_size(0)));
    void *again = malloc(launder_size(64));
    cr_assert_not_null(again);
    reused = again == p;
    free(again);
  }
  cr_assert(reused, "a block freed by realloc(p, 0) never came back from malloc");
}

/* Walk a ladder of sizes up and back down; at every step the common prefix
 * must be preserved, then the whole block is refilled. */
static void walk_sizes(const size_t *sizes, size_t n, uint64_t tag)
{
  size_t old = sizes[0];
  unsigned char *p = malloc(launder_size(old));
  check_block(p, old);
  pattern_fill(p, old, tag, 0);
  for (size_t i = 1; i < n; i++) {
    size_t size = sizes[i];
    unsigned char *q = realloc(p, launder_size(size));
    check_block(q, size);
    size_t keep = old < size ? old : size;
    size_t bad = pattern_check(q, keep, tag, i - 1);
    cr_assert_eq(bad, (size_t)-1,
                 "realloc %zu -> %zu (%p -> %p) lost the contents at offset %zu", old, size,
                 (void *)p, (void *)q, bad);
    pattern_fill(q, size, tag, i);
    p = q;
    old = size;
  }
  free(p);
}

Test(realloc, grow_and_shrink_preserve_contents)
{
  static const size_t ladder[] = {
      1,        7,        16,       17,       31,       48,       100,      128,      129,
      500,      1024,     2047,     4096,     4097,     10000,    32 * KiB, 40 * KiB, 40 * KiB + 1,
      64 * KiB, 100 * KiB, 256 * KiB, 1 * MiB, 2 * MiB - 16, 2 * MiB, 2 * MiB + 1, 3 * MiB,
      8 * MiB,  32 * MiB, 8 * MiB,  3 * MiB,  2 * MiB + 1, 2 * MiB, 1 * MiB,  256 * KiB, 64 * KiB,
      40 * KiB + 1, 40 * KiB, 32 * KiB, 4097, 4096, 1024, 129, 128, 48, 17, 16, 1,
  };
  walk_sizes(ladder, sizeof ladder / sizeof ladder[0], 1);
}

Test(realloc, jumps_between_small_large_and_huge)
{
  static const size_t jumps[] = {
      24,      5 * MiB, 24,     200 * KiB, 100,   3 * MiB,  40 * KiB,  16,
      64 * KiB, 1 * MiB, 33,    100 * MiB, 1000,  100 * KiB, 4 * MiB,  2 * MiB + 4096,
      2 * MiB, 8,
  };
  walk_sizes(jumps, sizeof jumps / sizeof jumps[0], 2);
}

/* Every small size grown by one byte, then by a class, then shrunk. */
Test(realloc, every_small_size_steps)
{
  for (size_t size = 1; size <= 2048; size++) {
    const size_t steps[] = {size, size + 1, size * 2 + 3, size, size / 2 + 1};
    walk_sizes(steps, 5, size + 100);
  }
}

/* Reallocating to the same size, or to any size within the usable size,
 * keeps the contents (and may keep the block). */
Test(realloc, same_size_and_within_usable)
{
  static const size_t sizes[] = {10, 1000, 40 * KiB, 80 * KiB, 3 * MiB};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    size_t size = sizes[i];
    unsigned char *p = malloc(launder_size(size));
    check_block(p, size);
    pattern_fill(p, size, i, 0);
    p = realloc(p, launder_size(size));
    check_block(p, size);
    cr_assert_eq(pattern_check(p, size, i, 0), (size_t)-1);
    size_t usable = malloc_usable_size(p);
    p = realloc(p, launder_size(usable));
    check_block(p, usable);
    cr_assert_eq(pattern_check(p, size, i, 0), (size_t)-1);
    free(p);
  }
}

/* A block resized within its usable size and above half of it stays
 * where it is: small, large (within its last page) and huge. */
Test(realloc, within_usable_and_above_half_stays_in_place)
{
  static const size_t sizes[] = {1000, 40 * KiB, 3 * MiB, 9 * MiB};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    unsigned char *p = malloc(launder_size(sizes[i]));
    check_block(p, sizes[i]);
    size_t usable = malloc_usable_size(p);
    pattern_fill(p, usable, i, 0);
    size_t sizes_in_place[] = { usable, usable - 1, sizes[i] < 64 * KiB ? usable : usable - 100, usable / 2 + 4096 };
    size_t last = usable;
    for (size_t k = 0; k < 4; k++) {
      if (sizes[i] < MiB && k == 3) break; /* small and large blocks shrink further */
      unsigned char *q = realloc(p, launder_size(sizes_in_place[k]));
      cr_assert_eq(q, p, "realloc(%zu-byte block, %zu) moved it", sizes[i], sizes_in_place[k]);
      last = sizes_in_place[k];
    }
    cr_assert_eq(pattern_check(p, last, i, 0), (size_t)-1);
    free(p);
  }
}

/* realloc of many live blocks interleaved with other allocations. */
Test(realloc, interleaved_with_other_blocks)
{
  enum { N = 512 };
  static unsigned char *p[N];
  static size_t sz[N];
  static unsigned gen[N];
  uint64_t rng = 0x1234567;
  for (size_t i = 0; i < N; i++) {
    sz[i] = 1 + xorshift64(&rng) % 3000;
    p[i] = malloc(launder_size(sz[i]));
    check_block(p[i], sz[i]);
    pattern_fill(p[i], sz[i], i, 0);
  }
  for (int step = 0; step < 40000; step++) {
    uint64_t r = xorshift64(&rng);
    size_t i = r % N;
    size_t size = (r >> 20) % 16 == 0 ? 1 + (r >> 32) % (300 * KiB) : 1 + (r >> 32) % 3000;
    unsigned char *q = realloc(p[i], launder_size(size));
    check_block(q, size);
    size_t keep = sz[i] < size ? sz[i] : size;
    size_t bad = pattern_check(q, keep, i, gen[i]);
    cr_assert_eq(bad, (size_t)-1, "step %d: realloc %zu -> %zu lost the contents at %zu", step,
                 sz[i], size, bad);
    gen[i]++;
    pattern_fill(q, size, i, gen[i]);
    p[i] = q;
    sz[i] = size;
  }
  for (size_t i = 0; i < N; i++) {
    cr_assert_eq(pattern_check(p[i], sz[i], i, gen[i]), (size_t)-1, "block %zu at the end", i);
    free(p[i]);
  }
}

/* A failed realloc returns NULL, sets ENOMEM and leaves the block as it was. */
Test(realloc, failure_keeps_the_block)
{
  static const size_t sizes[] = {32, 40 * KiB, 100 * KiB, 4 * MiB};
  static const size_t impossible[] = {SIZE_MAX, SIZE_MAX - 4095, (size_t)PTRDIFF_MAX + 1};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    unsigned char *p = malloc(launder_size(sizes[i]));
    cr_assert_not_null(p);
    pattern_fill(p, sizes[i], i, 9);
    for (size_t k = 0; k < sizeof impossible / sizeof impossible[0]; k++) {
      errno = 0;
      void *q = realloc(p, launder_size(impossible[k]));
      cr_assert_null(q, "realloc(%zu B block, %#zx) = %p", sizes[i], impossible[k], q);
      cr_assert_eq(errno, ENOMEM, "realloc to %#zx: errno %d", impossible[k], errno);
      cr_assert_eq(pattern_check(p, sizes[i], i, 9), (size_t)-1, "failed realloc changed the block");
    }
    p = realloc(p, launder_size(sizes[i] * 2));
    cr_assert_not_null(p, "the block still reallocates after failures");
    cr_assert_eq(pattern_check(p, sizes[i], i, 9), (size_t)-1);
    free(p);
  }
}

/* A program may split a block's mapping: madvise with a flag, mlock or
 * mprotect of a few of its pages (RDMA buffers, secrets, guard pages).
 * mremap refuses such a range; the block must still grow, by copy, and its
 * region must not be handed out again with those parts (a read-only page
 * in a later block would fault on its first write). */
static void split_mapping(char *p, int how)
{
  char *part = p + 8 * KiB;
  switch (how) {
  case 0: cr_assert_eq(madvise(part, 16 * KiB, MADV_DONTDUMP), 0); break;
  case 1: cr_assert_eq(mlock(part, 4 * KiB), 0, "mlock: %s", strerror(errno)); break;
  default: cr_assert_eq(mprotect(part, 4 * KiB, PROT_READ), 0); break;
  }
}

Test(realloc, a_huge_block_whose_mapping_was_split_still_grows)
{
  for (int how = 0; how < 3; how++) {
    void *v;
    cr_assert_eq(posix_memalign(&v, 4096, 4 * MiB), 0);
    char *p = v;
    pattern_fill(p, 4 * MiB, (uint64_t)how, 13);
    split_mapping(p, how);
    errno = 0;
    /* Past any region a 4 MiB block can have been given (the cache's
     * regions up to 32 MiB past twice its size): the region must grow. */
    char *q = realloc(p, launder_size(64 * MiB));
    cr_assert_not_null(q, "split by %d: realloc failed, errno %d", how, errno);
    cr_assert_neq(q, p, "split by %d: a 4 MiB block grew to 64 MiB in place", how);
    cr_assert_eq(pattern_check(q, 4 * MiB, (uint64_t)how, 13), (size_t)-1, "split by %d: contents lost", how);
    memset(q, 0x3C, 64 * MiB);
    free(q);
    /* Blocks of the old size again, maybe from the cache: all writable. */
    for (int k = 0; k < 4; k++) {
      char *r = malloc(launder_size(4 * MiB));
      cr_assert_not_null(r);
      memset(r, 0x5A, 4 * MiB);
      free(r);
    }
  }
}

Test(reallocarray, behaves_as_realloc_of_the_product)
{
  unsigned char *p = reallocarray(launder(NULL), launder_size(10), 100);
  check_block(p, 1000);
  pattern_fill(p, 1000, 5, 0);
  p = reallocarray(p, launder_size(1000), 100);
  check_block(p, 100000);
  cr_assert_eq(pattern_check(p, 1000, 5, 0), (size_t)-1);
  p = reallocarray(p, launder_size(3), 7);
  check_block(p, 21);
  cr_assert_eq(pattern_check(p, 21, 5, 0), (size_t)-1);
  free(p);
}

static void expect_reallocarray_enomem(void *p, size_t n, size_t size)
{
  errno = 0;
  void *q = reallocarray(p, launder_size(n), launder_size(size));
  cr_assert_null(q, "reallocarray(%p, %#zx, %#zx) = %p", p, n, size, q);
  cr_assert_eq(errno, ENOMEM, "reallocarray(%p, %#zx, %#zx): errno %d", p, n, size, errno);
}

Test(reallocarray, overflow_fails_with_enomem_and_keeps_the_block)
{
  expect_reallocarray_enomem(NULL, SIZE_MAX / 2, 3);
  expect_reallocarray_enomem(NULL, (size_t)1 << 32, (size_t)1 << 32);
  unsigned char *p = malloc(launder_size(256));
  cr_assert_not_null(p);
  pattern_fill(p, 256, 77, 1);
  expect_reallocarray_enomem(p, SIZE_MAX / 2, 3);
  expect_reallocarray_enomem(p, (size_t)1 << 32, (size_t)1 << 32);
  expect_reallocarray_enomem(p, 3, SIZE_MAX / 2);
  expect_reallocarray_enomem(p, SIZE_MAX, 1);
  cr_assert_eq(pattern_check(p, 256, 77, 1), (size_t)-1, "a failed reallocarray changed the block");
  free(p);
}
