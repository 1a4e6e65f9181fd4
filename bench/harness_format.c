/* harness_format.c: number formatting (see harness_format.h). */
#include "harness_format.h"

#include <stdio.h>
#include <string.h>

const char *metric_unit(const char *metric) {
  if (strcmp(metric, "ops_per_s") == 0)
    return "ops/s";
  if (strcmp(metric, "ns_per_page") == 0)
    return "ns/page";
  if (strcmp(metric, "threads_per_s") == 0)
    return "threads/s";
  if (strcmp(metric, "ns_per_node") == 0)
    return "ns/node";
  return metric;
}

void format_figure(double value, char *buf, size_t size) {
  if (value >= 1e9)
    snprintf(buf, size, "%.2fG", value / 1e9);
  else if (value >= 1e6)
    snprintf(buf, size, "%.1fM", value / 1e6);
  else if (value >= 1e5)
    snprintf(buf, size, "%.0fk", value / 1e3);
  else if (value >= 100)
    snprintf(buf, size, "%.0f", value);
  else
    snprintf(buf, size, "%.1f", value);
}

void format_ratio(double ratio, char *buf, size_t size) {
  if (ratio <= 0)
    snprintf(buf, size, "-");
  else
    snprintf(buf, size, "%.2fx", ratio);
}
