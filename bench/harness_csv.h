/* harness_csv.h: results.csv, one row per measurement, in the order run:
 * the figure, the process's resources and, for hakmem runs, the ledger. */
#ifndef BENCH_HARNESS_CSV_H
#define BENCH_HARNESS_CSV_H

#include <stdio.h>

#include "harness_suite.h"

/* Write the header and one row per measurement to path. Returns 0 or -1. */
int csv_write(const struct suite *s, const char *path);

/* One field, quoted when it holds a comma, a quote or a line break. */
void csv_field(FILE *f, const char *text);

#endif /* BENCH_HARNESS_CSV_H */
