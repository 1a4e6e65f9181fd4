/* grow: the grow workload of the pager issue, and regrow.
 *
 * Each round fills `bytes` with blocks of min..max bytes (seeded sizes),
 * writing each block whole, then frees them all. Figure: wall time of all
 * rounds, mallocs, writes and frees, per 4 KiB page of bytes requested.
 *
 * regrow, the same program built with WORKLOAD "regrow", sleeps pause_ms
 * after each round (not timed): long enough for an allocator to give the
 * freed pages back, so that each round's pages come again from the kernel,
 * or from a pool that kept them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "workload.h"

#ifndef WORKLOAD
#define WORKLOAD "grow"
#define PAUSE_MS 0
#endif

static struct bench_param params[] = {
    {"bytes", 256ULL << 20, "bytes allocated per round"},
    {"rounds", 5, "rounds of fill then free"},
    {"pause_ms", PAUSE_MS, "sleep after each round's frees, not timed"},
    {"min", 64, "smallest block in bytes"},
    {"max", 1024, "largest block in bytes"},
    {"seed", 42, "xorshift32 seed (not 0)"},
};
#define NPARAMS (sizeof params / sizeof params[0])

/* One round: returns the bytes allocated (at least target). */
static uint64_t fill_and_free(char **blocks, uint64_t target, uint64_t min, uint64_t max,
                              uint32_t *state) {
  uint64_t total = 0, count = 0;
  while (total < target) {
    size_t size = bench_uniform(state, min, max);
    char *p = malloc(size);
    if (p == NULL)
      bench_fail(WORKLOAD, "malloc returned NULL");
    memset(p, (int)(count & 0xFF), size);
    blocks[count++] = p;
    total += size;
  }
  for (uint64_t i = 0; i < count; i++)
    free(blocks[i]);
  return total;
}

int main(int argc, char **argv) {
  bench_parse_params(argc, argv, WORKLOAD, params, NPARAMS);
  uint64_t bytes = bench_param(params, NPARAMS, "bytes");
  uint64_t rounds = bench_param(params, NPARAMS, "rounds");
  uint64_t min = bench_param(params, NPARAMS, "min");
  uint64_t max = bench_param(params, NPARAMS, "max");
  uint32_t state = (uint32_t)bench_param(params, NPARAMS, "seed");
  if (state == 0 || min == 0 || min > max || bytes == 0)
    bench_fail(WORKLOAD, "need seed > 0, 0 < min <= max, bytes > 0");

  /* The block array comes from mmap, not from the allocator under test. */
  size_t array_len = (bytes / min + 1) * sizeof(char *);
  char **blocks = mmap(NULL, array_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (blocks == MAP_FAILED)
    bench_fail(WORKLOAD, "mmap of the block array failed");

  uint64_t pause_ms = bench_param(params, NPARAMS, "pause_ms");
  uint64_t total = 0, elapsed = 0;
  for (uint64_t r = 0; r < rounds; r++) {
    uint64_t start = bench_now_ns();
    total += fill_and_free(blocks, bytes, min, max, &state);
    elapsed += bench_now_ns() - start;
    if (pause_ms) {
      struct timespec pause = { (time_t)(pause_ms / 1000), (long)(pause_ms % 1000) * 1000000L };
      nanosleep(&pause, NULL);
    }
  }

  munmap(blocks, array_len);
  bench_print_per_page(WORKLOAD, total, elapsed, "rounds", rounds);
  return 0;
}
