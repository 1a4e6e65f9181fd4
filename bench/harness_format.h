/* harness_format.h: figures as people read them ("86.0M ops/s",
 * "4107 ns/page"), shared by the progress lines, the tables and the plot. */
#ifndef BENCH_HARNESS_FORMAT_H
#define BENCH_HARNESS_FORMAT_H

#include <stddef.h>

/* The unit a metric is shown in: "ops/s", "ns/page", "threads/s". */
const char *metric_unit(const char *metric);

/* A figure with a scale suffix where large: "86.0M", "4107", "12.3". */
void format_figure(double value, char *buf, size_t size);

/* A ratio as "1.23x", or "-" when it is 0 (not known). */
void format_ratio(double ratio, char *buf, size_t size);

#endif /* BENCH_HARNESS_FORMAT_H */
