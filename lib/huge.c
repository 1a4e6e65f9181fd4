/* huge.c: blocks in regions of their own. */
#include "huge.h"

#include <errno.h>
#include <string.h>

#include "budget.h"
#include "diag.h"
#include "lru.h"
#include "options.h"
#include "os.h"
#include "region_map.h"
#include "stats.h"
#include "superslab.h"
#include "zero.h"

#define HUGE_OFFSET ((size_t)128) /* the header's two cache lines */

_Static_assert(sizeof(struct huge_header) <= HUGE_OFFSET, "the header fits before the block");

static size_t round_page(size_t n) { return (n + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1); }

/* A cached region that fits, up to four times larger than needed (more
 * within the slack, below): up to twice the size is kept with its pages,
 * the rest unmapped. Keeping less
 * throws away resident pages that the next larger block must fault in
 * again. large workload (256 KiB..4 MiB, 32 live), three runs: keeping an
 * eighth more took 244-254 ns/page, 54,400 faults and 183 MB of RSS;
 * twice, 227-235 ns/page, 39,800 faults and 158 MB; all of it, 227-239,
 * 38,000 and 153 MB; releasing the excess by MADV_DONTNEED instead of
 * unmapping it, 274-281, 80,600 and 149 MB. A block below HUGE_KEEP_MIN
 * keeps up to that much more: a program that frees a buffer of 1 to 4 MiB
 * and takes one of another size, again and again, would otherwise cut
 * and regrow one region by munmap and mremap, and fault in the regrown
 * pages, every time (2.1-2.9 us an operation, touching two pages of each
 * block, against 0.06-0.10 for glibc, which keeps such blocks in its
 * heap). And a block keeps all of a bigger region while the slack of all
 * live blocks stays under HUGE_SLACK_MAX (such regions are taken up to
 * that much past twice the size): a buffer grown by realloc to 8 MiB,
 * freed, and grown again from nothing, takes the old region whole at its
 * first huge size and grows in place, where cutting it meant faulting in
 * the rest again (5.3 ms a cycle and 182-190 MB of peak RSS, against
 * 0.10-0.11 ms and 10 MB so; glibc, which keeps the buffer in its heap,
 * 0.10 ms and 10 MB). Live blocks
 * keep at most HUGE_SLACK_MAX so in all: a program that frees a hundred
 * 4 MiB blocks and takes a hundred of 1.1 MiB holds 32 MiB more than
 * twice what it asked for, not 300. */
#define HUGE_KEEP_MIN ((size_t)4 << 20)
#define HUGE_SLACK_MAX ((size_t)32 << 20)

static _Atomic size_t huge_slack_total; /* the slack of live blocks */

/* Of a cached region of `size` bytes taken for `map`: the bytes to keep,
 * and in *slack those past twice map. The whole region, else up to
 * HUGE_KEEP_MIN more for a block below it, else twice map. */
static size_t huge_keep(size_t size, size_t map, size_t *slack) {
  size_t keep = 2 * map, wanted = size - keep;
  *slack = 0;
  if (size <= keep) return keep;
  if (!budget_reserve(&huge_slack_total, wanted, HUGE_SLACK_MAX)) {
    if (map >= HUGE_KEEP_MIN) return keep;
    wanted = (size < map + HUGE_KEEP_MIN ? size : map + HUGE_KEEP_MIN) - keep;
    if (!budget_reserve(&huge_slack_total, wanted, HUGE_SLACK_MAX)) return keep;
  }
  *slack = wanted;
  return keep + wanted;
}

/* The largest cached region worth taking for map: four times it, or all
 * that the slack allows. */
static size_t huge_take_max(size_t map) {
  if (map > (SIZE_MAX - HUGE_SLACK_MAX) / 4) return SIZE_MAX;
  return 4 * map > 2 * map + HUGE_SLACK_MAX ? 4 * map : 2 * map + HUGE_SLACK_MAX;
}

static void huge_slack_drop(struct huge_header *hh) {
  if (hh->slack) budget_release(&huge_slack_total, hh->slack);
  hh->slack = 0;
}

/* A cached region becomes a huge block's: a SuperSlab's leaves the
 * SuperSlabs' counts as if unmapped (superslab.c counts the way back).
 * Returns how many of its absent pages a release gave back, read from the
 * header of the kind it had: those refault, the others come fresh. */
static unsigned huge_take_kind(struct region_header *h) {
  if (h->kind == REGION_HUGE) return 0;
  unsigned released = region_body_resident(h) ? region_released_absent_pages(h) : 0;
  stats_add(STAT_ss_unmapped_total, 1);
  region_set_kind(h, REGION_HUGE);
  return released;
}

static struct region_header *huge_from_lru(size_t map, unsigned chunks, size_t align, size_t *slack,
                                           unsigned *released) {
  struct region_header *h = lru_take_aligned(map, huge_take_max(map), chunks, align);
  *slack = 0;
  if (!h) return NULL;
  size_t keep = huge_keep(h->size, map, slack);
  if (h->size > keep) {
    const struct os_page_supplier *s = os_page_supplier();
    size_t cut = h->size - keep;
    if (s && s->region_unmapping) s->region_unmapping((char *)h + keep, cut);
    /* A refused cut (at the limit of mappings) leaves the region whole,
     * its tail the block's too (malloc's usable size) and the supplier's again
     * (the pager keeps an end at the cut: its reads-ahead stop there).
     * The tail past the slack huge_keep reserved goes uncounted. */
    if (!region_shrink(h, keep) && s && s->region_mapped) s->region_mapped((char *)h + keep, cut);
  }
  *released = huge_take_kind(h);
  region_supply_by_faults(h, false);
  return h;
}

static void huge_unpublish(struct region_header *h);
static void huge_publish(struct region_header *h);

/* No cached region is big enough: the largest of at least half the size
 * grows by mremap where it is, into the room left above it (region_map.h),
 * keeping its resident pages; only the extension comes fresh. large
 * workload, three runs: 194-211 ns/page, 32,500 faults, 126 MB of RSS,
 * against 213-219, 39,800 and 158 MB when such a request mapped a new
 * region (mimalloc 187-211, 28,400, 114 MB). One with no room goes back
 * to the cache and a new region is mapped: it is not moved. On the PVM
 * guest a move of a few MiB made every resident page of the process cost
 * 5.6-6.3 us at its next touch (README): the calloc workload, whose first
 * growth moved a region the kernel had placed, ran at 2,802 ns/page so and
 * at 1,960 now, large at 436 and 439 (medians of five).
 * Sets *grown_from to the old size (the ledger and calloc tell the two
 * parts apart) and *released as huge_take_kind() returns. */
static struct region_header *huge_grow_cached(size_t map, size_t *grown_from, unsigned *released) {
  struct region_header *h = lru_take_largest(map / 2, map - PAGE_SIZE);
  *grown_from = 0;
  if (!h) return NULL;
  size_t old = h->size;
  if (!os_resize_in_place(h, old, map)) {
    lru_put_back(h);
    return NULL;
  }
  *released = huge_take_kind(h);
  huge_unpublish(h); /* the supplier forgets the old range and registers the new one */
  h->size = map;
  huge_publish(h);
  region_supply_by_faults(h, false); /* huge_publish registered it anew */
  *grown_from = old;
  return h;
}

/* Bytes from which the region's contents are known to be zero. */
static size_t clean_from_state(const struct region_header *h, size_t offset) {
  switch (h->pages) {
  case HAKMEM_SUPPLY_FRESH: return offset;
  case HAKMEM_SUPPLY_REFAULT: return PAGE_SIZE; /* the header page keeps old bytes */
  default: return h->size;
  }
}

/* Where the block's pages start: the header's page holds the start of a
 * block aligned to less than a page; one aligned further starts pages or
 * chunks after the header, and the pages between are never the
 * program's, neither in use (bytes_in_use) nor supplied (the ledger). */
static size_t huge_block_page(const struct huge_header *hh) { return hh->offset & ~(PAGE_SIZE - 1); }

/* The first page past the header that the block can reach. */
static size_t huge_body_start(const struct huge_header *hh) {
  size_t b = huge_block_page(hh);
  return b > PAGE_SIZE ? b : PAGE_SIZE;
}

/* The bytes a block holds in the statistics: from its first page on. */
static size_t huge_block_bytes(const struct huge_header *hh) { return hh->h.size - huge_block_page(hh); }

/* The absent pages from `from` to the region's end. Without a page
 * supplier they are counted on `path` up to fresh_from, as fresh past it,
 * and the program faults them in itself. With one (the pager) the first
 * of them come in now, pre-zeroed, and the rest by the faults it serves
 * (pager/readahead.h): it counts them all.
 * calloc's are left to the supplier's fault path: a page the program only
 * reads is mapped to the zero page there, where direct supply would move
 * in a pre-zeroed page (calloc workload: 136 against 233 ns/page). */
static void huge_supply_absent(struct region_header *h, size_t from, enum hakmem_supply_path path, size_t fresh_from,
                               bool zero) {
  size_t body = huge_body_start((struct huge_header *)h);
  size_t start = from > body ? from : body, split = fresh_from > start ? fresh_from : start;
  if (os_page_supplier()) {
    if (!zero) os_supply_direct((char *)h + start, h->size - start);
    return;
  }
  if (split > start) stats_supply(path, (split - start) / PAGE_SIZE, 0, 0);
  stats_supply(HAKMEM_SUPPLY_FRESH, (h->size - split) / PAGE_SIZE, 0, 0);
}

/* The pages after the header, as the block is handed out: resident ones
 * counted by the region's state, absent ones by huge_supply_absent(); a
 * grown region is as it was up to grown_from and fresh beyond. (Handing a
 * resident body back to the pager instead of clearing it for calloc was
 * measured: 439 ns a page of wall time against 263 for memset.) */
static void huge_supply_body(struct huge_header *hh, bool zero, size_t grown_from) {
  struct region_header *h = &hh->h;
  enum hakmem_supply_path state = (enum hakmem_supply_path)h->pages;
  size_t body = huge_body_start(hh);
  if (!region_body_resident(h)) {
    huge_supply_absent(h, PAGE_SIZE, state, grown_from ? grown_from : h->size, zero);
  } else if (grown_from) {
    if (grown_from > body) stats_supply(state, (grown_from - body) / PAGE_SIZE, 0, 0);
    huge_supply_absent(h, grown_from, HAKMEM_SUPPLY_FRESH, h->size, zero);
  } else {
    stats_supply(state, (h->size - body) / PAGE_SIZE, 0, 0);
  }
}

/* calloc of a block on a reused region: its first size bytes at p are
 * cleared page by page (zero.h). The body's pages count as reused, except
 * the absent ones, which fault in: refaults up to the `released` pages a
 * release gave back, fresh past them, or the supplier's to count. */
static void huge_clear_reused(struct huge_header *hh, char *p, size_t size, size_t grown_from, size_t released) {
  struct region_header *h = &hh->h;
  size_t resident_end = grown_from ? grown_from : h->size;
  size_t body = huge_body_start(hh);
  size_t body_pages = resident_end > body ? (resident_end - body) / PAGE_SIZE : 0, absent = 0;
  char *end = p + size;
  char *from = (char *)round_page((uintptr_t)p), *to = (char *)((uintptr_t)end & ~(PAGE_SIZE - 1));
  if (from < to) {
    memset(p, 0, (size_t)(from - p));
    memset(to, 0, (size_t)(end - to));
    absent = zero_pages(from, (size_t)(to - from)).absent;
  } else {
    memset(p, 0, size);
  }
  stats_supply((enum hakmem_supply_path)h->pages, body_pages - absent, 0, 0);
  if (!os_page_supplier()) {
    size_t refault = absent < released ? absent : released;
    stats_supply(HAKMEM_SUPPLY_REFAULT, refault, 0, 0);
    stats_supply(HAKMEM_SUPPLY_FRESH, absent - refault, 0, 0);
  }
  if (grown_from) huge_supply_absent(h, grown_from, HAKMEM_SUPPLY_FRESH, h->size, true);
}

/* Alignments of 2 MiB and more: the block starts at the second chunk of
 * its region, which is mapped so that chunk is aligned; the header stays
 * at the region's base, in the chunk just below the block. Such regions
 * are cached too, and taken again for blocks of the same alignment or a
 * smaller one: 50,000 blocks of 4 MiB aligned to 2 MiB, four live, took
 * 2.3-2.8 s mapped anew each time, 0.02 s so (glibc 2.1-2.7 s, mimalloc,
 * jemalloc and tcmalloc 0.02-0.03 s). */
void *huge_alloc(size_t size, size_t align, bool zero) {
  size_t offset = align <= HUGE_OFFSET ? HUGE_OFFSET : align < REGION_SIZE ? align : REGION_SIZE;
  size_t chunks = (offset >> REGION_SHIFT) + 1;
  if (size > (size_t)PTRDIFF_MAX - offset - REGION_SIZE || align > (size_t)PTRDIFF_MAX) {
    errno = ENOMEM;
    return NULL;
  }
  size_t map = round_page(offset + size), grown_from = 0, slack = 0;
  unsigned released = 0;
  size_t region_align = align > REGION_SIZE ? align : REGION_SIZE;
  struct region_header *h = huge_from_lru(map, (unsigned)chunks, region_align, &slack, &released);
  if (!h && chunks == 1) h = huge_grow_cached(map, &grown_from, &released);
  if (!h && !(h = region_map_new(map, region_align, REGION_HUGE, (unsigned)chunks, false))) {
    errno = ENOMEM;
    return NULL;
  }
  struct huge_header *hh = (struct huge_header *)h;
  h->chunks = (uint8_t)chunks;
  hh->slack = slack;
  hh->offset = offset;
  /* A calloc'd block is usable, and zero, to the end of its last page; the
   * rest of a bigger cached region stays as its last user left it. */
  hh->usable = zero ? map - offset : h->size - offset;
  size_t clean_from = clean_from_state(h, offset);
  if (grown_from && clean_from > grown_from) clean_from = grown_from;
  stats_add(STAT_huge_live, 1);
  stats_add(STAT_bytes_in_use, (int64_t)huge_block_bytes(hh));
  char *p = (char *)h + offset;
  size_t dirty = clean_from > offset ? clean_from - offset : 0;
  if (dirty > hh->usable) dirty = hh->usable;
  if (zero && dirty && region_body_resident(h)) {
    huge_clear_reused(hh, p, dirty, grown_from, released);
    return p;
  }
  huge_supply_body(hh, zero, grown_from);
  if (zero && dirty) memset(p, 0, dirty);
  return p;
}

/* The header of the live huge block at p, or abort naming op. */
static struct huge_header *huge_check(const void *p, const char *op) {
  struct region_header *h = region_of(p);
  struct huge_header *hh = (struct huge_header *)h;
  if (!h || h->kind != REGION_HUGE || (const char *)h + hh->offset != (const char *)p)
    diag_fatal(op, p, "not a block hakmem returned");
  if (h->in_lru) diag_fatal_freed(op, p);
  return hh;
}

/* A block's region goes to the LRU, or back to the kernel when it must
 * not be reused (discard) or is bigger than a sixteenth of the cache
 * (32 MiB by default, glibc's largest mmap threshold). Such regions are
 * taken again only for blocks of a quarter of their size or more, which
 * a program seldom has many of: a buffer grown by doubling to 64 MiB,
 * freed, 20 times, left one 64 MiB region a round resident until its
 * release, 330 MB of peak RSS against 67 MB for glibc (mimalloc 100,
 * jemalloc 77, tcmalloc 138). */
static void huge_release(struct region_header *h, bool discard) {
  huge_slack_drop((struct huge_header *)h);
  stats_add(STAT_huge_live, -1);
  stats_add(STAT_bytes_in_use, -(int64_t)huge_block_bytes((struct huge_header *)h));
  if (discard || h->size > ((size_t)hakmem_options.lru_max_mb << 20) / 16) region_unmap(h, true);
  else lru_put(h);
}

void huge_free(void *p) { huge_release(&huge_check(p, "free(): invalid pointer")->h, false); }

size_t huge_usable(const void *p, const char *op) { return huge_check(p, op)->usable; }

static void huge_unpublish(struct region_header *h) {
  const struct os_page_supplier *s = os_page_supplier();
  if (s && s->region_unmapping) s->region_unmapping(h, h->size);
  region_withdraw(h);
}

static void huge_publish(struct region_header *h) {
  region_publish(h);
  const struct os_page_supplier *s = os_page_supplier();
  if (s && s->region_mapped) s->region_mapped(h, h->size);
}

/* mremap refuses a range made of several mappings, which the program's
 * madvise, mlock or mprotect of part of a block leaves behind; a remap
 * may also find no room. The block is copied instead, and its region
 * unmapped: parts locked, protected or kept from fork must not be reused. */
static void *huge_realloc_by_copy(struct huge_header *hh, void *p, size_t size) {
  void *n = huge_alloc(size, 0, false);
  if (!n) return NULL;
  memcpy(n, p, hh->usable < size ? hh->usable : size);
  huge_release(&hh->h, true);
  return n;
}

void *huge_realloc(void *p, size_t size) {
  struct huge_header *hh = huge_check(p, "realloc(): invalid pointer");
  struct region_header *h = &hh->h;
  size_t offset = hh->offset;
  if (size > (size_t)PTRDIFF_MAX - offset - REGION_SIZE) {
    errno = ENOMEM;
    return NULL;
  }
  size_t map = round_page(offset + size), old = h->size;
  /* Within the region, in place unless it would hold more than twice the
   * block, past the slack it was given. */
  if (map <= old && (map >= old / 2 || old - 2 * map <= hh->slack)) {
    hh->usable = old - offset; /* a calloc'd block's too (huge_alloc) */
    return p;
  }
  /* A block that grows grows again: an eighth more than asked, address
   * space only until the program writes there. 64 buffers grown side by
   * side by 1..8 KiB reallocs to 4 MiB took an mremap a realloc past
   * 1 MiB, 19% of the run. */
  if (map > old && map < old + old / 8) map = round_page(old + old / 8);
  huge_unpublish(h);
  struct region_header *n = os_remap_aligned(h, old, map, REGION_SIZE, region_growth_room(map));
  if (!n) {
    huge_publish(h);
    if (map <= old) return p; /* it still holds size bytes */
    return huge_realloc_by_copy(hh, p, size);
  }
  struct huge_header *nh = (struct huge_header *)n;
  huge_slack_drop(nh);
  n->size = map;
  nh->usable = map - offset;
  if (map > old && !os_page_supplier()) stats_supply(HAKMEM_SUPPLY_FRESH, (map - old) / PAGE_SIZE, 0, 0);
  stats_add(STAT_bytes_in_use, (int64_t)map - (int64_t)old);
  huge_publish(n);
  return (char *)n + offset;
}
