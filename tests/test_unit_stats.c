/* Description: unit tests of lib/stats.h and hakmem_stats_get/print. The
 * snapshot carries its version and size and fills every field; stats_add,
 * stats_set, stats_supply and stats_fault_wait move exactly what they name;
 * the counters follow SuperSlabs, huge blocks, remote frees and kernel
 * calls, and mapped SuperSlabs add up to live, cached and unmapped ones
 * when huge blocks take their regions; the page-supply ledger counts pages
 * by the path that supplied them: fresh pages of a first allocation
 * (timed), refaults of a region released by lazy zeroing and reused (only
 * of the pages its last use touched; a grown huge region's extension is
 * fresh), resident reuse with policy 0, reuse after MADV_FREE with policy
 * 2, for slabs and huge blocks alike, runs from a thread's run cache as
 * reuse, and mremap's cut tail as released; and
 * hakmem_stats_print writes the counters and the ledger ("hakmem: supply
 * fresh ...") to a file descriptor, with numbers that match the snapshot. */
#include <criterion/criterion.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "heap.h"
#include "large.h"
#include "lru.h"
#include "options.h"
#include "os.h"
#include "region_map.h"
#include "size_class.h"
#include "slab.h"
#include "stats.h"
#include "superslab.h"
#include "types.h"
#include "unit_helpers.h"

#define MiB ((size_t)1 << 20)
#define SLAB_PAGES (UNIT_SIZE / PAGE_SIZE)
#define SS_SLAB_PAGES ((UNITS_PER_SS - 1) * SLAB_PAGES) /* pages of a SuperSlab's 31 slabs */

static struct heap test_heap;

#define DELTA(a, b, field) ((long long)((a).field - (b).field))
#define ROW(a, b, path, col) DELTA(a, b, supply[HAKMEM_SUPPLY_##path].col)

/* Carve every unit of ss into slabs of 4 KiB blocks and take all of them:
 * every slab page is supplied. */
static void fill_superslab(struct superslab *ss)
{
  for (unsigned u = 1; u < UNITS_PER_SS; u++) {
    struct slab *s = superslab_carve_slab(ss, size_to_class(PAGE_SIZE));
    cr_assert_not_null(s);
    struct free_block *head, *tail;
    while (slab_take(s, 16, 1, &head, &tail))
      ;
    memset(s->start, 0x5C, UNIT_SIZE);
  }
}

static void empty_superslab(struct superslab *ss)
{
  for (unsigned u = 1; u < UNITS_PER_SS; u++)
    if (ss->slabs[u].owner)
      superslab_return_slab(ss, &ss->slabs[u]);
}

/* A SuperSlab of a cache emptied first, under lazy-zero `policy`. */
static struct superslab *superslab_under_policy(int policy)
{
  lru_trim(1);
  OPTION_SET(SS_LAZY_ZERO, ss_lazy_zero, policy);
  struct superslab *ss = superslab_new(&test_heap);
  cr_assert_not_null(ss);
  return ss;
}

/* A SuperSlab used whole, cached with `policy` and released (lru_trim(0)),
 * then taken again: returns it and the stats before its second filling. */
static struct superslab *reused_superslab(int policy, struct hakmem_stats *before)
{
  struct superslab *ss = superslab_under_policy(policy);
  fill_superslab(ss);
  empty_superslab(ss);
  superslab_retire(ss);
  lru_trim(0);
  *before = snap();
  struct superslab *again = superslab_new(&test_heap);
  cr_assert_eq(again, ss, "the cached SuperSlab was not reused");
  fill_superslab(again);
  return again;
}

/* ---- the snapshot ---- */

Test(stats, the_snapshot_is_versioned_and_fills_every_field)
{
  struct hakmem_stats s;
  memset(&s, 0xA5, sizeof s);
  cr_assert_eq(hakmem_stats_get(&s), 0);
  cr_assert_eq(s.version, HAKMEM_STATS_VERSION);
  cr_assert_eq(s.size, sizeof s);
  const uint64_t *w = (const uint64_t *)((const char *)&s + 8);
  size_t words = (sizeof s - 8) / 8;
  for (size_t i = 0; i < words; i++)
    cr_assert_neq(w[i], 0xA5A5A5A5A5A5A5A5ull, "word %zu of the snapshot was not filled", i);
  if (!hakmem_pager_active()) {
    cr_assert_eq(s.pager_faults, 0);
    cr_assert_eq(s.supply[HAKMEM_SUPPLY_UFFD_MOVE].pages, 0);
    cr_assert_eq(s.supply[HAKMEM_SUPPLY_DIRECT].pages, 0);
  }
}

Test(stats, add_set_supply_and_fault_wait_move_what_they_name)
{
  struct hakmem_stats s0 = snap();
  stats_add(STAT_pager_recycled, 5);
  stats_add(STAT_pager_recycled, -3);
  stats_set(STAT_pager_pool_pages, 1234);
  stats_supply(HAKMEM_SUPPLY_UFFD_ZERO, 10, 2, 300);
  stats_supply(HAKMEM_SUPPLY_UFFD_ZERO, 6, 1, 0);
  stats_fault_wait(100);     /* below 256 ns: bucket 0 */
  stats_fault_wait(1000);    /* 512..1023 ns: bucket 2 */
  stats_fault_wait(UINT64_MAX / 2);
  struct hakmem_stats s1 = snap();
  cr_assert_eq(DELTA(s1, s0, pager_recycled), 2);
  cr_assert_eq(s1.pager_pool_pages, 1234);
  cr_assert_eq(ROW(s1, s0, UFFD_ZERO, pages), 16);
  cr_assert_eq(ROW(s1, s0, UFFD_ZERO, events), 3);
  cr_assert_eq(ROW(s1, s0, UFFD_ZERO, wait_ns), 300);
  cr_assert_eq(ROW(s1, s0, UFFD_COPY, pages), 0, "another row moved");
  cr_assert_eq(DELTA(s1, s0, fault_wait_hist[0]), 1);
  cr_assert_eq(DELTA(s1, s0, fault_wait_hist[2]), 1);
  cr_assert_eq(DELTA(s1, s0, fault_wait_hist[HAKMEM_WAIT_BUCKETS - 1]), 1);
  for (int b = 0; b < HAKMEM_WAIT_BUCKETS; b++)
    if (b != 0 && b != 2 && b != HAKMEM_WAIT_BUCKETS - 1)
      cr_assert_eq(DELTA(s1, s0, fault_wait_hist[b]), 0, "bucket %d moved", b);
}

/* ---- counters ---- */

Test(stats, superslab_counters_follow_their_life)
{
  lru_trim(1);
  OPTION_SET(SS_LAZY_ZERO, ss_lazy_zero, 1);
  struct hakmem_stats s0 = snap();
  struct superslab *ss = superslab_new(&test_heap);
  struct hakmem_stats s1 = snap();
  cr_assert_eq(DELTA(s1, s0, ss_live), 1);
  cr_assert_eq(DELTA(s1, s0, ss_mapped_total), 1);
  cr_assert_geq(DELTA(s1, s0, mmap_calls), 1);
  cr_assert_eq(DELTA(s1, s0, bytes_mapped), (long long)REGION_SIZE);
  struct slab *s = superslab_carve_slab(ss, 3);
  cr_assert_not_null(s);
  struct hakmem_stats s2 = snap();
  cr_assert_eq(DELTA(s2, s1, slabs_carved), 1);
  superslab_return_slab(ss, s);
  superslab_retire(ss);
  struct hakmem_stats s3 = snap();
  cr_assert_eq(DELTA(s3, s2, ss_live), -1);
  cr_assert_eq(DELTA(s3, s2, ss_cached), 1);
  cr_assert_eq(superslab_new(&test_heap), ss);
  struct hakmem_stats s4 = snap();
  cr_assert_eq(DELTA(s4, s3, ss_reused_total), 1);
  cr_assert_eq(DELTA(s4, s3, ss_cached), -1);
  cr_assert_eq(DELTA(s4, s3, ss_live), 1);
  cr_assert_eq(DELTA(s4, s3, mmap_calls), 0);
  superslab_retire(ss);
  lru_trim(1);
  struct hakmem_stats s5 = snap();
  cr_assert_eq(DELTA(s5, s4, ss_unmapped_total), 1);
  cr_assert_eq(DELTA(s5, s4, munmap_calls), 1);
  cr_assert_eq(DELTA(s5, s4, bytes_mapped), -(long long)REGION_SIZE);
  cr_assert_eq(s5.ss_cached, 0);
}

Test(stats, huge_block_counters)
{
  struct hakmem_stats s0 = snap();
  void *p = malloc(opaque_size(5 * MiB));
  cr_assert_not_null(p);
  size_t size = region_of(p)->size;
  struct hakmem_stats s1 = snap();
  cr_assert_eq(DELTA(s1, s0, huge_live), 1);
  cr_assert_eq(DELTA(s1, s0, bytes_in_use), (long long)size);
  free(p);
  struct hakmem_stats s2 = snap();
  cr_assert_eq(DELTA(s2, s1, huge_live), -1);
  cr_assert_eq(DELTA(s2, s1, bytes_in_use), -(long long)size);
}

static void *free_it(void *p)
{
  free(p);
  return NULL;
}

Test(stats, remote_frees_are_counted_when_the_owner_takes_them_back)
{
  enum { N = 10 };
  void *blocks[N];
  for (int i = 0; i < N; i++)
    cr_assert_not_null(blocks[i] = malloc(opaque_size(48)));
  struct hakmem_stats s0 = snap();
  for (int i = 0; i < N; i++) {
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, free_it, blocks[i]), 0);
    cr_assert_eq(pthread_join(t, NULL), 0);
  }
  malloc_trim(0);
  struct hakmem_stats s1 = snap();
  cr_assert_eq(DELTA(s1, s0, remote_frees), N, "%d remote frees, %lld counted", N, DELTA(s1, s0, remote_frees));
}

Test(stats, kernel_calls_are_counted_and_timed)
{
  const size_t len = 64 * PAGE_SIZE;
  /* A mapping of the test's own, with no huge pages: one fault a page. */
  char *own = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  cr_assert_neq(own, MAP_FAILED);
  madvise(own, len, MADV_NOHUGEPAGE);
  struct hakmem_stats s0 = snap();
  memset(own, 1, len);
  struct hakmem_stats s1 = snap();
  cr_assert_geq(DELTA(s1, s0, minor_faults), 64, "touching 64 fresh pages took %lld minor faults",
                DELTA(s1, s0, minor_faults));
  cr_assert_eq(os_release(own, len, OS_RELEASE_DONTNEED), 0);
  struct hakmem_stats s2 = snap();
  cr_assert_eq(DELTA(s2, s1, madvise_calls), 1);
  cr_assert_gt(DELTA(s2, s1, madvise_ns), 0, "an madvise took no time");
  cr_assert_eq(DELTA(s2, s1, pages_released), 64);
  munmap(own, len);

  char *m = os_map_aligned(len, PAGE_SIZE);
  cr_assert_not_null(m);
  struct hakmem_stats s3 = snap();
  cr_assert_geq(DELTA(s3, s2, mmap_calls), 1);
  cr_assert_gt(DELTA(s3, s2, mmap_ns), 0);
  cr_assert_eq(DELTA(s3, s2, bytes_mapped), (long long)len);
  cr_assert_eq(os_unmap(m, len, len), 0);
  struct hakmem_stats s4 = snap();
  cr_assert_eq(DELTA(s4, s3, munmap_calls), 1);
  cr_assert_gt(DELTA(s4, s3, munmap_ns), 0);
  cr_assert_eq(DELTA(s4, s3, bytes_mapped), -(long long)len);
  cr_assert_eq(DELTA(s4, s3, pages_released), 64);
}

/* ---- the page-supply ledger ---- */

Test(stats, fresh_pages_of_first_allocations)
{
  os_test_set_threaded(false); /* single pages populated too, as in one thread */
  lru_trim(1);
  struct hakmem_stats s0 = snap();
  struct superslab *ss = superslab_new(&test_heap);
  cr_assert_eq(ss->h.pages, HAKMEM_SUPPLY_FRESH);
  fill_superslab(ss);
  struct hakmem_stats s1 = snap();
  cr_assert_eq(ROW(s1, s0, FRESH, pages), SS_SLAB_PAGES, "fresh pages %lld for %zu slab pages",
               ROW(s1, s0, FRESH, pages), SS_SLAB_PAGES);
  cr_assert_geq(ROW(s1, s0, FRESH, events), (long long)(UNITS_PER_SS - 1), "one supply call per slab at least");
  cr_assert_gt(ROW(s1, s0, FRESH, wait_ns), 0, "populating fresh pages took no time");
  cr_assert_eq(ROW(s1, s0, REFAULT, pages), 0);
  cr_assert_eq(ROW(s1, s0, REUSE, pages), 0);

  /* A huge block: all its pages but the header's, at once. */
  void *p = malloc(opaque_size(3 * MiB));
  cr_assert_not_null(p);
  struct hakmem_stats s2 = snap();
  cr_assert_eq(region_of(p)->pages, HAKMEM_SUPPLY_FRESH);
  cr_assert_eq(ROW(s2, s1, FRESH, pages), (long long)(region_of(p)->size / PAGE_SIZE - 1));
  free(p);
  empty_superslab(ss);
  superslab_retire(ss);
}

/* Above 4 KiB, a block's other pages are the program's to fault in: the
 * ledger counts them, with no kernel call, and they stay absent until
 * written. */
Test(stats, pages_of_classes_above_a_page_are_left_to_the_program)
{
  lru_trim(1);
  struct superslab *ss = superslab_new(&test_heap);
  cr_assert_not_null(ss);
  struct hakmem_stats s0 = snap();
  struct slab *s = superslab_carve_slab(ss, size_to_class(SMALL_MAX));
  cr_assert_not_null(s);
  struct free_block *head, *tail;
  cr_assert_eq(slab_take(s, 1, 1, &head, &tail), 1);
  cr_assert_eq(slab_take(s, 1, 1, &head, &tail), 1);
  struct hakmem_stats s1 = snap();
  cr_assert_eq(ROW(s1, s0, FRESH, pages), 2 * SMALL_MAX / PAGE_SIZE);
  cr_assert_eq(ROW(s1, s0, FRESH, events), 0, "pages of 32 KiB blocks were populated");
  unsigned char vec[2 * SMALL_MAX / PAGE_SIZE];
  cr_assert_eq(mincore(s->start, 2 * SMALL_MAX, vec), 0);
  for (size_t i = 0; i < sizeof vec; i++)
    cr_assert_eq(vec[i] & 1, i % (SMALL_MAX / PAGE_SIZE) == 0, "page %zu of two 32 KiB blocks: present %d", i,
                 vec[i] & 1);
  superslab_return_slab(ss, s);
  superslab_retire(ss);
}

/* A SuperSlab in use (its second slab `*keep` stays) whose first slab
 * of 4 KiB blocks wrote `pages` pages and went back to it, a free unit
 * with those pages resident. Returns the unit. */
static char *unit_freed_with_pages(struct superslab **ss, struct slab **keep, unsigned pages)
{
  lru_trim(1);
  *ss = superslab_new(&test_heap);
  cr_assert_not_null(*ss);
  struct slab *a = superslab_carve_slab(*ss, size_to_class(PAGE_SIZE));
  *keep = superslab_carve_slab(*ss, size_to_class(PAGE_SIZE));
  cr_assert(a && *keep);
  struct free_block *head, *tail;
  for (unsigned i = 0; i < pages; i++)
    cr_assert_eq(slab_take(a, 1, 1, &head, &tail), 1);
  memset(a->start, 0x5C, (size_t)pages * PAGE_SIZE);
  superslab_return_slab(*ss, a);
  return a->start;
}

/* Carve the unit again and write all of it. */
static void refill_unit(struct superslab *ss, char *unit)
{
  struct slab *a = superslab_carve_slab(ss, size_to_class(PAGE_SIZE));
  cr_assert_eq(a->start, unit);
  struct free_block *head, *tail;
  while (slab_take(a, 16, 1, &head, &tail))
    ;
  superslab_return_slab(ss, a);
}

/* malloc_trim releases the free units of a SuperSlab in use: their pages
 * are absent, and refault when the unit is carved again. */
Test(stats, a_trimmed_free_unit_refaults)
{
  struct superslab *ss;
  struct slab *keep;
  char *unit = unit_freed_with_pages(&ss, &keep, SLAB_PAGES);
  struct hakmem_stats s0 = snap();
  cr_assert_eq(superslab_release_free_units(ss), UNIT_SIZE);
  struct hakmem_stats s1 = snap();
  cr_assert_eq(DELTA(s1, s0, pages_released), SLAB_PAGES);
  unsigned char vec[SLAB_PAGES];
  cr_assert_eq(mincore(unit, UNIT_SIZE, vec), 0);
  for (size_t i = 0; i < sizeof vec; i++)
    cr_assert_eq(vec[i] & 1, 0, "page %zu of a trimmed unit is resident", i);
  cr_assert_eq(superslab_release_free_units(ss), 0, "nothing left to release");
  refill_unit(ss, unit);
  struct hakmem_stats s2 = snap();
  cr_assert_eq(ROW(s2, s1, REFAULT, pages), SLAB_PAGES);
  cr_assert_eq(ROW(s2, s1, FRESH, pages), 0);
  superslab_return_slab(ss, keep);
  superslab_retire(ss);
}

/* Only the pages a release gave back refault; those past them are new. */
Test(stats, only_released_pages_refault)
{
  struct superslab *ss;
  struct slab *keep;
  char *unit = unit_freed_with_pages(&ss, &keep, 8); /* 8 of the unit's 16 pages */
  cr_assert_eq(superslab_release_free_units(ss), 8 * PAGE_SIZE);
  struct hakmem_stats s1 = snap();
  refill_unit(ss, unit);
  struct hakmem_stats s2 = snap();
  cr_assert_eq(ROW(s2, s1, REFAULT, pages), 8);
  cr_assert_eq(ROW(s2, s1, FRESH, pages), 8);
  superslab_return_slab(ss, keep);
  superslab_retire(ss);
}

/* The free runs of a large SuperSlab in use go too, and refault. */
Test(stats, trimmed_large_runs_refault)
{
  large_cache_test_enable(false); /* the run is freed, not kept in the thread's cache */
  lru_trim(1);
  const size_t size = 25 * PAGE_SIZE;
  char *p = malloc(opaque_size(size));
  char *keep = malloc(opaque_size(size));
  cr_assert(p && keep);
  memset(p, 0x5C, size);
  free(p);
  struct hakmem_stats s0 = snap();
  cr_assert_geq(heap_trim(), size);
  struct hakmem_stats s1 = snap();
  cr_assert_geq(DELTA(s1, s0, pages_released), 25);
  char *again = calloc(1, opaque_size(size));
  cr_assert_eq(again, p, "first fit takes the trimmed run again");
  for (size_t i = 0; i < size; i++)
    cr_assert_eq(again[i], 0, "byte %zu of a trimmed run is not zero", i);
  struct hakmem_stats s2 = snap();
  cr_assert_eq(ROW(s2, s1, REFAULT, pages), 25);
  cr_assert_eq(ROW(s2, s1, REUSE, pages), 0);
  free(again);
  free(keep);
}

Test(stats, refault_after_a_region_released_by_lazy_zeroing_is_reused)
{
  os_test_set_threaded(false); /* single pages populated too, as in one thread */
  struct hakmem_stats s0;
  struct superslab *ss = reused_superslab(1, &s0);
  struct hakmem_stats s1 = snap();
  cr_assert_eq(ROW(s1, s0, REFAULT, pages), SS_SLAB_PAGES, "refault pages %lld, expected %zu",
               ROW(s1, s0, REFAULT, pages), SS_SLAB_PAGES);
  cr_assert_gt(ROW(s1, s0, REFAULT, wait_ns), 0);
  cr_assert_eq(ROW(s1, s0, FRESH, pages), 0, "a reused region's pages were counted fresh");
  cr_assert_eq(ROW(s1, s0, REUSE, pages), 0);
  empty_superslab(ss);
  superslab_retire(ss);
}

/* A region released whole by lazy zeroing: the pages its last use had
 * resident refault when supplied again, its never-used units come fresh. */
Test(stats, a_region_released_whole_refaults_only_what_its_last_use_touched)
{
  struct superslab *ss = superslab_under_policy(1);
  const unsigned used = 3;
  for (unsigned u = 0; u < used; u++) {
    struct slab *s = superslab_carve_slab(ss, size_to_class(PAGE_SIZE));
    cr_assert_not_null(s);
    struct free_block *head, *tail;
    while (slab_take(s, 16, 1, &head, &tail))
      ;
  }
  empty_superslab(ss);
  superslab_retire(ss);
  lru_trim(0);
  cr_assert_eq(ss->h.pages, HAKMEM_SUPPLY_REFAULT, "test premise: the region was released");
  struct hakmem_stats s0 = snap();
  struct superslab *again = superslab_new(&test_heap);
  cr_assert_eq(again, ss, "the cached SuperSlab was not reused");
  fill_superslab(again);
  struct hakmem_stats s1 = snap();
  cr_assert_eq(ROW(s1, s0, REFAULT, pages), used * SLAB_PAGES, "refault pages %lld", ROW(s1, s0, REFAULT, pages));
  cr_assert_eq(ROW(s1, s0, FRESH, pages), SS_SLAB_PAGES - used * SLAB_PAGES, "fresh pages %lld",
               ROW(s1, s0, FRESH, pages));
  empty_superslab(again);
  superslab_retire(again);
}

/* A released huge region grown by mremap for a bigger block: its old
 * pages refault, the extension is fresh. */
Test(stats, a_released_region_grown_for_a_bigger_block_is_fresh_past_its_old_end)
{
  lru_trim(1);
  OPTION_SET(SS_LAZY_ZERO, ss_lazy_zero, 1);
  char *p = malloc(opaque_size(3 * MiB));
  cr_assert_not_null(p);
  memset(p, 0x5C, 3 * MiB);
  size_t old = region_of(p)->size;
  free(p);
  lru_trim(0);
  struct hakmem_stats s0 = snap();
  char *q = malloc(opaque_size(5 * MiB));
  struct hakmem_stats s1 = snap();
  cr_assert_not_null(q);
  size_t grown = region_of(q)->size;
  cr_assert_gt(grown, old);
  cr_assert_eq(ROW(s1, s0, REFAULT, pages), (long long)(old / PAGE_SIZE - 1), "refault pages %lld",
               ROW(s1, s0, REFAULT, pages));
  cr_assert_eq(ROW(s1, s0, FRESH, pages), (long long)((grown - old) / PAGE_SIZE), "fresh pages %lld",
               ROW(s1, s0, FRESH, pages));
  free(q);
}

static void assert_superslabs_add_up(const struct hakmem_stats *s, const char *when)
{
  cr_assert_eq(s->ss_mapped_total, s->ss_live + s->ss_cached + s->ss_unmapped_total,
               "%s: mapped %llu, live %llu + cached %llu + unmapped %llu", when, (unsigned long long)s->ss_mapped_total,
               (unsigned long long)s->ss_live, (unsigned long long)s->ss_cached,
               (unsigned long long)s->ss_unmapped_total);
}

/* A cached SuperSlab's region made a huge block's leaves the SuperSlabs'
 * counts, and one made a SuperSlab again joins them. */
Test(stats, superslabs_add_up_when_huge_blocks_take_their_regions)
{
  struct superslab *ss = superslab_under_policy(0);
  superslab_retire(ss);
  struct hakmem_stats s0 = snap();
  assert_superslabs_add_up(&s0, "cached");
  void *p = malloc(opaque_size(3 * MiB / 2));
  cr_assert_eq(region_of(p), &ss->h, "test premise: the huge block takes the cached SuperSlab");
  struct hakmem_stats s1 = snap();
  cr_assert_eq(DELTA(s1, s0, ss_unmapped_total), 1);
  cr_assert_eq(DELTA(s1, s0, ss_reused_total), 0);
  assert_superslabs_add_up(&s1, "taken by a huge block");
  free(p);
  struct superslab *back = superslab_new(&test_heap);
  cr_assert_not_null(back);
  struct hakmem_stats s2 = snap();
  assert_superslabs_add_up(&s2, "a SuperSlab again");
  superslab_retire(back);
  lru_trim(1);
  struct hakmem_stats s3 = snap();
  assert_superslabs_add_up(&s3, "unmapped");
}

/* A region that lazy zeroing released counts its pages as released then,
 * and its unmapping later only the header page the release kept. */
Test(stats, a_released_region_unmapped_later_counts_its_pages_once)
{
  struct superslab *ss = superslab_under_policy(1);
  fill_superslab(ss);
  empty_superslab(ss);
  superslab_retire(ss);
  struct hakmem_stats s0 = snap();
  lru_trim(0);
  struct hakmem_stats s1 = snap();
  cr_assert_eq(DELTA(s1, s0, pages_released), (long long)(PAGES_PER_REGION - 1));
  lru_trim(1);
  struct hakmem_stats s2 = snap();
  cr_assert_eq(DELTA(s2, s1, ss_unmapped_total), 1);
  cr_assert_eq(DELTA(s2, s1, pages_released), 1, "the unmapping counted %lld pages", DELTA(s2, s1, pages_released));
}

/* A large run the thread's run cache hands out again is counted, as
 * every block's pages are, by the state they were in: reused. */
Test(stats, runs_from_the_run_cache_count_as_reuse)
{
  free(malloc(16)); /* the thread gets a heap, which a run cache needs */
  void *p = malloc(opaque_size(40000));
  cr_assert_not_null(p);
  memset(p, 0x5C, 40000);
  free(p);
  struct hakmem_stats s0 = snap();
  for (int i = 0; i < 100; i++) {
    void *q = malloc(opaque_size(40000));
    cr_assert_eq(q, p, "round %d: the run did not come from the thread's cache", i);
    free(q);
  }
  struct hakmem_stats s1 = snap();
  cr_assert_eq(ROW(s1, s0, REUSE, pages), 100 * 10, "reuse pages %lld", ROW(s1, s0, REUSE, pages));
  cr_assert_eq(ROW(s1, s0, FRESH, pages), 0);
}

/* A huge block shrunk by mremap gives its tail back to the kernel. */
Test(stats, a_huge_block_shrunk_by_mremap_counts_its_tail_released)
{
  char *p = malloc(opaque_size(8 * MiB));
  cr_assert_not_null(p);
  memset(p, 0x5C, 8 * MiB);
  size_t old = region_of(p)->size;
  struct hakmem_stats s0 = snap();
  char *q = realloc(p, opaque_size(2 * MiB));
  cr_assert_eq(q, p, "test premise: the block shrinks in place");
  size_t now = region_of(q)->size;
  struct hakmem_stats s1 = snap();
  cr_assert_lt(now, old);
  cr_assert_eq(DELTA(s1, s0, pages_released), (long long)((old - now) / PAGE_SIZE));
  cr_assert_eq(DELTA(s1, s0, bytes_mapped), -(long long)(old - now));
  free(q);
}

Test(stats, reuse_with_policy_0)
{
  struct hakmem_stats s0;
  struct superslab *ss = reused_superslab(0, &s0);
  struct hakmem_stats s1 = snap();
  cr_assert_eq(ROW(s1, s0, REUSE, pages), SS_SLAB_PAGES, "reused pages %lld, expected %zu",
               ROW(s1, s0, REUSE, pages), SS_SLAB_PAGES);
  cr_assert_eq(ROW(s1, s0, REFAULT, pages), 0);
  cr_assert_eq(ROW(s1, s0, FRESH, pages), 0);
  cr_assert_eq(DELTA(s1, s0, madvise_calls), 0, "resident pages were populated again");
  empty_superslab(ss);
  superslab_retire(ss);
}

Test(stats, reuse_after_madv_free_with_policy_2)
{
  struct hakmem_stats s0;
  struct superslab *ss = reused_superslab(2, &s0);
  struct hakmem_stats s1 = snap();
  cr_assert_eq(ROW(s1, s0, LAZYFREE, pages), SS_SLAB_PAGES, "lazyfree pages %lld, expected %zu",
               ROW(s1, s0, LAZYFREE, pages), SS_SLAB_PAGES);
  cr_assert_eq(ROW(s1, s0, REFAULT, pages), 0);
  cr_assert_eq(ROW(s1, s0, FRESH, pages), 0);
  empty_superslab(ss);
  superslab_retire(ss);
}

Test(stats, a_reused_huge_block_is_counted_by_its_path)
{
  static const struct {
    int policy;
    enum hakmem_supply_path path;
  } cases[] = { { 0, HAKMEM_SUPPLY_REUSE }, { 1, HAKMEM_SUPPLY_REFAULT }, { 2, HAKMEM_SUPPLY_LAZYFREE } };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    lru_trim(1);
    OPTION_SET(SS_LAZY_ZERO, ss_lazy_zero, cases[i].policy);
    void *p = malloc(opaque_size(3 * MiB));
    cr_assert_not_null(p);
    struct region_header *h = region_of(p);
    uint64_t pages = h->size / PAGE_SIZE - 1;
    free(p);
    lru_trim(0);
    struct hakmem_stats s0 = snap();
    void *q = malloc(opaque_size(3 * MiB));
    struct hakmem_stats s1 = snap();
    cr_assert_eq(q, p, "policy %d: the huge region was not reused", cases[i].policy);
    cr_assert_eq(s1.supply[cases[i].path].pages - s0.supply[cases[i].path].pages, pages,
                 "policy %d: %llu pages on path %d, expected %llu", cases[i].policy,
                 (unsigned long long)(s1.supply[cases[i].path].pages - s0.supply[cases[i].path].pages),
                 (int)cases[i].path, (unsigned long long)pages);
    cr_assert_eq(ROW(s1, s0, FRESH, pages), 0);
    free(q);
  }
}

/* ---- the report ---- */

/* hakmem_stats_print into a pipe; returns what it wrote. */
static char *print_to_pipe(void)
{
  static char out[65536];
  int fds[2];
  cr_assert_eq(pipe(fds), 0);
  hakmem_stats_print(fds[1]);
  close(fds[1]);
  size_t len = 0;
  for (;;) {
    ssize_t n = read(fds[0], out + len, sizeof out - 1 - len);
    if (n <= 0)
      break;
    len += (size_t)n;
  }
  close(fds[0]);
  out[len] = '\0';
  cr_assert_gt(len, 0, "hakmem_stats_print wrote nothing");
  cr_assert_eq(out[len - 1], '\n');
  return out;
}

/* The "hakmem: supply <name>" line: its pages and events, or -1. */
static long long ledger_pages(const char *report, const char *name, unsigned long long *events)
{
  char key[64];
  snprintf(key, sizeof key, "hakmem: supply %s ", name);
  const char *line = strstr(report, key);
  if (!line)
    return -1;
  unsigned long long pages = 0, ev = 0;
  int n = sscanf(line + strlen(key), "%llu %llu", &pages, &ev);
  cr_assert_geq(n, 1, "unreadable ledger line: %.80s", line);
  if (events)
    *events = ev;
  return (long long)pages;
}

Test(stats, print_writes_the_counters_and_the_ledger)
{
  struct hakmem_stats before;
  struct superslab *ss = reused_superslab(1, &before); /* fresh and refault rows */
  empty_superslab(ss);
  superslab_retire(ss);
  struct hakmem_stats s = snap();
  char *report = print_to_pipe();
  struct hakmem_stats after = snap();
  cr_assert_eq(DELTA(after, s, bytes_in_use), 0, "printing allocated");
  cr_assert_eq(DELTA(after, s, slabs_carved), 0, "printing allocated");

  char head[64];
  snprintf(head, sizeof head, "hakmem %s: statistics of pid %d\n", HAKMEM_VERSION_STRING, (int)getpid());
  cr_assert_eq(strncmp(report, head, strlen(head)), 0, "the report starts with: %.80s", report);
  for (const char *l = report; *l; l = strchr(l, '\n') + 1)
    cr_assert_eq(strncmp(l, "hakmem", 6), 0, "a report line does not start with hakmem: %.80s", l);
#define EXPECT_COUNTER(name, text)                                                    \
  cr_assert_not_null(strstr(report, "hakmem: " #name " "), "no line for counter " #name); \
  cr_assert_not_null(strstr(report, text), "no description for counter " #name);
  HAKMEM_STATS_ALL_COUNTERS(EXPECT_COUNTER)
#undef EXPECT_COUNTER
  char ss_live[64];
  snprintf(ss_live, sizeof ss_live, "hakmem: %-18s %16llu", "ss_live", (unsigned long long)s.ss_live);
  cr_assert_not_null(strstr(report, ss_live), "ss_live does not read %llu", (unsigned long long)s.ss_live);

  cr_assert_not_null(strstr(report, "hakmem: page-supply ledger"));
  unsigned long long events = 0;
  long long fresh = ledger_pages(report, "fresh", &events);
  cr_assert_eq(fresh, (long long)s.supply[HAKMEM_SUPPLY_FRESH].pages, "the fresh line reads %lld, the snapshot %llu",
               fresh, (unsigned long long)s.supply[HAKMEM_SUPPLY_FRESH].pages);
  cr_assert_eq(events, s.supply[HAKMEM_SUPPLY_FRESH].events);
  long long refault = ledger_pages(report, "refault", NULL);
  cr_assert_eq(refault, (long long)s.supply[HAKMEM_SUPPLY_REFAULT].pages);
  cr_assert_geq(refault, (long long)SS_SLAB_PAGES);
  uint64_t total = 0;
  for (int p = 0; p < HAKMEM_SUPPLY_COUNT; p++)
    total += s.supply[p].pages;
  cr_assert_eq(ledger_pages(report, "total", NULL), (long long)total);
  /* Paths that supplied nothing have no line. */
  if (s.supply[HAKMEM_SUPPLY_UFFD_COPY].pages == 0 && s.supply[HAKMEM_SUPPLY_UFFD_COPY].events == 0)
    cr_assert_eq(ledger_pages(report, "uffd_copy", NULL), -1, "a line for an unused path");
}
