/* Description: unit tests of lib/superslab.h, lib/slab.h and the owner
 * lookup of lib/region_map.h. A SuperSlab is a 2 MiB-aligned region whose
 * unit 0 holds the header; its other 31 units are carved into slabs of one
 * class each, every carve taking a distinct unit; the slab, SuperSlab and
 * region of any block (first, middle or last of its slab, and any byte
 * inside it) follow from its address alone; region_map_kind tells small,
 * large and huge regions from memory hakmem never mapped; returned slabs
 * free their unit for the next carve, and an empty SuperSlab retires to the
 * LRU and comes back from it. A region that held large runs and is reused
 * for slabs gives no never-used block past its slab's zero_from that is
 * not zero, so calloc from it returns zeros. A trim gives back the pages
 * of a slab in use that hold no block in use, parks their blocks, and the
 * slab takes them back when its free list runs dry. With HAKMEM_HUGE_THP=2,
 * and not with 1, a new SuperSlab asks for transparent huge pages.
 *
 * Most tests drive the SuperSlab functions directly, on SuperSlabs owned
 * by a heap of the test's own that no thread allocates from; the last ones
 * check the same properties on blocks from malloc. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "diag.h"
#include "heap.h"
#include "large.h"
#include "lru.h"
#include "options.h"
#include "region_map.h"
#include "size_class.h"
#include "slab.h"
#include "superslab.h"
#include "tcache.h"
#include "types.h"
#include "unit_helpers.h"

#define MiB ((size_t)1 << 20)
#define KiB ((size_t)1 << 10)

/* The owner of the test's SuperSlabs: a heap that no thread uses. */
static struct heap test_heap;

static struct superslab *new_test_superslab(void)
{
  struct superslab *ss = superslab_new(&test_heap);
  cr_assert_not_null(ss, "superslab_new failed");
  return ss;
}

static unsigned unit_of(const struct superslab *ss, const void *p)
{
  return (unsigned)(((uintptr_t)p - (uintptr_t)ss) >> UNIT_SHIFT);
}

/* Take every block of a slab: returns how many, the blocks in `out`. */
static unsigned take_all(struct slab *s, void **out, unsigned room)
{
  unsigned n = 0;
  for (;;) {
    struct free_block *head, *tail;
    unsigned got = slab_take(s, 64, 1, &head, &tail);
    if (!got)
      break;
    unsigned k = 0;
    for (struct free_block *b = head; b; b = b->next, k++) {
      cr_assert_lt(n, room, "slab of class %u hands out more than %u blocks", s->cls, room);
      out[n++] = b;
      if (b == tail)
        cr_assert_null(b->next, "the tail of a take is not the end of its list");
    }
    cr_assert_eq(k, got, "slab_take said %u blocks and linked %u", got, k);
  }
  return n;
}

/* Every lookup from an address inside block p of slab s leads back to s. */
static void check_owner_lookup(struct superslab *ss, struct slab *s, void *p, const char *which)
{
  cr_assert_eq(slab_of(p), s, "%s block %p: slab_of gives %p, not %p", which, p, (void *)slab_of(p), (void *)s);
  cr_assert_eq(superslab_of(p), ss, "%s block %p: superslab_of gives %p", which, p, (void *)superslab_of(p));
  cr_assert_eq(region_of(p), &ss->h, "%s block %p: region_of gives %p", which, p, (void *)region_of(p));
  cr_assert_eq(region_map_kind((uintptr_t)p), REGION_SMALL, "%s block %p is not in a small region", which, p);
  cr_assert(slab_holds_block(s, p), "%s block %p is not a block of its slab", which, p);
  char *last_byte = (char *)p + s->block_size - 1;
  cr_assert_eq(slab_of(last_byte), s, "the last byte of %s block %p is in another slab", which, p);
  cr_assert_eq(region_of(last_byte), &ss->h);
  if (s->block_size > 1)
    cr_assert_not(slab_holds_block(s, (char *)p + 1), "an interior pointer of %s block %p counts as a block",
                  which, p);
}

Test(superslab, is_2mib_aligned_with_its_header_in_unit_0)
{
  struct hakmem_stats before = snap();
  struct superslab *ss = new_test_superslab();
  struct hakmem_stats after = snap();

  cr_assert_eq((uintptr_t)ss & REGION_MASK, 0, "SuperSlab %p is not 2 MiB aligned", (void *)ss);
  cr_assert_eq(ss->h.magic, REGION_MAGIC);
  cr_assert_eq(ss->h.kind, REGION_SMALL);
  cr_assert_eq(ss->h.size, REGION_SIZE);
  cr_assert_eq(ss->h.in_lru, 0);
  cr_assert_eq(ss->owner, &test_heap);
  cr_assert_eq(ss->free_units, 0xfffffffeu, "units free at start: %#x (unit 0 is the header)", ss->free_units);
  cr_assert_eq(ss->slabs_in_use, 0);
  cr_assert_eq(ss->slabs[0].owner, NULL, "unit 0 is a slab");
  cr_assert_leq(sizeof *ss, PAGE_SIZE, "the header does not fit its first page");
  cr_assert_eq(after.ss_live, before.ss_live + 1);
  cr_assert_eq(after.ss_mapped_total + after.ss_reused_total, before.ss_mapped_total + before.ss_reused_total + 1);

  /* The whole 2 MiB maps back to it, and nothing outside it does. */
  const size_t offsets[] = { 0, 1, PAGE_SIZE, UNIT_SIZE - 1, UNIT_SIZE, REGION_SIZE / 2, REGION_SIZE - 1 };
  for (size_t i = 0; i < sizeof offsets / sizeof offsets[0]; i++) {
    char *a = (char *)ss + offsets[i];
    cr_assert_eq(region_map_kind((uintptr_t)a), REGION_SMALL, "offset %#zx: kind %u", offsets[i],
                 region_map_kind((uintptr_t)a));
    cr_assert_eq(region_of(a), &ss->h, "offset %#zx: region_of %p", offsets[i], (void *)region_of(a));
    cr_assert_eq(superslab_of(a), ss);
  }
  superslab_retire(ss);
}

Test(superslab, carving_takes_a_distinct_unit_each_time)
{
  static const size_t sizes[] = { 16, 48, 128, 256, 1024, 4096, 20480, 32768 };
  struct superslab *ss = new_test_superslab();
  struct hakmem_stats before = snap();
  uint32_t units_seen = 0;
  for (unsigned i = 0; i < UNITS_PER_SS - 1; i++) {
    unsigned cls = size_to_class(sizes[i % (sizeof sizes / sizeof sizes[0])]);
    struct slab *s = superslab_carve_slab(ss, cls);
    cr_assert_not_null(s, "carve %u of %zu failed", i + 1, UNITS_PER_SS - 1);
    unsigned unit = (unsigned)(s - ss->slabs);
    cr_assert_neq(unit, 0, "a slab was carved from unit 0, the header");
    cr_assert_eq(units_seen & (1u << unit), 0, "unit %u carved twice", unit);
    units_seen |= 1u << unit;
    cr_assert_eq(ss->free_units & (1u << unit), 0, "unit %u still marked free", unit);
    cr_assert_eq(s->start, (char *)ss + (size_t)unit * UNIT_SIZE, "slab of unit %u starts at %p", unit,
                 (void *)s->start);
    cr_assert_eq(s->carve, s->start);
    cr_assert_eq(s->owner, &test_heap);
    cr_assert_eq(s->cls, cls);
    cr_assert_eq(s->block_size, class_to_size(cls));
    cr_assert_eq(s->capacity, UNIT_SIZE / class_to_size(cls));
    cr_assert_eq(s->end, s->start + (size_t)s->capacity * s->block_size);
    cr_assert_leq(s->end, s->start + UNIT_SIZE, "slab of unit %u runs into the next unit", unit);
    cr_assert_eq(s->used, 0);
    cr_assert_eq(ss->slabs_in_use, i + 1);
  }
  cr_assert_eq(units_seen, 0xfffffffeu, "carved units %#x", units_seen);
  cr_assert_eq(ss->free_units, 0);
  cr_assert_null(superslab_carve_slab(ss, 0), "a full SuperSlab carved a 32nd slab");
  struct hakmem_stats after = snap();
  cr_assert_eq(after.slabs_carved, before.slabs_carved + UNITS_PER_SS - 1);

  for (unsigned u = 1; u < UNITS_PER_SS; u++)
    superslab_return_slab(ss, &ss->slabs[u]);
  superslab_retire(ss);
}

Test(superslab, owner_of_first_middle_and_last_block_of_each_class)
{
  static const size_t sizes[] = { 16, 48, 112, 160, 448, 1024, 2560, 4096, 12288, 20480, 32768 };
  static void *blocks[UNIT_SIZE / 16];
  struct superslab *ss = new_test_superslab();
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    unsigned cls = size_to_class(sizes[i]);
    struct slab *s = superslab_carve_slab(ss, cls);
    cr_assert_not_null(s);
    unsigned n = take_all(s, blocks, UNIT_SIZE / 16);
    cr_assert_eq(n, s->capacity, "class %zu: %u blocks out of a slab of %u", sizes[i], n, s->capacity);
    cr_assert_eq(s->used, n);
    cr_assert_not(slab_has_room(s));
    /* Carved in address order: first, middle and last are known. */
    cr_assert_eq(blocks[0], s->start, "class %zu: first block %p, slab starts at %p", sizes[i], blocks[0],
                 (void *)s->start);
    cr_assert_eq(blocks[n - 1], s->start + (size_t)(n - 1) * s->block_size);
    check_owner_lookup(ss, s, blocks[0], "first");
    check_owner_lookup(ss, s, blocks[n / 2], "middle");
    check_owner_lookup(ss, s, blocks[n - 1], "last");
    for (unsigned k = 0; k < n; k++) {
      cr_assert_eq(slab_of(blocks[k]), s, "class %zu block %u: wrong slab", sizes[i], k);
      cr_assert_eq(((struct free_block *)blocks[k])->cookie, diag_cookie(blocks[k]),
                   "class %zu block %u: a taken block carries no free cookie", sizes[i], k);
      cr_assert_neq(unit_of(ss, blocks[k]), 0);
    }
  }
  for (unsigned u = 1; u < UNITS_PER_SS; u++)
    if (ss->slabs[u].owner)
      superslab_return_slab(ss, &ss->slabs[u]);
  superslab_retire(ss);
}

/* A slab's pages are made present just before its never-used blocks are
 * handed out, no page ahead of them: one page for the first refills, then
 * more per refill as the slab keeps growing, never past its unit; each
 * supply is counted in the ledger under the path of the region's absent
 * pages (fresh, here). */
Test(superslab, supply_makes_pages_present_as_the_slab_grows)
{
  os_test_set_threaded(false); /* single pages populated too, as in one thread */
  lru_trim(1); /* nothing cached: the SuperSlab is a fresh mapping */
  struct superslab *ss = new_test_superslab();
  cr_assert_eq(ss->h.absent_path, HAKMEM_SUPPLY_FRESH, "a SuperSlab mapped afresh is not fresh memory");
  struct slab *s = superslab_carve_slab(ss, size_to_class(64));
  unsigned unit = (unsigned)(s - ss->slabs);
  cr_assert_eq(ss->present_pages[unit], 0);
  struct hakmem_stats before = snap();
  /* The heap asks for one page per refill at first and more later
   * (heap.c, CARVE_STEADY); the slab never supplies more than asked. */
  unsigned prev = 0, total = 0, takes = 0;
  for (;;) {
    struct free_block *head, *tail;
    unsigned pages = takes < 4 ? 1 : 4;
    unsigned got = slab_take(s, UNIT_SIZE / 16, pages, &head, &tail);
    if (!got)
      break;
    if (takes++ == 0)
      cr_assert_eq(got, PAGE_SIZE / 64, "the first refill of a slab of 64 B blocks takes %u blocks", got);
    total += got;
    unsigned now = ss->present_pages[unit];
    cr_assert_gt(now, prev, "a refill of never-used blocks made no page present");
    cr_assert_leq(now, UNIT_SIZE / PAGE_SIZE);
    char *present_end = superslab_present_end(s);
    cr_assert_leq(s->carve, present_end, "blocks were handed out beyond the present pages");
    cr_assert_lt((size_t)(present_end - s->carve), PAGE_SIZE, "a page was supplied ahead of the blocks");
    cr_assert_leq(now - prev, pages, "a refill asked for %u pages made %u present", pages, now - prev);
    unsigned char vec[UNIT_SIZE / PAGE_SIZE];
    cr_assert_eq(mincore(s->start, UNIT_SIZE, vec), 0);
    for (unsigned p = 0; p < now; p++)
      cr_assert(vec[p] & 1, "page %u of %u supplied pages is not resident", p, now);
    prev = now;
  }
  cr_assert_eq(total, s->capacity);
  cr_assert_eq(ss->present_pages[unit], UNIT_SIZE / PAGE_SIZE);
  struct hakmem_stats after = snap();
  uint64_t pages = after.supply[HAKMEM_SUPPLY_FRESH].pages - before.supply[HAKMEM_SUPPLY_FRESH].pages;
  uint64_t events = after.supply[HAKMEM_SUPPLY_FRESH].events - before.supply[HAKMEM_SUPPLY_FRESH].events;
  cr_assert_eq(pages, UNIT_SIZE / PAGE_SIZE, "the ledger counted %llu fresh pages for a 16-page slab",
               (unsigned long long)pages);
  cr_assert_eq(events, takes, "%u refills made %llu supply calls", takes, (unsigned long long)events);
  cr_assert_eq(takes, 4 + (UNIT_SIZE / PAGE_SIZE - 4) / 4, "%u refills for 4 single pages and 3 of 4", takes);
  superslab_return_slab(ss, s);
  superslab_retire(ss);
}

Test(superslab, returned_slabs_free_their_unit_for_the_next_carve)
{
  struct superslab *ss = new_test_superslab();
  struct slab *a = superslab_carve_slab(ss, size_to_class(32));
  struct slab *b = superslab_carve_slab(ss, size_to_class(512));
  struct slab *c = superslab_carve_slab(ss, size_to_class(8192));
  unsigned ua = (unsigned)(a - ss->slabs), ub = (unsigned)(b - ss->slabs);
  cr_assert_eq(ss->slabs_in_use, 3);

  struct free_block *head, *tail;
  cr_assert_gt(slab_take(b, 4, 1, &head, &tail), 0);
  void *block = head;
  cr_assert(slab_holds_block(b, block));

  cr_assert_not(superslab_return_slab(ss, b), "returning one of three slabs emptied the SuperSlab");
  cr_assert_null(b->owner, "a returned slab keeps its owner");
  cr_assert_neq(ss->free_units & (1u << ub), 0, "unit %u is not free after its slab returned", ub);
  cr_assert_not(slab_holds_block(b, block), "a block of a returned slab is still valid to free");
  cr_assert_eq(ss->slabs_in_use, 2);

  /* The lowest free unit is carved next: the one just returned. */
  struct slab *d = superslab_carve_slab(ss, size_to_class(64));
  cr_assert_eq(d, b, "the next carve took unit %u, not the returned unit %u", (unsigned)(d - ss->slabs), ub);
  cr_assert_eq(d->cls, size_to_class(64));
  cr_assert_eq(d->owner, &test_heap);

  cr_assert_not(superslab_return_slab(ss, a));
  cr_assert_not(superslab_return_slab(ss, d));
  cr_assert_neq(ss->free_units & (1u << ua), 0);
  cr_assert(superslab_return_slab(ss, c), "returning the last slab does not report the SuperSlab empty");
  cr_assert_eq(ss->free_units, 0xfffffffeu);

  struct hakmem_stats before = snap();
  superslab_retire(ss);
  struct hakmem_stats after = snap();
  cr_assert_eq(after.ss_live, before.ss_live - 1);
  cr_assert_eq(ss->h.in_lru, 1, "a retired SuperSlab is not in the LRU");
  cr_assert_null(ss->owner);
  cr_assert_eq(after.ss_cached, before.ss_cached + 1);
}

/* A retired SuperSlab comes back from the LRU for the next one, with the
 * resident pages of its units known, so they are not supplied twice. */
Test(superslab, a_retired_superslab_is_reused)
{
  struct superslab *ss = new_test_superslab();
  struct slab *s = superslab_carve_slab(ss, size_to_class(256));
  unsigned unit = (unsigned)(s - ss->slabs);
  struct free_block *head, *tail;
  cr_assert_gt(slab_take(s, 32, 1, &head, &tail), 0);
  unsigned present = ss->present_pages[unit];
  cr_assert_gt(present, 0);
  superslab_return_slab(ss, s);
  superslab_retire(ss);

  struct hakmem_stats before = snap();
  struct superslab *again = new_test_superslab();
  struct hakmem_stats after = snap();
  cr_assert_eq(again, ss, "the SuperSlab just retired was not reused (got %p, retired %p)", (void *)again,
               (void *)ss);
  cr_assert_eq(after.ss_reused_total, before.ss_reused_total + 1);
  cr_assert_eq(after.ss_mapped_total, before.ss_mapped_total);
  cr_assert_eq(again->h.in_lru, 0);
  cr_assert_eq(again->free_units, 0xfffffffeu);
  cr_assert_eq(again->slabs_in_use, 0);
  cr_assert_eq(again->present_pages[unit], present, "unit %u: %u resident pages forgotten (now %u)", unit,
               present, again->present_pages[unit]);
  superslab_retire(again);
}

/* ---- a SuperSlab that held large runs, reused for slabs ----
 *
 * A slab knows from which address its never-used blocks are zero
 * (zero_from: the pages that were absent when it was carved), and calloc
 * hands such blocks out without clearing them. A region that was a large
 * SuperSlab comes back from the LRU with its pages as they were: within a
 * unit, pages that runs used (dirty) may follow a page that no run ever
 * used (absent). Its slabs must not count those dirty pages as zero. */

static unsigned page_of(const void *p)
{
  return (unsigned)(((uintptr_t)p & REGION_MASK) / PAGE_SIZE);
}

/* A large SuperSlab whose unit 1 has page 16 used, page 17 never used
 * and page 18 used and dirty (filled with 0xEE), now empty and cached (its
 * pages kept: taken back before any release). Existing large SuperSlabs
 * are filled with one-page runs first, so that the runs land in a fresh
 * one; the fillers go to `fillers`. */
static struct large_ss *cached_large_superslab_with_a_hole(void **fillers, unsigned *nfillers)
{
  lru_trim(1);
  struct large_ss *l = NULL;
  void *first = NULL;
  while (!l) {
    cr_assert_lt(*nfillers, 4096, "no fresh large SuperSlab after 4096 one-page runs");
    void *r = large_alloc(PAGE_SIZE, 0, false);
    cr_assert_not_null(r);
    struct large_ss *rl = (struct large_ss *)superslab_of(r);
    if (page_of(r) == 1 && rl->free_pages == PAGES_PER_REGION - 2) {
      l = rl;
      first = r;
    } else {
      fillers[(*nfillers)++] = r;
    }
  }
  char *rest_of_unit_0 = large_alloc(14 * PAGE_SIZE, 0, false);      /* pages 2..15 */
  char *at_16 = large_alloc(PAGE_SIZE, 16 * PAGE_SIZE, false);       /* 64 KiB aligned */
  char *at_18 = large_alloc(PAGE_SIZE, 2 * PAGE_SIZE, false);        /* 8 KiB aligned: 17 is odd */
  cr_assert_eq(page_of(rest_of_unit_0), 2);
  cr_assert_eq(page_of(at_16), 16);
  cr_assert_eq(page_of(at_18), 18, "test premise: a run at page 18 (got %u)", page_of(at_18));
  cr_assert((void *)superslab_of(at_16) == (void *)l && (void *)superslab_of(at_18) == (void *)l);
  memset(at_18, 0xEE, PAGE_SIZE);
  large_free(first);
  large_free(rest_of_unit_0);
  large_free(at_16);
  large_free(at_18);
  large_trim(); /* an empty large SuperSlab goes to the LRU */
  cr_assert_eq(l->h.in_lru, 1, "test premise: the empty large SuperSlab is cached");
  cr_assert_eq(l->h.pages, HAKMEM_SUPPLY_REUSE);
  return l;
}

Test(superslab, never_used_blocks_past_zero_from_are_zero_after_large_runs)
{
  static void *fillers[4096];
  unsigned nfillers = 0;
  large_cache_test_enable(false); /* the runs' frees must empty their SuperSlab */
  struct large_ss *l = cached_large_superslab_with_a_hole(fillers, &nfillers);
  struct superslab *ss = new_test_superslab();
  cr_assert_eq((void *)ss, (void *)l, "test premise: the cached large SuperSlab is reused");
  struct slab *s = superslab_carve_slab(ss, size_to_class(2048));
  cr_assert_eq(s - ss->slabs, 1);
  for (;;) {
    struct free_block *head, *tail;
    if (!slab_take(s, 64, 1, &head, &tail))
      break;
  }
  for (const char *b = slab_cold(s)->zero_from; b + s->block_size <= s->end; b += s->block_size) {
    /* Words 0 and 1 hold the link and the cookie that slab_take wrote. */
    const unsigned char *body = (const unsigned char *)b + 16;
    for (size_t i = 0; i < (size_t)s->block_size - 16; i++)
      cr_assert_eq(body[i], 0,
                   "block at region page %u, past zero_from (page %u), holds %#x at byte %zu: the old "
                   "bytes of a large run",
                   page_of(b), page_of(slab_cold(s)->zero_from), body[i], i + 16);
  }
  for (unsigned i = 0; i < nfillers; i++)
    large_free(fillers[i]);
}

struct calloc_job {
  const void *region;
  int slab_in_region;
  unsigned char *blocks[6];
};

static void *calloc_in_a_new_thread(void *arg)
{
  struct calloc_job *j = arg;
  /* Two mallocs take the slab's first page and leave the cache empty;
   * the callocs then get never-used blocks directly. */
  void *a = malloc(opaque_size(2048)), *b = malloc(opaque_size(2048));
  j->slab_in_region = (const void *)superslab_of(a) == j->region;
  for (int i = 0; i < 6; i++)
    j->blocks[i] = calloc(1, opaque_size(2048));
  free(a);
  free(b);
  return NULL;
}

Test(superslab, calloc_from_a_superslab_that_held_large_runs_is_zero)
{
  static void *fillers[4096];
  unsigned nfillers = 0;
  large_cache_test_enable(false); /* the runs' frees must empty their SuperSlab */
  struct large_ss *l = cached_large_superslab_with_a_hole(fillers, &nfillers);
  struct calloc_job job = { .region = l };
  pthread_t t;
  cr_assert_eq(pthread_create(&t, NULL, calloc_in_a_new_thread, &job), 0);
  cr_assert_eq(pthread_join(t, NULL), 0);
  if (!job.slab_in_region)
    cr_skip_test("the new thread did not take the cached SuperSlab (it adopted a heap with room)");
  for (int i = 0; i < 6; i++) {
    cr_assert_not_null(job.blocks[i]);
    for (size_t k = 0; k < 2048; k++)
      cr_assert_eq(job.blocks[i][k], 0, "calloc(1, 2048) = %p (region page %u) holds %#x at byte %zu",
                   (void *)job.blocks[i], page_of(job.blocks[i]), job.blocks[i][k], k);
  }
  for (unsigned i = 0; i < nfillers; i++)
    large_free(fillers[i]);
}

/* ---- the same properties on blocks from malloc ---- */

Test(superslab, owner_of_malloc_blocks_of_several_classes)
{
  static const size_t sizes[] = { 8, 24, 100, 640, 3000, 16384, 32768 };
  static void *all[4 * UNIT_SIZE / 16], *mine[UNIT_SIZE / 16];
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    unsigned nall = 0;
    struct slab *s = hold_a_whole_slab(sizes[i], all, &nall, mine);
    struct superslab *ss = superslab_of(s->start);
    cr_assert_eq(s->owner, hk_tcache.heap, "a slab of this thread's blocks is owned by another heap");
    cr_assert_eq(s->cls, size_to_class(sizes[i]));
    cr_assert_eq(ss->owner, hk_tcache.heap);
    cr_assert_eq(ss->h.kind, REGION_SMALL);
    cr_assert_neq(unit_of(ss, s->start), 0);
    check_owner_lookup(ss, s, mine[0], "first");
    check_owner_lookup(ss, s, mine[s->capacity / 2], "middle");
    check_owner_lookup(ss, s, mine[s->capacity - 1], "last");
    for (unsigned j = 0; j < nall; j++) {
      cr_assert_eq((uintptr_t)all[j] & 15, 0);
      cr_assert_eq(region_of(all[j]), &superslab_of(all[j])->h);
      cr_assert_neq(unit_of(superslab_of(all[j]), all[j]), 0, "block %p lies in a header unit", all[j]);
    }
    for (unsigned j = 0; j < nall; j++)
      free(all[j]);
  }
}

Test(superslab, region_map_kind_of_small_large_huge_and_foreign_addresses)
{
  static int a_static;
  int on_stack = 0;
  void *small = malloc(opaque_size(64));
  void *large = malloc(opaque_size(100 * KiB));
  void *huge = malloc(opaque_size(3 * MiB));
  void *huge_aligned = aligned_alloc(4 * MiB, opaque_size(5 * MiB));
  void *foreign = mmap(NULL, 2 * REGION_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  cr_assert(small && large && huge && huge_aligned);
  cr_assert_neq(foreign, MAP_FAILED);

  cr_assert_eq(region_map_kind((uintptr_t)small), REGION_SMALL);
  cr_assert_eq(region_map_kind((uintptr_t)large), REGION_LARGE);
  cr_assert_eq(region_map_kind((uintptr_t)huge), REGION_HUGE);
  cr_assert_eq(region_of(small), (struct region_header *)superslab_of(small));
  cr_assert_eq(region_of(large), (struct region_header *)superslab_of(large));
  cr_assert_eq(region_of(huge), (struct region_header *)superslab_of(huge));
  cr_assert_geq((uintptr_t)large - (uintptr_t)superslab_of(large), PAGE_SIZE,
                "a large run starts in the header page");
  cr_assert_eq(region_of(large)->kind, REGION_LARGE);
  cr_assert_eq(region_of(huge)->kind, REGION_HUGE);
  cr_assert_eq(region_of(huge)->magic, REGION_MAGIC);

  /* A block aligned to 4 MiB starts one chunk above its header. */
  cr_assert_eq((uintptr_t)huge_aligned % (4 * MiB), 0);
  cr_assert_eq(region_map_kind((uintptr_t)huge_aligned), REGION_HUGE + 1);
  struct region_header *h = region_of(huge_aligned);
  cr_assert_eq((uintptr_t)h, (uintptr_t)huge_aligned - 2 * MiB, "region_of a 4 MiB-aligned block: %p for %p",
               (void *)h, huge_aligned);
  cr_assert_eq(h->kind, REGION_HUGE);
  cr_assert_eq(h->magic, REGION_MAGIC);

  const void *foreign_addrs[] = { &on_stack, &a_static, foreign, (char *)foreign + REGION_SIZE, NULL,
                                  (void *)((uintptr_t)1 << REGION_MAP_BITS), (void *)UINTPTR_MAX };
  for (size_t i = 0; i < sizeof foreign_addrs / sizeof foreign_addrs[0]; i++) {
    cr_assert_eq(region_map_kind((uintptr_t)foreign_addrs[i]), REGION_NONE, "%p is taken for hakmem's",
                 foreign_addrs[i]);
    cr_assert_null(region_of(foreign_addrs[i]), "region_of(%p) is not NULL", foreign_addrs[i]);
  }

  free(small);
  free(large);
  free(huge_aligned);
  free(huge);
  munmap(foreign, 2 * REGION_SIZE);
  lru_trim(1); /* the freed huge blocks' regions are cached: unmapped now */
  cr_assert_eq(region_map_kind((uintptr_t)opaque(huge_aligned)), REGION_NONE,
               "the map still holds a huge block that was unmapped");
}

/* Give block b back to its slab as the owner's free does. */
static void put_back(struct slab *s, void *b)
{
  ((struct free_block *)b)->cookie = diag_cookie(b);
  slab_put_local(s, b);
}

/* A slab of 1 KiB blocks (four to a page) keeps blocks 5 and 62, on pages
 * 1 and 15: a trim gives back the other fourteen pages, whose blocks leave
 * the free list; the free fast path is closed while they are parked, and
 * the next takes bring them back, refaulting their pages. */
Test(superslab, a_trim_parks_the_pages_whose_blocks_are_all_free)
{
  struct superslab *ss = new_test_superslab();
  struct slab *s = superslab_carve_slab(ss, size_to_class(1024));
  void *blocks[64];
  cr_assert_eq(take_all(s, blocks, 64), 64);
  for (unsigned i = 0; i < 64; i++)
    memset(blocks[i], 0x77, 1024);
  for (unsigned i = 0; i < 64; i++)
    if (i != 5 && i != 62)
      put_back(s, blocks[i]);

  cr_assert_eq(superslab_release_slab_pages(s), 14 * PAGE_SIZE);
  cr_assert_eq(s->parked, 0x7ffd, "parked pages %#x", s->parked);
  cr_assert_not(slab_holds_block(s, blocks[4]), "the fast path is open while pages are parked");
  cr_assert(slab_holds_block_slow(s, blocks[4]));
  cr_assert(slab_block_parked(s, blocks[0]));
  cr_assert_not(slab_block_parked(s, blocks[4]));
  unsigned listed = 0;
  for (struct free_block *b = s->free; b; b = b->next, listed++)
    cr_assert_not(slab_block_parked(s, b), "block %p of a parked page is on the free list", (void *)b);
  cr_assert_eq(listed, 6, "blocks 4, 6, 7, 60, 61 and 63 stay on the list, not %u", listed);
  unsigned char vec[UNIT_PAGES];
  cr_assert_eq(mincore(s->start, UNIT_SIZE, vec), 0);
  for (unsigned p = 0; p < UNIT_PAGES; p++)
    cr_assert_eq(vec[p] & 1, p == 1 || p == 15, "page %u resident: %d", p, vec[p] & 1);
  for (unsigned k = 0; k < 1024; k++)
    cr_assert(((unsigned char *)blocks[5])[k] == 0x77 && ((unsigned char *)blocks[62])[k] == 0x77);
  cr_assert_eq(superslab_release_slab_pages(s), 0, "nothing left to give back");

  struct hakmem_stats before = snap();
  void *again[64];
  cr_assert_eq(take_all(s, again, 64), 62);
  struct hakmem_stats after = snap();
  cr_assert_eq(after.supply[HAKMEM_SUPPLY_REFAULT].pages - before.supply[HAKMEM_SUPPLY_REFAULT].pages, 14);
  cr_assert_eq(s->parked, 0);
  cr_assert(slab_holds_block(s, blocks[4]), "the fast path stays closed after the last page came back");
  for (unsigned i = 0; i < 62; i++) {
    cr_assert(again[i] != blocks[5] && again[i] != blocks[62], "a block in use was handed out again");
    for (unsigned j = 0; j < i; j++)
      cr_assert_neq(again[i], again[j], "block %p handed out twice", again[i]);
  }
  superslab_return_slab(ss, s);
  superslab_retire(ss);
}

/* A slab carved from a unit whose sixteen pages are resident, which has
 * handed out one page of blocks: a trim gives back the fifteen past it,
 * and they refault as the slab grows into them. */
Test(superslab, a_trim_gives_back_the_resident_pages_past_the_carved_blocks)
{
  struct superslab *ss = new_test_superslab();
  struct slab *s = superslab_carve_slab(ss, size_to_class(PAGE_SIZE));
  unsigned unit = unit_of(ss, s->start);
  void *blocks[16];
  cr_assert_eq(take_all(s, blocks, 16), 16);
  superslab_return_slab(ss, s);
  s = superslab_carve_slab(ss, size_to_class(64));
  cr_assert_eq(unit_of(ss, s->start), unit);
  struct free_block *head, *tail;
  cr_assert_eq(slab_take(s, PAGE_SIZE / 64, 1, &head, &tail), PAGE_SIZE / 64);
  cr_assert_eq(superslab_release_slab_pages(s), 15 * PAGE_SIZE);
  cr_assert_eq(ss->present_pages[unit], 1);
  struct hakmem_stats before = snap();
  cr_assert_eq(slab_take(s, 4 * PAGE_SIZE / 64, 4, &head, &tail), 4 * PAGE_SIZE / 64);
  struct hakmem_stats after = snap();
  cr_assert_eq(after.supply[HAKMEM_SUPPLY_REFAULT].pages - before.supply[HAKMEM_SUPPLY_REFAULT].pages, 4);
  superslab_return_slab(ss, s);
  superslab_retire(ss);
}

/* HAKMEM_HUGE_THP=2 asks for huge pages on every new region, SuperSlabs
 * too; 1 only on huge blocks' regions. */
static void superslab_asks_for_huge_pages(int option, bool expect_asked)
{
  skip_without_thp();
  lru_trim(1); /* a new region, not a cached one */
  OPTION_SET(HUGE_THP, huge_thp, option);
  struct superslab *ss = new_test_superslab();
  cr_assert_eq(asks_for_huge_pages(ss, NULL), expect_asked, "HUGE_THP=%d", option);
  struct slab *s = superslab_carve_slab(ss, 3);
  cr_assert_not_null(s);
  superslab_return_slab(ss, s);
  superslab_retire(ss);
}

Test(superslab, with_huge_thp_2_a_new_superslab_asks_for_huge_pages) { superslab_asks_for_huge_pages(2, true); }

Test(superslab, with_huge_thp_1_a_new_superslab_keeps_small_pages) { superslab_asks_for_huge_pages(1, false); }
