/* harness_plan.h: the workloads, their parameters in each mode, and the
 * order of the measurements. */
#ifndef BENCH_HARNESS_PLAN_H
#define BENCH_HARNESS_PLAN_H

#include <stdbool.h>
#include <stddef.h>

#include "harness_config.h"

enum bench_mode {
  MODE_TINY,  /* seconds in all: the harness's own end-to-end test */
  MODE_QUICK, /* make bench-quick: within 3 minutes on 2 cores */
  MODE_FULL,  /* make bench */
  MODE_COUNT
};

struct workload_def {
  const char *name;        /* also the program's name in bench/ */
  const char *what;        /* one line for the report */
  bool fault_heavy;        /* the fault-path configurations run it too */
  const char *args[MODE_COUNT]; /* its command line in each mode */
};

extern const struct workload_def workload_defs[];
extern const size_t workload_count;

const char *mode_name(enum bench_mode mode);
int mode_repetitions(enum bench_mode mode);
double mode_timeout_s(enum bench_mode mode);
/* Seconds after which the remaining measurements are not run (0: no
 * limit): what keeps bench-quick within its 3 minutes on a slow day. */
double mode_budget_s(enum bench_mode mode);

/* The index of the workload called name, or -1. */
int workload_index(const char *name);

/* Whether configuration c measures workload w: peers and hakmem measure
 * every workload, the fault paths only the fault-heavy ones. */
bool config_runs_workload(const struct bench_config *c, const struct workload_def *w);

struct plan_step {
  size_t workload; /* index into workload_defs */
  size_t config;   /* index into the configurations */
  int rep;         /* 0-based repetition */
};

/* The order of measurements: repetition by repetition, workload by
 * workload, every configuration in turn (starting one further each
 * repetition), so no configuration runs in a block of its own. out must
 * hold reps * nworkloads * nconfigs steps; returns how many were written. */
size_t plan_schedule(const size_t *workloads, size_t nworkloads, const struct bench_config *configs,
                     size_t nconfigs, int reps, struct plan_step *out);

/* Split the mode's argument string of w into argv after program (argv[0]);
 * returns argc. argv must hold 32 entries; buf holds the copy. */
int plan_argv(const struct workload_def *w, enum bench_mode mode, char *program, char *buf,
              size_t size, char **argv);

#endif /* BENCH_HARNESS_PLAN_H */
