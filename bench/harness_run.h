/* harness_run.h: run one program as its own process and capture what it
 * printed, with a time limit. */
#ifndef BENCH_HARNESS_RUN_H
#define BENCH_HARNESS_RUN_H

#include <stdbool.h>
#include <stddef.h>

struct run_output {
  int exit_code;    /* the exit status, or -1 when it did not exit */
  int signal;       /* the signal that ended it, or 0 */
  bool timed_out;   /* killed after the time limit */
  double elapsed_s; /* from fork to reaping */
  char *out, *err;  /* everything written to stdout and stderr (malloc'ed) */
};

/* Run argv[0] (a path) with argv and exactly the environment envp; kill
 * it after timeout_s seconds. Returns 0 when it was run (whatever its
 * outcome), -1 with errno when it could not be started. */
int run_program(char *const argv[], char *const envp[], double timeout_s, struct run_output *out);

/* True when the program exited with status 0 in time. */
bool run_succeeded(const struct run_output *out);

/* One line describing how a failed run ended ("exit 1", "signal 11",
 * "timed out after 20 s") into buf. */
void run_describe_failure(const struct run_output *out, double timeout_s, char *buf, size_t size);

void run_output_free(struct run_output *out);

#endif /* BENCH_HARNESS_RUN_H */
