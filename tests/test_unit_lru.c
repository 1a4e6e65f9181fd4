/* Description: unit tests of lib/lru.h, the cache of empty regions, and
 * of each HAKMEM_SS_LAZY_ZERO policy. An empty SuperSlab goes to the LRU;
 * the pages after its header are kept (policy 0), released by
 * MADV_DONTNEED (1) or by MADV_FREE (2), as the counters (madvise_calls,
 * pages_released, ss_cached) and mincore() show after lru_trim; policy 3
 * without a pager falls back to 1. The release is deferred and batched: a
 * region taken back at once keeps its pages, and the ones that waited
 * LRU_RELEASE_DELAY_NS are released together by the next LRU operation or
 * lru_tick(). The LRU is bounded by count, bytes and age: past the count
 * and bytes bounds the oldest regions are released at once, and past four
 * times them (or under policy 0, past them) unmapped. It hands out
 * the smallest region that fits, the most recently cached of equals. A region taken after
 * MADV_DONTNEED reads as zero, and calloc from it writes none of its pages.
 *
 * Options are read once at start-up: each test sets the fields of
 * hakmem_options it needs before it caches anything (every test runs in a
 * process of its own). The SuperSlabs are driven through superslab.h on a
 * heap of the test's own that no thread allocates from. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "heap.h"
#include "lru.h"
#include "options.h"
#include "os.h"
#include "region_map.h"
#include "size_class.h"
#include "slab.h"
#include "superslab.h"
#include "types.h"
#include "unit_helpers.h"

#define MiB ((size_t)1 << 20)
#define KiB ((size_t)1 << 10)
#define BODY (REGION_SIZE - PAGE_SIZE) /* the pages after a region's header */
#define BODY_PAGES (BODY / PAGE_SIZE)

static struct heap test_heap;

#define DELTA(a, b, field) ((long long)((a).field - (b).field))

/* Resident pages of [addr, addr + len), both page aligned. */
static size_t resident_pages(const void *addr, size_t len)
{
  static unsigned char vec[4096];
  size_t pages = len / PAGE_SIZE, n = 0;
  cr_assert_leq(pages, sizeof vec);
  cr_assert_eq(mincore((void *)addr, len, vec), 0, "mincore(%p, %zu) failed", addr, len);
  for (size_t i = 0; i < pages; i++)
    n += vec[i] & 1;
  return n;
}

static int all_bytes(const void *p, size_t n, unsigned char v)
{
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++)
    if (b[i] != v)
      return 0;
  return 1;
}

static void sleep_ms(unsigned ms)
{
  uint64_t until = os_now_ns() + (uint64_t)ms * 1000000u;
  while (os_now_ns() < until) {
    struct timespec t = { 0, 1000000 };
    nanosleep(&t, NULL);
  }
}

/* The program running for ms: a refill's tick every 5 ms. */
static void busy_ms(unsigned ms)
{
  for (unsigned t = 0; t < ms; t += 5) {
    sleep_ms(5);
    lru_tick();
  }
}

/* A SuperSlab whose 31 units are slabs of 32 KiB blocks, all handed out
 * (so every page after the header is present) and filled with `byte`; its
 * slabs are returned, so it is empty and ready to retire. */
static struct superslab *dirty_superslab(unsigned char byte)
{
  struct superslab *ss = superslab_new(&test_heap);
  cr_assert_not_null(ss);
  for (unsigned u = 1; u < UNITS_PER_SS; u++) {
    struct slab *s = superslab_carve_slab(ss, size_to_class(SMALL_MAX));
    cr_assert_not_null(s);
    struct free_block *head, *tail;
    while (slab_take(s, 16, 1, &head, &tail))
      ;
    cr_assert_eq(ss->present_pages[u], UNIT_SIZE / PAGE_SIZE);
  }
  memset((char *)ss + PAGE_SIZE, byte, BODY);
  for (unsigned u = 1; u < UNITS_PER_SS; u++)
    superslab_return_slab(ss, &ss->slabs[u]);
  cr_assert_eq(resident_pages(ss, REGION_SIZE), PAGES_PER_REGION);
  return ss;
}

static void set_policy(int policy)
{
  lru_trim(1); /* nothing cached from before */
  OPTION_SET(SS_LAZY_ZERO, ss_lazy_zero, policy);
}

/* The LRU busy, without a gap, for two delays: a gap before the test
 * (a loaded machine starting Criterion's worker slowly: its trim, or its
 * first retire, is then a look after a gap) restarts the delays, and a gap
 * restarts them at most once every two delays, so that the test's own
 * pause would not count as one. A SuperSlab goes in and out every 5 ms
 * (taking and putting in turn: not growing) and stays out, in use. */
static void settle(void)
{
  struct superslab *w = superslab_new(&test_heap);
  for (unsigned ms = 0; ms < 2 * LRU_RELEASE_DELAY_NS / 1000000 + 20; ms += 5) {
    sleep_ms(5);
    superslab_retire(w);
    cr_assert_eq(superslab_new(&test_heap), w);
  }
}

/* ---- entering the LRU ---- */

Test(lru, an_empty_superslab_goes_to_the_lru)
{
  enum { N = 6 * 1024 };
  static void *blocks[N];
  struct superslab *seen[16];
  unsigned nseen = 0;
  for (unsigned i = 0; i < N; i++) {
    blocks[i] = malloc(opaque_size(1024));
    cr_assert_not_null(blocks[i]);
    struct superslab *ss = superslab_of(blocks[i]);
    unsigned k = 0;
    while (k < nseen && seen[k] != ss)
      k++;
    if (k == nseen) {
      cr_assert_lt(nseen, 16);
      seen[nseen++] = ss;
    }
  }
  cr_assert_geq(nseen, 3);
  struct hakmem_stats s0 = snap();
  for (unsigned i = 0; i < N; i++)
    free(blocks[i]);
  struct hakmem_stats s1 = snap();
  cr_assert_geq(DELTA(s1, s0, ss_cached), 1, "freeing 6 MiB of blocks cached no SuperSlab");
  cr_assert_leq(s1.ss_live, s0.ss_live - 1);
  unsigned in_lru = 0;
  for (unsigned k = 0; k < nseen; k++)
    if (region_map_kind((uintptr_t)seen[k]) == REGION_SMALL && seen[k]->h.in_lru) {
      in_lru++;
      cr_assert_null(seen[k]->owner, "a cached SuperSlab keeps its owner");
    }
  cr_assert_geq(in_lru, 1, "none of the %u emptied SuperSlabs is marked in the LRU", nseen);
}

Test(lru, retiring_counts_it_cached_and_not_live)
{
  set_policy(1);
  struct superslab *ss = superslab_new(&test_heap);
  cr_assert_not_null(ss);
  struct hakmem_stats s0 = snap();
  superslab_retire(ss);
  struct hakmem_stats s1 = snap();
  cr_assert_eq(DELTA(s1, s0, ss_live), -1);
  cr_assert_eq(DELTA(s1, s0, ss_cached), 1);
  cr_assert_eq(ss->h.in_lru, 1);
  cr_assert_eq(region_map_kind((uintptr_t)ss), REGION_SMALL, "a cached SuperSlab left the region map");
}

/* ---- the lazy-zero policies, after lru_trim(0) releases what waits ---- */

Test(lru, policy_0_keeps_the_pages)
{
  set_policy(0);
  struct superslab *ss = dirty_superslab(0xA7);
  struct hakmem_stats s0 = snap();
  superslab_retire(ss);
  size_t released = lru_trim(0);
  struct hakmem_stats s1 = snap();
  cr_assert_eq(released, 0, "lru_trim(0) released %zu bytes of a kept SuperSlab", released);
  cr_assert_eq(DELTA(s1, s0, madvise_calls), 0);
  cr_assert_eq(DELTA(s1, s0, pages_released), 0);
  cr_assert_eq(DELTA(s1, s0, ss_cached), 1);
  cr_assert_eq(ss->h.pages, HAKMEM_SUPPLY_REUSE);
  cr_assert_eq(resident_pages(ss, REGION_SIZE), PAGES_PER_REGION, "policy 0 lost resident pages");
  cr_assert(all_bytes((char *)ss + PAGE_SIZE, BODY, 0xA7), "policy 0 changed the contents");

  /* lru_trim(1) unmaps it. */
  released = lru_trim(1);
  struct hakmem_stats s2 = snap();
  cr_assert_eq(released, REGION_SIZE);
  cr_assert_eq(DELTA(s2, s1, ss_cached), -1);
  cr_assert_eq(DELTA(s2, s1, ss_unmapped_total), 1);
  cr_assert_eq(DELTA(s2, s1, munmap_calls), 1);
  cr_assert_eq(DELTA(s2, s1, pages_released), PAGES_PER_REGION);
  cr_assert_eq(DELTA(s2, s1, bytes_mapped), -(long long)REGION_SIZE);
  cr_assert_eq(region_map_kind((uintptr_t)ss), REGION_NONE);
}

Test(lru, policy_1_releases_with_madv_dontneed)
{
  set_policy(1);
  struct superslab *ss = dirty_superslab(0xB6);
  struct hakmem_stats s0 = snap();
  superslab_retire(ss);
  size_t released = lru_trim(0);
  struct hakmem_stats s1 = snap();
  cr_assert_eq(released, BODY, "lru_trim(0) released %zu bytes, not the %zu after the header", released, BODY);
  cr_assert_eq(DELTA(s1, s0, madvise_calls), 1);
  cr_assert_eq(DELTA(s1, s0, pages_released), BODY_PAGES);
  cr_assert_eq(DELTA(s1, s0, ss_cached), 1, "a released SuperSlab is still cached");
  cr_assert_eq(DELTA(s1, s0, munmap_calls), 0);
  cr_assert_eq(ss->h.pages, HAKMEM_SUPPLY_REFAULT);
  cr_assert_eq(ss->h.in_lru, 1);
  cr_assert_eq(resident_pages(ss, PAGE_SIZE), 1, "the header page was released");
  cr_assert_eq(resident_pages((char *)ss + PAGE_SIZE, BODY), 0, "%zu pages still resident after MADV_DONTNEED",
               resident_pages((char *)ss + PAGE_SIZE, BODY));
  cr_assert(all_bytes((char *)ss + PAGE_SIZE, BODY, 0), "released pages do not read as zero");
}

/* Unmapping a region whose pages were released gives back only its
 * header page: what lru_trim (and malloc_trim's answer) reports. */
static void expect_unmap_counts_only_the_header(int policy)
{
  set_policy(policy);
  struct superslab *ss = dirty_superslab(0xB7);
  superslab_retire(ss);
  cr_assert_eq(lru_trim(0), BODY);
  size_t unmapped = lru_trim(1);
  cr_assert_eq(unmapped, PAGE_SIZE, "lru_trim(1) reported %zu bytes for a released region", unmapped);
  struct superslab *kept = dirty_superslab(0xB8);
  superslab_retire(kept);
  unmapped = lru_trim(1);
  cr_assert_eq(unmapped, REGION_SIZE, "a resident region unmapped gives back all of it, not %zu", unmapped);
}

Test(lru, unmapping_a_released_region_counts_only_its_resident_page) { expect_unmap_counts_only_the_header(1); }

Test(lru, unmapping_a_region_released_by_madv_free_counts_only_its_header) { expect_unmap_counts_only_the_header(2); }

Test(lru, policy_2_releases_with_madv_free)
{
  set_policy(2);
  struct superslab *ss = dirty_superslab(0xC5);
  struct hakmem_stats s0 = snap();
  superslab_retire(ss);
  size_t released = lru_trim(0);
  struct hakmem_stats s1 = snap();
  cr_assert_eq(released, BODY);
  cr_assert_eq(DELTA(s1, s0, madvise_calls), 1);
  cr_assert_eq(DELTA(s1, s0, pages_released), BODY_PAGES);
  cr_assert_eq(DELTA(s1, s0, ss_cached), 1);
  cr_assert_eq(ss->h.pages, HAKMEM_SUPPLY_LAZYFREE, "MADV_FREE is probed at configure: pages %u", ss->h.pages);
  /* The kernel takes lazily freed pages only under memory pressure: each
   * page holds either its old bytes or zeros, never a mix. */
  size_t kept = 0;
  for (size_t p = 1; p < PAGES_PER_REGION; p++) {
    const char *page = (const char *)ss + p * PAGE_SIZE;
    int old = all_bytes(page, PAGE_SIZE, 0xC5);
    cr_assert(old || all_bytes(page, PAGE_SIZE, 0), "page %zu is neither kept nor zero after MADV_FREE", p);
    kept += old;
  }
  cr_log_info("MADV_FREE: %zu of %zu pages kept their contents", kept, BODY_PAGES);
}

Test(lru, policy_3_without_a_pager_falls_back_to_dontneed)
{
  set_policy(3);
  cr_assert_null(os_page_supplier());
  struct superslab *ss = dirty_superslab(0xD4);
  struct hakmem_stats s0 = snap();
  superslab_retire(ss);
  lru_trim(0);
  struct hakmem_stats s1 = snap();
  cr_assert_eq(DELTA(s1, s0, madvise_calls), 1);
  cr_assert_eq(ss->h.pages, HAKMEM_SUPPLY_REFAULT);
  cr_assert_eq(resident_pages((char *)ss + PAGE_SIZE, BODY), 0);
}

/* ---- deferred, batched release ---- */

Test(lru, release_waits_and_is_batched)
{
  enum { N = 5 };
  set_policy(1);
  struct superslab *ss[N];
  for (int i = 0; i < N; i++)
    ss[i] = superslab_new(&test_heap);
  struct hakmem_stats s0 = snap();
  for (int i = 0; i < N; i++)
    superslab_retire(ss[i]);
  lru_tick();
  struct hakmem_stats s1 = snap();
  cr_assert_eq(DELTA(s1, s0, madvise_calls), 0, "caching SuperSlabs paid an madvise at once");
  for (int i = 0; i < N; i++) {
    cr_assert_eq(ss[i]->h.pages, HAKMEM_SUPPLY_REUSE);
    cr_assert_eq(ss[i]->h.lru_release, OS_RELEASE_DONTNEED, "the release of %d is not pending", i);
  }
  cr_assert_eq(DELTA(s1, s0, ss_cached), N);

  /* Once they have waited the delay while the program ran (ticking as
   * refills do), a tick releases them all, one madvise each. On a loaded
   * machine a 5 ms sleep may stretch past the delay, a gap that restarts
   * it (lru.c): the ticks go on until the release, up to 20 delays. */
  busy_ms(LRU_RELEASE_DELAY_NS / 1000000 + 20);
  for (int t = 0; t < 400 && ss[N - 1]->h.lru_release != OS_RELEASE_KEEP; t++)
    busy_ms(5);
  lru_tick();
  struct hakmem_stats s2 = snap();
  cr_assert_eq(DELTA(s2, s1, madvise_calls), N);
  for (int i = 0; i < N; i++) {
    cr_assert_eq(ss[i]->h.pages, HAKMEM_SUPPLY_REFAULT, "SuperSlab %d was not released", i);
    cr_assert_eq(ss[i]->h.lru_release, OS_RELEASE_KEEP);
  }
  cr_assert_eq(lru_trim(0), 0, "nothing was left pending");
}

/* Many regions due at once go a batch of 16 MiB (eight SuperSlabs) a call:
 * no refill pays for all of them. */
Test(lru, due_releases_go_a_batch_at_a_time)
{
  enum { N = 20, BATCH = 8 };
  set_policy(1);
  struct superslab *ss[N];
  for (int i = 0; i < N; i++)
    ss[i] = superslab_new(&test_heap);
  for (int i = 0; i < N; i++)
    superslab_retire(ss[i]);
  /* Ticking as refills do, every 5 ms, until all are released. */
  long long released = 0;
  int calls_that_released = 0;
  for (int t = 0; t < 200 && released < N; t++) {
    sleep_ms(5);
    struct hakmem_stats s0 = snap();
    lru_tick();
    long long now = DELTA(snap(), s0, madvise_calls);
    cr_assert_leq(now, BATCH, "one tick released %lld SuperSlabs", now);
    released += now;
    calls_that_released += now > 0;
  }
  cr_assert_eq(released, N);
  cr_assert_geq(calls_that_released, 3);
  for (int i = 0; i < N; i++)
    cr_assert_eq(ss[i]->h.pages, HAKMEM_SUPPLY_REFAULT, "SuperSlab %d was not released", i);
}

/* Time without a refill does not count: a program that pauses and then
 * allocates again gets 100 ms of running to take its regions back. */
Test(lru, a_pause_without_refills_restarts_the_delay)
{
  set_policy(1);
  settle();
  struct superslab *ss = superslab_new(&test_heap);
  superslab_retire(ss);
  sleep_ms(LRU_RELEASE_DELAY_NS / 1000000 + 50); /* idle: no tick */
  lru_tick();
  cr_assert_eq(ss->h.pages, HAKMEM_SUPPLY_REUSE, "released at the first refill after a pause");
  busy_ms(LRU_RELEASE_DELAY_NS / 1000000 + 30);
  cr_assert_eq(ss->h.pages, HAKMEM_SUPPLY_REFAULT, "not released after 100 ms of running");
}

/* While the program takes regions from the cache faster than it puts
 * them back, it is building its memory up again: the others wait until
 * 100 ms after the last such take. Here after a pause, which restarts
 * the delays once: the takes then hold them back beyond that. */
Test(lru, a_growing_program_holds_back_the_releases_of_the_others)
{
  set_policy(1);
  settle();
  struct superslab *a = superslab_new(&test_heap), *b = superslab_new(&test_heap), *c = superslab_new(&test_heap),
                   *d = superslab_new(&test_heap);
  superslab_retire(a);
  superslab_retire(b);
  superslab_retire(c);
  superslab_retire(d);
  sleep_ms(150); /* the pause */
  lru_tick();
  uint64_t resumed = os_now_ns();
  cr_assert_eq(superslab_new(&test_heap), d, "the most recent region was not taken");
  cr_assert_eq(superslab_new(&test_heap), c);
  busy_ms(60);
  if (os_now_ns() - resumed >= LRU_RELEASE_DELAY_NS - 5000000)
    cr_skip_test("this machine was too slow: 60 ms of running took %llu ms",
                 (unsigned long long)((os_now_ns() - resumed) / 1000000));
  cr_assert_eq(superslab_new(&test_heap), b);
  uint64_t last_take = os_now_ns();
  busy_ms(65); /* 125 ms after the pause, 65 after the last take */
  if (os_now_ns() - last_take >= LRU_RELEASE_DELAY_NS - 5000000)
    cr_skip_test("this machine was too slow: 65 ms of running took %llu ms",
                 (unsigned long long)((os_now_ns() - last_take) / 1000000));
  cr_assert_eq(a->h.pages, HAKMEM_SUPPLY_REUSE, "released 65 ms after the program grew");
  busy_ms(60);
  cr_assert_eq(a->h.pages, HAKMEM_SUPPLY_REFAULT, "not released 100 ms after the last take");
}

/* A region released while it waited in the cache goes behind the resident
 * ones: the next request takes a SuperSlab that still has its pages. */
Test(lru, a_resident_superslab_is_taken_before_a_released_one)
{
  set_policy(1);
  struct superslab *old = superslab_new(&test_heap), *recent = superslab_new(&test_heap);
  superslab_retire(old);
  busy_ms(LRU_RELEASE_DELAY_NS / 1000000 - 30);
  superslab_retire(recent);
  busy_ms(50); /* old falls due and is released behind recent, which is not due */
  cr_assert_eq(old->h.pages, HAKMEM_SUPPLY_REFAULT, "the older region was not released");
  if (recent->h.pages != HAKMEM_SUPPLY_REUSE)
    cr_skip_test("this machine was too slow to keep the recent region from falling due");
  cr_assert_eq(superslab_new(&test_heap), recent, "took the released region before the resident one");
  cr_assert_eq(superslab_new(&test_heap), old);
}

/* A program that takes a region and puts one back in turn is not growing:
 * the others are released on time. */
Test(lru, taking_and_putting_in_turn_holds_back_nothing)
{
  set_policy(1);
  struct superslab *a = superslab_new(&test_heap), *b = superslab_new(&test_heap);
  superslab_retire(a);
  superslab_retire(b);
  for (int i = 0; i < 25; i++) {
    busy_ms(5);
    cr_assert_eq(superslab_new(&test_heap), b);
    superslab_retire(b);
  }
  busy_ms(20);
  cr_assert_eq(a->h.pages, HAKMEM_SUPPLY_REFAULT, "a region waiting 145 ms was not released");
}

/* A gap restarts the delays at most once every two delays: a program
 * that allocates a little every 150 ms still gives its cache back. */
Test(lru, gaps_one_after_another_do_not_hold_the_cache_for_ever)
{
  set_policy(1);
  struct superslab *ss = superslab_new(&test_heap);
  superslab_retire(ss);
  for (int i = 0; i < 4 && ss->h.pages == HAKMEM_SUPPLY_REUSE; i++) {
    sleep_ms(150);
    lru_tick();
  }
  cr_assert_eq(ss->h.pages, HAKMEM_SUPPLY_REFAULT, "still resident after four looks 150 ms apart");
}

/* Gaps further apart than two delays each restart the delays, but a
 * region's release is deferred once: a program that does a little work
 * every 300 ms gives the region back at its second look, not at the age
 * limit (2 s). */
Test(lru, gaps_far_apart_defer_a_release_once)
{
  set_policy(1);
  struct superslab *ss = superslab_new(&test_heap);
  superslab_retire(ss);
  sleep_ms(300);
  lru_tick();
  cr_assert_eq(ss->h.pages, HAKMEM_SUPPLY_REUSE, "released at the first look after a pause");
  sleep_ms(300);
  lru_tick();
  cr_assert_eq(ss->h.pages, HAKMEM_SUPPLY_REFAULT, "a second gap deferred the release again");
}

/* Large mallocs look at the LRU too: a program whose small blocks all come
 * from its thread caches still gives freed regions back on time. */
Test(lru, large_mallocs_release_due_regions)
{
  set_policy(1);
  struct superslab *ss = superslab_new(&test_heap);
  superslab_retire(ss);
  for (unsigned ms = 0; ms < LRU_RELEASE_DELAY_NS / 1000000 + 50; ms += 5) {
    sleep_ms(5);
    void *p = malloc(100000);
    cr_assert_not_null(p);
    free(p);
  }
  cr_assert_eq(ss->h.pages, HAKMEM_SUPPLY_REFAULT, "not released after 150 ms of large mallocs");
}

/* A program that rebuilds its working set after each pause, every 200 ms
 * or less, gets every gap restarted: it grew since the last restart. */
Test(lru, a_program_that_grows_again_after_each_gap_keeps_its_cache)
{
  enum { N = 4 };
  set_policy(1);
  settle();
  struct superslab *ss[N];
  for (int i = 0; i < N; i++)
    ss[i] = superslab_new(&test_heap);
  for (int round = 0; round < 4; round++) {
    for (int i = 0; i < N; i++)
      superslab_retire(ss[i]);
    sleep_ms(130); /* the pause: a round every 165 ms or so */
    lru_tick();    /* the first refill after it */
    for (int i = 0; i < N; i++)
      cr_assert_eq(ss[i]->h.pages, HAKMEM_SUPPLY_REUSE, "round %d: region %d released after the pause", round, i);
    for (int i = N - 1; i >= 0; i--) {
      busy_ms(5); /* the rebuild: takes, newest first, between refills */
      cr_assert_eq(superslab_new(&test_heap), ss[i]);
    }
  }
}

Test(lru, a_region_taken_back_at_once_keeps_its_pages)
{
  set_policy(1);
  struct superslab *ss = dirty_superslab(0x3C);
  struct hakmem_stats s0 = snap();
  superslab_retire(ss);
  struct superslab *again = superslab_new(&test_heap);
  struct hakmem_stats s1 = snap();
  cr_assert_eq(again, ss);
  cr_assert_eq(DELTA(s1, s0, madvise_calls), 0, "a SuperSlab reused at once was released");
  cr_assert_eq(DELTA(s1, s0, ss_reused_total), 1);
  cr_assert_eq(DELTA(s1, s0, ss_cached), 0);
  cr_assert_eq(again->h.in_lru, 0);
  cr_assert_eq(resident_pages(ss, REGION_SIZE), PAGES_PER_REGION);
  cr_assert(all_bytes((char *)ss + PAGE_SIZE, BODY, 0x3C));
  /* Its units' pages are known present: carving one supplies nothing and
   * the ledger counts them as reused. */
  struct slab *s = superslab_carve_slab(again, size_to_class(512));
  struct free_block *head, *tail;
  cr_assert_gt(slab_take(s, 64, 1, &head, &tail), 0);
  struct hakmem_stats s2 = snap();
  cr_assert_eq(DELTA(s2, s1, supply[HAKMEM_SUPPLY_REUSE].pages), UNIT_SIZE / PAGE_SIZE);
  cr_assert_eq(DELTA(s2, s1, supply[HAKMEM_SUPPLY_FRESH].pages), 0);
  cr_assert_eq(DELTA(s2, s1, supply[HAKMEM_SUPPLY_REFAULT].pages), 0);
  cr_assert_eq(DELTA(s2, s1, madvise_calls), 0, "pages known present were populated again");
}

Test(lru, a_region_taken_after_madv_dontneed_is_zero)
{
  set_policy(1);
  struct superslab *ss = dirty_superslab(0xE3);
  superslab_retire(ss);
  lru_trim(0);
  cr_assert_eq(ss->h.pages, HAKMEM_SUPPLY_REFAULT);
  struct hakmem_stats s0 = snap();
  struct superslab *again = superslab_new(&test_heap);
  cr_assert_eq(again, ss);
  for (unsigned u = 1; u < UNITS_PER_SS; u++) {
    cr_assert_eq(again->present_pages[u], 0, "unit %u: released pages counted present", u);
    cr_assert_eq(again->released_pages[u], UNIT_SIZE / PAGE_SIZE, "unit %u: its released pages would come fresh", u);
    struct slab *s = superslab_carve_slab(again, size_to_class(SMALL_MAX));
    struct free_block *head, *tail;
    while (slab_take(s, 16, 1, &head, &tail))
      ;
  }
  struct hakmem_stats s1 = snap();
  cr_assert_eq(DELTA(s1, s0, supply[HAKMEM_SUPPLY_REFAULT].pages), (long long)((UNITS_PER_SS - 1) * (UNIT_SIZE / PAGE_SIZE)),
               "refault pages %lld for a whole reused SuperSlab",
               DELTA(s1, s0, supply[HAKMEM_SUPPLY_REFAULT].pages));
  cr_assert_eq(DELTA(s1, s0, supply[HAKMEM_SUPPLY_FRESH].pages), 0);
  /* Everything but the free cookies the takes wrote is zero. */
  for (unsigned u = 1; u < UNITS_PER_SS; u++) {
    for (unsigned b = 0; b < 2; b++) {
      const char *blk = (const char *)again + (size_t)u * UNIT_SIZE + (size_t)b * SMALL_MAX;
      cr_assert(all_bytes(blk + 2 * sizeof(void *), SMALL_MAX - 2 * sizeof(void *), 0),
                "unit %u block %u holds old bytes after MADV_DONTNEED", u, b);
    }
  }
}

/* ---- bounds ---- */

/* Four SuperSlabs cached, oldest first; the stats from before. */
static struct hakmem_stats retire_four(struct superslab *ss[4])
{
  for (int i = 0; i < 4; i++)
    ss[i] = superslab_new(&test_heap);
  struct hakmem_stats s0 = snap();
  for (int i = 0; i < 4; i++)
    superslab_retire(ss[i]);
  return s0;
}

/* Under a release policy, the bounds on count and bytes hold the
 * resident regions: the two oldest are released at once, all four stay
 * mapped for reuse. */
static void expect_two_newest_resident(struct superslab *ss[4], const struct hakmem_stats *s0)
{
  struct hakmem_stats s1 = snap();
  cr_assert_eq(DELTA(s1, *s0, ss_unmapped_total), 0, "%lld SuperSlabs unmapped", DELTA(s1, *s0, ss_unmapped_total));
  cr_assert_eq(s1.ss_cached, 4, "%llu cached", (unsigned long long)s1.ss_cached);
  cr_assert_eq(DELTA(s1, *s0, madvise_calls), 2, "%lld madvise calls", DELTA(s1, *s0, madvise_calls));
  for (int i = 0; i < 4; i++) {
    cr_assert_eq(region_map_kind((uintptr_t)ss[i]), REGION_SMALL, "SuperSlab %d was unmapped", i);
    cr_assert(ss[i]->h.in_lru);
    cr_assert_eq(ss[i]->h.pages == HAKMEM_SUPPLY_REUSE, i >= 2, "SuperSlab %d: pages %d", i, ss[i]->h.pages);
  }
}

Test(lru, bounded_by_count)
{
  set_policy(1);
  hakmem_options.lru_max = 2;
  struct superslab *ss[4];
  struct hakmem_stats s0 = retire_four(ss);
  expect_two_newest_resident(ss, &s0);
}

Test(lru, bounded_by_bytes)
{
  set_policy(1);
  hakmem_options.lru_max_mb = 5; /* two 2 MiB regions fit, three do not */
  struct superslab *ss[4];
  struct hakmem_stats s0 = retire_four(ss);
  expect_two_newest_resident(ss, &s0);
}

/* Released regions stay mapped up to four times the bounds: past that the
 * least recently cached are unmapped. */
Test(lru, released_regions_are_bounded_at_four_times)
{
  enum { N = 6 };
  set_policy(1);
  hakmem_options.lru_max = 1;
  struct superslab *ss[N];
  struct hakmem_stats s0 = snap();
  for (int i = 0; i < N; i++)
    ss[i] = superslab_new(&test_heap);
  for (int i = 0; i < N; i++)
    superslab_retire(ss[i]);
  struct hakmem_stats s1 = snap();
  cr_assert_eq(DELTA(s1, s0, ss_unmapped_total), 2, "%lld SuperSlabs unmapped", DELTA(s1, s0, ss_unmapped_total));
  cr_assert_eq(s1.ss_cached, 4);
  cr_assert_eq(region_map_kind((uintptr_t)ss[0]), REGION_NONE, "the oldest is still mapped");
  cr_assert_eq(region_map_kind((uintptr_t)ss[1]), REGION_NONE);
  for (int i = 2; i < N; i++)
    cr_assert_eq(ss[i]->h.pages == HAKMEM_SUPPLY_REUSE, i == N - 1, "SuperSlab %d: pages %d", i, ss[i]->h.pages);
}

/* Under HAKMEM_SS_LAZY_ZERO=0 nothing is released: past the bounds the
 * oldest are unmapped. */
Test(lru, bounded_by_count_when_keeping_pages)
{
  set_policy(0);
  hakmem_options.lru_max = 2;
  struct superslab *ss[4];
  struct hakmem_stats s0 = retire_four(ss);
  struct hakmem_stats s1 = snap();
  cr_assert_eq(DELTA(s1, s0, ss_unmapped_total), 2, "%lld SuperSlabs unmapped", DELTA(s1, s0, ss_unmapped_total));
  cr_assert_eq(s1.ss_cached, 2, "%llu cached", (unsigned long long)s1.ss_cached);
  cr_assert_eq(region_map_kind((uintptr_t)ss[0]), REGION_NONE, "the oldest is still mapped");
  cr_assert_eq(region_map_kind((uintptr_t)ss[1]), REGION_NONE);
  cr_assert_eq(region_map_kind((uintptr_t)ss[2]), REGION_SMALL, "a newer one was evicted");
  cr_assert_eq(region_map_kind((uintptr_t)ss[3]), REGION_SMALL);
  cr_assert(ss[2]->h.in_lru && ss[3]->h.in_lru);
}

Test(lru, a_zero_byte_bound_caches_nothing)
{
  set_policy(1);
  hakmem_options.lru_max_mb = 0;
  struct superslab *ss = superslab_new(&test_heap);
  struct hakmem_stats s0 = snap();
  superslab_retire(ss);
  struct hakmem_stats s1 = snap();
  cr_assert_eq(DELTA(s1, s0, ss_unmapped_total), 1);
  cr_assert_eq(s1.ss_cached, 0);
  cr_assert_eq(region_map_kind((uintptr_t)ss), REGION_NONE);
}

Test(lru, bounded_by_age)
{
  set_policy(1);
  hakmem_options.lru_age_ms = 1;
  struct superslab *a = superslab_new(&test_heap), *b = superslab_new(&test_heap);
  struct hakmem_stats s0 = snap();
  superslab_retire(a);
  sleep_ms(5);
  superslab_retire(b);
  struct hakmem_stats s1 = snap();
  cr_assert_eq(region_map_kind((uintptr_t)a), REGION_NONE, "a region older than the age limit is still cached");
  cr_assert_eq(region_map_kind((uintptr_t)b), REGION_SMALL, "the region just cached was evicted");
  cr_assert_eq(DELTA(s1, s0, ss_unmapped_total), 1);
  cr_assert_eq(s1.ss_cached, 1);
  /* Once it too has aged, the next look at the LRU evicts it. */
  sleep_ms(5);
  lru_trim(0);
  struct hakmem_stats s2 = snap();
  cr_assert_eq(region_map_kind((uintptr_t)b), REGION_NONE);
  cr_assert_eq(s2.ss_cached, 0);
}

/* With no release pending (policy 0 keeps the pages; or all released
 * already), the refills' tick still evicts what outlived the age limit. */
Test(lru, a_tick_evicts_an_aged_region_with_no_release_pending)
{
  set_policy(0);
  hakmem_options.lru_age_ms = 500; /* a tick right after the retire comes before it, on a loaded machine too */
  struct superslab *a = superslab_new(&test_heap);
  superslab_retire(a);
  lru_tick();
  cr_assert_eq(region_map_kind((uintptr_t)a), REGION_SMALL, "evicted before its age");
  sleep_ms(520);
  struct hakmem_stats s0 = snap();
  lru_tick();
  struct hakmem_stats s1 = snap();
  cr_assert_eq(region_map_kind((uintptr_t)a), REGION_NONE, "a region past the age limit is still cached after a tick");
  cr_assert_eq(DELTA(s1, s0, ss_unmapped_total), 1);
  cr_assert_eq(s1.ss_cached, 0);
}

Test(lru, the_most_recently_cached_region_is_taken_first)
{
  set_policy(0);
  struct superslab *a = superslab_new(&test_heap), *b = superslab_new(&test_heap);
  superslab_retire(a);
  superslab_retire(b);
  struct hakmem_stats s0 = snap();
  struct superslab *first = superslab_new(&test_heap), *second = superslab_new(&test_heap);
  struct hakmem_stats s1 = snap();
  cr_assert_eq(first, b, "took %p first, not the last cached %p", (void *)first, (void *)b);
  cr_assert_eq(second, a);
  cr_assert_eq(DELTA(s1, s0, ss_reused_total), 2);
  cr_assert_eq(DELTA(s1, s0, ss_mapped_total), 0);
  cr_assert_eq(s1.ss_cached, 0);
}

/* Huge blocks' regions and SuperSlabs side by side: a request takes the
 * smallest huge block's region that fits, and a SuperSlab only when none
 * does. Taking the SuperSlab first left the huge regions unused while
 * the next SuperSlabs were mapped anew: 64 buffers grown by realloc by
 * half again to 4 MiB, ten rounds, took 208,000 faults and 365 MB of RSS,
 * 54,000 and 165 MB so. */
Test(lru, a_request_takes_a_huge_region_before_a_superslab)
{
  set_policy(0);
  char *small = malloc(opaque_size(MiB + MiB / 2)), *big = malloc(opaque_size(3 * MiB));
  cr_assert(small && big);
  struct region_header *hs = region_of(small), *hb = region_of(big);
  struct superslab *ss = superslab_new(&test_heap);
  superslab_retire(ss);
  free(small);
  free(big);
  cr_assert(hs->in_lru && hb->in_lru && ss->h.in_lru);
  cr_assert_lt(hs->size, REGION_SIZE, "test premise: the smaller huge region is below a SuperSlab");
  struct region_header *taken[3];
  taken[0] = lru_take(MiB + MiB / 4, 5 * MiB);
  cr_assert_eq(taken[0], hs, "1.25 MiB took %p, not the 1.5 MiB region %p", (void *)taken[0], (void *)hs);
  taken[1] = lru_take(MiB + MiB * 3 / 4, 7 * MiB);
  cr_assert_eq(taken[1], hb, "1.75 MiB took %p, not the 3 MiB region %p before the SuperSlab %p", (void *)taken[1],
               (void *)hb, (void *)ss);
  taken[2] = lru_take(MiB + MiB * 3 / 4, 7 * MiB);
  cr_assert_eq(taken[2], &ss->h, "with no huge region left, 1.75 MiB took %p, not the SuperSlab %p", (void *)taken[2],
               (void *)ss);
  cr_assert_null(lru_take(MiB, 10 * MiB), "the cache should be empty");
  for (int i = 0; i < 3; i++)
    region_unmap(taken[i], true);
}

/* A huge block's region more than four times the request does not go
 * before the SuperSlab: a 1.1 MiB block would keep all of a 24 MiB one. */
Test(lru, a_much_bigger_huge_region_goes_after_a_superslab)
{
  set_policy(0);
  char *big = malloc(opaque_size(24 * MiB));
  cr_assert_not_null(big);
  struct region_header *hb = region_of(big);
  struct superslab *ss = superslab_new(&test_heap);
  superslab_retire(ss);
  free(big);
  cr_assert(hb->in_lru && ss->h.in_lru, "test premise: both cached");
  struct region_header *first = lru_take(MiB + MiB / 10, 40 * MiB);
  cr_assert_eq(first, &ss->h, "1.1 MiB took %p, not the SuperSlab %p before the 24 MiB region %p", (void *)first,
               (void *)&ss->h, (void *)hb);
  struct region_header *second = lru_take(MiB + MiB / 10, 40 * MiB);
  cr_assert_eq(second, hb, "with the SuperSlab gone, 1.1 MiB took %p, not the 24 MiB region", (void *)second);
  region_unmap(first, true);
  region_unmap(second, true);
}

/* Huge regions sit in bins by size: a request looks in the bins that can
 * hold it, smallest first (largest first for lru_take_largest), past a
 * bin whose regions are all too small, and in a crowded bin at its newest
 * few only: 64 cached regions of one size bin, the oldest the only fit,
 * are not all looked at. */
Test(lru, huge_regions_are_found_by_size_bins)
{
  set_policy(0);
  hakmem_options.lru_max = 1024;
  const size_t sizes[] = { MiB + MiB / 8, 5 * MiB / 4 + 4096, 3 * MiB, 6 * MiB };
  struct region_header *h[4];
  char *p[4];
  for (int i = 0; i < 4; i++) {
    p[i] = malloc(opaque_size(sizes[i] - 8192));
    cr_assert_not_null(p[i]);
    h[i] = region_of(p[i]);
  }
  for (int i = 0; i < 4; i++)
    free(p[i]);
  struct region_header *t = lru_take(5 * MiB / 4, 8 * MiB);
  cr_assert_eq(t, h[1], "1.25 MiB took the region of %zu bytes", t ? t->size : 0);
  region_unmap(t, true);
  t = lru_take_largest(2 * MiB + 1, 5 * MiB);
  cr_assert_eq(t, h[2], "the largest of 2..5 MiB took the region of %zu bytes", t ? t->size : 0);
  region_unmap(t, true);
  t = lru_take(4 * MiB, 8 * MiB);
  cr_assert_eq(t, h[3]);
  region_unmap(t, true);
  t = lru_take(MiB, 2 * MiB);
  cr_assert_eq(t, h[0]);
  region_unmap(t, true);

  enum { CROWD = 64 };
  char *q[CROWD];
  for (int i = 0; i < CROWD; i++) /* the first one a page larger than the others */
    cr_assert_not_null(q[i] = malloc(opaque_size(3 * MiB + (i == 0 ? 4096 : 0))));
  struct region_header *oldest = region_of(q[0]);
  for (int i = 0; i < CROWD; i++)
    free(q[i]);
  cr_assert_null(lru_take(oldest->size, oldest->size), "the whole crowded bin was walked");
  t = lru_take(3 * MiB, 3 * MiB + 2 * 4096);
  cr_assert_not_null(t);
  cr_assert_neq(t, oldest, "took the oldest region, not one of the newest of equal fit");
  region_unmap(t, true);
  lru_trim(1);
}

/* Regions of 1 MiB and less (huge blocks realloc shrank in place) have a
 * bin of their own: however many are cached after it, a region of 1.2 MB
 * is still found for a request it fits. */
Test(lru, regions_of_1_mib_and_less_hide_no_fit)
{
  set_policy(0);
  hakmem_options.lru_max = 1024;
  enum { SHRUNK = 12 };
  char *fit = malloc(opaque_size(1200000)), *shrunk[SHRUNK];
  cr_assert_not_null(fit);
  struct region_header *h = region_of(fit);
  for (int i = 0; i < SHRUNK; i++) {
    shrunk[i] = realloc(malloc(opaque_size(1100000)), opaque_size(530000));
    cr_assert_not_null(shrunk[i]);
    cr_assert_leq(region_of(shrunk[i])->size, MiB, "test premise: realloc shrank the region in place");
  }
  free(fit);
  for (int i = 0; i < SHRUNK; i++)
    free(shrunk[i]);
  struct region_header *t = lru_take(1150000, 4 * MiB);
  cr_assert_eq(t, h, "the cached 1.2 MB region was not found behind %d smaller ones", SHRUNK);
  region_unmap(t, true);
  lru_trim(1);
}

/* ---- calloc after lazy zeroing ---- */

/* A huge block's region released by MADV_DONTNEED comes back for calloc,
 * which knows its pages are zero and writes none of them. */
Test(lru, calloc_of_a_released_huge_region_writes_no_page)
{
  set_policy(1);
  const size_t size = 3 * MiB;
  char *p = malloc(opaque_size(size));
  cr_assert_not_null(p);
  memset(p, 0x77, size);
  struct region_header *h = region_of(p);
  cr_assert_not_null(h);
  free(p);
  cr_assert_eq(h->in_lru, 1);
  lru_trim(0);
  cr_assert_eq(h->pages, HAKMEM_SUPPLY_REFAULT);
  size_t body = h->size - PAGE_SIZE;
  cr_assert_eq(resident_pages((char *)h + PAGE_SIZE, body), 0);

  char *q = calloc(1, opaque_size(size));
  cr_assert_eq(q, p, "the cached region was not reused (%p, was %p)", (void *)q, (void *)p);
  cr_assert_eq(resident_pages((char *)h + PAGE_SIZE, body), 0,
               "calloc wrote %zu pages it knew to be zero", resident_pages((char *)h + PAGE_SIZE, body));
  cr_assert(all_bytes(q, size, 0), "calloc returned non-zero bytes");
  free(q);
}

/* The same for a large run in a SuperSlab taken from the LRU after
 * MADV_DONTNEED; with policy 0 the pages are dirty and calloc clears them.
 * Large SuperSlabs that exist already (the test runner's) are filled
 * first, so that a run must come from a SuperSlab taken from the LRU. */
#define RUN (512 * KiB)

static char *calloc_from_a_cached_superslab(int policy, void **fillers, unsigned *nfillers)
{
  set_policy(policy);
  struct superslab *ss = dirty_superslab(0x99);
  superslab_retire(ss);
  lru_trim(0);
  for (unsigned i = 0; i < 64; i++) {
    char *q = calloc(1, opaque_size(RUN));
    cr_assert_not_null(q);
    cr_assert_eq(region_map_kind((uintptr_t)q), REGION_LARGE);
    if ((void *)superslab_of(q) == (void *)ss)
      return q;
    cr_assert_eq(ss->h.in_lru, 1, "the cached SuperSlab was taken for something else");
    fillers[(*nfillers)++] = q;
  }
  cr_assert_fail("64 large runs and none from the cached SuperSlab %p", (void *)ss);
  return NULL;
}

static void free_all(void **blocks, unsigned n)
{
  for (unsigned i = 0; i < n; i++)
    free(blocks[i]);
}

Test(lru, calloc_of_a_released_superslab_writes_no_page)
{
  void *fillers[64];
  unsigned nfillers = 0;
  char *q = calloc_from_a_cached_superslab(1, fillers, &nfillers);
  cr_assert_eq(resident_pages(q, RUN), 0, "calloc wrote %zu pages it knew to be zero", resident_pages(q, RUN));
  cr_assert(all_bytes(q, RUN, 0));
  free(q);
  free_all(fillers, nfillers);
}

Test(lru, calloc_of_a_kept_superslab_clears_it)
{
  void *fillers[64];
  unsigned nfillers = 0;
  char *q = calloc_from_a_cached_superslab(0, fillers, &nfillers);
  cr_assert_eq(resident_pages(q, RUN), RUN / PAGE_SIZE, "test premise: policy 0 kept the pages");
  cr_assert(all_bytes(q, RUN, 0), "calloc of pages kept by policy 0 returned old bytes");
  free(q);
  free_all(fillers, nfillers);
}
