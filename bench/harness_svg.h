/* harness_svg.h: report.svg, a plot read at a glance: per workload, each
 * allocator's speed relative to the best peer; then, per fault-heavy
 * workload, each fault path's speed relative to hakmem's defaults. */
#ifndef BENCH_HARNESS_SVG_H
#define BENCH_HARNESS_SVG_H

#include "harness_suite.h"
#include "harness_table.h"

/* Write the plot to path. Returns 0 or -1. */
int svg_write(const struct suite *s, const struct table *t, const char *path);

#endif /* BENCH_HARNESS_SVG_H */
