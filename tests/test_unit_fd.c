/* Description: unit tests of lib/fd.c, the library's own descriptors.
 * fd_stash moves a descriptor out of the program's range, above the soft
 * RLIMIT_NOFILE, and leaves the limit as it was when the limit can be
 * raised for the move; when soft = hard and the hard limit cannot be
 * raised, it moves it to the top 16 numbers and brings the soft limit
 * down below it; either way a walk of the descriptors up to the soft
 * limit (sysconf(_SC_OPEN_MAX)) does not meet it. fd_is tells a
 * descriptor from another file moved onto its number. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "fd.h"

static struct rlimit limits(void)
{
  struct rlimit rl;
  cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
  return rl;
}

static void set_limits(rlim_t soft, rlim_t hard)
{
  struct rlimit rl = { soft, hard };
  cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0, "setrlimit(%lu, %lu)", (unsigned long)soft, (unsigned long)hard);
}

Test(fd, a_stashed_descriptor_is_above_a_soft_limit_that_can_be_raised)
{
  struct rlimit rl = limits();
  if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < 4096)
    cr_skip_test("the hard RLIMIT_NOFILE is %lu, below 4096", (unsigned long)rl.rlim_max);
  set_limits(1024, rl.rlim_max);
  int fd = fd_stash(dup(2));
  cr_assert_geq(fd, 1024, "stashed at %d, in the program's range", fd);
  cr_assert_eq(limits().rlim_cur, 1024, "the soft limit changed");
  cr_assert_eq(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
  close(fd);
}

/* soft = hard: the move needs the hard limit raised, which takes
 * CAP_SYS_RESOURCE; without it the soft limit comes down. */
Test(fd, a_stashed_descriptor_is_above_the_soft_limit_when_soft_equals_hard)
{
  struct rlimit both = { 4096, 4096 };
  if (setrlimit(RLIMIT_NOFILE, &both) != 0)
    cr_skip_test("RLIMIT_NOFILE cannot be set to 4096 here (%s; hard limit %lu)", strerror(errno),
                 (unsigned long)limits().rlim_max);
  int fd = fd_stash(dup(2));
  struct rlimit after = limits();
  cr_assert_geq(fd, 4096 - 16, "stashed at %d", fd);
  cr_assert_geq((rlim_t)fd, after.rlim_cur, "stashed at %d, below the soft limit %lu", fd,
                (unsigned long)after.rlim_cur);
  cr_assert_geq(after.rlim_cur, 4096 - 16, "the soft limit came down to %lu", (unsigned long)after.rlim_cur);
  /* Another one goes above the lowered soft limit too. */
  int second = fd_stash(dup(2));
  cr_assert_geq((rlim_t)second, limits().rlim_cur);
  cr_assert_neq(second, fd);
  close(fd);
  close(second);
}

Test(fd, fd_is_tells_the_descriptor_from_a_file_moved_onto_its_number)
{
  int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  cr_assert_geq(fd, 0);
  struct fd_identity id;
  fd_identify(fd, &id);
  cr_assert(fd_is(fd, &id));
  int other = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
  cr_assert_geq(other, 0);
  cr_assert_eq(dup2(other, fd), fd);
  cr_assert_not(fd_is(fd, &id), "a program's file on the number passed for the descriptor");
  close(other);
  close(fd);
  cr_assert_not(fd_is(fd, &id), "a closed number passed for the descriptor");
}
