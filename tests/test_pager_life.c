/* Description: the pager's life cycle: start, stop and restart through
 * hakmem.h; regions that existed before the start are served; stopping
 * while threads fault leaves none of them waiting; HAKMEM_UFFD=1 starts it
 * at load and it stops at exit (a real program under LD_PRELOAD reading
 * into fresh malloc'd memory); without the right to a full userfaultfd it
 * says so in one line and the default path serves; a stopped pager leaves
 * no thread behind (unshare(CLONE_NEWUSER) needs a single thread); a
 * program that closes the pager's descriptors and reuses their numbers
 * keeps its files untouched; a program whose main thread calls
 * pthread_exit() ends when its other threads do; a thread that stops it
 * from inside a hook does not wait for itself; a sandbox that refuses its
 * ioctls stops it without leaving a thread waiting; without an io_uring
 * it says so in one line. */
#include "test_pager_helpers.h"

#include <errno.h>
#include <pthread.h>
#include <dirent.h>
#include <sched.h>
#include <stdio.h>
#include <sys/stat.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "internal.h"
#include "lru.h"

Test(pager_life, start_stop_restart)
{
  skip_unless_uffd(false);
  cr_assert_eq(hakmem_pager_active(), 0);
  cr_assert_eq(hakmem_pager_start(), 0);
  cr_assert_eq(hakmem_pager_active(), 1);
  cr_assert_eq(hakmem_pager_start(), 0, "a second start is a no-op");
  hakmem_pager_stop();
  cr_assert_eq(hakmem_pager_active(), 0);
  hakmem_pager_stop(); /* and so is a second stop */
  cr_assert_eq(hakmem_pager_start(), 0);
  char *p = malloc(8 << 20);
  memset(p, 1, 8 << 20);
  free(p);
  hakmem_pager_stop();
  cr_assert_eq(hakmem_pager_active(), 0);
}

static int threads_in_process(void)
{
  FILE *f = fopen("/proc/self/status", "r");
  if (!f)
    return -1;
  char line[256];
  int n = -1;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "Threads: %d", &n) == 1)
      break;
  fclose(f);
  return n;
}

/* The pager is a thread: while it runs, the kernel refuses
 * unshare(CLONE_NEWUSER) (a multi-threaded process), and the README tells
 * programs that need one thread to stop it first. Stopping joins it. The
 * check runs in a forked child, which has one thread whatever threads the
 * test runner keeps. */
enum { UNSHARE_REFUSED_HERE = 4 };

/* Stops after the pager released pages through its ring, whose kernel
 * workers, like the pager thread, leave the process a moment after the
 * join: the stop waits for them. */
static int stops_after_ring_work(void)
{
  enum { CYCLES = 10, N = 16384 };
  static char *b[N];
  bool workers_seen = false;
  for (int c = 0; c < CYCLES; c++) {
    if (hakmem_pager_start() != 0)
      return 2;
    for (int i = 0; i < N; i++) {
      b[i] = malloc(4096);
      if (!b[i])
        return 9;
      memset(b[i], 1, 4096);
    }
    for (int i = 0; i < N; i++)
      free(b[i]);
    /* The freed SuperSlabs' pages into the pool now (malloc_trim would
     * give them straight back to the kernel), where the pager thread gives
     * back what passes its cap, and malloc_trim the rest, through its
     * ring's madvise. */
    lru_trim(0);
    usleep(20000);
    malloc_trim(0);
    usleep(20000);
    workers_seen |= any_ring_worker();
    hakmem_pager_stop();
    if (threads_in_process() != 1)
      return 8;
  }
  return workers_seen ? 0 : 10;
}

static int count_threads_around_a_stop(void)
{
  if (threads_in_process() != 1)
    return 6;
  int rc = stops_after_ring_work();
  if (rc)
    return rc;
  if (hakmem_pager_start() != 0)
    return 2;
  if (threads_in_process() != 2)
    return 7;
  if (unshare(CLONE_NEWUSER) == 0 || errno != EINVAL)
    return 3;
  hakmem_pager_stop();
  if (threads_in_process() != 1)
    return 8;
  if (unshare(CLONE_NEWUSER) == 0)
    return 0;
  return errno == EPERM || errno == ENOSPC || errno == EUSERS ? UNSHARE_REFUSED_HERE : 5;
}

Test(pager_life, stopping_leaves_the_program_its_own_threads)
{
  skip_unless_uffd(false);
  pid_t child = fork();
  cr_assert_geq(child, 0);
  if (child == 0)
    _exit(count_threads_around_a_stop());
  int status;
  cr_assert_eq(waitpid(child, &status, 0), child);
  cr_assert(WIFEXITED(status), "the child died");
  int code = WEXITSTATUS(status);
  if (code == UNSHARE_REFUSED_HERE)
    cr_log_info("this machine refuses user namespaces: the check after the stop is skipped");
  cr_assert_neq(code, 6, "a forked child has more than one thread");
  cr_assert_neq(code, 2, "the child's pager did not start");
  cr_assert_neq(code, 7, "the running pager is not one thread");
  cr_assert_neq(code, 3, "unshare(CLONE_NEWUSER) was not refused (EINVAL) while the pager ran");
  cr_assert_neq(code, 8, "a stopped pager left a thread behind (itself, or its ring's workers)");
  cr_assert_neq(code, 9, "malloc failed");
  cr_assert_neq(code, 10, "test premise: no ring worker ran in ten cycles of pages released");
  cr_assert_neq(code, 5, "unshare(CLONE_NEWUSER) failed after the stop");
  cr_assert(code == 0 || code == UNSHARE_REFUSED_HERE, "the child exited %d", code);
}

Test(pager_life, regions_mapped_before_the_start_are_served)
{
  skip_unless_uffd(true);
  /* A huge block mapped before the start, none of its pages touched: the
   * start registers its region, and the pager serves its faults. */
  const size_t len = (size_t)8 << 20;
  char *early = launder_ptr(malloc(len));
  cr_assert_not_null(early);
  start_or_fail(test_config());
  struct hakmem_stats s0 = stats_now();
  for (size_t i = 0; i < len; i += TPAGE) early[i] = 0x33;
  struct hakmem_stats s1 = stats_now();
  cr_assert_gt(s1.pager_faults, s0.pager_faults, "no fault of the early block came to the pager");
  cr_assert_geq(pager_pages(&s1) - pager_pages(&s0), len / TPAGE - 1,
                "the pager supplied %llu pages of the early block's %zu",
                (unsigned long long)(pager_pages(&s1) - pager_pages(&s0)), len / TPAGE);
  for (size_t i = 0; i < len; i += TPAGE) cr_assert_eq(early[i], 0x33);
  free(early);
  pager_stop();
}

static atomic_bool keep_going;

static void *fault_loop(void *arg)
{
  (void)arg;
  while (atomic_load(&keep_going)) {
    char *p = malloc(3 << 20);
    for (size_t i = 0; i < (3u << 20); i += TPAGE) p[i] = (char)i;
    free(p);
  }
  return NULL;
}

Test(pager_life, stopping_while_threads_fault_leaves_nobody_waiting, .timeout = 120)
{
  skip_unless_uffd(false);
  pthread_t t[3];
  atomic_store(&keep_going, true);
  start_or_fail(test_config());
  for (int i = 0; i < 3; i++) cr_assert_eq(pthread_create(&t[i], NULL, fault_loop, NULL), 0);
  for (int round = 0; round < 20; round++) {
    usleep(5000);
    pager_stop();
    usleep(2000);
    start_or_fail(test_config());
  }
  atomic_store(&keep_going, false);
  for (int i = 0; i < 3; i++) cr_assert_eq(pthread_join(t[i], NULL), 0);
  pager_stop();
}

/* A thread that stops the pager from inside a hook (a signal handler
 * that calls exit() while malloc supplied pages, or one that left a hook
 * by siglongjmp()) does not wait for that hook to end, nor does the pager
 * thread. */
Test(pager_life, stopping_from_inside_a_hook_does_not_wait_for_it, .timeout = 60)
{
  skip_unless_uffd(false);
  int before = threads_in_process();
  cr_assert_eq(hakmem_pager_start(), 0);
  cr_assert(pager_enter(), "the pager runs: a hook enters");
  hakmem_pager_stop(); /* the hook is below, or gone: it never leaves */
  cr_assert_eq(hakmem_pager_active(), 0);
  cr_assert_eq(threads_in_process(), before, "the pager thread is still there");
  cr_assert_eq(hakmem_pager_start(), 0, "a restart after it");
  char *p = malloc(8 << 20);
  memset(p, 1, 8 << 20);
  free(p);
  hakmem_pager_stop();
  cr_assert_eq(threads_in_process(), before);
}

/* A sandbox installed while the pager runs that refuses every ioctl
 * (seccomp, all threads): the pager can neither supply pages nor wake the
 * faulting thread, so it stops, which wakes it, and the kernel serves. */
static void refuse_syscall(unsigned nr, unsigned error)
{
  struct sock_filter code[] = {
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 1),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | error),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog = { .len = sizeof code / sizeof code[0], .filter = code };
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
      syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog) != 0)
    _exit(77);
}

Test(pager_life, a_sandbox_refusing_its_ioctls_stops_it_and_nobody_waits, .timeout = 60)
{
  skip_unless_uffd(false);
  const size_t len = (size_t)16 << 20;
  pid_t pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0) {
    alarm(30); /* a thread left waiting: the test fails instead of hanging */
    if (hakmem_pager_start() != 0) _exit(2);
    char *p = malloc(len); /* registered; its first pages come now */
    if (!p) _exit(3);
    refuse_syscall(SYS_ioctl, EACCES);
    memset(p, 0x5a, len);
    for (size_t i = 0; i < len; i += 4096)
      if (p[i] != 0x5a) _exit(4);
    for (int i = 0; i < 1000 && hakmem_pager_active(); i++) usleep(10000);
    if (hakmem_pager_active()) _exit(5); /* it did not stop */
    free(p);
    _exit(0);
  }
  int status;
  cr_assert_eq(waitpid(pid, &status, 0), pid);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 77) cr_skip_test("seccomp filters are refused here");
  cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child %s %d",
            WIFEXITED(status) ? "exited with" : "was killed by signal", WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
}

static void skip_without_the_shared_library(void)
{
  if (access(HAKMEM_TEST_SO, F_OK) != 0) cr_skip_test("no %s (built with --disable-shared): nothing to preload", HAKMEM_TEST_SO);
}

/* Where no io_uring may be set up (kernel.io_uring_disabled, a sandbox:
 * here a seccomp filter), HAKMEM_UFFD=1 gets one line that says so, and
 * the default path serves; hakmem_pager_start() fails with EPERM. */
Test(pager_life, without_io_uring_one_line_naming_it_and_the_default_path, .timeout = 60)
{
  skip_unless_uffd(false);
  skip_without_the_shared_library();
  int fd = unnamed_file();
  pid_t pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0) {
    refuse_syscall(SYS_io_uring_setup, EPERM);
    errno = 0;
    if (hakmem_pager_start() != -1 || errno != EPERM) _exit(3);
    dup2(fd, 2);
    setenv("LD_PRELOAD", HAKMEM_TEST_SO, 1);
    setenv("HAKMEM_UFFD", "1", 1);
    execlp("dd", "dd", "if=/dev/zero", "of=/dev/null", "bs=8M", "count=4", "status=none", (char *)NULL);
    _exit(127);
  }
  int status;
  cr_assert_eq(waitpid(pid, &status, 0), pid);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 77) cr_skip_test("seccomp filters are refused here");
  cr_assert(WIFEXITED(status) && WEXITSTATUS(status) != 3, "hakmem_pager_start() did not fail with EPERM");
  cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "dd failed: status %#x", status);
  static char err[4096];
  ssize_t n = pread(fd, err, sizeof err - 1, 0);
  close(fd);
  cr_assert_gt(n, 0, "nothing on stderr");
  err[n] = 0;
  char *line = strstr(err, "io_uring");
  cr_assert_not_null(line, "the line does not name io_uring:\n%s", err);
  char *end = strchr(err, '\n');
  cr_assert_not_null(end, "no whole line:\n%s", err);
  cr_assert_null(strchr(end + 1, '\n'), "more than one line:\n%s", err);
}

/* A copy of the library that user `uid` can read: the build tree may not
 * be (a checkout under `mktemp -d` is mode 0700). Removed by the caller. */
static void readable_copy(char *path)
{
  int in = open(HAKMEM_TEST_SO, O_RDONLY | O_CLOEXEC);
  int out = mkstemp(path);
  cr_assert(in >= 0 && out >= 0, "copying %s to %s: %s", HAKMEM_TEST_SO, path, strerror(errno));
  char chunk[65536];
  ssize_t n;
  while ((n = read(in, chunk, sizeof chunk)) > 0) cr_assert_eq(write(out, chunk, (size_t)n), n);
  cr_assert_eq(n, 0);
  cr_assert_eq(fchmod(out, 0755), 0);
  close(in);
  close(out);
}

/* Run argv with the library preloaded and env added; its stderr in buf. */
static int run_preloaded(char *const argv[], const char *env1, const char *env2, char *buf, size_t len, uid_t uid)
{
  char library[] = "/tmp/hakmem-test-XXXXXX";
  skip_without_the_shared_library();
  if (uid) readable_copy(library);
  int pipefd[2];
  cr_assert_eq(pipe(pipefd), 0);
  pid_t pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0) {
    dup2(pipefd[1], 2);
    close(pipefd[0]);
    if (uid && (setgid(uid) || setuid(uid))) _exit(126);
    setenv("LD_PRELOAD", uid ? library : HAKMEM_TEST_SO, 1);
    putenv((char *)env1);
    if (env2) putenv((char *)env2);
    execvp(argv[0], argv);
    _exit(127);
  }
  close(pipefd[1]);
  size_t got = 0;
  ssize_t n;
  while (got + 1 < len && (n = read(pipefd[0], buf + got, len - 1 - got)) > 0) got += (size_t)n;
  buf[got] = 0;
  close(pipefd[0]);
  int status;
  waitpid(pid, &status, 0);
  if (uid) unlink(library);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

Test(pager_life, hakmem_uffd_starts_it_at_load_and_read_into_fresh_memory_works, .timeout = 60)
{
  skip_unless_uffd(false);
  static char err[65536];
  /* dd mallocs an 8 MiB buffer and read(2)s into it: faults taken inside
   * the kernel, on fresh registered memory. */
  char *const argv[] = { "dd", "if=/dev/zero", "of=/dev/null", "bs=8M", "count=8", "status=none", NULL };
  int rc = run_preloaded(argv, "HAKMEM_UFFD=1", "HAKMEM_STATS=1", err, sizeof err, 0);
  cr_assert_eq(rc, 0, "dd failed under the pager:\n%s", err);
  cr_assert(strstr(err, "supply uffd_") || strstr(err, "supply direct"), "no pager row in the ledger:\n%s", err);
  cr_assert_null(strstr(err, "pager stops"), "%s", err);
}

/* main() ends with pthread_exit(), with or without a thread of the
 * program still allocating (tests/pager_main_exits.c). glibc ends the
 * process with its last thread. The pager stops when main has gone (it
 * cannot count the program's threads apart from the io_uring's workers),
 * even when the program has no descriptor left; when it is the last
 * thread, the exit handlers run on it, with signals let in, a deep stack,
 * and a thread they may start and join. A pager that stayed would keep
 * the process for ever, deaf to SIGTERM; the test kills it after 20 s. */
static void main_exits(const char *mode)
{
  skip_without_the_shared_library();
  int fd = unnamed_file();
  pid_t pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0) {
    dup2(fd, 2);
    setenv("LD_PRELOAD", HAKMEM_TEST_SO, 1);
    setenv("HAKMEM_UFFD", "1", 1);
    setenv("HAKMEM_STATS", "1", 1);
    execl(HAKMEM_TEST_MAIN_EXITS, HAKMEM_TEST_MAIN_EXITS, mode, (char *)NULL);
    _exit(127);
  }
  int status = 0;
  bool ended = false;
  for (int i = 0; i < 200 && !ended; i++) {
    ended = waitpid(pid, &status, WNOHANG) == pid;
    if (!ended) usleep(100000);
  }
  if (!ended) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
  }
  cr_assert(ended, "%s: the process was still there 20 s after its main thread's pthread_exit()", mode);
  cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
            "%s: status %#x (exit handlers failed: 4 signals blocked, 5 stack, 6 thread)", mode, status);
  static char err[65536];
  ssize_t n = pread(fd, err, sizeof err - 1, 0);
  close(fd);
  cr_assert_gt(n, 0);
  err[n] = 0;
  cr_assert(strstr(err, "supply uffd_") || strstr(err, "supply direct"),
            "%s: the pager supplied nothing while main ran:\n%s", mode, err);
}

Test(pager_life, a_program_whose_main_calls_pthread_exit_ends, .timeout = 60)
{
  skip_unless_uffd(false);
  main_exits("plain");
  main_exits("no-descriptors");
  main_exits("main-only");
}

Test(pager_life, without_a_full_uffd_one_line_and_the_default_path, .timeout = 60)
{
  if (geteuid() != 0) cr_skip_test("needs root to drop to an unprivileged user");
  FILE *f = fopen("/proc/sys/vm/unprivileged_userfaultfd", "r");
  int unpriv = 0;
  if (f) {
    if (fscanf(f, "%d", &unpriv) != 1) unpriv = 0;
    fclose(f);
  }
  if (unpriv) cr_skip_test("vm.unprivileged_userfaultfd=1: every user may have a full uffd here");
  static char err[65536];
  char *const argv[] = { "dd", "if=/dev/zero", "of=/dev/null", "bs=8M", "count=4", "status=none", NULL };
  int rc = run_preloaded(argv, "HAKMEM_UFFD=1", NULL, err, sizeof err, 65534);
  cr_assert_eq(rc, 0, "dd failed without the pager:\n%s", err);
  char *line = strstr(err, "HAKMEM_UFFD=1");
  cr_assert_not_null(line, "no explanation on stderr:\n%s", err);
  cr_assert_null(strchr(strchr(line, '\n') + 1, '\n'), "more than one line:\n%s", err);
  /* The same through the API, in a child that dropped its rights. */
  pid_t pid = fork();
  if (pid == 0) {
    if (setgid(65534) || setuid(65534)) _exit(2);
    errno = 0;
    if (hakmem_pager_start() != -1 || errno != EPERM) _exit(3);
    char *p = malloc(16 << 20);
    memset(p, 1, 16 << 20);
    _exit(hakmem_pager_active() ? 4 : 0);
  }
  int status;
  waitpid(pid, &status, 0);
  cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
}

/* The descriptors open now, as numbers in `fds` (at most `max`). */
static int open_fds(int *fds, int max)
{
  DIR *d = opendir("/proc/self/fd");
  int n = 0;
  if (!d) return -1;
  for (struct dirent *e; (e = readdir(d)) && n < max;) {
    int fd = atoi(e->d_name);
    if (e->d_name[0] != '.' && fd != dirfd(d)) fds[n++] = fd;
  }
  closedir(d);
  return n;
}

static bool in_list(int fd, const int *fds, int n)
{
  for (int i = 0; i < n; i++)
    if (fds[i] == fd) return true;
  return false;
}

/* A child starts a pager, then closes every descriptor as a daemon does
 * and puts a file of its own on the pager's old numbers. The pager stops
 * (one line), gives its pool back, and the kernel serves; stopping it
 * must neither write to nor close the program's file, and a start after
 * that starts a new one. Returns the child's exit code. */
/* The pager's descriptors sit above the soft RLIMIT_NOFILE (fd.c): a
 * program raises it to the hard limit to reach their numbers. */
static bool raise_soft_nofile(void)
{
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return false;
  rl.rlim_cur = rl.rlim_max;
  return setrlimit(RLIMIT_NOFILE, &rl) == 0;
}

static int close_the_pagers_descriptors(void)
{
  enum { MAX = 256 };
  int before[MAX], after[MAX], pagers[8], n = 0;
  int nb = open_fds(before, MAX);
  if (hakmem_pager_start() != 0) return 2;
  int na = open_fds(after, MAX);
  for (int i = 0; i < na && n < 8; i++)
    if (!in_list(after[i], before, nb)) pagers[n++] = after[i];
  if (n != 4) return 3; /* userfaultfd, eventfd, io_uring, /proc/self/stat */
  if (syscall(SYS_close_range, 3u, ~0u, 0u) != 0) return 4;
  if (!raise_soft_nofile()) return 13;
  /* The pager's next look at its ring finds it gone: wait for that (up
   * to 20 s on a loaded machine) before the numbers are reused. */
  for (int i = 0; i < 2000 && hakmem_pager_active(); i++) usleep(10000);
  /* Inactive comes first; its pool goes back next, on the pager thread. */
  for (int i = 0; i < 2000 && !atomic_load(&pager.loop_done); i++) usleep(10000);
  char path[] = "/tmp/hakmem-fds-XXXXXX";
  int f = mkstemp(path);
  if (f < 0) return 5;
  unlink(path);
  for (int i = 0; i < n; i++)
    if (dup2(f, pagers[i]) < 0) return 6;
  if (hakmem_pager_active()) return 9;
  struct hakmem_stats s;
  hakmem_stats_get(&s);
  if (s.pager_pool_pages != 0) return 10;
  unsigned char vec[1];
  if (pager.pool.base && mincore((void *)pager.pool.base, TPAGE, vec) == 0) return 11; /* still mapped */
  char *p = malloc(8 << 20);
  memset(p, 1, 8 << 20);
  free(p);
  hakmem_pager_stop();
  struct stat st;
  for (int i = 0; i < n; i++)
    if (fstat(pagers[i], &st) != 0) return 7; /* closed by the pager */
  if (st.st_size != 0) return 8; /* written to by the pager */
  if (hakmem_pager_start() != 0 || !hakmem_pager_active()) return 12;
  hakmem_pager_stop();
  return 0;
}

/* A child puts /dev/zero on the userfaultfd's number while the pager
 * runs: what the pager reads there is no fault message, so it stops
 * instead of reading zeros for ever, and the child's exit does not wait
 * for it. */
static int put_dev_zero_on_the_uffd(void)
{
  enum { MAX = 256 };
  int fds[MAX], uffd = -1;
  if (hakmem_pager_start() != 0) return 2;
  int n = open_fds(fds, MAX);
  for (int i = 0; i < n; i++) {
    char link[64], target[64] = "";
    snprintf(link, sizeof link, "/proc/self/fd/%d", fds[i]);
    ssize_t len = readlink(link, target, sizeof target - 1);
    if (len > 0 && strstr(target, "userfaultfd")) uffd = fds[i];
  }
  if (uffd < 0) return 3;
  int zero = open("/dev/zero", O_RDONLY);
  if (zero < 0 || !raise_soft_nofile() || dup2(zero, uffd) < 0) return 4;
  alarm(30); /* a pager reading zeros for ever: the child dies, the test fails */
  for (int i = 0; i < 400 && hakmem_pager_active(); i++) {
    char *p = malloc(8 << 20);
    memset(p, 1, 8 << 20);
    free(p);
    usleep(50000);
  }
  if (hakmem_pager_active()) return 6; /* it did not stop itself */
  hakmem_pager_stop();
  return hakmem_pager_active() ? 5 : 0;
}

Test(pager_life, dev_zero_on_the_uffds_number_stops_it, .timeout = 60)
{
  skip_unless_uffd(false);
  run_in_child(put_dev_zero_on_the_uffd);
}

Test(pager_life, a_program_that_closes_the_pagers_descriptors_keeps_its_own_files, .timeout = 60)
{
  skip_unless_uffd(false);
  run_in_child(close_the_pagers_descriptors);
}
