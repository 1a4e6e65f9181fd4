/* large.c: runs of pages in large SuperSlabs, in arenas under a lock each.
 *
 * Blocks of 32 to 1020 KiB are rarer than small ones and live longer; a
 * lock keeps this simple. The SuperSlabs are shared out among
 * LARGE_ARENAS arenas, each with its lock, bins and purge list: a thread
 * allocates from its own arena (given out in turn at its first large
 * allocation), and a free locks the arena of the block's SuperSlab. With
 * one lock for all, two threads allocating and freeing blocks of 32-200
 * KB spent half their time waiting for it: 0.16 s, against 0.07 for
 * mimalloc (README). A lock is held for the search and the bitmap update,
 * and for what is rare: mapping a SuperSlab, a purge's or a trim's
 * madvise. Clearing memory for calloc and giving a SuperSlab a free
 * emptied to the LRU happen after it is dropped, and a live block's size
 * is read without it.
 *
 * A SuperSlab with free pages sits in a bin by its longest free run
 * (max_run), four bins to a power of two. An allocation takes the first
 * SuperSlab of the first bin whose every member holds the run (TLSF's good
 * fit), then the first fit inside it, in constant time however many
 * SuperSlabs there are. One list walked first fit cost 77% of the time of
 * a program keeping 4,000 blocks of 32 KiB-1 MiB live: 24.8 s for a
 * million frees and allocations, mimalloc 1.6 s. */
#include "large.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "budget.h"
#include "diag.h"
#include "heap.h"
#include "lock.h"
#include "lru.h"
#include "options.h"
#include "os.h"
#include "region_map.h"
#include "stats.h"
#include "superslab.h"
#include "tcache.h"
#include "types.h"

#define RUN_PAGES_MAX (PAGES_PER_REGION - 1)

/* The free runs of a SuperSlab in use go back to the kernel once its
 * oldest has been free a second: one SuperSlab at most every 16 large
 * allocations and frees, since the lock is held across the madvise (up
 * to 2 MiB). A block freed and taken again within the second keeps its
 * pages, and a program that stops allocating keeps what it freed last,
 * as with the LRU (there is no background thread). HAKMEM_SS_LAZY_ZERO=0
 * keeps every page. */
#define PURGE_DELAY_NS (1000u * 1000u * 1000u)
#define PURGE_CHECK_OPS 16

#define BIN_COUNT 31 /* bin_of(RUN_PAGES_MAX) + 1 */
#define BIN_NONE 0xff
/* SuperSlabs whose longest run may fit (the bins below the sure ones),
 * tried at most before a new SuperSlab is taken. */
#define BIN_SEARCH_MAX 32

#define LARGE_ARENAS 4 /* a power of two */

struct large_arena {
  hk_lock_t lock;
  struct large_ss *bins[BIN_COUNT];
  uint32_t bins_used;                  /* bit b: bins[b] is not empty */
  unsigned with_room;                  /* SuperSlabs in the bins */
  struct large_ss *purge_oldest, *purge_newest; /* by free_since_ns */
  unsigned ops;                        /* allocations and frees since the last purge check */
  unsigned checks;                     /* purge checks made: picks the other arena to look at */
} __attribute__((aligned(64)));

static LARGE_BSS struct large_arena arenas[LARGE_ARENAS] = {
  [0 ... LARGE_ARENAS - 1] = { .lock = HK_LOCK_INIT },
};
static _Atomic unsigned arenas_given;
/* The thread's arena plus one; 0 until its first large allocation. */
static __thread uint8_t thread_arena __attribute__((tls_model("initial-exec")));

static struct large_arena *arena_of_thread(void) {
  if (unlikely(!thread_arena))
    thread_arena = (uint8_t)(atomic_fetch_add_explicit(&arenas_given, 1, memory_order_relaxed) % LARGE_ARENAS + 1);
  return &arenas[thread_arena - 1];
}

/* Set when l was taken, under that arena's lock, and kept while l is in
 * use: a free may read it before it takes the lock. */
static struct large_arena *arena_of(const struct large_ss *l) { return &arenas[l->arena & (LARGE_ARENAS - 1)]; }

/* Under the arena's lock: l has free pages that may be resident from now on. */
static void note_free_pages(struct large_ss *l) {
  if (l->free_since_ns || hakmem_options.ss_lazy_zero == OS_RELEASE_KEEP) return;
  struct large_arena *a = arena_of(l);
  l->free_since_ns = os_now_ns();
  l->purge_next = NULL;
  l->purge_prev = a->purge_newest;
  if (a->purge_newest) a->purge_newest->purge_next = l;
  else a->purge_oldest = l;
  a->purge_newest = l;
}

/* Under the arena's lock: l has no free page that may be resident. */
static void forget_free_pages(struct large_ss *l) {
  if (!l->free_since_ns) return;
  struct large_arena *a = arena_of(l);
  if (l->purge_prev) l->purge_prev->purge_next = l->purge_next;
  else a->purge_oldest = l->purge_next;
  if (l->purge_next) l->purge_next->purge_prev = l->purge_prev;
  else a->purge_newest = l->purge_prev;
  l->purge_next = l->purge_prev = NULL;
  l->free_since_ns = 0;
}

static inline bool bit_get(const uint64_t *map, unsigned i) { return (map[i / 64] >> (i % 64)) & 1; }
static inline void bit_set(uint64_t *map, unsigned i) { map[i / 64] |= (uint64_t)1 << (i % 64); }
static inline void bit_clear(uint64_t *map, unsigned i) { map[i / 64] &= ~((uint64_t)1 << (i % 64)); }

/* Runs of pages are handled a word of 64 pages at a time: a 1 MiB block
 * allocated and freed a million times, unwritten, took 0.62 s of CPU
 * page by page and takes 0.10-0.11 s so (glibc 0.019). */

/* The bits of word w that lie in [lo, hi). */
static inline uint64_t word_mask(unsigned w, unsigned lo, unsigned hi) {
  unsigned first = w * 64;
  unsigned from = lo > first ? lo - first : 0, to = hi < first + 64 ? hi - first : 64;
  uint64_t upto = to == 64 ? ~(uint64_t)0 : ((uint64_t)1 << to) - 1;
  return upto & (~(uint64_t)0 << from);
}

/* Set (on) or clear bits [lo, lo + n) of map. */
static void bits_assign(uint64_t *map, unsigned lo, unsigned n, bool on) {
  for (unsigned w = lo / 64; w * 64 < lo + n; w++) {
    uint64_t m = word_mask(w, lo, lo + n);
    map[w] = on ? map[w] | m : map[w] & ~m;
  }
}

/* How many of bits [lo, lo + n) are set in map, and in both when both is
 * given. */
static unsigned bits_count(const uint64_t *map, const uint64_t *both, unsigned lo, unsigned n) {
  unsigned count = 0;
  for (unsigned w = lo / 64; w * 64 < lo + n; w++) {
    uint64_t bits = map[w] & word_mask(w, lo, lo + n);
    if (both) bits &= both[w];
    count += (unsigned)__builtin_popcountll(bits);
  }
  return count;
}

/* A run's head mark and length are read without the lock by
 * large_usable(), realloc's first step, and by the run cache's put: a
 * live block's own mark and length change only by its own free or
 * resize, which its holder does not race with. Both sides use relaxed
 * atomics; writers still hold the lock. */
static inline bool head_get(const struct large_ss *l, unsigned i) {
  return __atomic_load_n(&l->pages[i].head, __ATOMIC_RELAXED);
}

static inline void head_set(struct large_ss *l, unsigned i, bool on) {
  __atomic_store_n(&l->pages[i].head, on, __ATOMIC_RELAXED);
}

static inline unsigned run_length(const struct large_ss *l, unsigned i) {
  return __atomic_load_n(&l->pages[i].run_pages, __ATOMIC_RELAXED);
}

static inline void run_length_set(struct large_ss *l, unsigned i, unsigned n) {
  __atomic_store_n(&l->pages[i].run_pages, (uint16_t)n, __ATOMIC_RELAXED);
}

/* Runs of 1..7 pages have a bin each; longer ones four bins to a power
 * of two. */
static unsigned bin_of(unsigned run) {
  if (run < 8) return run - 1;
  unsigned e = 31 - (unsigned)__builtin_clz(run);
  return 7 + (e - 3) * 4 + ((run >> (e - 2)) & 3);
}

/* The shortest run in bin b. */
static unsigned bin_min(unsigned b) {
  if (b < 7) return b + 1;
  return (4 + (b - 7) % 4) << ((b - 7) / 4 + 1);
}

/* The first bin all of whose members hold a run of n pages. */
static unsigned bin_sure(unsigned n) {
  unsigned b = bin_of(n);
  return bin_min(b) == n ? b : b + 1;
}

static void bin_remove(struct large_ss *l) {
  if (l->bin == BIN_NONE) return;
  struct large_arena *a = arena_of(l);
  if (l->prev) l->prev->next = l->next;
  else a->bins[l->bin] = l->next;
  if (l->next) l->next->prev = l->prev;
  if (!a->bins[l->bin]) a->bins_used &= ~((uint32_t)1 << l->bin);
  l->next = l->prev = NULL;
  l->bin = BIN_NONE;
  a->with_room--;
}

static void bin_push(struct large_ss *l, unsigned b) {
  struct large_arena *a = arena_of(l);
  l->bin = (uint8_t)b;
  l->prev = NULL;
  l->next = a->bins[b];
  if (l->next) l->next->prev = l;
  a->bins[b] = l;
  a->bins_used |= (uint32_t)1 << b;
  a->with_room++;
}

/* Under the arena's lock, after l->max_run changed: into its bin; a full one
 * has nothing to purge either. */
static void bin_refile(struct large_ss *l) {
  unsigned b = l->max_run ? bin_of(l->max_run) : BIN_NONE;
  if (b == l->bin) return;
  bin_remove(l);
  if (b != BIN_NONE) bin_push(l, b);
  else forget_free_pages(l);
}

/* Clear the bits of absent for the pages of region h that are resident;
 * without mincore, absent stays as it is. */
static void mark_resident(const struct region_header *h, uint64_t absent[PAGES_PER_REGION / 64]) {
  unsigned char vec[PAGES_PER_REGION];
  if (mincore((void *)h, REGION_SIZE, vec) != 0) return;
  for (unsigned p = 1; p < PAGES_PER_REGION; p++)
    if (vec[p] & 1) bit_clear(absent, p);
}

/* Set up the header of a region from superslab_region_acquire(), for
 * arena a. Pages resident before keep their state; released ones are
 * absent and clean, and refault (the others absent come fresh). */
static struct large_ss *large_ss_init(struct region_header *h, const struct large_arena *a) {
  struct large_ss *l = (struct large_ss *)h;
  uint64_t absent[PAGES_PER_REGION / 64], dirty[PAGES_PER_REGION / 64], released[PAGES_PER_REGION / 64] = { 0 };
  bool lazyfree = h->pages == HAKMEM_SUPPLY_LAZYFREE;
  if (h->pages == HAKMEM_SUPPLY_REUSE || lazyfree) {
    if (h->kind == REGION_LARGE) {
      memcpy(absent, l->absent_map, sizeof absent);
      memcpy(released, l->released_map, sizeof released);
      lazyfree = lazyfree || l->lazyfree;
    } else {
      const struct superslab *ss = (const struct superslab *)h;
      lazyfree = lazyfree || (h->kind == REGION_SMALL && ss->lazyfree_units);
      memset(absent, 0, sizeof absent);
      for (unsigned u = 1; h->kind == REGION_SMALL && u < UNITS_PER_SS; u++) {
        unsigned base = u * (unsigned)(UNIT_SIZE / PAGE_SIZE);
        for (unsigned p = ss->present_pages[u]; p < UNIT_SIZE / PAGE_SIZE; p++) {
          bit_set(absent, base + p);
          if (p < ss->released_pages[u]) bit_set(released, base + p);
        }
      }
    }
    /* A page supplier (the pager) moved pages into the small SuperSlab
     * ahead of the slabs it was asked for, which its counts miss: mincore()
     * sees them, and they are purged and trimmed as any resident page. */
    if (os_page_supplier()) mark_resident(h, absent);
    for (unsigned w = 0; w < PAGES_PER_REGION / 64; w++) dirty[w] = ~absent[w];
  } else {
    /* Released whole: what its last use had resident refaults. */
    h->absent_path = h->pages == HAKMEM_SUPPLY_REFAULT ? HAKMEM_SUPPLY_FRESH : h->pages;
    for (unsigned u = 1; h->pages == HAKMEM_SUPPLY_REFAULT && u < UNITS_PER_SS; u++)
      for (unsigned p = 0, touched = region_touched_pages(h, u); p < touched; p++)
        bit_set(released, u * UNIT_PAGES + p);
    memset(absent, 0xff, sizeof absent);
    memset(dirty, 0, sizeof dirty);
  }
  if (h->kind != REGION_LARGE) region_set_kind(h, REGION_LARGE);
  memset((char *)l + sizeof l->h, 0, sizeof *l - sizeof l->h);
  memcpy(l->absent_map, absent, sizeof absent);
  memcpy(l->dirty_map, dirty, sizeof dirty);
  memcpy(l->released_map, released, sizeof released);
  bit_clear(l->absent_map, 0);
  l->lazyfree = lazyfree;
  l->arena = (uint8_t)(a - arenas);
  note_free_pages(l);
  memset(l->free_map, 0xff, sizeof l->free_map);
  bit_clear(l->free_map, 0);
  l->free_pages = RUN_PAGES_MAX;
  l->max_run = RUN_PAGES_MAX;
  l->bin = BIN_NONE;
  return l;
}

/* The first page from i on whose bit in map is `set`, a word at a time;
 * PAGES_PER_REGION when there is none. */
static unsigned next_bit(const uint64_t *map, unsigned i, bool set) {
  while (i < PAGES_PER_REGION) {
    uint64_t w = set ? map[i / 64] : ~map[i / 64];
    w &= ~(uint64_t)0 << (i % 64);
    if (w) return (i & ~63u) + (unsigned)__builtin_ctzll(w);
    i = (i & ~63u) + 64;
  }
  return PAGES_PER_REGION;
}

/* The first page of the free run that ends just before page i (page 0,
 * the header, is never free). */
static unsigned run_start(const uint64_t *free_map, unsigned i) {
  unsigned w = i / 64;
  uint64_t used = ~free_map[w] & (i % 64 ? ((uint64_t)1 << (i % 64)) - 1 : 0);
  while (!used) used = ~free_map[--w];
  return w * 64 + 64 - (unsigned)__builtin_clzll(used);
}

/* The length of the free run around page i (free). */
static unsigned run_around(const struct large_ss *l, unsigned i) {
  return next_bit(l->free_map, i, false) - run_start(l->free_map, i);
}

static unsigned longest_run(const struct large_ss *l) {
  unsigned longest = 0;
  for (unsigned i = next_bit(l->free_map, 0, true); i < PAGES_PER_REGION;) {
    unsigned end = next_bit(l->free_map, i, false);
    if (end - i > longest) longest = end - i;
    i = next_bit(l->free_map, end, true);
  }
  return longest;
}

/* Under the arena's lock: pages around page i were freed. */
static void note_freed_run(struct large_ss *l, unsigned i) {
  unsigned run = run_around(l, i);
  if (run > l->max_run) l->max_run = (uint16_t)run;
  bin_refile(l);
  note_free_pages(l);
}

/* First run of n free pages starting at a multiple of ap; -1 if none.
 * Bit by bit, a fragmented SuperSlab cost gawk's string building a third
 * of its time (strings of 32..64 KiB growing side by side). */
static int find_run(const struct large_ss *l, unsigned n, unsigned ap) {
  unsigned i = ap;
  for (;;) {
    i = next_bit(l->free_map, i, true);
    i = (i + ap - 1) & ~(ap - 1);
    if (i + n > PAGES_PER_REGION) return -1;
    unsigned used = next_bit(l->free_map, i, false);
    if (used >= i + n) return (int)i;
    i = used + 1;
  }
}

/* Claim free pages [i, i+n), counting them in the ledger by the path they
 * take. Returns whether they were all clean (zero). */
static bool claim_pages(struct large_ss *l, unsigned i, unsigned n) {
  /* l's longest run is counted again only when the pages come from it. */
  bool from_longest = run_around(l, i) == l->max_run;
  bool clean = bits_count(l->dirty_map, NULL, i, n) == 0;
  /* Absent pages come by the kernel's faults, never a page supplier's
   * (superslab_region_acquire): counted here, as the run is handed out. */
  uint64_t refault = bits_count(l->absent_map, l->released_map, i, n);
  uint64_t absent = bits_count(l->absent_map, NULL, i, n) - refault;
  uint64_t resident = n - absent - refault;
  bits_assign(l->free_map, i, n, false);
  bits_assign(l->freed_map, i, n, false);
  bits_assign(l->dirty_map, i, n, true);
  bits_assign(l->absent_map, i, n, false);
  bits_assign(l->released_map, i, n, false);
  l->free_pages -= n;
  if (from_longest) {
    l->max_run = (uint16_t)longest_run(l);
    bin_refile(l);
  }
  if (absent) stats_supply((enum hakmem_supply_path)l->h.absent_path, absent, 0, 0);
  if (refault) stats_supply(HAKMEM_SUPPLY_REFAULT, refault, 0, 0);
  if (resident) stats_supply(l->lazyfree ? HAKMEM_SUPPLY_LAZYFREE : HAKMEM_SUPPLY_REUSE, resident, 0, 0);
  return clean;
}

static bool take_run(struct large_ss *l, unsigned i, unsigned n) {
  run_length_set(l, i, n);
  head_set(l, i, true);
  return claim_pages(l, i, n);
}

/* Under the arena's lock, which keeps the runs from being claimed meanwhile:
 * the resident free pages of l back to the kernel. Returns the bytes. */
static size_t release_free_pages(struct large_ss *l) {
  uint64_t resident_free[PAGES_PER_REGION / 64];
  size_t released = 0;
  for (unsigned w = 0; w < PAGES_PER_REGION / 64; w++) resident_free[w] = l->free_map[w] & ~l->absent_map[w];
  for (unsigned i = next_bit(resident_free, 0, true); i < PAGES_PER_REGION;) {
    unsigned end = next_bit(resident_free, i, false);
    if (os_release((char *)l + (size_t)i * PAGE_SIZE, (size_t)(end - i) * PAGE_SIZE, OS_RELEASE_DONTNEED) == 0) {
      for (unsigned p = i; p < end; p++) {
        bit_set(l->absent_map, p);
        bit_set(l->released_map, p);
        bit_clear(l->dirty_map, p);
      }
      released += (size_t)(end - i) * PAGE_SIZE;
    }
    i = next_bit(resident_free, end, true);
  }
  /* Pages the kernel would not release (locked: mlock, mlockall) are not
   * tried again until a run of l is freed again, rather than at every
   * purge. */
  forget_free_pages(l);
  return released;
}

/* Under a's lock: purge a's SuperSlab whose free pages waited longest, if
 * that is long enough. */
static void purge_oldest_if_due(struct large_arena *a) {
  if (a->purge_oldest && os_now_ns() - a->purge_oldest->free_since_ns >= PURGE_DELAY_NS)
    release_free_pages(a->purge_oldest);
}

/* Under a's lock, every PURGE_CHECK_OPS operations: a's purge, and one
 * other arena's in turn when its lock is free, so that the free runs of an
 * arena whose threads went quiet go back too. */
static void purge_due(struct large_arena *a) {
  purge_oldest_if_due(a);
  unsigned self = (unsigned)(a - arenas);
  struct large_arena *other = &arenas[(self + 1 + a->checks++ % (LARGE_ARENAS - 1)) % LARGE_ARENAS];
  if (!hk_trylock(&other->lock)) return;
  purge_oldest_if_due(other);
  hk_unlock(&other->lock);
}

static void purge_idle_runs(struct large_arena *a) {
  if (++a->ops < PURGE_CHECK_OPS) return;
  a->ops = 0;
  purge_due(a);
}

/* Under a's lock: a SuperSlab of a with n free pages at a multiple of ap,
 * and the first of them in *at; NULL when none has. */
static struct large_ss *find_room(struct large_arena *a, unsigned n, unsigned ap, unsigned *at) {
  unsigned sure = n + ap - 1 <= RUN_PAGES_MAX ? bin_sure(n + ap - 1) : BIN_COUNT;
  for (uint32_t bins = sure < BIN_COUNT ? a->bins_used >> sure << sure : 0; bins; bins &= bins - 1)
    for (struct large_ss *l = a->bins[__builtin_ctz(bins)]; l; l = l->next) {
      int i = find_run(l, n, ap);
      if (i >= 0) return *at = (unsigned)i, l;
    }
  /* Bins below hold runs that may fit, the longest first. */
  unsigned tries = 0;
  for (unsigned b = sure; b-- > bin_of(n);)
    for (struct large_ss *l = a->bins[b]; l && tries < BIN_SEARCH_MAX; l = l->next, tries++) {
      int i = l->max_run >= n ? find_run(l, n, ap) : -1;
      if (i >= 0) return *at = (unsigned)i, l;
    }
  return NULL;
}

/* ---- the thread's cache of freed runs ----
 *
 * A free of a run of up to CACHE_PAGES_MAX pages keeps it, whole and
 * still claimed, in a list of the thread's by its exact page count, and
 * the next malloc of as many pages (or one fewer) takes it back: no lock,
 * no bitmap search. Blocks just above powers of two up to 64 KiB,
 * malloc'd and freed at random, took 0.52 s for 10M operations under the
 * arena lock, and take 0.13 s, against 0.07 s for tcmalloc, whose thread
 * caches hold objects up to 256 KiB (README). A cached run keeps
 * its head mark, and its page's `cached` byte says it is free: a second free, a
 * realloc or a malloc_usable_size of it aborts as for any freed block.
 * The byte is stored, not set by an atomic read-modify-write: a locked
 * instruction waits for the block's cold line, and runs beside it belong
 * to other threads' caches. Bounded per list and per thread, and in all
 * by a budget threads reserve CACHE_BUDGET_STEP pages at a time; only
 * threads with a heap cache, for the heap's exit hook flushes the cache,
 * and a thread of large blocks only gets one at its 65th free
 * (heap_of_freeing_thread). calloc and alignments above a page go the
 * locked way, which knows clean pages and alignment. */
#define CACHE_PAGES_MIN (SMALL_MAX / PAGE_SIZE + 1)
#define CACHE_PAGES_MAX ((unsigned)(LARGE_CACHED_MAX / PAGE_SIZE))
/* 8,192 live blocks of 16..64,000 B replaced at random (rpmalloc's alloc
 * test), 10M operations: 0.75 s and 276 MB of peak RSS with 16 runs a list
 * and 2 MiB a thread, 0.65 s and 271 MB with 64 and 4 MiB, 0.55 s and 206
 * MB so (tcmalloc, whose thread caches hold up to 4 MiB, 0.30 s). The
 * budget of all threads is eight threads' worth: idle threads keep what
 * they cached, and four of them held all of 32 MiB, sending every other
 * thread's large blocks to the arena's lock (13 times slower). */
#define CACHE_LIST_MAX 64u
#define CACHE_THREAD_PAGES 2048u /* 8 MiB */
#define CACHE_ALL_PAGES 16384u  /* 64 MiB, all threads */
#define CACHE_BUDGET_STEP 32u /* 128 KiB: 512 threads holding one run each fit */
/* A thread reserves whole steps, and only for pages + n within its bound
 * (cache_budget): its budget never passes the bound, which a put within
 * the budget then need not test. */
_Static_assert(CACHE_THREAD_PAGES % CACHE_BUDGET_STEP == 0, "a thread's budget stays within its bound");
_Static_assert(CACHE_LIST_MAX <= UINT8_MAX, "run_cache.count is a byte");
#define CACHE_LISTS (CACHE_PAGES_MAX - CACHE_PAGES_MIN + 1)

struct run_cache {
  void *head[CACHE_LISTS]; /* runs linked through their first word */
  uint8_t count[CACHE_LISTS];
  uint32_t pages;          /* in the lists */
  uint32_t budget;         /* pages reserved from cached_budget_all */
  int32_t ops_left;        /* puts and takes until the next purge check */
};

static __thread struct run_cache run_cache __attribute__((tls_model("initial-exec")));
static _Atomic size_t cached_budget_all;
static bool cache_disabled; /* tests only */

size_t large_cached_bytes_here(void) { return (size_t)run_cache.pages * PAGE_SIZE; }

static bool cached_get(const struct large_ss *l, unsigned i) { return __atomic_load_n(&l->pages[i].cached, __ATOMIC_ACQUIRE); }

static void cached_set(struct large_ss *l, unsigned i, bool on) { __atomic_store_n(&l->pages[i].cached, on, __ATOMIC_RELEASE); }

/* Room for n more pages in the thread's share of the budget, within its
 * bound, reserved a step at a time: with an atomic add on every put and
 * take, those two instructions, each waiting for the block's cold line,
 * took 40% of the alloc test's time in a profile (README). */
static bool cache_budget(struct run_cache *c, unsigned n) {
  if (c->pages + n > CACHE_THREAD_PAGES) return false;
  if (c->pages + n <= c->budget) return true;
  uint32_t need = (c->pages + n - c->budget + CACHE_BUDGET_STEP - 1) / CACHE_BUDGET_STEP * CACHE_BUDGET_STEP;
  if (!budget_reserve(&cached_budget_all, need, CACHE_ALL_PAGES)) return false;
  c->budget += need;
  return true;
}

/* The purge runs on the locked paths, every PURGE_CHECK_OPS operations:
 * a thread whose large mallocs and frees all went through its cache would
 * keep the free runs of its SuperSlabs resident for ever (200 runs of 512
 * KiB freed beside live ones, then 100k cached mallocs and frees: 104 MB
 * stayed, against 2 MB when they went the locked way). The cache's
 * operations count too, and look when the lock is free, every
 * CACHE_PURGE_OPS: every 16, the look cost the alloc test below 8%. */
#define CACHE_PURGE_OPS 256
static void cache_purge_check(struct run_cache *c) {
  c->ops_left = CACHE_PURGE_OPS;
  int saved = errno; /* the cache's callers do not keep it (large.h) */
  struct large_arena *a = arena_of_thread();
  if (hk_trylock(&a->lock)) {
    purge_due(a);
    hk_unlock(&a->lock);
  }
  errno = saved;
}

/* What a put or take does but rarely, out of line so that theirs save
 * few registers: every CACHE_PURGE_OPS operations the purge check, and
 * when the cache shrank well below what the thread reserved, a give-back
 * of reserved steps, which it keeps a few of so that a cache going up and
 * down does not reserve and give back at every operation. With these, the
 * reservation and the heap's set-up out of line (cache_put_reserving),
 * the LRU's tick inline and free's locked way apart from its cached one
 * (api.c), a malloc and a free of a cached run went from 224 to 188
 * instructions (blocks of 32 KiB + 1 and 64 KiB + 1 malloc'd and freed at
 * random, the loop included; tcmalloc 102) and from 193M to 230M ops/s;
 * with a put that only counts down to the next look, a take that looks at
 * the reservation too, and malloc_big and large_free_cached (api.c), to
 * 148. */
static NOINLINE void cache_tidy(struct run_cache *c) {
  if (c->budget - c->pages >= 4 * CACHE_BUDGET_STEP) {
    c->budget -= 2 * CACHE_BUDGET_STEP;
    budget_release(&cached_budget_all, 2 * CACHE_BUDGET_STEP);
  }
  if (c->ops_left < 0) cache_purge_check(c);
}

/* A put only counts: the cache grew, and what the thread reserved with it
 * (cache_budget). A take may leave the reservation well above the cache. */
static inline void cache_count_put(struct run_cache *c) {
  if (unlikely(--c->ops_left < 0)) cache_tidy(c);
}

static inline void cache_count_take(struct run_cache *c) {
  if (unlikely(--c->ops_left < 0 || c->budget - c->pages >= 4 * CACHE_BUDGET_STEP)) cache_tidy(c);
}

static inline void cache_push(struct run_cache *c, struct large_ss *l, unsigned i, void *p, unsigned n) {
  unsigned k = n - CACHE_PAGES_MIN;
  cached_set(l, i, true);
  *(void **)p = c->head[k];
  c->head[k] = p;
  c->count[k]++;
  c->pages += n;
  cache_count_put(c);
}

/* cache_put's way when the thread's share of the budget is short, or it
 * has none: it has no heap yet (a thread reserves only with one, and its
 * exit gives back what it reserved before its heap goes), or the cache is
 * off (large_cache_test_enable gave the calling thread's back). */
static NOINLINE bool cache_put_reserving(struct large_ss *l, unsigned i, void *p, unsigned n) {
  struct run_cache *c = &run_cache;
  if (cache_disabled) return false;
  if (!hk_tcache.heap && !heap_of_freeing_thread()) return false;
  if (c->count[n - CACHE_PAGES_MIN] >= CACHE_LIST_MAX || !cache_budget(c, n)) return false;
  cache_push(c, l, i, p, n);
  return true;
}

/* A free of p, a run of l: true when the thread's cache took it. */
static inline bool cache_put(struct large_ss *l, void *p) {
  uintptr_t off = (uintptr_t)p - (uintptr_t)l;
  unsigned i = (unsigned)(off / PAGE_SIZE);
  if ((off & (PAGE_SIZE - 1)) || i == 0 || !head_get(l, i)) return false; /* the locked way says what it is */
  unsigned n = run_length(l, i);
  if (n < CACHE_PAGES_MIN || n > CACHE_PAGES_MAX) return false;
  /* Before the bounds: a run cached already is a double free whether
   * this one would be kept or not. */
  if (cached_get(l, i)) diag_fatal_freed("free()", p);
  struct run_cache *c = &run_cache;
  if (unlikely(c->pages + n > c->budget)) return cache_put_reserving(l, i, p, n);
  if (c->count[n - CACHE_PAGES_MIN] >= CACHE_LIST_MAX) return false;
  cache_push(c, l, i, p, n);
  return true;
}

/* A run of n pages from the thread's cache, or NULL. Runs `handed_out`
 * to the program count in its heap's ledger (heap_run_cache_pages): only
 * a thread with a heap caches runs (cache_put), and its exit flushes them
 * before its heap goes. */
static inline void *cache_take(unsigned n, bool handed_out) {
  if (n < CACHE_PAGES_MIN || n > CACHE_PAGES_MAX) return NULL;
  struct run_cache *c = &run_cache;
  unsigned k = n - CACHE_PAGES_MIN;
  void *p = c->head[k];
  if (!p) return NULL;
  struct large_ss *l = (struct large_ss *)superslab_of(p);
  cached_set(l, (unsigned)(((uintptr_t)p - (uintptr_t)l) / PAGE_SIZE), false);
  c->head[k] = *(void **)p;
  c->count[k]--;
  c->pages -= n;
  if (handed_out) { /* the owner's add; heap_run_cache_pages() reads it from any thread */
    struct heap *h = hk_tcache.heap;
    __atomic_store_n(&h->run_cache_pages, h->run_cache_pages + n, __ATOMIC_RELAXED);
  }
  cache_count_take(c);
  return p;
}

static void free_run(struct large_ss *l, void *p);

void large_cache_test_enable(bool on) {
  cache_disabled = !on;
  if (!on) large_cache_flush();
}

void large_cache_flush(void) {
  struct run_cache *c = &run_cache;
  for (unsigned k = 0; k < CACHE_LISTS; k++) {
    while (c->head[k]) {
      void *p = cache_take(k + CACHE_PAGES_MIN, false);
      free_run((struct large_ss *)superslab_of(p), p);
    }
  }
  if (c->budget) budget_release(&cached_budget_all, c->budget);
  c->budget = 0;
}

void *large_cache_alloc(size_t size) {
  unsigned n = (unsigned)((size + PAGE_SIZE - 1) / PAGE_SIZE);
  /* A run a page longer will do: waste stays under a page a block on
   * average, and random sizes find one twice as often. */
  void *p = cache_take(n, true);
  return p ? p : cache_take(n + 1, true);
}

static NOINLINE void free_run_keeping_errno(struct large_ss *l, void *p) {
  int saved = errno;
  free_run(l, p);
  errno = saved;
}

void large_free_cached(void *p) {
  struct large_ss *l = (struct large_ss *)superslab_of(p);
  if (likely(cache_put(l, p))) return;
  free_run_keeping_errno(l, p);
}

void *large_alloc(size_t size, size_t align, bool zero) {
  unsigned n = (unsigned)((size + PAGE_SIZE - 1) / PAGE_SIZE);
  unsigned ap = align > PAGE_SIZE ? (unsigned)(align / PAGE_SIZE) : 1;
  unsigned i;
  struct large_arena *a = arena_of_thread();
  hk_lock(&a->lock);
  struct large_ss *l = find_room(a, n, ap, &i);
  if (!l) {
    struct region_header *h = superslab_region_acquire(REGION_LARGE, false);
    if (!h) {
      hk_unlock(&a->lock);
      errno = ENOMEM;
      return NULL;
    }
    l = large_ss_init(h, a);
    stats_add(STAT_ss_live, 1);
    bin_refile(l);
    i = (unsigned)find_run(l, n, ap);
  }
  bool clean = take_run(l, i, n);
  purge_idle_runs(a);
  hk_unlock(&a->lock);
  stats_add(STAT_bytes_in_use, (int64_t)n * (int64_t)PAGE_SIZE);
  char *p = (char *)l + (size_t)i * PAGE_SIZE;
  if (zero && !clean) memset(p, 0, (size_t)n * PAGE_SIZE); /* all that is usable */
  return p;
}

/* Under the arena's lock: the header page index of a live run at p, or
 * abort (dropping the lock). */
static unsigned run_index(const struct large_ss *l, const void *p, const char *op) {
  uintptr_t off = (uintptr_t)p - (uintptr_t)l;
  unsigned i = (unsigned)(off / PAGE_SIZE);
  bool start = (off & (PAGE_SIZE - 1)) == 0 && i != 0;
  if (start && head_get(l, i) && !cached_get(l, i)) return i;
  bool freed = start && (bit_get(l->freed_map, i) || cached_get(l, i));
  hk_unlock(&arena_of(l)->lock);
  if (freed) diag_fatal_freed(op, p);
  diag_fatal(op, p, "not a block hakmem returned");
}

void large_free(void *p) { free_run((struct large_ss *)superslab_of(p), p); }

static void free_run(struct large_ss *l, void *p) {
  struct large_arena *a = arena_of(l);
  hk_lock(&a->lock);
  unsigned i = run_index(l, p, "free(): invalid pointer");
  unsigned n = run_length(l, i);
  head_set(l, i, false);
  bit_set(l->freed_map, i);
  bits_assign(l->free_map, i, n, true);
  l->free_pages += n;
  stats_add(STAT_bytes_in_use, -(int64_t)n * (int64_t)PAGE_SIZE);
  note_freed_run(l, i);
  /* Keep the arena's last large SuperSlab with room; give the others
   * back, after the lock: out of the bins, no other thread finds it, and
   * the LRU may release regions (madvise, munmap) on the way in. */
  bool empty = l->free_pages == RUN_PAGES_MAX && a->with_room > 1;
  if (empty) {
    bin_remove(l);
    forget_free_pages(l);
  }
  purge_idle_runs(a);
  hk_unlock(&a->lock);
  if (empty) {
    stats_add(STAT_ss_live, -1);
    lru_put(&l->h);
  }
}

size_t large_usable(const void *p, const char *op) {
  struct large_ss *l = (struct large_ss *)superslab_of(p);
  uintptr_t off = (uintptr_t)p - (uintptr_t)l;
  unsigned i = (unsigned)(off / PAGE_SIZE);
  if ((off & (PAGE_SIZE - 1)) == 0 && i != 0 && head_get(l, i) && !cached_get(l, i))
    return (size_t)run_length(l, i) * PAGE_SIZE;
  hk_lock(&arena_of(l)->lock);
  run_index(l, p, op); /* not a live run: aborts, saying which */
  hk_unlock(&arena_of(l)->lock);
  return (size_t)run_length(l, i) * PAGE_SIZE;
}

bool large_resize(void *p, size_t size) {
  struct large_ss *l = (struct large_ss *)superslab_of(p);
  unsigned want = (unsigned)((size + PAGE_SIZE - 1) / PAGE_SIZE);
  bool ok = true;
  hk_lock(&arena_of(l)->lock);
  unsigned i = run_index(l, p, "realloc(): invalid pointer");
  unsigned n = run_length(l, i);
  if (want > n) {
    unsigned q = i + n;
    while (q < i + want && q < PAGES_PER_REGION && bit_get(l->free_map, q)) q++;
    ok = q == i + want;
    if (ok) {
      claim_pages(l, i + n, want - n);
      run_length_set(l, i, want);
      stats_add(STAT_bytes_in_use, (int64_t)(want - n) * (int64_t)PAGE_SIZE);
    }
  } else if (want < n) {
    run_length_set(l, i, want);
    bits_assign(l->free_map, i + want, n - want, true);
    l->free_pages += n - want;
    note_freed_run(l, i + want);
    stats_add(STAT_bytes_in_use, -(int64_t)(n - want) * (int64_t)PAGE_SIZE);
  }
  hk_unlock(&arena_of(l)->lock);
  return ok;
}

static size_t arena_trim(struct large_arena *a) {
  size_t released = 0;
  hk_lock(&a->lock);
  for (unsigned b = 0; b < BIN_COUNT; b++)
    for (struct large_ss *l = a->bins[b], *next; l; l = next) {
      next = l->next;
      if (l->free_pages != RUN_PAGES_MAX) {
        released += release_free_pages(l);
        continue;
      }
      bin_remove(l);
      forget_free_pages(l);
      stats_add(STAT_ss_live, -1);
      lru_put(&l->h);
    }
  hk_unlock(&a->lock);
  return released;
}

size_t large_trim(void) {
  size_t released = 0;
  for (unsigned i = 0; i < LARGE_ARENAS; i++) released += arena_trim(&arenas[i]);
  return released;
}

void large_fork_prepare(void) {
  for (unsigned i = 0; i < LARGE_ARENAS; i++) hk_lock_for_fork(&arenas[i].lock);
}

void large_fork_parent(void) {
  for (unsigned i = LARGE_ARENAS; i-- > 0;) hk_unlock_after_fork(&arenas[i].lock);
}

void large_fork_child(void) {
  for (unsigned i = 0; i < LARGE_ARENAS; i++) hk_lock_reset(&arenas[i].lock);
  /* The other threads' caches stay with their heaps, never used again;
   * their reservations go, or the child could cache nothing. */
  atomic_store_explicit(&cached_budget_all, run_cache.budget, memory_order_relaxed);
}
