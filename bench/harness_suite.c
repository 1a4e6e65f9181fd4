/* harness_suite.c: preparing, running and writing out a suite (see
 * harness_suite.h). */
#define _GNU_SOURCE 1
#include "harness_suite.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "harness_format.h"
#include "harness_report.h"
#include "harness_run.h"

static FILE *log_of(const struct suite *s) {
  return s->opt.log ? s->opt.log : stdout;
}

static size_t select_workloads(struct suite *s) {
  for (size_t i = 0; i < workload_count && s->nworkloads < 16; i++)
    if (name_in_list(s->opt.workloads, workload_defs[i].name))
      s->workloads[s->nworkloads++] = i;
  return s->nworkloads;
}

static void print_setup(const struct suite *s, size_t steps) {
  FILE *log = log_of(s);
  fprintf(log, "hakmem-bench: %s mode, %d repetitions, %zu measurements, one process each\n",
          mode_name(s->opt.mode), s->opt.reps, steps);
  fprintf(log, "machine: %s, %ld cores, %s, THP %s\n", s->machine.cpu, s->machine.cores,
          s->machine.kernel, s->machine.thp);
  for (size_t i = 0; i < s->skips.n; i++)
    fprintf(log, "%s\n", s->skips.line[i]);
  fprintf(log, "configurations:");
  for (size_t i = 0; i < s->nconfigs; i++)
    fprintf(log, " %s", s->configs[i].name);
  fprintf(log, "\n");
  fflush(log);
}

int suite_prepare(struct suite *s, const struct suite_options *opt) {
  memset(s, 0, sizeof *s);
  s->opt = *opt;
  if (s->opt.reps <= 0)
    s->opt.reps = mode_repetitions(opt->mode);
  if (s->opt.timeout_s <= 0)
    s->opt.timeout_s = mode_timeout_s(opt->mode);
  if (s->opt.budget_s == 0)
    s->opt.budget_s = mode_budget_s(opt->mode);
  struct config_request req = {opt->bindir, opt->hakmem_so, opt->peer_dir, opt->configs,
                               opt->uffd_built};
  s->nconfigs = configs_detect(&req, s->configs, &s->skips);
  machine_collect(&s->machine, opt->hakmem_version ? opt->hakmem_version : "unknown");
  if (select_workloads(s) == 0 || s->nconfigs == 0) {
    fprintf(log_of(s), "hakmem-bench: no workload or no configuration to run\n");
    return -1;
  }
  size_t max = (size_t)s->opt.reps * s->nworkloads * s->nconfigs;
  struct plan_step *steps = malloc(max * sizeof *steps);
  s->m = calloc(max, sizeof *s->m);
  if (steps == NULL || s->m == NULL)
    abort();
  s->nm = plan_schedule(s->workloads, s->nworkloads, s->configs, s->nconfigs, s->opt.reps, steps);
  for (size_t i = 0; i < s->nm; i++) {
    s->m[i].workload = steps[i].workload;
    s->m[i].config = steps[i].config;
    s->m[i].rep = steps[i].rep;
  }
  free(steps);
  print_setup(s, s->nm);
  return 0;
}

/* Check what a finished run printed; fills m's result, ledger, error. */
static void judge(struct measurement *m, const struct bench_config *c, const struct run_output *out,
                  double timeout_s) {
  if (!run_succeeded(out) || result_parse_output(out->out, &m->result) != 0) {
    run_describe_failure(out, timeout_s, m->error, sizeof m->error);
    return;
  }
  /* A line from another program, or a figure that is no measurement,
   * would be taken for this one's. */
  const char *name = workload_defs[m->workload].name;
  if (strcmp(m->result.workload, name) != 0 || !isfinite(m->result.value) || m->result.value <= 0) {
    snprintf(m->error, sizeof m->error, "printed workload=%.40s value=%g, not a figure of %s", m->result.workload,
             m->result.value, name);
    return;
  }
  if (strcmp(m->result.allocator, c->expect) != 0) {
    snprintf(m->error, sizeof m->error, "served by %s, not %s", m->result.allocator, c->expect);
    return;
  }
  if (c->hakmem)
    ledger_parse(out->err, &m->ledger);
  m->ok = true;
}

static void measure(struct suite *s, struct measurement *m, bool *timed_out) {
  const struct workload_def *w = &workload_defs[m->workload];
  const struct bench_config *c = &s->configs[m->config];
  char program[600], argbuf[256], *argv[32];
  snprintf(program, sizeof program, "%s/%s%s", s->opt.bindir, w->name,
           c->static_binary ? "-static" : "");
  plan_argv(w, s->opt.mode, program, argbuf, sizeof argbuf, argv);
  char **env = config_environment(c);
  struct run_output out = {0};
  if (run_program(argv, env, s->opt.timeout_s, &out) != 0)
    snprintf(m->error, sizeof m->error, "cannot run %.160s: %.60s", program, strerror(errno));
  else
    judge(m, c, &out, s->opt.timeout_s);
  *timed_out = out.timed_out;
  run_output_free(&out);
  config_environment_free(env);
}

static void progress(const struct suite *s, size_t i) {
  const struct measurement *m = &s->m[i];
  FILE *log = log_of(s);
  fprintf(log, "[%3zu/%zu] %-13s %-14s rep %d/%d  ", i + 1, s->nm, workload_defs[m->workload].name,
          s->configs[m->config].name, m->rep + 1, s->opt.reps);
  if (m->skipped) {
    fprintf(log, "skipped: %s\n", m->error);
  } else if (m->ok) {
    char fig[32];
    format_figure(m->result.value, fig, sizeof fig);
    fprintf(log, "%8s %-9s minflt %-8llu maxrss %6.1f MiB\n", fig, metric_unit(m->result.metric),
            (unsigned long long)m->result.minflt, (double)m->result.maxrss_kb / 1024);
  } else {
    fprintf(log, "FAILED: %s\n", m->error);
  }
  fflush(log);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The version the loaded libhakmem printed in its report, beside the one
 * the harness was built with. */
static void note_library_version(struct suite *s) {
  for (size_t i = 0; i < s->nm; i++) {
    const char *v = s->m[i].ledger.version;
    if (!s->m[i].ok || v[0] == '\0')
      continue;
    char *mine = s->machine.hakmem_version;
    size_t len = strlen(mine);
    snprintf(mine + len, sizeof s->machine.hakmem_version - len, " (libhakmem says %.24s)", v);
    return;
  }
}

size_t suite_run(struct suite *s) {
  size_t failed = 0;
  double start = now_s();
  for (size_t i = 0; i < s->nm; i++) {
    struct measurement *m = &s->m[i];
    bool timed_out = false;
    if (s->opt.budget_s > 0 && now_s() - start > s->opt.budget_s) {
      m->skipped = true;
      snprintf(m->error, sizeof m->error, "the time budget of %.0f s was spent", s->opt.budget_s);
    } else if (s->hung[m->config]) {
      m->skipped = true;
      snprintf(m->error, sizeof m->error, "%s timed out in an earlier run",
               s->configs[m->config].name);
    } else {
      measure(s, m, &timed_out);
      failed += !m->ok;
      s->hung[m->config] |= timed_out;
    }
    progress(s, i);
  }
  note_library_version(s);
  return failed;
}

/* mkdir -p */
static int make_dirs(const char *path) {
  char buf[1024];
  snprintf(buf, sizeof buf, "%s", path);
  for (char *p = buf + 1; *p; p++) {
    if (*p != '/')
      continue;
    *p = '\0';
    if (mkdir(buf, 0777) != 0 && errno != EEXIST)
      return -1;
    *p = '/';
  }
  return mkdir(buf, 0777) != 0 && errno != EEXIST ? -1 : 0;
}

int suite_write(const struct suite *s) {
  FILE *log = log_of(s);
  if (make_dirs(s->opt.outdir) != 0) {
    fprintf(log, "hakmem-bench: cannot create %s: %s\n", s->opt.outdir, strerror(errno));
    return -1;
  }
  struct table *t = table_build(s);
  int rc = report_write_files(s, t);
  report_print_final(s, t, log);
  if (rc == 0)
    fprintf(log, "wrote %s/report.md, %s/results.csv, %s/report.svg\n", s->opt.outdir,
            s->opt.outdir, s->opt.outdir);
  table_free(t);
  return rc;
}

void suite_free(struct suite *s) {
  free(s->m);
  s->m = NULL;
  s->nm = 0;
}
