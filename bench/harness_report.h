/* harness_report.h: report.md and the final table on the terminal. */
#ifndef BENCH_HARNESS_REPORT_H
#define BENCH_HARNESS_REPORT_H

#include <stdio.h>

#include "harness_suite.h"
#include "harness_table.h"

/* Write report.md, results.csv and report.svg into the suite's outdir.
 * Returns 0, or -1 when one of them cannot be written. */
int report_write_files(const struct suite *s, const struct table *t);

/* The whole markdown report to f. */
void report_markdown(const struct suite *s, const struct table *t, FILE *f);

/* The tables a person wants at the end of a run: the ratio summary, a
 * table per workload and the fault-path comparison. */
void report_print_final(const struct suite *s, const struct table *t, FILE *f);

#endif /* BENCH_HARNESS_REPORT_H */
