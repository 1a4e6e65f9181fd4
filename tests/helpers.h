/* Description: helpers shared by the API, death and stress tests: a
 * seeded xorshift generator, block patterns derived from (slot,
 * generation), the resident set size from /proc/self/statm, and
 * expect_abort_line(), which runs a bad operation in a forked child with
 * its stderr on a pipe and checks the one-line report hakmem must print
 * before abort().
 *
 * Everything here is static: each test program is one translation unit. */
#ifndef HAKMEM_TESTS_HELPERS_H
#define HAKMEM_TESTS_HELPERS_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <criterion/criterion.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rss.h"
#include "unnamed_file.h"

/* Hide a pointer's provenance from the compiler, so that gcc neither folds
 * a malloc/free pair nor warns about freeing a non-heap object. */
static inline void *launder(void *p)
{
  __asm__ volatile("" : "+r"(p) : : "memory");
  return p;
}

static inline size_t launder_size(size_t n)
{
  __asm__ volatile("" : "+r"(n));
  return n;
}

/* xorshift64*: small, seeded, reproducible. */
static inline uint64_t xorshift64(uint64_t *state)
{
  uint64_t x = *state;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *state = x;
  return x * 0x2545F4914F6CDD1DULL;
}

static inline uint64_t mix64(uint64_t x)
{
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

/* The pattern of a block is a function of (tag, generation) and of the
 * byte offset, so a block that moved, was overwritten by another block or
 * was handed out twice does not keep a matching pattern. */
static inline uint64_t pattern_word(uint64_t base, size_t i)
{
  return base ^ ((uint64_t)i * 0x9E3779B97F4A7C15ULL);
}

static inline void pattern_fill(void *p, size_t n, uint64_t tag, uint64_t gen)
{
  uint64_t base = mix64(tag * 0x100000001B3ULL + gen + 1);
  unsigned char *b = p;
  size_t words = n / 8;
  for (size_t i = 0; i < words; i++) {
    uint64_t w = pattern_word(base, i);
    memcpy(b + i * 8, &w, 8);
  }
  uint64_t w = pattern_word(base, words);
  for (size_t j = words * 8; j < n; j++)
    b[j] = (unsigned char)(w >> (8 * (j % 8)));
}

/* Returns the offset of the first byte that differs, or (size_t)-1. */
static inline size_t pattern_check(const void *p, size_t n, uint64_t tag, uint64_t gen)
{
  uint64_t base = mix64(tag * 0x100000001B3ULL + gen + 1);
  const unsigned char *b = p;
  size_t words = n / 8;
  for (size_t i = 0; i < words; i++) {
    uint64_t w = pattern_word(base, i), v;
    memcpy(&v, b + i * 8, 8);
    if (v != w)
      for (size_t j = 0; j < 8; j++)
        if (b[i * 8 + j] != (unsigned char)(w >> (8 * j)))
          return i * 8 + j;
  }
  uint64_t w = pattern_word(base, words);
  for (size_t j = words * 8; j < n; j++)
    if (b[j] != (unsigned char)(w >> (8 * (j % 8))))
      return j;
  return (size_t)-1;
}

static inline int all_zero(const void *p, size_t n)
{
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++)
    if (b[i])
      return 0;
  return 1;
}

#define KiB ((size_t)1024)
#define MiB ((size_t)1024 * 1024)

/* ---- Re-running tests under other options ------------------------------
 *
 * hakmem reads its HAKMEM_* options once, at start-up, so a test that must
 * hold under other options runs this very program again with them in its
 * environment ("NAME=VALUE NAME=VALUE") and a Criterion filter selecting
 * the tests to repeat. Criterion marks its workers with BXFI_MAP, which the
 * new program must not inherit. Asserts that the run passed and ran at
 * least one test. */
static inline void rerun_with_env(const char *filter, const char *env)
{
  int fd = unnamed_file();
  fflush(NULL);
  pid_t pid = fork();
  cr_assert(pid >= 0, "fork: %s", strerror(errno));
  if (pid == 0) {
    dup2(fd, STDOUT_FILENO);
    dup2(fd, STDERR_FILENO);
    unsetenv("BXFI_MAP");
    static char vars[512];
    snprintf(vars, sizeof vars, "%s", env);
    char *save = NULL;
    for (char *v = strtok_r(vars, " ", &save); v; v = strtok_r(NULL, " ", &save))
      putenv(v);
    char filter_arg[256];
    snprintf(filter_arg, sizeof filter_arg, "--filter=%s", filter);
    execl("/proc/self/exe", "rerun", filter_arg, "--jobs=1", (char *)NULL);
    _exit(127);
  }
  int status = 0;
  cr_assert_eq(waitpid(pid, &status, 0), pid);
  /* Its end: the synthesis comes last, after whatever the run printed. */
  char out[4096];
  off_t size = lseek(fd, 0, SEEK_END);
  off_t from = size > (off_t)sizeof out - 1 ? size - (off_t)(sizeof out - 1) : 0;
  ssize_t n = pread(fd, out, sizeof out - 1, from);
  close(fd);
  out[n > 0 ? n : 0] = '\0';
  cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s with %s failed (status %#x):\n%s",
            filter, env, status, out);
  const char *tested = strstr(out, "Tested: ");
  cr_assert(tested && atoi(tested + 8) > 0, "%s with %s ran no test:\n%s", filter, env, out);
}

/* ---- Death tests -------------------------------------------------------
 *
 * A bad free must make hakmem print exactly one line to stderr, starting
 * with "hakmem: ", naming the problem and the address in hex, and then
 * abort(). expect_abort_line() checks the line and the signal in a forked
 * child (so the test can read the child's stderr), and then the caller
 * runs the same operation in the test process itself, whose death by
 * SIGABRT Criterion checks through `.signal = SIGABRT`. */

typedef void (*bad_op_fn)(void *arg);

static inline void no_core_dumps(void)
{
  struct rlimit rl = {0, 0};
  setrlimit(RLIMIT_CORE, &rl);
}

/* Does `line` contain a 0x-prefixed hex number equal to addr? */
static inline int line_has_address(const char *line, uintptr_t addr)
{
  for (const char *s = line; (s = strstr(s, "0x")) != NULL; s += 2) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s + 2, &end, 16);
    if (end != s + 2 && errno == 0 && (uintptr_t)v == addr)
      return 1;
  }
  return 0;
}

/* Does `line` satisfy `spec`: requirements separated by ';', each a list
 * of alternatives separated by '|', compared without regard to case. For
 * example "realloc;already freed|double free". */
static inline int line_matches(const char *line, const char *spec)
{
  char buf[256];
  snprintf(buf, sizeof buf, "%s", spec);
  char *save_req = NULL;
  for (char *req = strtok_r(buf, ";", &save_req); req; req = strtok_r(NULL, ";", &save_req)) {
    int any = 0;
    char *save_alt = NULL;
    for (char *alt = strtok_r(req, "|", &save_alt); alt && !any; alt = strtok_r(NULL, "|", &save_alt))
      any = strcasestr(line, alt) != NULL;
    if (!any)
      return 0;
  }
  return 1;
}

/* Run op(arg) in a child whose stderr is a pipe; assert that the child
 * died of SIGABRT after writing exactly one line that starts with
 * "hakmem: ", contains `addr` in hex and matches `keyword` (see
 * line_matches; NULL to skip). */
static inline void expect_abort_line(bad_op_fn op, void *arg, uintptr_t addr, const char *keyword)
{
  int fds[2];
  cr_assert(pipe(fds) == 0, "pipe: %s", strerror(errno));
  fflush(NULL);
  pid_t pid = fork();
  cr_assert(pid >= 0, "fork: %s", strerror(errno));
  if (pid == 0) {
    close(fds[0]);
    dup2(fds[1], STDERR_FILENO);
    close(fds[1]);
    no_core_dumps();
    alarm(30); /* a hang becomes SIGALRM, not a stuck test */
    op(arg);
    _exit(0); /* not reached when hakmem aborts */
  }
  close(fds[1]);
  char out[4096];
  size_t len = 0;
  for (;;) {
    ssize_t n = read(fds[0], out + len, sizeof out - 1 - len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    len += (size_t)n;
    if (len == sizeof out - 1)
      break;
  }
  close(fds[0]);
  out[len] = '\0';
  int status = 0;
  cr_assert(waitpid(pid, &status, 0) == pid, "waitpid: %s", strerror(errno));

  cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
            "expected death by SIGABRT, got %s %d; stderr was: \"%s\"",
            WIFSIGNALED(status) ? "signal" : "exit status",
            WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status), out);
  cr_assert(len > 0, "hakmem aborted without a word on stderr");
  cr_assert(strlen(out) == len, "stderr holds a NUL byte: \"%s\"", out);
  cr_assert(out[len - 1] == '\n', "stderr does not end with a newline: \"%s\"", out);
  cr_assert(memchr(out, '\n', len) == out + len - 1,
            "stderr holds more than one line: \"%s\"", out);
  cr_assert(strncmp(out, "hakmem: ", 8) == 0, "line does not start with \"hakmem: \": \"%s\"", out);
  cr_assert(line_has_address(out, addr), "line does not name the address %#lx: \"%s\"",
            (unsigned long)addr, out);
  if (keyword)
    cr_assert(line_matches(out, keyword), "line does not name the problem (\"%s\"): \"%s\"",
              keyword, out);
}

/* The whole death test: check the line in a child, then do the bad
 * operation here, where it must raise SIGABRT. */
/* Allocate blocks of `size` (a divisor of the page size) until four of
 * them fill one page whole: those go in out[], in address order, and the
 * others stay allocated, so that their slab does not empty. */
static inline void blocks_of_one_page(size_t size, void *out[4])
{
  enum { MAX = 1024 };
  static char *got[MAX];
  size_t per_page = 4096 / size;
  cr_assert_eq(per_page, 4, "blocks_of_one_page wants four blocks to a page");
  for (size_t n = 0; n < MAX; n++) {
    got[n] = malloc(launder_size(size));
    cr_assert_not_null(got[n]);
    memset(got[n], 0x42, size);
    uintptr_t page = (uintptr_t)got[n] & ~(uintptr_t)4095;
    size_t found = 0;
    for (size_t i = 0; i <= n; i++)
      if (((uintptr_t)got[i] & ~(uintptr_t)4095) == page)
        out[((uintptr_t)got[i] - page) / size] = got[i], found++;
    if (found == per_page)
      return;
  }
  cr_assert_fail("no page filled with %zu-byte blocks in %d allocations", size, (int)MAX);
}

static inline void die_with_line(bad_op_fn op, void *arg, uintptr_t addr, const char *keyword)
{
  expect_abort_line(op, arg, addr, keyword);
  no_core_dumps();
  op(arg);
  cr_assert_fail("the bad operation returned in the test process instead of aborting");
}

#endif /* HAKMEM_TESTS_HELPERS_H */
