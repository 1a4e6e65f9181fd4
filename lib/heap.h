/* heap.h: a thread's slabs and SuperSlabs, and the slow paths of small
 * blocks: refilling and flushing the thread cache, frees from other
 * threads, thread exit, abandoned heaps, fork. */
#ifndef HAKMEM_HEAP_H
#define HAKMEM_HEAP_H

#include <stddef.h>

#include "tcache.h"
#include "types.h"

#define SPILL_BINS 8

struct heap {
  struct slab *partial[CLASS_COUNT];  /* slabs of each class with a block to give */
  struct superslab *ss_avail;         /* owned SuperSlabs with a free unit */
  _Atomic(struct slab *) pending;     /* slabs with remote frees, pushed by other threads */
  struct heap *all_next;              /* every heap, under heaps_lock */
  struct heap *abandoned_next;        /* while abandoned, under heaps_lock */
  bool abandoned;                     /* its thread has exited */
  uint64_t abandoned_ns;              /* when (coarse clock), under heaps_lock */
  int64_t bytes_in_use;               /* in small blocks out of its slabs (owner only) */
  uint64_t run_cache_pages;           /* of large runs its thread's run cache handed out again (owner only) */
  uint8_t carves[CLASS_COUNT];        /* refills of each class that took never-used blocks */
  /* While abandoned: the thread cache of the thread that exited, kept
   * whole for the next thread that adopts the heap (heap_attach), so that
   * thread churn flushes and refills no block one by one. Returned to
   * the slabs when another thread needs memory or trims. */
  struct block_list stash[CLASS_COUNT];
  bool stashed;                       /* stash holds a cache (under heaps_lock) */
  uint8_t spilled[CLASS_COUNT];       /* bins in spill[cls] */
  bool bin_scattered[CLASS_COUNT];    /* bin of blocks from many slabs, until it runs empty (heap.c) */
  size_t spill_bytes;
  size_t spill_reserved;              /* of spill_total, whole SPILL_STEPs, at least spill_bytes */
  uint64_t purge_due_ns;              /* when free units' pages are next due to go; 0: none */
  uint32_t superslabs;                /* small SuperSlabs it owns */
  /* Whole bins set aside when they overflowed, taken back whole by the
   * next refills of their class (heap.c: spill). Owner only; an abandoned
   * heap's go back to the slabs with its stash. Out of the struct: 5 KiB
   * that a program whose bins never overflow does not touch, and so no
   * page of, while the rest of the first heap shares a page with the
   * library's other small variables. */
  struct block_list (*spill)[SPILL_BINS];
};

/* The once-per-process set-up; safe to call from any allocation path. */
void heap_global_init(void);
/* At load (the library constructor): the set-up, and the options if the
 * first allocation came before the environment was there to read. */
void heap_load(void);

/* Malloc of class cls when the thread cache's bin is empty: a block of cls,
 * or a spare one of the next class up (class_may_borrow). NULL with errno
 * ENOMEM when no memory can be had. */
void *heap_alloc_slow(unsigned cls);

/* For calloc: a never-used block of class cls whose memory is known to be
 * zero (its pages were absent until now), or NULL. Hands out the carve
 * area directly, bypassing the thread cache, whose blocks hold links. */
void *heap_calloc_fresh(unsigned cls);

/* Free of a block in a small SuperSlab that did not take the fast path:
 * validates it against its slab s (small_slab_of(p); aborting on a bad
 * free), then caches, flushes or sends it to its owner. */
void heap_free_small(struct slab *s, void *p);
/* The same for a block free's fast checks passed (slab_block_in_use) but
 * the thread cache did not take: a full bin, or a thread without a heap. */
void heap_free_small_checked(struct slab *s, void *p);

/* The heap of a thread that frees: its own, or for a thread that has
 * freed more than 64 blocks without allocating a small one, a new one;
 * NULL before that, while it exits, or without memory for one. */
struct heap *heap_of_freeing_thread(void);

/* Validate a small block for realloc / malloc_usable_size; aborts with
 * `op` in the message when p is not a live block. Returns its slab. */
struct slab *heap_check_small(const void *p, const char *op);

/* Give back what this thread caches, what abandoned heaps hold, and the
 * LRU. Returns the bytes released to the kernel. */
size_t heap_trim(void);

/* Bytes in small blocks handed out (thread caches included), all heaps. */
int64_t heap_small_bytes_in_use(void);

/* Bytes of freed blocks the calling thread holds in its caches (its bins,
 * its heap's spilled bins and its run cache), which the counts of bytes
 * in use take for handed out. */
size_t heap_cached_bytes_here(void);

/* Pages of large runs that threads' run caches handed out again, all
 * heaps: the ledger's reuse row counts them at a snapshot, where a count
 * at each malloc would make every thread's large mallocs write one line. */
uint64_t heap_run_cache_pages(void);

#endif /* HAKMEM_HEAP_H */
