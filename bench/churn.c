/* churn: thread churn.
 *
 * `waves` times, start `threads` threads; each mallocs `blocks` blocks of
 * min..max bytes, writes their first byte, frees half of them and exits;
 * the main thread then frees the other half (frees of an exited thread's
 * blocks). Figure: threads started and finished per second. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "workload.h"

#define WORKLOAD "churn"
#define MAX_THREADS 256

static struct bench_param params[] = {
    {"waves", 500, "waves of threads"},
    {"threads", 4, "threads per wave (at most 256)"},
    {"blocks", 1000, "blocks each thread mallocs"},
    {"min", 16, "smallest block in bytes"},
    {"max", 1024, "largest block in bytes"},
    {"seed", 42, "xorshift32 seed (not 0)"},
};
#define NPARAMS (sizeof params / sizeof params[0])

struct worker {
  pthread_t thread;
  char **kept; /* the blocks left for the main thread to free */
  uint64_t blocks, min, max;
  uint32_t seed;
};

static void *work(void *arg) {
  struct worker *w = arg;
  uint32_t state = w->seed;
  w->kept = malloc((w->blocks / 2 + 1) * sizeof *w->kept);
  if (w->kept == NULL)
    bench_fail(WORKLOAD, "malloc returned NULL");
  for (uint64_t i = 0; i < w->blocks; i++) {
    char *p = malloc(bench_uniform(&state, w->min, w->max));
    if (p == NULL)
      bench_fail(WORKLOAD, "malloc returned NULL");
    p[0] = (char)i;
    if (i % 2 == 0)
      free(p);
    else
      w->kept[i / 2] = p;
  }
  return NULL;
}

static void wave(struct worker *workers, uint32_t nthreads, uint32_t *state) {
  for (uint32_t i = 0; i < nthreads; i++) {
    workers[i].seed = bench_xorshift32(state) | 1;
    if (pthread_create(&workers[i].thread, NULL, work, &workers[i]) != 0)
      bench_fail(WORKLOAD, "pthread_create failed");
  }
  for (uint32_t i = 0; i < nthreads; i++) {
    pthread_join(workers[i].thread, NULL);
    for (uint64_t k = 0; k < workers[i].blocks / 2; k++)
      free(workers[i].kept[k]);
    free(workers[i].kept);
  }
}

int main(int argc, char **argv) {
  bench_parse_params(argc, argv, WORKLOAD, params, NPARAMS);
  uint64_t waves = bench_param(params, NPARAMS, "waves");
  uint64_t nthreads = bench_param(params, NPARAMS, "threads");
  uint32_t state = (uint32_t)bench_param(params, NPARAMS, "seed");
  static struct worker workers[MAX_THREADS];
  for (uint64_t i = 0; i < nthreads && i < MAX_THREADS; i++)
    workers[i] = (struct worker){.blocks = bench_param(params, NPARAMS, "blocks"),
                                 .min = bench_param(params, NPARAMS, "min"),
                                 .max = bench_param(params, NPARAMS, "max")};
  if (state == 0 || nthreads == 0 || nthreads > MAX_THREADS || workers[0].min == 0 ||
      workers[0].min > workers[0].max)
    bench_fail(WORKLOAD, "need seed > 0, 1..256 threads, 0 < min <= max");

  uint64_t start = bench_now_ns();
  for (uint64_t w = 0; w < waves; w++)
    wave(workers, (uint32_t)nthreads, &state);
  double wall_s = (double)(bench_now_ns() - start) / 1e9;

  uint64_t started = waves * nthreads;
  char extra[128];
  snprintf(extra, sizeof extra, " threads_total=%llu ops=%llu", (unsigned long long)started,
           (unsigned long long)(started * 2 * workers[0].blocks));
  bench_print_result(WORKLOAD, "threads_per_s", (double)started / wall_s, 1, wall_s, extra);
  return 0;
}
