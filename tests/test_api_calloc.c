/* Description: calloc. Memory comes back zeroed, over its whole usable
 * size, for every size class, large and huge sizes, including memory just
 * dirtied and freed by the program (hakmem skips clearing memory it knows
 * to be zero, so reused memory is where a bug would show); count * size
 * overflow gives NULL with ENOMEM; calloc with a zero count or size gives
 * a freeable pointer.
 * The reuse tests are repeated under every HAKMEM_SS_LAZY_ZERO policy and
 * with the LRU cache disabled, since each changes what reused memory holds. */
#include "helpers.h"

#include <malloc.h>

static const size_t dirty_sizes[] = {
    1,        16,        24,       48,       100,      128,          512,     1000,
    4096,     5000,      16 * KiB, 32 * KiB, 40 * KiB, 64 * KiB,     100 * KiB, 512 * KiB,
    1 * MiB,  2 * MiB,   3 * MiB,  4 * MiB,  8 * MiB,
};
#define N_DIRTY (sizeof dirty_sizes / sizeof dirty_sizes[0])

Test(calloc, zeroes_every_small_size)
{
  for (size_t size = 1; size <= 40 * KiB; size += (size < 1024 ? 1 : 61)) {
    unsigned char *p = calloc(launder_size(size), 1);
    cr_assert_not_null(p, "calloc(%zu, 1)", size);
    cr_assert_eq((uintptr_t)p % 16, 0);
    cr_assert(all_zero(p, size), "calloc(%zu, 1) is not zeroed", size);
    memset(p, 0xAA, size);
    free(p);
  }
}

/* malloc, fill with 0xAA over the whole usable size, free, then calloc
 * the same size: the very block that was dirtied is the likely answer. */
Test(calloc, zeroes_reused_dirty_memory)
{
  for (size_t k = 0; k < N_DIRTY; k++) {
    size_t size = dirty_sizes[k];
    int rounds = size >= MiB ? 8 : 200;
    for (int r = 0; r < rounds; r++) {
      unsigned char *d = malloc(launder_size(size));
      cr_assert_not_null(d);
      memset(d, 0xAA, malloc_usable_size(d));
      free(d);
      unsigned char *p = calloc(1, launder_size(size));
      cr_assert_not_null(p);
      cr_assert(all_zero(p, malloc_usable_size(p)), "calloc(1, %zu) after a dirty free is not zeroed (round %d)",
                size, r);
      memset(p, 0xAA, malloc_usable_size(p));
      free(p);
    }
  }
}

/* The whole usable size is zero, not only the bytes asked for: a calloc a
 * little smaller than the dirty block it reuses (in the smallest classes
 * the bytes past the request held free-list links). */
Test(calloc, zeroes_the_whole_usable_size)
{
  static const size_t sizes[] = {16, 32, 48, 160, 1000, 4096, 20000, 32 * KiB, 40 * KiB, 290000, 3 * MiB};
  for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
    size_t size = sizes[k];
    for (size_t less = 1; less <= 15 && less < size; less += 7) {
      unsigned char *d[2];
      for (int i = 0; i < 2; i++) {
        d[i] = malloc(launder_size(size));
        cr_assert_not_null(d[i]);
        memset(d[i], 0xAA, malloc_usable_size(d[i]));
      }
      free(d[0]);
      free(d[1]);
      unsigned char *p = calloc(1, launder_size(size - less));
      cr_assert_not_null(p);
      size_t usable = malloc_usable_size(p);
      cr_assert_geq(usable, size - less);
      for (size_t i = 0; i < usable; i++)
        cr_assert_eq(p[i], 0, "calloc(1, %zu): byte %zu of %zu usable is 0x%02x", size - less, i, usable, p[i]);
      free(p);
    }
  }
}

/* Many dirty blocks freed at once, then as many callocs: these come from
 * the thread cache, partially used slabs and the free lists. */
Test(calloc, zeroes_reused_dirty_batches)
{
  enum { N = 2000 };
  static unsigned char *p[N];
  static const size_t sizes[] = {16, 80, 256, 1024, 3000, 8192, 20000, 40 * KiB, 72 * KiB};
  for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
    size_t size = sizes[k];
    size_t n = size > 16 * KiB ? 200 : N;
    for (int round = 0; round < 3; round++) {
      for (size_t i = 0; i < n; i++) {
        p[i] = malloc(launder_size(size));
        cr_assert_not_null(p[i]);
        memset(p[i], 0xAA, malloc_usable_size(p[i]));
      }
      for (size_t i = 0; i < n; i++)
        free(p[(i * 7919) % n]); /* a scrambled order (7919 is prime, n is not a multiple) */
      for (size_t i = 0; i < n; i++) {
        p[i] = calloc(launder_size(size / 8), 8); /* every size here is a multiple of 8 */
        cr_assert_not_null(p[i]);
        cr_assert(all_zero(p[i], size), "calloc of %zu B, block %zu of round %d not zeroed",
                  size, i, round);
      }
      for (size_t i = 0; i < n; i++)
        free(p[i]);
    }
  }
}

/* Dirty memory of one size reused by calloc of another size in the same
 * neighbourhood: small blocks freed, then calloc'd as larger ones. */
Test(calloc, zeroes_memory_dirtied_at_other_sizes)
{
  enum { N = 4096 };
  static void *p[N];
  for (int round = 0; round < 4; round++) {
    for (size_t i = 0; i < N; i++) {
      size_t size = 16 + (i * 37 + (size_t)round * 101) % 2000;
      p[i] = malloc(launder_size(size));
      cr_assert_not_null(p[i]);
      memset(p[i], 0xAA, malloc_usable_size(p[i]));
    }
    for (size_t i = 0; i < N; i++)
      free(p[i]);
    for (size_t i = 0; i < N; i++) {
      size_t size = 16 + (i * 53 + (size_t)round * 7) % 2000;
      p[i] = calloc(launder_size(size), 1);
      cr_assert_not_null(p[i]);
      cr_assert(all_zero(p[i], size), "calloc(%zu, 1) round %d not zeroed", size, round);
      memset(p[i], 0xAA, size);
    }
    for (size_t i = 0; i < N; i++)
      free(p[i]);
  }
}

Test(calloc, zeroes_large_and_huge)
{
  static const size_t sizes[] = {64 * KiB, 1 * MiB, 3 * MiB, 100 * MiB};
  for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
    unsigned char *p = calloc(launder_size(sizes[k] / 4), 4);
    cr_assert_not_null(p, "calloc of %zu B", sizes[k]);
    cr_assert(all_zero(p, sizes[k]), "calloc of %zu B is not zeroed", sizes[k]);
    free(p);
  }
}

static void expect_calloc_enomem(size_t n, size_t size)
{
  errno = 0;
  void *p = calloc(launder_size(n), launder_size(size));
  cr_assert_null(p, "calloc(%#zx, %#zx) = %p, expected NULL", n, size, p);
  cr_assert_eq(errno, ENOMEM, "calloc(%#zx, %#zx): errno %d, expected ENOMEM", n, size, errno);
}

Test(calloc, overflow_fails_with_enomem)
{
  expect_calloc_enomem(SIZE_MAX / 2, 3);
  expect_calloc_enomem(3, SIZE_MAX / 2);
  expect_calloc_enomem(SIZE_MAX, SIZE_MAX);
  expect_calloc_enomem(SIZE_MAX, 2);
  /* The product wraps to exactly 0 or to a small number. */
  expect_calloc_enomem((size_t)1 << 32, (size_t)1 << 32);
  expect_calloc_enomem(((size_t)1 << 63) + 1, 2);
  /* No overflow, but too big. */
  expect_calloc_enomem(SIZE_MAX, 1);
  expect_calloc_enomem(1, (size_t)PTRDIFF_MAX + 1);
  void *p = calloc(launder_size(10), 10);
  cr_assert_not_null(p, "calloc works after failures");
  free(p);
}

Test(calloc, zero_count_or_size_gives_freeable_pointer)
{
  void *a = calloc(launder_size(0), 16);
  void *b = calloc(16, launder_size(0));
  void *c = calloc(launder_size(0), 0);
  cr_assert_not_null(a);
  cr_assert_not_null(b);
  cr_assert_not_null(c);
  cr_assert(a != b && b != c && a != c, "calloc with zero size returned a pointer twice");
  free(a);
  free(b);
  free(c);
}

/* Each option changes how an empty SuperSlab's pages come back: kept with
 * their old bytes (0), released by MADV_DONTNEED (1, the default, tested
 * above), MADV_FREE (2: may or may not read as zero), handed to the pager
 * (3, which means 1 without one), never cached at all (LRU_MAX=0), or
 * supplied by the userfaultfd pager (UFFD=1, where it is built and allowed;
 * otherwise the default path serves and the run repeats the default). */
Test(calloc, zeroes_reused_memory_under_every_policy, .timeout = 180)
{
  static const char *const settings[] = {
      "HAKMEM_SS_LAZY_ZERO=0",
      "HAKMEM_SS_LAZY_ZERO=2",
      "HAKMEM_SS_LAZY_ZERO=3",
      "HAKMEM_LRU_MAX=0",
      "HAKMEM_UFFD=1",
      "HAKMEM_UFFD=1 HAKMEM_SS_LAZY_ZERO=3",
  };
  for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++) {
    rerun_with_env("calloc/zeroes_reused_dirty_*", settings[i]);
    rerun_with_env("calloc/zeroes_memory_dirtied_at_other_sizes", settings[i]);
  }
}
