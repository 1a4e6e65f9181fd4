/* harness_stats.c: medians, min, max and ratios (see harness_stats.h). */
#include "harness_stats.h"

#include <stdlib.h>
#include <string.h>

static int compare_doubles(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

struct summary summarize(const double *samples, size_t n) {
  struct summary s = {0};
  if (n == 0)
    return s;
  double *sorted = malloc(n * sizeof *sorted);
  if (sorted == NULL)
    abort();
  memcpy(sorted, samples, n * sizeof *sorted);
  qsort(sorted, n, sizeof *sorted, compare_doubles);
  s.n = n;
  s.min = sorted[0];
  s.max = sorted[n - 1];
  s.median = n % 2 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
  free(sorted);
  return s;
}

double speed_ratio(double a, double b, bool higher_is_better) {
  if (a <= 0 || b <= 0)
    return 0;
  return higher_is_better ? a / b : b / a;
}

double better_of(double a, double b, bool higher_is_better) {
  if (a <= 0)
    return b;
  if (b <= 0)
    return a;
  return (higher_is_better ? a > b : a < b) ? a : b;
}
