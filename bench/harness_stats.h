/* harness_stats.h: medians with min and max, and ratios between figures. */
#ifndef BENCH_HARNESS_STATS_H
#define BENCH_HARNESS_STATS_H

#include <stdbool.h>
#include <stddef.h>

struct summary {
  size_t n; /* samples; 0 = none, and the rest is 0 */
  double median, min, max;
};

/* Summarize n samples (the array is left as it was). The median of an
 * even count is the mean of the two middle samples. */
struct summary summarize(const double *samples, size_t n);

/* How many times faster a is than b, whichever way the metric goes:
 * a / b when higher is better, b / a when lower is. 0 when either is not
 * positive. */
double speed_ratio(double a, double b, bool higher_is_better);

/* The better of two figures; a non-positive one loses. */
double better_of(double a, double b, bool higher_is_better);

#endif /* BENCH_HARNESS_STATS_H */
