/* pool.h: the pager's pool of pages, zeroed ahead of time.
 *
 * The pool is one mapping of `nbins` bins of 2 MiB, registered with the
 * pager's uffd (UFFDIO_MOVE only moves into a range registered with the
 * same uffd, and recycled pages arrive by UFFDIO_MOVE) and MADV_DONTFORK
 * (a page shared with a child after fork could not be moved: EBUSY). A bin
 * holds its present pages packed in [lo, hi); every other page of the area
 * is absent, and the pool never touches an absent page: that would fault
 * on its own uffd and, on the pager thread, wait for itself.
 *
 * Bin life cycle (state, and the list it is on):
 *   EMPTY (empty) --refill: UFFDIO_COPY from the zero source--> CLEAN
 *   EMPTY --reclaim: UFFDIO_MOVE from a region entering the LRU--> DIRTY
 *   DIRTY (dirty) --background zeroing, non-temporal stores--> CLEAN
 *   CLEAN (clean) --take: spans from lo, moved out by the caller--> EMPTY
 *   DIRTY or CLEAN above the cap --MADV_DONTNEED, batched--> EMPTY
 * FILLING, ZEROING and TRIMMING mark a bin owned by one thread while it
 * works on the bin's pages without the lock.
 *
 * Locking: one lock (lock.h) guards the bins, the lists and the counters; it is
 * held for list updates only, never across a system call, so direct
 * supply on application threads and the pager thread share it cheaply.
 * Page contents are only touched by a bin's owner (ZEROING) and pages are
 * only moved by the holder of a span or a FILLING bin. */
#ifndef HAKMEM_PAGER_POOL_H
#define HAKMEM_PAGER_POOL_H

#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lock.h"
#include "types.h"
#include "uffd.h"

#define POOL_BIN_SIZE ((size_t)2 << 20)
#define POOL_BIN_PAGES ((uint32_t)(POOL_BIN_SIZE / PAGE_SIZE))

enum pool_bin_state {
  BIN_EMPTY,
  BIN_FILLING,
  BIN_DIRTY,
  BIN_ZEROING,
  BIN_CLEAN,
  BIN_DRAINED, /* CLEAN with lo == hi, spans still being moved out */
  BIN_TRIMMING,
};

struct pool_bin {
  uint16_t lo, hi;   /* present pages [lo, hi) */
  uint16_t inflight; /* spans taken and not yet put back */
  uint8_t state;     /* enum pool_bin_state */
  uint8_t listed;    /* on the list of its state */
  int32_t next;      /* list link: a bin index, -1 ends */
};

struct pool_list {
  int32_t head, tail;
};

/* A run of clean pages taken from one bin. */
struct pool_span {
  uintptr_t addr;
  uint32_t pages;
  uint32_t bin;
};

struct pool {
  hk_lock_t lock;
  const struct uffd *uffd;
  uintptr_t base;    /* nbins * POOL_BIN_SIZE, registered, MADV_DONTFORK */
  uintptr_t zero;    /* POOL_BIN_SIZE never written: its reads are the zero page */
  struct pool_bin *bins;
  uint32_t nbins;
  struct pool_list empty, clean, dirty;
  int32_t zeroing;   /* the bin the pager is zeroing, -1 none */
  uint32_t zero_pos; /* pages of it zeroed so far */
  int32_t filling;   /* the bin the pager is refilling, -1 none (read by any thread) */
  uint32_t fill_pos; /* pages of it filled so far */
  bool swap;         /* the system swaps: reclaim clears swap entries too */
  bool can_move;     /* UFFDIO_MOVE negotiated and allowed on the area */
  /* Counters, under the lock. */
  uint64_t clean_pages, dirty_pages;
  uint64_t cap_pages;    /* HAKMEM_PAGER_POOL_MB */
  uint64_t keep_pages;   /* clean + dirty above this go back to the kernel */
  uint64_t target_pages; /* refill keeps this many clean pages; 0 until pool_expect() */
  uint64_t misses;       /* takes that found no clean page */
  uint64_t taken;        /* pages taken */
  uint64_t taken_at_growth; /* `taken` when the target last doubled */
  uint64_t seen_misses, seen_taken, idle_ticks; /* pool_adapt()'s memory */
};

/* The lock, on an application thread: taken with every signal blocked
 * (pool.c says why), the old mask in *saved. */
void pool_lock(struct pool *p, sigset_t *saved);
void pool_unlock(struct pool *p, const sigset_t *saved);

/* Map the area for cap_bytes of pages (twice that of address space, so
 * recycling can overshoot the cap until the pager trims), register it with
 * u. 0 or -errno. */
int pool_init(struct pool *p, const struct uffd *u, size_t cap_bytes);
void pool_fini(struct pool *p);
/* In a fork child: forget the pool without touching it (the area and the
 * bins are MADV_DONTFORK: the child has neither). */
void pool_forget(struct pool *p);

/* Take up to `pages` clean pages as one span from one bin: the count taken,
 * 0 when the pool has none. Every span taken is put back exactly once;
 * `left` is the number of pages at its end that were not moved out. */
uint32_t pool_take(struct pool *p, uint32_t pages, struct pool_span *s);
void pool_put(struct pool *p, const struct pool_span *s, uint32_t left);

/* Move the present pages of [addr, addr+len) into empty bins, leaving the
 * range absent. 0, -ENOSPC (no empty bin), -EBUSY (a page is shared, e.g.
 * after fork), or another -errno; on error some pages may have moved, the
 * rest are still there: the caller releases the range its own way. */
int pool_reclaim(struct pool *p, uintptr_t addr, size_t len, uint64_t *moved_pages);

/* The pager's background work, each step bounded by max_pages so that
 * faults are served between steps. Each returns the pages it did. */
uint32_t pool_refill_step(struct pool *p, uint32_t max_pages);
uint32_t pool_zero_step(struct pool *p, uint32_t max_pages, uint64_t *ns);
/* Bins above the cap to give back: up to max of them, marked TRIMMING;
 * their [addr, len) are for MADV_DONTNEED, then pool_trimmed(). */
uint32_t pool_trim_pick(struct pool *p, uint32_t *bins, uint32_t max);
uint32_t pool_trimmed(struct pool *p, uint32_t bin); /* the pages it held */
/* The kernel kept the bin's pages (locked): it goes back, to be zeroed. */
void pool_trim_refused(struct pool *p, uint32_t bin);
/* A move from the pool failed with EINVAL: the pool's area is unlocked. */
void pool_moves_refused(struct pool *p);
uintptr_t pool_bin_addr(const struct pool *p, uint32_t bin);

/* malloc_trim, on an application thread: the refill target and what the
 * pool keeps fall back to one bin, and the bins above that go back to the
 * kernel now. Returns the pages it gave back; *waited (if not NULL) gets
 * those of the bins the pager thread was giving back when it came, which
 * it waits for (up to 200 ms). */
uint64_t pool_shrink(struct pool *p, uint64_t *waited);

/* The first supply: the pool, empty until then, keeps a bin ready from
 * now on (true: it did not before). A process whose threads stay in
 * their first SuperSlabs, left to the kernel's faults, never fills it. */
bool pool_expect(struct pool *p);

/* Called on the pager's timer: the refill target doubles (up to the cap)
 * after takes found the pool empty (pool_grow_on_miss), and after
 * `idle_limit` ticks without a
 * take the pool shrinks back to one bin, trimming the rest. */
void pool_adapt(struct pool *p, uint64_t idle_limit);

/* clean + dirty pages now. */
uint64_t pool_level(struct pool *p);
bool pool_wants_refill(struct pool *p);
/* Called by the pager thread each turn: after a take found the pool dry,
 * double the refill target at once (up to the cap), if the program has
 * taken a whole target's worth since the last doubling: the pool never
 * holds much more than twice what the program has used. */
void pool_grow_on_miss(struct pool *p);
bool pool_has_dirty(struct pool *p);
bool pool_over_cap(struct pool *p);

/* The zeroing routine: non-temporal stores where the CPU has them. */
void pool_zero(void *dst, size_t len);

#endif /* HAKMEM_PAGER_POOL_H */
