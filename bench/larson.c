/* larson: a server-like load with cross-thread frees, after Larson and
 * Krishnan's benchmark.
 *
 * Each of `threads` workers owns an array of `slots` blocks; an op frees a
 * random slot's block and mallocs a new one of min..max bytes, writing its
 * first byte. Every `epoch` ops a worker trades its array through a shared
 * mailbox for one another live thread filled, so most frees are of blocks
 * another thread allocated. Workers live for `ops` ops; `gens` generations
 * of fresh threads inherit the arrays, as in larson. The main thread fills
 * the arrays first. An op is one malloc or one free. Figure: ops/s. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "workload.h"

#define WORKLOAD "larson"
#define MAX_THREADS 256

static struct bench_param params[] = {
    {"threads", 4, "worker threads per generation (at most 256)"},
    {"gens", 10, "generations of workers"},
    {"ops", 100000, "free+malloc pairs per worker"},
    {"slots", 1000, "blocks per worker array"},
    {"epoch", 1000, "pairs between trades of arrays"},
    {"min", 16, "smallest block in bytes"},
    {"max", 1024, "largest block in bytes"},
    {"seed", 42, "xorshift32 seed (not 0)"},
};
#define NPARAMS (sizeof params / sizeof params[0])

struct shape {
  uint64_t ops, slots, epoch, min, max;
};

struct worker {
  pthread_t thread;
  const struct shape *shape;
  char **array;
  uint32_t seed;
};

static _Atomic(char **) mailbox;

static void *work(void *arg) {
  struct worker *w = arg;
  const struct shape *s = w->shape;
  uint32_t state = w->seed;
  char **array = w->array;
  for (uint64_t i = 1; i <= s->ops; i++) {
    char **slot = &array[bench_xorshift32(&state) % s->slots];
    free(*slot);
    *slot = malloc(bench_uniform(&state, s->min, s->max));
    if (*slot == NULL)
      bench_fail(WORKLOAD, "malloc returned NULL");
    (*slot)[0] = (char)i;
    if (i % s->epoch == 0)
      array = atomic_exchange(&mailbox, array);
  }
  w->array = array;
  return NULL;
}

static char **new_array(const struct shape *s, uint32_t *state) {
  char **array = malloc(s->slots * sizeof *array);
  if (array == NULL)
    bench_fail(WORKLOAD, "malloc returned NULL");
  for (uint64_t i = 0; i < s->slots; i++) {
    array[i] = malloc(bench_uniform(state, s->min, s->max));
    if (array[i] == NULL)
      bench_fail(WORKLOAD, "malloc returned NULL");
    array[i][0] = 1;
  }
  return array;
}

static void free_array(char **array, uint64_t slots) {
  for (uint64_t i = 0; i < slots; i++)
    free(array[i]);
  free(array);
}

/* One generation: start the workers, wait for them, rotate the arrays so
 * the next generation's thread i inherits what thread i+1 held. */
static void generation(struct worker *workers, uint32_t nthreads, uint32_t *state) {
  for (uint32_t i = 0; i < nthreads; i++) {
    workers[i].seed = bench_xorshift32(state) | 1;
    if (pthread_create(&workers[i].thread, NULL, work, &workers[i]) != 0)
      bench_fail(WORKLOAD, "pthread_create failed");
  }
  for (uint32_t i = 0; i < nthreads; i++)
    pthread_join(workers[i].thread, NULL);
  char **first = workers[0].array;
  for (uint32_t i = 0; i + 1 < nthreads; i++)
    workers[i].array = workers[i + 1].array;
  workers[nthreads - 1].array = first;
}

int main(int argc, char **argv) {
  bench_parse_params(argc, argv, WORKLOAD, params, NPARAMS);
  struct shape s = {bench_param(params, NPARAMS, "ops"), bench_param(params, NPARAMS, "slots"),
                    bench_param(params, NPARAMS, "epoch"), bench_param(params, NPARAMS, "min"),
                    bench_param(params, NPARAMS, "max")};
  uint64_t nthreads = bench_param(params, NPARAMS, "threads");
  uint64_t gens = bench_param(params, NPARAMS, "gens");
  uint32_t state = (uint32_t)bench_param(params, NPARAMS, "seed");
  if (state == 0 || nthreads == 0 || nthreads > MAX_THREADS || s.slots == 0 || s.epoch == 0 ||
      s.min == 0 || s.min > s.max)
    bench_fail(WORKLOAD, "need seed, slots, epoch > 0, 1..256 threads, 0 < min <= max");

  static struct worker workers[MAX_THREADS];
  for (uint64_t i = 0; i < nthreads; i++)
    workers[i] = (struct worker){.shape = &s, .array = new_array(&s, &state)};
  atomic_store(&mailbox, new_array(&s, &state));

  uint64_t start = bench_now_ns();
  for (uint64_t g = 0; g < gens; g++)
    generation(workers, (uint32_t)nthreads, &state);
  double wall_s = (double)(bench_now_ns() - start) / 1e9;

  for (uint64_t i = 0; i < nthreads; i++)
    free_array(workers[i].array, s.slots);
  free_array(atomic_load(&mailbox), s.slots);
  uint64_t ops = 2 * s.ops * nthreads * gens;
  char extra[96];
  snprintf(extra, sizeof extra, " ops=%llu threads=%llu gens=%llu", (unsigned long long)ops,
           (unsigned long long)nthreads, (unsigned long long)gens);
  bench_print_result(WORKLOAD, "ops_per_s", (double)ops / wall_s, 1, wall_s, extra);
  return 0;
}
