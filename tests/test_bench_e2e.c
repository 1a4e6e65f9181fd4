/* Description: the benchmark suite end to end, with tiny parameters:
 * every workload program runs as its own process under glibc and, when
 * libhakmem.so is built, under hakmem with HAKMEM_STATS=1; the report
 * files are written and hold every measurement. Nothing is timed: only
 * that the runs succeed, are parsed and are reported is checked. A run
 * whose result line is not a figure of the workload that ran (another
 * workload's name, a value of nan) fails. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness_suite.h"

#define BINDIR BENCH_BUILDDIR "/bench"
#define HAKMEM_SO BENCH_BUILDDIR "/lib/.libs/libhakmem.so"

static char outdir[] = "/tmp/hakmem-bench-e2e-XXXXXX";

static void remove_outputs(void) {
  const char *files[] = {"report.md", "results.csv", "report.svg"};
  char path[256];
  for (size_t i = 0; i < 3; i++) {
    snprintf(path, sizeof path, "%s/%s", outdir, files[i]);
    unlink(path);
  }
  rmdir(outdir);
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
  remove_outputs();
}

/* Fake workload programs that print result lines the harness must refuse. */
static void refuses(const char *printed, const char *why) {
  char dir[] = "/tmp/hakmem-bench-fake-XXXXXX", path[128], out[] = "/tmp/hakmem-bench-fake-out-XXXXXX";
  cr_assert_not_null(mkdtemp(dir));
  cr_assert_not_null(mkdtemp(out));
  snprintf(path, sizeof path, "%s/random_mixed", dir);
  FILE *f = fopen(path, "w");
  cr_assert_not_null(f);
  fprintf(f, "#!/bin/sh\necho '%s'\n", printed);
  fclose(f);
  cr_assert_eq(chmod(path, 0755), 0);
  struct suite_options opt = {
      .mode = MODE_TINY, .bindir = dir, .outdir = out, .hakmem_so = "/nonexistent",
      .workloads = "random_mixed", .configs = "glibc", .hakmem_version = "test", .log = stderr,
  };
  struct suite s;
  cr_assert_eq(suite_prepare(&s, &opt), 0);
  cr_assert_eq(s.nm, 1u);
  cr_assert_eq(suite_run(&s), 1, "%s was taken for a measurement", why);
  cr_assert(!s.m[0].ok);
  suite_free(&s);
  unlink(path);
  rmdir(dir);
  rmdir(out);
}

Test(e2e, a_result_that_is_no_figure_of_the_workload_fails) {
  refuses("result workload=random_mixed metric=ops_per_s value=nan better=higher allocator=glibc", "value=nan");
  refuses("result workload=tiny_hot metric=ops_per_s value=5 better=higher allocator=glibc", "another workload's line");
  refuses("result workload=random_mixed metric=ops_per_s value=0 better=higher allocator=glibc", "value=0");
}
