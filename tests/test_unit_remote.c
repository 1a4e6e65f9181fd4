/* Description: unit tests of cross-thread frees and of heaps whose thread
 * has exited (lib/heap.c, lib/slab.h). A block freed by a thread other
 * than its owner goes into that thread's cache (a thread that only frees
 * gets a heap for it), and from there, a half bin or a trim at a time,
 * onto its slab's remote list with its free cookie,
 * the slab onto the owner heap's pending list; the owner takes the blocks
 * back on its next refill, counts them in remote_frees (in one batch: the
 * freeing thread touches no shared counter) and hands them out again;
 * frees from several threads at once all arrive. A thread that exits
 * leaves its heap abandoned with its cache kept whole; the next new thread
 * adopts that heap and takes the cache as its own; of a burst of exiting
 * threads at most eight keep their caches; blocks freed into an abandoned
 * heap are reclaimed by malloc_trim, which gives their SuperSlabs back. */
#include <criterion/criterion.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "diag.h"
#include "heap.h"
#include "region_map.h"
#include "size_class.h"
#include "slab.h"
#include "superslab.h"
#include "tcache.h"
#include "types.h"
#include "unit_helpers.h"

/* Allocate blocks of `size` until this thread holds every block of some
 * slab; all allocated blocks go to `all` (room for 4 slabs' worth). */
static int heap_has_pending(struct heap *h, struct slab *s)
{
  for (struct slab *p = atomic_load(&h->pending); p; p = slab_cold(p)->pending_next)
    if (p == s)
      return 1;
  return 0;
}

static unsigned remote_list_length(struct slab *s)
{
  unsigned n = 0;
  uintptr_t v = atomic_load(&slab_cold(s)->remote);
  for (struct free_block *b = remote_head(v); b; b = b->next)
    n++;
  cr_assert_eq(remote_count(v), n, "the remote word counts %lu blocks, its list holds %u",
               (unsigned long)remote_count(v), n);
  return n;
}

/* ---- remote frees and their reuse ---- */

struct free_job {
  void **blocks;
  unsigned n;
};

/* Frees the job's blocks, then gives this thread's cache back with
 * malloc_trim, as a full bin gives back its newest half: the blocks go to
 * their owner's remote lists. */
static void *free_all(void *arg)
{
  struct free_job *j = arg;
  for (unsigned i = 0; i < j->n; i++)
    free(j->blocks[i]);
  malloc_trim(0);
  return NULL;
}

/* n fresh blocks of 128 B, all of one slab (a test's premise): the slab. */
static struct slab *malloc_blocks_of_one_slab(void **blocks, unsigned n)
{
  for (unsigned i = 0; i < n; i++)
    cr_assert_not_null(blocks[i] = malloc(opaque_size(128)));
  struct slab *s = slab_of(blocks[0]);
  cr_assert_eq(slab_of(blocks[n - 1]), s, "test premise: one slab");
  return s;
}

struct consumer_job {
  struct free_job job;
  struct heap *heap; /* the consumer's, after its frees */
  bool malloc_failed;
  unsigned max, cached, max_after_malloc, full_max;
};

static void *free_all_then_malloc(void *arg)
{
  struct consumer_job *c = arg;
  unsigned cls = slab_of(c->job.blocks[0])->cls;
  for (unsigned i = 0; i < c->job.n; i++)
    free(c->job.blocks[i]);
  c->heap = hk_tcache.heap;
  c->max = hk_tcache.bins[cls].max;
  c->cached = tcache_bin_count(&hk_tcache.bins[cls]);
  /* The bin's blocks, then one more: the refill of an empty bin. */
  for (unsigned k = 0; k <= c->cached; k++)
    c->malloc_failed |= malloc(opaque_size(class_to_size(cls))) == NULL;
  c->max_after_malloc = hk_tcache.bins[cls].max;
  c->full_max = class_cache_max(cls);
  return NULL;
}

/* A thread that frees before it allocates anything (a consumer) gets a
 * heap at its 65th free: its frees then go into its cache, not one CAS
 * each onto the owner's slab (prodcons: 46M -> 98M ops/s), and back to
 * the owner half a bin at a time. Its bins hold 32 blocks until a malloc
 * of their class finds one empty:
 * blocks it keeps, its producers cannot reuse (16 pairs of threads: 38
 * MB of RSS with whole bins, 20 MB so, 18 MB before). */
Test(remote, a_thread_that_only_frees_caches_a_few_of_what_it_frees)
{
  enum { N = 100 };
  static void *blocks[N];
  struct slab *s = malloc_blocks_of_one_slab(blocks, N);
  struct consumer_job c = { .job = { blocks, N } };
  run_thread(free_all_then_malloc, &c);
  cr_assert_not_null(c.heap, "a thread that only freed has no heap");
  cr_assert_eq(c.max, 32, "a consumer's bin holds up to %u blocks", c.max);
  /* Frees 1-64 went to the owner one by one; 65-96 filled the bin; 97
   * sent its newest 16 back and, with 98-100, left 20. */
  cr_assert_eq(c.cached, 20, "the consumer's bin holds %u blocks, not 20", c.cached);
  cr_assert_eq(remote_list_length(s), 80, "%u blocks on the remote list, not 64 + 16", remote_list_length(s));
  cr_assert_not(c.malloc_failed);
  cr_assert_eq(c.max_after_malloc, c.full_max, "after a malloc of its class, the bin holds up to %u, not %u",
               c.max_after_malloc, c.full_max);
}

static void *free_all_noting_the_heap(void *arg)
{
  struct consumer_job *c = arg;
  for (unsigned i = 0; i < c->job.n; i++)
    free(c->job.blocks[i]);
  c->heap = hk_tcache.heap;
  return NULL;
}

static void *allocate_noting_the_heap(void *arg)
{
  free(malloc(opaque_size(64)));
  *(struct heap **)arg = hk_tcache.heap;
  return NULL;
}

/* A consumer's heap is a new one, not an exited thread's: it would never
 * collect what other threads free into that heap's slabs, and no trim
 * would reach them while it lives (another thread's malloc_trim left 16
 * MB resident against 3.4). */
Test(remote, a_consumer_does_not_adopt_an_exited_threads_heap)
{
  struct heap *exited = NULL;
  run_thread(allocate_noting_the_heap, &exited);
  cr_assert_not_null(exited);
  enum { N = 100 };
  static void *blocks[N];
  malloc_blocks_of_one_slab(blocks, N);
  struct consumer_job c = { .job = { blocks, N } };
  run_thread(free_all_noting_the_heap, &c);
  cr_assert_not_null(c.heap, "the consumer has no heap");
  cr_assert_neq(c.heap, exited, "the consumer adopted the exited thread's heap");
}

/* Up to 64 frees, a thread that has not allocated stays without a heap:
 * its frees go straight to the owner. A thread whose few frees come in
 * the last round of key destructors would leave a heap behind. */
Test(remote, a_thread_that_frees_a_few_blocks_gets_no_heap)
{
  enum { N = 64 };
  static void *blocks[N];
  struct slab *s = malloc_blocks_of_one_slab(blocks, N);
  struct consumer_job c = { .job = { blocks, N } };
  run_thread(free_all_noting_the_heap, &c);
  cr_assert_null(c.heap, "a thread that freed %u blocks got a heap", N);
  cr_assert_eq(remote_list_length(s), N, "%u of %u blocks on the remote list", remote_list_length(s), N);
}

Test(remote, freed_blocks_are_counted_and_reused_after_the_next_refill)
{
  const size_t size = 256;
  static void *all[4 * UNIT_SIZE / 256], *drained[512];
  unsigned nall = 0, ndrained = 0;
  struct slab *s = hold_a_whole_slab(size, all, &nall, NULL);
  struct heap *me = hk_tcache.heap;
  cr_assert_eq(s->owner, me);
  struct tcache_bin *bin = &hk_tcache.bins[s->cls];
  while (tcache_bin_count(bin) > 0)
    drained[ndrained++] = malloc(opaque_size(size));

  /* Another thread frees every block of the slab but its first. */
  void *keeper = s->start;
  static void *remote[UNIT_SIZE / 256];
  unsigned nremote = 0;
  for (unsigned i = 1; i < s->capacity; i++)
    remote[nremote++] = s->start + (size_t)i * s->block_size;
  struct free_job job = { remote, nremote };
  struct hakmem_stats before = snap();
  run_thread(free_all, &job);
  struct hakmem_stats after = snap();

  cr_assert_eq(after.remote_frees, before.remote_frees, "remote frees are counted when the owner takes them back");
  cr_assert_eq(after.bytes_in_use, before.bytes_in_use, "remote frees are not in use until collected");
  cr_assert_eq(remote_list_length(s), nremote, "the slab's remote list holds %u of %u blocks",
               remote_list_length(s), nremote);
  cr_assert(atomic_load(&slab_cold(s)->remote) & 1, "the slab is not marked queued");
  cr_assert(heap_has_pending(me, s), "the slab is not on its owner's pending list");
  cr_assert_eq(s->used, s->capacity, "the owner saw remote frees before collecting them");
  for (unsigned i = 0; i < nremote; i++)
    cr_assert_eq(((struct free_block *)remote[i])->cookie, diag_cookie(remote[i]),
                 "remotely freed block %p has no free cookie", remote[i]);

  /* The owner's bin is empty: its next malloc collects and refills. */
  cr_assert_eq(tcache_bin_count(bin), 0);
  void *p = malloc(opaque_size(size));
  cr_assert_not_null(p);
  cr_assert_eq(slab_of(p), s, "the refill after remote frees took a block of another slab");
  cr_assert_neq(p, keeper);
  cr_assert_eq(((struct free_block *)p)->cookie, 0);
  cr_assert_eq(atomic_load(&slab_cold(s)->remote), 0, "the remote list was not collected");
  cr_assert_not(heap_has_pending(me, s));
  cr_assert_gt(tcache_bin_count(bin), 0);
  for (struct free_block *b = bin->head; b; b = b->next)
    cr_assert_eq(slab_of(b), s, "the refill mixed in block %p of another slab", (void *)b);
  cr_assert_eq(s->used, 1 + 1 + tcache_bin_count(bin), "slab used %u: the keeper, the block and %u cached", s->used,
               tcache_bin_count(bin));
  struct hakmem_stats collected = snap();
  cr_assert_eq(collected.remote_frees - before.remote_frees, nremote, "%u remote frees counted as %llu", nremote,
               (unsigned long long)(collected.remote_frees - before.remote_frees));

  free(p);
  for (unsigned i = 0; i < ndrained; i++)
    free(drained[i]);
  for (unsigned i = 0; i < nall; i++)
    if (slab_of(all[i]) != s || all[i] == keeper)
      free(all[i]);
}

/* Four threads free a quarter each of one slab's blocks at once: the
 * lock-free pushes lose none, and the owner gets every one back. The
 * threads start freeing together, once all are created: pthread_create
 * allocates in this thread, and a refill here would collect early. */
struct racing_job {
  struct free_job job;
  pthread_barrier_t *start;
};

/* Every block of s (of 64 B at least) is on its local list, once, and the
 * list ends. */
static void expect_every_block_free_once(struct slab *s)
{
  static unsigned char seen[UNIT_SIZE / 64];
  memset(seen, 0, sizeof seen);
  unsigned on_free_list = 0;
  for (struct free_block *b = s->free; b && on_free_list <= s->capacity; b = b->next) {
    cr_assert(slab_holds_block(s, b), "%p on the free list is not a block of the slab", (void *)b);
    size_t i = (size_t)((char *)b - s->start) / s->block_size;
    cr_assert_eq(seen[i]++, 0, "block %zu is on the free list twice", i);
    on_free_list++;
  }
  cr_assert_eq(on_free_list, s->capacity, "%u blocks on the free list of a slab of %u", on_free_list, s->capacity);
}

static void *free_all_at_once(void *arg)
{
  struct racing_job *r = arg;
  pthread_barrier_wait(r->start);
  return free_all(&r->job);
}

Test(remote, concurrent_remote_frees_all_arrive)
{
  enum { THREADS = 4 };
  const size_t size = 64;
  static void *all[4 * UNIT_SIZE / 64];
  unsigned nall = 0;
  struct slab *s = hold_a_whole_slab(size, all, &nall, NULL);
  static void *blocks[UNIT_SIZE / 64];
  unsigned n = 0;
  for (unsigned i = 0; i < s->capacity; i++)
    blocks[n++] = s->start + (size_t)i * s->block_size;
  pthread_barrier_t start;
  cr_assert_eq(pthread_barrier_init(&start, NULL, THREADS), 0);
  struct racing_job jobs[THREADS];
  pthread_t t[THREADS];
  struct hakmem_stats before = snap();
  for (int i = 0; i < THREADS; i++) {
    jobs[i] = (struct racing_job){ { blocks + i * (n / THREADS), n / THREADS }, &start };
    cr_assert_eq(pthread_create(&t[i], NULL, free_all_at_once, &jobs[i]), 0);
  }
  for (int i = 0; i < THREADS; i++)
    cr_assert_eq(pthread_join(t[i], NULL), 0);
  pthread_barrier_destroy(&start);
  struct hakmem_stats after = snap();
  cr_assert_eq(after.remote_frees, before.remote_frees, "counted before the owner took them back");
  cr_assert_eq(remote_list_length(s), n, "%u blocks freed remotely, %u on the list", n, remote_list_length(s));
  cr_assert(heap_has_pending(hk_tcache.heap, s));
  /* Collect by hand, as the owner does: every block comes back once. */
  unsigned warm = 0;
  cr_assert_eq(slab_collect_remote(s, &warm), n);
  cr_assert_eq(s->used, 0);
  expect_every_block_free_once(s);
}

/* Blocks freed remotely by two threads, each in several chains (its first
 * frees one at a time, then half bins, then its trim), join a local list
 * that holds blocks already, with no walk (warm 0): the chain that queued
 * the slab noted the list's tail. Every block ends up on the local list
 * once, and the list ends. */
Test(remote, remote_chains_join_a_local_list_by_the_noted_tail)
{
  enum { THREADS = 2 };
  const size_t size = 64;
  static void *all[4 * UNIT_SIZE / 64];
  unsigned nall = 0;
  struct slab *s = hold_a_whole_slab(size, all, &nall, NULL);
  unsigned local = s->capacity / 2;
  for (unsigned i = 0; i < local; i++) {
    struct free_block *b = (struct free_block *)(s->start + (size_t)i * s->block_size);
    b->cookie = diag_cookie(b);
    slab_put_local(s, b);
  }
  static void *remote[UNIT_SIZE / 64];
  unsigned nremote = 0;
  for (unsigned i = local; i < s->capacity; i++)
    remote[nremote++] = s->start + (size_t)i * s->block_size;
  struct free_job jobs[THREADS];
  for (int i = 0; i < THREADS; i++) {
    jobs[i] = (struct free_job){ remote + i * (nremote / THREADS), nremote / THREADS };
    run_thread(free_all, &jobs[i]); /* one after the other: two chains */
  }
  cr_assert_eq(remote_list_length(s), nremote);
  cr_assert(heap_has_pending(hk_tcache.heap, s));
  unsigned warm = 0;
  cr_assert_eq(slab_collect_remote(s, &warm), nremote);
  cr_assert_eq(s->used, 0);
  expect_every_block_free_once(s);
  for (unsigned i = 0; i < nall; i++)
    if (slab_of(all[i]) != s)
      free(all[i]);
}

/* ---- exited threads and their heaps ---- */

struct exiting {
  void *kept;         /* allocated, not freed: outlives the thread */
  struct heap *heap;
  struct heap *heap_at_start;
  bool abandoned_flag;
  uint32_t bin_count; /* of the kept block's class, before exit */
};

static void *allocate_and_exit(void *arg)
{
  struct exiting *e = arg;
  e->heap_at_start = hk_tcache.heap;
  e->kept = malloc(opaque_size(100));
  e->heap = hk_tcache.heap;
  e->abandoned_flag = e->heap ? e->heap->abandoned : true;
  void *tmp[50];
  for (int i = 0; i < 50; i++)
    tmp[i] = malloc(opaque_size(100));
  for (int i = 0; i < 50; i++)
    free(tmp[i]);
  e->bin_count = tcache_bin_count(&hk_tcache.bins[size_to_class(100)]);
  return NULL;
}

struct adopting {
  void *foreign; /* a block of the heap it expects to adopt */
  struct heap *heap;
  bool abandoned_flag;
  uint32_t bin_at_attach; /* of the foreign block's class, as adopted */
  uint32_t bin_before, bin_after;
  uint64_t remote_before, remote_after;
};

static void *adopt_and_free(void *arg)
{
  struct adopting *a = arg;
  unsigned cls = slab_of(a->foreign)->cls;
  free(opaque(malloc(opaque_size(16)))); /* attach */
  a->heap = hk_tcache.heap;
  a->abandoned_flag = a->heap->abandoned;
  a->bin_at_attach = tcache_bin_count(&hk_tcache.bins[cls]);
  struct hakmem_stats s;
  hakmem_stats_get(&s);
  a->remote_before = s.remote_frees;
  a->bin_before = tcache_bin_count(&hk_tcache.bins[cls]);
  free(a->foreign);
  a->bin_after = tcache_bin_count(&hk_tcache.bins[cls]);
  hakmem_stats_get(&s);
  a->remote_after = s.remote_frees;
  return NULL;
}

Test(remote, an_exited_threads_heap_is_adopted_by_the_next_thread)
{
  struct exiting e = { 0 };
  run_thread(allocate_and_exit, &e);
  cr_assert_null(e.heap_at_start, "a new thread starts with a heap");
  cr_assert_not_null(e.heap);
  cr_assert_not(e.abandoned_flag, "a live thread's heap is marked abandoned");
  cr_assert_gt(e.bin_count, 0, "test premise: the thread's cache held blocks");
  cr_assert(e.heap->abandoned, "the heap of an exited thread is not abandoned");
  cr_assert_neq(e.heap, hk_tcache.heap);
  struct slab *s = slab_of(e.kept);
  cr_assert_eq(s->owner, e.heap, "the kept block changed owner at thread exit");
  /* The exiting thread's cache stays with its heap, whole, for the next
   * thread: in use in the slab are the kept block and those cached. */
  unsigned cls = size_to_class(100);
  cr_assert(e.heap->stashed, "the exited thread's cache was not kept with its heap");
  cr_assert_eq(e.heap->stash[cls].count, e.bin_count);
  cr_assert_eq(s->used, 1 + e.bin_count, "the slab of the kept block has %u blocks in use after exit", s->used);

  struct adopting a = { .foreign = e.kept };
  run_thread(adopt_and_free, &a);
  cr_assert_eq(a.heap, e.heap, "the next thread took heap %p, not the abandoned %p", (void *)a.heap,
               (void *)e.heap);
  cr_assert_not(a.abandoned_flag, "an adopted heap stays marked abandoned");
  cr_assert_eq(a.bin_at_attach, e.bin_count, "the adopter did not take the exited thread's cache");
  cr_assert_eq(a.bin_after, a.bin_before + 1, "the adopter's free of its heap's block was not cached");
  cr_assert_eq(a.remote_after, a.remote_before, "the adopter's free of its own block counted as remote");
}

/* A burst of threads that all exit: at most eight heaps keep their
 * thread's cache; the others' caches go back to the slabs at exit. */
enum { BURST = 12 };
static pthread_barrier_t burst_barrier;

static void *cache_and_exit(void *arg)
{
  void *tmp[20];
  for (int i = 0; i < 20; i++)
    tmp[i] = malloc(opaque_size(200));
  for (int i = 0; i < 20; i++)
    free(tmp[i]);
  *(struct heap **)arg = hk_tcache.heap;
  pthread_barrier_wait(&burst_barrier); /* all alive at once: each has a heap of its own */
  return NULL;
}

Test(remote, a_burst_of_exiting_threads_leaves_at_most_eight_caches)
{
  struct heap *heaps[BURST];
  pthread_t t[BURST];
  cr_assert_eq(pthread_barrier_init(&burst_barrier, NULL, BURST), 0);
  for (int i = 0; i < BURST; i++)
    cr_assert_eq(pthread_create(&t[i], NULL, cache_and_exit, &heaps[i]), 0);
  for (int i = 0; i < BURST; i++)
    cr_assert_eq(pthread_join(t[i], NULL), 0);
  pthread_barrier_destroy(&burst_barrier);
  unsigned kept = 0, cls = size_to_class(200);
  for (int i = 0; i < BURST; i++) {
    for (int j = 0; j < i; j++)
      cr_assert_neq(heaps[i], heaps[j], "threads alive at once shared a heap");
    if (heaps[i]->stashed) {
      kept++;
      cr_assert_gt(heaps[i]->stash[cls].count, 0, "a kept cache is empty");
    } else {
      cr_assert_null(heaps[i]->stash[cls].head, "a cache not kept still holds blocks");
    }
  }
  cr_assert_gt(kept, 0, "no exited thread's cache was kept");
  cr_assert_leq(kept, 8, "%u caches kept", kept);
}

struct producer {
  void **blocks;
  unsigned n;
  size_t size;
  struct heap *heap;
};

static void *produce_and_exit(void *arg)
{
  struct producer *p = arg;
  for (unsigned i = 0; i < p->n; i++) {
    p->blocks[i] = malloc(opaque_size(p->size));
    if (p->blocks[i])
      memset(p->blocks[i], 0x5A, p->size);
  }
  p->heap = hk_tcache.heap;
  return NULL;
}

Test(remote, frees_into_an_abandoned_heap_are_reclaimed_by_malloc_trim)
{
  enum { N = 8192 };
  const size_t size = 1024; /* 8 MiB: at least four SuperSlabs */
  static void *blocks[N];
  struct producer p = { blocks, N, size, NULL };
  run_thread(produce_and_exit, &p);
  cr_assert(p.heap && p.heap->abandoned);
  struct superslab *ss_seen[64];
  unsigned nss = 0;
  for (unsigned i = 0; i < N; i++) {
    cr_assert_not_null(blocks[i]);
    cr_assert_eq(slab_of(blocks[i])->owner, p.heap);
    struct superslab *ss = superslab_of(blocks[i]);
    unsigned k = 0;
    while (k < nss && ss_seen[k] != ss)
      k++;
    if (k == nss) {
      cr_assert_lt(nss, 64);
      ss_seen[nss++] = ss;
    }
  }
  cr_assert_geq(nss, 4, "8 MiB of blocks in %u SuperSlabs", nss);

  struct hakmem_stats s0 = snap();
  for (unsigned i = 0; i < N; i++)
    free(blocks[i]);
  struct hakmem_stats s1 = snap();
  cr_assert_eq(s1.remote_frees, s0.remote_frees, "counted before anyone took them back");
  cr_assert_eq(s1.ss_live, s0.ss_live, "SuperSlabs of an abandoned heap left before a trim");
  cr_assert_not_null(atomic_load(&p.heap->pending));

  cr_assert_eq(malloc_trim(0), 1, "malloc_trim released nothing");
  struct hakmem_stats s2 = snap();
  cr_assert_null(atomic_load(&p.heap->pending), "the abandoned heap's pending list was not collected");
  cr_assert_eq(s2.remote_frees - s1.remote_frees, N, "frees into an abandoned heap are remote frees");
  cr_assert_geq(s1.bytes_in_use - s2.bytes_in_use, (uint64_t)N * size, "bytes_in_use fell by %llu only",
                (unsigned long long)(s1.bytes_in_use - s2.bytes_in_use));
  cr_assert_geq(s1.ss_live - s2.ss_live, nss - 1, "ss_live %llu -> %llu: the heap's %u SuperSlabs stayed",
                (unsigned long long)s1.ss_live, (unsigned long long)s2.ss_live, nss);
  cr_assert_geq(s2.ss_unmapped_total - s1.ss_unmapped_total, nss - 1);
  cr_assert_eq(s2.ss_cached, 0, "malloc_trim left %llu SuperSlabs cached", (unsigned long long)s2.ss_cached);
  unsigned gone = 0;
  for (unsigned k = 0; k < nss; k++)
    gone += region_map_kind((uintptr_t)ss_seen[k]) == REGION_NONE;
  cr_assert_geq(gone, nss - 1, "%u of the abandoned heap's %u SuperSlabs are still mapped", nss - gone, nss);
}
