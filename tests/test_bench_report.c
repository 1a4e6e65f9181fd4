/* Description: the harness's reduction and outputs on a synthetic suite
 * with known figures: medians and ratios to the best peer and to hakmem's
 * defaults, then results.csv, report.md and report.svg written and
 * holding what they should. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness_csv.h"
#include "harness_report.h"
#include "harness_suite.h"
#include "harness_table.h"

enum { GLIBC, MIMALLOC, HAKMEM, LZ0, NCONFIGS };
#define REPS 3

static struct suite suite;
static char outdir[] = "/tmp/hakmem-bench-test-XXXXXX";

static void add_config(const char *name, enum config_role role, bool hakmem) {
  struct bench_config *c = &suite.configs[suite.nconfigs++];
  snprintf(c->name, sizeof c->name, "%s", name);
  snprintf(c->label, sizeof c->label, "%s, for the test", name);
  c->role = role;
  c->hakmem = hakmem;
}

/* grow (ns/page, lower is better): glibc 1000, mimalloc 800, hakmem 400,
 * lz0 200 (times rep 1..3 scale 0.9/1.0/1.1); random_mixed (ops/s):
 * glibc 50M, mimalloc 80M, hakmem 100M, lz0 100M. */
static void add_measurement(size_t w, size_t c, int rep) {
  static const double grow[NCONFIGS] = {1000, 800, 400, 200};
  static const double mixed[NCONFIGS] = {50e6, 80e6, 100e6, 100e6};
  static const double scale[REPS] = {1.1, 0.9, 1.0};
  struct measurement *m = &suite.m[suite.nm++];
  bool is_grow = suite.workloads[w] == (size_t)workload_index("grow");
  m->workload = suite.workloads[w];
  m->config = c;
  m->rep = rep;
  m->ok = true;
  struct run_result *r = &m->result;
  snprintf(r->workload, sizeof r->workload, "%s", workload_defs[m->workload].name);
  snprintf(r->metric, sizeof r->metric, is_grow ? "ns_per_page" : "ops_per_s");
  r->higher_is_better = !is_grow;
  r->value = (is_grow ? grow[c] : mixed[c]) * scale[rep];
  r->pages = is_grow ? 1000 : 0;
  r->utime_s = 0.5, r->stime_s = c == LZ0 ? 1.5 : 0.5;
  r->minflt = 1000 + c, r->maxrss_kb = 2048;
  if (suite.configs[c].hakmem) {
    m->ledger.present = true;
    m->ledger.stats.supply[HAKMEM_SUPPLY_FRESH].pages = 900;
    m->ledger.stats.supply[HAKMEM_SUPPLY_FRESH].wait_ns = 900 * 1500;
  }
}

static void setup(void) {
  memset(&suite, 0, sizeof suite);
  cr_assert_not_null(mkdtemp(outdir));
  suite.opt.mode = MODE_QUICK;
  suite.opt.reps = REPS;
  suite.opt.outdir = outdir;
  suite.opt.log = fopen("/dev/null", "w");
  add_config("glibc", ROLE_PEER, false);
  add_config("mimalloc", ROLE_PEER, false);
  add_config("hakmem", ROLE_HAKMEM, true);
  add_config("hakmem-lz0", ROLE_FAULT_PATH, true);
  skip_add(&suite.skips, "skip tcmalloc: for the test");
  suite.workloads[suite.nworkloads++] = (size_t)workload_index("random_mixed");
  suite.workloads[suite.nworkloads++] = (size_t)workload_index("grow");
  snprintf(suite.machine.cpu, sizeof suite.machine.cpu, "Test CPU");
  suite.machine.cores = 2;
  suite.m = calloc(64, sizeof *suite.m);
  for (int rep = 0; rep < REPS; rep++)
    for (size_t w = 0; w < 2; w++)
      for (size_t c = 0; c < NCONFIGS; c++)
        add_measurement(w, c, rep);
  /* one failed run, which must not count in the medians */
  struct measurement *bad = &suite.m[suite.nm++];
  bad->workload = suite.workloads[1];
  bad->config = GLIBC;
  snprintf(bad->error, sizeof bad->error, "exit status 1: grow: out, of memory");
}

static void teardown(void) {
  const char *files[] = {"report.md", "results.csv", "report.svg"};
  char path[256];
  for (size_t i = 0; i < 3; i++) {
    snprintf(path, sizeof path, "%s/%s", outdir, files[i]);
    unlink(path);
  }
  rmdir(outdir);
  fclose(suite.opt.log);
  suite_free(&suite);
}

static char *read_all(const char *name) {
  char path[256];
  snprintf(path, sizeof path, "%s/%s", outdir, name);
  FILE *f = fopen(path, "r");
  cr_assert_not_null(f, "%s was not written", path);
  static char buf[1 << 17];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  buf[n] = '\0';
  fclose(f);
  return buf;
}

static size_t count(const char *text, const char *needle) {
  size_t n = 0;
  for (const char *p = text; (p = strstr(p, needle)) != NULL; p += strlen(needle))
    n++;
  return n;
}

TestSuite(report, .init = setup, .fini = teardown);

Test(report, medians_and_ratios) {
  struct table *t = table_build(&suite);
  const struct cell *grow_glibc = table_cell(t, 1, GLIBC);
  cr_expect_eq(grow_glibc->runs, REPS + 1);
  cr_expect_eq(grow_glibc->failed, 1);
  cr_expect_float_eq(grow_glibc->value.median, 1000, 1e-9);
  cr_expect_float_eq(grow_glibc->value.min, 900, 1e-9);
  cr_expect_float_eq(grow_glibc->value.max, 1100, 1e-9);
  cr_expect_eq(t->w[1].best_peer, MIMALLOC, "800 ns/page beats 1000");
  cr_expect_float_eq(table_cell(t, 1, HAKMEM)->vs_best_peer, 2.0, 1e-9);
  cr_expect_float_eq(table_cell(t, 1, LZ0)->vs_hakmem, 2.0, 1e-9);
  cr_expect_float_eq(table_cell(t, 1, LZ0)->cpu_vs_hakmem, 2.0, 1e-9);
  cr_expect_eq(t->w[0].best_peer, MIMALLOC);
  cr_expect_float_eq(table_cell(t, 0, HAKMEM)->vs_best_peer, 1.25, 1e-9);
  cr_expect_float_eq(table_cell(t, 0, GLIBC)->vs_best_peer, 0.625, 1e-9);
  cr_expect_not_null(table_cell(t, 1, HAKMEM)->median_run);
  cr_expect_float_eq(table_cell(t, 1, HAKMEM)->median_run->result.value, 400, 1e-9);
  table_free(t);
}

Test(report, csv_has_a_row_per_measurement) {
  cr_assert_eq(suite_write(&suite), 0);
  char *csv = read_all("results.csv");
  cr_expect_eq(count(csv, "\n"), suite.nm + 1);
  cr_expect_eq(strncmp(csv, "mode,workload,config,rep,ok,metric,", 35), 0);
  cr_expect(strstr(csv, "fresh_pages,fresh_events,fresh_wait_ns") != NULL);
  cr_expect(strstr(csv, "quick,grow,hakmem,1,1,ns_per_page,lower,440,") != NULL);
  cr_expect(strstr(csv, ",900,0,1350000,") != NULL, "the ledger's fresh row");
  cr_expect(strstr(csv, "\"exit status 1: grow: out, of memory\"\n") != NULL,
            "an error with a comma is quoted");
}

Test(report, markdown_names_the_machine_and_the_ratios) {
  cr_assert_eq(suite_write(&suite), 0);
  char *md = read_all("report.md");
  cr_expect(strstr(md, "| CPU | Test CPU |") != NULL);
  cr_expect(strstr(md, "skip tcmalloc: for the test") != NULL);
  cr_expect(strstr(md, "### grow: ns/page, lower is better") != NULL);
  cr_expect(strstr(md, "| mimalloc 800 ns/page") != NULL, "the best peer in the summary");
  cr_expect(strstr(md, "2.00x") != NULL);
  cr_expect(strstr(md, "1.25x") != NULL);
  cr_expect(strstr(md, "#### grow: fault paths") != NULL);
  cr_expect(strstr(md, "900 (1500 ns)") != NULL, "ledger pages and wait per page");
  cr_expect(strstr(md, "## Failed measurements (1)") != NULL);
}

Test(report, svg_draws_a_bar_per_ratio) {
  cr_assert_eq(suite_write(&suite), 0);
  char *svg = read_all("report.svg");
  cr_expect_eq(strncmp(svg, "<svg ", 5), 0);
  cr_expect(strstr(svg, "</svg>\n") != NULL);
  /* allocator panel: 2 workloads x 3 allocators; fault panel: grow and
   * random_mixed, hakmem and lz0 */
  cr_expect_eq(count(svg, "<title>"), 2 * 3 + 2 * 2);
  cr_expect(strstr(svg, "<title>grow hakmem-lz0: 2.00x</title>") != NULL);
  cr_expect(strstr(svg, "1.00 = best of glibc, mimalloc, jemalloc, tcmalloc") != NULL);
}
