/* harness_result.h: what one measurement says, parsed from the workload's
 * output: the result line on stdout (see workload.h) and, for hakmem runs,
 * the HAKMEM_STATS=1 report on stderr with its page-supply ledger. */
#ifndef BENCH_HARNESS_RESULT_H
#define BENCH_HARNESS_RESULT_H

#include <stdbool.h>
#include <stdint.h>

#include "hakmem.h"

/* The result line of one run. */
struct run_result {
  char workload[32];
  char metric[32];    /* ops_per_s, ns_per_page, threads_per_s */
  char allocator[24]; /* the malloc the workload saw serving it */
  bool higher_is_better;
  double value;       /* the figure, in metric's unit */
  double pages;       /* pages the figure is per (ns_per_page workloads), else 0 */
  double wall_s, utime_s, stime_s;
  uint64_t minflt, majflt, maxrss_kb;
};

/* Parse one line "result key=value ...". Needs at least workload, metric
 * and value; unknown keys are ignored. Returns 0, or -1 when the line is
 * not a result line or lacks a required key. */
int result_parse_line(const char *line, struct run_result *out);

/* Find and parse the last result line in a program's stdout. */
int result_parse_output(const char *text, struct run_result *out);

/* hakmem's at-exit statistics report, as far as it could be read. */
struct ledger {
  bool present;             /* a report was found */
  char version[24];         /* from "hakmem <version>: statistics ..." */
  struct hakmem_stats stats; /* counters and supply rows found; the rest 0 */
};

/* Parse the statistics report out of a program's stderr. Tolerant: other
 * lines are skipped; supply rows are read as "supply <path> <pages>
 * <events> <wait>" (the wait's unit from the ledger's header: wait_ms,
 * wait_us or wait_ns, default ms) or as key=value pairs; counters as
 * "<name> <value>", "<name>: <value>" or "<name>=<value>". */
void ledger_parse(const char *text, struct ledger *out);

/* Sum of the supply rows' pages and wait. */
uint64_t ledger_total_pages(const struct ledger *l);
uint64_t ledger_total_wait_ns(const struct ledger *l);

/* The short name of supply path p ("fresh", "uffd_move", ...). */
const char *ledger_path_name(int p);

#endif /* BENCH_HARNESS_RESULT_H */
