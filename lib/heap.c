/* heap.c: the slow paths of small blocks and the life of a thread's heap.
 *
 * Locking: a heap is touched by its own thread without locks, except its
 * `pending` list (other threads push, the owner takes all with one
 * exchange, so there is no ABA) and, while abandoned, by whoever holds
 * heaps_lock. Lock order: heaps_lock, then the large arenas' locks (in
 * order; a purge that holds one only tries another's), then the LRU,
 * then the region list. */
#include "heap.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/auxv.h>

#include "budget.h"
#include "diag.h"
#include "huge.h"
#include "large.h"
#include "lock.h"
#include "lru.h"
#include "options.h"
#include "os.h"
#include "region_map.h"
#include "slab.h"
#include "stats.h"
#include "superslab.h"

__thread struct tcache hk_tcache __attribute__((tls_model("initial-exec")));

/* Refills of a class that carve one page each before they carve more. */
#define CARVE_STEADY 8

static hk_lock_t heaps_lock = HK_LOCK_INIT;
static _Atomic(struct heap *) heaps_all;
static struct heap *heaps_abandoned;
static char *meta_next, *meta_end; /* heap structs are carved from here */
static pthread_key_t heap_key;
static bool heap_key_ok;

/* ---- the partial lists and SuperSlab lists of a heap ---- */

static void partial_push(struct heap *h, struct slab *s) {
  struct slab_cold *c = slab_cold(s);
  c->prev = NULL;
  c->next = h->partial[s->cls];
  if (c->next) slab_cold(c->next)->prev = s;
  h->partial[s->cls] = s;
  s->in_partial = 1;
}

static void partial_remove(struct heap *h, struct slab *s) {
  struct slab_cold *c = slab_cold(s);
  if (c->prev) slab_cold(c->prev)->next = c->next;
  else h->partial[s->cls] = c->next;
  if (c->next) slab_cold(c->next)->prev = c->prev;
  c->next = c->prev = NULL;
  s->in_partial = 0;
}

static void avail_push(struct heap *h, struct superslab *ss) {
  ss->prev = NULL;
  ss->next = h->ss_avail;
  if (ss->next) ss->next->prev = ss;
  h->ss_avail = ss;
}

static void avail_remove(struct heap *h, struct superslab *ss) {
  if (ss->prev) ss->prev->next = ss->next;
  else h->ss_avail = ss->next;
  if (ss->next) ss->next->prev = ss->prev;
  ss->next = ss->prev = NULL;
}

/* The pages of a SuperSlab's free units go back to the kernel once the
 * oldest has been free a second, on its owner's next refill (at most four
 * SuperSlabs a refill): a unit carved again within the second keeps its
 * pages. As with the LRU, a thread that stops allocating keeps them, and
 * HAKMEM_SS_LAZY_ZERO=0 keeps every page. */
#define UNITS_PURGE_DELAY_NS (1000u * 1000u * 1000u)
#define UNITS_PURGE_MAX_SS 4

static void heap_note_free_units(struct heap *h, struct superslab *ss) {
  if (ss->units_free_since_ns || hakmem_options.ss_lazy_zero == OS_RELEASE_KEEP) return;
  ss->units_free_since_ns = os_coarse_now_ns();
  if (!h->purge_due_ns) h->purge_due_ns = ss->units_free_since_ns + UNITS_PURGE_DELAY_NS;
}

static NOINLINE void heap_purge_free_units(struct heap *h, uint64_t now) {
  uint64_t oldest = 0;
  unsigned purged = 0;
  for (struct superslab *ss = h->ss_avail; ss; ss = ss->next) {
    uint64_t since = ss->units_free_since_ns;
    if (!since) continue;
    if (now - since >= UNITS_PURGE_DELAY_NS && purged < UNITS_PURGE_MAX_SS) {
      superslab_release_free_units(ss);
      purged++;
    } else if (!oldest || since < oldest) {
      oldest = since;
    }
  }
  h->purge_due_ns = oldest ? oldest + UNITS_PURGE_DELAY_NS : 0;
}

static inline void heap_purge_tick(struct heap *h) {
  if (unlikely(h->purge_due_ns)) {
    uint64_t now = os_coarse_now_ns();
    if (now >= h->purge_due_ns) heap_purge_free_units(h, now);
  }
}

/* An empty SuperSlab leaves the heap, unless it is the heap's only one with
 * room and `force` is off: keeping one avoids a round trip through the LRU
 * for a thread that empties and refills its last slab. */
static void heap_superslab_empty(struct heap *h, struct superslab *ss, bool force) {
  if (!force && h->ss_avail == ss && ss->next == NULL) return;
  avail_remove(h, ss);
  h->superslabs--;
  superslab_retire(ss);
}

/* An empty slab goes back to its SuperSlab unless it is the only slab of
 * its class the heap has (then it stays, as a spare, unless `force`). */
static void heap_slab_empty(struct heap *h, struct slab *s, bool force) {
  if (!force && h->partial[s->cls] == s && slab_cold(s)->next == NULL) return;
  partial_remove(h, s);
  struct superslab *ss = superslab_of(s->start);
  bool was_full = ss->free_units == 0;
  bool empty = superslab_return_slab(ss, s);
  if (was_full) avail_push(h, ss);
  if (empty) heap_superslab_empty(h, ss, force);
  else heap_note_free_units(h, ss);
}

/* A block (or blocks) came back to s: it has room again, maybe no use. */
static void heap_slab_refresh(struct heap *h, struct slab *s, bool force) {
  if (!s->in_partial) partial_push(h, s);
  if (s->used == 0) heap_slab_empty(h, s, force);
}

static void heap_release_empty(struct heap *h) {
  for (unsigned c = 0; c < CLASS_COUNT; c++) {
    for (struct slab *s = h->partial[c], *next; s; s = next) {
      next = slab_cold(s)->next;
      if (s->used == 0) heap_slab_empty(h, s, true);
    }
  }
  for (struct superslab *ss = h->ss_avail, *next; ss; ss = next) {
    next = ss->next;
    if (ss->slabs_in_use == 0) heap_superslab_empty(h, ss, true);
  }
}

/* For malloc_trim: the pages of h's free units, in SuperSlabs that still
 * hold slabs, go back to the kernel, and so do the pages of its slabs in
 * use that hold no block in use. */
static size_t heap_release_free_pages(struct heap *h) {
  size_t released = 0;
  for (struct superslab *ss = h->ss_avail; ss; ss = ss->next) released += superslab_release_free_units(ss);
  for (unsigned c = 0; c < CLASS_COUNT; c++)
    for (struct slab *s = h->partial[c]; s; s = slab_cold(s)->next) released += superslab_release_slab_pages(s);
  return released;
}

/* ---- remote frees ---- */

/* An abandoned heap's cache, and the blocks other threads free to it,
 * keep its SuperSlabs from emptying: unless a new thread adopts it, they
 * go back ABANDONED_RECLAIM_NS after its thread exited, on some thread's
 * next refill, as the LRU releases what waited there. 8 threads that
 * each filled and freed 50 MiB and exited left 227-283 MB resident while
 * main went on with small blocks, without this. 0: nothing waits. */
#define ABANDONED_RECLAIM_NS LRU_RELEASE_DELAY_NS
static _Atomic uint64_t abandoned_reclaim_due;

/* A block freed to an abandoned heap: the heap will have pending blocks to
 * collect, ABANDONED_RECLAIM_NS from now at the latest. */
static void heap_abandoned_wake(void) {
  if (!atomic_load_explicit(&abandoned_reclaim_due, memory_order_relaxed))
    atomic_store_explicit(&abandoned_reclaim_due, os_coarse_now_ns() + ABANDONED_RECLAIM_NS, memory_order_relaxed);
}

static void heap_push_pending(struct heap *h, struct slab *s) {
  struct slab *head = atomic_load_explicit(&h->pending, memory_order_relaxed);
  do {
    slab_cold(s)->pending_next = head;
  } while (!atomic_compare_exchange_weak_explicit(&h->pending, &head, s, memory_order_release,
                                                  memory_order_relaxed));
}

/* n blocks of s, another heap's, linked from head to tail: onto the
 * slab's remote list for its owner. */
static void return_remote(struct slab *s, struct free_block *head, struct free_block *tail, unsigned n) {
  struct heap *owner = s->owner;
  if (slab_put_remote_chain(s, head, tail, n)) {
    heap_push_pending(owner, s);
    if (__atomic_load_n(&owner->abandoned, __ATOMIC_RELAXED)) heap_abandoned_wake();
  }
}

/* A freed block (its cookie set) goes back to its slab: onto the local list
 * when heap h owns it, else onto the slab's remote list for its owner.
 * Returns whether it was local. */
static bool return_block(struct heap *h, struct slab *s, struct free_block *b, bool force) {
  if (s->owner == h) {
    slab_put_local(s, b);
    heap_slab_refresh(h, s, force);
    return true;
  }
  return_remote(s, b, b, 1);
  return false;
}

/* Remotely freed blocks walked into the cache per collection at most
 * (slab_collect_remote): prodcons, five runs, 47.1M ops/s (44.1M walking
 * none, 47.9M walking all); 8 threads freeing each other's 200,000
 * blocks, 1.71 s (1.66 walking none, 3.14 walking all). Measured before
 * b79862c, when a collection also walked every list it put in front of
 * blocks already free. */
#define REMOTE_WARM_BLOCKS 1024

static void heap_collect_pending(struct heap *h, bool force) {
  if (!atomic_load_explicit(&h->pending, memory_order_relaxed)) return;
  struct slab *s = atomic_exchange_explicit(&h->pending, NULL, memory_order_acquire);
  unsigned warm = REMOTE_WARM_BLOCKS;
  while (s) {
    struct slab *next = slab_cold(s)->pending_next; /* before the exchange lets s be queued again */
    unsigned n = slab_collect_remote(s, &warm);
    h->bytes_in_use -= (int64_t)n * s->block_size;
    stats_add(STAT_remote_frees, n);
    heap_slab_refresh(h, s, force);
    s = next;
  }
}

/* Return a list of cached blocks to their slabs, h's own and others'.
 * Each block counts its own slab's size (a bin may hold blocks of the next
 * class up, see borrow_from_next_class). Returns how many. */
static uint32_t return_list(struct heap *h, struct free_block *list, bool force) {
  uint32_t n = 0;
  int64_t local_bytes = 0;
  while (list) {
    struct slab *s = slab_of(list);
    if (s->owner != h) {
      /* Another heap's blocks one after the other in the list, as a
       * consumer's bin holds its producer's, go back with one CAS. */
      struct free_block *tail = list;
      unsigned k = 1;
      while (tail->next && slab_of(tail->next) == s) {
        tail = tail->next;
        k++;
      }
      struct free_block *next = tail->next;
      return_remote(s, list, tail, k);
      list = next;
      n += k;
      continue;
    }
    struct free_block *next = list->next;
    uint32_t size = s->block_size; /* s may be gone once its last block is back */
    if (return_block(h, s, list, force)) local_bytes += size;
    list = next;
    n++;
  }
  h->bytes_in_use -= local_bytes;
  return n;
}

/* Heaps abandoned with their thread's cache, under heaps_lock. Past
 * STASH_HEAPS_MAX an exiting thread's cache goes back to the slabs at
 * once: a burst of threads that ends leaves no more than a few caches
 * waiting for threads that may never come. */
#define STASH_HEAPS_MAX 8
static unsigned heaps_stashed;

static void spill_return(struct heap *h, bool force);


/* Under heaps_lock, h abandoned: its cache and spilled bins back to the
 * slabs. */
static void heap_flush_stash(struct heap *h) {
  spill_return(h, true);
  if (!h->stashed) return;
  for (unsigned c = 0; c < CLASS_COUNT; c++) {
    return_list(h, h->stash[c].head, true);
    h->stash[c] = (struct block_list){ 0 };
  }
  h->stashed = false;
  heaps_stashed--;
}

/* Under heaps_lock: what abandoned heaps hold goes back to the slabs, and
 * their empty slabs and SuperSlabs back here; with trim, their free
 * units' pages too. The stashes go before (heap_flush_stash): their
 * blocks of one abandoned heap may be another's. Returns the bytes
 * released. */
static size_t heap_return_abandoned(bool trim) {
  size_t released = 0;
  for (struct heap *a = heaps_abandoned; a; a = a->abandoned_next) {
    heap_collect_pending(a, true);
    heap_release_empty(a);
    if (trim) released += heap_release_free_pages(a);
  }
  return released;
}

/* Abandoned heaps hold blocks other threads free, and the cache their
 * thread left: all of it goes back when this thread needs a SuperSlab or
 * trims (then waiting for the lock). Returns the bytes released. */
static size_t heap_reclaim_abandoned(bool trim) {
  if (!__atomic_load_n(&heaps_abandoned, __ATOMIC_RELAXED)) return 0; /* a look without the lock */
  if (trim) hk_lock(&heaps_lock);
  else if (!hk_trylock(&heaps_lock)) return 0;
  atomic_store_explicit(&abandoned_reclaim_due, 0, memory_order_relaxed);
  for (struct heap *a = heaps_abandoned; a; a = a->abandoned_next) heap_flush_stash(a);
  size_t released = heap_return_abandoned(trim);
  hk_unlock(&heaps_lock);
  return released;
}

/* The same from a refill's tick, for the heaps abandoned
 * ABANDONED_RECLAIM_NS ago or more: those abandoned since keep their
 * caches for a thread to come (thread churn) and set the next look.
 * Returns whether a cache went back. */
static bool heap_reclaim_aged_abandoned(void) {
  if (!hk_trylock(&heaps_lock)) return false;
  uint64_t now = os_coarse_now_ns(), due = 0;
  bool flushed = false;
  for (struct heap *a = heaps_abandoned; a; a = a->abandoned_next) {
    uint64_t at = a->abandoned_ns + ABANDONED_RECLAIM_NS;
    if (now < at) {
      if (!due || at < due) due = at;
      continue;
    }
    if (a->stashed || a->spill_reserved) {
      heap_flush_stash(a);
      flushed = true;
    }
  }
  heap_return_abandoned(false);
  atomic_store_explicit(&abandoned_reclaim_due, due, memory_order_relaxed);
  hk_unlock(&heaps_lock);
  return flushed;
}

/* ---- thread caches ----
 *
 * A thread caches every small block it frees, its own heap's or another's,
 * as tcmalloc does: a cross-thread free costs what a local one does. The
 * blocks of other heaps go back to their slabs, one CAS for each run of a
 * slab's blocks, only when the bin overflows or the thread exits. */

/* Return every block of a bin to its slab. */
static void tcache_flush(struct heap *h, unsigned cls, bool force) {
  struct tcache_bin *b = &hk_tcache.bins[cls];
  struct free_block *all = b->head;
  b->head = NULL;
  b->room += return_list(h, all, force);
}

/* Return the newest n blocks of a bin to its slabs: half of a full bin,
 * and the older half stays. The walk goes down blocks freed a moment ago,
 * still in the cache; the older ones, cold once many frees came between
 * (1M blocks freed in random order), are not touched until malloc hands
 * them out. Flushing the whole bin read each cold block's link in turn:
 * 48.5 ns a free there, against 8.9 for mimalloc. */
static void tcache_flush_newest(struct heap *h, unsigned cls, uint32_t n) {
  struct tcache_bin *b = &hk_tcache.bins[cls];
  if (!n) return;
  struct free_block *first = b->head, *last = first;
  for (uint32_t i = 1; i < n; i++) last = last->next;
  b->head = last->next;
  b->room += n;
  last->next = NULL;
  return_list(h, first, false);
}

/* ---- spilled bins ----
 *
 * A bin that overflows is set aside whole, in one step, and the next
 * refills of its class take it back whole: blocks freed in bulk and
 * allocated again in bulk never go back to their slabs one by one, a walk
 * down a list of cooled blocks. Up to SPILL_BINS a class and SPILL_BYTES
 * a heap; beyond, a full bin's newest half goes back to its slabs
 * (tcache_flush_newest), or, when the bin is scattered, more (below). So
 * does a bin of
 * other threads' blocks (judged by its newest): their owners may need
 * them, and their slabs could not empty (thread churn: 24,600 against
 * 26,700 threads/s when those were set aside too). 4 MiB in up to eight
 * bins a class, tcmalloc's largest thread cache: a program that frees
 * 50,000 blocks of 1..1000 B at once and allocates them again (shbench)
 * ran 166M instructions against 192M with 1 MiB in two bins (callgrind),
 * and 0.13 s of CPU against 0.16 (nine interleaved runs, medians); others
 * (larson, xmalloc, mstress, churn, grow) within 1%, with the same RSS.
 * All heaps together set aside at most SPILL_TOTAL: a hundred threads that
 * freed in bulk and went idle must not hold 400 MiB. */
#define SPILL_BYTES ((size_t)4 << 20)
#define SPILL_TOTAL ((size_t)32 << 20)
static _Atomic size_t spill_total; /* reserved by all heaps */

/* A heap reserves its share of SPILL_TOTAL a step at a time: a locked
 * add on every spill and refill waited for the stores to the cold blocks
 * just freed, and took 14% of the alloc test's time (8,192 live blocks of
 * 16..64,000 B replaced at random) in a profile; 0.56 -> 0.53 s with the
 * give-back below (seven runs, medians, tcmalloc 0.33). A heap holds at most a step more than
 * it has set aside, and none when it has set nothing aside. */
#define SPILL_STEP ((size_t)256 << 10)
_Static_assert(SPILL_TOTAL % SPILL_STEP == 0 && SPILL_BYTES % SPILL_STEP == 0, "whole steps");

static bool spill_reserve(struct heap *h, size_t bytes) {
  size_t want = h->spill_bytes + bytes;
  if (want <= h->spill_reserved) return true;
  size_t need = (want - h->spill_reserved + SPILL_STEP - 1) / SPILL_STEP * SPILL_STEP;
  if (!budget_reserve(&spill_total, need, SPILL_TOTAL)) return false;
  h->spill_reserved += need;
  return true;
}

/* After a refill took a spilled bin: a step back once two are unused, so
 * that a heap spilling and refilling in turn does not reserve and give
 * back every time, and all of it once nothing is set aside: a thread that
 * goes idle then holds none (200 idle threads that had each spilled held
 * all of SPILL_TOTAL, and another thread's bulk frees ran 18% slower). */
static void spill_unreserve(struct heap *h) {
  if (!h->spill_bytes) {
    budget_release(&spill_total, h->spill_reserved);
    h->spill_reserved = 0;
    return;
  }
  while (h->spill_reserved - h->spill_bytes >= 2 * SPILL_STEP) {
    h->spill_reserved -= SPILL_STEP;
    budget_release(&spill_total, SPILL_STEP);
  }
}

static bool spill_bin(struct heap *h, unsigned cls) {
  struct tcache_bin *b = &hk_tcache.bins[cls];
  uint32_t count = tcache_bin_count(b);
  size_t bytes = (size_t)count * class_to_size(cls);
  if (h->spilled[cls] == SPILL_BINS || h->spill_bytes + bytes > SPILL_BYTES) return false;
  if (!b->head || slab_of(b->head)->owner != h) return false;
  if (!spill_reserve(h, bytes)) return false;
  h->spill[cls][h->spilled[cls]++] = (struct block_list){ b->head, count };
  h->spill_bytes += bytes;
  b->head = NULL;
  b->room = b->max;
  return true;
}

/* Into the empty bin of cls: its last spilled bin, if any. */
static bool unspill_bin(struct heap *h, unsigned cls) {
  if (!h->spilled[cls]) return false;
  struct block_list *s = &h->spill[cls][--h->spilled[cls]];
  struct tcache_bin *b = &hk_tcache.bins[cls];
  b->head = s->head;
  b->room = b->max - s->count;
  h->spill_bytes -= (size_t)s->count * class_to_size(cls);
  spill_unreserve(h);
  *s = (struct block_list){ 0 };
  return true;
}

/* The spilled bins of cls back to their slabs; the caller gives back
 * the reservation (spill_unreserve). */
static void spill_return_class(struct heap *h, unsigned cls, bool force) {
  while (h->spilled[cls]) {
    struct block_list *s = &h->spill[cls][--h->spilled[cls]];
    h->spill_bytes -= (size_t)s->count * class_to_size(cls);
    return_list(h, s->head, force);
    *s = (struct block_list){ 0 };
  }
}

/* Every spilled bin of h back to the slabs. */
static void spill_return(struct heap *h, bool force) {
  if (!h->spill_reserved) return; /* nothing set aside: every spilled bin has bytes */
  for (unsigned c = 0; c < CLASS_COUNT; c++) spill_return_class(h, c, force);
  spill_unreserve(h); /* nothing left: all of it */
}

/* ---- scattered bins ----
 *
 * A bin is handed out again newest first, and so is a spilled one: blocks
 * freed all over the heap (a tree torn down) would spread the program's
 * next allocations over a page each. Once a class can set aside no more
 * (its SPILL_BINS, the heap's SPILL_BYTES or all heaps' SPILL_TOTAL are
 * taken) and a full bin of its own blocks has its newest ones in several
 * slabs, its spills and most of the bin go back to their slabs, where
 * they let slabs empty, and a slab carved again hands out its blocks in
 * address order; the bin then holds at most SCATTERED_BIN_MAX until it
 * next runs empty (bin_judge_afresh). A tree of 1M nodes of 32..64 B
 * built again after it was freed had its first 8,192 nodes on 6,643
 * pages with spills kept, and has them on 426 (mimalloc 174): README has
 * the times. Judging every full bin so, while spills were to be had, sent
 * a few thousand blocks freed at random from a heap that stays in use
 * back to slabs that do not empty, and refills then took 2 blocks each
 * (50% slower). Blocks of a page and more gain nothing from their
 * neighbours and are never judged. */
#define SCATTERED_SAMPLE 8
#define SCATTERED_BIN_MAX 128u

static bool bin_newest_in_one_slab(const struct tcache_bin *b) {
  const struct free_block *blk = b->head;
  if (!blk) return true;
  const struct slab *s = slab_of(blk);
  for (unsigned i = 1; i < SCATTERED_SAMPLE && (blk = blk->next) != NULL; i++)
    if (slab_of(blk) != s) return false;
  return true;
}

/* A full scattered bin of cls: all but its oldest SCATTERED_BIN_MAX / 2
 * blocks (half, if that is fewer) go back to their slabs, and its max
 * drops to SCATTERED_BIN_MAX. Unlike a half flush, this walks blocks that
 * may have cooled, once for each run of the bin. */
static void scattered_bin_flush(struct heap *h, unsigned cls) {
  struct tcache_bin *b = &hk_tcache.bins[cls];
  uint32_t count = tcache_bin_count(b);
  uint32_t keep = count / 2 < SCATTERED_BIN_MAX / 2 ? count / 2 : SCATTERED_BIN_MAX / 2;
  tcache_flush_newest(h, cls, count - keep);
  if (b->max > SCATTERED_BIN_MAX) {
    b->room -= (int32_t)(b->max - SCATTERED_BIN_MAX);
    b->max = SCATTERED_BIN_MAX;
  }
}

/* A full bin of cls that spill_bin did not take: whether it is scattered
 * (judged now, or earlier since it last ran empty). A bin of other
 * threads' blocks is not judged: it goes back half at a time, as ever. */
static bool bin_judged_scattered(struct heap *h, unsigned cls) {
  const struct tcache_bin *b = &hk_tcache.bins[cls];
  if (!h->bin_scattered[cls] && class_to_size(cls) < PAGE_SIZE && b->head && slab_of(b->head)->owner == h &&
      !bin_newest_in_one_slab(b)) {
    h->bin_scattered[cls] = true;
    spill_return_class(h, cls, false);
    spill_unreserve(h);
  }
  return h->bin_scattered[cls];
}

static struct slab *heap_new_slab(struct heap *h, unsigned cls) {
  struct superslab *ss = h->ss_avail;
  if (!ss) {
    heap_reclaim_abandoned(false);
    /* A page supplier supplies a slab's whole unit, and more, at once: a
     * gain for a heap that grows, a cost for one that stays small (a
     * thread that writes one page of a dozen classes would hold a dozen
     * units). A heap's first SuperSlab is left to the kernel's faults,
     * which make present only what is written. */
    bool by_faults = h->superslabs == 0;
    ss = superslab_new_with(h, !by_faults);
    if (!ss) return NULL;
    region_supply_by_faults(&ss->h, by_faults);
    h->superslabs++;
    avail_push(h, ss);
    heap_note_free_units(h, ss); /* a cached one may hold resident pages */
  }
  struct slab *s = superslab_carve_slab(ss, cls);
  if (ss->free_units == 0) {
    avail_remove(h, ss);
    ss->units_free_since_ns = 0;
  }
  partial_push(h, s);
  return s;
}

/* ---- heaps ---- */

/* The first heap lives in .bss, on the page the library's other small
 * variables touch anyway: a single-threaded program maps no metadata
 * chunk and takes one page fault less. Its spilled bins go with the large
 * tables (LARGE_BSS), untouched until a bin overflows. */
static struct heap first_heap __attribute__((aligned(64)));
static LARGE_BSS struct block_list first_heap_spill[CLASS_COUNT][SPILL_BINS];
static bool first_heap_taken;

/* A heap carved from a metadata chunk, with its spilled bins. */
struct heap_meta {
  struct heap heap;
  struct block_list spill[CLASS_COUNT][SPILL_BINS];
};

/* Zeroed memory for a heap, under heaps_lock. */
static struct heap *heap_meta_carve(void) {
  if (!first_heap_taken) {
    first_heap_taken = true;
    first_heap.spill = first_heap_spill;
    return &first_heap;
  }
  os_note_threaded();
  if ((size_t)(meta_end - meta_next) < sizeof(struct heap_meta)) {
    size_t chunk = 64 * 1024;
    char *m = os_map_aligned(chunk, PAGE_SIZE);
    if (!m) return NULL;
    meta_next = m;
    meta_end = m + chunk;
  }
  struct heap_meta *m = (struct heap_meta *)meta_next;
  meta_next += (sizeof(struct heap_meta) + 63) & ~(size_t)63;
  m->heap.spill = m->spill;
  return &m->heap;
}

static struct heap *heap_meta_new(void) {
  struct heap *h = heap_meta_carve();
  if (!h) return NULL;
  h->all_next = atomic_load_explicit(&heaps_all, memory_order_relaxed);
  atomic_store_explicit(&heaps_all, h, memory_order_release);
  return h;
}

static void heap_thread_exit(void *arg);

/* Set once the thread's heap was abandoned by its key's destructor: a
 * block it allocates later comes from a heap adopted for that block only. */
static __thread bool thread_exited __attribute__((tls_model("initial-exec")));

/* The thread's heap: an exited thread's, with its cache, when `adopt`,
 * else a new one. */
static struct heap *heap_attach(bool adopt) {
  heap_global_init();
  hk_lock(&heaps_lock);
  struct heap *h = adopt ? heaps_abandoned : NULL;
  if (h) __atomic_store_n(&heaps_abandoned, h->abandoned_next, __ATOMIC_RELAXED);
  else h = heap_meta_new();
  if (h) {
    __atomic_store_n(&h->abandoned, false, __ATOMIC_RELAXED); /* return_remote() reads it */
    if (h->stashed) heaps_stashed--;
    h->stashed = false;
    /* How fast classes grew was the last thread's: a new thread carves a
     * page at a time until it grows (200 threads a wave of 100 blocks
     * each, 40 waves: 1.02 s and 131 MB of RSS against 0.59 s and 56 MB). */
    memset(h->carves, 0, sizeof h->carves);
    memset(h->bin_scattered, 0, sizeof h->bin_scattered); /* judged again at the next overflow */
  }
  hk_unlock(&heaps_lock);
  if (!h) return NULL;
  /* The cache the heap's last thread left, if any: the bins are empty
   * until now (a thread without a heap caches nothing). */
  for (unsigned c = 0; c < CLASS_COUNT; c++) {
    uint32_t max = class_cache_max(c);
    hk_tcache.bins[c] = (struct tcache_bin){ h->stash[c].head, (int32_t)(max - h->stash[c].count), (uint16_t)max, 0 };
    h->stash[c] = (struct block_list){ 0 };
  }
  hk_tcache.heap = h;
  /* May allocate (keys past the first 32): the heap is in place already. */
  if (heap_key_ok) pthread_setspecific(heap_key, h);
  return h;
}

/* The thread's cache stays with its heap (heap->stash) for the next thread
 * to adopt. churn (4 threads a wave, 1000 blocks each), seven interleaved
 * runs: 24,740 threads/s against 15,300 when it was flushed block by
 * block (tcmalloc 21,460; mimalloc 12,010 in an earlier run). */
static void heap_thread_exit(void *arg) {
  struct heap *h = arg;
  if (!h || hk_tcache.heap != h) return;
  large_cache_flush(); /* while the thread still has its heap: later frees do not cache */
  hk_lock(&heaps_lock);
  bool keep = heaps_stashed < STASH_HEAPS_MAX;
  heaps_stashed += keep;
  hk_unlock(&heaps_lock);
  h->stashed = keep;
  for (unsigned c = 0; c < CLASS_COUNT; c++) {
    struct tcache_bin *b = &hk_tcache.bins[c];
    if (keep) h->stash[c] = (struct block_list){ b->head, tcache_bin_count(b) };
    else tcache_flush(h, c, true);
  }
  if (!keep) spill_return(h, true);
  heap_collect_pending(h, true);
  heap_release_empty(h);
  hk_tcache.heap = NULL;
  memset(hk_tcache.bins, 0, sizeof hk_tcache.bins); /* later frees go the remote way */
  hk_lock(&heaps_lock);
  __atomic_store_n(&h->abandoned, true, __ATOMIC_RELAXED);
  h->abandoned_ns = os_coarse_now_ns();
  h->abandoned_next = heaps_abandoned;
  __atomic_store_n(&heaps_abandoned, h, __ATOMIC_RELAXED);
  if (!atomic_load_explicit(&abandoned_reclaim_due, memory_order_relaxed))
    atomic_store_explicit(&abandoned_reclaim_due, h->abandoned_ns + ABANDONED_RECLAIM_NS, memory_order_relaxed);
  hk_unlock(&heaps_lock);
  thread_exited = true;
}

/* On refills: what abandoned heaps hold goes back once due. When caches
 * went back, the cached regions are released at once, not on a later
 * refill that a program whose threads have gone may not make for a long
 * time: the SuperSlabs those threads emptied, before and at their exit,
 * have waited their delay already. */
static NOINLINE void heap_reclaim_abandoned_now(void) {
  if (heap_reclaim_aged_abandoned()) lru_trim(0);
}

static inline void heap_abandoned_tick(void) {
  uint64_t due = atomic_load_explicit(&abandoned_reclaim_due, memory_order_relaxed);
  if (likely(due == 0) || os_coarse_now_ns() < due) return;
  heap_reclaim_abandoned_now();
}

/* Another key's destructor allocates after the heap's own ran. glibc calls
 * destructors again only for a few rounds: a heap adopted now, its key set
 * again, might never be abandoned, and 2 MiB would leak with each thread.
 * So the heap is adopted for this one block and abandoned at once. */
static NOINLINE void *heap_alloc_after_exit(unsigned cls) {
  struct heap *h = heap_attach(true);
  if (!h) {
    errno = ENOMEM;
    return NULL;
  }
  void *p = tcache_pop(cls);
  if (!p) p = heap_alloc_slow(cls);
  heap_thread_exit(h);
  return p;
}

/* ---- fork: the child has only the forking thread ---- */

static void heap_fork_prepare(void) {
  hk_lock_for_fork(&heaps_lock);
  large_fork_prepare();
  lru_fork_prepare();
  region_fork_prepare();
}

static void heap_fork_parent(void) {
  region_fork_parent();
  lru_fork_parent();
  large_fork_parent();
  hk_unlock_after_fork(&heaps_lock);
}

static void heap_fork_child(void) {
  region_fork_child();
  lru_fork_child();
  large_fork_child();
  hk_lock_reset(&heaps_lock);
  /* Only the forking thread's heap and the abandoned ones can give their
   * spill reservations back here (below). */
  size_t reserved = hk_tcache.heap ? hk_tcache.heap->spill_reserved : 0;
  for (struct heap *a = heaps_abandoned; a; a = a->abandoned_next) reserved += a->spill_reserved;
  atomic_store_explicit(&spill_total, reserved, memory_order_relaxed);
  /* The heaps of the other threads alive at the fork are left alone: their
   * threads do not exist here, and may have been halfway through an update
   * that no lock covers (a list link, a pending list taken but not yet
   * collected), so nothing adopts, trims or collects them. Their blocks
   * stay valid to free, onto remote lists no one takes back: the child
   * does not reuse that memory, as it cannot reuse their caches. The
   * abandoned heaps were consistent: heaps_lock covers them. */
}

/* ---- the process ---- */

static _Atomic int init_state; /* 0 none, 1 running, 2 done */
static bool options_read;
static __thread bool init_running_here __attribute__((tls_model("initial-exec")));

void heap_global_init(void) {
  if (likely(atomic_load_explicit(&init_state, memory_order_acquire) == 2)) return;
  int expected = 0;
  if (!atomic_compare_exchange_strong(&init_state, &expected, 1)) {
    if (init_running_here) return; /* a call back from inside the set-up */
    while (atomic_load_explicit(&init_state, memory_order_acquire) != 2) sched_yield();
    return;
  }
  init_running_here = true;
  os_require_page_size(getauxval(AT_PAGESZ));
  diag_init();
  region_map_init();
  options_read = options_init();
  heap_key_ok = pthread_key_create(&heap_key, heap_thread_exit) == 0;
  if (!heap_key_ok) diag_write(2, "hakmem: no thread key left: exiting threads keep their heaps\n");
  pthread_atfork(heap_fork_prepare, heap_fork_parent, heap_fork_child);
  init_running_here = false;
  atomic_store_explicit(&init_state, 2, memory_order_release);
}

void heap_load(void) {
  heap_global_init();
  if (!options_read) options_read = options_init();
}

/* Spare blocks of the next class up, taken instead of a new page: a class
 * reaching a new peak of live blocks then touches no memory while its
 * neighbour holds cached blocks (Random Mixed: 52 pages instead of 62).
 * The neighbour's warmest block is returned, and more of its cached
 * blocks (up to half of them, BORROW_BATCH - 1 at most) move into this
 * class's bin, still marked free, where the next mallocs of this class
 * find them on the fast path. Borrowing one at a time sent 11% of Random
 * Mixed's mallocs down this slow path, every one after the first peak;
 * with the batch 2% (callgrind, 2M operations: 112,732 slow calls against
 * 19,385, 4% fewer instructions). Freed, a borrowed block goes to its own
 * class's bin. A class that keeps carving (CARVE_STEADY refills or more:
 * a growing heap) does not borrow: its growth would pass to the next class
 * (grow: 1080 ns/page borrowing, 1016 not; mimalloc 1012). */
#define BORROW_BATCH 8

static void *borrow_from_next_class(unsigned cls) {
  if (!class_may_borrow(cls)) return NULL;
  struct tcache_bin *from = &hk_tcache.bins[cls + 1], *to = &hk_tcache.bins[cls];
  void *p = tcache_pop(cls + 1);
  if (!p) return NULL;
  uint32_t more = tcache_bin_count(from) / 2;
  if (more > BORROW_BATCH - 1) more = BORROW_BATCH - 1;
  if (more > (uint32_t)to->room) more = (uint32_t)to->room;
  while (more--) {
    struct free_block *b = from->head;
    from->head = b->next;
    from->room++;
    b->next = to->head;
    to->head = b;
    to->room--;
  }
  return p;
}

/* The thread's heap, attached on its first slow call; NULL with *done set
 * when the call is already answered (after exit, no memory, or a block
 * the set-up freed into the cache). */
static struct heap *heap_for_slow_path(unsigned cls, void **done) {
  struct heap *h = hk_tcache.heap;
  if (likely(h != NULL)) return h;
  if (unlikely(thread_exited)) {
    *done = heap_alloc_after_exit(cls);
    return NULL;
  }
  h = heap_attach(true);
  if (!h) {
    errno = ENOMEM;
    *done = NULL;
    return NULL;
  }
  *done = tcache_pop(cls); /* set-up may have allocated and freed */
  return *done ? NULL : h;
}

/* Pages a refill may touch at once: one, until the class has carved
 * CARVE_STEADY times, then 2, 4, 8 and 16 (see heap_refill_bin). */
static unsigned refill_pages(const struct heap *h, unsigned cls) {
  unsigned step = h->carves[cls] < CARVE_STEADY ? 0 : h->carves[cls] - CARVE_STEADY + 1;
  return step >= 4 ? 16 : 1u << step;
}

/* One slab's worth per refill: its whole free list in one step (a bin
 * holds a slab's worth), or never-used blocks up to the next page
 * boundary. A class that keeps needing new blocks (a growing heap) gets
 * more pages at a time after CARVE_STEADY refills, so its pages come in
 * fewer, larger supply calls, while a class with few live blocks touches
 * one page at a time. Returns the block for the caller, the rest in the
 * bin; NULL when no slab can be had. */
static struct free_block *heap_refill_bin(struct heap *h, unsigned cls) {
  struct tcache_bin *b = &hk_tcache.bins[cls];
  unsigned want = b->max / 2, got = 0, pages = refill_pages(h, cls);
  struct free_block *head = NULL, *tail = NULL;
  while (!got) {
    struct slab *s = h->partial[cls];
    if (!s && !(s = heap_new_slab(h, cls))) return NULL;
    if (!b->head && (head = slab_take_list(s, b->max, &got))) {
      b->head = head->next;
      b->room = b->max - (got - 1);
      if (!slab_has_room(s)) partial_remove(h, s);
      break;
    }
    char *carve = s->carve;
    got = slab_take(s, want, pages, &head, &tail);
    if (s->carve != carve && h->carves[cls] < 255) h->carves[cls]++;
    if (!slab_has_room(s)) partial_remove(h, s);
  }
  h->bytes_in_use += (int64_t)got * (int64_t)class_to_size(cls);
  if (tail) {
    tail->next = b->head;
    b->head = head->next;
    b->room -= got - 1;
  }
  return head;
}

/* A thread that has not allocated gets a heap at this many frees and one
 * (heap_free_small_checked), not at its first: a thread whose first free
 * comes in the last round of key destructors, with no round left to hand
 * its heap on, would leave it behind (1,000 threads that each freed one
 * block there: 6.3 MB of RSS against 1.8). One that frees more there
 * still leaves its heap and what it caches (README). */
#define CONSUMER_FREES_BEFORE_HEAP 64u
static __thread uint32_t frees_without_heap __attribute__((tls_model("initial-exec")));

/* A consumer's bins (heap_free_small_checked) hold this many blocks until
 * a malloc of their class finds one empty: the blocks it keeps are its
 * producers', which they cannot reuse meanwhile. 16 pairs of threads in
 * prodcons: 38 MB of RSS with whole bins, 20 MB so (18 MB when each free
 * went back on its own), at the same speed. */
#define CONSUMER_BIN_MAX 32u

static void consumer_bins_shrink(void) {
  for (unsigned c = 0; c < CLASS_COUNT; c++) {
    struct tcache_bin *b = &hk_tcache.bins[c];
    if (b->max > CONSUMER_BIN_MAX && tcache_bin_count(b) <= CONSUMER_BIN_MAX) {
      b->room -= (int32_t)(b->max - CONSUMER_BIN_MAX);
      b->max = CONSUMER_BIN_MAX;
    }
  }
}

/* A bin a consumer's malloc finds empty holds what any bin does again. */
static void bin_grow_full(unsigned cls) {
  struct tcache_bin *b = &hk_tcache.bins[cls];
  uint32_t max = class_cache_max(cls);
  if (b->max < max) {
    b->room += (int32_t)(max - b->max);
    b->max = (uint16_t)max;
  }
}

/* A bin that ran empty: what it holds next is judged afresh. */
static void bin_judge_afresh(struct heap *h, unsigned cls) {
  if (!h->bin_scattered[cls]) return;
  h->bin_scattered[cls] = false;
  if (hk_tcache.bins[cls].max == SCATTERED_BIN_MAX) bin_grow_full(cls); /* a consumer's bins stay small */
}

/* A full bin of cls, before the block that found it full goes in: set
 * aside whole, or, scattered, flushed down, or its newest half back to its
 * slabs. */
static void bin_make_room(struct heap *h, unsigned cls) {
  if (!h->bin_scattered[cls] && spill_bin(h, cls)) return;
  if (bin_judged_scattered(h, cls)) scattered_bin_flush(h, cls);
  else tcache_flush_newest(h, cls, tcache_bin_count(&hk_tcache.bins[cls]) / 2);
}

void *heap_alloc_slow(unsigned cls) {
  void *done;
  struct heap *h = heap_for_slow_path(cls, &done);
  if (!h) return done;
  heap_collect_pending(h, false);
  lru_tick();
  heap_purge_tick(h);
  heap_abandoned_tick();
  hk_tcache.bins[cls].ahead = 0;
  h->bin_scattered[cls] = false; /* the bin ran empty; bin_grow_full lifts any cap */
  bin_grow_full(cls);
  if (unspill_bin(h, cls)) return tcache_pop(cls);
  if (h->carves[cls] < CARVE_STEADY && slab_refill_needs_a_page(h->partial[cls])) {
    void *p = borrow_from_next_class(cls);
    if (p) return p;
  }
  struct free_block *head = heap_refill_bin(h, cls);
  if (!head) {
    errno = ENOMEM;
    return NULL;
  }
  head->cookie = 0;
  return head;
}

void *heap_calloc_fresh(unsigned cls) {
  struct heap *h = hk_tcache.heap;
  struct slab *s = h ? h->partial[cls] : NULL;
  if (!s || s->free || s->carve + s->block_size > s->end ||
      s->carve < slab_cold(s)->zero_from)
    return NULL;
  char *b = s->carve;
  superslab_supply(s, b + s->block_size);
  s->carve += s->block_size;
  s->used++;
  h->bytes_in_use += s->block_size;
  if (!slab_has_room(s)) partial_remove(h, s);
  return b;
}

/* Whether p, a block of s, is free: its cookie is set, or it is parked. */
static bool block_is_free(const struct slab *s, const void *p) {
  return ((const struct free_block *)p)->cookie == diag_cookie(p) || (s->parked && slab_block_parked(s, p));
}

struct slab *heap_check_small(const void *p, const char *op) {
  struct slab *s = slab_of(p);
  if (unlikely(!s->owner || !slab_holds_block_slow(s, p)))
    diag_fatal(op, p, "not a block hakmem returned");
  if (unlikely(block_is_free(s, p))) diag_fatal_freed(op, p);
  return s;
}

void heap_free_small(struct slab *s, void *p) {
  if (unlikely(!s->owner || !slab_holds_block_slow(s, p)))
    diag_fatal("free(): invalid pointer", p, "not a block hakmem returned");
  if (unlikely(block_is_free(s, p))) diag_fatal("free(): double free", p, NULL);
  heap_free_small_checked(s, p);
}

/* A thread that frees before it allocates small blocks (a consumer, or a
 * thread of large blocks only) gets its heap at its 65th free. Its small
 * frees then go into its cache and back to their owners a half bin at a
 * time, where each went back on its own with a CAS on a line the owner's
 * collection takes away again (prodcons, seven interleaved runs: 46M ->
 * 98M ops/s, mimalloc 49M; 14M -> 24M in a stretch when the host made
 * moving lines between the vCPUs slow); its large ones go into its cache
 * of runs, which only a thread with a heap keeps (blocks of 32 KiB + 1
 * and 64 KiB + 1, 128 live, malloc'd and freed at random by a thread
 * that makes no small block: 10.9M -> 176M ops/s, tcmalloc 304M). */
struct heap *heap_of_freeing_thread(void) {
  struct heap *h = hk_tcache.heap;
  if (h || thread_exited || ++frees_without_heap <= CONSUMER_FREES_BEFORE_HEAP) return h;
  int saved = errno;
  /* A new heap, not an exited thread's: a consumer would never collect
   * what other threads free into that one's slabs, nor would a trim
   * (another thread's malloc_trim left 16 MB resident against 3.4). */
  h = heap_attach(false);
  errno = saved;
  if (h) consumer_bins_shrink();
  return h;
}

void heap_free_small_checked(struct slab *s, void *p) {
  struct free_block *b = p;
  b->cookie = diag_cookie(p);
  struct heap *h = heap_of_freeing_thread();
  if (!h) { /* no heap yet, exiting, or no memory for one: straight to the owner */
    return_block(NULL, s, b, false);
    return;
  }
  /* The fast path also sends here the blocks of slabs a trim parked pages
   * of (their `divides` is 0): while the bin has room they go in it. */
  if (tcache_push(s, p)) return;
  /* A full bin is set aside whole, or its newest half goes back to its
   * slabs; the next refill takes the spill, or the slab's list, back in
   * one step. Only this may reach the kernel (an emptied SuperSlab's
   * release): the caller's errno is kept here, not by every free. */
  tcache_watch_order(&hk_tcache.bins[s->cls], s, p);
  int saved = errno;
  bin_make_room(h, s->cls);
  if (!tcache_push(s, p) && return_block(h, s, b, false)) h->bytes_in_use -= (int64_t)s->block_size;
  errno = saved;
}

int64_t heap_small_bytes_in_use(void) {
  int64_t total = 0;
  for (struct heap *h = atomic_load_explicit(&heaps_all, memory_order_acquire); h; h = h->all_next)
    total += h->bytes_in_use; /* a racy read of another thread's counter is good enough here */
  return total;
}

size_t heap_cached_bytes_here(void) {
  size_t bytes = large_cached_bytes_here();
  for (unsigned c = 0; c < CLASS_COUNT; c++) bytes += (size_t)tcache_bin_count(&hk_tcache.bins[c]) * class_to_size(c);
  if (hk_tcache.heap) bytes += hk_tcache.heap->spill_bytes;
  return bytes;
}

uint64_t heap_run_cache_pages(void) {
  uint64_t total = 0;
  for (struct heap *h = atomic_load_explicit(&heaps_all, memory_order_acquire); h; h = h->all_next)
    total += __atomic_load_n(&h->run_cache_pages, __ATOMIC_RELAXED);
  return total;
}

size_t heap_trim(void) {
  struct heap *h = hk_tcache.heap;
  size_t released;
  large_cache_flush();
  if (h) {
    for (unsigned c = 0; c < CLASS_COUNT; c++) {
      tcache_flush(h, c, true);
      bin_judge_afresh(h, c);
    }
    spill_return(h, true);
  }
  /* Before this heap's collection: abandoned stashes hold its blocks too. */
  released = heap_reclaim_abandoned(true);
  if (h) {
    heap_collect_pending(h, true);
    heap_release_empty(h);
    released += heap_release_free_pages(h);
  }
  released += large_trim();
  released += lru_trim(1);
  /* Last: under HAKMEM_SS_LAZY_ZERO=3 the LRU's regions give their pages
   * to the supplier's pool. */
  const struct os_page_supplier *s = os_page_supplier();
  if (s && s->trim) released += s->trim();
  return released;
}
