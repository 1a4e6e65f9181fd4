/* hakmem-bench: run the benchmark suite and write its report.
 *
 *   hakmem-bench [--quick | --full | --tiny] [--reps=N] [--out=DIR]
 *                [--bindir=DIR] [--hakmem-so=PATH] [--peer-dir=DIR]
 *                [--workloads=a,b] [--configs=a,b] [--timeout=S] [--budget=S]
 *
 * make bench and make bench-quick call it from the build directory. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "harness_suite.h"

#ifdef HAKMEM_ENABLE_UFFD
#define UFFD_BUILT true
#else
#define UFFD_BUILT false
#endif

static void usage(FILE *f) {
  fprintf(f, "usage: hakmem-bench [--quick|--full|--tiny] [--reps=N] [--out=DIR] [--bindir=DIR]\n"
             "                    [--hakmem-so=PATH] [--peer-dir=DIR] [--workloads=a,b,...]\n"
             "                    [--configs=a,b,...] [--timeout=SECONDS] [--budget=SECONDS]\n"
             "--budget: stop starting measurements after this long (quick: 150; 0: none)\n"
             "exit status: 0 when every measurement ran, 3 when some failed (the report\n"
             "says which), 1 when the report could not be written, 2 for bad arguments\n"
             "workloads:");
  for (size_t i = 0; i < workload_count; i++)
    fprintf(f, " %s", workload_defs[i].name);
  fprintf(f, "\nconfigs: glibc mimalloc jemalloc tcmalloc hakmem hakmem-static hakmem-lz0 "
             "hakmem-lz1 hakmem-lz2 hakmem-thp pager-fault pager-direct\n");
}

/* The value of "--name=value" when arg is that option, else NULL. */
static const char *option(const char *arg, const char *name) {
  size_t len = strlen(name);
  return strncmp(arg, name, len) == 0 && arg[len] == '=' ? arg + len + 1 : NULL;
}

static int parse_args(int argc, char **argv, struct suite_options *o) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v;
    if (strcmp(a, "--quick") == 0)
      o->mode = MODE_QUICK;
    else if (strcmp(a, "--full") == 0)
      o->mode = MODE_FULL;
    else if (strcmp(a, "--tiny") == 0)
      o->mode = MODE_TINY;
    else if ((v = option(a, "--reps")))
      o->reps = atoi(v);
    else if ((v = option(a, "--timeout")))
      o->timeout_s = atof(v);
    else if ((v = option(a, "--budget")))
      o->budget_s = atof(v) > 0 ? atof(v) : -1;
    else if ((v = option(a, "--out")))
      o->outdir = v;
    else if ((v = option(a, "--bindir")))
      o->bindir = v;
    else if ((v = option(a, "--hakmem-so")))
      o->hakmem_so = v;
    else if ((v = option(a, "--peer-dir")))
      o->peer_dir = v;
    else if ((v = option(a, "--workloads")))
      o->workloads = v;
    else if ((v = option(a, "--configs")))
      o->configs = v;
    else
      return -1;
  }
  return 0;
}

int main(int argc, char **argv) {
  /* A SIGCHLD ignored by whoever started the harness would leave no child
   * to reap: waitpid fails, and a run's status would be unknown. */
  signal(SIGCHLD, SIG_DFL);
  struct suite_options o = {
      .mode = MODE_QUICK,
      .bindir = "bench",
      .outdir = "bench-report",
      .hakmem_so = "lib/.libs/libhakmem.so",
      .uffd_built = UFFD_BUILT,
      .hakmem_version = PACKAGE_VERSION,
  };
  if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
    usage(stdout);
    return 0;
  }
  if (parse_args(argc, argv, &o) != 0) {
    usage(stderr);
    return 2;
  }
  struct suite s;
  if (suite_prepare(&s, &o) != 0)
    return 1;
  size_t failed = suite_run(&s);
  int rc = suite_write(&s);
  if (failed)
    printf("hakmem-bench: %zu of %zu measurements failed (listed above)\n", failed, s.nm);
  suite_free(&s);
  if (rc != 0)
    return 1;
  return failed ? 3 : 0;
}
