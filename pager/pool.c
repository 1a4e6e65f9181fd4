/* pool.c: the bins of pre-zeroed pages: taking spans, recycling regions
 * into bins, refilling, zeroing and trimming (the life cycle is in pool.h).
 *
 * Everything that moves or writes pages runs without the lock, on a bin or
 * span its caller owns; the lock only guards the bookkeeping. The munmaps
 * of the pool's own mappings (at its end, or when its start fails) are not
 * checked: unmapping whole mappings of its own does not fail, and were one
 * refused, its range would only be leaked, used by nothing. */
#include "config.h"

#include "pool.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sysinfo.h>
#include <time.h>

#include "pagemap.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#ifndef MADV_DONTFORK
#define MADV_DONTFORK 10
#endif

#define MINCORE_WINDOW 512 /* pages per mincore() call: a stack vector */

static uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* ---- the lock on application threads ------------------------------------ */

/* Application threads hold the lock with every signal blocked. A handler
 * that ran while this thread held it and touched a page not supplied yet
 * (a SIGALRM handler writing into a fresh malloc'd buffer) would wait for
 * the pager thread, which may be waiting for the lock: the process hung.
 * The pager thread runs with every signal blocked already. */
void pool_lock(struct pool *p, sigset_t *saved) {
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, saved);
  hk_lock(&p->lock);
}

void pool_unlock(struct pool *p, const sigset_t *saved) {
  hk_unlock(&p->lock);
  pthread_sigmask(SIG_SETMASK, saved, NULL);
}

/* ---- zeroing ---------------------------------------------------------- */

/* Non-temporal stores bypass the cache: the pages are not read again by
 * this thread, and here they zero a page in 160-300 ns against 340-460 ns
 * for memset (measured on the development machine). The fence orders them before the UFFDIO_MOVE that
 * hands the pages out. */
#if defined(__x86_64__)
__attribute__((target("avx2"))) static void zero_avx2(char *p, size_t len) {
  const __m256i z = _mm256_setzero_si256();
  for (char *end = p + len; p < end; p += 128) {
    _mm256_stream_si256((__m256i *)p, z);
    _mm256_stream_si256((__m256i *)(p + 32), z);
    _mm256_stream_si256((__m256i *)(p + 64), z);
    _mm256_stream_si256((__m256i *)(p + 96), z);
  }
  _mm_sfence();
}

static void zero_sse2(char *p, size_t len) {
  const __m128i z = _mm_setzero_si128();
  for (char *end = p + len; p < end; p += 64) {
    _mm_stream_si128((__m128i *)p, z);
    _mm_stream_si128((__m128i *)(p + 16), z);
    _mm_stream_si128((__m128i *)(p + 32), z);
    _mm_stream_si128((__m128i *)(p + 48), z);
  }
  _mm_sfence();
}

void pool_zero(void *dst, size_t len) {
  static int avx2 = -1; /* racy first use is harmless: same answer */
  if (avx2 < 0) {
    __builtin_cpu_init();
    avx2 = __builtin_cpu_supports("avx2") ? 1 : 0;
  }
  if (avx2) zero_avx2(dst, len);
  else zero_sse2(dst, len);
}
#else
void pool_zero(void *dst, size_t len) {
  memset(dst, 0, len);
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
}
#endif

/* ---- lists (under the lock) --------------------------------------------- */

static void list_push_tail(struct pool *p, struct pool_list *l, uint32_t i) {
  p->bins[i].next = -1;
  p->bins[i].listed = 1;
  if (l->tail >= 0) p->bins[l->tail].next = (int32_t)i;
  else l->head = (int32_t)i;
  l->tail = (int32_t)i;
}

static void list_push_head(struct pool *p, struct pool_list *l, uint32_t i) {
  p->bins[i].listed = 1;
  p->bins[i].next = l->head;
  l->head = (int32_t)i;
  if (l->tail < 0) l->tail = (int32_t)i;
}

static int32_t list_pop(struct pool *p, struct pool_list *l) {
  int32_t i = l->head;
  if (i < 0) return -1;
  l->head = p->bins[i].next;
  if (l->head < 0) l->tail = -1;
  p->bins[i].next = -1;
  p->bins[i].listed = 0;
  return i;
}

static void bin_set_empty(struct pool *p, uint32_t i) {
  p->bins[i].lo = p->bins[i].hi = 0;
  p->bins[i].state = BIN_EMPTY;
  list_push_tail(p, &p->empty, i);
}

uintptr_t pool_bin_addr(const struct pool *p, uint32_t bin) {
  return p->base + (uintptr_t)bin * POOL_BIN_SIZE;
}

static uintptr_t page_addr(const struct pool *p, uint32_t bin, uint32_t page) {
  return pool_bin_addr(p, bin) + (uintptr_t)page * PAGE_SIZE;
}

/* MADV_DONTNEED of pages the pool owns; false when the kernel refuses
 * (locked pages give EINVAL). */
static bool drop_pages(uintptr_t addr, uint32_t pages) {
  return madvise((void *)addr, (size_t)pages * PAGE_SIZE, MADV_DONTNEED) == 0;
}

/* ---- set-up --------------------------------------------------------------- */

static void *map_private(size_t len, int prot) {
  void *a = mmap(NULL, len, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (a == MAP_FAILED) return NULL;
  /* Not inherited by fork: a pool page shared with a child could not be
   * moved (EBUSY), and the child has no pager to serve it. Without it
   * there is no pool. */
  if (madvise(a, len, MADV_DONTFORK) != 0) {
    munmap(a, len);
    return NULL;
  }
  return a;
}

/* The bin area (registered with the uffd), the bins' records and a page
 * of zeroes to copy from; all or nothing. */
static int pool_map(struct pool *p, size_t area_len, size_t meta_len) {
  uint64_t ioctls;
  void *area, *meta, *zero;
  int err = -ENOMEM;

  area = map_private(area_len, PROT_READ | PROT_WRITE);
  if (!area) goto out;
#ifdef MADV_NOHUGEPAGE
  /* Bins move 4 KiB pages. A kernel without THP refuses (EINVAL): then
   * there are no huge pages to avoid. */
  (void)madvise(area, area_len, MADV_NOHUGEPAGE);
#endif
  meta = map_private(meta_len, PROT_READ | PROT_WRITE);
  if (!meta) goto out_area;
  zero = map_private(POOL_BIN_SIZE, PROT_READ);
  if (!zero) goto out_meta;
  err = uffd_register(p->uffd, (uintptr_t)area, area_len, &ioctls);
  if (err) goto out_zero;
  p->can_move = (p->uffd->features & UFFD_FEATURE_MOVE) && (ioctls & ((uint64_t)1 << _UFFDIO_MOVE));
  p->base = (uintptr_t)area;
  p->bins = meta;
  p->zero = (uintptr_t)zero;
  return 0;

out_zero:
  munmap(zero, POOL_BIN_SIZE);
out_meta:
  munmap(meta, meta_len);
out_area:
  munmap(area, area_len);
out:
  return err;
}

int pool_init(struct pool *p, const struct uffd *u, size_t cap_bytes) {
  size_t cap_bins = (cap_bytes + POOL_BIN_SIZE - 1) / POOL_BIN_SIZE;
  struct sysinfo si;

  memset(p, 0, sizeof *p);
  p->uffd = u;
  p->zeroing = -1;
  p->filling = -1;
  if (cap_bins < 2) cap_bins = 2;
  p->nbins = (uint32_t)(2 * cap_bins);
  size_t area_len = (size_t)p->nbins * POOL_BIN_SIZE;
  size_t meta_len = ((size_t)p->nbins * sizeof(struct pool_bin) + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
  int err = pool_map(p, area_len, meta_len);
  if (err) return err;
  p->empty.head = p->empty.tail = -1;
  p->clean.head = p->clean.tail = -1;
  p->dirty.head = p->dirty.tail = -1;
  for (uint32_t i = 0; i < p->nbins; i++) bin_set_empty(p, i);
  p->cap_pages = (uint64_t)cap_bins * POOL_BIN_PAGES;
  p->keep_pages = p->cap_pages;
  p->target_pages = 0; /* nothing before the first supply: pool_expect() */
  p->swap = sysinfo(&si) == 0 && si.totalswap > 0;
  return 0;
}

/* After the uffd is closed: nothing is registered any more. */
void pool_fini(struct pool *p) {
  size_t meta_len = ((size_t)p->nbins * sizeof(struct pool_bin) + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
  if (!p->base) return;
  munmap((void *)p->base, (size_t)p->nbins * POOL_BIN_SIZE);
  munmap(p->bins, meta_len);
  munmap((void *)p->zero, POOL_BIN_SIZE);
  memset(p, 0, sizeof *p);
}

void pool_forget(struct pool *p) { memset(p, 0, sizeof *p); }

/* ---- taking and putting back -------------------------------------------- */

uint32_t pool_take(struct pool *p, uint32_t pages, struct pool_span *s) {
  sigset_t saved;
  struct pool_bin *b;
  uint32_t n = 0;
  int32_t i;

  pool_lock(p, &saved);
  i = p->clean.head;
  if (i < 0) {
    p->misses++;
    goto out;
  }
  b = &p->bins[i];
  n = (uint32_t)(b->hi - b->lo);
  if (n > pages) n = pages;
  s->addr = page_addr(p, (uint32_t)i, b->lo);
  s->pages = n;
  s->bin = (uint32_t)i;
  b->lo = (uint16_t)(b->lo + n);
  b->inflight++;
  p->clean_pages -= n;
  p->taken += n;
  if (b->lo == b->hi) { /* drained: off the list until its spans are back */
    list_pop(p, &p->clean);
    b->state = BIN_DRAINED;
  }
out:
  pool_unlock(p, &saved);
  return n;
}

/* Unmoved pages go back to the bin when they are still at its front (no
 * span was taken after this one); otherwise they are given back to the
 * kernel before the bin can be reused, since its bookkeeping has already
 * counted them out. */
void pool_put(struct pool *p, const struct pool_span *s, uint32_t left) {
  sigset_t saved;
  struct pool_bin *b = &p->bins[s->bin];
  uint32_t first = (uint32_t)((s->addr - pool_bin_addr(p, s->bin)) / PAGE_SIZE);
  bool stranded = false;

  pool_lock(p, &saved);
  if (left && b->lo == first + s->pages) {
    b->lo = (uint16_t)(b->lo - left);
    p->clean_pages += left;
    if (b->state == BIN_DRAINED) {
      b->state = BIN_CLEAN;
      list_push_head(p, &p->clean, s->bin);
    }
    left = 0;
  }
  stranded = left != 0;
  if (!stranded) b->inflight--;
  if (!stranded && b->state == BIN_DRAINED && b->inflight == 0) bin_set_empty(p, s->bin);
  pool_unlock(p, &saved);
  if (!stranded) return;

  /* Refused (locked pages), they stay present and zero: the bin's next
   * refill finds them (EEXIST) and keeps them. */
  (void)drop_pages(s->addr + (uintptr_t)(s->pages - left) * PAGE_SIZE, left);
  pool_lock(p, &saved);
  b->inflight--;
  if (b->state == BIN_DRAINED && b->inflight == 0) bin_set_empty(p, s->bin);
  pool_unlock(p, &saved);
}

/* ---- recycling ------------------------------------------------------------ */

struct reclaim_bin {
  int32_t bin;
  uint32_t hi;
};

static void reclaim_finish(struct pool *p, struct reclaim_bin *rb) {
  sigset_t saved;
  if (rb->bin < 0) return;
  pool_lock(p, &saved);
  if (rb->hi == 0) {
    bin_set_empty(p, (uint32_t)rb->bin);
  } else {
    p->bins[rb->bin].lo = 0;
    p->bins[rb->bin].hi = (uint16_t)rb->hi;
    p->bins[rb->bin].state = BIN_DIRTY;
    p->dirty_pages += rb->hi;
    list_push_tail(p, &p->dirty, (uint32_t)rb->bin);
  }
  pool_unlock(p, &saved);
  rb->bin = -1;
}

/* An empty bin to fill, unless the pool already holds twice its cap. */
static int reclaim_grab(struct pool *p, struct reclaim_bin *rb) {
  sigset_t saved;
  int32_t i = -1;

  reclaim_finish(p, rb);
  pool_lock(p, &saved);
  if (p->clean_pages + p->dirty_pages < 2 * p->cap_pages) i = list_pop(p, &p->empty);
  if (i >= 0) p->bins[i].state = BIN_FILLING;
  pool_unlock(p, &saved);
  rb->bin = i;
  rb->hi = 0;
  return i < 0 ? -ENOSPC : 0;
}

/* Move one run of present pages [src, src + pages) into bins. */
static int reclaim_run(struct pool *p, struct reclaim_bin *rb, uintptr_t src, uint32_t pages, uint64_t *moved) {
  int err = 0;

  while (pages) {
    uint32_t n, got;
    size_t done;
    if (rb->bin < 0 || rb->hi == POOL_BIN_PAGES) {
      err = reclaim_grab(p, rb);
      if (err) break;
    }
    n = POOL_BIN_PAGES - rb->hi;
    if (n > pages) n = pages;
    done = uffd_move(p->uffd, page_addr(p, (uint32_t)rb->bin, rb->hi), src, n * PAGE_SIZE,
                     UFFDIO_MOVE_MODE_DONTWAKE, &err);
    got = (uint32_t)(done / PAGE_SIZE);
    rb->hi += got;
    *moved += got;
    src += done;
    pages -= got;
    if (err == -ENOENT && pages) { /* the page went away since mincore */
      src += PAGE_SIZE;
      pages--;
      err = 0;
    }
    if (err) break;
  }
  return err;
}

/* Which pages of a window to move: /proc/self/pagemap says, for each page,
 * whether it is present and whether this process maps it alone. Only such
 * pages are worth moving: the shared zero page (mapped by a read fault)
 * would be copied by the first write of the zeroing, a page shared with a
 * fork child cannot be moved (EBUSY), and a swapped-out page is not
 * present. Those are dropped with MADV_DONTNEED instead (*drop). Without
 * pagemap, mincore() gives presence only, and every present page moves. */
static int window_movable(int pm, uintptr_t wa, size_t w, unsigned char *vec, bool *drop) {
  uint64_t ent[MINCORE_WINDOW];

  if (pm >= 0 && pagemap_read(pm, wa, ent, w) == w) {
    for (size_t i = 0; i < w; i++) {
      bool present = (ent[i] & PAGEMAP_PRESENT) != 0;
      vec[i] = present && (ent[i] & PAGEMAP_EXCLUSIVE);
      if ((present && !vec[i]) || (ent[i] & PAGEMAP_SWAP)) *drop = true;
    }
    return 0;
  }
  return mincore((void *)wa, w * PAGE_SIZE, vec) ? -errno : 0;
}

int pool_reclaim(struct pool *p, uintptr_t addr, size_t len, uint64_t *moved) {
  struct reclaim_bin rb = { .bin = -1, .hi = 0 };
  unsigned char vec[MINCORE_WINDOW];
  size_t npages = len / PAGE_SIZE;
  bool drop = p->swap; /* without pagemap, swapped pages are invisible */
  int pm, err = 0;

  *moved = 0;
  pm = pagemap_open();
  if (pm >= 0) drop = false;
  for (size_t off = 0; off < npages && !err; off += MINCORE_WINDOW) {
    size_t w = npages - off < MINCORE_WINDOW ? npages - off : MINCORE_WINDOW;
    uintptr_t wa = addr + off * PAGE_SIZE;
    err = window_movable(pm, wa, w, vec, &drop);
    if (err) break;
    for (size_t i = 0; i < w && !err;) {
      size_t j = i;
      while (j < w && (vec[j] & 1)) j++;
      if (j > i) err = reclaim_run(p, &rb, wa + i * PAGE_SIZE, (uint32_t)(j - i), moved);
      i = j + 1;
    }
  }
  if (pm >= 0) pagemap_close(pm);
  reclaim_finish(p, &rb);
  /* The range must read as zero when this returns. */
  if (!err && drop) err = madvise((void *)addr, len, MADV_DONTNEED) ? -errno : 0;
  return err;
}

/* ---- the pager's background work ------------------------------------------ */

/* Fresh pages: UFFDIO_COPY from a range never written, whose reads are the
 * zero page, so the kernel allocates and clears each page here, on the
 * pager thread, instead of in a fault on the application's. */
uint32_t pool_refill_step(struct pool *p, uint32_t max_pages) {
  uint32_t n, got;
  size_t done;
  int err;

  if (p->filling < 0) {
    int32_t i = -1;
    hk_lock(&p->lock);
    if (p->clean_pages < p->target_pages) i = list_pop(p, &p->empty);
    if (i >= 0) p->bins[i].state = BIN_FILLING;
    hk_unlock(&p->lock);
    if (i < 0) return 0;
    __atomic_store_n(&p->filling, i, __ATOMIC_RELAXED); /* read by pool_wants_refill() */
    p->fill_pos = 0;
  }
  n = POOL_BIN_PAGES - p->fill_pos;
  if (n > max_pages) n = max_pages;
  done = uffd_copy(p->uffd, page_addr(p, (uint32_t)p->filling, p->fill_pos), p->zero, n * PAGE_SIZE,
                   UFFDIO_COPY_MODE_DONTWAKE, &err);
  got = (uint32_t)(done / PAGE_SIZE);
  p->fill_pos += got;
  if (err == -EEXIST) { /* a stray page: present already, so cleared and kept */
    pool_zero((void *)page_addr(p, (uint32_t)p->filling, p->fill_pos), PAGE_SIZE);
    p->fill_pos++;
    got++;
    err = 0;
  }
  if (p->fill_pos == POOL_BIN_PAGES || err) {
    hk_lock(&p->lock);
    if (p->fill_pos == 0) {
      bin_set_empty(p, (uint32_t)p->filling);
    } else {
      p->bins[p->filling].lo = 0;
      p->bins[p->filling].hi = (uint16_t)p->fill_pos;
      p->bins[p->filling].state = BIN_CLEAN;
      p->clean_pages += p->fill_pos;
      list_push_tail(p, &p->clean, (uint32_t)p->filling);
    }
    hk_unlock(&p->lock);
    __atomic_store_n(&p->filling, -1, __ATOMIC_RELAXED);
  }
  return got;
}

uint32_t pool_zero_step(struct pool *p, uint32_t max_pages, uint64_t *ns) {
  struct pool_bin *b;
  uint32_t n;
  uint64_t t0;

  if (p->zeroing < 0) {
    int32_t i;
    hk_lock(&p->lock);
    i = list_pop(p, &p->dirty);
    if (i >= 0) p->bins[i].state = BIN_ZEROING;
    hk_unlock(&p->lock);
    if (i < 0) return 0;
    p->zeroing = i;
    p->zero_pos = p->bins[i].lo;
  }
  b = &p->bins[p->zeroing];
  n = b->hi - p->zero_pos;
  if (n > max_pages) n = max_pages;
  t0 = now_ns();
  pool_zero((void *)page_addr(p, (uint32_t)p->zeroing, p->zero_pos), n * PAGE_SIZE);
  *ns += now_ns() - t0;
  p->zero_pos += n;
  if (p->zero_pos == b->hi) {
    hk_lock(&p->lock);
    p->dirty_pages -= (uint64_t)(b->hi - b->lo);
    p->clean_pages += (uint64_t)(b->hi - b->lo);
    b->state = BIN_CLEAN;
    list_push_tail(p, &p->clean, (uint32_t)p->zeroing);
    hk_unlock(&p->lock);
    p->zeroing = -1;
  }
  return n;
}

/* Dirty bins first (their zeroing is not done yet), then clean ones from
 * the head of the list when no span of them is in flight. */
uint32_t pool_trim_pick(struct pool *p, uint32_t *bins, uint32_t max) {
  uint32_t count = 0;

  hk_lock(&p->lock);
  while (count < max && p->clean_pages + p->dirty_pages > p->keep_pages) {
    int32_t i = list_pop(p, &p->dirty);
    if (i >= 0) {
      p->dirty_pages -= (uint64_t)(p->bins[i].hi - p->bins[i].lo);
    } else {
      i = p->clean.head;
      if (i < 0 || p->bins[i].inflight) break;
      list_pop(p, &p->clean);
      p->clean_pages -= (uint64_t)(p->bins[i].hi - p->bins[i].lo);
    }
    p->bins[i].state = BIN_TRIMMING;
    bins[count++] = (uint32_t)i;
  }
  hk_unlock(&p->lock);
  return count;
}

/* Bins the pager thread picked for trimming are on their way back to the
 * kernel (an io_uring madvise in flight). Once the pool's keep falls to
 * one bin, the pager thread trims too, beside the caller: by the time the
 * caller's own picks run out, it may hold hundreds of bins in flight. The
 * shrink waits for them, TRIM_WAIT_BINS at a time, so that their pages are
 * gone when malloc_trim returns, as the README says. Bounded in time, for
 * a pager that stops with one in flight and for a program whose other
 * threads go on freeing and feeding the pool. Waiting only for the bins
 * in flight when malloc_trim came, 4 of 10 runs that wrote 600 MB of small
 * blocks, freed them and trimmed still held 16-86 MB of the pool when it
 * returned, and with HAKMEM_PAGER_POOL_MB=1024 every run held 453-548 MB
 * of 600-650 (tests/test_pager_serve.c). */
#define TRIM_WAIT_BINS 64
#define TRIM_WAIT_NS 200000000u

struct trims_in_flight {
  uint32_t bins[TRIM_WAIT_BINS], pages[TRIM_WAIT_BINS], count;
};

/* Under the lock: up to TRIM_WAIT_BINS bins being trimmed, from bin
 * `from` on; returns the bin to go on from. */
static uint32_t note_trims_in_flight(const struct pool *p, uint32_t from, struct trims_in_flight *t) {
  uint32_t i;
  t->count = 0;
  for (i = from; i < p->nbins && t->count < TRIM_WAIT_BINS; i++) {
    if (p->bins[i].state != BIN_TRIMMING) continue;
    t->bins[t->count] = i;
    t->pages[t->count++] = (uint32_t)(p->bins[i].hi - p->bins[i].lo);
  }
  return i;
}

/* Without the lock and with the caller's signal mask: the pages of the
 * noted bins that have left BIN_TRIMMING by `until`, given back or
 * refused. */
static uint64_t wait_for_trims(const struct pool *p, const struct trims_in_flight *t, uint64_t until) {
  const struct timespec pause = { 0, 100000 };
  uint64_t pages = 0;
  for (uint32_t k = 0; k < t->count; k++) {
    const uint8_t *state = &p->bins[t->bins[k]].state;
    while (__atomic_load_n(state, __ATOMIC_ACQUIRE) == BIN_TRIMMING && now_ns() < until) nanosleep(&pause, NULL);
    if (__atomic_load_n(state, __ATOMIC_ACQUIRE) == BIN_EMPTY) pages += t->pages[k];
  }
  return pages;
}

/* One pass over the bins, in steps of TRIM_WAIT_BINS: a bin picked after
 * the pass went by it is not waited for. */
static uint64_t wait_for_pager_trims(struct pool *p) {
  uint64_t until = now_ns() + TRIM_WAIT_NS, pages = 0;
  struct trims_in_flight t;
  sigset_t saved;
  uint32_t next = 0;

  while (next < p->nbins && now_ns() < until) {
    pool_lock(p, &saved);
    next = note_trims_in_flight(p, next, &t);
    pool_unlock(p, &saved);
    pages += wait_for_trims(p, &t, until);
  }
  return pages;
}

uint64_t pool_shrink(struct pool *p, uint64_t *waited) {
  uint32_t bins[16], n;
  uint64_t pages = 0;
  sigset_t all, saved;
  bool refused = false;

  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &saved); /* held across pool_trim_pick's lock too */
  hk_lock(&p->lock);
  if (p->target_pages) p->target_pages = POOL_BIN_PAGES;
  p->keep_pages = POOL_BIN_PAGES;
  p->taken_at_growth = p->taken;
  /* Takes before the trim are no reason for the timer's pool_adapt() to
   * raise the keep back to the cap while the trim goes on: that left
   * 120 MB of a 256 MiB pool in one run of ten (tests/test_pager_serve.c). */
  p->seen_taken = p->taken;
  hk_unlock(&p->lock);
  while (!refused && (n = pool_trim_pick(p, bins, 16)) > 0) {
    for (uint32_t i = 0; i < n; i++) {
      if (!refused && drop_pages(pool_bin_addr(p, bins[i]), POOL_BIN_PAGES)) {
        pages += pool_trimmed(p, bins[i]);
        continue;
      }
      refused = true;
      pool_trim_refused(p, bins[i]);
    }
  }
  pthread_sigmask(SIG_SETMASK, &saved, NULL);
  uint64_t theirs = wait_for_pager_trims(p);
  if (waited) *waited = theirs;
  return pages;
}

/* UFFDIO_MOVE refuses to move between a locked and an unlocked mapping.
 * The program's mlockall(MCL_CURRENT) locks the pool's area with all the
 * rest, but not the regions mapped after it: the pool, the allocator's own
 * memory, is unlocked again. (Locked regions were made present by the
 * lock and need no supply.) */
void pool_moves_refused(struct pool *p) {
  (void)munlock((void *)p->base, (size_t)p->nbins * POOL_BIN_SIZE);
}

/* The kernel refused to take the bin's pages back (they are locked:
 * mlock, mlockall): the bin stays. It may have been picked from the dirty
 * list, so it goes there; its zeroing makes it clean again. */
void pool_trim_refused(struct pool *p, uint32_t bin) {
  hk_lock(&p->lock);
  p->bins[bin].state = BIN_DIRTY;
  p->dirty_pages += (uint64_t)(p->bins[bin].hi - p->bins[bin].lo);
  list_push_tail(p, &p->dirty, bin);
  hk_unlock(&p->lock);
}

uint32_t pool_trimmed(struct pool *p, uint32_t bin) {
  uint32_t pages;
  hk_lock(&p->lock);
  pages = (uint32_t)(p->bins[bin].hi - p->bins[bin].lo);
  bin_set_empty(p, bin);
  hk_unlock(&p->lock);
  return pages;
}

bool pool_expect(struct pool *p) {
  sigset_t saved;
  bool armed = false;

  if (__atomic_load_n(&p->target_pages, __ATOMIC_RELAXED)) return false;
  pool_lock(p, &saved);
  if (p->target_pages == 0) {
    p->target_pages = POOL_BIN_PAGES;
    p->taken_at_growth = p->taken;
    armed = true;
  }
  pool_unlock(p, &saved);
  return armed;
}

void pool_grow_on_miss(struct pool *p) {
  if (__atomic_load_n(&p->misses, __ATOMIC_RELAXED) == p->seen_misses) return;
  hk_lock(&p->lock);
  if (p->target_pages == 0) {
    p->target_pages = POOL_BIN_PAGES;
    p->taken_at_growth = p->taken;
  } else if (p->target_pages < p->cap_pages && p->taken - p->taken_at_growth >= p->target_pages) {
    p->target_pages *= 2;
    if (p->target_pages > p->cap_pages) p->target_pages = p->cap_pages;
    p->taken_at_growth = p->taken;
  }
  p->seen_misses = p->misses;
  hk_unlock(&p->lock);
}

void pool_adapt(struct pool *p, uint64_t idle_limit) {
  pool_grow_on_miss(p);
  hk_lock(&p->lock);
  if (p->taken != p->seen_taken) {
    p->idle_ticks = 0;
    p->keep_pages = p->cap_pages;
  } else if (++p->idle_ticks >= idle_limit) {
    if (p->target_pages) p->target_pages = POOL_BIN_PAGES;
    p->taken_at_growth = p->taken;
    p->keep_pages = POOL_BIN_PAGES;
  }
  p->seen_taken = p->taken;
  hk_unlock(&p->lock);
}

uint64_t pool_level(struct pool *p) {
  uint64_t l;
  hk_lock(&p->lock);
  l = p->clean_pages + p->dirty_pages;
  hk_unlock(&p->lock);
  return l;
}

bool pool_wants_refill(struct pool *p) {
  return __atomic_load_n(&p->filling, __ATOMIC_RELAXED) >= 0 ||
         __atomic_load_n(&p->clean_pages, __ATOMIC_RELAXED) < __atomic_load_n(&p->target_pages, __ATOMIC_RELAXED);
}

bool pool_has_dirty(struct pool *p) {
  return p->zeroing >= 0 || __atomic_load_n(&p->dirty.head, __ATOMIC_RELAXED) >= 0;
}

bool pool_over_cap(struct pool *p) {
  return __atomic_load_n(&p->clean_pages, __ATOMIC_RELAXED) + __atomic_load_n(&p->dirty_pages, __ATOMIC_RELAXED) >
         __atomic_load_n(&p->keep_pages, __ATOMIC_RELAXED);
}
