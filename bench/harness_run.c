/* harness_run.c: fork, exec, wait with a deadline, collect output (see
 * harness_run.h). Output goes to memfds, so a chatty program never blocks
 * on a full pipe and no temporary file is left behind. */
#define _GNU_SOURCE 1
#include "harness_run.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static _Noreturn void exec_child(char *const argv[], char *const envp[], int out_fd, int err_fd) {
  if (dup2(out_fd, STDOUT_FILENO) < 0 || dup2(err_fd, STDERR_FILENO) < 0)
    _exit(126);
  execve(argv[0], argv, envp);
  dprintf(STDERR_FILENO, "cannot run %s: %s\n", argv[0], strerror(errno));
  _exit(127);
}

/* Wait for pid until the deadline; 0 when reaped, -1 when it timed out.
 * A pidfd lets poll() sleep until the child ends; without one (kernels
 * before 5.3) poll the status every 5 ms. */
static int wait_until(pid_t pid, double deadline, int *status) {
  int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
  for (;;) {
    pid_t done = waitpid(pid, status, WNOHANG);
    if (done == pid)
      break;
    if (done < 0 && errno != EINTR) { /* never reaped (SIGCHLD ignored): no status to trust */
      *status = 255 << 8;                /* a failure: exit status 255 */
      break;
    }
    double left = deadline - now_s();
    if (left <= 0) {
      if (pidfd >= 0)
        close(pidfd);
      return -1;
    }
    int wait_ms = pidfd >= 0 ? (int)(left * 1000) + 1 : 5;
    struct pollfd pfd = {.fd = pidfd, .events = POLLIN};
    poll(pidfd >= 0 ? &pfd : NULL, pidfd >= 0 ? 1 : 0, wait_ms);
  }
  if (pidfd >= 0)
    close(pidfd);
  return 0;
}

static char *slurp(int fd) {
  off_t len = lseek(fd, 0, SEEK_END);
  if (len < 0)
    len = 0;
  char *buf = malloc((size_t)len + 1);
  if (buf == NULL)
    abort();
  size_t got = 0;
  while (got < (size_t)len) {
    ssize_t n = pread(fd, buf + got, (size_t)len - got, (off_t)got);
    if (n <= 0)
      break;
    got += (size_t)n;
  }
  buf[got] = '\0';
  return buf;
}

int run_program(char *const argv[], char *const envp[], double timeout_s, struct run_output *out) {
  memset(out, 0, sizeof *out);
  out->exit_code = -1;
  int out_fd = memfd_create("bench-stdout", MFD_CLOEXEC);
  int err_fd = memfd_create("bench-stderr", MFD_CLOEXEC);
  if (out_fd < 0 || err_fd < 0)
    goto fail;
  fflush(NULL);
  double start = now_s();
  pid_t pid = fork();
  if (pid < 0)
    goto fail;
  if (pid == 0)
    exec_child(argv, envp, out_fd, err_fd);
  int status = 0;
  if (wait_until(pid, start + timeout_s, &status) < 0) {
    out->timed_out = true;
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
  }
  out->elapsed_s = now_s() - start;
  if (WIFEXITED(status))
    out->exit_code = WEXITSTATUS(status);
  else if (WIFSIGNALED(status))
    out->signal = WTERMSIG(status);
  out->out = slurp(out_fd);
  out->err = slurp(err_fd);
  close(out_fd);
  close(err_fd);
  return 0;
fail:;
  int saved = errno;
  if (out_fd >= 0)
    close(out_fd);
  if (err_fd >= 0)
    close(err_fd);
  errno = saved;
  return -1;
}

bool run_succeeded(const struct run_output *out) {
  return !out->timed_out && out->signal == 0 && out->exit_code == 0;
}

/* The last non-empty line of text, for a failure message. */
static void last_line(const char *text, char *buf, size_t size) {
  const char *end = text + strlen(text);
  while (end > text && (end[-1] == '\n' || end[-1] == ' '))
    end--;
  const char *start = end;
  while (start > text && start[-1] != '\n')
    start--;
  snprintf(buf, size, "%.*s", (int)(end - start), start);
}

void run_describe_failure(const struct run_output *out, double timeout_s, char *buf, size_t size) {
  char detail[160] = "";
  if (out->err)
    last_line(out->err, detail, sizeof detail);
  if (out->timed_out)
    snprintf(buf, size, "timed out after %.0f s", timeout_s);
  else if (out->signal)
    snprintf(buf, size, "killed by signal %d (%s)%s%s", out->signal, strsignal(out->signal),
             detail[0] ? ": " : "", detail);
  else if (out->exit_code != 0)
    snprintf(buf, size, "exit status %d%s%s", out->exit_code, detail[0] ? ": " : "", detail);
  else
    snprintf(buf, size, "no result line%s%s", detail[0] ? ": " : "", detail);
}

void run_output_free(struct run_output *out) {
  free(out->out);
  free(out->err);
  out->out = out->err = NULL;
}
