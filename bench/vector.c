/* vector: buffers grown by realloc, as vectors and string builders grow.
 *
 * Each round, `buffers` buffers start at 16 bytes and grow side by side,
 * each realloc to half again its size, up to `max` bytes; each realloc
 * writes the new part's first 4 KiB (or all of it when smaller). Then all
 * are freed. The growth crosses every tier of an allocator (small
 * classes, page runs, blocks mapped on their own), and a realloc that
 * cannot grow in place copies the buffer whole. An allocator that keeps
 * what the last round freed resident, in the right tier, faults little
 * after the first round (the slow-case hunt's case: 0.40 s for 10 rounds
 * when hakmem's huge blocks took the SuperSlabs the large ones had just
 * emptied, 0.15 s after; mimalloc 0.27). Figure: realloc calls per
 * second. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "workload.h"

#define WORKLOAD "vector"
#define BUFFERS_MAX 1024
#define TOUCH 4096

static struct bench_param params[] = {
    {"buffers", 64, "buffers grown side by side (at most 1024)"},
    {"max", 4ULL << 20, "largest size in bytes"},
    {"rounds", 10, "rounds of growth then free"},
};
#define NPARAMS (sizeof params / sizeof params[0])

/* One round: returns the realloc calls made. */
static uint64_t grow_and_free(char **buf, size_t *len, unsigned buffers, size_t max) {
  uint64_t calls = 0;
  for (unsigned i = 0; i < buffers; i++) {
    len[i] = 16;
    if ((buf[i] = malloc(len[i])) == NULL)
      bench_fail(WORKLOAD, "malloc returned NULL");
    memset(buf[i], 1, len[i]);
  }
  for (bool grew = true; grew;) {
    grew = false;
    for (unsigned i = 0; i < buffers; i++) {
      size_t next = len[i] + len[i] / 2;
      if (next > max)
        continue;
      char *p = realloc(buf[i], next);
      if (p == NULL)
        bench_fail(WORKLOAD, "realloc returned NULL");
      size_t added = next - len[i];
      memset(p + len[i], (int)(calls & 0xFF), added < TOUCH ? added : TOUCH);
      buf[i] = p;
      len[i] = next;
      calls++;
      grew = true;
    }
  }
  for (unsigned i = 0; i < buffers; i++)
    free(buf[i]);
  return calls;
}

int main(int argc, char **argv) {
  bench_parse_params(argc, argv, WORKLOAD, params, NPARAMS);
  uint64_t buffers = bench_param(params, NPARAMS, "buffers");
  uint64_t max = bench_param(params, NPARAMS, "max");
  uint64_t rounds = bench_param(params, NPARAMS, "rounds");
  if (buffers == 0 || buffers > BUFFERS_MAX || max < 24 || rounds == 0)
    bench_fail(WORKLOAD, "need 1..1024 buffers, max >= 24, rounds > 0");

  static char *buf[BUFFERS_MAX];
  static size_t len[BUFFERS_MAX];
  uint64_t calls = 0, start = bench_now_ns();
  for (uint64_t r = 0; r < rounds; r++)
    calls += grow_and_free(buf, len, (unsigned)buffers, (size_t)max);
  double wall_s = (double)(bench_now_ns() - start) / 1e9;

  char extra[160];
  snprintf(extra, sizeof extra, " buffers=%llu max=%llu rounds=%llu reallocs=%llu", (unsigned long long)buffers,
           (unsigned long long)max, (unsigned long long)rounds, (unsigned long long)calls);
  bench_print_result(WORKLOAD, "ops_per_s", (double)calls / wall_s, 1, wall_s, extra);
  return 0;
}
