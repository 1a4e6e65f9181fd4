/* harness_table.h: the measurements reduced to one cell per workload and
 * configuration: medians with min and max, and ratios to the baselines
 * measured in the same run (the best peer; hakmem's default options). */
#ifndef BENCH_HARNESS_TABLE_H
#define BENCH_HARNESS_TABLE_H

#include <stdbool.h>
#include <stddef.h>

#include "harness_stats.h"
#include "harness_suite.h"

struct cell {
  size_t runs, failed;
  struct summary value; /* the figure over the successful runs */
  double minflt, maxrss_kb, utime_s, stime_s, pages; /* medians */
  const struct measurement *median_run; /* the run nearest the median: its ledger is shown */
  double vs_best_peer;  /* speed ratio to the best peer's median; 0 = unknown */
  double vs_hakmem;     /* speed ratio to hakmem with default options */
  double cpu_vs_hakmem; /* user+sys CPU relative to hakmem with default options */
};

struct table_workload {
  char metric[32];
  bool higher_is_better;
  int best_peer;   /* configuration index of the best peer, or -1 */
  int hakmem;      /* configuration index of "hakmem", or -1 */
};

struct table {
  size_t nworkloads, nconfigs; /* workloads as in suite->workloads */
  struct table_workload *w;
  struct cell *cells;
};

struct table *table_build(const struct suite *s);
const struct cell *table_cell(const struct table *t, size_t w, size_t c);
void table_free(struct table *t);

#endif /* BENCH_HARNESS_TABLE_H */
