/* harness_report.c: the markdown report (see harness_report.h). Every
 * ratio compares medians measured in this run; absolute figures are
 * shown for context only. */
#include "harness_report.h"

#include <string.h>

#include "harness_csv.h"
#include "harness_format.h"
#include "harness_svg.h"

static const struct workload_def *wdef(const struct suite *s, size_t w) {
  return &workload_defs[s->workloads[w]];
}

static bool is_allocator(const struct bench_config *c) {
  return c->role != ROLE_FAULT_PATH;
}

static bool ran(const struct table *t, size_t w, size_t c) {
  return table_cell(t, w, c)->runs > 0;
}

/* ---- summary: speed relative to the best peer ---- */

static void summary_matrix(const struct suite *s, const struct table *t, FILE *f) {
  fprintf(f, "Speed relative to the best peer (best of glibc, mimalloc, jemalloc, tcmalloc) in "
             "this run; above 1.00x is faster. Medians of up to %d runs.\n\n",
          s->opt.reps);
  fprintf(f, "| %-13s | %-26s |", "workload", "best peer (median)");
  for (size_t c = 0; c < s->nconfigs; c++)
    if (is_allocator(&s->configs[c]))
      fprintf(f, " %-13s |", s->configs[c].name);
  fprintf(f, "\n|---------------|----------------------------|");
  for (size_t c = 0; c < s->nconfigs; c++)
    if (is_allocator(&s->configs[c]))
      fprintf(f, "---------------|");
  fputc('\n', f);
  for (size_t w = 0; w < t->nworkloads; w++) {
    const struct table_workload *tw = &t->w[w];
    char best[64] = "-", fig[32], ratio[16];
    if (tw->best_peer >= 0) {
      format_figure(table_cell(t, w, (size_t)tw->best_peer)->value.median, fig, sizeof fig);
      snprintf(best, sizeof best, "%s %s %s", s->configs[tw->best_peer].name, fig,
               metric_unit(tw->metric));
    }
    fprintf(f, "| %-13s | %-26s |", wdef(s, w)->name, best);
    for (size_t c = 0; c < s->nconfigs; c++) {
      if (!is_allocator(&s->configs[c]))
        continue;
      const struct cell *cell = table_cell(t, w, c);
      format_ratio(cell->vs_best_peer, ratio, sizeof ratio);
      fprintf(f, " %-13s |", cell->failed && !cell->value.n ? "failed" : ratio);
    }
    fputc('\n', f);
  }
  fputc('\n', f);
}

/* ---- one table per workload ---- */

static void workload_row(const struct suite *s, const struct table *t, size_t w, size_t c,
                         FILE *f) {
  const struct cell *cell = table_cell(t, w, c);
  char med[32] = "-", lo[32] = "-", hi[32] = "-", vp[16], vh[16];
  if (cell->value.n) {
    format_figure(cell->value.median, med, sizeof med);
    format_figure(cell->value.min, lo, sizeof lo);
    format_figure(cell->value.max, hi, sizeof hi);
  }
  format_ratio(cell->vs_best_peer, vp, sizeof vp);
  format_ratio(cell->vs_hakmem, vh, sizeof vh);
  fprintf(f, "| %-14s | %8s | %8s | %8s | %7s | %7s | %9.0f | %7.1f | %6.2f | %6.2f | %zu/%zu |\n",
          s->configs[c].name, med, lo, hi, vp, vh, cell->minflt, cell->maxrss_kb / 1024,
          cell->utime_s, cell->stime_s, cell->value.n, cell->runs);
}

static void workload_table(const struct suite *s, const struct table *t, size_t w, FILE *f) {
  const struct table_workload *tw = &t->w[w];
  fprintf(f, "### %s: %s, %s is better\n\n", wdef(s, w)->name, metric_unit(tw->metric),
          tw->higher_is_better ? "higher" : "lower");
  fprintf(f, "%s; `%s`.\n\n", wdef(s, w)->what, wdef(s, w)->args[s->opt.mode]);
  fprintf(f, "| %-14s | %8s | %8s | %8s | %7s | %7s | %9s | %7s | %6s | %6s | runs |\n",
          "configuration", "median", "min", "max", "vs peer", "vs hkm", "minflt", "RSS MiB",
          "user s", "sys s");
  fprintf(f, "|----------------|---------:|---------:|---------:|--------:|--------:|----------:|"
             "--------:|-------:|-------:|------|\n");
  for (size_t c = 0; c < s->nconfigs; c++)
    if (ran(t, w, c))
      workload_row(s, t, w, c, f);
  fputc('\n', f);
}

/* ---- fault paths and the ledger ---- */

static bool shows_fault_paths(const struct suite *s, const struct table *t, size_t w) {
  if (!wdef(s, w)->fault_heavy)
    return false;
  for (size_t c = 0; c < s->nconfigs; c++)
    if (s->configs[c].hakmem && table_cell(t, w, c)->value.n)
      return true;
  return false;
}

/* ns per workload page of x, or "-" when the workload has no pages. */
static void per_page(double x_ns, double pages, char *buf, size_t size) {
  if (pages > 0)
    snprintf(buf, size, "%.0f", x_ns / pages);
  else
    snprintf(buf, size, "-");
}

static void fault_row(const struct suite *s, const struct cell *cell, size_t c, FILE *f) {
  char med[32] = "-", vh[16], cpu[16], user[16], sys[16], wait[16], zero[16];
  if (cell->value.n)
    format_figure(cell->value.median, med, sizeof med);
  format_ratio(cell->vs_hakmem, vh, sizeof vh);
  format_ratio(cell->cpu_vs_hakmem, cpu, sizeof cpu);
  const struct ledger *l = cell->median_run ? &cell->median_run->ledger : NULL;
  double pages = cell->pages;
  per_page(cell->utime_s * 1e9, pages, user, sizeof user);
  per_page(cell->stime_s * 1e9, pages, sys, sizeof sys);
  per_page(l ? (double)ledger_total_wait_ns(l) : 0, l && l->present ? pages : 0, wait, sizeof wait);
  per_page(l ? (double)(l->stats.pager_zero_ns + l->stats.pager_refill_ns) : 0, l && l->present ? pages : 0, zero,
           sizeof zero);
  fprintf(f, "| %-14s | %8s | %7s | %7s | %7s | %7s | %9s | %9s |\n", s->configs[c].name, med, vh,
          cpu, user, sys, wait, zero);
}

static void fault_table(const struct suite *s, const struct table *t, size_t w, FILE *f) {
  fprintf(f, "#### %s: fault paths (%s; ratios to hakmem with default options)\n\n",
          wdef(s, w)->name, metric_unit(t->w[w].metric));
  fprintf(f, "| %-14s | %8s | %7s | %7s | %7s | %7s | %9s | %9s |\n", "configuration", "median",
          "speed", "CPU", "user/pg", "sys/pg", "supply/pg", "bgzero/pg");
  fprintf(f, "|----------------|---------:|--------:|--------:|--------:|--------:|----------:|"
             "----------:|\n");
  for (size_t c = 0; c < s->nconfigs; c++)
    if (s->configs[c].hakmem && ran(t, w, c))
      fault_row(s, table_cell(t, w, c), c, f);
  fputc('\n', f);
}

static bool path_used(const struct suite *s, const struct table *t, size_t w, int p) {
  for (size_t c = 0; c < s->nconfigs; c++) {
    const struct measurement *m = table_cell(t, w, c)->median_run;
    if (m && m->ledger.stats.supply[p].pages)
      return true;
  }
  return false;
}

static void ledger_table(const struct suite *s, const struct table *t, size_t w, FILE *f) {
  fprintf(f, "Page-supply ledger of the median run: pages by path, and the program's wait per "
             "supplied page in ns.\n\n| %-14s |",
          "configuration");
  for (int p = 0; p < HAKMEM_SUPPLY_COUNT; p++)
    if (path_used(s, t, w, p))
      fprintf(f, " %-20s |", ledger_path_name(p));
  fprintf(f, "\n|----------------|");
  for (int p = 0; p < HAKMEM_SUPPLY_COUNT; p++)
    if (path_used(s, t, w, p))
      fprintf(f, "---------------------:|");
  fputc('\n', f);
  for (size_t c = 0; c < s->nconfigs; c++) {
    const struct measurement *m = table_cell(t, w, c)->median_run;
    if (!s->configs[c].hakmem || m == NULL)
      continue;
    fprintf(f, "| %-14s |", s->configs[c].name);
    for (int p = 0; p < HAKMEM_SUPPLY_COUNT; p++) {
      if (!path_used(s, t, w, p))
        continue;
      const struct hakmem_supply_row *r = &m->ledger.stats.supply[p];
      char text[48];
      if (r->pages && r->wait_ns)
        snprintf(text, sizeof text, "%llu (%.0f ns)", (unsigned long long)r->pages,
                 (double)r->wait_ns / (double)r->pages);
      else
        snprintf(text, sizeof text, "%llu", (unsigned long long)r->pages);
      fprintf(f, " %20s |", text);
    }
    fputc('\n', f);
  }
  fputc('\n', f);
}

static void fault_section(const struct suite *s, const struct table *t, FILE *f, bool ledger) {
  bool any = false;
  for (size_t w = 0; w < t->nworkloads; w++)
    any |= shows_fault_paths(s, t, w);
  if (!any)
    return;
  fprintf(f, "## Fault paths: where the time per page goes\n\n"
             "The same hakmem build under each fault path. speed: median figure relative to "
             "hakmem with default options (above 1.00x is faster); CPU: user+sys CPU of all "
             "threads relative to it. Per workload page (ns): user and sys CPU, the program's "
             "threads waiting for page supply (ledger), background zeroing by the pager: its "
             "clearing of recycled pages and the kernel's of fresh ones it puts in its pool "
             "(ledger).\n\n");
  for (size_t w = 0; w < t->nworkloads; w++) {
    if (!shows_fault_paths(s, t, w))
      continue;
    fault_table(s, t, w, f);
    if (ledger)
      ledger_table(s, t, w, f);
  }
}

/* ---- the front matter ---- */

static void machine_section(const struct suite *s, FILE *f) {
  const struct machine_info *m = &s->machine;
  fprintf(f, "## Machine\n\n| | |\n|---|---|\n| CPU | %s |\n| cores | %ld |\n| memory | %s |\n"
             "| kernel | %s |\n| transparent hugepages | %s |\n| date | %s |\n\n",
          m->cpu, m->cores, m->memory, m->kernel, m->thp, m->date);
  fprintf(f, "## Allocators\n\n| allocator | package | version |\n|---|---|---|\n");
  fprintf(f, "| hakmem | this build | %s |\n", m->hakmem_version);
  for (size_t i = 0; i < m->npackages; i++)
    fprintf(f, "| %s | %s | %s |\n", m->packages[i].what, m->packages[i].package,
            m->packages[i].version);
  fprintf(f, "\n## Configurations\n\n");
  for (size_t c = 0; c < s->nconfigs; c++)
    fprintf(f, "- `%s`: %s\n", s->configs[c].name, s->configs[c].label);
  for (size_t i = 0; i < s->skips.n; i++)
    fprintf(f, "- %s\n", s->skips.line[i]);
  fputc('\n', f);
}

/* Each distinct reason for skipping, once, with how many runs it cost. */
static void skip_reasons(const struct suite *s, FILE *f) {
  for (size_t i = 0; i < s->nm; i++) {
    if (!s->m[i].skipped)
      continue;
    size_t same = 0, j;
    for (j = 0; j < i; j++)
      if (s->m[j].skipped && strcmp(s->m[j].error, s->m[i].error) == 0)
        break;
    if (j < i)
      continue; /* reported with its first */
    for (j = i; j < s->nm; j++)
      same += s->m[j].skipped && strcmp(s->m[j].error, s->m[i].error) == 0;
    fprintf(f, "- %zu runs: %s\n", same, s->m[i].error);
  }
}

static void failures_section(const struct suite *s, FILE *f) {
  size_t n = 0, skipped = 0;
  for (size_t i = 0; i < s->nm; i++) {
    skipped += s->m[i].skipped;
    n += !s->m[i].ok && !s->m[i].skipped;
  }
  if (skipped) {
    fprintf(f, "## Measurements not run (%zu of %zu)\n\n", skipped, s->nm);
    skip_reasons(s, f);
    fputc('\n', f);
  }
  if (n == 0)
    return;
  fprintf(f, "## Failed measurements (%zu)\n\n", n);
  for (size_t i = 0; i < s->nm; i++)
    if (!s->m[i].ok && !s->m[i].skipped)
      fprintf(f, "- %s under %s, rep %d: %s\n", workload_defs[s->m[i].workload].name,
              s->configs[s->m[i].config].name, s->m[i].rep + 1, s->m[i].error);
  fputc('\n', f);
}

void report_markdown(const struct suite *s, const struct table *t, FILE *f) {
  fprintf(f, "# hakmem benchmark report (%s)\n\n", mode_name(s->opt.mode));
  fprintf(f, "Each measurement is one process; configurations are interleaved round-robin, "
             "%d repetitions each; figures are medians with min and max, and every ratio "
             "compares medians from this run. Raw rows: `results.csv`; plot: `report.svg`.\n\n"
             "![ratios](report.svg)\n\n",
          s->opt.reps);
  machine_section(s, f);
  fprintf(f, "## Summary\n\n");
  summary_matrix(s, t, f);
  fprintf(f, "## Workloads\n\n");
  for (size_t w = 0; w < t->nworkloads; w++)
    workload_table(s, t, w, f);
  fault_section(s, t, f, true);
  failures_section(s, f);
}

void report_print_final(const struct suite *s, const struct table *t, FILE *f) {
  fprintf(f, "\n== %s: %s, %ld cores, %s, THP %s ==\n\n", mode_name(s->opt.mode), s->machine.cpu,
          s->machine.cores, s->machine.kernel, s->machine.thp);
  for (size_t w = 0; w < t->nworkloads; w++)
    workload_table(s, t, w, f);
  fault_section(s, t, f, false);
  fprintf(f, "== summary ==\n\n");
  summary_matrix(s, t, f);
  failures_section(s, f);
  fflush(f);
}

static int write_markdown(const struct suite *s, const struct table *t, const char *path) {
  FILE *f = fopen(path, "w");
  if (f == NULL)
    return -1;
  report_markdown(s, t, f);
  return fclose(f) == 0 ? 0 : -1;
}

int report_write_files(const struct suite *s, const struct table *t) {
  char path[1200];
  int rc = 0;
  snprintf(path, sizeof path, "%s/report.md", s->opt.outdir);
  rc |= write_markdown(s, t, path);
  snprintf(path, sizeof path, "%s/results.csv", s->opt.outdir);
  rc |= csv_write(s, path);
  snprintf(path, sizeof path, "%s/report.svg", s->opt.outdir);
  rc |= svg_write(s, t, path);
  return rc;
}
