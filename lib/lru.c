/* lru.c: the cache of empty regions and its lazy-zero policy.
 *
 * The list runs from the most recently cached region (head) to the least
 * (tail). Kernel calls are never made under lru_lock: entries to release or
 * unmap are unlinked into a batch first, and released ones come back at the
 * tail afterwards. */
#include "lru.h"

#include <errno.h>
#include <sys/resource.h>

#include "lock.h"
#include "options.h"
#include "os.h"
#include "region_map.h"
#include "stats.h"

static hk_lock_t lru_lock = HK_LOCK_INIT;
static struct region_header *lru_head, *lru_tail;
/* The regions whose release is pending, also from the most recently
 * cached: the release loop walks only those due, not the whole cache
 * (a program cycling through 256 cached regions spent a fifth of its time
 * walking past released ones). */
static struct region_header *pending_head, *pending_tail;
/* The cached regions by kind and size, each list from the most recently
 * cached: SuperSlabs, all of one size and shape, on one list, and huge
 * blocks' regions in bins of four a doubling from 1 MiB. A request looks
 * at the newest SuperSlab and at a few regions of the first bins that can
 * hold it, never at the whole cache, whose headers are a cache and TLB
 * miss each: a 1.2 MB malloc and free took 10 us walking 1,000 cached
 * regions of 1.1-8 MiB (0.13 us now), and 9 us for a 4 MiB one walking 1,000 released
 * SuperSlabs before they had their own list. */
#define SIZE_BINS 113 /* up to 2^48 bytes */
#define BIN_LOOKS 8   /* regions looked at in a bin */
struct region_bin {
  struct region_header *head, *tail;
};
static struct region_bin superslab_bin;
static LARGE_BSS struct region_bin size_bins[SIZE_BINS];
static size_t lru_count, lru_bytes, lru_pending, lru_superslabs;
static size_t lru_resident, lru_resident_bytes; /* cached regions with their pages */

/* HAKMEM_LRU_MAX and HAKMEM_LRU_MAX_MB bound the regions cached with their
 * pages: past them the oldest are released at once. Released regions cost
 * address space only, and up to MAPPED_FACTOR times as many stay mapped
 * until the age limit: a program whose live memory swings by more than the
 * bound (a producer running ahead of its consumer by 2 GiB of large
 * blocks) takes them again instead of unmapping and mapping SuperSlabs by
 * the thousand: 1.05 s of CPU against 0.64 s (README). */
#define MAPPED_FACTOR 4

/* Bytes of regions released by one call at most, past the bounds aside:
 * 400 MB freed at once, then released all at the first refill 100 ms
 * later, stalled that refill for milliseconds. */
#define LRU_RELEASE_BATCH_BYTES ((size_t)16 << 20)
HIDDEN _Atomic uint64_t lru_release_due;

/* A release waits LRU_RELEASE_DELAY_NS from the region's caching, and
 * longer in two cases, so that a program that frees its working set,
 * pauses and builds it again gets its regions back resident instead of
 * having them released at its first refill after the pause and faulting
 * them all in again:
 * - after a gap of more than the delay without a refill or an LRU
 *   operation (idle, or computing in memory it has), the delays restart
 *   at the first look (lru_resumed_ns), once for each region
 *   (release_time); at most once every two delays,
 *   so that a program that allocates a little now and then still gives
 *   its cache back, unless it grew again (below) since the last restart:
 *   a program that rebuilds its working set every 200 ms (regrow on a
 *   fast machine: 50 ms of work, a 150 ms pause) had a quarter of it
 *   released at every other return and faulted it in again;
 * - while the program takes regions from the cache faster than it puts
 *   them back (two more in the current delay-long window: it is growing
 *   again), releases wait a delay after the last such take
 *   (lru_growing_ns); a program that frees and takes a region in turn is
 *   not growing.
 * One that goes on running with less memory gives the rest back after
 * the delay, as before; the age limit unmaps them in any case. */
#define LRU_GROWTH_MIN 2
static _Atomic uint64_t lru_active_ns;  /* the last refill or LRU operation (either clock) */
static uint64_t lru_resumed_ns;         /* the end of the last gap granted; under lru_lock */
static uint64_t lru_resumed_before_ns;  /* the end of the one before it; under lru_lock */
static uint64_t lru_growing_ns;         /* the last take of a growing program; under lru_lock */
static uint64_t lru_window_ns;          /* the start of the takes-minus-puts window; under lru_lock */
static int lru_window_net;              /* takes minus puts in it; under lru_lock */

static void lru_note_activity(uint64_t now) {
  uint64_t last = atomic_load_explicit(&lru_active_ns, memory_order_relaxed);
  /* A CAS: a thread preempted here must not move the time back. */
  while (now > last + LRU_ACTIVITY_GRAIN_NS &&
         !atomic_compare_exchange_weak_explicit(&lru_active_ns, &last, now, memory_order_relaxed, memory_order_relaxed))
    ;
}

struct lru_batch {
  struct region_header *release; /* linked by lru_next */
  struct region_header *unmap;
  size_t bytes;
  bool to_kernel; /* unmapped regions' pages skip the supplier's pool */
};

static bool is_superslab(const struct region_header *h) { return h->kind != REGION_HUGE; }

static bool is_resident(const struct region_header *h) { return h->pages == HAKMEM_SUPPLY_REUSE; }

/* Bin 0 holds regions of 1 MiB and less (huge blocks realloc shrank in
 * place), which no new huge block fits: apart, they hide no fit. */
static unsigned size_bin(size_t size) {
  if (size <= ((size_t)1 << 20)) return 0;
  unsigned log2 = 63u - (unsigned)__builtin_clzll((unsigned long long)size);
  unsigned bin = 1 + (log2 - 20) * 4 + (unsigned)((size >> (log2 - 2)) & 3);
  return bin < SIZE_BINS ? bin : SIZE_BINS - 1;
}

/* The list of h's kind and size. */
static struct region_bin *bin_of(const struct region_header *h) {
  return is_superslab(h) ? &superslab_bin : &size_bins[size_bin(h->size)];
}

/* Unset, HAKMEM_SS_LAZY_ZERO hands the pages to the pager's pool while it
 * runs: a program that frees, waits and allocates again then gets pages
 * zeroed on the pager's CPU instead of faulting in fresh ones (README). */
enum os_release_mode lru_release_policy(void) {
  const struct os_page_supplier *s = os_page_supplier();
  bool pool = s && s->reclaim;
  if (!option_given(OPTION_SS_LAZY_ZERO)) return pool ? OS_RELEASE_PAGER : OS_RELEASE_DONTNEED;
  enum os_release_mode mode = (enum os_release_mode)hakmem_options.ss_lazy_zero;
  if (mode == OS_RELEASE_PAGER && !pool) return OS_RELEASE_DONTNEED;
  return mode;
}

static void lru_unlink(struct region_header *h) {
  if (h->lru_prev) h->lru_prev->lru_next = h->lru_next;
  else lru_head = h->lru_next;
  if (h->lru_next) h->lru_next->lru_prev = h->lru_prev;
  else lru_tail = h->lru_prev;
  lru_count--;
  lru_bytes -= h->size;
  lru_superslabs -= is_superslab(h);
  lru_resident -= is_resident(h);
  lru_resident_bytes -= is_resident(h) ? h->size : 0;
  struct region_bin *bin = bin_of(h);
  if (h->bin_prev) h->bin_prev->bin_next = h->bin_next;
  else bin->head = h->bin_next;
  if (h->bin_next) h->bin_next->bin_prev = h->bin_prev;
  else bin->tail = h->bin_prev;
  if (h->lru_release == OS_RELEASE_KEEP) return;
  if (h->pending_prev) h->pending_prev->pending_next = h->pending_next;
  else pending_head = h->pending_next;
  if (h->pending_next) h->pending_next->pending_prev = h->pending_prev;
  else pending_tail = h->pending_prev;
  lru_pending--;
}

/* Link h after `after` (NULL: at the head). */
static void lru_link(struct region_header *h, struct region_header *after) {
  h->lru_prev = after;
  h->lru_next = after ? after->lru_next : lru_head;
  if (h->lru_next) h->lru_next->lru_prev = h;
  else lru_tail = h;
  if (after) after->lru_next = h;
  else lru_head = h;
  lru_count++;
  lru_bytes += h->size;
  lru_superslabs += is_superslab(h);
  lru_resident += is_resident(h);
  lru_resident_bytes += is_resident(h) ? h->size : 0;
  /* Newest first, as the main list is; but a region whose pages were
   * released goes behind the resident ones, to be taken last. */
  struct region_bin *bin = bin_of(h);
  if (is_resident(h)) {
    h->bin_prev = NULL;
    h->bin_next = bin->head;
    if (bin->head) bin->head->bin_prev = h;
    else bin->tail = h;
    bin->head = h;
  } else {
    h->bin_next = NULL;
    h->bin_prev = bin->tail;
    if (bin->tail) bin->tail->bin_next = h;
    else bin->head = h;
    bin->tail = h;
  }
  if (h->lru_release == OS_RELEASE_KEEP) return;
  /* Only lru_put() caches a region with a release pending, at the head. */
  h->pending_prev = NULL;
  h->pending_next = pending_head;
  if (pending_head) pending_head->pending_prev = h;
  else pending_tail = h;
  pending_head = h;
  lru_pending++;
}

static uint64_t age_limit_ns(void) { return (uint64_t)hakmem_options.lru_age_ms * 1000000u; }

static bool over_resident_bounds(void) {
  return lru_resident > (size_t)hakmem_options.lru_max || lru_resident_bytes > ((size_t)hakmem_options.lru_max_mb << 20);
}

/* Under a limit on the address space (RLIMIT_AS, `ulimit -v`) the cache
 * holds at most a sixteenth of it, released regions included: they count
 * against the limit as the program's own mappings do. A Ruby program that
 * filled a 2 GiB limit with strings of 1 MB, freed them and went on had
 * its own mmap refused (jemalloc and tcmalloc the same; glibc and
 * mimalloc went on) while up to 2 GiB stayed cached. Read at the first
 * look, under lru_lock. */
static size_t mapped_bytes_max(void) {
  static size_t max;
  if (!max) {
    size_t mb = MAPPED_FACTOR * ((size_t)hakmem_options.lru_max_mb << 20);
    struct rlimit as;
    int saved = errno;
    if (getrlimit(RLIMIT_AS, &as) == 0 && as.rlim_cur != RLIM_INFINITY && as.rlim_cur / 16 < mb) mb = as.rlim_cur / 16;
    errno = saved;
    max = mb ? mb : 1; /* 0 bytes: any cached region is past the bound */
  }
  return max;
}

/* Past these the least recently cached region is unmapped: the mapped
 * bounds, the age limit, or the resident bounds when no release can
 * bring the cache under them. */
static bool over_mapped_bounds(uint64_t now) {
  if (!lru_tail) return false;
  return lru_count > MAPPED_FACTOR * (size_t)hakmem_options.lru_max || lru_bytes > mapped_bytes_max() ||
         now - lru_tail->lru_since_ns > age_limit_ns() || (!pending_tail && over_resident_bounds());
}

static uint64_t earliest(uint64_t a, uint64_t b) { return !a ? b : !b ? a : a < b ? a : b; }

/* Under lru_lock: when lru_tick() must look next, given the earliest
 * pending release (0: none). */
static void lru_set_due(uint64_t release_due) {
  uint64_t age_due = lru_tail ? lru_tail->lru_since_ns + age_limit_ns() + 1 : 0;
  atomic_store_explicit(&lru_release_due, earliest(release_due, age_due), memory_order_relaxed);
}

/* Under lru_lock: when the region's release falls due (lru_active_ns).
 * A gap defers a region's release once: one cached before the gap before
 * last was deferred by that one (or an earlier one) and is not again.
 * Before, a program that freed 500 MB of large blocks and went on with a
 * burst of work every 300 ms restarted the delays at every burst and kept
 * it all resident until the age limit; now the releases start at its
 * second burst, a batch a call. */
static uint64_t release_time(const struct region_header *h) {
  uint64_t from = h->lru_since_ns;
  if (from < lru_resumed_before_ns) from = lru_resumed_before_ns;
  else if (from < lru_resumed_ns) from = lru_resumed_ns;
  if (lru_growing_ns > from) from = lru_growing_ns;
  return from + LRU_RELEASE_DELAY_NS;
}

/* Under lru_lock: a look at the cache after a gap without activity
 * restarts the delays, unless the last gap did so lately. */
static void lru_note_look(uint64_t now) {
  uint64_t last = atomic_load_explicit(&lru_active_ns, memory_order_relaxed);
  bool grew_since = lru_growing_ns > lru_resumed_ns;
  if (last && now > last + LRU_RELEASE_DELAY_NS &&
      (now > lru_resumed_ns + 2 * (uint64_t)LRU_RELEASE_DELAY_NS || grew_since)) {
    lru_resumed_before_ns = lru_resumed_ns;
    lru_resumed_ns = now;
  }
  lru_note_activity(now);
}

/* Under lru_lock: a region taken (+1) or put back (-1). */
static void lru_note_growth(uint64_t now, int delta) {
  if (now - lru_window_ns > LRU_RELEASE_DELAY_NS) {
    lru_window_ns = now;
    lru_window_net = 0;
  }
  lru_window_net += delta;
  if (lru_window_net >= LRU_GROWTH_MIN) lru_growing_ns = now;
}

/* Under lru_lock: move what must be unmapped or released into b. */
static void lru_collect(struct lru_batch *b, uint64_t now, bool release_all, bool unmap_all) {
  while (lru_tail && (unmap_all || over_mapped_bounds(now))) {
    struct region_header *h = lru_tail;
    lru_unlink(h);
    h->lru_next = b->unmap;
    b->unmap = h;
  }
  /* Release times grow from the tail to the head, as the caching times
   * do: the first one not due is the next due. Due releases go a batch
   * at a time (the next refill takes the next batch), so that no malloc
   * or free pays for hundreds of them. */
  uint64_t due = 0;
  size_t batch = 0;
  for (struct region_header *h = pending_tail, *prev; h; h = prev) {
    prev = h->pending_prev;
    uint64_t at = release_time(h);
    bool forced = release_all || over_resident_bounds();
    if (!forced && (now < at || batch >= LRU_RELEASE_BATCH_BYTES)) {
      due = now < at ? at : now;
      break;
    }
    batch += h->size;
    lru_unlink(h);
    h->lru_next = b->release;
    b->release = h;
  }
  lru_set_due(due);
  stats_set(STAT_ss_cached, lru_superslabs);
}

/* Without the lock: the kernel calls, then the released regions go back. */
static void lru_finish(struct lru_batch *b) {
  struct region_header *released = NULL;
  /* b->release runs from the most recently cached; released, they keep
   * that order behind the regions still pending, which were all cached
   * after them: the list stays in caching order for the bounds. */
  for (struct region_header *h = b->release, *next; h; h = next) {
    next = h->lru_next;
    enum os_release_mode mode = (enum os_release_mode)h->lru_release;
    h->pages = (uint8_t)os_release_region((char *)h + PAGE_SIZE, h->size - PAGE_SIZE, mode);
    h->lru_release = OS_RELEASE_KEEP;
    if (h->pages != HAKMEM_SUPPLY_REUSE) b->bytes += h->size - PAGE_SIZE;
    h->lru_next = released;
    released = h;
  }
  for (struct region_header *h = b->unmap, *next; h; h = next) {
    next = h->lru_next;
    b->bytes += is_resident(h) ? h->size : PAGE_SIZE; /* a release counted the rest */
    h->in_lru = 0;
    if (is_superslab(h)) stats_add(STAT_ss_unmapped_total, 1);
    region_unmap(h, !b->to_kernel);
  }
  if (!released) return;
  hk_lock(&lru_lock);
  for (struct region_header *h = released, *next; h; h = next) {
    next = h->lru_next;
    lru_link(h, pending_tail);
  }
  lru_set_due(atomic_load_explicit(&lru_release_due, memory_order_relaxed)); /* older ones at the tail now */
  stats_set(STAT_ss_cached, lru_superslabs);
  hk_unlock(&lru_lock);
}

static void lru_insert(struct region_header *h, enum os_release_mode release) {
  struct lru_batch b = { 0 };
  uint64_t now = os_now_ns();
  h->in_lru = 1;
  h->lru_since_ns = now;
  h->lru_release = (uint8_t)release;
  hk_lock(&lru_lock);
  lru_note_look(now);
  lru_note_growth(now, -1);
  lru_link(h, NULL);
  lru_collect(&b, now, false, false);
  hk_unlock(&lru_lock);
  lru_finish(&b);
}

void lru_put(struct region_header *h) {
  h->pages = HAKMEM_SUPPLY_REUSE; /* until released: the region's own maps tell what is resident */
  lru_insert(h, lru_release_policy());
}

void lru_put_back(struct region_header *h) {
  lru_insert(h, is_resident(h) ? lru_release_policy() : OS_RELEASE_KEEP);
}

struct region_shape {
  size_t min, max;  /* bytes */
  unsigned chunks;  /* map chunks */
  size_t align;     /* of the last chunk */
};

static bool has_shape(const struct region_header *h, const struct region_shape *want) {
  uintptr_t last = (uintptr_t)h + ((uintptr_t)(h->chunks - 1) << REGION_SHIFT);
  return h->size >= want->min && h->size <= want->max && h->chunks == want->chunks && (last & (want->align - 1)) == 0;
}

static bool better(const struct region_header *h, const struct region_header *found, bool largest) {
  return !found || (largest ? h->size > found->size : h->size < found->size);
}

/* Under lru_lock: of the first BIN_LOOKS regions of bin b, the smallest
 * (or largest) of that shape, the most recently cached of equals. */
static struct region_header *find_in_bin(unsigned b, const struct region_shape *want, bool largest) {
  struct region_header *found = NULL;
  unsigned looks = 0;
  for (struct region_header *h = size_bins[b].head; h && looks < BIN_LOOKS; h = h->bin_next, looks++)
    if (has_shape(h, want) && better(h, found, largest)) found = h;
  return found;
}

/* A huge block's region is taken before a SuperSlab that fits when it is
 * at most this many times the request (lru.h): a 1.1 MiB block that took
 * a cached 24 MiB region kept it all as slack, and the next 24 MiB block
 * was mapped anew (20 rounds: 13,900 faults and 57 MB of peak RSS against
 * 7,700 and 32 MB). */
#define HUGE_BEFORE_SUPERSLAB_MAX 4

/* Under lru_lock: the smallest (or largest) cached region of that shape,
 * the most recently cached of equals; of huge blocks' regions, the best
 * of the first bin that has one, in size order, among those looked at. */
static struct region_header *find_shaped(const struct region_shape *want, bool largest) {
  struct region_header *found = NULL;
  if (want->min <= REGION_SIZE && REGION_SIZE <= want->max && want->chunks == 1) {
    found = superslab_bin.head; /* all of one size and shape: the newest */
    /* A SuperSlab wanted (or fitting exactly): no huge region does better. */
    if (found && REGION_SIZE == (largest ? want->max : want->min)) return found;
  }
  /* No huge block's region is cached: the bins are empty, and a process
   * that never made a huge block need not touch their page. */
  if (lru_count == lru_superslabs) return found;
  unsigned lo = size_bin(want->min), hi = size_bin(want->max);
  for (unsigned i = 0; i <= hi - lo; i++) {
    struct region_header *h = find_in_bin(largest ? hi - i : lo + i, want, largest);
    if (h) return !found || largest || h->size / HUGE_BEFORE_SUPERSLAB_MAX <= want->min ? h : found;
  }
  return found;
}

static struct region_header *lru_take_sized(const struct region_shape *want, bool largest) {
  struct lru_batch b = { 0 };
  uint64_t now = os_now_ns();
  hk_lock(&lru_lock);
  lru_note_look(now);
  struct region_header *found = find_shaped(want, largest);
  if (found) {
    lru_unlink(found);
    found->lru_release = OS_RELEASE_KEEP;
    found->in_lru = 0;
    lru_note_growth(now, +1);
  }
  if (lru_pending) lru_collect(&b, now, false, false);
  else stats_set(STAT_ss_cached, lru_superslabs);
  hk_unlock(&lru_lock);
  lru_finish(&b);
  return found;
}

struct region_header *lru_take(size_t min, size_t max) {
  return lru_take_sized(&(struct region_shape){ min, max, 1, REGION_SIZE }, false);
}

struct region_header *lru_take_largest(size_t min, size_t max) {
  return lru_take_sized(&(struct region_shape){ min, max, 1, REGION_SIZE }, true);
}

struct region_header *lru_take_aligned(size_t min, size_t max, unsigned chunks, size_t align) {
  return lru_take_sized(&(struct region_shape){ min, max, chunks, align }, false);
}

NOINLINE void lru_tick_due(uint64_t due) {
  /* Every refill passes here: the coarse clock, a release a tick late. */
  uint64_t now = os_coarse_now_ns();
  if (now < due) {
    lru_note_activity(now);
    return;
  }
  struct lru_batch b = { 0 };
  if (!hk_trylock(&lru_lock)) return;
  int saved = errno; /* large mallocs served from a thread's cache call here unkept */
  now = os_now_ns();
  lru_note_look(now);
  lru_collect(&b, now, false, false);
  hk_unlock(&lru_lock);
  lru_finish(&b);
  errno = saved;
}

size_t lru_trim(int all) {
  /* Unmapping all is malloc_trim's, or a mapping's the kernel refused:
   * a pool the pager is about to shrink, or memory the process lacks, is
   * no place for the pages. Through the pool, malloc_trim of 600 MB of
   * freed small blocks took 47-139 ms in the moves, against 22-48 ms for
   * the whole trim without the pager. */
  struct lru_batch b = { .to_kernel = all != 0 };
  hk_lock(&lru_lock);
  lru_collect(&b, os_now_ns(), true, all != 0);
  hk_unlock(&lru_lock);
  lru_finish(&b);
  return b.bytes;
}

void lru_fork_prepare(void) { hk_lock_for_fork(&lru_lock); }
void lru_fork_parent(void) { hk_unlock_after_fork(&lru_lock); }
void lru_fork_child(void) { hk_lock_reset(&lru_lock); }
