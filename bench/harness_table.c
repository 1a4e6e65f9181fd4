/* harness_table.c: reducing measurements to cells (see harness_table.h). */
#include "harness_table.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct cell *cell_at(struct table *t, size_t w, size_t c) {
  return &t->cells[w * t->nconfigs + c];
}

const struct cell *table_cell(const struct table *t, size_t w, size_t c) {
  return &t->cells[w * t->nconfigs + c];
}

/* Medians of the successful runs of workload index wi under config c. */
static void fill_cell(const struct suite *s, size_t wi, size_t c, struct cell *cell,
                      struct table_workload *tw) {
  size_t cap = s->nm ? s->nm : 1;
  double *v[6];
  for (int k = 0; k < 6; k++)
    if ((v[k] = malloc(cap * sizeof(double))) == NULL)
      abort();
  size_t n = 0;
  for (size_t i = 0; i < s->nm; i++) {
    const struct measurement *m = &s->m[i];
    if (m->workload != s->workloads[wi] || m->config != c || m->skipped)
      continue;
    cell->runs++;
    if (!m->ok) {
      cell->failed++;
      continue;
    }
    const struct run_result *r = &m->result;
    snprintf(tw->metric, sizeof tw->metric, "%s", r->metric);
    tw->higher_is_better = r->higher_is_better;
    v[0][n] = r->value, v[1][n] = (double)r->minflt, v[2][n] = (double)r->maxrss_kb;
    v[3][n] = r->utime_s, v[4][n] = r->stime_s, v[5][n] = r->pages;
    n++;
  }
  cell->value = summarize(v[0], n);
  cell->minflt = summarize(v[1], n).median;
  cell->maxrss_kb = summarize(v[2], n).median;
  cell->utime_s = summarize(v[3], n).median;
  cell->stime_s = summarize(v[4], n).median;
  cell->pages = summarize(v[5], n).median;
  for (int k = 0; k < 6; k++)
    free(v[k]);
}

static void find_median_run(const struct suite *s, size_t wi, size_t c, struct cell *cell) {
  double best = INFINITY;
  for (size_t i = 0; i < s->nm; i++) {
    const struct measurement *m = &s->m[i];
    if (m->workload != s->workloads[wi] || m->config != c || !m->ok)
      continue;
    double d = fabs(m->result.value - cell->value.median);
    if (d < best)
      best = d, cell->median_run = m;
  }
}

static void find_baselines(const struct suite *s, struct table *t, size_t w) {
  struct table_workload *tw = &t->w[w];
  tw->best_peer = tw->hakmem = -1;
  for (size_t c = 0; c < t->nconfigs; c++) {
    const struct cell *cell = cell_at(t, w, c);
    if (cell->value.n == 0)
      continue;
    if (strcmp(s->configs[c].name, "hakmem") == 0)
      tw->hakmem = (int)c;
    if (s->configs[c].role != ROLE_PEER)
      continue;
    if (tw->best_peer < 0 ||
        better_of(cell->value.median, cell_at(t, w, (size_t)tw->best_peer)->value.median,
                  tw->higher_is_better) == cell->value.median)
      tw->best_peer = (int)c;
  }
}

static void fill_ratios(struct table *t, size_t w) {
  const struct table_workload *tw = &t->w[w];
  for (size_t c = 0; c < t->nconfigs; c++) {
    struct cell *cell = cell_at(t, w, c);
    if (cell->value.n == 0)
      continue;
    if (tw->best_peer >= 0)
      cell->vs_best_peer = speed_ratio(cell->value.median,
                                       cell_at(t, w, (size_t)tw->best_peer)->value.median,
                                       tw->higher_is_better);
    if (tw->hakmem < 0)
      continue;
    const struct cell *base = cell_at(t, w, (size_t)tw->hakmem);
    cell->vs_hakmem = speed_ratio(cell->value.median, base->value.median, tw->higher_is_better);
    double cpu = cell->utime_s + cell->stime_s, base_cpu = base->utime_s + base->stime_s;
    cell->cpu_vs_hakmem = base_cpu > 0 ? cpu / base_cpu : 0;
  }
}

struct table *table_build(const struct suite *s) {
  struct table *t = calloc(1, sizeof *t);
  if (t == NULL)
    abort();
  t->nworkloads = s->nworkloads;
  t->nconfigs = s->nconfigs;
  t->w = calloc(s->nworkloads ? s->nworkloads : 1, sizeof *t->w);
  t->cells = calloc(s->nworkloads * s->nconfigs + 1, sizeof *t->cells);
  if (t->w == NULL || t->cells == NULL)
    abort();
  for (size_t w = 0; w < t->nworkloads; w++) {
    t->w[w].higher_is_better = true;
    for (size_t c = 0; c < t->nconfigs; c++) {
      fill_cell(s, w, c, cell_at(t, w, c), &t->w[w]);
      find_median_run(s, w, c, cell_at(t, w, c));
    }
    find_baselines(s, t, w);
    fill_ratios(t, w);
  }
  return t;
}

void table_free(struct table *t) {
  if (t == NULL)
    return;
  free(t->w);
  free(t->cells);
  free(t);
}
