/* slab.h: one 64 KiB unit holding blocks of one size class.
 *
 * The owner thread takes blocks from the local free list, then from the
 * never-used carve area, and returns them to the local list. Other threads
 * push freed blocks onto `remote` with one CAS; the first of a batch also
 * queues the slab on the owner heap's pending list, and the owner collects
 * them on its next slow path. */
#ifndef HAKMEM_SLAB_H
#define HAKMEM_SLAB_H

#include "tcache.h"
#include "types.h"

/* The rest of the record of a slab s: s lives in its SuperSlab's header. */
static inline struct slab_cold *slab_cold(const struct slab *s) {
  struct superslab *ss = (struct superslab *)((uintptr_t)s & ~(uintptr_t)REGION_MASK);
  return &ss->cold[s - ss->slabs];
}

void slab_init(struct slab *s, struct heap *owner, char *unit, unsigned cls);

/* Take up to n blocks for the owner's cache: linked through word 0, each
 * with its free cookie; *tail gets the last. The local free list first,
 * then never-used blocks within `pages` pages (memory is touched only as
 * it is needed). Returns how many. */
unsigned slab_take(struct slab *s, unsigned n, unsigned pages, struct free_block **head, struct free_block **tail);

/* The whole local free list (NULL-terminated) in one step when it holds
 * at most max blocks, else NULL: a walk down a list in the order blocks
 * were freed misses the cache on every block (the blocks are touched
 * later, by malloc, one at a time, with the program's work in between). */
struct free_block *slab_take_list(struct slab *s, unsigned max, unsigned *count);

static inline bool slab_has_room(const struct slab *s) { return s->free || s->parked || s->carve < s->end; }

/* ---- parked pages ----
 *
 * malloc_trim gives back the pages of a slab in use whose blocks are all
 * free. The blocks that start on such a page leave the free list (their
 * links would read as zero) and come back, a run of pages at a time, when
 * the free list runs dry. While any page is parked, `divides` is 0: the
 * free fast path's block-grid test fails, and every free of the slab's
 * blocks takes the slow path, which knows a parked block for a freed one. */

/* Whether p (a block of s) starts on a parked page. */
static inline bool slab_block_parked(const struct slab *s, const void *p) {
  return (s->parked >> (((const char *)p - s->start) >> PAGE_SHIFT)) & 1;
}

/* Whether p is the start of a block that slab s has handed out, parked
 * pages or not: for the slow paths. */
static inline bool slab_holds_block_slow(const struct slab *s, const void *p) {
  return (const char *)p < s->carve && (size_t)((const char *)p - s->start) % s->block_size == 0;
}

/* The pages that may be parked: below the carve boundary, each covered
 * only by blocks on the local free list. */
uint16_t slab_parkable_pages(const struct slab *s);

/* Take the blocks that start on `pages` off the local free list. */
void slab_park(struct slab *s, uint16_t pages);

/* Put the blocks that start on page `page` back on the local free list
 * (its memory present again: supplied, or never given back). */
void slab_unpark(struct slab *s, unsigned page);

/* The owner returns a block (its cookie already set). */
static inline void slab_put_local(struct slab *s, struct free_block *b) {
  b->next = s->free;
  s->free = b;
  s->used--;
}

/* The remote word: the list's head, bit 0 set while the slab is queued on
 * its owner's pending list, and the list's length in the top 16 bits
 * (blocks are below 2^47, the region map's reach: region_map.h; a slab
 * holds at most 4096). */
#define REMOTE_COUNT_SHIFT 48
#define REMOTE_HEAD_MASK ((((uintptr_t)1 << REMOTE_COUNT_SHIFT) - 1) & ~(uintptr_t)1)

static inline struct free_block *remote_head(uintptr_t word) { return (struct free_block *)(word & REMOTE_HEAD_MASK); }
static inline uintptr_t remote_count(uintptr_t word) { return word >> REMOTE_COUNT_SHIFT; }

/* Another thread returns n blocks of s, linked from head to tail, with one
 * CAS. Returns true when this call queued the slab, its tail then the
 * list's (noted for slab_collect_remote), so the caller must push it onto
 * the owner's pending list. */
bool slab_put_remote_chain(struct slab *s, struct free_block *head, struct free_block *tail, unsigned n);

/* The owner takes the remotely freed blocks into the local list (only for a
 * slab it took from its pending list). Returns how many. The list goes in
 * front of the local one, linked by the tail the free that queued s noted,
 * not found by a walk: a long list of blocks freed long ago costs a miss a
 * block (README). It is walked only while *warm (a budget of blocks,
 * decreased) lasts, to bring the blocks into this core's cache ahead of the
 * mallocs that take them (a producer's blocks freed by its consumer:
 * heap.c). */
unsigned slab_collect_remote(struct slab *s, unsigned *warm);

#endif /* HAKMEM_SLAB_H */
