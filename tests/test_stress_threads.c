/* Description: cross-thread frees under load. Producer threads malloc
 * blocks, fill them with a pattern of (producer, sequence) and hand them
 * through a lock-protected ring to consumer threads, which check the
 * pattern and free them: every block is freed by a thread that did not
 * allocate it. A second test has four threads that each both produce and
 * consume. Consumers realloc one block in eight before freeing it (a
 * realloc of another thread's block). Memory freed remotely must be
 * reused: RSS stays bounded while far more than that passes through. */
#include "helpers.h"

#include <hakmem.h>
#include <malloc.h>
#include <pthread.h>

#define RING_SLOTS 1024

struct item {
  void *p;
  size_t size;
  uint64_t tag;
};

struct ring {
  pthread_mutex_t lock;
  pthread_cond_t not_empty, not_full;
  struct item items[RING_SLOTS];
  size_t head, count;
  int producers_left;
};

static struct ring ring = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .not_empty = PTHREAD_COND_INITIALIZER,
    .not_full = PTHREAD_COND_INITIALIZER,
};

static void ring_put(struct item it)
{
  pthread_mutex_lock(&ring.lock);
  while (ring.count == RING_SLOTS)
    pthread_cond_wait(&ring.not_full, &ring.lock);
  ring.items[(ring.head + ring.count) % RING_SLOTS] = it;
  ring.count++;
  pthread_cond_signal(&ring.not_empty);
  pthread_mutex_unlock(&ring.lock);
}

/* Returns 0 when the ring is empty and no producer is left. */
static int ring_get(struct item *it)
{
  pthread_mutex_lock(&ring.lock);
  while (ring.count == 0 && ring.producers_left > 0)
    pthread_cond_wait(&ring.not_empty, &ring.lock);
  if (ring.count == 0) {
    pthread_mutex_unlock(&ring.lock);
    return 0;
  }
  *it = ring.items[ring.head];
  ring.head = (ring.head + 1) % RING_SLOTS;
  ring.count--;
  pthread_cond_signal(&ring.not_full);
  pthread_mutex_unlock(&ring.lock);
  return 1;
}

/* Non-blocking variants for threads that also produce. */
static int ring_try_get(struct item *it)
{
  int got = 0;
  pthread_mutex_lock(&ring.lock);
  if (ring.count > 0) {
    *it = ring.items[ring.head];
    ring.head = (ring.head + 1) % RING_SLOTS;
    ring.count--;
    got = 1;
    pthread_cond_signal(&ring.not_full);
  }
  pthread_mutex_unlock(&ring.lock);
  return got;
}

static int ring_try_put(const struct item *it)
{
  int put = 0;
  pthread_mutex_lock(&ring.lock);
  if (ring.count < RING_SLOTS) {
    ring.items[(ring.head + ring.count) % RING_SLOTS] = *it;
    ring.count++;
    put = 1;
    pthread_cond_signal(&ring.not_empty);
  }
  pthread_mutex_unlock(&ring.lock);
  return put;
}

static void producer_done(void)
{
  pthread_mutex_lock(&ring.lock);
  ring.producers_left--;
  pthread_cond_broadcast(&ring.not_empty);
  pthread_mutex_unlock(&ring.lock);
}

/* Mostly small blocks, some of every size up to 256 KiB. */
static size_t draw_size(uint64_t *rng)
{
  uint64_t r = xorshift64(rng);
  switch (r % 64) {
  case 0:
    return 40 * KiB + (r >> 8) % (216 * KiB);
  case 1:
  case 2:
    return 1 + (r >> 8) % (40 * KiB);
  default:
    return 1 + (r >> 8) % 1024;
  }
}

struct worker {
  pthread_t thread;
  int id;
  long blocks;
  long bad;     /* pattern mismatches seen */
  long nulls;   /* allocation failures */
  long consumed;
};

static void make_item(struct worker *w, uint64_t *rng, long seq, struct item *it)
{
  it->size = draw_size(rng);
  it->tag = ((uint64_t)w->id << 40) | (uint64_t)seq;
  it->p = malloc(launder_size(it->size));
  if (it->p)
    pattern_fill(it->p, it->size, it->tag, 0);
  else
    w->nulls++;
}

/* Check, sometimes realloc (a block of another thread: shrink, grow, or
 * move to another size class), check again, free. */
static void consume_item(struct worker *w, const struct item *it)
{
  if (!it->p)
    return;
  if (pattern_check(it->p, it->size, it->tag, 0) != (size_t)-1)
    w->bad++;
  if (malloc_usable_size(it->p) < it->size)
    w->bad++;
  void *p = it->p;
  if (it->tag % 8 == 3) {
    size_t size = it->tag % 16 == 3 ? it->size / 2 + 1 : it->size * 2 + 100;
    void *q = realloc(p, launder_size(size));
    if (!q) {
      w->nulls++;
    } else {
      size_t keep = size < it->size ? size : it->size;
      if (pattern_check(q, keep, it->tag, 0) != (size_t)-1)
        w->bad++;
      p = q;
    }
  }
  free(p);
  w->consumed++;
}

static void *producer(void *arg)
{
  struct worker *w = arg;
  uint64_t rng = 0x9E3779B97F4A7C15ULL * (uint64_t)(w->id + 1);
  for (long i = 0; i < w->blocks; i++) {
    struct item it;
    make_item(w, &rng, i, &it);
    ring_put(it);
    /* Some thread-local churn between hand-offs. */
    if (i % 16 == 0) {
      void *tmp = malloc(launder_size(draw_size(&rng)));
      if (!tmp)
        w->nulls++;
      free(tmp);
    }
  }
  producer_done();
  return NULL;
}

static void *consumer(void *arg)
{
  struct worker *w = arg;
  struct item it;
  while (ring_get(&it))
    consume_item(w, &it);
  return NULL;
}

/* Each thread produces and consumes; a block is freed by whichever thread
 * takes it, usually not its allocator. The ring fills up, so a block waits
 * while about a thousand others pass: the threads interleave freely. A
 * thread that finds the ring full consumes instead of waiting (all four
 * waiting on a full ring would never wake). */
static void *mixed(void *arg)
{
  struct worker *w = arg;
  uint64_t rng = 0xD1B54A32D192ED03ULL * (uint64_t)(w->id + 1);
  struct item it, other;
  for (long i = 0; i < w->blocks; i++) {
    make_item(w, &rng, i, &it);
    while (!ring_try_put(&it))
      if (ring_try_get(&other))
        consume_item(w, &other);
    if (xorshift64(&rng) % 2 && ring_try_get(&other))
      consume_item(w, &other);
  }
  producer_done();
  while (ring_get(&it))
    consume_item(w, &it);
  return NULL;
}

static void run(int nthreads, void *(*fn_even)(void *), void *(*fn_odd)(void *), int producers,
                long blocks_per_producer)
{
  struct worker w[8];
  cr_assert_leq(nthreads, 8);
  ring.producers_left = producers;
  struct hakmem_stats before;
  hakmem_stats_get(&before);
  size_t rss0 = rss_bytes();
  for (int i = 0; i < nthreads; i++) {
    w[i] = (struct worker){.id = i, .blocks = blocks_per_producer};
    void *(*fn)(void *) = i % 2 == 0 ? fn_even : fn_odd;
    cr_assert_eq(pthread_create(&w[i].thread, NULL, fn, &w[i]), 0);
  }
  long consumed = 0;
  for (int i = 0; i < nthreads; i++) {
    pthread_join(w[i].thread, NULL);
    cr_assert_eq(w[i].bad, 0, "thread %d saw %ld corrupted blocks", i, w[i].bad);
    cr_assert_eq(w[i].nulls, 0, "thread %d saw %ld allocation failures", i, w[i].nulls);
    consumed += w[i].consumed;
  }
  cr_assert_eq(consumed, producers * blocks_per_producer, "blocks lost in the ring");
  cr_assert_eq(ring.count, 0);

  /* About 1 GiB (300,000 blocks of 3.4 KiB on average) passed through a
   * ring of 1024 blocks (about 4 MiB live): if remotely freed memory were
   * not reused RSS would grow by hundreds of MiB. 96 MiB leaves room for thread caches, slabs held
   * by four threads, the SuperSlab cache and the four threads' caches of
   * large runs, 8 MiB each: 57-63 MiB grown in twelve runs, two at a
   * time, and 30-34 MiB in eight when those caches held 2 MiB. */
  size_t rss1 = rss_bytes();
  cr_assert_lt(rss1, rss0 + 96 * MiB, "RSS grew by %zu MiB", (rss1 - rss0) / MiB);

  struct hakmem_stats after;
  hakmem_stats_get(&after);
  cr_assert_gt(after.remote_frees, before.remote_frees, "no remote free was counted");
}

Test(stress_threads, producers_and_consumers, .timeout = 120)
{
  run(4, producer, consumer, 2, 150000);
}

Test(stress_threads, all_threads_produce_and_consume, .timeout = 120)
{
  run(4, mixed, mixed, 4, 75000);
}
