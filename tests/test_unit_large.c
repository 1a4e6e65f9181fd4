/* Description: unit tests of lib/large.h, blocks above the largest size
 * class up to 1020 KiB (LARGE_MAX: two such runs fit in a SuperSlab)
 * served as runs of pages in large SuperSlabs. Requests of 33..1020 KiB
 * get page-aligned runs of whole pages (usable size = pages * 4096, waste
 * under a page), never in the header page, never overlapping; 32 KiB is
 * still small and 1020 KiB + 1 is huge; a freed run is
 * found again first fit; realloc shrinks a run in place, grows it in place
 * when the next pages are free and moves it when they are not, keeping the
 * contents; aligned runs honour alignments up to 1 MiB; calloc of a run
 * that held old bytes clears it; every SuperSlab knows its longest free
 * run, and a request goes to one that holds it before a new one is mapped
 * (a_run_is_found_among_superslabs_with_runs_just_too_short); free runs
 * idle for a second go back to the kernel (but for HAKMEM_SS_LAZY_ZERO=0),
 * and a trim gives back pages a supplier moved into the region while it
 * was a small SuperSlab; a double free, or a free of a pointer inside a
 * run, aborts. */
#include <criterion/criterion.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include "heap.h"
#include "large.h"
#include "lru.h"
#include "options.h"
#include "os.h"
#include "region_map.h"
#include "superslab.h"
#include "types.h"
#include "unit_helpers.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

static size_t round_page(size_t n)
{
  return (n + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
}

static struct large_ss *large_of(const void *p)
{
  return (struct large_ss *)superslab_of(p);
}

static unsigned page_index(const void *p)
{
  return (unsigned)(((uintptr_t)p & REGION_MASK) / PAGE_SIZE);
}

static int map_bit(const uint64_t *map, unsigned i)
{
  return (int)((map[i / 64] >> (i % 64)) & 1);
}

static void fill(void *p, size_t n, unsigned seed)
{
  unsigned char *b = p;
  for (size_t i = 0; i < n; i++)
    b[i] = (unsigned char)(i * 31u + seed);
}

/* Offset of the first byte that differs from fill(), or (size_t)-1. */
static size_t check(const void *p, size_t n, unsigned seed)
{
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++)
    if (b[i] != (unsigned char)(i * 31u + seed))
      return i;
  return (size_t)-1;
}

static void no_core_dumps(void)
{
  struct rlimit rl = { 0, 0 };
  setrlimit(RLIMIT_CORE, &rl);
}

/* These tests look at the runs' bitmaps right after a free: the thread's
 * cache of freed runs, which would keep them claimed, is off (its own
 * tests are in the large_cache suite below). */
static void without_the_run_cache(void)
{
  large_cache_test_enable(false);
}

TestSuite(large, .init = without_the_run_cache);

Test(large, runs_of_33k_to_1020k_are_whole_pages)
{
  static const size_t sizes[] = { 32769, 33 * KiB, 40000, 64 * KiB, 64 * KiB + 1, 100 * KiB + 1,
                                  300000, 512 * KiB, LARGE_MAX - 1, LARGE_MAX };
  enum { N = sizeof sizes / sizeof sizes[0] };
  char *p[N];
  size_t waste = 0;
  for (size_t i = 0; i < N; i++) {
    struct hakmem_stats s0 = snap();
    p[i] = malloc(opaque_size(sizes[i]));
    struct hakmem_stats s1 = snap();
    cr_assert_not_null(p[i], "malloc(%zu)", sizes[i]);
    cr_assert_eq(region_map_kind((uintptr_t)p[i]), REGION_LARGE, "malloc(%zu) is not a large run", sizes[i]);
    cr_assert_eq((uintptr_t)p[i] % PAGE_SIZE, 0, "malloc(%zu) = %p is not page aligned", sizes[i], (void *)p[i]);
    size_t usable = malloc_usable_size(p[i]);
    cr_assert_eq(usable, round_page(sizes[i]), "malloc(%zu): usable %zu", sizes[i], usable);
    cr_assert_lt(usable - sizes[i], PAGE_SIZE);
    waste += usable - sizes[i];
    cr_assert_eq(large_usable(p[i], "test"), usable);
    struct large_ss *l = large_of(p[i]);
    unsigned first = page_index(p[i]);
    cr_assert_eq(l->h.kind, REGION_LARGE);
    cr_assert_geq(first, 1, "a run starts in the header page");
    cr_assert(l->pages[first].head, "page %u does not start a run", first);
    cr_assert_eq((size_t)l->pages[first].run_pages * PAGE_SIZE, usable);
    cr_assert_leq(first + l->pages[first].run_pages, PAGES_PER_REGION, "the run runs out of its SuperSlab");
    for (unsigned q = first; q < first + l->pages[first].run_pages; q++)
      cr_assert_not(map_bit(l->free_map, q), "page %u of a live run is marked free", q);
    cr_assert_eq(s1.bytes_in_use - s0.bytes_in_use, usable, "bytes_in_use grew by %llu for %zu usable bytes",
                 (unsigned long long)(s1.bytes_in_use - s0.bytes_in_use), usable);
    fill(p[i], usable, (unsigned)i);
  }
  cr_assert_lt(waste / N, PAGE_SIZE);
  /* Runs never overlap: each kept its contents through the others. */
  for (size_t i = 0; i < N; i++) {
    cr_assert_eq(check(p[i], malloc_usable_size(p[i]), (unsigned)i), (size_t)-1, "run %zu was overwritten", i);
    for (size_t j = 0; j < i; j++) {
      size_t ui = malloc_usable_size(p[i]), uj = malloc_usable_size(p[j]);
      cr_assert(p[i] + ui <= p[j] || p[j] + uj <= p[i], "runs %zu and %zu overlap", i, j);
    }
  }
  for (size_t i = 0; i < N; i++) {
    size_t usable = malloc_usable_size(p[i]);
    struct hakmem_stats s0 = snap();
    free(p[i]);
    struct hakmem_stats s1 = snap();
    cr_assert_eq(s0.bytes_in_use - s1.bytes_in_use, usable);
  }
}

Test(large, the_boundaries_are_32k_and_1020k)
{
  void *small = malloc(opaque_size(SMALL_MAX));
  void *large = malloc(opaque_size(SMALL_MAX + 1));
  void *top = malloc(opaque_size(LARGE_MAX));
  void *huge = malloc(opaque_size(LARGE_MAX + 1));
  cr_assert(small && large && top && huge);
  cr_assert_eq(region_map_kind((uintptr_t)small), REGION_SMALL);
  cr_assert_eq(region_map_kind((uintptr_t)large), REGION_LARGE);
  cr_assert_eq(region_map_kind((uintptr_t)top), REGION_LARGE);
  cr_assert_eq(region_map_kind((uintptr_t)huge), REGION_HUGE);
  cr_assert_eq(malloc_usable_size(large), 9 * PAGE_SIZE);
  cr_assert_eq(malloc_usable_size(top), LARGE_MAX);
  free(small);
  free(large);
  free(top);
  free(huge);
}

/* Blocks of a size just above LARGE_MAX (1 MiB is a common one) take their
 * size in address space, not a SuperSlab each: a run of 256 pages would
 * leave the other 255 of its SuperSlab to smaller blocks only. */
Test(large, blocks_of_1m_cost_their_size_in_address_space)
{
  enum { N = 16 };
  void *p[N];
  malloc_trim(0); /* nothing cached to reuse: every block maps anew */
  struct hakmem_stats s0 = snap();
  for (int i = 0; i < N; i++) {
    p[i] = malloc(opaque_size(MiB));
    cr_assert_not_null(p[i]);
    memset(p[i], 0x42, MiB);
  }
  struct hakmem_stats s1 = snap();
  size_t mapped = s1.bytes_mapped - s0.bytes_mapped;
  cr_assert_leq(mapped, N * (MiB + 2 * PAGE_SIZE), "%d blocks of 1 MiB mapped %zu KiB", N, mapped >> 10);
  for (int i = 0; i < N; i++)
    free(p[i]);
}

/* A run of 64 KiB in the same SuperSlab as p, so that freeing p does not
 * empty it (an empty one may go to the LRU). */
static void *neighbour_of(const void *p)
{
  void *keep = malloc(opaque_size(64 * KiB));
  cr_assert_not_null(keep);
  cr_assert_eq((void *)large_of(keep), (void *)large_of(p), "test premise: two runs in one SuperSlab");
  return keep;
}

Test(large, a_freed_run_is_found_again_first_fit)
{
  char *p = malloc(opaque_size(200 * KiB));
  cr_assert_not_null(p);
  void *keep = neighbour_of(p);
  unsigned first = page_index(p);
  struct large_ss *l = large_of(p);
  free(p);
  cr_assert_not(l->pages[first].head, "a freed run still has its head");
  for (unsigned q = first; q < first + 50; q++)
    cr_assert(map_bit(l->free_map, q), "page %u of a freed run is not free", q);
  char *q = malloc(opaque_size(200 * KiB));
  cr_assert_eq(q, p, "the same request after a free took %p, not %p", (void *)q, (void *)p);
  free(q);
  free(keep);
}

/* Holes of 20 pages between live runs (the free map's words hold 64
 * pages, so runs and holes cross word boundaries): a 24-page request
 * skips them all, a 20-page one takes the first, an aligned one starts on
 * its alignment. */
Test(large, first_fit_skips_holes_too_small_and_honours_alignment)
{
  enum { N = 20 };
  char *runs[N];
  for (unsigned i = 0; i < N; i++) {
    runs[i] = malloc(opaque_size(80 * KiB));
    cr_assert_not_null(runs[i]);
    cr_assert_eq((void *)large_of(runs[i]), (void *)large_of(runs[0]), "test premise: one SuperSlab");
    if (i > 0)
      cr_assert_eq(page_index(runs[i]), page_index(runs[i - 1]) + 20, "test premise: consecutive runs");
  }
  for (unsigned i = 1; i < N; i += 2)
    free(runs[i]);
  char *big = malloc(opaque_size(96 * KiB));
  cr_assert_not_null(big);
  if ((void *)large_of(big) == (void *)large_of(runs[0]))
    cr_assert_geq(page_index(big), page_index(runs[N - 2]) + 20, "24 pages went into a 20-page hole at page %u",
                  page_index(big));
  char *fit = malloc(opaque_size(80 * KiB));
  cr_assert_eq(fit, runs[1], "a 20-page request took %p, not the first hole %p", (void *)fit, (void *)runs[1]);
  char *aligned = aligned_alloc(128 * KiB, opaque_size(64 * KiB));
  cr_assert_not_null(aligned);
  cr_assert_eq((uintptr_t)aligned % (128 * KiB), 0);
  fill(aligned, 64 * KiB, 9);
  fill(fit, 80 * KiB, 8);
  cr_assert_eq(check(aligned, 64 * KiB, 9), (size_t)-1, "the aligned run overlaps another");
  free(aligned);
  free(fit);
  free(big);
  for (unsigned i = 0; i < N; i += 2)
    free(runs[i]);
}

Test(large, realloc_shrinks_in_place_and_grows_back_in_place)
{
  char *p = malloc(opaque_size(200 * KiB));
  cr_assert_not_null(p);
  fill(p, 200 * KiB, 7);
  struct large_ss *l = large_of(p);
  unsigned first = page_index(p);

  struct hakmem_stats s0 = snap();
  char *q = realloc(p, opaque_size(40 * KiB));
  struct hakmem_stats s1 = snap();
  cr_assert_eq(q, p, "shrinking a run moved it");
  cr_assert_eq(malloc_usable_size(q), 40 * KiB);
  cr_assert_eq(l->pages[first].run_pages, 10);
  for (unsigned i = first + 10; i < first + 50; i++)
    cr_assert(map_bit(l->free_map, i), "page %u after a shrunk run is not free", i);
  cr_assert_eq(s0.bytes_in_use - s1.bytes_in_use, 160 * KiB);
  cr_assert_eq(check(q, 40 * KiB, 7), (size_t)-1);

  /* The pages it gave up are still free: it grows back where it is. */
  char *r = realloc(q, opaque_size(200 * KiB));
  struct hakmem_stats s2 = snap();
  cr_assert_eq(r, p, "growing into free pages moved the run");
  cr_assert_eq(malloc_usable_size(r), 200 * KiB);
  cr_assert_eq(l->pages[first].run_pages, 50);
  for (unsigned i = first; i < first + 50; i++)
    cr_assert_not(map_bit(l->free_map, i));
  cr_assert_eq(s2.bytes_in_use - s1.bytes_in_use, 160 * KiB);
  cr_assert_eq(check(r, 40 * KiB, 7), (size_t)-1, "growing in place lost the contents");

  /* Within the same page count it stays too. */
  cr_assert_eq(realloc(r, opaque_size(200 * KiB - 100)), r);
  free(r);
}

Test(large, realloc_moves_a_run_whose_next_pages_are_taken)
{
  char *p = malloc(opaque_size(80 * KiB));
  cr_assert_not_null(p);
  cr_assert_eq(realloc(p, opaque_size(40 * KiB)), p);
  fill(p, 40 * KiB, 3);
  /* Take the pages right after it: first fit reaches them once the holes
   * below are filled. */
  static void *blockers[256];
  unsigned n = 0;
  for (;;) {
    cr_assert_lt(n, 256, "never got the pages after the run");
    blockers[n] = malloc(opaque_size(40 * KiB));
    cr_assert_not_null(blockers[n]);
    if (blockers[n++] == p + 40 * KiB)
      break;
  }
  struct large_ss *l = large_of(p);
  unsigned first = page_index(p);
  char *q = realloc(p, opaque_size(200 * KiB));
  cr_assert_not_null(q);
  cr_assert_neq(q, p, "a run grew over its neighbour");
  /* A moved, growing block takes an eighth more: the next small steps of
   * its growth need no move. */
  size_t usable = malloc_usable_size(q);
  cr_assert_geq(usable, 225 * KiB, "a block grown to 200 KiB by a move has %zu bytes", usable);
  cr_assert_leq(usable, 225 * KiB + 4 * KiB);
  cr_assert_eq(check(q, 40 * KiB, 3), (size_t)-1, "moving the run lost its contents");
  cr_assert_eq(realloc(q, opaque_size(usable)), q, "growing within the headroom moved the block");
  if ((void *)large_of(q) != (void *)l || page_index(q) != first)
    cr_assert_not(l->pages[first].head, "the old run was not freed");
  for (unsigned i = 0; i < n; i++)
    free(blockers[i]);
  free(q);
}

/* Down to half the largest small size, a large block shrinks in place and
 * grows back there: one resized back and forth across 32 KiB is not
 * copied each time. */
Test(large, realloc_across_the_small_limit_stays_in_place)
{
  char *p = malloc(opaque_size(40000));
  cr_assert_not_null(p);
  fill(p, 40000, 4);
  for (int i = 0; i < 4; i++) {
    char *q = realloc(p, opaque_size(30000));
    cr_assert_eq(q, p, "a large block shrunk to 30,000 bytes moved");
    cr_assert_eq(region_map_kind((uintptr_t)q), REGION_LARGE);
    cr_assert_geq(malloc_usable_size(q), 30000);
    cr_assert_lt(malloc_usable_size(q), 30000 + PAGE_SIZE);
    char *r = realloc(q, opaque_size(40000));
    cr_assert_eq(r, p, "grown back, it moved though the pages after it are free");
    cr_assert_eq(check(r, 30000, 4), (size_t)-1);
    fill(r, 40000, 4);
  }
  char *small = realloc(p, opaque_size(SMALL_MAX / 2));
  cr_assert_eq(region_map_kind((uintptr_t)small), REGION_SMALL, "at half the largest small size it moves");
  free(small);
}

Test(large, realloc_below_the_largest_class_moves_to_a_small_block)
{
  char *p = malloc(opaque_size(64 * KiB));
  cr_assert_not_null(p);
  fill(p, 64 * KiB, 9);
  char *q = realloc(p, opaque_size(1000));
  cr_assert_not_null(q);
  cr_assert_eq(region_map_kind((uintptr_t)q), REGION_SMALL);
  cr_assert_eq(check(q, 1000, 9), (size_t)-1);
  free(q);
}

Test(large, aligned_runs)
{
  static const size_t aligns[] = { 8 * KiB, 16 * KiB, 64 * KiB, 256 * KiB, MiB };
  static const size_t sizes[] = { 33 * KiB, 100 * KiB, 600 * KiB };
  for (size_t a = 0; a < sizeof aligns / sizeof aligns[0]; a++) {
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
      void *p = NULL;
      cr_assert_eq(posix_memalign(&p, aligns[a], opaque_size(sizes[s])), 0, "posix_memalign(%zu, %zu)",
                   aligns[a], sizes[s]);
      cr_assert_eq((uintptr_t)p % aligns[a], 0, "posix_memalign(%zu, %zu) = %p", aligns[a], sizes[s], p);
      cr_assert_eq(region_map_kind((uintptr_t)p), REGION_LARGE, "an aligned %zu B block is not a large run",
                   sizes[s]);
      cr_assert_eq(malloc_usable_size(p), round_page(sizes[s]));
      fill(p, sizes[s], (unsigned)(a + s));
      void *direct = large_alloc(sizes[s], aligns[a], false);
      cr_assert_not_null(direct);
      cr_assert_eq((uintptr_t)direct % aligns[a], 0, "large_alloc(%zu, %zu) = %p", sizes[s], aligns[a], direct);
      large_free(direct);
      cr_assert_eq(check(p, sizes[s], (unsigned)(a + s)), (size_t)-1);
      free(p);
    }
  }
}

Test(large, calloc_of_a_run_that_held_old_bytes_is_zero)
{
  char *p = malloc(opaque_size(256 * KiB));
  cr_assert_not_null(p);
  void *keep = neighbour_of(p);
  memset(p, 0xEE, 256 * KiB);
  free(p);
  char *q = calloc(1, opaque_size(256 * KiB));
  cr_assert_eq(q, p, "test premise: calloc reuses the run just freed");
  for (size_t i = 0; i < 256 * KiB; i++)
    cr_assert_eq(q[i], 0, "calloc left an old byte at offset %zu", i);
  void *z = large_alloc(100 * KiB, 0, true);
  for (size_t i = 0; i < 100 * KiB; i++)
    cr_assert_eq(((char *)z)[i], 0);
  large_free(z);
  free(q);
  free(keep);
}

/* ---- finding room among many SuperSlabs ---- */

/* The longest run of free pages of l, counted from its free map. */
static unsigned longest_free_run(const struct large_ss *l)
{
  unsigned longest = 0, run = 0;
  for (unsigned i = 1; i < PAGES_PER_REGION; i++) {
    run = map_bit(l->free_map, i) ? run + 1 : 0;
    if (run > longest)
      longest = run;
  }
  return longest;
}

/* Every SuperSlab holding a live block knows its longest free run, by
 * which it is found (large.c's bins), through random allocations, frees,
 * aligned allocations and resizes in place. */
Test(large, each_superslab_knows_its_longest_free_run)
{
  enum { LIVE = 300, STEPS = 20000 };
  char *p[LIVE] = { 0 };
  size_t size[LIVE] = { 0 };
  unsigned x = 2463534242u;
  for (unsigned step = 0; step < STEPS; step++) {
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;
    unsigned k = x % LIVE, what = (x >> 9) % 8;
    size_t want = SMALL_MAX + 1 + (x >> 12) % (LARGE_MAX - SMALL_MAX);
    if (p[k] && what < 2) {
      cr_assert(large_resize(p[k], want) || want > size[k], "a shrink in place failed");
      if (want <= large_usable(p[k], "test"))
        size[k] = want;
    } else if (p[k]) {
      cr_assert_eq(check(p[k], size[k] < 64 ? size[k] : 64, k), (size_t)-1, "block %u changed", k);
      large_free(p[k]);
      p[k] = NULL;
    } else {
      size_t align = what == 7 ? PAGE_SIZE << (x >> 20) % 9 : 0;
      p[k] = large_alloc(want, align, false);
      cr_assert_not_null(p[k]);
      if (align)
        cr_assert_eq((uintptr_t)p[k] % align, 0, "large_alloc(%zu, %zu) = %p", want, align, (void *)p[k]);
      size[k] = want;
      fill(p[k], size[k] < 64 ? size[k] : 64, k);
    }
    for (unsigned i = 0; i < LIVE; i += 7) {
      if (!p[i])
        continue;
      const struct large_ss *l = large_of(p[i]);
      cr_assert_eq(l->max_run, longest_free_run(l), "step %u: a SuperSlab's longest run is %u, not %u", step,
                   longest_free_run(l), l->max_run);
    }
  }
  for (unsigned k = 0; k < LIVE; k++)
    if (p[k])
      large_free(p[k]);
}

/* Runs of 255 pages until one starts a fresh SuperSlab (the test
 * process may have large blocks already): the others are kept in
 * filler, to be freed at the end. */
static char *run_opening_a_superslab(char **filler, unsigned *fillers)
{
  for (;;) {
    char *a = large_alloc(255 * PAGE_SIZE, 0, false);
    cr_assert_not_null(a);
    if (page_index(a) == 1)
      return a;
    cr_assert_lt(*fillers, 8, "no fresh SuperSlab after %u runs of 255 pages", *fillers);
    filler[(*fillers)++] = a;
  }
}

/* A SuperSlab of 511 pages holding a run of `hole` free pages (and one
 * page at its end): two runs of 255 pages, the second shrunk. */
static char *superslab_with_hole(unsigned hole, char **filler, unsigned *fillers)
{
  char *a = run_opening_a_superslab(filler, fillers), *b = large_alloc(255 * PAGE_SIZE, 0, false);
  cr_assert_not_null(b);
  cr_assert_eq((void *)large_of(a), (void *)large_of(b), "test premise: both runs in one SuperSlab");
  cr_assert(large_resize(b, (size_t)(256 - hole) * PAGE_SIZE));
  cr_assert_eq(large_of(a)->max_run, hole);
  return a;
}

/* Ten SuperSlabs whose longest runs are a little too short for a request,
 * and one that holds it: the request goes there, and nothing new is
 * mapped. */
Test(large, a_run_is_found_among_superslabs_with_runs_just_too_short)
{
  char *filler[8];
  unsigned fillers = 0;
  char *fits = superslab_with_hole(251, filler, &fillers);
  char *short_of[10];
  for (unsigned i = 0; i < 10; i++)
    short_of[i] = superslab_with_hole(230, filler, &fillers);
  struct hakmem_stats before = snap();
  char *p = large_alloc(250 * PAGE_SIZE, 0, false);
  cr_assert_eq((void *)large_of(p), (void *)large_of(fits), "250 pages did not go to the SuperSlab with 251 free");
  cr_assert_eq(snap().bytes_mapped, before.bytes_mapped, "a SuperSlab was mapped for a run that had room");
  char *aligned = large_alloc(200 * PAGE_SIZE, 64 * PAGE_SIZE, false);
  cr_assert_not_null(aligned);
  cr_assert_eq((uintptr_t)aligned % (64 * PAGE_SIZE), 0);
  for (unsigned i = 0; i < 10; i++)
    cr_assert_eq(large_of(short_of[i])->max_run, 230, "a SuperSlab too short changed");
  large_free(aligned);
  large_free(p);
  for (unsigned i = 0; i < fillers; i++)
    large_free(filler[i]);
}

/* ---- bad frees ---- */

/* Without malloc_trim: free runs of a SuperSlab still in use go back to
 * the kernel once they have been free for a second and the program goes
 * on allocating; the survivors keep their bytes. */
/* 64 runs of 100 KiB, 56 of them freed: how many pages of the freed runs
 * are resident a second later, after more large allocations. */
static size_t idle_free_runs_resident(void)
{
  enum { N = 64 };
  const size_t size = 100 * KiB;
  char *p[N];
  for (unsigned i = 0; i < N; i++) {
    p[i] = large_alloc(size, 0, false);
    cr_assert_not_null(p[i]);
    fill(p[i], size, i);
  }
  for (unsigned i = 0; i < N; i++)
    if (i % 8)
      large_free(p[i]);
  usleep(1100 * 1000);
  /* Allocations that cannot take the freed runs (which first fit would
   * fill again): the check runs every few dozen calls. */
  for (unsigned i = 0; i < 256; i++)
    large_free(large_alloc(1 * MiB, 0, false));
  size_t resident = 0;
  unsigned char vec[100 * KiB / PAGE_SIZE + 1];
  for (unsigned i = 0; i < N; i++) {
    if (i % 8 == 0)
      continue;
    cr_assert_eq(mincore(p[i], round_page(size), vec), 0);
    for (size_t k = 0; k < round_page(size) / PAGE_SIZE; k++)
      resident += vec[k] & 1;
  }
  for (unsigned i = 0; i < N; i += 8) {
    cr_assert_eq(check(p[i], size, i), (size_t)-1, "a surviving block changed");
    large_free(p[i]);
  }
  return resident;
}

/* Threads allocate from arenas of their own: two threads' blocks land in
 * different SuperSlabs, so neither waits for the other's lock. A block
 * freed by the other thread goes back to its own SuperSlab, whose run is
 * found again by its allocating thread. */
static void *alloc_100k(void *arg)
{
  (void)arg;
  return malloc(opaque_size(100 * 1024));
}

static void *free_it(void *arg)
{
  free(arg);
  return NULL;
}

Test(large, threads_allocate_from_arenas_of_their_own)
{
  char *mine = malloc(opaque_size(100 * 1024));
  cr_assert_not_null(mine);
  pthread_t t;
  void *theirs = NULL;
  cr_assert_eq(pthread_create(&t, NULL, alloc_100k, NULL), 0);
  cr_assert_eq(pthread_join(t, &theirs), 0);
  cr_assert_not_null(theirs);
  cr_assert_neq(superslab_of(mine), superslab_of(theirs), "two threads' blocks share a SuperSlab (and a lock)");
  memset(theirs, 7, 100 * 1024);
  cr_assert_eq(pthread_create(&t, NULL, free_it, mine), 0); /* freed by another thread, into this one's arena */
  cr_assert_eq(pthread_join(t, NULL), 0);
  char *again = malloc(opaque_size(100 * 1024));
  cr_assert_eq(again, mine, "the run freed by another thread was not found again by its owner");
  free(again);
  free(theirs);
}

Test(large, free_runs_idle_for_a_second_are_released)
{
  size_t resident = idle_free_runs_resident();
  cr_assert_lt(resident, 56 * 25 / 4, "%zu of the %u pages of freed runs are still resident", resident, 56 * 25);
}

/* The free runs of an arena whose thread went quiet go back too: another
 * thread's large allocations, in another arena, purge them. */
static char *quiet_blocks[64];

static void *fill_and_free_in_own_arena(void *arg)
{
  (void)arg;
  for (unsigned i = 0; i < 64; i++) {
    quiet_blocks[i] = large_alloc(100 * KiB, 0, false);
    if (quiet_blocks[i]) fill(quiet_blocks[i], 100 * KiB, i);
  }
  for (unsigned i = 0; i < 64; i++)
    if (i % 8) large_free(quiet_blocks[i]);
  return NULL;
}

Test(large, a_quiet_arenas_free_runs_are_purged_by_the_others)
{
  large_free(large_alloc(1 * MiB, 0, false)); /* this thread's arena, before the other takes its own */
  pthread_t t;
  cr_assert_eq(pthread_create(&t, NULL, fill_and_free_in_own_arena, NULL), 0);
  cr_assert_eq(pthread_join(t, NULL), 0);
  for (unsigned i = 0; i < 64; i++) cr_assert_not_null(quiet_blocks[i]);
  usleep(1100 * 1000);
  for (unsigned i = 0; i < 256; i++)
    large_free(large_alloc(1 * MiB, 0, false));
  size_t resident = 0;
  unsigned char vec[100 * KiB / PAGE_SIZE + 1];
  for (unsigned i = 0; i < 64; i++) {
    if (i % 8 == 0) continue;
    cr_assert_eq(mincore(quiet_blocks[i], round_page(100 * KiB), vec), 0);
    for (size_t k = 0; k < round_page(100 * KiB) / PAGE_SIZE; k++) resident += vec[k] & 1;
  }
  cr_assert_lt(resident, 56 * 25 / 4, "%zu of the %u pages of a quiet arena's freed runs are still resident", resident,
               56 * 25);
  for (unsigned i = 0; i < 64; i += 8) large_free(quiet_blocks[i]);
}

Test(large, free_runs_stay_resident_under_lazy_zero_0)
{
  OPTION_SET(SS_LAZY_ZERO, ss_lazy_zero, 0);
  heap_trim(); /* forget the purges the test harness's blocks scheduled */
  size_t resident = idle_free_runs_resident();
  cr_assert_eq(resident, 56 * 25, "HAKMEM_SS_LAZY_ZERO=0 keeps every page, %zu of %u are resident", resident, 56 * 25);
}

/* A page supplier (the pager) moves pages into a small SuperSlab ahead of
 * the slabs it was asked for, which the SuperSlab's counts miss. A large
 * SuperSlab made of its region sees them resident (mincore), and a trim
 * gives them back. */
static const struct os_page_supplier idle_supplier = { 0 };
static struct heap small_owner;

Test(large, pages_moved_in_ahead_of_a_small_superslab_are_trimmed_in_a_large_one)
{
  lru_trim(1);
  OPTION_SET(SS_LAZY_ZERO, ss_lazy_zero, 1);
  struct superslab *ss = superslab_new(&small_owner);
  cr_assert_not_null(ss);
  char *ahead = (char *)ss + 5 * UNIT_SIZE; /* a unit never carved */
  memset(ahead, 0, UNIT_SIZE);              /* present and zero, as a move leaves them */
  superslab_retire(ss);
  /* Large SuperSlabs with room from before take the first runs. */
  static void *before[512];
  unsigned n = 0;
  void *p;
  os_set_page_supplier(&idle_supplier);
  while ((void *)large_of(p = large_alloc(64 * KiB, 0, false)) != (void *)ss && n < 512) before[n++] = p;
  os_set_page_supplier(NULL);
  cr_assert_eq((void *)large_of(p), (void *)ss, "test premise: a large block takes the cached region");
  for (unsigned pg = 5 * UNIT_PAGES; pg < 6 * UNIT_PAGES; pg++)
    cr_assert_eq(map_bit(large_of(p)->absent_map, pg), 0, "page %u, resident, is taken for absent", pg);
  heap_trim();
  unsigned char vec[UNIT_PAGES];
  cr_assert_eq(mincore(ahead, UNIT_SIZE, vec), 0);
  for (unsigned k = 0; k < UNIT_PAGES; k++)
    cr_assert_eq(vec[k] & 1, 0, "page %u moved in ahead is still resident after a trim", k);
  large_free(p);
  while (n) large_free(before[--n]);
}

Test(large, a_double_free_aborts, .signal = SIGABRT)
{
  no_core_dumps();
  void *p = malloc(opaque_size(64 * KiB));
  cr_assert_not_null(p);
  free(p);
  free(opaque(p));
}

Test(large, a_free_inside_a_run_aborts, .signal = SIGABRT)
{
  no_core_dumps();
  char *p = malloc(opaque_size(64 * KiB));
  cr_assert_not_null(p);
  free(opaque(p + PAGE_SIZE));
}

Test(large, a_free_of_a_misaligned_pointer_into_a_run_aborts, .signal = SIGABRT)
{
  no_core_dumps();
  char *p = malloc(opaque_size(64 * KiB));
  cr_assert_not_null(p);
  free(opaque(p + 16));
}

Test(large, usable_size_of_a_freed_run_aborts, .signal = SIGABRT)
{
  no_core_dumps();
  void *p = malloc(opaque_size(64 * KiB));
  void *keep = malloc(opaque_size(64 * KiB)); /* keeps the SuperSlab in use */
  cr_assert(p && keep);
  free(p);
  malloc_usable_size(opaque(p));
}

/* ---- the thread's cache of freed runs (up to 256 KiB) ---- */

TestSuite(large_cache);

Test(large_cache, a_freed_run_is_kept_claimed_and_taken_by_the_next_malloc_of_as_many_pages)
{
  char *p = malloc(opaque_size(40 * KiB));
  cr_assert_not_null(p);
  void *keep = neighbour_of(p);
  struct large_ss *l = large_of(p);
  unsigned i = page_index(p);
  free(p);
  cr_assert(l->pages[i].head, "a cached run lost its head");
  cr_assert(l->pages[i].cached, "a freed run of 10 pages was not cached");
  char *q = malloc(opaque_size(37 * KiB)); /* 10 pages too */
  cr_assert_eq(q, p, "the next 10-page malloc took %p, not the cached %p", (void *)q, (void *)p);
  cr_assert_not(l->pages[i].cached, "a run taken back is still marked cached");
  free(q);
  free(keep);
}

/* A malloc takes a cached run of its page count, else one a page longer
 * (waste under a page), never two pages longer. */
Test(large_cache, a_run_one_page_longer_serves_two_pages_longer_does_not)
{
  void *keep = malloc(opaque_size(200 * KiB));
  char *ten = malloc(opaque_size(40 * KiB));
  char *eleven = malloc(opaque_size(44 * KiB));
  cr_assert(keep && ten && eleven);
  free(eleven);
  char *nine = malloc(opaque_size(36 * KiB));
  cr_assert_neq(nine, eleven, "a 9-page malloc took an 11-page run");
  free(ten);
  char *nine_again = malloc(opaque_size(36 * KiB));
  cr_assert_eq(nine_again, ten, "a 9-page malloc did not take the cached 10-page run");
  cr_assert_eq(malloc_usable_size(nine_again), 40 * KiB);
  free(nine_again);
  free(nine);
  free(keep);
}

/* A run freed into the thread's cache, for the tests that misuse it. */
static void *cached_run(void)
{
  no_core_dumps();
  char *p = malloc(opaque_size(40 * KiB));
  cr_assert_not_null(p);
  free(p);
  cr_assert(large_of(p)->pages[page_index(p)].cached, "test premise: cached");
  return opaque(p);
}

Test(large_cache, a_double_free_of_a_cached_run_aborts, .signal = SIGABRT)
{
  free(cached_run());
}

Test(large_cache, realloc_of_a_cached_run_aborts, .signal = SIGABRT)
{
  cr_assert_not_null(realloc(cached_run(), 50 * KiB));
}

Test(large_cache, usable_size_of_a_cached_run_aborts, .signal = SIGABRT)
{
  malloc_usable_size(cached_run());
}

/* calloc goes the locked way, which knows clean pages: a cached run holds
 * old bytes. */
Test(large_cache, calloc_never_takes_a_cached_run)
{
  char *p = malloc(opaque_size(40 * KiB));
  cr_assert_not_null(p);
  fill(p, 40 * KiB, 3);
  free(p);
  char *q = calloc(1, opaque_size(40 * KiB));
  cr_assert_not_null(q);
  for (size_t k = 0; k < 40 * KiB; k++)
    cr_assert_eq(q[k], 0, "byte %zu of a calloc'd run is %d", k, q[k]);
  free(q);
}

/* Mallocs n runs of size bytes and frees them, beside a live run of
 * another size that keeps their SuperSlabs in use; returns how many the
 * thread's cache kept. A run it did not keep must be free. */
static unsigned free_runs_counting_cached(unsigned n, size_t size)
{
  char **runs = calloc(n, sizeof *runs);
  cr_assert_not_null(runs);
  for (unsigned k = 0; k < n; k++)
    cr_assert_not_null(runs[k] = malloc(opaque_size(size)));
  void *keep = malloc(opaque_size(100 * KiB));
  unsigned cached = 0;
  for (unsigned k = 0; k < n; k++) {
    struct large_ss *l = large_of(runs[k]);
    unsigned i = page_index(runs[k]);
    free(runs[k]);
    cached += (unsigned)l->pages[i].cached;
    if (!l->pages[i].cached)
      cr_assert_not(l->pages[i].head, "run %u was neither cached nor freed", k);
  }
  free(keep);
  free(runs);
  return cached;
}

/* A list keeps at most 64 runs: the rest of 70 freed runs of one size go
 * back to their SuperSlab at once. */
Test(large_cache, a_list_keeps_sixty_four_runs)
{
  large_cache_flush(); /* what the test runner's own frees left */
  unsigned cached = free_runs_counting_cached(70, 40 * KiB);
  cr_assert_eq(cached, 64, "%u runs of 40 KiB cached", cached);
}

/* A thread keeps at most 8 MiB: of 40 freed runs of 256 KiB, 32. */
Test(large_cache, a_thread_keeps_eight_mib)
{
  large_cache_flush(); /* what the test runner's own frees left */
  unsigned cached = free_runs_counting_cached(40, 256 * KiB);
  cr_assert_eq(cached, 32, "%u runs of 256 KiB cached", cached);
}

/* Idle threads: n threads run fn(b), which ends in idle_until_stopped(b);
 * the test runs between idle_threads_start and _stop. */
static void idle_threads_start(pthread_t *t, unsigned n, pthread_barrier_t *b, void *(*fn)(void *))
{
  cr_assert_eq(pthread_barrier_init(b, NULL, n + 1), 0);
  for (unsigned i = 0; i < n; i++)
    cr_assert_eq(pthread_create(&t[i], NULL, fn, b), 0);
  pthread_barrier_wait(b);
}

/* An idle thread's part: ready, then idle until the test stops it. */
static void idle_until_stopped(pthread_barrier_t *b)
{
  pthread_barrier_wait(b);
  pthread_barrier_wait(b);
}

static void idle_threads_stop(pthread_t *t, unsigned n, pthread_barrier_t *b)
{
  pthread_barrier_wait(b);
  for (unsigned k = 0; k < n; k++)
    pthread_join(t[k], NULL);
  pthread_barrier_destroy(b);
}

static _Atomic unsigned threads_with_full_caches;

static void *fill_the_cache_and_wait(void *arg)
{
  free(malloc(16)); /* a heap: only a thread with one caches runs */
  if (free_runs_counting_cached(40, 256 * KiB) == 32) threads_with_full_caches++;
  idle_until_stopped(arg);
  return NULL;
}

/* Four idle threads with full caches leave room for another's: the
 * budget of all threads is eight threads' worth. */
Test(large_cache, four_idle_threads_with_full_caches_leave_room_for_another)
{
  enum { T = 4 };
  pthread_t t[T];
  pthread_barrier_t b;
  idle_threads_start(t, T, &b, fill_the_cache_and_wait);
  cr_assert_eq(threads_with_full_caches, T, "test premise: %u of %u threads filled their 8 MiB", threads_with_full_caches, T);
  large_cache_flush();
  unsigned cached = free_runs_counting_cached(40, 256 * KiB);
  cr_assert_eq(cached, 32, "beside %u idle threads with full caches, this thread cached %u runs of 256 KiB", T, cached);
  idle_threads_stop(t, T, &b);
}

struct large_only_job {
  unsigned cached, had_heap_before, has_heap_after;
};

static void *free_runs_without_a_heap(void *arg)
{
  struct large_only_job *j = arg;
  enum { N = 100 };
  static char *runs[N];
  for (unsigned k = 0; k < N; k++)
    runs[k] = malloc(opaque_size(40 * KiB));
  j->had_heap_before = hk_tcache.heap != NULL;
  for (unsigned k = 0; k < N; k++) {
    if (!runs[k]) continue;
    struct large_ss *l = large_of(runs[k]);
    unsigned i = page_index(runs[k]);
    free(runs[k]);
    j->cached += l->pages[i].cached;
  }
  j->has_heap_after = hk_tcache.heap != NULL;
  return NULL;
}

/* A thread that allocates only large blocks gets a heap at its 65th
 * free, and from then on a cache of runs: blocks of 32 KiB + 1 and 64
 * KiB + 1, 128 live, malloc'd and freed at random, ran 10.9M ops/s when
 * no free was ever cached, 176M so (tcmalloc 304M). */
Test(large_cache, a_thread_of_large_blocks_only_caches_runs_from_its_65th_free)
{
  struct large_only_job j = { 0, 0, 0 };
  pthread_t t;
  cr_assert_eq(pthread_create(&t, NULL, free_runs_without_a_heap, &j), 0);
  cr_assert_eq(pthread_join(t, NULL), 0);
  cr_assert_not(j.had_heap_before, "test premise: the thread made no small block");
  cr_assert(j.has_heap_after, "a thread that freed 100 runs has no heap");
  cr_assert_eq(j.cached, 36, "of 100 runs freed, %u were cached, not the 36 after the 64th", j.cached);
}

static char *thread_runs[4];

static void *free_runs_and_exit(void *arg)
{
  (void)arg;
  free(malloc(16)); /* a heap: only a thread with one caches runs */
  for (unsigned k = 0; k < 4; k++) {
    thread_runs[k] = malloc(opaque_size(48 * KiB));
    cr_assert_not_null(thread_runs[k]);
  }
  for (unsigned k = 0; k < 4; k++)
    free(thread_runs[k]);
  cr_assert(large_of(thread_runs[0])->pages[page_index(thread_runs[0])].cached, "test premise: cached");
  return NULL;
}

/* A thread's cached runs go back when it exits, and when it trims. */
Test(large_cache, a_threads_exit_flushes_its_cache)
{
  void *keep = malloc(opaque_size(200 * KiB));
  pthread_t t;
  cr_assert_eq(pthread_create(&t, NULL, free_runs_and_exit, NULL), 0);
  cr_assert_eq(pthread_join(t, NULL), 0);
  for (unsigned k = 0; k < 4; k++) {
    struct large_ss *l = large_of(thread_runs[k]);
    unsigned i = page_index(thread_runs[k]);
    cr_assert_not(l->pages[i].cached, "run %u is still cached after its thread exited", k);
    cr_assert_not(l->pages[i].head, "run %u is not free after its thread exited", k);
  }
  free(keep);
}

Test(large_cache, malloc_trim_flushes_the_callers_cache)
{
  void *keep = malloc(opaque_size(200 * KiB));
  char *p = malloc(opaque_size(48 * KiB));
  cr_assert_not_null(p);
  struct large_ss *l = large_of(p);
  unsigned i = page_index(p);
  free(p);
  cr_assert(l->pages[i].cached, "test premise: cached");
  malloc_trim(0);
  cr_assert_not(l->pages[i].cached, "malloc_trim left the run cached");
  cr_assert_not(l->pages[i].head, "malloc_trim left the run claimed");
  free(keep);
}

/* The purge's check runs on the cache's operations too: a thread whose
 * large mallocs and frees all hit its cache still gives back the free
 * runs of its SuperSlabs a second after they were freed. */
Test(large_cache, free_runs_go_back_while_the_cache_serves)
{
  enum { N = 32 };
  const size_t size = 300 * KiB; /* 75 pages: never cached */
  char *p[N];
  for (unsigned i = 0; i < N; i++) {
    p[i] = malloc(opaque_size(size));
    cr_assert_not_null(p[i]);
    fill(p[i], size, i);
  }
  for (unsigned i = 0; i < N; i++)
    if (i % 4)
      free(p[i]);
  usleep(1100 * 1000);
  /* All but the first from the cache; each look releases one SuperSlab's
   * free runs, and these are spread over a few. */
  for (unsigned i = 0; i < 4096; i++)
    free(malloc(opaque_size(40 * KiB)));
  size_t resident = 0;
  unsigned char vec[300 * KiB / PAGE_SIZE + 1];
  for (unsigned i = 0; i < N; i++) {
    if (i % 4 == 0)
      continue;
    cr_assert_eq(mincore(p[i], round_page(size), vec), 0);
    for (size_t k = 0; k < round_page(size) / PAGE_SIZE; k++)
      resident += vec[k] & 1;
  }
  cr_assert_lt(resident, 24 * 75 / 4, "%zu of the %u pages of freed runs are still resident", resident, 24 * 75);
  for (unsigned i = 0; i < N; i += 4) {
    cr_assert_eq(check(p[i], size, i), (size_t)-1, "a surviving block changed");
    free(p[i]);
  }
}

static _Atomic unsigned threads_cached;

static void *cache_one_run_and_wait(void *arg)
{
  free(malloc(16)); /* a heap: only a thread with one caches runs */
  char *p = malloc(opaque_size(40 * KiB));
  free(p);
  if (large_of(p)->pages[page_index(p)].cached) threads_cached++;
  idle_until_stopped(arg);
  return NULL;
}

/* A thread that cached one run holds a step of the budget (32 pages), not
 * more: 80 such threads leave room for another thread's cache (in steps
 * of 128 pages, 64 threads held all 8192). */
Test(large_cache, idle_threads_do_not_hold_the_whole_budget)
{
  enum { T = 80 };
  pthread_t t[T];
  pthread_barrier_t b;
  idle_threads_start(t, T, &b, cache_one_run_and_wait);
  void *keep = malloc(opaque_size(200 * KiB));
  char *p = malloc(opaque_size(40 * KiB));
  cr_assert_not_null(p);
  struct large_ss *l = large_of(p);
  unsigned i = page_index(p);
  free(p);
  cr_assert_eq(threads_cached, T, "only %u of %u threads could cache a run", threads_cached, T);
  cr_assert(l->pages[i].cached, "with %u threads each holding one cached run, this thread could not cache", T);
  idle_threads_stop(t, T, &b);
  free(keep);
}
