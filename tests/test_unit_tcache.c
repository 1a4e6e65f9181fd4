/* Description: unit tests of lib/tcache.h, the per-thread caches. A
 * same-thread free followed by malloc of the same class returns the same
 * block, last in first out; each bin's count follows its frees and
 * mallocs and never exceeds class_cache_max; a free into a full bin
 * sets it aside whole, and past the spills returns its newest half to
 * the slabs (the counters see them go) and keeps the older half; past
 * the spills, a full bin of blocks from many slabs sends the spills back
 * and holds at most 128 until it runs empty (a refill, malloc_trim),
 * unless its blocks take a page each; a thread that adopts an exited thread's heap starts every class at one
 * page a refill; a free block carries its cookie in its second
 * word and a block handed out never does; an empty bin is refilled from a
 * slab with at most half a bin, or, when that would touch a new page,
 * by a spare block of the next class up; the fast paths count nothing; bins belong
 * to their thread; calloc with an empty bin takes a never-used block on
 * fresh pages without filling the bin; a bin that fills in address
 * order makes free prefetch ahead until the next refill. */
#include <criterion/criterion.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "diag.h"
#include "heap.h"
#include "size_class.h"
#include "slab.h"
#include "superslab.h"
#include "tcache.h"
#include "types.h"
#include "unit_helpers.h"

/* The cookie word of a block, read without the compiler's knowledge of
 * whether the block is live. */
static uintptr_t cookie_of(void *p)
{
  return ((volatile struct free_block *)opaque(p))->cookie;
}

static struct tcache_bin *bin_of_size(size_t size)
{
  return &hk_tcache.bins[size_to_class(size)];
}

/* Make sure this thread has its heap, so its bins are bounded. */
static void attach(void)
{
  free(opaque(malloc(opaque_size(16))));
  cr_assert_not_null(hk_tcache.heap, "malloc did not attach a heap to this thread");
}

Test(tcache, free_then_malloc_returns_the_same_block)
{
  attach();
  void *p = malloc(opaque_size(64));
  cr_assert_not_null(p);
  free(p);
  void *q = malloc(opaque_size(64));
  cr_assert_eq(q, p, "malloc after free of a 64 B block returned %p, not %p", q, p);
  /* Any size of the same class: 49..64 B share one. */
  free(q);
  void *r = malloc(opaque_size(49));
  cr_assert_eq(r, p, "a 49 B request did not take the 64 B block just freed");
  free(r);
}

Test(tcache, the_cache_is_last_in_first_out)
{
  enum { N = 16 };
  void *blocks[N];
  attach();
  for (int i = 0; i < N; i++)
    cr_assert_not_null(blocks[i] = malloc(opaque_size(96)));
  for (int i = 0; i < N; i++)
    free(blocks[i]);
  cr_assert_eq(bin_of_size(96)->head, blocks[N - 1], "the bin's head is not the last block freed");
  for (int i = N - 1; i >= 0; i--) {
    void *p = malloc(opaque_size(96));
    cr_assert_eq(p, blocks[i], "malloc %d after %d frees: %p, expected %p", N - i, N, p, blocks[i]);
  }
  for (int i = 0; i < N; i++)
    free(blocks[i]);
}

Test(tcache, classes_have_their_own_bins)
{
  attach();
  void *a = malloc(opaque_size(32)), *b = malloc(opaque_size(256));
  cr_assert(a && b);
  free(a);
  void *c = malloc(opaque_size(256));
  cr_assert_neq(c, a, "a 256 B request took a 32 B block from the cache");
  cr_assert_eq(malloc(opaque_size(32)), a);
  free(a);
  free(b);
  free(c);
}

Test(tcache, bin_counts_follow_frees_and_mallocs)
{
  enum { N = 20 };
  void *blocks[N];
  attach();
  struct tcache_bin *bin = bin_of_size(256); /* a class that never borrows */
  cr_assert_eq(bin->max, class_cache_max(size_to_class(256)));
  for (int i = 0; i < N; i++)
    cr_assert_not_null(blocks[i] = malloc(opaque_size(256)));
  uint32_t c0 = tcache_bin_count(bin);
  cr_assert_leq(c0 + N, bin->max, "test premise: the bin has room for %d frees", N);
  for (int i = 0; i < N; i++) {
    free(blocks[i]);
    cr_assert_eq(tcache_bin_count(bin), c0 + (uint32_t)i + 1, "after %d frees the bin holds %u (had %u)", i + 1,
                 tcache_bin_count(bin), c0);
    cr_assert_eq(bin->head, blocks[i]);
  }
  for (int i = 0; i < N; i++) {
    blocks[i] = malloc(opaque_size(256));
    cr_assert_eq(tcache_bin_count(bin), c0 + N - (uint32_t)i - 1, "after %d mallocs the bin holds %u", i + 1, tcache_bin_count(bin));
  }
  /* The list and the count agree. */
  uint32_t walked = 0;
  for (struct free_block *b = bin->head; b; b = b->next)
    walked++;
  cr_assert_eq(walked, tcache_bin_count(bin), "the bin links %u blocks and counts %u", walked, tcache_bin_count(bin));
  for (int i = 0; i < N; i++)
    free(blocks[i]);
}

/* After malloc_trim, a slab with parked pages sends the frees of its
 * blocks down the slow path (its `divides` is 0): with room in the bin,
 * the block goes in it, and the bin's other blocks stay. */
Test(tcache, a_block_of_a_slab_with_parked_pages_goes_in_a_bin_with_room)
{
  enum { N = 4096 };
  static void *blocks[N];
  attach();
  for (int i = 0; i < N; i++)
    cr_assert_not_null(blocks[i] = malloc(opaque_size(256)));
  void *survivor = NULL;
  for (int i = 0; i < N; i++) {
    if (!survivor && ((uintptr_t)blocks[i] & (PAGE_SIZE - 1)) == 0 && slab_of(blocks[i])->start == blocks[i]) {
      survivor = blocks[i]; /* the first block of a slab: the rest of its pages can be parked */
      continue;
    }
    free(blocks[i]);
  }
  cr_assert_not_null(survivor, "test premise: a slab starts among %d blocks", N);
  malloc_trim(0);
  cr_assert_neq(slab_of(survivor)->parked, 0, "test premise: the trim parked pages of the survivor's slab");
  struct tcache_bin *bin = bin_of_size(256);
  void *few[3];
  for (int i = 0; i < 3; i++)
    cr_assert_not_null(few[i] = malloc(opaque_size(256)));
  for (int i = 0; i < 3; i++)
    free(few[i]);
  uint32_t c0 = tcache_bin_count(bin);
  cr_assert_geq(c0, 3);
  free(survivor);
  cr_assert_eq(tcache_bin_count(bin), c0 + 1, "the bin held %u blocks and holds %u after the free", c0, tcache_bin_count(bin));
  cr_assert_eq(bin->head, survivor);
}

/* 1 KiB blocks: a bin holds 64. The free that finds it full sets the
 * whole bin aside (a spill, up to SPILL_BINS a class), then caches its
 * own; with the spills taken, the newest half of a full bin goes back to
 * its slabs and the older half stays. */
Test(tcache, a_full_bin_is_set_aside_whole_then_its_newest_half_goes_back_to_its_slabs)
{
  attach();
  const size_t size = 1024;
  const unsigned cls = size_to_class(size);
  struct heap *h = hk_tcache.heap;
  struct tcache_bin *bin = bin_of_size(size);
  const uint32_t max = bin->max;
  cr_assert_eq(max, 64);
  const unsigned n = (SPILL_BINS + 2) * max + 1;
  void **blocks = calloc(n, sizeof *blocks);
  cr_assert_not_null(blocks);
  for (unsigned i = 0; i < n; i++)
    cr_assert_not_null(blocks[i] = malloc(opaque_size(size)));
  cr_assert_eq(h->spilled[cls], 0);

  unsigned spills = 0, flushes = 0;
  for (unsigned i = 0; i < n; i++) {
    uint32_t before = tcache_bin_count(bin);
    void *old_head = bin->head;
    unsigned spilled = h->spilled[cls];
    cr_assert_leq(before, max);
    struct hakmem_stats s0 = snap();
    free(blocks[i]);
    struct hakmem_stats s1 = snap();
    if (before < max) {
      cr_assert_eq(tcache_bin_count(bin), before + 1, "free %u into a bin of %u/%u left %u", i, before, max, tcache_bin_count(bin));
      cr_assert_eq(s1.bytes_in_use, s0.bytes_in_use, "a cached free changed bytes_in_use");
      continue;
    }
    cr_assert_eq(bin->head, blocks[i], "the bin does not hold the block just freed");
    if (spilled < SPILL_BINS) {
      spills++;
      cr_assert_eq(tcache_bin_count(bin), 1, "free %u into a full bin left %u blocks (max %u)", i, tcache_bin_count(bin), max);
      cr_assert_null(((struct free_block *)bin->head)->next);
      cr_assert_eq(h->spilled[cls], spilled + 1, "a full bin was not set aside");
      cr_assert_eq(h->spill[cls][spilled].head, old_head, "the spill does not hold the bin as it was");
      cr_assert_eq(h->spill[cls][spilled].count, max);
      cr_assert_eq(s1.bytes_in_use, s0.bytes_in_use, "a spill changed bytes_in_use");
      continue;
    }
    flushes++;
    cr_assert_eq(tcache_bin_count(bin), max - max / 2 + 1, "free %u into a full bin left %u blocks (max %u)", i, tcache_bin_count(bin),
                 max);
    cr_assert_eq(s0.bytes_in_use - s1.bytes_in_use, (uint64_t)(max / 2) * size, "the flush gave back %lld bytes",
                 (long long)(s0.bytes_in_use - s1.bytes_in_use));
    /* The newest half went back to its slabs, still marked free; at the
     * first flush, the older half of the bin (the blocks freed before)
     * follows the block just freed. */
    for (unsigned k = 1; k <= max / 2; k++) {
      void *warm = blocks[i - k];
      struct slab *s = slab_of(warm);
      int found = 0;
      for (struct free_block *f = s->free; f && !found; f = f->next)
        found = (void *)f == warm;
      cr_assert(found, "flushed block %p is not on its slab's free list", warm);
      cr_assert_eq(cookie_of(warm), diag_cookie(warm));
    }
    if (flushes > 1)
      continue;
    struct free_block *kept = ((struct free_block *)bin->head)->next;
    for (unsigned k = max / 2 + 1; k <= max; k++, kept = kept->next)
      cr_assert_eq((void *)kept, blocks[i - k], "the bin's block %u is not the older half's", k);
    cr_assert_null(kept);
  }
  cr_assert_eq(spills, SPILL_BINS);
  cr_assert_geq(flushes, 1, "freeing %u blocks into a bin of %u flushed it %u times", n, max, flushes);
  /* Spills take their bytes from a reservation the heap makes a step at a
   * time from the budget of all heaps. */
  cr_assert_geq(h->spill_reserved, h->spill_bytes);
  cr_assert_gt(h->spill_bytes, 0);

  /* The next refills take the spills back whole, the last set aside first. */
  for (unsigned k = 0; bin->head; k++) {
    cr_assert_lt(k, max, "the bin holds more than its max");
    cr_assert_not_null(malloc(opaque_size(size)));
  }
  void *last = h->spill[cls][SPILL_BINS - 1].head;
  void *p = malloc(opaque_size(size));
  cr_assert_eq(p, last, "a refill took %p, not the spilled bin's head %p", p, last);
  cr_assert_eq(tcache_bin_count(bin), max - 1);
  cr_assert_eq(h->spilled[cls], SPILL_BINS - 1);
  /* malloc_trim returns what is still set aside. */
  hakmem_trim();
  cr_assert_eq(h->spilled[cls], 0, "malloc_trim left spilled bins");
  cr_assert_eq(h->spill_bytes, 0);
  cr_assert_eq(h->spill_reserved, 0, "malloc_trim kept the heap's reservation");
  free(blocks);
}

static void *allocate_1k_blocks(void *arg)
{
  void **blocks = arg;
  for (unsigned i = 0; i < 128; i++)
    blocks[i] = malloc(opaque_size(1024));
  return NULL;
}

/* A full bin of another thread's blocks goes back to their slabs, not
 * aside: their owner may need them. */
Test(tcache, a_bin_of_other_threads_blocks_is_not_set_aside)
{
  attach();
  const unsigned cls = size_to_class(1024);
  struct heap *h = hk_tcache.heap;
  static void *blocks[128];
  pthread_t t;
  cr_assert_eq(pthread_create(&t, NULL, allocate_1k_blocks, blocks), 0);
  cr_assert_eq(pthread_join(t, NULL), 0);
  for (unsigned i = 0; i < 128; i++) {
    cr_assert_not_null(blocks[i]);
    cr_assert_neq(slab_of(blocks[i])->owner, h, "test premise: another heap's block");
  }
  struct tcache_bin *bin = &hk_tcache.bins[cls];
  cr_assert_eq(bin->max, 64);
  static void *mine[64];
  unsigned nmine = 0;
  while (bin->head) /* an empty bin to start from, without a refill */
    mine[nmine++] = malloc(opaque_size(1024));
  for (unsigned i = 0; i < 128; i++)
    free(blocks[i]);
  cr_assert_eq(h->spilled[cls], 0, "a bin of another heap's blocks was set aside");
  /* The 65th and 97th frees found the bin full and sent its newest half
   * home: blocks 32..95 went back, 0..31 and 96..127 are cached. */
  cr_assert_eq(tcache_bin_count(bin), 64, "the bin holds %u blocks", tcache_bin_count(bin));
  for (struct free_block *b = bin->head; b; b = b->next)
    for (unsigned i = 32; i < 96; i++)
      cr_assert_neq((void *)b, blocks[i], "block %u of a flushed half is still cached", i);
  for (unsigned i = 0; i < nmine; i++)
    free(mine[i]);
}

/* The `k`th block of blocks[] (`slabs` runs of `per_slab`) in the order
 * that takes one of each run in turn. */
static void *across_slabs(void **blocks, unsigned slabs, unsigned per_slab, unsigned k)
{
  return blocks[(k % slabs) * per_slab + k / slabs];
}

/* `slabs` slabs' worth of blocks of `size` bytes, malloc'd in order, then
 * the bin emptied without a refill; checks that freeing them across the
 * runs frees each from another slab than the one before. */
static void **malloc_slab_runs(size_t size, unsigned slabs, unsigned per_slab)
{
  void **blocks = calloc((size_t)slabs * per_slab, sizeof *blocks);
  cr_assert_not_null(blocks);
  for (unsigned k = 0; k < slabs * per_slab; k++)
    cr_assert_not_null(blocks[k] = malloc(opaque_size(size)));
  for (unsigned k = 1; k < slabs * per_slab; k++)
    cr_assert_neq(slab_of(across_slabs(blocks, slabs, per_slab, k)), slab_of(across_slabs(blocks, slabs, per_slab, k - 1)),
                  "test premise: frees %u and %u come from one slab", k - 1, k);
  struct tcache_bin *bin = bin_of_size(size);
  while (bin->head)
    cr_assert_not_null(malloc(opaque_size(size)));
  return blocks;
}

static void free_across_slabs(void **blocks, unsigned slabs, unsigned per_slab, unsigned from, unsigned to)
{
  for (unsigned k = from; k < to; k++)
    free(across_slabs(blocks, slabs, per_slab, k));
}

/* Blocks of 64 B freed across 10 slabs into bins of 1024: the first
 * SPILL_BINS full bins are set aside as any are. The next, its newest
 * blocks from several slabs, is judged scattered: the spills go back to
 * their slabs, and so do the bin's blocks but the oldest 64; the bin holds
 * at most 128 until it runs empty. Then a full bin is set aside again. */
Test(tcache, a_scattered_bin_past_the_spills_sends_them_back_and_shrinks)
{
  attach();
  const size_t size = 64;
  const unsigned cls = size_to_class(size), slabs = SPILL_BINS + 2;
  struct heap *h = hk_tcache.heap;
  struct tcache_bin *bin = bin_of_size(size);
  const uint32_t max = bin->max;
  cr_assert_eq(max, 1024);
  void **blocks = malloc_slab_runs(size, slabs, max);

  const unsigned spilling = SPILL_BINS * max + max; /* the frees that fill the spills and the bin */
  free_across_slabs(blocks, slabs, max, 0, spilling);
  cr_assert_eq(h->spilled[cls], SPILL_BINS);
  cr_assert_eq(tcache_bin_count(bin), max);
  cr_assert_not(h->bin_scattered[cls]);
  struct hakmem_stats s0 = snap();
  free_across_slabs(blocks, slabs, max, spilling, spilling + 1);
  struct hakmem_stats s1 = snap();
  cr_assert(h->bin_scattered[cls]);
  cr_assert_eq(h->spilled[cls], 0, "a scattered class kept %u spilled bins", h->spilled[cls]);
  cr_assert_eq(h->spill_bytes, 0);
  cr_assert_eq(h->spill_reserved, 0, "the class's spills went back but the heap kept %zu reserved", h->spill_reserved);
  cr_assert_eq(bin->max, 128, "the scattered bin holds up to %u", bin->max);
  cr_assert_eq(tcache_bin_count(bin), 65, "the overflow left %u blocks", tcache_bin_count(bin));
  cr_assert_eq(s0.bytes_in_use - s1.bytes_in_use, (uint64_t)(SPILL_BINS * max + max - 64) * size,
               "what the class let go went back to the slabs");

  free_across_slabs(blocks, slabs, max, spilling + 1, slabs * max);
  cr_assert_eq(h->spilled[cls], 0);
  cr_assert_leq(tcache_bin_count(bin), 128);
  /* A refill empties the bin: it holds a slab's worth again, and its next
   * overflow sets it aside. */
  while (bin->head)
    cr_assert_not_null(malloc(opaque_size(size)));
  for (unsigned k = 0; k <= max; k++)
    cr_assert_not_null(blocks[k] = malloc(opaque_size(size)));
  cr_assert_not(h->bin_scattered[cls], "a refill kept the verdict on the bin's earlier blocks");
  cr_assert_eq(bin->max, max);
  while (bin->head)
    cr_assert_not_null(malloc(opaque_size(size)));
  for (unsigned k = 0; k <= max; k++)
    free(blocks[k]);
  cr_assert_eq(h->spilled[cls], 1, "a full bin after the refill was not set aside");
  free(blocks);
}

/* attach(), then `slabs` slabs' worth (a bin's max each) of blocks of
 * `size` bytes, all freed across the slabs; returns blocks[] to free. */
static void **free_slab_runs_across(size_t size, unsigned slabs)
{
  attach();
  const uint32_t max = bin_of_size(size)->max;
  void **blocks = malloc_slab_runs(size, slabs, max);
  free_across_slabs(blocks, slabs, max, 0, slabs * max);
  return blocks;
}

/* Blocks of a page take a page each wherever they are: their class is
 * never judged scattered, and past the spills a full bin's newest half
 * goes back as before. */
Test(tcache, a_bin_of_page_blocks_is_never_judged_scattered)
{
  const unsigned cls = size_to_class(4096);
  cr_assert_eq(class_cache_max(cls), 16);
  void **blocks = free_slab_runs_across(4096, SPILL_BINS + 2);
  struct heap *h = hk_tcache.heap;
  cr_assert_not(h->bin_scattered[cls]);
  cr_assert_eq(h->spilled[cls], SPILL_BINS, "%u bins of 4 KiB blocks set aside", h->spilled[cls]);
  cr_assert_eq(hk_tcache.bins[cls].max, 16);
  free(blocks);
}

/* malloc_trim empties every bin: a scattered one holds a slab's worth again. */
Test(tcache, malloc_trim_ends_a_bins_scattered_verdict)
{
  const unsigned cls = size_to_class(64);
  void **blocks = free_slab_runs_across(64, SPILL_BINS + 2);
  struct heap *h = hk_tcache.heap;
  struct tcache_bin *bin = &hk_tcache.bins[cls];
  cr_assert(h->bin_scattered[cls]);
  cr_assert_eq(bin->max, 128);
  hakmem_trim();
  cr_assert_not(h->bin_scattered[cls]);
  cr_assert_eq(bin->max, class_cache_max(cls));
  cr_assert_eq(tcache_bin_count(bin), 0);
  free(blocks);
}

/* Spills and the budget of all heaps (SPILL_TOTAL, heap.c): 65 blocks of
 * 1 KiB freed into an empty bin of 64 set the bin aside at the 65th. */
#define SPILL_THREADS 200
#define SPILL_BLOCKS 65

static void malloc_1k_blocks(void **blocks)
{
  for (unsigned i = 0; i < SPILL_BLOCKS; i++)
    cr_assert_not_null(blocks[i] = malloc(opaque_size(1024)));
}

static void free_1k_blocks(void **blocks)
{
  for (unsigned i = 0; i < SPILL_BLOCKS; i++)
    free(blocks[i]);
}

/* Whether freeing 65 blocks of its own sets a bin of this thread aside. */
static bool frees_set_a_bin_aside(void **blocks)
{
  unsigned cls = size_to_class(1024);
  malloc_1k_blocks(blocks); /* the thread's heap is there from here */
  unsigned before = hk_tcache.heap->spilled[cls];
  free_1k_blocks(blocks);
  return hk_tcache.heap->spilled[cls] > before;
}

struct spill_thread {
  pthread_barrier_t *barrier;
  bool take_back; /* malloc the blocks again before idling */
};

static void *spill_then_idle(void *arg)
{
  struct spill_thread *t = arg;
  void *blocks[SPILL_BLOCKS];
  frees_set_a_bin_aside(blocks);
  if (t->take_back)
    malloc_1k_blocks(blocks); /* the refill takes the spilled bin back */
  pthread_barrier_wait(t->barrier);
  pthread_barrier_wait(t->barrier);
  if (t->take_back)
    free_1k_blocks(blocks);
  return NULL;
}

/* SPILL_THREADS threads that set a bin aside, took it back or not, and
 * idle until spill_threads_stop(); the calling thread has a heap. */
struct spill_threads {
  pthread_t t[SPILL_THREADS];
  pthread_barrier_t barrier;
  struct spill_thread arg;
};

static void spill_threads_start(struct spill_threads *s, bool take_back)
{
  s->arg = (struct spill_thread){ &s->barrier, take_back };
  cr_assert_eq(pthread_barrier_init(&s->barrier, NULL, SPILL_THREADS + 1), 0);
  for (unsigned i = 0; i < SPILL_THREADS; i++)
    cr_assert_eq(pthread_create(&s->t[i], NULL, spill_then_idle, &s->arg), 0);
  pthread_barrier_wait(&s->barrier);
  attach();
}

static void spill_threads_stop(struct spill_threads *s)
{
  pthread_barrier_wait(&s->barrier);
  for (unsigned i = 0; i < SPILL_THREADS; i++)
    pthread_join(s->t[i], NULL);
  pthread_barrier_destroy(&s->barrier);
}

/* A thread that set a bin aside and took it back holds no share of the
 * budget: 200 of them idle, another thread still sets its bin aside. */
Test(tcache, idle_threads_that_took_their_spills_back_leave_the_budget_to_others)
{
  static struct spill_threads s;
  spill_threads_start(&s, true);
  void *blocks[SPILL_BLOCKS];
  cr_assert(frees_set_a_bin_aside(blocks), "no bin set aside beside %d idle threads", SPILL_THREADS);
  spill_threads_stop(&s);
}

/* The heaps of the threads alive at a fork hold spills the child can
 * never take back: their reservations do not count in the child. */
Test(tcache, a_fork_child_sets_bins_aside_whatever_other_threads_held)
{
  static struct spill_threads s;
  spill_threads_start(&s, false);
  pid_t pid = fork();
  cr_assert_neq(pid, -1);
  if (pid == 0) {
    void *blocks[SPILL_BLOCKS];
    _exit(frees_set_a_bin_aside(blocks) ? 0 : 1);
  }
  int status;
  cr_assert_eq(waitpid(pid, &status, 0), pid);
  cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child set no bin aside");
  spill_threads_stop(&s);
}

/* A refill takes a slab's whole free list in one step when the bin can
 * hold it: the bin then holds every block the slab had. */
Test(tcache, a_refill_takes_a_short_free_list_whole)
{
  attach();
  const size_t size = 2048; /* 32 blocks a slab, a bin of 32; no borrowing */
  const unsigned cls = size_to_class(size);
  struct heap *h = hk_tcache.heap;
  struct tcache_bin *bin = bin_of_size(size);
  enum { N = (SPILL_BINS + 2) * 32 + 1 };
  static void *blocks[N];
  for (unsigned i = 0; i < N; i++)
    cr_assert_not_null(blocks[i] = malloc(opaque_size(size)));
  /* Past the spills, a full bin goes back to its slabs. */
  for (unsigned i = 0; i < N; i++)
    free(blocks[i]);
  /* Take the cached and spilled blocks out, without a refill from a slab. */
  unsigned taken = 0;
  while (bin->head || h->spilled[cls]) {
    cr_assert_lt(taken, N, "the bin and its spills hold more blocks than were freed");
    cr_assert_not_null(blocks[taken++] = malloc(opaque_size(size)));
  }
  struct slab *s = h->partial[cls];
  cr_assert_not_null(s);
  unsigned on_slab = 0;
  for (struct free_block *f = s->free; f; f = f->next)
    on_slab++;
  cr_assert_gt(on_slab, 1, "the slab at the head of the partial list has %u free blocks", on_slab);
  void *p = malloc(opaque_size(size));
  cr_assert_eq(slab_of(p), s, "the refill took another slab's block");
  cr_assert_null(s->free, "the refill left blocks on the slab's list");
  cr_assert_eq(tcache_bin_count(bin), on_slab - 1, "the bin holds %u of the slab's %u free blocks", tcache_bin_count(bin), on_slab);
}

static int by_address(const void *a, const void *b)
{
  uintptr_t x = (uintptr_t)*(void *const *)a, y = (uintptr_t)*(void *const *)b;
  return (x > y) - (x < y);
}

/* Frees into bin, from blocks[from] stepping by step, until count frees;
 * at each free into a full bin, the bin's prefetch distance must follow
 * the order of that free and the two before it. Returns how many full
 * bins found them a block apart. */
static unsigned free_watching_order(struct tcache_bin *bin, void **blocks, int from, int step, unsigned count, size_t size)
{
  unsigned in_order = 0;
  uint16_t expect = bin->ahead;
  for (unsigned k = 0; k < count; k++) {
    int i = from + (int)k * step;
    bool full = tcache_bin_count(bin) == bin->max;
    if (full) {
      bool apart = k >= 2 && (uintptr_t)blocks[i] - (uintptr_t)blocks[i - step] == size &&
                   (uintptr_t)blocks[i - step] - (uintptr_t)blocks[i - 2 * step] == size;
      in_order += apart;
      expect = apart ? (uint16_t)(size / 2) : 0;
    }
    free(blocks[i]);
    cr_assert_eq(bin->ahead, expect, "free %u (%s bin) left the prefetch distance at %u words, not %u", k, full ? "a full" : "a",
                 bin->ahead, expect);
  }
  return in_order;
}

/* A bin that fills in address order makes free prefetch the block four
 * ahead (bench/grow: 867 -> 770 ns/page); any other order, and the next
 * refill, stop it. The test watches the distance the bin holds; what the
 * prefetch buys only a benchmark can show. */
Test(tcache, a_bin_filled_in_address_order_prefetches_four_blocks_ahead)
{
  attach();
  const size_t size = 1024;
  struct tcache_bin *bin = bin_of_size(size);
  const unsigned n = 4 * bin->max;
  void **blocks = calloc(n, sizeof *blocks);
  cr_assert_not_null(blocks);
  for (unsigned i = 0; i < n; i++)
    cr_assert_not_null(blocks[i] = malloc(opaque_size(size)));
  qsort(blocks, n, sizeof *blocks, by_address);
  cr_assert_eq(bin->ahead, 0, "a bin that never filled prefetches");

  unsigned in_order = free_watching_order(bin, blocks, 0, 1, n / 2, size);
  cr_assert_geq(in_order, 1, "blocks carved from fresh slabs and freed in address order were never a block apart");
  cr_assert_eq((uintptr_t)bin->ahead * 8, 4 * size, "the prefetch is not four blocks ahead");

  /* malloc drains the bin; the refill after it stops the prefetch. */
  while (bin->head)
    cr_assert_not_null(malloc(opaque_size(size)));
  cr_assert_not_null(malloc(opaque_size(size)));
  cr_assert_eq(bin->ahead, 0, "a refill left the prefetch on");

  /* Descending order is not the order the prefetch serves. */
  free_watching_order(bin, blocks, (int)n - 1, -1, n / 2, size);
  cr_assert_eq(bin->ahead, 0);
  free(blocks);
}

Test(tcache, the_free_cookie_is_set_on_free_and_cleared_on_malloc)
{
  attach();
  void *p = malloc(opaque_size(48));
  cr_assert_not_null(p);
  cr_assert_neq(cookie_of(p), diag_cookie(p), "a block handed out carries the free cookie");
  cr_assert_eq(cookie_of(p), 0, "malloc left %#lx in the cookie word", (unsigned long)cookie_of(p));
  memset(p, 0xA5, 48);
  free(p);
  cr_assert_eq(cookie_of(p), diag_cookie(p), "free did not set the cookie");
  void *q = malloc(opaque_size(48));
  cr_assert_eq(q, p);
  cr_assert_eq(cookie_of(q), 0, "malloc did not clear the cookie of a cached block");
  free(q);
  /* Every block waiting in the bin carries its own cookie. */
  for (struct free_block *b = bin_of_size(48)->head; b; b = b->next)
    cr_assert_eq(b->cookie, diag_cookie(b), "cached block %p without its cookie", (void *)b);
}

/* A bin found empty is refilled from a slab: at most half a bin, all of
 * them from slabs of this heap and class, each with its cookie. */
Test(tcache, an_empty_bin_is_refilled_with_at_most_half_a_bin)
{
  attach();
  const size_t size = 512; /* a class that never borrows */
  unsigned cls = size_to_class(size);
  struct tcache_bin *bin = &hk_tcache.bins[cls];
  void *held[512];
  unsigned nheld = 0;
  while (tcache_bin_count(bin) > 0) {
    cr_assert_lt(nheld, 512);
    held[nheld++] = malloc(opaque_size(size));
  }
  for (int refill = 0; refill < 4; refill++) {
    void *p = malloc(opaque_size(size));
    cr_assert_not_null(p);
    cr_assert_eq(cookie_of(p), 0);
    cr_assert_eq(slab_of(p)->owner, hk_tcache.heap);
    cr_assert_eq(slab_of(p)->cls, cls);
    cr_assert_lt(tcache_bin_count(bin), bin->max / 2, "a refill left %u blocks in a bin of %u", tcache_bin_count(bin), bin->max);
    for (struct free_block *b = bin->head; b; b = b->next) {
      cr_assert_eq(b->cookie, diag_cookie(b));
      cr_assert_eq(slab_of(b)->owner, hk_tcache.heap);
      cr_assert_eq(slab_of(b)->cls, cls);
    }
    held[nheld++] = p;
    while (tcache_bin_count(bin) > 0 && nheld < 512)
      held[nheld++] = malloc(opaque_size(size));
  }
  for (unsigned i = 0; i < nheld; i++)
    free(held[i]);
}

/* Malloc class cls until its bin is empty and its next refill would make a
 * page present; the blocks go to held. */
static void drain_until_a_refill_needs_a_page(unsigned cls, void **held, unsigned *nheld, unsigned cap)
{
  struct tcache_bin *bin = &hk_tcache.bins[cls];
  for (;;) {
    if (tcache_bin_count(bin) == 0 && slab_refill_needs_a_page(hk_tcache.heap->partial[cls]))
      return;
    cr_assert_lt(*nheld, cap);
    cr_assert_not_null(held[(*nheld)++] = malloc(opaque_size(class_to_size(cls))));
  }
}

/* Empty the bin of cls by holding its blocks. */
static void empty_bin(unsigned cls, void **held, unsigned *nheld, unsigned cap)
{
  while (tcache_bin_count(&hk_tcache.bins[cls]) > 0) {
    cr_assert_lt(*nheld, cap);
    held[(*nheld)++] = malloc(opaque_size(class_to_size(cls)));
  }
}

/* A block of class cls itself, not one it borrowed; others go to held. */
static void *malloc_of_class(unsigned cls, void **held, unsigned *nheld, unsigned cap)
{
  for (;;) {
    void *p = malloc(opaque_size(class_to_size(cls)));
    cr_assert_not_null(p);
    if (slab_of(p)->cls == cls)
      return p;
    cr_assert_lt(*nheld, cap);
    held[(*nheld)++] = p;
  }
}

enum { HELD_MAX = 2048 };

/* Leaves class cls with an empty bin and no room on its present pages, and
 * the bin of cls + 1 with one cached block of that class on top: returns
 * that block. What it had to malloc on the way goes to held. */
static void *cache_a_spare_beside_a_drained_class(unsigned cls, void **held, unsigned *nheld)
{
  unsigned next = cls + 1;
  empty_bin(next, held, nheld, HELD_MAX);
  void *spare = malloc_of_class(next, held, nheld, HELD_MAX);
  drain_until_a_refill_needs_a_page(cls, held, nheld, HELD_MAX);
  free(spare);
  cr_assert_eq(hk_tcache.bins[next].head, spare);
  return spare;
}

/* 320 B may borrow from 384 B: with its own bin empty and no room on its
 * present pages, a malloc takes the 384 B block cached next door, and that
 * block's free returns it to the 384 B bin. More of the 384 B bin's blocks
 * (up to half, seven at most) move to the 320 B bin, where the next
 * mallocs of 320 B find them without a slow path. */
Test(tcache, an_empty_bin_borrows_a_cached_block_of_the_next_class_before_a_new_page)
{
  attach();
  unsigned cls = size_to_class(320), next = cls + 1;
  cr_assert(class_may_borrow(cls));
  static void *held[HELD_MAX];
  unsigned nheld = 0;
  void *spare = cache_a_spare_beside_a_drained_class(cls, held, &nheld);
  uint64_t carved = snap().slabs_carved;

  uint32_t next_cached = tcache_bin_count(&hk_tcache.bins[next]);
  void *p = malloc(opaque_size(300));
  cr_assert_eq(p, spare, "malloc(300) took %p, not the cached 384 B block %p", p, spare);
  cr_assert_eq(cookie_of(p), 0);
  cr_assert_eq(malloc_usable_size(p), class_to_size(next));
  cr_assert_eq(snap().slabs_carved, carved);
  uint32_t moved = (next_cached - 1) / 2 < 7 ? (next_cached - 1) / 2 : 7;
  cr_assert_eq(tcache_bin_count(&hk_tcache.bins[cls]), moved, "%u of %u cached 384 B blocks moved, not %u",
               tcache_bin_count(&hk_tcache.bins[cls]), next_cached - 1, moved);
  cr_assert_eq(tcache_bin_count(&hk_tcache.bins[next]), next_cached - 1 - moved);
  for (struct free_block *b = hk_tcache.bins[cls].head; b; b = b->next) {
    cr_assert_eq(slab_of(b)->cls, next, "a block of class %u in the 320 B bin", slab_of(b)->cls);
    cr_assert_eq(b->cookie, diag_cookie(b), "a moved block lost its free mark");
  }
  /* The next malloc of 320 B takes one of them. */
  cr_assert_gt(moved, 0, "test premise: the 384 B bin held more than the spare");
  void *q = malloc(opaque_size(300));
  cr_assert_eq(slab_of(q)->cls, next);
  cr_assert_eq(cookie_of(q), 0);
  cr_assert_eq(tcache_bin_count(&hk_tcache.bins[cls]), moved - 1);
  free(q);
  cr_assert_eq(tcache_bin_count(&hk_tcache.bins[cls]), moved - 1, "the freed block went to its own class's bin");
  free(p);
  cr_assert_eq(hk_tcache.bins[next].head, p, "the borrowed block went back to its own class");
  for (unsigned i = 0; i < nheld; i++)
    free(held[i]);
}

/* A class that keeps carving (a growing heap) does not borrow: it would
 * only pass its growth on to the next class, which then carves sooner
 * (grow: 1080 ns/page borrowing, 1016 not). */
Test(tcache, a_growing_class_does_not_borrow)
{
  attach();
  unsigned cls = size_to_class(320), next = cls + 1;
  static void *held[HELD_MAX];
  unsigned nheld = 0;
  void *spare = cache_a_spare_beside_a_drained_class(cls, held, &nheld);
  hk_tcache.heap->carves[cls] = 255; /* as many carves as it counts */
  void *p = malloc(opaque_size(300));
  cr_assert_neq(p, spare, "a growing class borrowed the cached 384 B block");
  cr_assert_eq(slab_of(p)->cls, cls);
  cr_assert_eq(hk_tcache.bins[next].head, spare, "the 384 B bin lost its block");
  free(p);
  for (unsigned i = 0; i < nheld; i++)
    free(held[i]);
}

/* A power-of-two class never borrows: its blocks stay aligned to their
 * size. */
Test(tcache, a_power_of_two_class_never_borrows)
{
  attach();
  unsigned cls = size_to_class(256), next = cls + 1;
  cr_assert_not(class_may_borrow(cls));
  static void *held[HELD_MAX];
  unsigned nheld = 0;
  void *spare = cache_a_spare_beside_a_drained_class(cls, held, &nheld);
  void *p = malloc(opaque_size(256));
  cr_assert_neq(p, spare);
  cr_assert_eq(slab_of(p)->cls, cls);
  cr_assert_eq((uintptr_t)p % 256, 0);
  bool cached = false;
  for (struct free_block *b = hk_tcache.bins[next].head; b && !cached; b = b->next)
    cached = (void *)b == spare;
  cr_assert(cached, "the 320 B bin lost its block (head %p, count %u)", hk_tcache.bins[next].head,
            tcache_bin_count(&hk_tcache.bins[next]));
  free(p);
  for (unsigned i = 0; i < nheld; i++)
    free(held[i]);
}

/* The fast paths count nothing: counters move on slow paths only. */
Test(tcache, cached_malloc_and_free_touch_no_counter)
{
  attach();
  void *warm = malloc(opaque_size(128));
  free(warm);
  struct hakmem_stats before = snap();
  for (int i = 0; i < 100000; i++) {
    void *p = malloc(opaque_size(128));
    cr_assert_eq(p, warm);
    free(p);
  }
  struct hakmem_stats after = snap();
  cr_assert_eq(after.bytes_in_use, before.bytes_in_use);
  cr_assert_eq(after.slabs_carved, before.slabs_carved);
  cr_assert_eq(after.remote_frees, before.remote_frees);
  cr_assert_eq(after.mmap_calls, before.mmap_calls);
  cr_assert_eq(after.madvise_calls, before.madvise_calls);
  cr_assert_eq(after.supply[HAKMEM_SUPPLY_FRESH].pages, before.supply[HAKMEM_SUPPLY_FRESH].pages);
}

struct other_thread {
  void *mine;                /* allocated and freed by the other thread */
  void *theirs;              /* the main thread's block, freed by the other */
  uint32_t own_bin_count;    /* the other thread's bin after its own free */
  uint32_t bin_after_remote; /* its bin after freeing the main thread's block */
  struct heap *heap;
};

static void *other_thread_main(void *arg)
{
  struct other_thread *t = arg;
  t->mine = malloc(opaque_size(144));
  t->heap = hk_tcache.heap;
  free(t->mine);
  t->own_bin_count = tcache_bin_count(bin_of_size(144));
  free(t->theirs);
  t->bin_after_remote = tcache_bin_count(bin_of_size(144));
  return NULL;
}

Test(tcache, bins_belong_to_their_thread)
{
  attach();
  struct other_thread t = { .theirs = malloc(opaque_size(144)) };
  cr_assert_not_null(t.theirs);
  uint32_t main_count = tcache_bin_count(bin_of_size(144));
  pthread_t th;
  cr_assert_eq(pthread_create(&th, NULL, other_thread_main, &t), 0);
  cr_assert_eq(pthread_join(th, NULL), 0);
  cr_assert_neq(t.heap, hk_tcache.heap, "two threads share a heap");
  cr_assert_geq(t.own_bin_count, 1);
  /* A thread caches what it frees, its heap's or not (as tcmalloc does);
   * at its exit its cache stays with its heap, the main thread's block in
   * it, for the next thread to adopt. */
  cr_assert_eq(t.bin_after_remote, t.own_bin_count + 1, "the other thread did not cache the block it freed");
  cr_assert_eq(tcache_bin_count(bin_of_size(144)), main_count, "the main thread's bin changed under another thread");
  cr_assert_gt(main_count, 0, "test premise: the main thread's bin is not empty");
  bool stashed = false;
  for (struct free_block *b = t.heap->stash[size_to_class(144)].head; b; b = b->next)
    stashed |= (void *)b == t.theirs;
  cr_assert(stashed, "the exited thread's cache lost the block it freed");
  cr_assert_eq(atomic_load(&slab_cold(slab_of(t.theirs))->remote) & ~(uintptr_t)1, 0, "the block went back at thread exit");
  cr_assert_neq(malloc(opaque_size(144)), t.theirs, "the main thread took a block cached by another");
}

/* calloc of 1 KiB and more, with nothing cached for its class, takes a
 * never-used block on fresh pages straight from the slab: no clearing,
 * and the (empty) bin is left alone. */
Test(tcache, calloc_with_an_empty_bin_takes_a_never_used_block)
{
  attach();
  const size_t size = 2048;
  unsigned cls = size_to_class(size);
  struct tcache_bin *bin = &hk_tcache.bins[cls];
  void *held[64];
  unsigned nheld = 0;
  held[nheld++] = malloc(opaque_size(size));
  while (tcache_bin_count(bin) > 0 && nheld < 64)
    held[nheld++] = malloc(opaque_size(size));
  cr_assert_eq(tcache_bin_count(bin), 0);
  struct slab *s = hk_tcache.heap->partial[cls];
  if (!s || s->free || s->carve < slab_cold(s)->zero_from || s->carve + s->block_size > s->end)
    cr_skip_test("the heap's slab of 2 KiB blocks has no never-used block on fresh pages");
  char *expected = s->carve;
  char *p = calloc(1, opaque_size(size));
  cr_assert_eq(p, expected, "calloc took %p, not the slab's next never-used block %p", (void *)p,
               (void *)expected);
  cr_assert_eq(tcache_bin_count(bin), 0, "calloc filled the bin");
  cr_assert_eq(s->carve, expected + s->block_size);
  for (size_t i = 0; i < size; i++)
    cr_assert_eq(p[i], 0, "byte %zu of a fresh block is %#x", i, (unsigned char)p[i]);
  free(p);
  for (unsigned i = 0; i < nheld; i++)
    free(held[i]);
}

struct grown {
  struct heap *heap;
  unsigned carves;
};

/* Grows the 256 B class until its refills carve many pages at a time. */
static void *grow_256(void *arg)
{
  struct grown *g = arg;
  enum { N = 4096 };
  static void *blocks[N];
  for (unsigned i = 0; i < N; i++)
    blocks[i] = malloc(opaque_size(256));
  for (unsigned i = 0; i < N; i++)
    free(blocks[i]);
  g->heap = hk_tcache.heap;
  g->carves = g->heap->carves[size_to_class(256)];
  return NULL;
}

static void *adopt(void *arg)
{
  struct grown *g = arg;
  free(opaque(malloc(opaque_size(16))));
  g->heap = hk_tcache.heap;
  g->carves = g->heap->carves[size_to_class(256)];
  return NULL;
}

/* How fast a class grew is its thread's: a thread that adopts the heap
 * of one that grew does not carve 16 pages for its first few blocks
 * (200 threads a wave, 100 blocks each: 131 MB of RSS after 40 waves). */
Test(tcache, a_thread_that_adopts_a_heap_starts_each_class_at_one_page_a_refill)
{
  struct grown before, after;
  pthread_t t;
  cr_assert_eq(pthread_create(&t, NULL, grow_256, &before), 0);
  cr_assert_eq(pthread_join(t, NULL), 0);
  cr_assert_geq(before.carves, 12, "test premise: the class grew (%u carves)", before.carves);
  cr_assert_eq(pthread_create(&t, NULL, adopt, &after), 0);
  cr_assert_eq(pthread_join(t, NULL), 0);
  cr_assert_eq(after.heap, before.heap, "test premise: the new thread adopted the exited one's heap");
  cr_assert_eq(after.carves, 0, "the adopted heap kept %u carves of the 256 B class", after.carves);
}
