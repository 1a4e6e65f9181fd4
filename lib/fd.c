/* fd.c: the library's descriptors, out of the program's way, and known. */
#include "fd.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* fd moved to the lowest free number from `at` up, or fd where it was. */
static int fd_move_up(int fd, int at) {
  int nfd = fcntl(fd, F_DUPFD_CLOEXEC, at);
  if (nfd < 0) return fd;
  close(fd);
  return nfd;
}

/* Where a descriptor goes when the limit cannot be raised: the top 16
 * numbers of the range, and the soft limit comes down below them, so that
 * they are out of the program's range again: a program that walks its
 * descriptors up to sysconf(_SC_OPEN_MAX) does not meet them (CPython's
 * test_pass_fds_redirected, soft = hard = 20000 without CAP_SYS_RESOURCE,
 * listed the pager's four in a child's). The program may raise it back
 * to the hard limit; then they sit where it reaches last (descriptors
 * are handed out lowest first). */
static int fd_stash_high(int fd, struct rlimit rl) {
  rlim_t limit = rl.rlim_cur;
  if (limit < 256 || (rlim_t)fd >= limit - 16) return fd;
  int nfd = fd_move_up(fd, (int)(limit - 16));
  if (nfd >= (int)(limit - 16)) {
    struct rlimit lowered = { limit - 16, rl.rlim_max };
    setrlimit(RLIMIT_NOFILE, &lowered); /* if it fails, they stay in range, as before */
  }
  return nfd;
}

/* The library's descriptors go above the soft
 * RLIMIT_NOFILE when the limits allow it, out of the program's way: a
 * program that walks its descriptors up to sysconf(_SC_OPEN_MAX) to count
 * or close them (daemons, CPython's subprocess tests) does not meet them,
 * and a program that opens many files does not find four fewer. The limit
 * is raised for the one dup and restored at once; the descriptor stays
 * valid above it. Where soft == hard and the process may not raise the
 * hard limit (no CAP_SYS_RESOURCE), the descriptor goes to the top of the
 * range instead, and the soft limit comes down below it (fd_stash_high).
 * (The pager's four; the report's copy of stderr.) */
int fd_stash(int fd) {
  struct rlimit rl, raised;
  rlim_t base;
  int nfd;

  if (fd < 0 || getrlimit(RLIMIT_NOFILE, &rl)) return fd;
  if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > ((rlim_t)1 << 20)) return fd;
  /* Well above the soft limit too: a program may lower it below
   * descriptors it holds and check those (CPython's subprocess tests do). */
  base = rl.rlim_cur + 1024;
  if (rl.rlim_max != RLIM_INFINITY && base + 8 > rl.rlim_max)
    base = rl.rlim_max > rl.rlim_cur + 8 ? rl.rlim_max - 8 : rl.rlim_cur;
  raised = rl;
  raised.rlim_cur = base + 8;
  if (raised.rlim_max != RLIM_INFINITY && raised.rlim_max < raised.rlim_cur) raised.rlim_max = raised.rlim_cur;
  if (setrlimit(RLIMIT_NOFILE, &raised)) return fd_stash_high(fd, rl);
  nfd = fd_move_up(fd, (int)base);
  setrlimit(RLIMIT_NOFILE, &rl);
  return nfd;
}

/* The kernel's answer, not a wrapper's: fakeroot and sandboxes interpose
 * fstat, and fd_is runs in fork's child handler, where a wrapper that
 * allocates or locks would be called at the worst time. */
static int fd_stat(int fd, struct stat *st) {
#ifdef SYS_fstat
  return (int)syscall(SYS_fstat, fd, st);
#else
  return fstat(fd, st);
#endif
}

void fd_identify(int fd, struct fd_identity *id) {
  struct stat st;
  id->known = fd >= 0 && fd_stat(fd, &st) == 0;
  id->dev = id->known ? st.st_dev : 0;
  id->ino = id->known ? st.st_ino : 0;
}

/* A uffd and an io_uring have an inode each; eventfds share one
 * (anon_inode), so only a program's own eventfd moved onto the number
 * would pass for the pager's. */
bool fd_is(int fd, const struct fd_identity *id) {
  struct stat st;
  return fd >= 0 && id->known && fd_stat(fd, &st) == 0 && st.st_dev == id->dev && st.st_ino == id->ino;
}
