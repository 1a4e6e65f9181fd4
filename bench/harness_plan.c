/* harness_plan.c: the workload table and the schedule (see
 * harness_plan.h). The full parameters are the issues' definitions; quick
 * ones are cut so that `make bench-quick` fits in 3 minutes on 2 cores. */
#include "harness_plan.h"

#include <stdio.h>
#include <string.h>

#define PLAN_MAX_ARGS 32

const struct workload_def workload_defs[] = {
    {"random_mixed", "256 slots, xorshift32 seed 42, free if taken else malloc 16..1039 B", true,
     {"--ops=200k", "--ops=10M", "--ops=10M"}},
    {"tiny_hot", "malloc 100 x 64 B, free in reverse, repeated", false,
     {"--rounds=2k", "--rounds=400k", "--rounds=1M"}},
    {"grow", "fill 256 MiB with 64..1024 B blocks written whole, free all; 5 rounds", true,
     {"--bytes=2Mi --rounds=1", "--bytes=128Mi --rounds=2", "--bytes=256Mi --rounds=5"}},
    {"regrow", "grow, 64 MiB a round, 150 ms pause after each (not timed): freed pages released; 5 rounds",
     true, {"--bytes=2Mi --rounds=2 --pause_ms=1", "--bytes=32Mi --rounds=3", "--bytes=64Mi --rounds=5"}},
    {"calloc", "calloc 1..8 MiB (32 live), read a byte per page; 512 MiB x 3 rounds", true,
     {"--bytes=8Mi --min=64Ki --max=1Mi --rounds=1", "--bytes=256Mi --rounds=2",
      "--bytes=512Mi --rounds=3"}},
    {"large", "256 KiB..4 MiB blocks written whole, 32 live", true,
     {"--ops=20", "--ops=600", "--ops=3000"}},
    {"midsize", "free and malloc 2^k+1 B, k=8..16, 64 live of each, first and last byte written", false,
     {"--pairs=20k", "--pairs=2M", "--pairs=10M"}},
    {"vector", "64 buffers grown side by side by realloc, half again each time, 16 B to 4 MiB; 10 rounds", true,
     {"--buffers=4 --max=2Mi --rounds=1", "--rounds=3", "--rounds=10"}},
    {"larson", "4 threads, 1000 blocks each, arrays traded between live threads", false,
     {"--threads=2 --gens=2 --ops=2k --slots=100 --epoch=100", "--gens=8 --ops=100k",
      "--gens=20 --ops=250k"}},
    {"prodcons", "1 producer, 1 consumer, every free cross-thread", false,
     {"--items=5k", "--items=500k", "--items=2M"}},
    {"churn", "waves of 4 threads, 1000 blocks each, half freed by the main thread", false,
     {"--waves=3 --threads=2 --blocks=100", "--waves=250", "--waves=2000"}},
    {"rebuild", "a search tree of 32..64 B nodes built, freed in tree order and built again", false,
     {"--nodes=2k --rounds=2", "--nodes=200k", "--nodes=500k"}},
};
const size_t workload_count = sizeof workload_defs / sizeof workload_defs[0];

const char *mode_name(enum bench_mode mode) {
  static const char *const names[MODE_COUNT] = {"tiny", "quick", "full"};
  return mode < MODE_COUNT ? names[mode] : "?";
}

int mode_repetitions(enum bench_mode mode) {
  static const int reps[MODE_COUNT] = {1, 3, 5};
  return reps[mode];
}

double mode_budget_s(enum bench_mode mode) {
  static const double budget[MODE_COUNT] = {0, 150, 0};
  return budget[mode];
}

double mode_timeout_s(enum bench_mode mode) {
  static const double timeout[MODE_COUNT] = {30, 30, 300};
  return timeout[mode];
}

int workload_index(const char *name) {
  for (size_t i = 0; i < workload_count; i++)
    if (strcmp(workload_defs[i].name, name) == 0)
      return (int)i;
  return -1;
}

bool config_runs_workload(const struct bench_config *c, const struct workload_def *w) {
  return c->role != ROLE_FAULT_PATH || w->fault_heavy;
}

size_t plan_schedule(const size_t *workloads, size_t nworkloads, const struct bench_config *configs,
                     size_t nconfigs, int reps, struct plan_step *out) {
  size_t n = 0;
  for (int rep = 0; rep < reps; rep++)
    for (size_t w = 0; w < nworkloads; w++)
      for (size_t k = 0; k < nconfigs; k++) {
        size_t c = (k + (size_t)rep) % nconfigs;
        if (config_runs_workload(&configs[c], &workload_defs[workloads[w]]))
          out[n++] = (struct plan_step){workloads[w], c, rep};
      }
  return n;
}

int plan_argv(const struct workload_def *w, enum bench_mode mode, char *program, char *buf,
              size_t size, char **argv) {
  int argc = 0;
  argv[argc++] = program;
  snprintf(buf, size, "%s", w->args[mode]);
  for (char *save = NULL, *t = strtok_r(buf, " ", &save); t && argc < PLAN_MAX_ARGS - 1;
       t = strtok_r(NULL, " ", &save))
    argv[argc++] = t;
  argv[argc] = NULL;
  return argc;
}
