/* random_mixed: the Random Mixed workload of the libhakmem issue.
 *
 * 256 slots; each op draws r = xorshift32() (seed 42), takes slot r % 256,
 * frees its block if it holds one, else mallocs 16 + (r & 0x3FF) bytes and
 * writes the first byte. An op is one malloc or one free. Figure: ops/s. */
#include <stdio.h>
#include <stdlib.h>

#include "workload.h"

#define WORKLOAD "random_mixed"

static struct bench_param params[] = {
    {"ops", 10000000, "operations (each one malloc or one free)"},
    {"seed", 42, "xorshift32 seed (not 0)"},
};
/* The 256 slots, a constant so that r % SLOTS is the mask it is in
 * the loop and not a division every allocator would pay for. */
#define SLOTS 256
#define NPARAMS (sizeof params / sizeof params[0])

static void run(uint64_t ops, uint32_t seed, char **slots) {
  uint32_t state = seed;
  for (uint64_t i = 0; i < ops; i++) {
    uint32_t r = bench_xorshift32(&state);
    char **slot = &slots[r % SLOTS];
    if (*slot != NULL) {
      free(*slot);
      *slot = NULL;
    } else {
      *slot = malloc(16 + (r & 0x3FF));
      if (*slot == NULL)
        bench_fail(WORKLOAD, "malloc returned NULL");
      (*slot)[0] = (char)r;
    }
  }
}

int main(int argc, char **argv) {
  bench_parse_params(argc, argv, WORKLOAD, params, NPARAMS);
  uint64_t ops = bench_param(params, NPARAMS, "ops");
  uint32_t seed = (uint32_t)bench_param(params, NPARAMS, "seed");
  if (seed == 0)
    bench_fail(WORKLOAD, "the seed must not be 0");
  char **slots = calloc(SLOTS, sizeof *slots);
  if (slots == NULL)
    bench_fail(WORKLOAD, "out of memory");

  uint64_t start = bench_now_ns();
  run(ops, seed, slots);
  double wall_s = (double)(bench_now_ns() - start) / 1e9;

  uint64_t live = 0;
  for (uint32_t i = 0; i < SLOTS; i++) {
    live += slots[i] != NULL;
    free(slots[i]);
  }
  free(slots);
  char extra[96];
  snprintf(extra, sizeof extra, " ops=%llu seed=%u live_at_end=%llu", (unsigned long long)ops,
           seed, (unsigned long long)live);
  bench_print_result(WORKLOAD, "ops_per_s", (double)ops / wall_s, 1, wall_s, extra);
  return 0;
}
