/* harness_suite.h: one benchmark run of the whole suite: which
 * configurations and workloads, the measurements in order, the outputs. */
#ifndef BENCH_HARNESS_SUITE_H
#define BENCH_HARNESS_SUITE_H

#include <stdbool.h>
#include <stdio.h>

#include "harness_config.h"
#include "harness_machine.h"
#include "harness_plan.h"
#include "harness_result.h"

struct suite_options {
  enum bench_mode mode;
  int reps;              /* 0: the mode's default */
  double timeout_s;      /* per measurement; 0: the mode's default */
  double budget_s;       /* for the whole run; 0: the mode's default; <0: none */
  const char *bindir;    /* the workload programs */
  const char *outdir;    /* where report.md, results.csv, report.svg go */
  const char *hakmem_so; /* the built libhakmem.so (may be absent) */
  const char *peer_dir;  /* NULL: search the usual library directories */
  const char *workloads; /* comma-separated subset; NULL: all */
  const char *configs;   /* comma-separated subset; NULL: all */
  bool uffd_built;       /* configured with --enable-uffd */
  const char *hakmem_version;
  FILE *log;             /* progress and the final table; NULL: stdout */
};

struct measurement {
  size_t workload, config;
  int rep;
  bool ok;
  bool skipped; /* not run: the time budget was spent, or the configuration hung */
  char error[240];
  struct run_result result;
  struct ledger ledger;
};

struct suite {
  struct suite_options opt;
  struct bench_config configs[CONFIG_MAX];
  size_t nconfigs;
  size_t workloads[16];
  size_t nworkloads;
  struct skip_list skips;
  struct machine_info machine;
  bool hung[CONFIG_MAX]; /* a run timed out: the configuration's other runs are skipped */
  struct measurement *m; /* in the order they ran */
  size_t nm;
};

/* Detect configurations and the machine, schedule the measurements.
 * Returns 0, or -1 (with a message on the log) when nothing can run. */
int suite_prepare(struct suite *s, const struct suite_options *opt);

/* Run every measurement, one process each, a progress line per run.
 * Once the time budget is spent the rest are skipped, and so are the
 * remaining runs of a configuration that timed out once. Returns the
 * number that failed (skipped ones excluded). */
size_t suite_run(struct suite *s);

/* Write outdir/report.md, results.csv, report.svg and print the final
 * table on the log. Returns 0, or -1 when a file cannot be written. */
int suite_write(const struct suite *s);

void suite_free(struct suite *s);

#endif /* BENCH_HARNESS_SUITE_H */
