/* types.h: the allocator's concepts, their types and their invariants.
 *
 *  region     A 2 MiB-aligned mapping that hakmem owns. Its first bytes are
 *             a struct region_header; the region map (region_map.h) says,
 *             for every 2 MiB chunk of the address space, whether it holds
 *             one and of which kind. Kinds: a small SuperSlab, a large
 *             SuperSlab, or a huge block.
 *  SuperSlab  A 2 MiB region cut into 32 units of 64 KiB. Small SuperSlabs
 *             carve units into slabs; large ones hand out runs of pages.
 *             Unit 0 holds the header and is never handed out.
 *  slab       One 64 KiB unit holding blocks of one size class. Blocks are
 *             handed out from `carve` upwards and come back to `free`
 *             (owner thread) or `remote` (other threads).
 *  heap       A thread's allocation state: its slabs by class and its
 *             SuperSlabs. Heaps are never freed: a heap whose thread has
 *             exited is abandoned and adopted by the next new thread.
 *  tcache     The per-thread free lists in front of the heap: the hot path.
 *  huge block A block above LARGE_MAX (or realloc'd down from there) in a
 *             region of its own.
 *
 * Invariants:
 *  - the header of the region holding p is at p & ~REGION_MASK, for every
 *    p that hakmem returned;
 *  - a slab is touched by its owner heap's thread only, except its cold
 *    `remote` and `pending_next`, which other threads push to atomically,
 *    and `remote_tail`, which the free that queues it sets (slab.h);
 *  - a free block's second word holds its free cookie (diag.h), a block
 *    in use never does (malloc clears it).
 */
#ifndef HAKMEM_TYPES_H
#define HAKMEM_TYPES_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hakmem.h"

#define REGION_SHIFT 21
#define REGION_SIZE ((size_t)1 << REGION_SHIFT)
#define REGION_MASK (REGION_SIZE - 1)

#define PAGE_SHIFT 12
#define PAGE_SIZE ((size_t)1 << PAGE_SHIFT)

#define UNIT_SHIFT 16
#define UNIT_SIZE ((size_t)1 << UNIT_SHIFT)
#define UNITS_PER_SS (REGION_SIZE / UNIT_SIZE)
#define UNIT_PAGES (UNIT_SIZE / PAGE_SIZE)
#define PAGES_PER_REGION (REGION_SIZE / PAGE_SIZE)

#define SMALL_MAX ((size_t)32768)      /* largest size class */
/* The largest run of pages: two fit in a SuperSlab beside its header page
 * (1020 KiB), so that no size leaves half of one unused. */
#define LARGE_MAX ((PAGES_PER_REGION - 1) / 2 * PAGE_SIZE)
#define LARGE_ALIGN_MAX ((size_t)1 << 20) /* a run at page 256 is 1 MiB aligned */
#define CLASS_COUNT 40

#define REGION_MAGIC 0x68616b6du /* "hakm" */

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#define HIDDEN __attribute__((visibility("hidden")))
/* Large zeroed tables go after the rest of .bss (the x86-64 ".lbss",
 * zero-filled like .bss), so that the small variables every process
 * touches share a page instead of being split around the 64 MiB region
 * map: Random Mixed, eleven runs, 188-191 faults against 191-194. So do
 * the tables of a kilobyte or more that a program may never touch (large
 * arenas, the LRU's size bins, spilled bins, the pager's): with them in
 * .bss, a program of small blocks touched four pages of it instead of
 * one (tests/test_footprint.sh). Other targets give the section no such
 * meaning: there the tables stay put. */
#if defined(__x86_64__)
#define LARGE_BSS __attribute__((section(".lbss")))
#else
#define LARGE_BSS
#endif
#define EXPORT __attribute__((visibility("default")))
#define NOINLINE __attribute__((noinline))

enum region_kind {
  REGION_NONE = 0,
  REGION_SMALL = 1, /* small SuperSlab: slabs */
  REGION_LARGE = 2, /* large SuperSlab: runs of pages */
  REGION_HUGE = 3,  /* one huge block */
  /* map values above REGION_HUGE: a chunk inside a huge block's region whose
   * header is (value - REGION_HUGE) chunks below (large alignments). */
};

struct heap;

/* The prefix of every region's header. */
struct region_header {
  uint32_t magic;
  uint8_t kind;            /* enum region_kind */
  uint8_t pages;           /* state of the pages after the header: the ledger path they
                              take next (FRESH, REFAULT or LAZYFREE; REUSE: resident) */
  uint8_t in_lru;
  uint8_t chunks;          /* 2 MiB chunks with region-map entries (huge alignments) */
  uint8_t absent_path;     /* ledger path of its absent pages: FRESH or REFAULT */
  uint8_t by_faults;       /* the page supplier leaves its pages to the kernel's faults
                              (region_supply_by_faults) */
  uint8_t lru_release;     /* pending enum os_release_mode */
  size_t size;             /* bytes mapped, a multiple of the page size */
  struct region_header *all_prev, *all_next; /* every region, under regions_lock */
  struct region_header *lru_prev, *lru_next; /* while cached */
  struct region_header *pending_prev, *pending_next; /* while cached with a release pending */
  struct region_header *bin_prev, *bin_next; /* while cached: its kind's and size's list (lru.c) */
  uint64_t lru_since_ns;
};

/* A slab's record is split in two so that the free fast path reads one
 * cache line per slab, found by a shift: `struct slab` (64 bytes) holds
 * what every free and the owner's refills read; `struct slab_cold` the
 * lists and what other threads write. The whole record's 104-byte stride
 * cost free three instructions a call (callgrind, Random Mixed). */
struct slab {
  /* Read by every free: bounds and the thread cache bin. */
  char *carve;             /* first block never handed out */
  uint64_t divides;        /* ceil(2^64 / block_size): off is a multiple of the
                              block size iff off * divides < divides (Lemire) */
  int32_t bin_key;         /* the class's thread cache bin (tcache.h) */
  uint16_t block_size;     /* at most SMALL_MAX */
  uint16_t capacity;
  /* Read by slow frees and the owner's refills. */
  struct heap *owner;      /* NULL while the unit is not a slab */
  char *start;             /* first block */
  char *end;               /* end of the last whole block */
  void *free;              /* local free list (owner only) */
  uint32_t used;           /* blocks out of the slab, program or tcache (owner only) */
  uint16_t parked;         /* a bit per page a trim gave back: the blocks that start on it
                              are off the free list, and `divides` is 0 (slab.h) */
  uint8_t cls;
  uint8_t in_partial;      /* on the owner's partial list */
} __attribute__((aligned(64)));

struct slab_cold {
  /* Owner only. */
  char *zero_from;         /* never-used blocks from here on are known to be zero */
  struct slab *next, *prev;/* owner's partial list of this class */
  /* Other threads. */
  _Atomic uintptr_t remote; /* remote-freed blocks, their count and a queued bit (slab.h) */
  struct free_block *remote_tail; /* the remote list's last block, set by the free that queued s */
  struct slab *pending_next;
};

struct superslab {
  struct region_header h;
  struct heap *owner;
  struct superslab *next, *prev; /* owner's SuperSlabs */
  uint32_t free_units;     /* bitmap of units that are not slabs */
  uint32_t lazyfree_units; /* bitmap of units released by MADV_FREE */
  uint8_t released_pages[UNITS_PER_SS]; /* leading pages of each unit a trim or purge gave
                                           back: those absent refault when supplied */
  uint64_t units_free_since_ns; /* a free unit may hold resident pages since then; 0: none */
  uint8_t present_pages[UNITS_PER_SS]; /* leading pages of each unit that are resident */
  uint32_t slabs_in_use;
  struct slab slabs[UNITS_PER_SS];
  struct slab_cold cold[UNITS_PER_SS];
};

struct large_ss {
  struct region_header h;
  struct large_ss *next, *prev;             /* in its bin, while it has a free page */
  struct large_ss *purge_next, *purge_prev; /* while free_since_ns is set */
  uint32_t free_pages;
  uint16_t max_run;        /* the longest run of free pages */
  uint8_t bin;             /* the bin of max_run; BIN_NONE: none (large.c) */
  bool lazyfree;           /* the pages not absent were released by MADV_FREE */
  uint8_t arena;           /* the arena it belongs to while in use (large.c) */
  uint64_t free_since_ns;  /* free pages may be resident since then; 0: none */
  uint64_t free_map[PAGES_PER_REGION / 64];  /* page is free */
  uint64_t freed_map[PAGES_PER_REGION / 64]; /* page started a run now free: a free of it is a double free */
  uint64_t dirty_map[PAGES_PER_REGION / 64]; /* page may hold non-zero bytes */
  uint64_t absent_map[PAGES_PER_REGION / 64];/* page is not resident (released) */
  uint64_t released_map[PAGES_PER_REGION / 64];/* absent since a trim: it refaults */
  /* What a free reads of a run's first page, in one line: a free had
   * missed the cache three times on separate arrays (large.c). */
  struct large_page {
    uint16_t run_pages;    /* length of the run at a head page */
    uint8_t head;          /* the page starts a run in use */
    uint8_t cached;        /* the run at a head page is in a thread's cache (large.c) */
  } pages[PAGES_PER_REGION];
};

struct huge_header {
  struct region_header h;
  size_t offset;           /* of the user block from the region's base */
  size_t usable;           /* usable bytes from the user pointer */
  size_t slack;            /* bytes kept past twice the block's size (huge.c) */
};

_Static_assert(sizeof(struct slab) == 64, "a slab's hot record is one cache line");
_Static_assert(sizeof(struct superslab) <= PAGE_SIZE, "a SuperSlab header fits its first page");
_Static_assert(sizeof(struct large_ss) <= PAGE_SIZE, "a large SuperSlab header fits its first page");

#endif /* HAKMEM_TYPES_H */
