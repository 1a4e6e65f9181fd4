/* Description: malloc_usable_size. For blocks from every allocation
 * function it is at least the size asked for, the whole usable size can
 * be written without touching a neighbour, it stays within a bounded
 * waste, and malloc_usable_size(NULL) is 0. */
#include "helpers.h"

#include <malloc.h>

Test(usable_size, null_is_zero)
{
  cr_assert_eq(malloc_usable_size(launder(NULL)), 0);
}

/* Writing all usable bytes of every block must not disturb the others. */
Test(usable_size, whole_usable_size_is_writable)
{
  enum { N = 3000 };
  static unsigned char *p[N];
  static size_t usable[N];
  for (size_t i = 0; i < N; i++) {
    size_t size = 1 + (i * 13) % (48 * KiB);
    p[i] = malloc(launder_size(size));
    cr_assert_not_null(p[i]);
    usable[i] = malloc_usable_size(p[i]);
    cr_assert_geq(usable[i], size, "malloc(%zu): usable %zu", size, usable[i]);
    pattern_fill(p[i], usable[i], i, 3);
  }
  for (size_t i = 0; i < N; i++) {
    size_t bad = pattern_check(p[i], usable[i], i, 3);
    cr_assert_eq(bad, (size_t)-1, "block %zu (usable %zu) changed at %zu", i, usable[i], bad);
    free(p[i]);
  }
}

/* A size class or page rounding wastes a bounded amount: for small blocks
 * at most 25 % plus 16 B, and a quarter more when the block was borrowed
 * from the next class up; for large ones at most a page plus 1/8. Usable
 * size is stable for the life of a block. */
Test(usable_size, waste_is_bounded)
{
  long page = sysconf(_SC_PAGESIZE);
  for (size_t size = 1; size <= 4 * MiB; size = size < 64 ? size + 1 : size + size / 7) {
    /* A huge block may take a cached region whole, bigger than it needs,
     * to grow into (lib/huge.c): the bound is that of a fresh region. */
    if (size > 1020 * KiB)
      malloc_trim(0);
    void *p = malloc(launder_size(size));
    cr_assert_not_null(p);
    size_t u = malloc_usable_size(p);
    cr_assert_geq(u, size);
    if (size <= 32 * KiB)
      cr_assert_leq(u, (size + size / 4 + 16) * 5 / 4, "malloc(%zu): usable %zu", size, u);
    else
      cr_assert_leq(u, size + size / 8 + (size_t)page, "malloc(%zu): usable %zu", size, u);
    cr_assert_eq(malloc_usable_size(p), u, "usable size changed");
    free(p);
  }
}

Test(usable_size, covers_every_allocation_function)
{
  void *p;
  p = calloc(launder_size(7), 9);
  cr_assert_not_null(p);
  cr_assert_geq(malloc_usable_size(p), 63);
  free(p);

  p = realloc(NULL, launder_size(5000));
  cr_assert_not_null(p);
  cr_assert_geq(malloc_usable_size(p), 5000);
  p = realloc(p, launder_size(300 * KiB));
  cr_assert_not_null(p);
  cr_assert_geq(malloc_usable_size(p), 300 * KiB);
  p = realloc(p, launder_size(10));
  cr_assert_not_null(p);
  cr_assert_geq(malloc_usable_size(p), 10);
  free(p);

  p = reallocarray(NULL, launder_size(100), 30);
  cr_assert_not_null(p);
  cr_assert_geq(malloc_usable_size(p), 3000);
  free(p);

  cr_assert_eq(posix_memalign(&p, 4096, launder_size(10000)), 0);
  cr_assert_geq(malloc_usable_size(p), 10000);
  free(p);

  p = aligned_alloc(256, launder_size(1000));
  cr_assert_not_null(p);
  cr_assert_geq(malloc_usable_size(p), 1000);
  free(p);

  p = memalign(64, launder_size(70));
  cr_assert_not_null(p);
  cr_assert_geq(malloc_usable_size(p), 70);
  free(p);

  p = valloc(launder_size(10));
  cr_assert_not_null(p);
  cr_assert_geq(malloc_usable_size(p), 10);
  free(p);

  long page = sysconf(_SC_PAGESIZE);
  p = pvalloc(launder_size(10));
  cr_assert_not_null(p);
  cr_assert_geq(malloc_usable_size(p), (size_t)page, "pvalloc rounds the size up to a page");
  free(p);
}
