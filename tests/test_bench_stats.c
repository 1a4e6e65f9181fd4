/* Description: the harness's arithmetic and plumbing: medians with min
 * and max, speed ratios, the round-robin schedule, configuration
 * environments, and running a program with captured output and a time
 * limit. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness_config.h"
#include "harness_plan.h"
#include "harness_run.h"
#include "harness_stats.h"

Test(summary, odd_count_takes_the_middle) {
  double v[] = {5, 1, 4, 2, 3};
  struct summary s = summarize(v, 5);
  cr_expect_eq(s.n, 5);
  cr_expect_float_eq(s.median, 3, 1e-12);
  cr_expect_float_eq(s.min, 1, 1e-12);
  cr_expect_float_eq(s.max, 5, 1e-12);
  cr_expect_float_eq(v[0], 5, 1e-12, "the samples are left in place");
}

Test(summary, even_count_averages_the_middle_two) {
  double v[] = {10, 40, 20, 30};
  struct summary s = summarize(v, 4);
  cr_expect_float_eq(s.median, 25, 1e-12);
  cr_expect_float_eq(s.min, 10, 1e-12);
  cr_expect_float_eq(s.max, 40, 1e-12);
}

Test(summary, one_and_none) {
  double v[] = {7};
  struct summary s = summarize(v, 1);
  cr_expect_float_eq(s.median, 7, 1e-12);
  s = summarize(NULL, 0);
  cr_expect_eq(s.n, 0);
  cr_expect_float_eq(s.median, 0, 1e-12);
}

Test(ratio, faster_is_above_one_either_way) {
  cr_expect_float_eq(speed_ratio(120, 100, true), 1.2, 1e-12);
  cr_expect_float_eq(speed_ratio(50, 100, false), 2.0, 1e-12, "half the ns per page");
  cr_expect_float_eq(speed_ratio(0, 100, true), 0, 1e-12);
  cr_expect_float_eq(better_of(3, 5, true), 5, 1e-12);
  cr_expect_float_eq(better_of(3, 5, false), 3, 1e-12);
  cr_expect_float_eq(better_of(0, 5, false), 5, 1e-12, "a missing figure loses");
}

static struct bench_config config(const char *name, enum config_role role) {
  struct bench_config c = {.role = role};
  snprintf(c.name, sizeof c.name, "%s", name);
  return c;
}

Test(schedule, interleaves_configurations_and_spares_fault_paths) {
  struct bench_config configs[] = {config("glibc", ROLE_PEER), config("hakmem", ROLE_HAKMEM),
                                   config("hakmem-lz0", ROLE_FAULT_PATH)};
  size_t workloads[] = {(size_t)workload_index("tiny_hot"), (size_t)workload_index("grow")};
  cr_assert(!workload_defs[workloads[0]].fault_heavy && workload_defs[workloads[1]].fault_heavy);
  struct plan_step steps[3 * 2 * 3];
  size_t n = plan_schedule(workloads, 2, configs, 3, 3, steps);
  cr_assert_eq(n, 3 * (2 + 3), "the fault path runs only the fault-heavy workload");
  for (size_t i = 0; i < n; i++) {
    if (steps[i].config == 2)
      cr_expect_eq(steps[i].workload, workloads[1]);
    if (i > 0 && steps[i].workload == steps[i - 1].workload)
      cr_expect_neq(steps[i].config, steps[i - 1].config, "no configuration runs in a block");
  }
  cr_expect_neq(steps[0].config, steps[5].config, "each repetition starts one further");
}

Test(plan, argv_of_a_mode) {
  char program[] = "bench/grow", buf[128], *argv[32];
  int argc = plan_argv(&workload_defs[workload_index("grow")], MODE_FULL, program, buf,
                       sizeof buf, argv);
  cr_assert_eq(argc, 3);
  cr_expect_str_eq(argv[0], "bench/grow");
  cr_expect_str_eq(argv[1], "--bytes=256Mi");
  cr_expect_str_eq(argv[2], "--rounds=5");
  cr_expect_null(argv[3]);
  cr_expect_eq(workload_index("no-such"), -1);
}

Test(config, name_lists) {
  cr_expect(name_in_list(NULL, "glibc"));
  cr_expect(name_in_list("glibc,hakmem", "hakmem"));
  cr_expect_not(name_in_list("glibc,hakmem", "hakmem-lz0"));
  cr_expect_not(name_in_list("glibc", "glib"));
}

static bool has_entry(char **env, const char *entry) {
  for (size_t i = 0; env[i]; i++)
    if (strcmp(env[i], entry) == 0)
      return true;
  return false;
}

Test(config, environment_replaces_preload_and_hakmem_settings) {
  setenv("LD_PRELOAD", "/some/other.so", 1);
  setenv("HAKMEM_UFFD", "1", 1);
  setenv("BENCH_TEST_KEEP", "yes", 1);
  struct bench_config c = config("hakmem-lz2", ROLE_FAULT_PATH);
  c.hakmem = true;
  snprintf(c.preload, sizeof c.preload, "/build/lib/.libs/libhakmem.so");
  c.env[0] = "HAKMEM_SS_LAZY_ZERO=2";
  char **env = config_environment(&c);
  cr_expect(has_entry(env, "LD_PRELOAD=/build/lib/.libs/libhakmem.so"));
  cr_expect(has_entry(env, "HAKMEM_STATS=1"));
  cr_expect(has_entry(env, "HAKMEM_SS_LAZY_ZERO=2"));
  cr_expect(has_entry(env, "BENCH_TEST_KEEP=yes"));
  cr_expect_not(has_entry(env, "LD_PRELOAD=/some/other.so"));
  cr_expect_not(has_entry(env, "HAKMEM_UFFD=1"));
  config_environment_free(env);

  struct bench_config glibc = config("glibc", ROLE_PEER);
  env = config_environment(&glibc);
  for (size_t i = 0; env[i]; i++)
    cr_expect(strncmp(env[i], "LD_PRELOAD=", 11) != 0 && strncmp(env[i], "HAKMEM_", 7) != 0);
  config_environment_free(env);
}

Test(run, captures_both_streams_and_the_exit_status) {
  char *argv[] = {"/bin/sh", "-c", "echo out; echo err >&2; exit 3", NULL};
  char *envp[] = {NULL};
  struct run_output out;
  cr_assert_eq(run_program(argv, envp, 10, &out), 0);
  cr_expect_str_eq(out.out, "out\n");
  cr_expect_str_eq(out.err, "err\n");
  cr_expect_eq(out.exit_code, 3);
  cr_expect_not(run_succeeded(&out));
  char why[128];
  run_describe_failure(&out, 10, why, sizeof why);
  cr_expect_str_eq(why, "exit status 3: err");
  run_output_free(&out);
}

Test(run, kills_a_program_past_its_time_limit) {
  char *argv[] = {"/bin/sleep", "30", NULL};
  char *envp[] = {NULL};
  struct run_output out;
  cr_assert_eq(run_program(argv, envp, 0.2, &out), 0);
  cr_expect(out.timed_out);
  cr_expect_eq(out.signal, 9);
  cr_expect_lt(out.elapsed_s, 10);
  run_output_free(&out);
}

Test(run, a_missing_program_fails_cleanly) {
  char *argv[] = {"/nonexistent/program", NULL};
  char *envp[] = {NULL};
  struct run_output out;
  cr_assert_eq(run_program(argv, envp, 10, &out), 0);
  cr_expect_eq(out.exit_code, 127);
  cr_expect(strstr(out.err, "cannot run /nonexistent/program") != NULL);
  run_output_free(&out);
}
