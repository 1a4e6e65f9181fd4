/* prodcons: producer/consumer threads.
 *
 * `pairs` pairs of threads; each producer mallocs `items` blocks of
 * min..max bytes, writes the first byte and passes them through a
 * single-producer single-consumer ring to its consumer, which reads the
 * byte and frees the block: every free is a cross-thread free. An op is
 * one malloc or one free. Figure: ops/s. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "workload.h"

#define WORKLOAD "prodcons"
#define MAX_PAIRS 64
#define RING_MAX 4096
#define SPINS_BEFORE_YIELD 4096

static struct bench_param params[] = {
    {"pairs", 1, "producer/consumer pairs (at most 64)"},
    {"items", 4000000, "blocks passed per pair"},
    {"min", 16, "smallest block in bytes"},
    {"max", 1024, "largest block in bytes"},
    {"depth", 1024, "blocks a producer may run ahead, a power of two (at most 4096)"},
    {"seed", 42, "xorshift32 seed (not 0)"},
};
#define NPARAMS (sizeof params / sizeof params[0])

struct ring {
  _Alignas(64) _Atomic uint64_t head; /* written by the producer */
  _Alignas(64) _Atomic uint64_t tail; /* written by the consumer */
  _Alignas(64) char *slot[RING_MAX];
  uint64_t items, min, max, depth;
  uint32_t seed;
};

/* Spin while the other side is running on the other CPU; yield when it
 * seems not to be (more threads than CPUs). */
static void backoff(unsigned *spins) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
  if (++*spins >= SPINS_BEFORE_YIELD) {
    *spins = 0;
    sched_yield();
  }
}

static void *produce(void *arg) {
  struct ring *r = arg;
  uint32_t state = r->seed;
  for (uint64_t i = 0; i < r->items; i++) {
    char *p = malloc(bench_uniform(&state, r->min, r->max));
    if (p == NULL)
      bench_fail(WORKLOAD, "malloc returned NULL");
    p[0] = (char)i;
    unsigned spins = 0;
    while (i - atomic_load_explicit(&r->tail, memory_order_acquire) >= r->depth)
      backoff(&spins);
    r->slot[i % r->depth] = p;
    atomic_store_explicit(&r->head, i + 1, memory_order_release);
  }
  return NULL;
}

static void *consume(void *arg) {
  struct ring *r = arg;
  uint64_t sum = 0;
  for (uint64_t i = 0; i < r->items; i++) {
    unsigned spins = 0;
    while (atomic_load_explicit(&r->head, memory_order_acquire) == i)
      backoff(&spins);
    char *p = r->slot[i % r->depth];
    sum += (unsigned char)p[0];
    free(p);
    atomic_store_explicit(&r->tail, i + 1, memory_order_release);
  }
  bench_sink += sum;
  return NULL;
}

int main(int argc, char **argv) {
  bench_parse_params(argc, argv, WORKLOAD, params, NPARAMS);
  uint64_t npairs = bench_param(params, NPARAMS, "pairs");
  uint64_t items = bench_param(params, NPARAMS, "items");
  uint64_t min = bench_param(params, NPARAMS, "min");
  uint64_t max = bench_param(params, NPARAMS, "max");
  uint64_t depth = bench_param(params, NPARAMS, "depth");
  uint32_t state = (uint32_t)bench_param(params, NPARAMS, "seed");
  if (state == 0 || npairs == 0 || npairs > MAX_PAIRS || min == 0 || min > max || depth == 0 || depth > RING_MAX ||
      (depth & (depth - 1)))
    bench_fail(WORKLOAD, "need seed > 0, 1..64 pairs, 0 < min <= max, depth a power of two up to 4096");

  static struct ring rings[MAX_PAIRS];
  pthread_t threads[2 * MAX_PAIRS];
  uint64_t start = bench_now_ns();
  for (uint64_t i = 0; i < npairs; i++) {
    rings[i] = (struct ring){.items = items, .min = min, .max = max, .depth = depth};
    rings[i].seed = bench_xorshift32(&state) | 1;
    if (pthread_create(&threads[2 * i], NULL, produce, &rings[i]) != 0 ||
        pthread_create(&threads[2 * i + 1], NULL, consume, &rings[i]) != 0)
      bench_fail(WORKLOAD, "pthread_create failed");
  }
  for (uint64_t i = 0; i < 2 * npairs; i++)
    pthread_join(threads[i], NULL);
  double wall_s = (double)(bench_now_ns() - start) / 1e9;

  uint64_t ops = 2 * items * npairs;
  char extra[96];
  snprintf(extra, sizeof extra, " ops=%llu pairs=%llu", (unsigned long long)ops,
           (unsigned long long)npairs);
  bench_print_result(WORKLOAD, "ops_per_s", (double)ops / wall_s, 1, wall_s, extra);
  return 0;
}
