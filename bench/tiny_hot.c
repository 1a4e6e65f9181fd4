/* tiny_hot: the Tiny Hot workload of the libhakmem issue.
 *
 * malloc 100 blocks of 64 B, free them in reverse order, repeated. An op
 * is one malloc or one free. Figure: ops/s. */
#include <stdio.h>
#include <stdlib.h>

#include "workload.h"

#define WORKLOAD "tiny_hot"
#define MAX_BLOCKS 4096

static struct bench_param params[] = {
    {"rounds", 1000000, "rounds of mallocs then frees"},
    {"blocks", 100, "blocks per round (at most 4096)"},
    {"size", 64, "block size in bytes (at least 1)"},
};
#define NPARAMS (sizeof params / sizeof params[0])

static void run(uint64_t rounds, uint32_t nblocks, size_t size) {
  void *blocks[MAX_BLOCKS];
  for (uint64_t r = 0; r < rounds; r++) {
    for (uint32_t i = 0; i < nblocks; i++) {
      blocks[i] = malloc(size);
      if (blocks[i] == NULL)
        bench_fail(WORKLOAD, "malloc returned NULL");
    }
    for (uint32_t i = nblocks; i-- > 0;)
      free(blocks[i]);
  }
}

int main(int argc, char **argv) {
  bench_parse_params(argc, argv, WORKLOAD, params, NPARAMS);
  uint64_t rounds = bench_param(params, NPARAMS, "rounds");
  uint64_t nblocks = bench_param(params, NPARAMS, "blocks");
  uint64_t size = bench_param(params, NPARAMS, "size");
  if (nblocks == 0 || nblocks > MAX_BLOCKS || size == 0)
    bench_fail(WORKLOAD, "blocks must be 1..4096 and size at least 1");

  uint64_t start = bench_now_ns();
  run(rounds, (uint32_t)nblocks, size);
  double wall_s = (double)(bench_now_ns() - start) / 1e9;

  uint64_t ops = 2 * rounds * nblocks;
  char extra[96];
  snprintf(extra, sizeof extra, " ops=%llu blocks=%llu size=%llu", (unsigned long long)ops,
           (unsigned long long)nblocks, (unsigned long long)size);
  bench_print_result(WORKLOAD, "ops_per_s", (double)ops / wall_s, 1, wall_s, extra);
  return 0;
}
