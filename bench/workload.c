/* workload.c: parameters, clock, allocator detection and the result line
 * shared by the workload programs (see workload.h). */
#define _GNU_SOURCE 1
#include "workload.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#ifdef BENCH_STATIC_HAKMEM
#include "hakmem.h"
#endif

volatile uint64_t bench_sink;

static _Noreturn void usage(const char *workload, const struct bench_param *params, size_t count,
                            int status) {
  FILE *out = status == 0 ? stdout : stderr;
  fprintf(out, "usage: %s [--name=value ...]\n", workload);
  for (size_t i = 0; i < count; i++)
    fprintf(out, "  --%-12s %s (default %llu)\n", params[i].name, params[i].help,
            (unsigned long long)params[i].value);
  fprintf(out, "values take the suffixes k M G (x1000) and Ki Mi Gi (x1024)\n");
  exit(status);
}

/* "10M" -> 10000000, "256Mi" -> 268435456; -1 on a malformed value. */
static int parse_scaled(const char *text, uint64_t *out) {
  static const struct {
    const char *suffix;
    uint64_t scale;
  } units[] = {{"", 1},          {"k", 1000},          {"M", 1000000},
               {"G", 1000000000}, {"Ki", 1ULL << 10}, {"Mi", 1ULL << 20},
               {"Gi", 1ULL << 30}};
  char *end;
  errno = 0;
  unsigned long long base = strtoull(text, &end, 10);
  if (errno != 0 || end == text || text[0] == '-')
    return -1;
  for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
    if (strcmp(end, units[i].suffix) != 0)
      continue;
    if (base > UINT64_MAX / units[i].scale)
      return -1;
    *out = base * units[i].scale;
    return 0;
  }
  return -1;
}

static struct bench_param *find_param(struct bench_param *params, size_t count, const char *name,
                                      size_t name_len) {
  for (size_t i = 0; i < count; i++)
    if (strlen(params[i].name) == name_len && strncmp(params[i].name, name, name_len) == 0)
      return &params[i];
  return NULL;
}

void bench_parse_params(int argc, char **argv, const char *workload, struct bench_param *params,
                        size_t count) {
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i];
    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0)
      usage(workload, params, count, 0);
    if (strncmp(arg, "--", 2) != 0)
      usage(workload, params, count, 2);
    const char *name = arg + 2;
    const char *eq = strchr(name, '=');
    size_t name_len = eq ? (size_t)(eq - name) : strlen(name);
    const char *value = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
    struct bench_param *param = find_param(params, count, name, name_len);
    if (param == NULL || value == NULL || parse_scaled(value, &param->value) != 0) {
      fprintf(stderr, "%s: bad argument '%s'\n", workload, arg);
      usage(workload, params, count, 2);
    }
  }
}

uint64_t bench_param(const struct bench_param *params, size_t count, const char *name) {
  for (size_t i = 0; i < count; i++)
    if (strcmp(params[i].name, name) == 0)
      return params[i].value;
  fprintf(stderr, "bench: no parameter '%s'\n", name);
  abort();
}

uint64_t bench_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

_Noreturn void bench_fail(const char *workload, const char *what) {
  fprintf(stderr, "%s: %s\n", workload, what);
  exit(1);
}

/* Which malloc serves this process, told by a symbol only it exports; the
 * harness checks it against the configuration it meant to run. */
static const char *allocator_name(void) {
#ifdef BENCH_STATIC_HAKMEM
  return hakmem_version() != NULL ? "hakmem" : "unknown";
#else
  static const struct {
    const char *symbol;
    const char *name;
  } marks[] = {{"hakmem_version", "hakmem"},
               {"mi_version", "mimalloc"},
               {"mallctl", "jemalloc"},
               {"tc_version", "tcmalloc"}};
  for (size_t i = 0; i < sizeof marks / sizeof marks[0]; i++)
    if (dlsym(RTLD_DEFAULT, marks[i].symbol) != NULL)
      return marks[i].name;
  return "glibc";
#endif
}

static double timeval_s(struct timeval tv) {
  return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

void bench_print_result(const char *workload, const char *metric, double value,
                        int higher_is_better, double wall_s, const char *extra) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  printf("result workload=%s metric=%s value=%.6g better=%s %s=%.6g wall_s=%.6f minflt=%ld "
         "majflt=%ld maxrss_kb=%ld utime_s=%.6f stime_s=%.6f allocator=%s%s\n",
         workload, metric, value, higher_is_better ? "higher" : "lower", metric, value, wall_s,
         ru.ru_minflt, ru.ru_majflt, ru.ru_maxrss, timeval_s(ru.ru_utime), timeval_s(ru.ru_stime),
         allocator_name(), extra);
  fflush(stdout);
}

void bench_print_per_page(const char *workload, uint64_t bytes, uint64_t elapsed_ns, const char *unit,
                          uint64_t count) {
  double pages = (double)bytes / 4096.0;
  char extra[128];
  snprintf(extra, sizeof extra, " bytes_total=%llu pages=%.0f %s=%llu", (unsigned long long)bytes, pages, unit,
           (unsigned long long)count);
  bench_print_result(workload, "ns_per_page", (double)elapsed_ns / pages, 0, (double)elapsed_ns / 1e9, extra);
}
