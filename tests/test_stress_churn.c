/* Description: thread churn. 2,000 short-lived threads, four at a time,
 * each allocate and free a few hundred blocks and leave some blocks for
 * the main thread to free after they are gone. A thread's cache and the
 * slabs it owned must come back when it exits: RSS must not grow with the
 * number of threads that have lived. Also: 256 threads alive at once, and
 * pthread key destructors that free and allocate after hakmem's own
 * thread-exit hook has run, in every destructor round glibc makes. */
#include "helpers.h"
#include "hakmem.h"

#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>

#define THREADS 2000
#define AT_ONCE 4
#define BLOCKS 300  /* allocated and freed by each thread */
#define LEFT 32     /* allocated by each thread, freed by main after join */

struct churn {
  pthread_t thread;
  unsigned seed;
  void *left[LEFT];
  size_t left_size[LEFT];
  int bad;
};

static size_t churn_size(uint64_t *rng)
{
  uint64_t r = xorshift64(rng);
  if (r % 50 == 0)
    return 40 * KiB + (r >> 8) % (60 * KiB); /* a few large blocks */
  return 1 + (r >> 8) % 2048;
}

static void *churn_thread(void *arg)
{
  struct churn *c = arg;
  uint64_t rng = mix64(c->seed) | 1;
  void *blocks[BLOCKS];
  size_t sizes[BLOCKS];
  for (int i = 0; i < BLOCKS; i++) {
    sizes[i] = churn_size(&rng);
    blocks[i] = malloc(launder_size(sizes[i]));
    if (!blocks[i]) {
      c->bad++;
      continue;
    }
    pattern_fill(blocks[i], sizes[i], c->seed, (uint64_t)i);
  }
  for (int i = 0; i < BLOCKS; i++) {
    if (blocks[i] && pattern_check(blocks[i], sizes[i], c->seed, (uint64_t)i) != (size_t)-1)
      c->bad++;
    free(blocks[i]);
  }
  for (int i = 0; i < LEFT; i++) {
    c->left_size[i] = churn_size(&rng);
    c->left[i] = malloc(launder_size(c->left_size[i]));
    if (!c->left[i])
      c->bad++;
    else
      pattern_fill(c->left[i], c->left_size[i], c->seed, 1000u + (uint64_t)i);
  }
  return NULL;
}

/* Run `count` threads, AT_ONCE at a time; main frees what they left. */
static void churn(unsigned first_seed, int count)
{
  static struct churn c[AT_ONCE];
  for (int base = 0; base < count; base += AT_ONCE) {
    for (int k = 0; k < AT_ONCE; k++) {
      c[k] = (struct churn){.seed = first_seed + (unsigned)(base + k)};
      int rc = pthread_create(&c[k].thread, NULL, churn_thread, &c[k]);
      cr_assert_eq(rc, 0, "pthread_create: %s", strerror(rc));
    }
    for (int k = 0; k < AT_ONCE; k++) {
      pthread_join(c[k].thread, NULL);
      cr_assert_eq(c[k].bad, 0, "thread %u saw %d bad blocks", c[k].seed, c[k].bad);
      for (int i = 0; i < LEFT; i++) {
        size_t bad = pattern_check(c[k].left[i], c[k].left_size[i], c[k].seed, 1000u + (uint64_t)i);
        cr_assert_eq(bad, (size_t)-1, "a block left by an exited thread changed at %zu", bad);
        free(c[k].left[i]);
      }
    }
  }
}

/* Each thread holds about 700 KiB at once (294 small blocks of 1 KiB on
 * average, 6 large ones of 70 KiB), so 2,000 threads whose caches or
 * slabs were never reclaimed would leave over 1 GiB resident. A warm-up
 * of 100 threads first fills what is legitimately kept: the LRU of empty
 * SuperSlabs (its pages released by the default lazy-zero policy, and at
 * most 32 SuperSlabs = 64 MiB even when kept) and glibc's cache of thread
 * stacks. After it, the other 1,900 threads may add at most 64 MiB: a
 * leak of a mere 35 KiB per thread would exceed that. */
Test(stress_churn, short_lived_threads_do_not_grow_rss, .timeout = 120)
{
  churn(1, 100);
  size_t rss0 = rss_bytes();
  churn(1000, THREADS - 100);
  size_t rss1 = rss_bytes();
  cr_assert_lt(rss1, rss0 + 64 * MiB, "RSS grew by %zu MiB over %d threads (from %zu MiB)",
               (rss1 - rss0) / MiB, THREADS - 100, rss0 / MiB);
}

/* Threads that fill and free 24 MiB each, in a shuffled order, and exit:
 * their caches hold scattered blocks of most SuperSlabs they filled. No
 * new thread comes to adopt them; main goes on allocating a few blocks.
 * What the caches held goes back to the kernel once they have waited
 * 100 ms, on main's refills. */
#define FILL_BYTES ((size_t)24 << 20)

static void *fill_shuffle_free(void *arg)
{
  uint64_t rng = (uintptr_t)arg * 7919 + 1;
  size_t cap = FILL_BYTES / 16, n = 0, total = 0;
  void **v = malloc(cap * sizeof *v);
  cr_assert_not_null(v);
  while (total < FILL_BYTES && n < cap) {
    size_t size = 16 + xorshift64(&rng) % 1009;
    v[n] = malloc(launder_size(size));
    cr_assert_not_null(v[n]);
    memset(v[n], 1, size);
    total += size;
    n++;
  }
  for (size_t i = n - 1; i > 0; i--) {
    size_t j = xorshift64(&rng) % (i + 1);
    void *t = v[i];
    v[i] = v[j];
    v[j] = t;
  }
  for (size_t i = 0; i < n; i++) free(v[i]);
  free(v);
  return NULL;
}

/* Main's refills, every 20 ms for `rounds` rounds or until RSS is below
 * `limit`: more blocks than its cache holds, allocated and freed. The
 * RSS at the end. */
static size_t refill_until_rss_below(size_t limit, int rounds)
{
  static void *few[4096];
  size_t rss = rss_bytes();
  for (int round = 0; round < rounds && rss > limit; round++) {
    struct timespec wait = { 0, 20 * 1000 * 1000 };
    nanosleep(&wait, NULL);
    for (int i = 0; i < 4096; i++) few[i] = malloc(launder_size(48));
    for (int i = 0; i < 4096; i++) free(few[i]);
    rss = rss_bytes();
  }
  return rss;
}

Test(stress_churn, exited_threads_caches_go_back_without_a_new_thread, .timeout = 120)
{
  enum { N = 4 };
  pthread_t t[N];
  size_t rss0 = rss_bytes();
  for (int i = 0; i < N; i++) cr_assert_eq(pthread_create(&t[i], NULL, fill_shuffle_free, (void *)(uintptr_t)(i + 1)), 0);
  for (int i = 0; i < N; i++) cr_assert_eq(pthread_join(t[i], NULL), 0);
  size_t rss1 = rss_bytes();
  size_t rss2 = refill_until_rss_below(rss0 + 16 * MiB, 100);
  cr_assert_lt(rss2, rss0 + 16 * MiB, "RSS %zu MiB 2 s after %d threads exited (%zu MiB before them, %zu MiB at the exit)",
               rss2 / MiB, N, rss0 / MiB, rss1 / MiB);
}

/* Blocks of an exited thread, freed by main after that thread's heap was
 * reclaimed: they reach the heap's pending lists, and go back, and their
 * SuperSlabs to the kernel, on main's refills. */
#define PRODUCED (64 * 1024 * 1024 / 256)
static void *produced[PRODUCED];

static void *produce(void *arg)
{
  (void)arg;
  for (int i = 0; i < PRODUCED; i++) {
    produced[i] = malloc(launder_size(256));
    cr_assert_not_null(produced[i]);
    memset(produced[i], 3, 256);
  }
  return NULL;
}

Test(stress_churn, blocks_freed_to_a_reclaimed_heap_go_back, .timeout = 120)
{
  pthread_t t;
  size_t rss0 = rss_bytes();
  cr_assert_eq(pthread_create(&t, NULL, produce, NULL), 0);
  cr_assert_eq(pthread_join(t, NULL), 0);
  refill_until_rss_below(0, 10); /* 200 ms of main's refills: the heap's reclaim */
  for (int i = 0; i < PRODUCED; i++) free(produced[i]);
  size_t rss1 = rss_bytes();
  size_t rss2 = refill_until_rss_below(rss0 + 16 * MiB, 100);
  cr_assert_lt(rss2, rss0 + 16 * MiB, "RSS %zu MiB 2 s after main freed an exited thread's 64 MiB (%zu MiB before, %zu MiB after the frees)",
               rss2 / MiB, rss0 / MiB, rss1 / MiB);
}

/* Blocks allocated by threads that have exited are reused: the slabs of a
 * dead thread are adopted, not leaked. Threads allocate and exit leaving
 * everything; main frees it all; the next wave must fit in the same RSS. */
static void *leave_all(void *arg)
{
  void **out = arg;
  for (int i = 0; i < 2000; i++) {
    out[i] = malloc(launder_size(64 + (size_t)(i % 8) * 64));
    if (out[i])
      memset(out[i], 0x5A, 64);
  }
  return NULL;
}

Test(stress_churn, orphaned_blocks_are_reused, .timeout = 120)
{
  enum { WAVES = 60, PER_WAVE = 4 };
  static void *blocks[PER_WAVE][2000];
  size_t rss0 = 0;
  for (int wave = 0; wave < WAVES; wave++) {
    pthread_t t[PER_WAVE];
    for (int k = 0; k < PER_WAVE; k++)
      cr_assert_eq(pthread_create(&t[k], NULL, leave_all, blocks[k]), 0);
    for (int k = 0; k < PER_WAVE; k++)
      pthread_join(t[k], NULL);
    for (int k = 0; k < PER_WAVE; k++)
      for (int i = 0; i < 2000; i++) {
        cr_assert_not_null(blocks[k][i]);
        free(blocks[k][i]);
      }
    if (wave == 4)
      rss0 = rss_bytes();
  }
  /* Each wave holds about 2.3 MiB; 55 waves without reuse would add
   * over 120 MiB. */
  size_t rss1 = rss_bytes();
  cr_assert_lt(rss1, rss0 + 32 * MiB, "RSS grew by %zu MiB over %d waves", (rss1 - rss0) / MiB,
               WAVES - 5);
}

/* Many threads alive at once: every one gets a heap of its own. 256
 * threads wait at a barrier so that all are alive together, allocate,
 * free half and leave half to main. */
#define MANY 256
static pthread_barrier_t many_barrier;

struct many {
  pthread_t thread;
  int id;
  void *left[16];
  int bad;
};

static void *many_thread(void *arg)
{
  struct many *m = arg;
  void *mine[32];
  pthread_barrier_wait(&many_barrier);
  for (int i = 0; i < 32; i++) {
    size_t size = 16 + (size_t)((m->id * 31 + i * 17) % 3000);
    mine[i] = malloc(launder_size(size));
    if (!mine[i]) {
      m->bad++;
      continue;
    }
    pattern_fill(mine[i], size, (uint64_t)m->id, (uint64_t)i);
  }
  pthread_barrier_wait(&many_barrier);
  for (int i = 0; i < 32; i++) {
    size_t size = 16 + (size_t)((m->id * 31 + i * 17) % 3000);
    if (mine[i] && pattern_check(mine[i], size, (uint64_t)m->id, (uint64_t)i) != (size_t)-1)
      m->bad++;
    if (i % 2)
      free(mine[i]);
    else
      m->left[i / 2] = mine[i];
  }
  return NULL;
}

Test(stress_churn, many_threads_alive_at_once, .timeout = 120)
{
  static struct many m[MANY];
  cr_assert_eq(pthread_barrier_init(&many_barrier, NULL, MANY), 0);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 256 * KiB);
  for (int round = 0; round < 3; round++) {
    for (int k = 0; k < MANY; k++) {
      m[k] = (struct many){.id = round * MANY + k};
      int rc = pthread_create(&m[k].thread, &attr, many_thread, &m[k]);
      cr_assert_eq(rc, 0, "pthread_create %d: %s", k, strerror(rc));
    }
    for (int k = 0; k < MANY; k++) {
      pthread_join(m[k].thread, NULL);
      cr_assert_eq(m[k].bad, 0, "thread %d saw %d bad blocks", m[k].id, m[k].bad);
      for (int i = 0; i < 16; i++) {
        size_t size = 16 + (size_t)((m[k].id * 31 + i * 2 * 17) % 3000);
        cr_assert_eq(pattern_check(m[k].left[i], size, (uint64_t)m[k].id, (uint64_t)(i * 2)),
                     (size_t)-1, "a block left by thread %d changed", m[k].id);
        free(m[k].left[i]);
      }
    }
  }
  pthread_attr_destroy(&attr);
  pthread_barrier_destroy(&many_barrier);
}

/* Thread-exit ordering: destructors of pthread keys created after hakmem's
 * own key, and C++-style thread_local destructors, run after or around
 * hakmem's thread-exit hook; they still free and allocate. */
static pthread_key_t late_key;
static _Atomic long late_ok;

static void late_destructor(void *p)
{
  size_t bad = pattern_check(p, 200, 7, 7);
  free(p);
  void *q = malloc(launder_size(3000)); /* allocating after the thread's heap went back */
  if (q) {
    memset(q, 0x11, 3000);
    void *r = realloc(q, launder_size(100000));
    if (r) {
      free(r);
      if (bad == (size_t)-1)
        late_ok++;
    }
  }
}

static void *late_thread(void *arg)
{
  (void)arg;
  void *p = malloc(launder_size(200));
  if (!p)
    return NULL;
  pattern_fill(p, 200, 7, 7);
  pthread_setspecific(late_key, p);
  /* Enough blocks cached that the thread's cache is worth returning. */
  void *tmp[100];
  for (int i = 0; i < 100; i++)
    tmp[i] = malloc(launder_size(64));
  for (int i = 0; i < 100; i++)
    free(tmp[i]);
  return NULL;
}

/* A key created after some others has a higher index than hakmem's: its
 * destructor runs after hakmem's in each round. */
static void create_late_key(pthread_key_t *key, void (*destructor)(void *))
{
  pthread_key_t filler[40];
  for (int i = 0; i < 40; i++)
    cr_assert_eq(pthread_key_create(&filler[i], NULL), 0);
  cr_assert_eq(pthread_key_create(key, destructor), 0);
}

Test(stress_churn, key_destructors_allocate_at_thread_exit, .timeout = 120)
{
  create_late_key(&late_key, late_destructor);
  enum { N = 200 };
  for (int i = 0; i < N; i++) {
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, late_thread, NULL), 0);
    pthread_join(t, NULL);
  }
  cr_assert_eq(late_ok, N, "%ld of %d key destructors could free, malloc and realloc", late_ok, N);
}

/* A destructor that allocates in every round glibc runs (it calls the
 * destructors of keys set again, PTHREAD_DESTRUCTOR_ITERATIONS times):
 * the blocks of the last round come from a heap no later round abandons.
 * It must not be kept: with a heap (2 MiB) per thread, 1,000 threads would
 * leave 2 GiB mapped. */
static pthread_key_t every_round_key;
static __thread int rounds_seen;

static void every_round_destructor(void *p)
{
  free(p);
  void *q = malloc(launder_size(100));
  if (++rounds_seen < PTHREAD_DESTRUCTOR_ITERATIONS)
    pthread_setspecific(every_round_key, q);
  else
    free(q);
}

static void *every_round_thread(void *arg)
{
  (void)arg;
  pthread_setspecific(every_round_key, malloc(launder_size(100)));
  return NULL;
}

Test(stress_churn, a_destructor_allocating_in_every_round_leaks_no_heap, .timeout = 120)
{
  create_late_key(&every_round_key, every_round_destructor);
  struct hakmem_stats before, after;
  hakmem_stats_get(&before);
  enum { N = 1000 };
  for (int i = 0; i < N; i++) {
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, every_round_thread, NULL), 0);
    pthread_join(t, NULL);
  }
  hakmem_stats_get(&after);
  int64_t grew = (int64_t)after.bytes_mapped - (int64_t)before.bytes_mapped;
  cr_assert_lt(grew, 64 << 20, "%d threads left %lld MiB more mapped", N, (long long)(grew >> 20));
}
