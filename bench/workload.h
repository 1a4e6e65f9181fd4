/* workload.h: what every benchmark workload program shares.
 *
 * A workload takes its parameters as --name=value (or --name value) on the
 * command line, runs once, and prints exactly one line on stdout:
 *
 *   result workload=grow metric=ns_per_page value=812.4 better=lower
 *          wall_s=... minflt=... majflt=... maxrss_kb=... utime_s=...
 *          stime_s=... allocator=glibc [workload's own keys]
 *
 * (one line; wrapped here). The harness (harness_result.c) parses it. The
 * resource figures come from getrusage(RUSAGE_SELF) at the end, so they
 * cover every thread of the process. Workloads are compiled with
 * -fno-builtin-malloc (and calloc, free) so the compiler cannot elide a
 * malloc/free pair; values read back go to bench_sink. */
#ifndef BENCH_WORKLOAD_H
#define BENCH_WORKLOAD_H

#include <stddef.h>
#include <stdint.h>

/* One command-line parameter: its name (without "--"), its value (the
 * default until parsed) and a line of help. Values accept the suffixes
 * k, M, G (powers of 1000) and Ki, Mi, Gi (powers of 1024). */
struct bench_param {
  const char *name;
  uint64_t value;
  const char *help;
};

/* Parse argv into params; on --help or an error print usage and exit
 * (0 for --help, 2 for an error). */
void bench_parse_params(int argc, char **argv, const char *workload, struct bench_param *params,
                        size_t count);

/* Value of the parameter called name (which must exist). */
uint64_t bench_param(const struct bench_param *params, size_t count, const char *name);

/* Monotonic time in nanoseconds. */
uint64_t bench_now_ns(void);

/* The xorshift32 generator (Marsaglia); state must not be 0. */
static inline uint32_t bench_xorshift32(uint32_t *state) {
  uint32_t x = *state;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  *state = x;
  return x;
}

/* A uniform value in [lo, hi] from the generator. */
static inline uint64_t bench_uniform(uint32_t *state, uint64_t lo, uint64_t hi) {
  return lo + bench_xorshift32(state) % (hi - lo + 1);
}

/* Values read back from allocated memory land here, so reads stay. */
extern volatile uint64_t bench_sink;

/* Die with a message naming the workload (malloc returned NULL, ...). */
_Noreturn void bench_fail(const char *workload, const char *what);

/* Print the result line. metric is the figure's name (ops_per_s,
 * ns_per_page, threads_per_s); higher_is_better says which way is good;
 * extra is " key=value ..." appended as is ("" for none). */
void bench_print_result(const char *workload, const char *metric, double value,
                        int higher_is_better, double wall_s, const char *extra);

/* The result line of a workload measured in ns per 4 KiB page of the bytes
 * it allocated, with its count of `unit` (rounds, ops) in the extras. */
void bench_print_per_page(const char *workload, uint64_t bytes, uint64_t elapsed_ns, const char *unit,
                          uint64_t count);

#endif /* BENCH_WORKLOAD_H */
