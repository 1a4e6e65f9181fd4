/* lru.h: the cache of empty regions (SuperSlabs and huge blocks).
 *
 * Bounded by count (HAKMEM_LRU_MAX), bytes (HAKMEM_LRU_MAX_MB) and age
 * (HAKMEM_LRU_AGE_MS): past the count and bytes the oldest regions are
 * released at once, and past four times them (or past them, when nothing
 * is released) or past the age limit the least recently cached region is
 * unmapped.
 * HAKMEM_SS_LAZY_ZERO decides what happens to the pages of a region that
 * enters: kept, MADV_DONTNEED, MADV_FREE, or handed to the pager. The
 * release decays with time, as jemalloc's and mimalloc's purging does: a
 * region taken again within LRU_RELEASE_DELAY_NS of being cached keeps its
 * pages and pays neither the madvise nor the refaults; the ones that stay
 * longer are released, oldest first, 16 MiB at a time, on the next LRU operation
 * or refill (lru_tick). The delay counts only while the program runs the
 * allocator and takes no region from the cache (lru.c). A program that
 * frees memory and then stops allocating keeps it until it calls
 * malloc_trim(). */
#ifndef HAKMEM_LRU_H
#define HAKMEM_LRU_H

#include <stdatomic.h>
#include <stddef.h>

#include "os.h"
#include "types.h"

#define LRU_RELEASE_DELAY_NS (100u * 1000u * 1000u)
#define LRU_ACTIVITY_GRAIN_NS (1000u * 1000u) /* how often refills record that the program runs */

/* Cache an empty region. Its header stays valid; the rest of its pages may
 * be released. */
void lru_put(struct region_header *h);

/* Cache again, as the newest, a region an lru_take*() gave that its taker
 * could not use, its pages as they are. */
void lru_put_back(struct region_header *h);

/* Take the smallest cached region of min..max bytes (the most recently
 * cached of equals) with one map chunk, or NULL. A huge block's region
 * that fits goes before a SuperSlab, if it is at most four times min:
 * SuperSlabs are kept for slabs and runs, which can use nothing else; a
 * request of exactly a SuperSlab's size takes a SuperSlab first. Of huge
 * blocks' regions, only the newest few of each size bin (four a doubling)
 * are looked at, in the first bin that has a fit: a bounded look, not a
 * walk of the cache. Its h->pages says what state the pages after its
 * header are in. */
struct region_header *lru_take(size_t min, size_t max);
/* The same, the largest cached region of min..max bytes, a huge block's
 * before a SuperSlab (unless max is a SuperSlab's size), however they
 * compare. */
struct region_header *lru_take_largest(size_t min, size_t max);
/* The same as lru_take(), of a region of `chunks` map chunks whose last
 * chunk is aligned to `align` (region_map_new()). */
struct region_header *lru_take_aligned(size_t min, size_t max, unsigned chunks, size_t align);

/* When lru_tick() has work: the oldest pending release, or the least
 * recently cached region reaching the age limit; 0: none. */
extern _Atomic uint64_t lru_release_due HIDDEN;

/* lru_tick()'s slow half, given the nonzero lru_release_due it read. */
void lru_tick_due(uint64_t due);

/* lru_release_due, for a caller that calls lru_tick_due() out of its
 * fast path. */
static inline uint64_t lru_due(void) { return atomic_load_explicit(&lru_release_due, memory_order_relaxed); }

/* Release the regions that waited long enough, if any: one relaxed load
 * when none does, inline in the allocator's slow paths and its large
 * mallocs. */
static inline void lru_tick(void) {
  uint64_t due = lru_due();
  if (unlikely(due != 0)) lru_tick_due(due);
}

/* Release every pending region, and with `all` unmap every cached one,
 * its pages straight back to the kernel. Returns the bytes given back to
 * the kernel. */
size_t lru_trim(int all);

/* What HAKMEM_SS_LAZY_ZERO does now with the pages of a cached region. */
enum os_release_mode lru_release_policy(void);

void lru_fork_prepare(void);
void lru_fork_parent(void);
void lru_fork_child(void);

#endif /* HAKMEM_LRU_H */
