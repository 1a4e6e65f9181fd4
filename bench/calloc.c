/* calloc: the calloc workload of the pager issue.
 *
 * calloc blocks of min..max bytes (seeded sizes) into `live` slots taken
 * round-robin, freeing the slot's previous block first, and reads one byte
 * of each page of each block; `bytes` per round, then all are freed.
 * Figure: wall time per 4 KiB page of bytes requested. */
#include <stdio.h>
#include <stdlib.h>

#include "workload.h"

#define WORKLOAD "calloc"
#define MAX_LIVE 4096

static struct bench_param params[] = {
    {"bytes", 512ULL << 20, "bytes calloc'ed per round"},
    {"rounds", 3, "rounds"},
    {"min", 1ULL << 20, "smallest block in bytes"},
    {"max", 8ULL << 20, "largest block in bytes"},
    {"live", 32, "most blocks live at once (at most 4096)"},
    {"seed", 42, "xorshift32 seed (not 0)"},
};
#define NPARAMS (sizeof params / sizeof params[0])

/* Read one byte per page; a calloc'ed block must read as zero. */
static void touch_pages(const unsigned char *p, size_t size) {
  uint64_t sum = 0;
  for (size_t off = 0; off < size; off += 4096)
    sum += p[off];
  sum += p[size - 1];
  if (sum != 0)
    bench_fail(WORKLOAD, "calloc returned memory that is not zero");
  bench_sink += sum;
}

struct round_shape {
  uint64_t bytes, min, max;
  uint32_t live;
};

static uint64_t one_round(unsigned char **slots, const struct round_shape *shape, uint32_t *state) {
  uint64_t total = 0;
  for (uint32_t i = 0; total < shape->bytes; i = (i + 1) % shape->live) {
    size_t size = bench_uniform(state, shape->min, shape->max);
    free(slots[i]);
    slots[i] = calloc(1, size);
    if (slots[i] == NULL)
      bench_fail(WORKLOAD, "calloc returned NULL");
    touch_pages(slots[i], size);
    total += size;
  }
  for (uint32_t i = 0; i < shape->live; i++) {
    free(slots[i]);
    slots[i] = NULL;
  }
  return total;
}

int main(int argc, char **argv) {
  bench_parse_params(argc, argv, WORKLOAD, params, NPARAMS);
  uint64_t live = bench_param(params, NPARAMS, "live");
  struct round_shape shape = {bench_param(params, NPARAMS, "bytes"),
                              bench_param(params, NPARAMS, "min"),
                              bench_param(params, NPARAMS, "max"), (uint32_t)live};
  uint64_t rounds = bench_param(params, NPARAMS, "rounds");
  uint32_t state = (uint32_t)bench_param(params, NPARAMS, "seed");
  if (state == 0 || shape.min == 0 || shape.min > shape.max || live == 0 || live > MAX_LIVE)
    bench_fail(WORKLOAD, "need seed > 0, 0 < min <= max, 0 < live <= 4096");

  unsigned char *slots[MAX_LIVE] = {0};
  uint64_t total = 0;
  uint64_t start = bench_now_ns();
  for (uint64_t r = 0; r < rounds; r++)
    total += one_round(slots, &shape, &state);
  uint64_t elapsed = bench_now_ns() - start;

  bench_print_per_page(WORKLOAD, total, elapsed, "rounds", rounds);
  return 0;
}
