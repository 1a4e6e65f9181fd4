/* superslab.h: 2 MiB regions cut into 64 KiB units, and the slabs in them.
 *
 * superslab_region_acquire() is shared by small and large SuperSlabs: a
 * region from the LRU when one is cached, else a fresh mapping. The owner of
 * any small block is found from its address: slab_of() in tcache.h. */
#ifndef HAKMEM_SUPERSLAB_H
#define HAKMEM_SUPERSLAB_H

#include "types.h"

/* A 2 MiB region for a SuperSlab of `kind`, published with that kind; its
 * h->pages tells the state of the pages after the header. A fresh mapping
 * may come wholly present when `supply_whole` (region_map_new()). NULL
 * (errno ENOMEM) when the kernel refuses. */
struct region_header *superslab_region_acquire(enum region_kind kind, bool supply_whole);

/* Unit u of a cached region released whole: the prefix of its pages that
 * its last use had resident, read from the header of the kind it had
 * (all of a huge block's). They refault; the pages past them come fresh. */
uint8_t region_touched_pages(const struct region_header *h, unsigned u);

/* Of a cached resident region's absent pages, how many a release gave
 * back (slab trims, large runs' purges): they refault, the others were
 * never touched and come fresh. */
unsigned region_released_absent_pages(const struct region_header *h);

/* A small SuperSlab owned by heap `owner`. `supply_whole`: the page
 * supplier will serve it (heap.c), and a fresh mapping may be made present
 * whole at once. */
struct superslab *superslab_new_with(struct heap *owner, bool supply_whole);

static inline struct superslab *superslab_new(struct heap *owner) { return superslab_new_with(owner, false); }

/* Carve a free unit of ss into a slab of class cls (its resident pages
 * counted in the ledger). NULL when ss has no free unit. */
struct slab *superslab_carve_slab(struct superslab *ss, unsigned cls);

/* Make the slab's pages below `upto` present before they are written. */
void superslab_supply(struct slab *s, const char *upto);
/* The end of the slab's resident pages. */
char *superslab_present_end(const struct slab *s);
/* Whether a refill from slab s (NULL: a new slab) would make a page
 * present: s has no freed block and no never-used one on its pages. */
bool slab_refill_needs_a_page(const struct slab *s);

/* Supply again pages [from, to) of slab s, which a trim gave back. */
void superslab_refault_pages(struct slab *s, unsigned from, unsigned to);

/* For malloc_trim: give back the pages of slab s (in use, its owner's
 * thread only) that hold no block in use: those past its carved blocks,
 * and those whose every block is on the free list (they are parked,
 * slab.h). Returns the bytes released. */
size_t superslab_release_slab_pages(struct slab *s);

/* Give an empty slab's unit back to its SuperSlab. Returns true when the
 * SuperSlab has no slab left. */
bool superslab_return_slab(struct superslab *ss, struct slab *s);

/* Give the resident pages of ss's free units back to the kernel
 * (MADV_DONTNEED), for malloc_trim: ss stays in use. Its owner's thread
 * only. Returns the bytes released. */
size_t superslab_release_free_units(struct superslab *ss);

/* An empty SuperSlab goes to the LRU. */
void superslab_retire(struct superslab *ss);

static inline struct superslab *superslab_of(const void *p) {
  return (struct superslab *)((uintptr_t)p & ~(uintptr_t)REGION_MASK);
}

#endif /* HAKMEM_SUPERSLAB_H */
