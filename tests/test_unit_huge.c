/* Description: unit tests of lib/huge.h, blocks above 1 MiB, each in a
 * 2 MiB-aligned region of its own with its header at the region's base
 * and the block 128 bytes in. A freed block's region goes to the LRU and
 * serves the next request of up to four times smaller, keeping at most
 * twice what that request needs;
 * one bigger than a sixteenth of the cache's byte bound (32 MiB by
 * default) is unmapped at once.
 * realloc grows and shrinks with mremap, keeping the contents, grows by an
 * eighth at least (few mremaps for many small steps), and moves
 * between huge and large blocks; alignments up to 1 GiB are honoured, with
 * the region map pointing from the block's chunk back to its header, and
 * an aligned block's region is cached for blocks of its alignment;
 * calloc writes none of a fresh region's pages; the ledger counts a huge
 * block's pages; a double free or an interior free aborts; with
 * HAKMEM_HUGE_THP=1 or 2 a fresh region asks for transparent huge pages,
 * and by default it does not. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include "huge.h"
#include "lru.h"
#include "options.h"
#include "os.h"
#include "region_map.h"
#include "types.h"
#include "unit_helpers.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)
#define HUGE_OFFSET ((size_t)128)

#define DELTA(a, b, field) ((long long)((a).field - (b).field))

static size_t round_page(size_t n)
{
  return (n + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
}

static struct huge_header *header_of(const void *p)
{
  struct region_header *h = region_of(p);
  cr_assert_not_null(h, "no region holds %p", p);
  cr_assert_eq(h->kind, REGION_HUGE);
  return (struct huge_header *)h;
}

static void fill(void *p, size_t n, unsigned seed)
{
  uint32_t *w = p;
  for (size_t i = 0; i < n / 4; i++)
    w[i] = (uint32_t)(i * 2654435761u) ^ seed;
}

static size_t check(const void *p, size_t n, unsigned seed)
{
  const uint32_t *w = p;
  for (size_t i = 0; i < n / 4; i++)
    if (w[i] != ((uint32_t)(i * 2654435761u) ^ seed))
      return i * 4;
  return (size_t)-1;
}

static size_t resident_pages(const void *addr, size_t len)
{
  size_t pages = len / PAGE_SIZE, n = 0;
  unsigned char *vec = mmap(NULL, round_page(pages), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  cr_assert_neq(vec, MAP_FAILED);
  cr_assert_eq(mincore((void *)addr, len, vec), 0);
  for (size_t i = 0; i < pages; i++)
    n += vec[i] & 1;
  munmap(vec, round_page(pages));
  return n;
}

static void no_core_dumps(void)
{
  struct rlimit rl = { 0, 0 };
  setrlimit(RLIMIT_CORE, &rl);
}

Test(huge, each_block_has_a_region_of_its_own)
{
  static const size_t sizes[] = { MiB + 1, 3 * MiB / 2, 2 * MiB, 3 * MiB + 123, 10 * MiB };
  enum { N = sizeof sizes / sizeof sizes[0] };
  char *p[N];
  lru_trim(1); /* every block from a fresh mapping */
  for (size_t i = 0; i < N; i++) {
    struct hakmem_stats s0 = snap();
    p[i] = malloc(opaque_size(sizes[i]));
    struct hakmem_stats s1 = snap();
    cr_assert_not_null(p[i]);
    cr_assert_eq(region_map_kind((uintptr_t)p[i]), REGION_HUGE, "malloc(%zu) is not huge", sizes[i]);
    struct huge_header *hh = header_of(p[i]);
    struct region_header *h = &hh->h;
    cr_assert_eq((uintptr_t)h & REGION_MASK, 0, "the region of a huge block is not 2 MiB aligned");
    cr_assert_eq(p[i], (char *)h + HUGE_OFFSET, "the block is not 128 bytes into its region");
    cr_assert_eq(hh->offset, HUGE_OFFSET);
    cr_assert_eq(h->magic, REGION_MAGIC);
    cr_assert_eq(h->chunks, 1);
    cr_assert_eq(h->size, round_page(HUGE_OFFSET + sizes[i]), "a %zu B block mapped %zu bytes", sizes[i],
                 h->size);
    size_t usable = malloc_usable_size(p[i]);
    cr_assert_eq(usable, h->size - HUGE_OFFSET);
    cr_assert_eq(huge_usable(p[i], "test"), usable);
    cr_assert_geq(usable, sizes[i]);
    cr_assert_lt(usable - sizes[i], PAGE_SIZE);
    cr_assert_eq(DELTA(s1, s0, huge_live), 1);
    cr_assert_eq(DELTA(s1, s0, bytes_in_use), (long long)h->size);
    cr_assert_eq(DELTA(s1, s0, bytes_mapped), (long long)h->size);
    cr_assert_eq(DELTA(s1, s0, supply[HAKMEM_SUPPLY_FRESH].pages), (long long)(h->size / PAGE_SIZE - 1),
                 "the ledger counted %lld fresh pages of a %zu-page region",
                 DELTA(s1, s0, supply[HAKMEM_SUPPLY_FRESH].pages), h->size / PAGE_SIZE);
    fill(p[i], sizes[i], (unsigned)i);
  }
  for (size_t i = 0; i < N; i++) {
    cr_assert_eq(check(p[i], sizes[i], (unsigned)i), (size_t)-1, "block %zu was overwritten", i);
    for (size_t j = 0; j < i; j++)
      cr_assert_neq(region_of(p[i]), region_of(p[j]), "blocks %zu and %zu share a region", i, j);
  }
  for (size_t i = 0; i < N; i++) {
    struct region_header *h = region_of(p[i]);
    struct hakmem_stats s0 = snap();
    free(p[i]);
    struct hakmem_stats s1 = snap();
    cr_assert_eq(DELTA(s1, s0, huge_live), -1);
    cr_assert_eq(DELTA(s1, s0, bytes_in_use), -(long long)h->size);
    cr_assert(region_map_kind((uintptr_t)h) == REGION_NONE || h->in_lru, "a freed block's region is neither "
              "cached nor unmapped");
  }
}

/* A block of `size` bytes allocated and freed, its region cached alone in
 * the LRU: returns the region, *block the block's address. */
static struct region_header *cached_block(size_t size, char **block)
{
  /* Regions above a sixteenth of the cache are not cached: for the tests
   * of big cached regions the cache is made big enough. */
  if (((size_t)hakmem_options.lru_max_mb << 20) / 16 < size)
    hakmem_options.lru_max_mb = (unsigned)((16 * size) >> 20) + 16;
  lru_trim(1);
  char *p = malloc(opaque_size(size));
  cr_assert_not_null(p);
  struct region_header *h = region_of(p);
  free(p);
  cr_assert_eq(h->in_lru, 1, "a freed block of %zu bytes was not cached", size);
  *block = p;
  return h;
}

/* A block above a sixteenth of the cache (32 MiB by default) goes back
 * to the kernel when freed: such regions are seldom taken again. */
Test(huge, a_freed_block_above_a_sixteenth_of_the_cache_is_unmapped)
{
  cr_assert_eq(hakmem_options.lru_max_mb, 512, "test premise: the default cache");
  char *p = malloc(opaque_size(33 * MiB));
  cr_assert_not_null(p);
  memset(p, 1, 33 * MiB);
  struct hakmem_stats s0 = snap();
  free(p);
  struct hakmem_stats s1 = snap();
  unsigned char vec;
  cr_assert_neq(mincore(p, PAGE_SIZE, &vec), 0, "the freed 33 MiB block is still mapped");
  cr_assert_eq(DELTA(s1, s0, munmap_calls), 1);
  char *q = malloc(opaque_size(32 * MiB - PAGE_SIZE));
  cr_assert_not_null(q);
  free(q);
  cr_assert_eq(region_of(q)->in_lru, 1, "a freed block of 32 MiB was not cached");
}

Test(huge, a_freed_block_is_reused_from_the_lru)
{
  char *p;
  struct region_header *h = cached_block(3 * MiB, &p);
  cr_assert_eq(region_map_kind((uintptr_t)p), REGION_HUGE);

  struct hakmem_stats s0 = snap();
  char *q = malloc(opaque_size(3 * MiB));
  struct hakmem_stats s1 = snap();
  cr_assert_eq(q, p, "the same request took %p, not the cached %p", (void *)q, (void *)p);
  cr_assert_eq(h->in_lru, 0);
  cr_assert_eq(DELTA(s1, s0, mmap_calls), 0, "reuse from the LRU mapped memory");
  cr_assert_eq(DELTA(s1, s0, huge_live), 1);
  free(q);

  /* Up to an eighth smaller takes it too, with all of it usable. */
  char *r = malloc(opaque_size(3 * MiB - 256 * KiB));
  cr_assert_eq(r, p, "a slightly smaller request did not reuse the cached region");
  cr_assert_eq(malloc_usable_size(r), h->size - HUGE_OFFSET);
  free(r);

  /* Much smaller (up to four times) takes it too, whole while the excess
   * is below 4 MiB: a buffer of 1 to 4 MiB freed and taken again at
   * another size does not cut and regrow its region each time. */
  size_t old = h->size;
  char *s = malloc(opaque_size(MiB + MiB / 4));
  cr_assert_not_null(s);
  cr_assert_eq((void *)region_of(s), (void *)h, "a 1.25 MiB request did not take the cached 3 MiB region");
  cr_assert_eq(h->size, old, "a 1.25 MiB block cut its 3 MiB region to %zu bytes", h->size);
  cr_assert_eq(malloc_usable_size(s), h->size - HUGE_OFFSET);
  free(s);
}

/* Past that, a region holding more than 32 MiB (HUGE_SLACK_MAX) over
 * twice the request is cut: what exceeds twice the request goes back to
 * the kernel. */
Test(huge, a_cached_region_much_larger_than_the_request_is_cut)
{
  char *p;
  struct region_header *h = cached_block(76 * MiB, &p);
  size_t small = 20 * MiB, map = (small + HUGE_OFFSET + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
  char *s = malloc(opaque_size(small));
  cr_assert_not_null(s);
  cr_assert_eq((void *)region_of(s), (void *)h, "a 20 MiB request did not take the cached 76 MiB region");
  cr_assert_eq(h->size, 2 * map, "kept %zu bytes of 76 MiB for a %zu-byte region", h->size, map);
  cr_assert_eq(malloc_usable_size(s), h->size - HUGE_OFFSET);
  unsigned char vec[1];
  cr_assert_neq(mincore((char *)h + 76 * MiB - PAGE_SIZE, PAGE_SIZE, vec), 0, "the unmapped tail is still mapped");
  free(s);
}

/* A cut the kernel refuses (at the limit of mappings) leaves the cached
 * region whole: the block is served from it, its usable size the whole
 * region's, every byte of it writable, and it frees as any other. A page
 * supplier told the tail was going is told it is mapped again. */
static struct {
  char *base;
  size_t len;
} tail_unmapping, tail_mapped;

static void note_unmapping(void *base, size_t len) { tail_unmapping.base = base, tail_unmapping.len = len; }

static void note_mapped(void *base, size_t len) { tail_mapped.base = base, tail_mapped.len = len; }

static const struct os_page_supplier tail_watcher = {
  .region_mapped = note_mapped,
  .region_unmapping = note_unmapping,
};

Test(huge, a_refused_cut_of_a_cached_region_serves_the_block_from_all_of_it)
{
  char *p;
  struct region_header *h = cached_block(76 * MiB, &p);
  size_t whole = h->size;
  os_set_page_supplier(&tail_watcher);
  os_test_refuse_unmap(1);
  char *s = malloc(opaque_size(20 * MiB));
  os_test_refuse_unmap(0);
  os_set_page_supplier(NULL);
  cr_assert_not_null(s);
  cr_assert_eq((void *)region_of(s), (void *)h, "a 20 MiB request did not take the cached 76 MiB region");
  cr_assert_eq(h->size, whole, "the region is %zu bytes after a refused cut of %zu", h->size, whole);
  cr_assert_not_null(tail_unmapping.base, "the supplier was not told of the cut");
  cr_assert_eq(tail_mapped.base, tail_unmapping.base, "the supplier was not given the tail back");
  cr_assert_eq(tail_mapped.len, tail_unmapping.len);
  cr_assert_eq(tail_mapped.base + tail_mapped.len, (char *)h + whole);
  size_t usable = malloc_usable_size(s);
  cr_assert_eq(usable, whole - HUGE_OFFSET);
  memset(s, 0x5a, usable);
  free(s);
  cr_assert_eq(h->in_lru, 1, "the whole region was not cached again");
}

/* Within the slack a bigger region is kept whole: a buffer grown by
 * realloc to 8 MiB, freed and grown again, takes the old region at its
 * first huge size and grows in it, mapping nothing and faulting nothing
 * in again. */
static char *grow_by_doubling(size_t top)
{
  char *q = NULL;
  for (size_t s = 16; s <= top; s *= 2) {
    q = realloc(q, opaque_size(s));
    cr_assert_not_null(q);
    memset(q + s / 2, (int)(s >> 4), s / 2);
  }
  return q;
}

Test(huge, a_buffer_grown_again_after_a_free_grows_in_its_old_region)
{
  lru_trim(1);
  char *first = grow_by_doubling(8 * MiB);
  struct region_header *h = region_of(first);
  free(first);
  cr_assert_eq(h->in_lru, 1);
  struct hakmem_stats s0 = snap();
  char *again = grow_by_doubling(8 * MiB);
  struct hakmem_stats s1 = snap();
  cr_assert_eq(again, first, "the buffer did not grow in its old region");
  cr_assert_eq(DELTA(s1, s0, mmap_calls), 0, "growing again mapped memory");
  cr_assert_eq(DELTA(s1, s0, bytes_mapped), 0);
  cr_assert_eq(again[8 * MiB - 1], (char)((8 * MiB) >> 4));
  /* Shrunk within the slack the region was given, it stays in place. */
  cr_assert_eq(realloc(again, opaque_size(2 * MiB)), again);
  free(again);
}

/* No cached region is big enough: the largest one of at least half the
 * size grows by mremap. Its pages come back as reuse, with their contents
 * for malloc and cleared for calloc; only the extension is fresh. */
static void grow_a_cached_region(bool zero)
{
  char *a = malloc(opaque_size(3 * MiB));
  cr_assert_not_null(a);
  memset(a, 0x5A, 3 * MiB);
  size_t old = region_of(a)->size;
  free(a);
  struct hakmem_stats s0 = snap();
  char *b = zero ? calloc(1, opaque_size(5 * MiB)) : malloc(opaque_size(5 * MiB));
  struct hakmem_stats s1 = snap();
  cr_assert_not_null(b);
  struct region_header *h = region_of(b);
  cr_assert_eq(h->size, (size_t)5 * MiB + PAGE_SIZE, "the region is %zu bytes", h->size);
  cr_assert_eq(DELTA(s1, s0, supply[HAKMEM_SUPPLY_REUSE].pages), (long long)((old - PAGE_SIZE) / PAGE_SIZE),
               "%lld pages reused of the cached region's %zu", DELTA(s1, s0, supply[HAKMEM_SUPPLY_REUSE].pages),
               (old - PAGE_SIZE) / PAGE_SIZE);
  cr_assert_eq(DELTA(s1, s0, supply[HAKMEM_SUPPLY_FRESH].pages), (long long)((h->size - old) / PAGE_SIZE),
               "%lld fresh pages for a %zu-byte extension", DELTA(s1, s0, supply[HAKMEM_SUPPLY_FRESH].pages),
               h->size - old);
  if (zero) {
    for (size_t i = 0; i < 5 * MiB; i++)
      cr_assert_eq(b[i], 0, "calloc's byte %zu is %d", i, b[i]);
  } else {
    for (size_t i = 0; i < 3 * MiB - HUGE_OFFSET; i += 4096)
      cr_assert_eq(b[i], 0x5A, "the grown region lost its page at %zu", i);
  }
  memset(b, 1, 5 * MiB);
  free(b);
}

Test(huge, a_smaller_cached_region_grows_for_a_bigger_block) { grow_a_cached_region(false); }

Test(huge, calloc_of_a_grown_region_reads_zero) { grow_a_cached_region(true); }

/* A cached region that cannot grow where it is (a mapping right above it)
 * is not moved: it stays cached, with its pages, for a block it holds, and
 * the bigger block gets a region of its own. Its pages are kept (no
 * release falls due however slowly this runs). */
Test(huge, a_cached_region_with_no_room_above_stays_cached)
{
  OPTION_SET(SS_LAZY_ZERO, ss_lazy_zero, 0);
  char *a = malloc(opaque_size(3 * MiB));
  cr_assert_not_null(a);
  memset(a, 0x5A, 3 * MiB);
  struct region_header *h = region_of(a);
  char *above = mmap((char *)h + h->size, PAGE_SIZE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  cr_assert_neq(above, MAP_FAILED, "the room above the region is taken: %s", strerror(errno));
  free(a);
  char *b = malloc(opaque_size(5 * MiB));
  cr_assert_not_null(b);
  cr_assert_neq(region_of(b), h, "the cached region was moved to grow");
  cr_assert(h->in_lru, "the cached region left the cache");
  cr_assert_eq(region_map_kind((uintptr_t)h), REGION_HUGE);
  memset(b, 1, 5 * MiB);
  struct hakmem_stats s0 = snap();
  char *c = malloc(opaque_size(3 * MiB));
  struct hakmem_stats s1 = snap();
  cr_assert_eq(region_of(c), h, "the cached region did not serve a block it holds");
  cr_assert_eq(DELTA(s1, s0, supply[HAKMEM_SUPPLY_REUSE].pages), (long long)((h->size - PAGE_SIZE) / PAGE_SIZE));
  cr_assert_eq(c[PAGE_SIZE], 0x5A);
  free(b);
  free(c);
  cr_assert_eq(munmap(above, PAGE_SIZE), 0);
}

Test(huge, a_block_over_a_sixteenth_of_a_small_cache_is_unmapped_on_free)
{
  hakmem_options.lru_max_mb = 8; /* a sixteenth: 512 KiB */
  char *p = malloc(opaque_size(3 * MiB));
  cr_assert_not_null(p);
  size_t size = region_of(p)->size;
  struct hakmem_stats s0 = snap();
  free(p);
  struct hakmem_stats s1 = snap();
  cr_assert_eq(region_map_kind((uintptr_t)opaque(p)), REGION_NONE, "the block's region is still mapped");
  cr_assert_eq(DELTA(s1, s0, munmap_calls), 1);
  cr_assert_eq(DELTA(s1, s0, bytes_mapped), -(long long)size);
}

Test(huge, realloc_grows_and_shrinks_with_mremap_keeping_the_contents)
{
  char *p = malloc(opaque_size(3 * MiB));
  cr_assert_not_null(p);
  fill(p, 3 * MiB, 0xABCD);
  struct hakmem_stats s0 = snap();
  char *q = realloc(p, opaque_size(64 * MiB));
  struct hakmem_stats s1 = snap();
  cr_assert_not_null(q);
  cr_assert_eq(check(q, 3 * MiB, 0xABCD), (size_t)-1, "growing lost the contents");
  cr_assert_eq(region_map_kind((uintptr_t)q), REGION_HUGE);
  struct huge_header *hh = header_of(q);
  cr_assert_eq((uintptr_t)hh & REGION_MASK, 0, "the moved region is not 2 MiB aligned");
  cr_assert_eq(hh->h.size, round_page(HUGE_OFFSET + 64 * MiB));
  cr_assert_eq(malloc_usable_size(q), hh->h.size - HUGE_OFFSET);
  cr_assert_geq(DELTA(s1, s0, mmap_calls), 1, "no mremap was counted");
  cr_assert_eq(DELTA(s1, s0, bytes_in_use), (long long)(64 * MiB - 3 * MiB));
  cr_assert_eq(DELTA(s1, s0, huge_live), 0);
  if (q != p)
    cr_assert_eq(region_map_kind((uintptr_t)opaque(p)), REGION_NONE, "the old place is still in the map");
  memset(q + 3 * MiB, 0x11, 61 * MiB);

  /* Shrinking below half shrinks the mapping where it is. */
  char *r = realloc(q, opaque_size(5 * MiB));
  cr_assert_eq(r, q, "shrinking a huge block moved it");
  cr_assert_eq(header_of(r)->h.size, round_page(HUGE_OFFSET + 5 * MiB));
  cr_assert_eq(malloc_usable_size(r), round_page(HUGE_OFFSET + 5 * MiB) - HUGE_OFFSET);
  cr_assert_eq(check(r, 3 * MiB, 0xABCD), (size_t)-1, "shrinking lost the contents");
  cr_assert_eq((unsigned char)r[5 * MiB - 1], 0x11);

  /* Within the mapping and above half of it: nothing to do. */
  cr_assert_eq(realloc(r, opaque_size(4 * MiB)), r);
  cr_assert_eq(header_of(r)->h.size, round_page(HUGE_OFFSET + 5 * MiB));
  free(r);
}

/* A new region leaves as much address space free above it (os.c), so a
 * block grown to twice its size keeps its place and its pages, though a
 * block was mapped after it. */
Test(huge, realloc_to_twice_the_size_grows_in_place)
{
  char *p = malloc(opaque_size(3 * MiB));
  cr_assert_not_null(p);
  fill(p, 3 * MiB, 0x77);
  char *next = malloc(opaque_size(3 * MiB));
  cr_assert_not_null(next);
  memset(next, 1, 3 * MiB);
  struct hakmem_stats s0 = snap();
  char *q = realloc(p, opaque_size(6 * MiB));
  struct hakmem_stats s1 = snap();
  cr_assert_eq(q, p, "the block moved to grow");
  cr_assert_eq(DELTA(s1, s0, mmap_calls), 1, "one mremap, in place");
  cr_assert_eq(header_of(q)->h.size, round_page(HUGE_OFFSET + 6 * MiB));
  cr_assert_eq(check(q, 3 * MiB, 0x77), (size_t)-1, "growing lost the contents");
  memset(q + 3 * MiB, 2, 3 * MiB);
  free(q);
  free(next);
}

/* A block grown by small reallocs grows by an eighth at least: from 2 MiB
 * to 4 MiB by 4 KiB steps, a few mremaps (each at most three calls: an
 * mremap in place, else a new range and a move), not 512. */
Test(huge, realloc_by_small_steps_grows_by_an_eighth)
{
  size_t size = 2 * MiB;
  char *p = malloc(opaque_size(size));
  cr_assert_not_null(p);
  fill(p, size, 0x5EED);
  struct hakmem_stats s0 = snap();
  for (size_t n = size + PAGE_SIZE; n <= 4 * MiB; n += PAGE_SIZE) {
    p = realloc(p, opaque_size(n));
    cr_assert_not_null(p);
    cr_assert_geq(malloc_usable_size(p), n);
    p[n - 1] = 1;
  }
  struct hakmem_stats s1 = snap();
  cr_assert_leq(DELTA(s1, s0, mmap_calls), 3 * 8, "%lld mapping calls for 512 reallocs",
                (long long)DELTA(s1, s0, mmap_calls));
  cr_assert_eq(check(p, size, 0x5EED), (size_t)-1, "growing lost the contents");
  free(p);
}

Test(huge, realloc_moves_between_huge_and_large)
{
  char *p = malloc(opaque_size(512 * KiB));
  cr_assert_not_null(p);
  cr_assert_eq(region_map_kind((uintptr_t)p), REGION_LARGE);
  fill(p, 512 * KiB, 5);
  char *q = realloc(p, opaque_size(3 * MiB));
  cr_assert_eq(region_map_kind((uintptr_t)q), REGION_HUGE);
  cr_assert_eq(check(q, 512 * KiB, 5), (size_t)-1, "large to huge lost the contents");
  fill(q, 3 * MiB, 6);
  char *r = realloc(q, opaque_size(400 * KiB));
  cr_assert_eq(region_map_kind((uintptr_t)r), REGION_LARGE, "a huge block shrunk to 400 KiB did not move to a large run");
  cr_assert_eq(check(r, 400 * KiB, 6), (size_t)-1, "huge to large lost the contents");
  free(r);
}

/* Down to half the largest large size, a huge block shrinks in place and
 * grows back there: one resized back and forth across the limit is not
 * copied each time. */
Test(huge, realloc_across_the_large_limit_stays_in_place)
{
  free(malloc(opaque_size(2100000))); /* cached, then taken whole: usable past 2,000,000 bytes */
  char *p = malloc(opaque_size(1100000));
  cr_assert_not_null(p);
  cr_assert_gt(malloc_usable_size(p), 2000000, "test premise: the block has its cached region whole");
  fill(p, 1100000, 7);
  for (int i = 0; i < 4; i++) {
    char *q = realloc(p, opaque_size(1000000));
    cr_assert_eq(q, p, "a huge block shrunk to 1,000,000 bytes moved");
    cr_assert_eq(check(q, 1000000, 7), (size_t)-1);
    char *r = realloc(q, opaque_size(1100000));
    cr_assert_not_null(r);
    cr_assert_eq(check(r, 1000000, 7), (size_t)-1, "grown back, it lost the contents");
    memset(r + 1000000, 0x5a, 100000);
    p = r;
  }
  cr_assert_eq(region_map_kind((uintptr_t)p), REGION_HUGE);
  free(p);
}

Test(huge, alignments_up_to_1g)
{
  static const size_t aligns[] = { 4 * KiB, 64 * KiB, MiB, 2 * MiB, 4 * MiB, 512 * MiB, 1024 * MiB };
  static const size_t sizes[] = { 3 * MiB / 2, 5 * MiB };
  for (size_t a = 0; a < sizeof aligns / sizeof aligns[0]; a++) {
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
      lru_trim(1); /* mapped anew, not a cached region kept up to twice the size */
      struct hakmem_stats s0 = snap();
      char *p = aligned_alloc(aligns[a], opaque_size(sizes[s]));
      struct hakmem_stats s1 = snap();
      cr_assert_not_null(p, "aligned_alloc(%zu, %zu)", aligns[a], sizes[s]);
      /* The pages between the header and the block are never the program's:
       * in use and in the ledger are the block's pages only. */
      struct region_header *rh = region_of(p);
      uintptr_t first_page = (uintptr_t)p & ~(PAGE_SIZE - 1);
      size_t block_pages = ((uintptr_t)rh + rh->size - first_page) / PAGE_SIZE;
      cr_assert_eq(DELTA(s1, s0, bytes_in_use), (long long)(block_pages * PAGE_SIZE),
                   "aligned_alloc(%zu, %zu) counts %lld bytes in use for %zu pages", aligns[a], sizes[s],
                   DELTA(s1, s0, bytes_in_use), block_pages);
      /* The ledger leaves out the header's page, which a block aligned to
       * less than a page starts on. */
      size_t supplied = block_pages - (first_page == (uintptr_t)rh);
      cr_assert_eq(DELTA(s1, s0, supply[HAKMEM_SUPPLY_FRESH].pages), (long long)supplied,
                   "aligned_alloc(%zu, %zu): the ledger counts %lld fresh pages for %zu", aligns[a], sizes[s],
                   DELTA(s1, s0, supply[HAKMEM_SUPPLY_FRESH].pages), supplied);
      cr_assert_eq((uintptr_t)p % aligns[a], 0, "aligned_alloc(%zu, %zu) = %p", aligns[a], sizes[s], (void *)p);
      size_t chunks_above = aligns[a] >= REGION_SIZE ? 1 : 0;
      cr_assert_eq(region_map_kind((uintptr_t)p), REGION_HUGE + chunks_above,
                   "aligned_alloc(%zu, %zu): map value %u", aligns[a], sizes[s], region_map_kind((uintptr_t)p));
      struct huge_header *hh = header_of(p);
      cr_assert_eq((char *)hh + hh->offset, p, "region_of does not find the block's header");
      cr_assert_eq((uintptr_t)hh % REGION_SIZE, 0);
      cr_assert_eq(hh->offset, aligns[a] >= REGION_SIZE ? REGION_SIZE : aligns[a] > HUGE_OFFSET ? aligns[a] : HUGE_OFFSET);
      cr_assert_leq(hh->h.size, sizes[s] + 2 * REGION_SIZE, "aligned_alloc(%zu, %zu) keeps %zu bytes mapped",
                    aligns[a], sizes[s], hh->h.size);
      cr_assert_geq(malloc_usable_size(p), sizes[s]);
      fill(p, sizes[s], (unsigned)(a * 7 + s));
      cr_assert_eq(check(p, sizes[s], (unsigned)(a * 7 + s)), (size_t)-1);
      free(p);
      /* Its region is cached, with its map entries, or unmapped, without. */
      unsigned kind = region_map_kind((uintptr_t)opaque(p));
      if (chunks_above && kind != REGION_NONE)
        cr_assert(kind == REGION_HUGE + 1 && hh->h.in_lru, "a block aligned to %zu left its map entries behind",
                  aligns[a]);
    }
  }
  /* An alignment above 1 MiB makes even a small size huge. */
  void *p = aligned_alloc(4 * MiB, opaque_size(100 * KiB));
  cr_assert_not_null(p);
  cr_assert_eq((uintptr_t)p % (4 * MiB), 0);
  cr_assert_eq(region_map_kind((uintptr_t)p), REGION_HUGE + 1);
  free(p);
  /* Alignments no address space can satisfy fail cleanly. */
  errno = 0;
  cr_assert_null(aligned_alloc(opaque_size((size_t)1 << 62), opaque_size(100)));
  cr_assert_eq(errno, ENOMEM);
}

/* A block aligned to 2 MiB or more starts at its region's second chunk;
 * such a region is cached and serves the next block of its alignment or
 * a smaller one, never a block that starts in the first chunk. */
Test(huge, an_aligned_block_is_reused_from_the_lru)
{
  lru_trim(1);
  char *p = aligned_alloc(2 * MiB, opaque_size(4 * MiB));
  cr_assert_not_null(p);
  struct region_header *h = region_of(p);
  free(p);
  cr_assert_eq(h->in_lru, 1, "a freed aligned block was not cached");

  struct hakmem_stats s0 = snap();
  char *q = aligned_alloc(2 * MiB, opaque_size(4 * MiB));
  struct hakmem_stats s1 = snap();
  cr_assert_eq(q, p, "the same request took %p, not the cached %p", (void *)q, (void *)p);
  cr_assert_eq(DELTA(s1, s0, mmap_calls), 0, "reuse from the LRU mapped memory");
  fill(q, 4 * MiB, 3);
  free(q);

  char *plain = malloc(opaque_size(5 * MiB));
  cr_assert_not_null(plain);
  cr_assert_neq((void *)region_of(plain), (void *)h, "an unaligned block took an aligned block's region");
  cr_assert_eq(h->in_lru, 1);

  char *wider = aligned_alloc(8 * MiB, opaque_size(4 * MiB));
  cr_assert_not_null(wider);
  cr_assert_eq((uintptr_t)wider % (8 * MiB), 0, "aligned_alloc(8 MiB) = %p", (void *)wider);
  if ((uintptr_t)p % (8 * MiB) != 0)
    cr_assert_neq((void *)region_of(wider), (void *)h, "a region aligned to 2 MiB served an 8 MiB alignment");
  free(wider);
  free(plain);
}

Test(huge, calloc_of_a_fresh_region_writes_no_page)
{
  lru_trim(1);
  const size_t size = 8 * MiB;
  char *p = calloc(1, opaque_size(size));
  cr_assert_not_null(p);
  struct region_header *h = region_of(p);
  cr_assert_eq(h->pages, HAKMEM_SUPPLY_FRESH, "test premise: a fresh mapping");
  size_t body = h->size - PAGE_SIZE, resident = resident_pages((char *)h + PAGE_SIZE, body);
  if (resident && thp_in_use())
    cr_skip_test("transparent huge pages in use: the header's write may have made %zu pages resident", resident);
  cr_assert_eq(resident, 0, "calloc wrote %zu fresh pages", resident);
  for (size_t i = 0; i < size; i += 512)
    cr_assert_eq(p[i], 0);
  free(p);
}

Test(huge, a_double_free_aborts, .signal = SIGABRT)
{
  no_core_dumps();
  lru_trim(1);
  void *p = malloc(opaque_size(3 * MiB));
  cr_assert_not_null(p);
  free(p);
  free(opaque(p));
}

Test(huge, a_free_inside_a_block_aborts, .signal = SIGABRT)
{
  no_core_dumps();
  char *p = malloc(opaque_size(3 * MiB));
  cr_assert_not_null(p);
  free(opaque(p + PAGE_SIZE));
}

/* A cached region taken for a block a quarter its size is cut to twice
 * the block. The moment its tail is unmapped, another thread may map
 * something there (the pager's start mapped its pool there); a walk of
 * the regions, which the pager's start registers, must already see the
 * region cut. Checked from inside the unmap. */
static void *cut_tail;
static size_t cut_len;
static int walks_past_the_mapping, unmaps_seen;

static void check_region(void *base, size_t len, void *arg)
{
  (void)arg;
  if ((char *)base < (char *)cut_tail + cut_len && (char *)cut_tail < (char *)base + len)
    walks_past_the_mapping++;
}

static void after_unmap(void *addr, size_t len)
{
  cut_tail = addr;
  cut_len = len;
  unmaps_seen++;
  os_for_each_region(check_region, NULL);
}

Test(huge, a_walk_of_the_regions_never_covers_a_tail_being_cut)
{
  char *p;
  struct region_header *h = cached_block(76 * MiB, &p);
  os_test_after_unmap(after_unmap);
  char *q = malloc(opaque_size(20 * MiB)); /* past the slack: cut */
  os_test_after_unmap(NULL);
  cr_assert_eq(region_of(q), h, "the cached region was not taken");
  cr_assert_lt(h->size, 76 * MiB, "the region was not cut");
  cr_assert_eq(unmaps_seen, 1);
  cr_assert_eq(walks_past_the_mapping, 0, "a walk saw the region over its unmapped tail");
  free(q);
}

/* Whether the kernel then finds huge pages is its business (memory may be
 * fragmented): only logged. */
static void huge_pages_asked(int option, bool expect_asked)
{
  skip_without_thp();
  OPTION_SET(HUGE_THP, huge_thp, option);
  const size_t size = 8 * MiB;
  char *p = malloc(opaque_size(size));
  cr_assert_not_null(p);
  fill(p, size, 7);
  long huge_kb;
  cr_assert_eq(asks_for_huge_pages(p, &huge_kb), expect_asked, "HUGE_THP=%d", option);
  cr_assert_eq(check(p, size, 7), (size_t)-1, "the block changed");
  cr_log_info("HUGE_THP=%d: %ld KiB of the block's mapping in huge pages", option, huge_kb);
  free(p);
}

Test(huge, with_huge_thp_a_fresh_region_asks_for_huge_pages)
{
  huge_pages_asked(1, true);
  huge_pages_asked(2, true);
}

Test(huge, by_default_a_fresh_region_does_not_ask_for_huge_pages) { huge_pages_asked(0, false); }
