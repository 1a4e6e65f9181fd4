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

/* Where a descriptor goes when the limit cannot be raised: the top of the
 * program's range, which a program reaches last (descriptors are handed
 * out lowest first), so that one which closes every descriptor and opens
 * files again does not get the library's numbers back at once. */
static int fd_stash_high(int fd, rlim_t limit) {
  if (limit < 256 || (rlim_t)fd >= limit - 16) return fd;
  return fd_move_up(fd, (int)(limit - 16));
}

/* The library's descriptors go above the soft
 * RLIMIT_NOFILE when the limits allow it, out of the program's way: a
 * program that walks its descriptors up to sysconf(_SC_OPEN_MAX) to count
 * or close them (daemons, CPython's subprocess tests) does not meet them,
 * and a program that opens many files does not find four fewer. The limit
 * is raised for the one dup and restored at once; the descriptor stays
 * valid above it. Where soft == hard and the process may not raise the
 * hard limit (no CAP_SYS_RESOURCE), the descriptor goes to the top of the
 * range instead (fd_stash_high), where such a walk still meets it. (The
 * pager's four; the report's copy of stderr.) */
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
  if (setrlimit(RLIMIT_NOFILE, &raised)) return fd_stash_high(fd, rl.rlim_cur);
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
