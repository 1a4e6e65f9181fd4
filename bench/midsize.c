/* midsize: blocks just above powers of two, 257 B to 64 KiB + 1.
 *
 * Sizes 2^k + 1 for k = 8..16 (a byte past a size class or a page run),
 * 64 slots each. Each pair draws a size and a slot, frees the slot's block
 * and mallocs a new one of that size, writing its first and last byte.
 * The sizes above 32 KiB are large runs: an allocator whose large blocks
 * take a lock and a search every time shows it here (10M pairs took
 * hakmem 0.52 s before its thread cache of large runs, 0.13 s after;
 * tcmalloc 0.07). An op is one malloc or one free, as in Random Mixed.
 * Figure: ops/s. */
#include <stdio.h>
#include <stdlib.h>

#include "workload.h"

#define WORKLOAD "midsize"
#define SIZES 9 /* 2^8 + 1 .. 2^16 + 1 */
#define SLOTS 64

static struct bench_param params[] = {
    {"pairs", 10000000, "free-then-malloc pairs"},
    {"seed", 42, "xorshift32 seed (not 0)"},
};
#define NPARAMS (sizeof params / sizeof params[0])

static void run(uint64_t pairs, uint32_t seed, char *slots[SIZES][SLOTS]) {
  uint32_t state = seed;
  for (uint64_t i = 0; i < pairs; i++) {
    uint32_t r = bench_xorshift32(&state);
    unsigned k = (r >> 8) % SIZES;
    char **slot = &slots[k][r % SLOTS];
    size_t size = ((size_t)256 << k) + 1;
    free(*slot);
    *slot = malloc(size);
    if (*slot == NULL)
      bench_fail(WORKLOAD, "malloc returned NULL");
    (*slot)[0] = (char)r;
    (*slot)[size - 1] = (char)r;
  }
}

int main(int argc, char **argv) {
  bench_parse_params(argc, argv, WORKLOAD, params, NPARAMS);
  uint64_t pairs = bench_param(params, NPARAMS, "pairs");
  uint32_t seed = (uint32_t)bench_param(params, NPARAMS, "seed");
  if (seed == 0)
    bench_fail(WORKLOAD, "the seed must not be 0");
  char *(*slots)[SLOTS] = calloc(SIZES, sizeof *slots);
  if (slots == NULL)
    bench_fail(WORKLOAD, "out of memory");

  uint64_t start = bench_now_ns();
  run(pairs, seed, slots);
  double wall_s = (double)(bench_now_ns() - start) / 1e9;

  for (unsigned k = 0; k < SIZES; k++)
    for (unsigned i = 0; i < SLOTS; i++)
      free(slots[k][i]);
  free(slots);
  char extra[64];
  snprintf(extra, sizeof extra, " pairs=%llu seed=%u", (unsigned long long)pairs, seed);
  bench_print_result(WORKLOAD, "ops_per_s", 2.0 * (double)pairs / wall_s, 1, wall_s, extra);
  return 0;
}
