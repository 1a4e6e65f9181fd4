/* region_map.h: which 2 MiB chunks of the address space hold hakmem regions.
 *
 * One byte per chunk of the 47-bit user address space (64 MiB of virtual
 * memory in .lbss, of which only the pages covering hakmem's regions are ever
 * touched). free() reads it before it reads anything at p & ~REGION_MASK, so
 * a pointer hakmem never returned is reported, not followed. The list of all
 * regions serves stats, trimming and the pager's registration. */
#ifndef HAKMEM_REGION_MAP_H
#define HAKMEM_REGION_MAP_H

#include <stdint.h>

#include "types.h"

#define REGION_MAP_BITS 47
#define REGION_MAP_ENTRIES ((size_t)1 << (REGION_MAP_BITS - REGION_SHIFT))

extern _Atomic uint8_t region_map[REGION_MAP_ENTRIES] HIDDEN;

/* The kind of the region holding address a (a map value, see types.h). */
static inline unsigned region_map_kind(uintptr_t a) {
  uintptr_t i = a >> REGION_SHIFT;
  if (unlikely(i >= REGION_MAP_ENTRIES)) return REGION_NONE;
  return atomic_load_explicit(&region_map[i], memory_order_relaxed);
}

/* Whether the pages after a region's header may still be resident (kept,
 * or released by MADV_FREE and not yet reclaimed). */
static inline bool region_body_resident(const struct region_header *h) {
  return h->pages == HAKMEM_SUPPLY_REUSE || h->pages == HAKMEM_SUPPLY_LAZYFREE;
}

/* The address space left free above a huge block's region (and one that
 * moved to grow), for it to grow into in place: a grown region keeps its
 * page-table entries, where a move by mremap on the PVM guest made the
 * moved pages cost 4.2-4.9 us each at their first touch, and a move of a
 * few MiB every resident page of the process 5-6 us at its next (README).
 * As much again as the region, up to
 * REGION_GROWTH_ROOM_MAX: a realloc or a cached region taken for a bigger
 * block grows from at least half the size. */
#define REGION_GROWTH_ROOM_MAX ((size_t)128 << 20)
static inline size_t region_growth_room(size_t size) {
  return size < REGION_GROWTH_ROOM_MAX ? size : REGION_GROWTH_ROOM_MAX;
}

/* The header of the region that holds a, or NULL when there is none. */
struct region_header *region_of(const void *a);

/* At start-up, before the map's first entry is set. */
void region_map_init(void);

/* Map a new region of `size` bytes, its base 2 MiB aligned and its last
 * map chunk (chunk `chunks` - 1) aligned to `align` (REGION_SIZE or a
 * larger power of two), and publish it: its header initialised, map
 * entries for its `chunks` chunks (two for a huge block with an alignment
 * of 2 MiB or more: the block starts in the second), the page supplier
 * told. `supply_whole`: the supplier will serve all of it (a SuperSlab of
 * a heap that grows), and may make it present whole at once. NULL when
 * the kernel refuses. */
struct region_header *region_map_new(size_t size, size_t align, enum region_kind kind, unsigned chunks,
                                     bool supply_whole);
/* Withdraw a region and give it back to the kernel; under
 * HAKMEM_SS_LAZY_ZERO=3, with `recycle`, its pages go to the page
 * supplier's pool first. */
void region_unmap(struct region_header *h, bool recycle);

/* Publish or withdraw a region whose mapping stays (mremap moves). */
void region_publish(struct region_header *h);
void region_withdraw(struct region_header *h);
/* Change a region's kind (a cached SuperSlab reused as the other kind). */
void region_set_kind(struct region_header *h, enum region_kind kind);
/* Whether the page supplier serves region h's pages (it is registered
 * with it, the default) or leaves them to the kernel's faults. */
void region_supply_by_faults(struct region_header *h, bool by_faults);
/* Cut a published region to its first `size` bytes and give the rest back
 * to the kernel. Returns false (the region whole) when the kernel refuses. */
bool region_shrink(struct region_header *h, size_t size);

void region_for_each(void (*fn)(struct region_header *h, void *arg), void *arg);

void region_fork_prepare(void);
void region_fork_parent(void);
void region_fork_child(void);

#endif /* HAKMEM_REGION_MAP_H */
