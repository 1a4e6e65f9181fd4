/* Description: the pool of pre-zeroed pages and the supply of ranges
 * (pager/pool.c, pager/supply.c) on regions the test maps and registers
 * itself: refill from the kernel, taking spans and putting back what was
 * not moved, recycling a region's pages by UFFDIO_MOVE (holes skipped,
 * the region left absent), background zeroing, trimming above the cap,
 * the refill target's adaptation (it doubles on a miss once the program
 * has used a whole target since the last doubling), the shrink to one bin
 * that malloc_trim asks for (waiting for the pager's trims in flight),
 * what happens when the kernel refuses to take locked pages back, and
 * supply around present pages (EEXIST) by MOVE, COPY and ZEROPAGE. No
 * test thread touches an absent registered page: there is no handler
 * here. */
#include "test_pager_helpers.h"

#include "pool.h"
#include "supply.h"

static struct uffd u;
static struct pool p;

static void setup(void)
{
  skip_unless_uffd(true);
  cr_assert_eq(uffd_open(&u, UFFD_FEATURE_MOVE), 0);
  cr_assert_eq(pool_init(&p, &u, 4 * TUNIT), 0);
  cr_assert(p.can_move);
  cr_assert(pool_expect(&p), "the pool expected supply before any");
}

static void teardown(void)
{
  uffd_close(&u);
  pool_fini(&p);
}

TestSuite(pager_pool, .init = setup, .fini = teardown);

static void refill_all(void)
{
  while (pool_wants_refill(&p))
    if (!pool_refill_step(&p, 64)) break;
}

/* A pool holds nothing until pages are first supplied from it: a process
 * whose threads stay in their first SuperSlabs never fills it, nor one
 * that only trims or idles. */
static void setup_unarmed(void)
{
  skip_unless_uffd(true);
  cr_assert_eq(uffd_open(&u, UFFD_FEATURE_MOVE), 0);
  cr_assert_eq(pool_init(&p, &u, 4 * TUNIT), 0);
}

TestSuite(pager_pool_unarmed, .init = setup_unarmed, .fini = teardown);

/* mlock of a 2 MiB bin, or a skip where RLIMIT_MEMLOCK is below it. */
#define MLOCK_OR_SKIP(call)                                                                          \
  do {                                                                                               \
    if ((call) != 0) {                                                                               \
      if (errno == ENOMEM || errno == EPERM)                                                         \
        cr_skip_test("%s: %s (RLIMIT_MEMLOCK below 2 MiB?): nothing to test here", #call, strerror(errno)); \
      cr_assert_fail("%s: %s", #call, strerror(errno));                                              \
    }                                                                                                \
  } while (0)

Test(pager_pool_unarmed, stays_empty_until_the_first_supply)
{
  cr_assert_eq(p.target_pages, 0);
  cr_assert_not(pool_wants_refill(&p));
  pool_adapt(&p, 1);
  pool_adapt(&p, 1);
  cr_assert_eq(pool_shrink(&p, NULL), 0);
  cr_assert_not(pool_wants_refill(&p), "idling or a trim filled an unused pool");
  cr_assert(pool_expect(&p));
  cr_assert_not(pool_expect(&p), "armed twice");
  cr_assert_eq(p.target_pages, POOL_BIN_PAGES);
  refill_all();
  cr_assert_eq(p.clean_pages, POOL_BIN_PAGES);
}

/* A take that finds an unarmed pool empty arms it as well. */
Test(pager_pool_unarmed, a_miss_arms_it_as_well)
{
  struct pool_span s;
  cr_assert_eq(pool_take(&p, 16, &s), 0);
  pool_grow_on_miss(&p);
  cr_assert_eq(p.target_pages, POOL_BIN_PAGES);
}

Test(pager_pool, refill_then_take_and_put_back)
{
  cr_assert_eq(pool_level(&p), 0);
  refill_all();
  cr_assert_eq(p.clean_pages, p.target_pages);
  cr_assert_eq(resident_pages((void *)pool_bin_addr(&p, (uint32_t)p.clean.head), TUNIT), POOL_BIN_PAGES);
  struct pool_span a, b;
  cr_assert_eq(pool_take(&p, 16, &a), 16);
  cr_assert_eq(pool_take(&p, 16, &b), 16);
  cr_assert_eq(b.addr, a.addr + 16 * TPAGE, "spans come from the front of one bin");
  pool_put(&p, &b, 6); /* b is at the front: its 6 unmoved pages go back */
  cr_assert_eq(p.clean_pages, p.target_pages - 26);
  pool_put(&p, &a, 3); /* a is not: its 3 pages are given back to the kernel */
  cr_assert_eq(p.clean_pages, p.target_pages - 26);
  cr_assert_eq(resident_pages((void *)(a.addr + 13 * TPAGE), 3 * TPAGE), 0);
}

Test(pager_pool, a_drained_bin_becomes_empty_when_its_spans_are_back)
{
  refill_all();
  uint32_t bin = (uint32_t)p.clean.head;
  struct pool_span s;
  cr_assert_eq(pool_take(&p, POOL_BIN_PAGES, &s), POOL_BIN_PAGES);
  cr_assert_eq(p.bins[bin].state, BIN_DRAINED);
  struct pool_span none;
  cr_assert_eq(pool_take(&p, 1, &none), 0, "nothing clean is left");
  pool_put(&p, &s, 0);
  cr_assert_eq(p.bins[bin].state, BIN_EMPTY);
}

Test(pager_pool, reclaim_moves_present_pages_and_leaves_the_range_absent)
{
  char *r = map_units(TUNIT);
  cr_assert_eq(uffd_register(&u, (uintptr_t)r, TUNIT, NULL), 0);
  int err;
  /* pages 1..99 and 200..299 present with data, the rest holes */
  cr_assert_eq(uffd_copy(&u, (uintptr_t)r, (uintptr_t)p.zero, 100 * TPAGE, 0, &err), 100 * TPAGE);
  cr_assert_eq(uffd_copy(&u, (uintptr_t)r + 200 * TPAGE, (uintptr_t)p.zero, 100 * TPAGE, 0, &err), 100 * TPAGE);
  memset(r, 0xab, 100 * TPAGE);
  memset(r + 200 * TPAGE, 0xcd, 100 * TPAGE);
  uint64_t moved = 0;
  cr_assert_eq(pool_reclaim(&p, (uintptr_t)r + TPAGE, TUNIT - TPAGE, &moved), 0);
  cr_assert_eq(moved, 199);
  cr_assert_eq(resident_pages(r, TUNIT), 1, "only the header page stays");
  cr_assert_eq(p.dirty_pages, 199);
  uint32_t bin = (uint32_t)p.dirty.head;
  const unsigned char *b = (const unsigned char *)pool_bin_addr(&p, bin);
  cr_assert_eq(b[0], 0xab);
  cr_assert_eq(b[99 * TPAGE], 0xcd, "runs are packed");
  uint64_t ns = 0;
  while (pool_has_dirty(&p)) pool_zero_step(&p, 64, &ns);
  cr_assert_eq(p.clean_pages, 199);
  cr_assert(all_zero((const char *)b, 199 * TPAGE));
  cr_assert_gt(ns, 0);
  munmap(r, TUNIT);
}

Test(pager_pool, trim_gives_back_what_exceeds_the_cap)
{
  refill_all();
  p.keep_pages = 0;
  uint32_t bins[8], n = pool_trim_pick(&p, bins, 8);
  cr_assert_eq(n, p.target_pages / POOL_BIN_PAGES);
  for (uint32_t i = 0; i < n; i++) {
    cr_assert_eq(madvise((void *)pool_bin_addr(&p, bins[i]), TUNIT, MADV_DONTNEED), 0);
    cr_assert_eq(pool_trimmed(&p, bins[i]), POOL_BIN_PAGES);
  }
  cr_assert_eq(pool_level(&p), 0);
}

/* Take a whole target's worth, as moves would, then miss. */
static void use_the_target(void)
{
  refill_all();
  struct pool_span s;
  uint64_t need = p.target_pages;
  while (need) {
    uint32_t n = pool_take(&p, (uint32_t)need, &s);
    cr_assert_gt(n, 0);
    cr_assert_eq(madvise((void *)s.addr, (size_t)n * TPAGE, MADV_DONTNEED), 0);
    pool_put(&p, &s, 0);
    need -= n;
  }
  cr_assert_eq(pool_take(&p, 1, &s), 0);
}

Test(pager_pool, the_refill_target_grows_on_misses_and_shrinks_when_idle)
{
  uint64_t t0 = p.target_pages;
  struct pool_span s;
  cr_assert_eq(pool_take(&p, 1, &s), 0);
  pool_adapt(&p, 3);
  cr_assert_eq(p.target_pages, t0, "a miss before a target's worth was used: no growth");
  use_the_target();
  pool_adapt(&p, 3);
  cr_assert_eq(p.target_pages, 2 * t0);
  cr_assert_eq(pool_take(&p, 1, &s), 0);
  pool_adapt(&p, 3);
  cr_assert_eq(p.target_pages, 2 * t0, "a miss with little used since the last doubling: no growth");
  pool_adapt(&p, 3);
  pool_adapt(&p, 3);
  pool_adapt(&p, 3);
  cr_assert_eq(p.target_pages, POOL_BIN_PAGES, "idle: back to one bin");
  cr_assert_eq(p.keep_pages, POOL_BIN_PAGES);
}

Test(pager_pool, supply_moves_around_present_pages)
{
  refill_all();
  char *r = map_units(TUNIT);
  cr_assert_eq(uffd_register(&u, (uintptr_t)r, TUNIT, NULL), 0);
  int err;
  cr_assert_eq(uffd_copy(&u, (uintptr_t)r + 5 * TPAGE, (uintptr_t)p.zero, 2 * TPAGE, 0, &err), 2 * TPAGE);
  r[5 * TPAGE] = 42;
  struct supply_result res = { 0 };
  uint64_t before = p.clean_pages;
  uintptr_t done = supply_range(&p, true, (uintptr_t)r, (uintptr_t)r + 64 * TPAGE, false, &res);
  cr_assert_eq(done, (uintptr_t)r + 64 * TPAGE);
  cr_assert_eq(res.err, 0);
  cr_assert_eq(res.moved, 62);
  cr_assert_eq(p.clean_pages, before - 62, "the skipped pages' sources went back");
  cr_assert_eq(resident_pages(r, 64 * TPAGE), 64);
  cr_assert_eq(r[5 * TPAGE], 42, "a present page is left as it was");
  r[5 * TPAGE] = 0;
  cr_assert(all_zero(r, 64 * TPAGE));
  munmap(r, TUNIT);
}

/* UFFDIO_MOVE refuses to move between a locked and an unlocked mapping: a
 * program's mlockall(MCL_CURRENT) locks the pool's area, not the regions
 * mapped after it. The first refused move unlocks the pool and puts its
 * span back; the supply goes on by copy, and the next moves work. */
Test(pager_pool, a_refused_move_unlocks_the_pool)
{
  refill_all();
  char *bin = (char *)pool_bin_addr(&p, (uint32_t)p.clean.head);
  MLOCK_OR_SKIP(mlock(bin, TUNIT));
  char *r = map_units(2 * TUNIT);
  cr_assert_eq(uffd_register(&u, (uintptr_t)r, 2 * TUNIT, NULL), 0);
  struct supply_result first = { 0 }, second = { 0 };
  uint64_t before = p.clean_pages;
  uintptr_t done = supply_range(&p, true, (uintptr_t)r, (uintptr_t)r + 64 * TPAGE, false, &first);
  cr_assert_eq(done, (uintptr_t)r + 64 * TPAGE, "the supply did not finish by copy");
  cr_assert_eq(first.moved, 0);
  cr_assert_eq(first.copied, 64);
  cr_assert_eq(p.clean_pages, before, "the refused span's pages were not put back");
  refill_all();
  done = supply_range(&p, true, (uintptr_t)r + TUNIT, (uintptr_t)r + TUNIT + 64 * TPAGE, false, &second);
  cr_assert_eq(done, (uintptr_t)r + TUNIT + 64 * TPAGE);
  cr_assert_eq(second.moved, 64, "the pool is still locked: %llu moved", (unsigned long long)second.moved);
  cr_assert(all_zero(r, 64 * TPAGE) && all_zero(r + TUNIT, 64 * TPAGE));
  munmap(r, 2 * TUNIT);
}

Test(pager_pool, supply_without_the_pool_copies_and_zeropage_maps_the_zero_page)
{
  char *r = map_units(TUNIT);
  cr_assert_eq(uffd_register(&u, (uintptr_t)r, TUNIT, NULL), 0);
  struct supply_result res = { 0 };
  supply_range(&p, false, (uintptr_t)r, (uintptr_t)r + 32 * TPAGE, false, &res);
  cr_assert_eq(res.copied, 32);
  cr_assert_eq(res.moved, 0);
  memset(&res, 0, sizeof res);
  supply_zeropage(&p, (uintptr_t)r, (uintptr_t)r + 64 * TPAGE, false, &res);
  cr_assert_eq(res.zeroed, 32, "only the absent half");
  cr_assert(all_zero(r, 64 * TPAGE));
  r[40 * TPAGE] = 1; /* a write to the zero page: the kernel copies it */
  cr_assert_eq(r[40 * TPAGE], 1);
  munmap(r, TUNIT);
}

Test(pager_pool, zeroing_clears_every_byte)
{
  static char buf[3 * 4096] __attribute__((aligned(64)));
  memset(buf, 0xff, sizeof buf);
  pool_zero(buf, sizeof buf);
  cr_assert(all_zero(buf, sizeof buf));
}

/* malloc_trim's part: a pool grown to four bins gives back all but one,
 * at once, and refills no further than that one. */
Test(pager_pool, shrink_gives_back_all_but_one_bin_now)
{
  use_the_target();
  pool_adapt(&p, 3);
  refill_all();
  cr_assert_gt(pool_level(&p), POOL_BIN_PAGES, "the pool did not grow past one bin");
  uint64_t level = pool_level(&p);
  cr_assert_eq(pool_shrink(&p, NULL), level - POOL_BIN_PAGES);
  cr_assert_eq(pool_level(&p), POOL_BIN_PAGES);
  cr_assert_eq(p.target_pages, POOL_BIN_PAGES);
  cr_assert_eq(p.keep_pages, POOL_BIN_PAGES);
  uint64_t resident = 0;
  for (uint32_t b = 0; b < p.nbins; b++) resident += resident_pages((void *)pool_bin_addr(&p, b), TUNIT);
  cr_assert_eq(resident, POOL_BIN_PAGES, "%llu pages of the pool resident", (unsigned long long)resident);
  refill_all();
  cr_assert_eq(pool_level(&p), POOL_BIN_PAGES);
}

/* The pager thread's trim in flight (an io_uring madvise of a bin it
 * picked) when malloc_trim comes: the shrink returns once that bin is
 * back too, so that the memory is gone when malloc_trim returns, and says
 * how many pages it waited for. A test thread plays the pager: it
 * finishes its trim once the shrink has started. */
static uint32_t inflight_bin;

static void *finish_trim_once_the_shrink_started(void *arg)
{
  (void)arg;
  while (__atomic_load_n(&p.keep_pages, __ATOMIC_ACQUIRE) != POOL_BIN_PAGES) usleep(100);
  madvise((void *)pool_bin_addr(&p, inflight_bin), POOL_BIN_SIZE, MADV_DONTNEED);
  pool_trimmed(&p, inflight_bin);
  return NULL;
}

Test(pager_pool, shrink_waits_for_the_pagers_trim_in_flight)
{
  use_the_target();
  pool_adapt(&p, 3);
  refill_all();
  uint64_t level = pool_level(&p);
  cr_assert_geq(level, 2 * POOL_BIN_PAGES, "the pool did not grow to two bins");
  p.keep_pages = level - POOL_BIN_PAGES; /* the pager's cap: one bin over */
  cr_assert_eq(pool_trim_pick(&p, &inflight_bin, 1), 1);
  /* Not one bin, so that only the shrink's own store, under the lock it
   * notes the trims in flight under, lets the helper go on. */
  p.keep_pages = level;
  pthread_t pager_thread;
  cr_assert_eq(pthread_create(&pager_thread, NULL, finish_trim_once_the_shrink_started, NULL), 0);
  uint64_t waited = 0;
  pool_shrink(&p, &waited);
  uint8_t state = __atomic_load_n(&p.bins[inflight_bin].state, __ATOMIC_ACQUIRE);
  cr_assert_neq(state, BIN_TRIMMING, "malloc_trim returned with the pager's trim in flight");
  cr_assert_eq(waited, POOL_BIN_PAGES);
  uint64_t resident = 0;
  for (uint32_t b = 0; b < p.nbins; b++) resident += resident_pages((void *)pool_bin_addr(&p, b), TUNIT);
  cr_assert_eq(resident, POOL_BIN_PAGES, "%llu pages of the pool resident", (unsigned long long)resident);
  pthread_join(pager_thread, NULL);
}

/* Locked pages (mlock, mlockall) cannot be given back: MADV_DONTNEED
 * fails with EINVAL. The shrink then keeps the bins it could not release,
 * as dirty, and the background zeroing makes them clean again. */
Test(pager_pool, shrink_keeps_the_bins_whose_pages_are_locked)
{
  use_the_target();
  pool_adapt(&p, 3);
  refill_all();
  uint64_t level = pool_level(&p);
  cr_assert_gt(level, POOL_BIN_PAGES, "the pool did not grow past one bin");
  void *first = (void *)pool_bin_addr(&p, (uint32_t)p.clean.head);
  MLOCK_OR_SKIP(mlock(first, TUNIT));
  cr_assert_eq(pool_shrink(&p, NULL), 0, "a locked bin was counted as given back");
  cr_assert_eq(pool_level(&p), level);
  cr_assert_gt(p.dirty_pages, 0, "the refused bins were not put back dirty");
  cr_assert_eq(resident_pages(first, TUNIT), POOL_BIN_PAGES);
  uint64_t ns = 0;
  while (pool_has_dirty(&p)) cr_assert_gt(pool_zero_step(&p, 64, &ns), 0);
  cr_assert_eq(p.clean_pages, level);
  cr_assert(all_zero(first, TUNIT));
  cr_assert_eq(munlock(first, TUNIT), 0);
  cr_assert_eq(pool_shrink(&p, NULL), level - POOL_BIN_PAGES);
  cr_assert_eq(pool_level(&p), POOL_BIN_PAGES);
}

/* A present page in an empty bin (a span's unmoved pages whose release was
 * refused, or the pool's area filled by mlockall) stops UFFDIO_COPY with
 * EEXIST. The refill clears it and keeps it, and goes on. */
Test(pager_pool, a_locked_stray_page_is_cleared_and_kept_by_the_refill)
{
  uint32_t bin = (uint32_t)p.empty.head;
  char *stray = (char *)pool_bin_addr(&p, bin) + 5 * TPAGE;
  static char junk[4096] __attribute__((aligned(4096)));
  int err;
  memset(junk, 0xAB, sizeof junk);
  cr_assert_eq(uffd_copy(&u, (uintptr_t)stray, (uintptr_t)junk, TPAGE, 0, &err), TPAGE);
  /* The whole bin, locked as it faults (no fault here: no handler): a copy
   * across two mappings would fail with ENOENT. */
  MLOCK_OR_SKIP(mlock2((char *)pool_bin_addr(&p, bin), TUNIT, MLOCK_ONFAULT));
  refill_all();
  cr_assert_eq(p.clean_pages, POOL_BIN_PAGES);
  cr_assert_eq(p.bins[bin].state, BIN_CLEAN, "the refill filled another bin");
  cr_assert(all_zero((char *)pool_bin_addr(&p, bin), TUNIT), "the stray page was not cleared");
  cr_assert_eq(munlock((char *)pool_bin_addr(&p, bin), TUNIT), 0);
}
