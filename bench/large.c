/* large: large buffers.
 *
 * `live` slots; each op picks a slot at random (seeded), frees its block
 * and mallocs a new one of min..max bytes, written whole. Figure: wall
 * time per 4 KiB page written. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "workload.h"

#define WORKLOAD "large"
#define MAX_LIVE 4096

static struct bench_param params[] = {
    {"ops", 3000, "blocks allocated and written"},
    {"min", 256ULL << 10, "smallest block in bytes"},
    {"max", 4ULL << 20, "largest block in bytes"},
    {"live", 32, "blocks live at once (at most 4096)"},
    {"seed", 42, "xorshift32 seed (not 0)"},
};
#define NPARAMS (sizeof params / sizeof params[0])

static uint64_t run(char **slots, uint32_t live, uint64_t ops, uint64_t min, uint64_t max,
                    uint32_t *state) {
  uint64_t total = 0;
  for (uint64_t i = 0; i < ops; i++) {
    char **slot = &slots[bench_xorshift32(state) % live];
    size_t size = bench_uniform(state, min, max);
    free(*slot);
    *slot = malloc(size);
    if (*slot == NULL)
      bench_fail(WORKLOAD, "malloc returned NULL");
    memset(*slot, (int)(i & 0xFF), size);
    total += size;
  }
  return total;
}

int main(int argc, char **argv) {
  bench_parse_params(argc, argv, WORKLOAD, params, NPARAMS);
  uint64_t ops = bench_param(params, NPARAMS, "ops");
  uint64_t min = bench_param(params, NPARAMS, "min");
  uint64_t max = bench_param(params, NPARAMS, "max");
  uint64_t live = bench_param(params, NPARAMS, "live");
  uint32_t state = (uint32_t)bench_param(params, NPARAMS, "seed");
  if (state == 0 || min == 0 || min > max || live == 0 || live > MAX_LIVE || ops == 0)
    bench_fail(WORKLOAD, "need seed > 0, 0 < min <= max, 0 < live <= 4096, ops > 0");

  char *slots[MAX_LIVE] = {0};
  uint64_t start = bench_now_ns();
  uint64_t total = run(slots, (uint32_t)live, ops, min, max, &state);
  for (uint64_t i = 0; i < live; i++)
    free(slots[i]);
  uint64_t elapsed = bench_now_ns() - start;

  bench_print_per_page(WORKLOAD, total, elapsed, "ops", ops);
  return 0;
}
