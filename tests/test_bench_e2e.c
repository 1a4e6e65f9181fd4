/* Description: the benchmark suite end to end, with tiny parameters:
 * every workload program runs as its own process under glibc and, when
 * libhakmem.so is built, under hakmem with HAKMEM_STATS=1; the report
 * files are written and hold every measurement. Nothing is timed: only
 * that the runs succeed, are parsed and are reported is checked. A run
 * whose result line is not a figure of the workload that ran (another
 * workload's name, a value of nan) fails; the variables that tune an
 * allocator are not passed on; hakmem-bench exits 3 when a measurement
 * failed; bench/page_costs reports every path it knows. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness_suite.h"

extern char **environ;

#define BINDIR BENCH_BUILDDIR "/bench"
#define HAKMEM_SO BENCH_BUILDDIR "/lib/.libs/libhakmem.so"

static char outdir[] = "/tmp/hakmem-bench-e2e-XXXXXX";

/* The report's files in dir, and dir. */
static void remove_outputs(const char *dir) {
  const char *files[] = {"report.md", "results.csv", "report.svg"};
  char path[256];
  for (size_t i = 0; i < 3; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, files[i]);
    unlink(path);
  }
  rmdir(dir);
}

static size_t lines_of(const char *name) {
  char path[256];
  snprintf(path, sizeof path, "%s/%s", outdir, name);
  FILE *f = fopen(path, "r");
  cr_assert_not_null(f, "%s was not written", path);
  size_t n = 0;
  for (int ch; (ch = fgetc(f)) != EOF;)
    n += ch == '\n';
  fclose(f);
  return n;
}

/* The compiler must not have folded a workload's malloc/free pairs away:
 * each program calls malloc (or calloc) and free. */
Test(e2e, workloads_call_the_allocator) {
  if (system("objdump --version >/dev/null 2>&1") != 0)
    cr_skip_test("objdump is not installed");
  for (size_t i = 0; i < workload_count; i++) {
    char cmd[512], line[512];
    snprintf(cmd, sizeof cmd, "objdump -d %s/%s", BINDIR, workload_defs[i].name);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    size_t allocs = 0, frees = 0;
    while (fgets(line, sizeof line, p)) {
      if (strstr(line, "call") == NULL)
        continue;
      allocs += strstr(line, "<malloc@plt>") != NULL || strstr(line, "<calloc@plt>") != NULL;
      frees += strstr(line, "<free@plt>") != NULL;
    }
    cr_expect_eq(pclose(p), 0, "%s", cmd);
    cr_expect_gt(allocs, 0, "%s calls no malloc", workload_defs[i].name);
    cr_expect_gt(frees, 0, "%s calls no free", workload_defs[i].name);
  }
}

Test(e2e, tiny_suite_on_glibc_and_hakmem, .timeout = 240) {
  cr_assert_not_null(mkdtemp(outdir));
  struct suite_options opt = {
      .mode = MODE_TINY,
      .bindir = BINDIR,
      .outdir = outdir,
      .hakmem_so = HAKMEM_SO,
      .configs = "glibc,hakmem",
      .hakmem_version = "test",
      .log = stderr,
  };
  struct suite s;
  cr_assert_eq(suite_prepare(&s, &opt), 0);
  bool with_hakmem = access(HAKMEM_SO, R_OK) == 0;
  cr_assert_eq(s.nconfigs, with_hakmem ? 2u : 1u);
  cr_assert_eq(s.nm, workload_count * s.nconfigs);
  cr_expect_eq(suite_run(&s), 0, "some workloads failed");
  for (size_t i = 0; i < s.nm; i++) {
    const struct measurement *m = &s.m[i];
    const struct bench_config *c = &s.configs[m->config];
    cr_expect(m->ok && !m->skipped, "%s under %s: %s", workload_defs[m->workload].name, c->name, m->error);
    if (!m->ok)
      continue;
    cr_expect_str_eq(m->result.workload, workload_defs[m->workload].name);
    cr_expect_gt(m->result.value, 0);
    cr_expect_str_eq(m->result.allocator, c->expect);
    if (c->hakmem)
      cr_expect(m->ledger.present, "HAKMEM_STATS=1 printed no report for %s",
                workload_defs[m->workload].name);
  }
  cr_assert_eq(suite_write(&s), 0);
  cr_expect_eq(lines_of("results.csv"), s.nm + 1);
  cr_expect_gt(lines_of("report.md"), 20);
  cr_expect_gt(lines_of("report.svg"), 10);
  suite_free(&s);
  remove_outputs(outdir);
}

/* A fake random_mixed in a directory of its own: a shell script whose
 * body is given. */
struct fake_bindir {
  char dir[64], out[64], program[128];
};

static void fake_workload(struct fake_bindir *f, const char *body) {
  strcpy(f->dir, "/tmp/hakmem-bench-fake-XXXXXX");
  strcpy(f->out, "/tmp/hakmem-bench-fake-out-XXXXXX");
  cr_assert_not_null(mkdtemp(f->dir));
  cr_assert_not_null(mkdtemp(f->out));
  snprintf(f->program, sizeof f->program, "%s/random_mixed", f->dir);
  FILE *file = fopen(f->program, "w");
  cr_assert_not_null(file);
  fprintf(file, "#!/bin/sh\n%s\n", body);
  fclose(file);
  cr_assert_eq(chmod(f->program, 0755), 0);
}

static void fake_remove(struct fake_bindir *f) {
  remove_outputs(f->out);
  unlink(f->program);
  rmdir(f->dir);
}

/* One run of the fake under glibc through the suite: whether it counted. */
static bool fake_run_ok(const struct fake_bindir *f) {
  struct suite_options opt = {
      .mode = MODE_TINY, .bindir = f->dir, .outdir = f->out, .hakmem_so = "/nonexistent",
      .workloads = "random_mixed", .configs = "glibc", .hakmem_version = "test", .log = stderr,
  };
  struct suite s;
  cr_assert_eq(suite_prepare(&s, &opt), 0);
  cr_assert_eq(s.nm, 1u);
  size_t failed = suite_run(&s);
  bool ok = s.m[0].ok;
  cr_assert_eq(failed, ok ? 0u : 1u);
  suite_free(&s);
  return ok;
}

#define GOOD_LINE "result workload=random_mixed metric=ops_per_s value=5 better=higher allocator=glibc"

static void refuses(const char *printed, const char *why) {
  struct fake_bindir f;
  char body[256];
  snprintf(body, sizeof body, "echo '%s'", printed);
  fake_workload(&f, body);
  cr_assert(!fake_run_ok(&f), "%s was taken for a measurement", why);
  fake_remove(&f);
}

Test(e2e, a_result_that_is_no_figure_of_the_workload_fails) {
  refuses("result workload=random_mixed metric=ops_per_s value=nan better=higher allocator=glibc", "value=nan");
  refuses("result workload=tiny_hot metric=ops_per_s value=5 better=higher allocator=glibc", "another workload's line");
  refuses("result workload=random_mixed metric=ops_per_s value=0 better=higher allocator=glibc", "value=0");
}

/* Each allocator runs with its defaults: the variables that tune one are
 * not passed on, the others are, and the report names what was dropped. */
Test(e2e, allocator_tuning_variables_are_not_passed_on) {
  /* Only the test's own tuning variables: make check's (HAKMEM_TEST_TIMEOUT
   * and the like) would crowd the note. */
  for (size_t i = 0; environ[i];) {
    if (!config_tunes_an_allocator(environ[i])) {
      i++;
      continue;
    }
    char name[256];
    snprintf(name, sizeof name, "%.*s", (int)strcspn(environ[i], "="), environ[i]);
    cr_assert_eq(unsetenv(name), 0);
  }
  const char *dropped[] = {"MALLOC_ARENA_MAX", "GLIBC_TUNABLES", "MALLOC_CONF", "MIMALLOC_VERBOSE",
                           "TCMALLOC_RELEASE_RATE", "HAKMEM_STATS"};
  for (size_t i = 0; i < sizeof dropped / sizeof dropped[0]; i++)
    cr_assert_eq(setenv(dropped[i], "1", 1), 0);
  cr_assert_eq(setenv("KEPT_BY_BENCH_TEST", "yes", 1), 0);
  struct fake_bindir f;
  fake_workload(&f, "env | grep -q -e '^MALLOC_' -e '^GLIBC_TUNABLES=' -e '^MIMALLOC_' -e '^TCMALLOC_' "
                    "-e '^HAKMEM_' && exit 1\n"
                    "[ \"$KEPT_BY_BENCH_TEST\" = yes ] || exit 1\n"
                    "echo '" GOOD_LINE "'");
  cr_assert(fake_run_ok(&f), "a run saw a tuning variable, or lost another one");

  struct bench_config configs[CONFIG_MAX];
  struct skip_list skips = {0};
  struct config_request req = {.bindir = f.dir, .hakmem_so = "/nonexistent", .only = "glibc"};
  cr_assert_eq(configs_detect(&req, configs, &skips), 1u);
  const char *note = NULL;
  for (size_t i = 0; i < skips.n; i++)
    if (strstr(skips.line[i], "not passed on"))
      note = skips.line[i];
  cr_assert_not_null(note, "the report does not say what was dropped");
  for (size_t i = 0; i < sizeof dropped / sizeof dropped[0]; i++)
    cr_expect(strstr(note, dropped[i]), "the note does not name %s: %s", dropped[i], note);
  cr_expect(strstr(note, "more") == NULL, "the note left names out: %s", note);
  cr_expect_null(strstr(note, "KEPT_BY_BENCH_TEST"), "%s", note);
  fake_remove(&f);
}

/* hakmem-bench's exit status: 0 when everything was measured, 3 when a
 * measurement failed (the report is written either way). */
static int bench_exit_status(const char *body) {
  struct fake_bindir f;
  fake_workload(&f, body);
  char cmd[512];
  snprintf(cmd, sizeof cmd,
           "%s/bench/hakmem-bench --tiny --bindir=%s --out=%s --hakmem-so=/nonexistent "
           "--workloads=random_mixed --configs=glibc >/dev/null 2>&1",
           BENCH_BUILDDIR, f.dir, f.out);
  int status = system(cmd);
  cr_assert(WIFEXITED(status), "hakmem-bench did not exit");
  char report[128];
  snprintf(report, sizeof report, "%s/report.md", f.out);
  cr_expect_eq(access(report, R_OK), 0, "no report");
  fake_remove(&f);
  return WEXITSTATUS(status);
}

Test(e2e, the_harness_exits_3_when_a_measurement_failed) {
  cr_assert_eq(bench_exit_status("echo '" GOOD_LINE "'"), 0);
  cr_assert_eq(bench_exit_status("exit 1"), 3);
}

/* bench/page_costs (run by `make bench` beside the report): a line for
 * every path, each with its best and worst figure or "not available
 * here"; the fault paths every Linux has are measured; and the zero
 * page's line. */
Test(e2e, page_costs_reports_every_path, .timeout = 120) {
  FILE *p = popen(BINDIR "/page_costs", "r");
  cr_assert_not_null(p);
  char line[256];
  cr_assert_not_null(fgets(line, sizeof line, p));
  cr_assert(strncmp(line, "page_costs: ns per 4 KiB page", 29) == 0, "header: %s", line);
  size_t paths = 0, measured = 0;
  bool write_fault = false, memset_resident = false, zero_page = false;
  while (fgets(line, sizeof line, p)) {
    if (strstr(line, "a read fault maps the zero page")) {
      zero_page = strstr(line, "yes") || strstr(line, "no") || strstr(line, "unknown");
      continue;
    }
    paths++;
    double best, worst;
    const char *figures = line + 42; /* the names' column is 40 wide, after two spaces */
    cr_assert_gt(strlen(line), 42, "short line: %s", line);
    if (strstr(line, "not available here"))
      continue;
    cr_assert_eq(sscanf(figures, "%lf %lf", &best, &worst), 2, "no figures: %s", line);
    cr_assert(best > 0 && best <= worst, "best %g, worst %g: %s", best, worst, line);
    measured++;
    write_fault |= strstr(line, "write fault (fresh page)") != NULL;
    memset_resident |= strstr(line, "memset of resident pages") != NULL;
  }
  cr_assert_eq(pclose(p), 0);
  cr_assert_eq(paths, 21, "%zu paths", paths);
  cr_assert(write_fault && memset_resident, "the fault and memset rows were not measured");
  cr_assert(zero_page, "no zero-page line");
  cr_log_info("page_costs measured %zu of %zu paths", measured, paths);
}
