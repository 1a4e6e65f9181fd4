/* large.h: blocks above SMALL_MAX up to LARGE_MAX (or shrunk by realloc
 * from above SMALL_MAX, down to half of it: api.c), as runs of pages in
 * large SuperSlabs (page 0 is the header; 511 pages to hand out). Waste is
 * under a page per block; a run's pages are tracked as free, dirty (may
 * hold old bytes: calloc must clear them) and absent (released). */
#ifndef HAKMEM_LARGE_H
#define HAKMEM_LARGE_H

#include <stdbool.h>
#include <stddef.h>

/* Runs of up to this size go through the thread's cache of freed runs
 * first: malloc tries large_cache_alloc, which leaves errno alone, before
 * the locked ways below, which may not; free goes to large_free_cached. */
#define LARGE_CACHED_MAX ((size_t)256 << 10)

/* A run of size bytes from the thread's cache, or NULL. */
void *large_cache_alloc(size_t size);

/* Free p, a block in a large SuperSlab: into the thread's cache, else to
 * the arena (large_free). Keeps errno; aborts as large_free does. */
void large_free_cached(void *p);

/* A run for size bytes aligned to align (a power of two up to LARGE_MAX),
 * from the arena: zeroed when `zero`. NULL with errno ENOMEM. */
void *large_alloc(size_t size, size_t align, bool zero);

/* Free to the arena; aborts on a pointer that is not the start of a live
 * run. */
void large_free(void *p);

/* Usable bytes of a live run; aborts (naming op) when p is not one. */
size_t large_usable(const void *p, const char *op);

/* Grow or shrink a live run in place to hold size bytes. */
bool large_resize(void *p, size_t size);

/* For malloc_trim: empty large SuperSlabs go to the LRU, and the free
 * pages of the others back to the kernel. Returns the bytes released. */
size_t large_trim(void);

/* The calling thread's cache of freed runs back to their SuperSlabs: at
 * its exit (before it loses its heap) and on malloc_trim. */
void large_cache_flush(void);

/* Bytes of freed runs in the calling thread's cache. */
size_t large_cached_bytes_here(void);

/* For tests: whether frees may keep runs in the thread's cache (off
 * empties the caller's). */
void large_cache_test_enable(bool on);

void large_fork_prepare(void);
void large_fork_parent(void);
void large_fork_child(void);

#endif /* HAKMEM_LARGE_H */
