/* Description: unit tests of lib/os.h, every kernel call the allocator
 * makes for memory. os_map_aligned honours alignments from a page to
 * 16 MiB and counts what it maps; os_unmap gives it back; os_remap_aligned
 * grows and shrinks a mapping with its contents, in place where room was
 * left above it; os_release keeps, drops
 * (MADV_DONTNEED) or lazily frees (MADV_FREE) pages, counted and timed,
 * and os_release_region names the ledger path the pages take next; the
 * page-supplier hooks are called where os.h says (mapping, unmapping,
 * direct supply, reclaim) and their declines fall back to the kernel; and
 * the documented fallbacks hold: os_test_disable_populate(true) makes
 * os_supply count pages with no time and no call, and
 * os_test_disable_madv_free(true) turns MADV_FREE into MADV_DONTNEED, so
 * the ledger says refault. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

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

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

static struct heap test_heap;

#define DELTA(a, b, field) ((long long)((a).field - (b).field))
#define ROW(a, b, path, col) DELTA(a, b, supply[HAKMEM_SUPPLY_##path].col)

static size_t resident_pages(const void *addr, size_t len)
{
  static unsigned char vec[4096];
  size_t pages = len / PAGE_SIZE, n = 0;
  cr_assert_leq(pages, sizeof vec);
  cr_assert_eq(mincore((void *)addr, len, vec), 0, "mincore(%p, %zu): %s", addr, len, strerror(errno));
  for (size_t i = 0; i < pages; i++)
    n += vec[i] & 1;
  return n;
}

static void expect_absent(const void *addr, size_t len, const char *what)
{
  size_t n = resident_pages(addr, len);
  if (n && thp_in_use())
    cr_skip_test("transparent huge pages in use: residency of %s says nothing", what);
  cr_assert_eq(n, 0, "%s: %zu of %zu pages resident", what, n, len / PAGE_SIZE);
}

static void fill(void *p, size_t n, unsigned char seed)
{
  unsigned char *b = p;
  for (size_t i = 0; i < n; i++)
    b[i] = (unsigned char)(seed + i / PAGE_SIZE + 1); /* never 0 */
}

static int page_is(const void *page, unsigned char v)
{
  const unsigned char *b = page;
  for (size_t i = 0; i < PAGE_SIZE; i++)
    if (b[i] != v)
      return 0;
  return 1;
}

/* ---- mapping ---- */

Test(os, map_aligned_at_aligns_the_address_at_the_offset)
{
  static const size_t aligns[] = { 4 * MiB, 16 * MiB, 512 * MiB };
  for (size_t a = 0; a < sizeof aligns / sizeof aligns[0]; a++) {
    size_t len = 6 * MiB;
    struct hakmem_stats s0 = snap();
    char *p = os_map_aligned_at(len, aligns[a], 2 * MiB, 0);
    struct hakmem_stats s1 = snap();
    cr_assert_not_null(p, "os_map_aligned_at(6 MiB, %zu, 2 MiB)", aligns[a]);
    cr_assert_eq((uintptr_t)(p + 2 * MiB) % aligns[a], 0, "os_map_aligned_at(6 MiB, %zu, 2 MiB) = %p", aligns[a],
                 (void *)p);
    cr_assert_eq(DELTA(s1, s0, bytes_mapped), (long long)len, "the excess was not unmapped");
    p[0] = 1;
    p[len - 1] = 2;
    cr_assert_eq(os_unmap(p, len, len), 0);
  }
}

Test(os, map_aligned_honours_the_alignment)
{
  static const size_t aligns[] = { 4 * KiB, 64 * KiB, 2 * MiB, 4 * MiB, 16 * MiB };
  static const size_t lens[] = { 4 * KiB, MiB, 2 * MiB, 6 * MiB };
  for (size_t a = 0; a < sizeof aligns / sizeof aligns[0]; a++) {
    for (size_t l = 0; l < sizeof lens / sizeof lens[0]; l++) {
      struct hakmem_stats s0 = snap();
      char *p = os_map_aligned(lens[l], aligns[a]);
      struct hakmem_stats s1 = snap();
      cr_assert_not_null(p, "os_map_aligned(%zu, %zu)", lens[l], aligns[a]);
      cr_assert_eq((uintptr_t)p % aligns[a], 0, "os_map_aligned(%zu, %zu) = %p", lens[l], aligns[a], (void *)p);
      cr_assert_eq(DELTA(s1, s0, bytes_mapped), (long long)lens[l]);
      cr_assert_geq(DELTA(s1, s0, mmap_calls), 1);
      cr_assert_eq(region_map_kind((uintptr_t)p), REGION_NONE, "a bare mapping is in the region map");
      p[0] = 1;
      p[lens[l] - 1] = 2;
      cr_assert_eq(os_unmap(p, lens[l], lens[l]), 0);
      struct hakmem_stats s2 = snap();
      cr_assert_eq(DELTA(s2, s1, bytes_mapped), -(long long)lens[l]);
      cr_assert_eq(DELTA(s2, s1, munmap_calls), 1);
      cr_assert_eq(DELTA(s2, s1, pages_released), (long long)(lens[l] / PAGE_SIZE));
    }
  }
}

/* Regions mapped one after another go each just below the last, in one
 * mmap call, where the kernel's top-down layout leaves room (another
 * thread's mapping may take the place now and then: at least half must). */
Test(os, map_costs_one_call_below_the_last_region)
{
  enum { N = 12 };
  char *p[N];
  int one_call = 0;
  const size_t lens[2] = { 2 * MiB, MiB + MiB / 8 }; /* SuperSlabs and huge regions */
  for (int i = 0; i < N; i++) {
    struct hakmem_stats s0 = snap();
    p[i] = os_map_aligned(lens[i % 2], 2 * MiB);
    struct hakmem_stats s1 = snap();
    cr_assert_not_null(p[i]);
    cr_assert_eq((uintptr_t)p[i] % (2 * MiB), 0);
    /* Else over-map and trim, at most one failed try first. */
    cr_assert_leq(DELTA(s1, s0, mmap_calls), 2);
    cr_assert_leq(DELTA(s1, s0, munmap_calls), 2);
    if (i > 0 && DELTA(s1, s0, mmap_calls) == 1 && DELTA(s1, s0, munmap_calls) == 0) {
      cr_assert_lt(p[i], p[i - 1], "a one-call mapping goes below the last one");
      cr_assert_lt((size_t)(p[i - 1] - p[i]), 4 * MiB, "and next to it");
      one_call++;
    }
  }
  cr_assert_geq(one_call, N / 2, "only %d of the %d mappings after the first took one mmap call", one_call, N - 1);
  for (int i = 0; i < N; i++)
    os_unmap(p[i], lens[i % 2], lens[i % 2]);
}

/* Mapping and unmapping regions, one at a time or a queue of them, reuses
 * the address space the others freed instead of walking down it: 300
 * regions of 64 MiB stay within a few GiB (without the reset of the hint,
 * 19 GiB and more). */
static void expect_bounded_spread(unsigned live)
{
  enum { ROUNDS = 300, QUEUE = 8 };
  const size_t len = 64 * MiB;
  char *queue[QUEUE] = { 0 };
  uintptr_t lo = UINTPTR_MAX, hi = 0;
  for (unsigned i = 0; i < ROUNDS; i++) {
    char *p = os_map_aligned(len, 2 * MiB);
    cr_assert_not_null(p);
    if ((uintptr_t)p < lo) lo = (uintptr_t)p;
    if ((uintptr_t)p + len > hi) hi = (uintptr_t)p + len;
    if (queue[i % live]) cr_assert_eq(os_unmap(queue[i % live], len, len), 0);
    queue[i % live] = p;
  }
  for (unsigned i = 0; i < live; i++)
    if (queue[i]) os_unmap(queue[i], len, len);
  cr_assert_lt(hi - lo, (uintptr_t)4 << 30, "%u live regions at a time spread over %zu MiB", live,
               (size_t)((hi - lo) >> 20));
}

static unsigned mappings_of_the_process(void)
{
  FILE *f = fopen("/proc/self/maps", "r");
  cr_assert_not_null(f);
  unsigned n = 0;
  for (int c; (c = fgetc(f)) != EOF;)
    n += c == '\n';
  fclose(f);
  return n;
}

/* An aligned mapping is over-mapped and cut to size; a cut the kernel
 * refuses (a merged mapping split at the limit of mappings) fails the
 * request with ENOMEM and leaves nothing mapped. With the hint cleared
 * (its region unmapped), the next mapping is over-mapped: its first
 * munmap is a cut. When only a later cut is refused, the mapping may have
 * needed none, and is whole. */
Test(os, a_refused_cut_fails_the_mapping_and_leaves_nothing_behind)
{
  const size_t len = 4 * MiB, align = 2 * MiB;
  for (unsigned nth = 1; nth <= 2; nth++) {
    char *hinted = os_map_aligned(len, align);
    cr_assert_not_null(hinted);
    cr_assert_eq(os_unmap(hinted, len, len), 0); /* clears the hint */
    unsigned maps = mappings_of_the_process();
    struct hakmem_stats s0 = snap();
    os_test_refuse_unmap(nth);
    errno = 0;
    char *p = os_map_aligned(len, align);
    int err = errno;
    os_test_refuse_unmap(0);
    struct hakmem_stats s1 = snap();
    if (nth == 1)
      cr_assert_null(p, "the first cut was refused, and the mapping kept");
    if (p) {
      cr_assert_eq((uintptr_t)p % align, 0);
      memset(p, 1, len);
      cr_assert_eq(DELTA(s1, s0, bytes_mapped), (long long)len);
      cr_assert_eq(os_unmap(p, len, len), 0);
    } else {
      cr_assert_eq(err, ENOMEM);
      cr_assert_eq(DELTA(s1, s0, bytes_mapped), 0);
      cr_assert_eq(DELTA(s1, s0, mmap_calls), 1, "an over-mapping, not a hinted one");
    }
    cr_assert_eq(mappings_of_the_process(), maps, "refusing cut %u left a mapping behind", nth);
  }
}

Test(os, mapping_and_unmapping_one_region_reuses_its_space) { expect_bounded_spread(1); }

Test(os, a_queue_of_regions_reuses_the_space_of_the_oldest) { expect_bounded_spread(8); }

Test(os, remap_grows_and_shrinks_keeping_the_contents)
{
  char *p = os_map_aligned(2 * MiB, 2 * MiB);
  cr_assert_not_null(p);
  fill(p, 2 * MiB, 3);
  struct hakmem_stats s0 = snap();
  char *q = os_remap_aligned(p, 2 * MiB, 8 * MiB, 2 * MiB, 0);
  struct hakmem_stats s1 = snap();
  cr_assert_not_null(q);
  cr_assert_eq((uintptr_t)q % (2 * MiB), 0, "a moved mapping lost its alignment: %p", (void *)q);
  cr_assert_eq(DELTA(s1, s0, bytes_mapped), (long long)(6 * MiB));
  for (size_t i = 0; i < 2 * MiB; i += PAGE_SIZE)
    cr_assert(page_is(q + i, (unsigned char)(3 + i / PAGE_SIZE + 1)), "page %zu changed in the move", i / PAGE_SIZE);
  memset(q + 2 * MiB, 0x44, 6 * MiB);
  char *r = os_remap_aligned(q, 8 * MiB, 3 * MiB, 2 * MiB, 0);
  struct hakmem_stats s2 = snap();
  cr_assert_eq(r, q, "shrinking a mapping moved it");
  cr_assert_eq(DELTA(s2, s1, bytes_mapped), -(long long)(5 * MiB));
  cr_assert(page_is(r + 2 * MiB, 0x44));
  cr_assert(page_is(r, 4));
  cr_assert_eq(os_unmap(r, 3 * MiB, 3 * MiB), 0);
}

/* A mapping with room, whether the hint placed it (that much below the
 * last one) or the kernel did, has that much free above it, and the next
 * mapping goes below it: it grows where it is. */
Test(os, a_mapping_with_room_grows_in_place)
{
  cr_assert_not_null(os_map_aligned(2 * MiB, 2 * MiB)); /* a last mapping to go below */
  char *p = os_map_aligned_at(2 * MiB, 2 * MiB, 0, 6 * MiB);
  cr_assert_not_null(p);
  char *below = os_map_aligned(2 * MiB, 2 * MiB);
  cr_assert_not_null(below);
  cr_assert_lt((uintptr_t)below, (uintptr_t)p, "the next mapping went above: %p, %p", (void *)below, (void *)p);
  fill(p, 2 * MiB, 9);
  struct hakmem_stats s0 = snap();
  char *q = os_remap_aligned(p, 2 * MiB, 8 * MiB, 2 * MiB, 8 * MiB);
  struct hakmem_stats s1 = snap();
  cr_assert_eq(q, p, "a mapping with room moved to grow");
  cr_assert_eq(DELTA(s1, s0, mmap_calls), 1, "one mremap, in place");
  for (size_t i = 0; i < 2 * MiB; i += PAGE_SIZE)
    cr_assert(page_is(q + i, (unsigned char)(9 + i / PAGE_SIZE + 1)), "page %zu changed", i / PAGE_SIZE);
  memset(q + 2 * MiB, 0x44, 6 * MiB);
  cr_assert_eq(os_unmap(q, 8 * MiB, 8 * MiB), 0);
}

/* With no hint (its region unmapped), the kernel places the mapping: the
 * room is mapped with it and cut off, a hole above it. */
Test(os, a_mapping_the_kernel_places_keeps_its_room)
{
  char *hinted = os_map_aligned(2 * MiB, 2 * MiB);
  cr_assert_not_null(hinted);
  cr_assert_eq(os_unmap(hinted, 2 * MiB, 0), 0); /* clears the hint */
  struct hakmem_stats s0 = snap();
  char *p = os_map_aligned_at(2 * MiB, 2 * MiB, 0, 6 * MiB);
  struct hakmem_stats s1 = snap();
  cr_assert_not_null(p);
  cr_assert_eq(DELTA(s1, s0, bytes_mapped), (long long)(2 * MiB), "the room was counted as mapped");
  fill(p, 2 * MiB, 5);
  cr_assert(os_resize_in_place(p, 2 * MiB, 8 * MiB), "no room above a mapping the kernel placed");
  cr_assert(page_is(p + PAGE_SIZE, 7));
  memset(p + 2 * MiB, 1, 6 * MiB);
  cr_assert_eq(os_unmap(p, 8 * MiB, 8 * MiB), 0);
}

/* A mapping with a page mapped right above it moves to grow, and gets
 * room where it goes. */
Test(os, a_mapping_without_room_moves_to_grow_and_gets_room)
{
  char *q = os_map_aligned(2 * MiB, 2 * MiB);
  cr_assert_not_null(q);
  char *blocker = mmap(q + 2 * MiB, PAGE_SIZE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  cr_assert(blocker != MAP_FAILED || errno == EEXIST, "mmap above the mapping: %s", strerror(errno));
  fill(q, 2 * MiB, 9);
  char *r = os_remap_aligned(q, 2 * MiB, 4 * MiB, 2 * MiB, 4 * MiB);
  cr_assert_not_null(r);
  cr_assert_neq(r, q, "grew in place into a mapping");
  cr_assert(page_is(r, 10));
  cr_assert_not_null(os_map_aligned(2 * MiB, 2 * MiB)); /* below r, past its room */
  struct hakmem_stats s0 = snap();
  cr_assert_eq(os_remap_aligned(r, 4 * MiB, 8 * MiB, 2 * MiB, 0), r, "the moved mapping got no room");
  cr_assert_eq(DELTA(snap(), s0, mmap_calls), 1);
  cr_assert(page_is(r + 2 * MiB - PAGE_SIZE, (unsigned char)(9 + 512)));
}

/* ---- releasing ---- */

Test(os, release_keep_changes_nothing)
{
  const size_t len = 64 * PAGE_SIZE;
  char *p = os_map_aligned(len, PAGE_SIZE);
  cr_assert_not_null(p);
  fill(p, len, 10);
  struct hakmem_stats s0 = snap();
  cr_assert_eq(os_release(p, len, OS_RELEASE_KEEP), 0);
  struct hakmem_stats s1 = snap();
  cr_assert_eq(DELTA(s1, s0, madvise_calls), 0);
  cr_assert_eq(DELTA(s1, s0, pages_released), 0);
  cr_assert_eq(resident_pages(p, len), 64);
  for (size_t i = 0; i < 64; i++)
    cr_assert(page_is(p + i * PAGE_SIZE, (unsigned char)(10 + i + 1)));
  os_unmap(p, len, len);
}

Test(os, release_dontneed_drops_the_pages)
{
  const size_t len = 64 * PAGE_SIZE;
  char *p = os_map_aligned(len, PAGE_SIZE);
  cr_assert_not_null(p);
  fill(p, len, 20);
  struct hakmem_stats s0 = snap();
  cr_assert_eq(os_release(p, len, OS_RELEASE_DONTNEED), 0);
  struct hakmem_stats s1 = snap();
  cr_assert_eq(DELTA(s1, s0, madvise_calls), 1);
  cr_assert_gt(DELTA(s1, s0, madvise_ns), 0);
  cr_assert_eq(DELTA(s1, s0, pages_released), 64);
  expect_absent(p, len, "pages after MADV_DONTNEED");
  for (size_t i = 0; i < 64; i++)
    cr_assert(page_is(p + i * PAGE_SIZE, 0), "page %zu is not zero after MADV_DONTNEED", i);
  os_unmap(p, len, len);
}

Test(os, release_free_lets_the_kernel_take_the_pages)
{
  const size_t len = 64 * PAGE_SIZE;
  char *p = os_map_aligned(len, PAGE_SIZE);
  cr_assert_not_null(p);
  fill(p, len, 30);
  struct hakmem_stats s0 = snap();
  cr_assert_eq(os_release(p, len, OS_RELEASE_FREE), 0);
  struct hakmem_stats s1 = snap();
  cr_assert_eq(DELTA(s1, s0, madvise_calls), 1, "MADV_FREE took %lld madvise calls", DELTA(s1, s0, madvise_calls));
  cr_assert_eq(DELTA(s1, s0, pages_released), 64);
  for (size_t i = 0; i < 64; i++) {
    const char *page = p + i * PAGE_SIZE;
    cr_assert(page_is(page, (unsigned char)(30 + i + 1)) || page_is(page, 0),
              "page %zu is neither kept nor zero after MADV_FREE", i);
  }
  /* A page written after MADV_FREE is the program's again. */
  memset(p, 0x66, PAGE_SIZE);
  cr_assert(page_is(p, 0x66));
  os_unmap(p, len, len);
}

Test(os, a_failed_release_is_reported_and_not_counted)
{
  const size_t len = 4 * PAGE_SIZE;
  char *p = os_map_aligned(len, PAGE_SIZE);
  cr_assert_not_null(p);
  struct hakmem_stats s0 = snap();
  cr_assert_eq(os_release(p + 1, len - PAGE_SIZE, OS_RELEASE_DONTNEED), -EINVAL);
  struct hakmem_stats s1 = snap();
  cr_assert_eq(DELTA(s1, s0, pages_released), 0);
  /* The region stays resident: its pages take the reuse path. */
  cr_assert_eq(os_release_region(p + 1, len - PAGE_SIZE, OS_RELEASE_DONTNEED), HAKMEM_SUPPLY_REUSE);
  os_unmap(p, len, len);
}

/* MADV_FREE fails with EINVAL on a kernel before 4.5, but also on a locked
 * range or a bad address: those must not turn it off for good. */
Test(os, an_einval_from_madv_free_on_one_range_keeps_madv_free)
{
  const size_t len = 4 * PAGE_SIZE;
  char *p = os_map_aligned(len, PAGE_SIZE);
  cr_assert_not_null(p);
  cr_assert_eq(os_release(p + 1, len - PAGE_SIZE, OS_RELEASE_FREE), -EINVAL);
  cr_assert_eq(os_release_region(p, len, OS_RELEASE_FREE), HAKMEM_SUPPLY_LAZYFREE,
               "MADV_FREE is off after an EINVAL for a misaligned range");
  memset(p, 1, len);
  if (mlock(p, len) == 0) {
    cr_assert_eq(os_release_region(p, len, OS_RELEASE_FREE), HAKMEM_SUPPLY_REUSE, "a locked range was released");
    cr_assert_eq(munlock(p, len), 0);
    cr_assert_eq(os_release_region(p, len, OS_RELEASE_FREE), HAKMEM_SUPPLY_LAZYFREE,
                 "MADV_FREE is off after an EINVAL for a locked range");
  }
  os_unmap(p, len, len);
}

Test(os, release_region_names_the_path_the_pages_take_next)
{
  const size_t len = 16 * PAGE_SIZE;
  char *p = os_map_aligned(len, PAGE_SIZE);
  cr_assert_not_null(p);
  cr_assert_null(os_page_supplier());
  cr_assert_eq(os_release_region(p, len, OS_RELEASE_KEEP), HAKMEM_SUPPLY_REUSE);
  cr_assert_eq(os_release_region(p, len, OS_RELEASE_DONTNEED), HAKMEM_SUPPLY_REFAULT);
  cr_assert_eq(os_release_region(p, len, OS_RELEASE_FREE), HAKMEM_SUPPLY_LAZYFREE);
  struct hakmem_stats s0 = snap();
  cr_assert_eq(os_release_region(p, len, OS_RELEASE_PAGER), HAKMEM_SUPPLY_REFAULT,
               "without a pager, the pager mode falls back to MADV_DONTNEED");
  struct hakmem_stats s1 = snap();
  cr_assert_eq(DELTA(s1, s0, madvise_calls), 1);
  os_unmap(p, len, len);
}

/* ---- supplying ---- */

Test(os, supply_populates_and_counts_by_path)
{
  const size_t len = 8 * PAGE_SIZE;
  char *p = os_map_aligned(2 * len, PAGE_SIZE);
  cr_assert_not_null(p);
  struct hakmem_stats s0 = snap();
  os_supply(p, len, HAKMEM_SUPPLY_FRESH);
  struct hakmem_stats s1 = snap();
  cr_assert_eq(ROW(s1, s0, FRESH, pages), 8);
  cr_assert_eq(ROW(s1, s0, FRESH, events), 1);
  cr_assert_gt(ROW(s1, s0, FRESH, wait_ns), 0, "MADV_POPULATE_WRITE took no time");
  cr_assert_eq(DELTA(s1, s0, madvise_calls), 1);
  cr_assert_eq(resident_pages(p, len), 8, "supplied pages are not present");
  os_supply(p + len, len, HAKMEM_SUPPLY_REFAULT);
  struct hakmem_stats s2 = snap();
  cr_assert_eq(ROW(s2, s1, REFAULT, pages), 8);
  cr_assert_eq(ROW(s2, s1, FRESH, pages), 0);
  cr_assert_eq(resident_pages(p + len, len), 8);
  os_unmap(p, 2 * len, 2 * len);
}

/* Once a second thread allocates, a single page is left to its fault
 * (madvise would queue behind thread creation on the address space's
 * lock); more pages are still populated in one call. Counted either way. */
Test(os, a_threaded_process_leaves_single_pages_to_their_faults)
{
  char *p = os_map_aligned(4 * PAGE_SIZE, PAGE_SIZE);
  cr_assert_not_null(p);
  os_test_set_threaded(false);
  struct hakmem_stats s0 = snap();
  os_supply(p, PAGE_SIZE, HAKMEM_SUPPLY_FRESH);
  struct hakmem_stats s1 = snap();
  cr_assert_eq(ROW(s1, s0, FRESH, events), 1, "one thread: the page was not populated");
  cr_assert_eq(resident_pages(p, PAGE_SIZE), 1);
  os_test_set_threaded(true);
  os_supply(p + PAGE_SIZE, PAGE_SIZE, HAKMEM_SUPPLY_FRESH);
  struct hakmem_stats s2 = snap();
  cr_assert_eq(ROW(s2, s1, FRESH, pages), 1);
  cr_assert_eq(ROW(s2, s1, FRESH, events), 0, "threaded: a single page was populated");
  cr_assert_eq(DELTA(s2, s1, madvise_calls), 0);
  cr_assert_eq(resident_pages(p + PAGE_SIZE, PAGE_SIZE), 0);
  os_supply(p + 2 * PAGE_SIZE, 2 * PAGE_SIZE, HAKMEM_SUPPLY_FRESH);
  struct hakmem_stats s3 = snap();
  cr_assert_eq(ROW(s3, s2, FRESH, events), 1, "threaded: two pages were not populated in one call");
  cr_assert_eq(resident_pages(p + 2 * PAGE_SIZE, 2 * PAGE_SIZE), 2);
  os_unmap(p, 4 * PAGE_SIZE, 4 * PAGE_SIZE);
}

Test(os, without_populate_supply_counts_pages_with_no_time)
{
  const size_t len = 8 * PAGE_SIZE;
  char *p = os_map_aligned(len, PAGE_SIZE);
  cr_assert_not_null(p);
  os_test_disable_populate(true);
  struct hakmem_stats s0 = snap();
  os_supply(p, len, HAKMEM_SUPPLY_FRESH);
  struct hakmem_stats s1 = snap();
  cr_assert_eq(ROW(s1, s0, FRESH, pages), 8, "the fallback does not count the pages");
  cr_assert_eq(ROW(s1, s0, FRESH, events), 0, "the fallback counts an event it did not make");
  cr_assert_eq(ROW(s1, s0, FRESH, wait_ns), 0, "the fallback counts time it cannot measure");
  cr_assert_eq(DELTA(s1, s0, madvise_calls), 0, "MADV_POPULATE_WRITE was called though disabled");
  expect_absent(p, len, "pages not populated");
  memset(p, 1, len); /* the program faults them in itself */
  cr_assert_eq(resident_pages(p, len), 8);

  /* Slabs still work: their pages are counted, untimed. */
  lru_trim(1);
  struct superslab *ss = superslab_new(&test_heap);
  cr_assert_not_null(ss);
  struct slab *s = superslab_carve_slab(ss, size_to_class(1024));
  struct free_block *head, *tail;
  struct hakmem_stats s2 = snap();
  unsigned got = slab_take(s, 32, 1, &head, &tail);
  struct hakmem_stats s3 = snap();
  cr_assert_gt(got, 0);
  for (struct free_block *b = head; b; b = b->next)
    memset((char *)b + 16, 0x5A, s->block_size - 16);
  cr_assert_gt(ROW(s3, s2, FRESH, pages), 0);
  cr_assert_eq(ROW(s3, s2, FRESH, wait_ns), 0);
  cr_assert_eq(DELTA(s3, s2, madvise_calls), 0);

  os_test_disable_populate(false);
  struct hakmem_stats s4 = snap();
  os_supply(p, len, HAKMEM_SUPPLY_FRESH);
  struct hakmem_stats s5 = snap();
  cr_assert_eq(DELTA(s5, s4, madvise_calls), 1, "populate stays off after it was enabled again");
  superslab_return_slab(ss, s);
  superslab_retire(ss);
  os_unmap(p, len, len);
}

Test(os, without_madv_free_the_free_mode_drops_the_pages)
{
  const size_t len = 16 * PAGE_SIZE;
  char *p = os_map_aligned(len, PAGE_SIZE);
  cr_assert_not_null(p);
  fill(p, len, 40);
  os_test_disable_madv_free(true);
  struct hakmem_stats s0 = snap();
  cr_assert_eq(os_release(p, len, OS_RELEASE_FREE), 0);
  struct hakmem_stats s1 = snap();
  cr_assert_eq(DELTA(s1, s0, madvise_calls), 1);
  cr_assert_eq(DELTA(s1, s0, pages_released), 16);
  expect_absent(p, len, "pages after the MADV_FREE fallback");
  for (size_t i = 0; i < 16; i++)
    cr_assert(page_is(p + i * PAGE_SIZE, 0), "page %zu kept its bytes: MADV_FREE was used", i);
  fill(p, len, 41);
  cr_assert_eq(os_release_region(p, len, OS_RELEASE_FREE), HAKMEM_SUPPLY_REFAULT,
               "without MADV_FREE the pages refault");
  os_unmap(p, len, len);
}

/* Policy 2 without MADV_FREE: a cached SuperSlab's pages are dropped, and
 * when it is reused the ledger counts them as refaults. */
Test(os, without_madv_free_policy_2_counts_refaults)
{
  lru_trim(1);
  OPTION_SET(SS_LAZY_ZERO, ss_lazy_zero, 2);
  os_test_disable_madv_free(true);
  struct superslab *ss = superslab_new(&test_heap);
  cr_assert_not_null(ss);
  for (unsigned u = 1; u < UNITS_PER_SS; u++) {
    struct slab *s = superslab_carve_slab(ss, size_to_class(SMALL_MAX));
    struct free_block *head, *tail;
    while (slab_take(s, 16, 1, &head, &tail))
      ;
  }
  for (unsigned u = 1; u < UNITS_PER_SS; u++)
    superslab_return_slab(ss, &ss->slabs[u]);
  superslab_retire(ss);
  lru_trim(0);
  cr_assert_eq(ss->h.pages, HAKMEM_SUPPLY_REFAULT, "the LRU says path %u, not refault", ss->h.pages);
  struct hakmem_stats s0 = snap();
  cr_assert_eq(superslab_new(&test_heap), ss);
  for (unsigned u = 1; u < UNITS_PER_SS; u++) {
    struct slab *s = superslab_carve_slab(ss, size_to_class(SMALL_MAX));
    struct free_block *head, *tail;
    while (slab_take(s, 16, 1, &head, &tail))
      ;
  }
  struct hakmem_stats s1 = snap();
  cr_assert_eq(ROW(s1, s0, REFAULT, pages), (long long)((UNITS_PER_SS - 1) * (UNIT_SIZE / PAGE_SIZE)));
  cr_assert_eq(ROW(s1, s0, LAZYFREE, pages), 0);
}

/* ---- the page supplier ---- */

#define CALLS 64
struct call {
  void *addr;
  size_t len;
};
static struct call mapped[CALLS], unmapping[CALLS], supplied[CALLS], reclaimed[CALLS];
static unsigned nmapped, nunmapping, nsupplied, nreclaimed;
static size_t supply_share; /* of each supply request, in pages; SIZE_MAX: all */
static int reclaim_result;

static void record(struct call *c, unsigned *n, void *addr, size_t len)
{
  if (*n < CALLS)
    c[(*n)++] = (struct call){ addr, len };
}

static void hook_mapped(void *base, size_t len) { record(mapped, &nmapped, base, len); }
static void hook_unmapping(void *base, size_t len) { record(unmapping, &nunmapping, base, len); }

static size_t hook_supply(void *addr, size_t len)
{
  record(supplied, &nsupplied, addr, len);
  size_t share = supply_share == SIZE_MAX ? len : supply_share * PAGE_SIZE;
  return share < len ? share : len; /* anonymous memory: faulting it in is supply enough */
}

static int hook_reclaim(void *addr, size_t len)
{
  record(reclaimed, &nreclaimed, addr, len);
  if (reclaim_result == 0)
    os_release(addr, len, OS_RELEASE_DONTNEED);
  return reclaim_result;
}

static const struct os_page_supplier test_supplier = {
  .region_mapped = hook_mapped,
  .region_unmapping = hook_unmapping,
  .supply = hook_supply,
  .reclaim = hook_reclaim,
};

static int called_with(const struct call *c, unsigned n, const void *addr, size_t len)
{
  for (unsigned i = 0; i < n; i++)
    if (c[i].addr == addr && c[i].len == len)
      return 1;
  return 0;
}

struct found {
  const void *base;
  size_t len;
  int hits;
};

static void find_region(void *base, size_t len, void *arg)
{
  struct found *f = arg;
  if (base == f->base && len == f->len)
    f->hits++;
}

Test(os, the_page_supplier_is_told_and_asked)
{
  lru_trim(1);
  supply_share = SIZE_MAX;
  os_set_page_supplier(&test_supplier);
  cr_assert_eq(os_page_supplier(), &test_supplier);

  struct superslab *ss = superslab_new(&test_heap);
  cr_assert_not_null(ss);
  cr_assert(called_with(mapped, nmapped, ss, REGION_SIZE), "region_mapped was not told of the new SuperSlab");
  struct found f = { ss, REGION_SIZE, 0 };
  os_for_each_region(find_region, &f);
  cr_assert_eq(f.hits, 1, "os_for_each_region saw the SuperSlab %d times", f.hits);

  /* Direct supply: the supplier takes the whole unit at once and records
   * its own ledger rows; the kernel is not asked. */
  struct slab *s = superslab_carve_slab(ss, size_to_class(256));
  struct free_block *head, *tail;
  struct hakmem_stats s0 = snap();
  cr_assert_gt(slab_take(s, 8, 1, &head, &tail), 0);
  struct hakmem_stats s1 = snap();
  cr_assert(called_with(supplied, nsupplied, s->start, UNIT_SIZE), "supply was not asked for the slab's unit");
  cr_assert_eq(DELTA(s1, s0, madvise_calls), 0, "the kernel populated pages the supplier supplied");
  cr_assert_eq(ROW(s1, s0, FRESH, pages), 0, "the allocator counted the supplier's pages");

  /* A supplier that declines part: the rest is populated and counted. */
  supply_share = 4;
  struct slab *t = superslab_carve_slab(ss, size_to_class(256));
  s0 = snap();
  cr_assert_gt(slab_take(t, 8, 1, &head, &tail), 0);
  s1 = snap();
  cr_assert(called_with(supplied, nsupplied, t->start, UNIT_SIZE));
  cr_assert_eq(ROW(s1, s0, FRESH, pages), (long long)(UNIT_SIZE / PAGE_SIZE - 4));
  cr_assert_eq(DELTA(s1, s0, madvise_calls), 1);
  cr_assert_eq(resident_pages(t->start + 4 * PAGE_SIZE, UNIT_SIZE - 4 * PAGE_SIZE), UNIT_SIZE / PAGE_SIZE - 4,
               "the pages the supplier declined were not populated");

  /* Policy 3 with a supplier that reclaims: the LRU hands it the pages. */
  OPTION_SET(SS_LAZY_ZERO, ss_lazy_zero, 3);
  reclaim_result = 0;
  superslab_return_slab(ss, s);
  superslab_return_slab(ss, t);
  superslab_retire(ss);
  lru_trim(0);
  cr_assert(called_with(reclaimed, nreclaimed, (char *)ss + PAGE_SIZE, REGION_SIZE - PAGE_SIZE),
            "reclaim was not asked for the cached SuperSlab's pages");
  cr_assert_eq(ss->h.pages, HAKMEM_SUPPLY_REFAULT);

  /* Unmapping tells the supplier first. */
  lru_trim(1);
  cr_assert(called_with(unmapping, nunmapping, ss, REGION_SIZE), "region_unmapping was not told");
  os_set_page_supplier(NULL);
  cr_assert_null(os_page_supplier());
}

Test(os, a_supplier_that_cannot_reclaim_falls_back_to_dontneed)
{
  const size_t len = 8 * PAGE_SIZE;
  char *p = os_map_aligned(len, PAGE_SIZE);
  cr_assert_not_null(p);
  fill(p, len, 50);
  reclaim_result = -EIO;
  os_set_page_supplier(&test_supplier);
  struct hakmem_stats s0 = snap();
  cr_assert_eq(os_release_region(p, len, OS_RELEASE_PAGER), HAKMEM_SUPPLY_REFAULT);
  struct hakmem_stats s1 = snap();
  os_set_page_supplier(NULL);
  cr_assert(called_with(reclaimed, nreclaimed, p, len));
  cr_assert_eq(DELTA(s1, s0, madvise_calls), 1, "no MADV_DONTNEED after the supplier declined");
  cr_assert(page_is(p, 0));
  os_unmap(p, len, len);
}

Test(os, now_is_monotonic)
{
  uint64_t a = os_now_ns(), b = os_now_ns();
  cr_assert_geq(b, a);
  struct timespec t = { 0, 2000000 };
  nanosleep(&t, NULL);
  uint64_t c = os_now_ns();
  cr_assert_geq(c - b, 2000000u, "2 ms of sleep measured as %llu ns", (unsigned long long)(c - b));
}

/* A kernel with pages other than 4 KiB gets one line and an abort: the
 * layout would have madvise clear live blocks there. */
Test(os, a_kernel_with_larger_pages_is_refused_with_one_line)
{
  os_require_page_size(4096);
  os_require_page_size(0); /* unknown: the auxiliary vector had none */
  int out = memfd_create("stderr", 0); /* the child's stderr, read after its death */
  cr_assert_geq(out, 0);
  pid_t pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0) {
    struct rlimit no_core = { 0, 0 };
    setrlimit(RLIMIT_CORE, &no_core);
    dup2(out, 2);
    os_require_page_size(16384);
    _exit(0);
  }
  int status;
  cr_assert_eq(waitpid(pid, &status, 0), pid);
  cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT, "status %d", status);
  char line[160] = { 0 };
  cr_assert_gt(pread(out, line, sizeof line - 1, 0), 0);
  close(out);
  cr_assert_str_eq(line, "hakmem: built for 4096-byte pages, this kernel's are 16384 bytes: cannot run\n");
}
