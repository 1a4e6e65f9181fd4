/* Description: the userfaultfd layer (pager/uffd.c) on ranges the test
 * maps itself: a full uffd is opened, never a user-mode-only one; the
 * features are negotiated; UFFDIO_MOVE moves whole ranges, reports partial
 * progress and EEXIST at a present page, ENOENT at a source hole, EBUSY for
 * a page shared with a fork child; COPY, ZEROPAGE and WAKE work; a fault
 * taken inside the kernel (read(2) into a registered range) is trapped.
 *
 * A registered page that is absent is never touched by the test thread
 * unless a handler thread serves it: that would wait forever. */
#include "test_pager_helpers.h"

#include <pthread.h>
#include <sys/resource.h>
#include <sys/wait.h>

static struct uffd u;
static char zeros[16 * 4096] __attribute__((aligned(4096)));

static void setup(void)
{
  skip_unless_uffd(false);
  cr_assert_eq(uffd_open(&u, UFFD_FEATURE_MOVE), 0);
}

static void teardown(void) { uffd_close(&u); }

TestSuite(pager_uffd, .init = setup, .fini = teardown);

Test(pager_uffd, opens_a_full_uffd_and_negotiates)
{
  cr_assert_geq(u.fd, 0);
  cr_assert(u.via_dev || access("/dev/userfaultfd", R_OK | W_OK) != 0,
            "/dev/userfaultfd is usable, so it must be the way in");
  /* MOVE was asked for: negotiated exactly when the kernel has it. */
  cr_assert_eq(u.can_move, (u.features & UFFD_FEATURE_MOVE) != 0);
  struct uffd none;
  cr_assert_eq(uffd_open(&none, 0), 0, "no feature at all is fine too");
  cr_assert_not(none.can_move);
  uffd_close(&none);
  cr_assert_eq(none.fd, -1);
}

/* Out of descriptors, opening says so (EMFILE), not "no right" (EPERM),
 * and so does hakmem_pager_start. In a child: the limit stays there. */
static int open_without_descriptors(void)
{
  struct rlimit rl = { 16, 16 };
  if (setrlimit(RLIMIT_NOFILE, &rl) != 0) return 1;
  while (dup(0) >= 0)
    ;
  if (errno != EMFILE) return 2;
  struct uffd none;
  if (uffd_open(&none, UFFD_FEATURE_MOVE) != -EMFILE) return 3;
  errno = 0;
  if (hakmem_pager_start() != -1 || errno != EMFILE) return 4;
  return 0;
}

Test(pager_uffd, out_of_descriptors_is_emfile)
{
  run_in_child(open_without_descriptors);
}

Test(pager_uffd, register_and_unregister)
{
  char *r = map_units(TUNIT);
  uint64_t ioctls = 0;
  cr_assert_eq(uffd_register(&u, (uintptr_t)r, TUNIT, &ioctls), 0);
  cr_assert(ioctls & ((uint64_t)1 << _UFFDIO_COPY));
  cr_assert(ioctls & ((uint64_t)1 << _UFFDIO_WAKE));
  if (u.can_move) cr_assert(ioctls & ((uint64_t)1 << _UFFDIO_MOVE));
  cr_assert_eq(uffd_unregister(&u, (uintptr_t)r, TUNIT), 0);
  cr_assert_eq(uffd_register(&u, (uintptr_t)r + 1, TUNIT, NULL), -EINVAL, "unaligned ranges are refused");
  r[0] = 1; /* unregistered: the kernel serves it */
  munmap(r, TUNIT);
}

Test(pager_uffd, move_reports_partial_progress_and_eexist)
{
  if (!u.can_move) cr_skip_test("no UFFDIO_MOVE in this kernel");
  char *dst = map_units(TUNIT), *src = map_units(TUNIT);
  cr_assert_eq(uffd_register(&u, (uintptr_t)dst, TUNIT, NULL), 0);
  memset(src, 0x5a, 64 * TPAGE);
  int err = 1;
  size_t done = uffd_move(&u, (uintptr_t)dst, (uintptr_t)src, 16 * TPAGE, 0, &err);
  cr_assert_eq(err, 0);
  cr_assert_eq(done, 16 * TPAGE);
  cr_assert_eq(resident_pages(src, 16 * TPAGE), 0, "moved pages leave the source absent");
  cr_assert_eq(dst[0], 0x5a);
  cr_assert_eq(dst[16 * TPAGE - 1], 0x5a);
  /* dst page 20 made present by COPY: a move over [16, 32) stops there. */
  cr_assert_eq(uffd_copy(&u, (uintptr_t)dst + 20 * TPAGE, (uintptr_t)zeros, TPAGE, 0, &err), TPAGE);
  done = uffd_move(&u, (uintptr_t)dst + 16 * TPAGE, (uintptr_t)src + 16 * TPAGE, 16 * TPAGE, 0, &err);
  cr_assert_eq(err, -EEXIST);
  cr_assert_eq(done, 4 * TPAGE, "four pages moved before the present one");
  cr_assert_eq(dst[19 * TPAGE], 0x5a);
  cr_assert_eq(dst[20 * TPAGE], 0);
  munmap(dst, TUNIT);
  munmap(src, TUNIT);
}

Test(pager_uffd, move_from_a_hole_is_enoent_and_to_unregistered_is_einval)
{
  if (!u.can_move) cr_skip_test("no UFFDIO_MOVE in this kernel");
  char *dst = map_units(TUNIT), *src = map_units(TUNIT), *plain = map_units(TUNIT);
  cr_assert_eq(uffd_register(&u, (uintptr_t)dst, TUNIT, NULL), 0);
  memset(src, 1, 2 * TPAGE); /* pages 0 and 1 present, 2 is a hole */
  int err;
  size_t done = uffd_move(&u, (uintptr_t)dst, (uintptr_t)src, 4 * TPAGE, 0, &err);
  cr_assert_eq(err, -ENOENT);
  cr_assert_eq(done, 2 * TPAGE);
  memset(src + 8 * TPAGE, 1, TPAGE);
  done = uffd_move(&u, (uintptr_t)plain, (uintptr_t)src + 8 * TPAGE, TPAGE, 0, &err);
  cr_assert_eq(err, -EINVAL, "the destination must be registered with this uffd");
  cr_assert_eq(done, 0);
  munmap(dst, TUNIT);
  munmap(src, TUNIT);
  munmap(plain, TUNIT);
}

Test(pager_uffd, move_of_a_page_shared_with_a_child_is_ebusy)
{
  if (!u.can_move) cr_skip_test("no UFFDIO_MOVE in this kernel");
  char *dst = map_units(TUNIT), *src = map_units(TUNIT);
  cr_assert_eq(uffd_register(&u, (uintptr_t)dst, TUNIT, NULL), 0);
  memset(src, 7, TPAGE);
  int pipefd[2];
  cr_assert_eq(pipe(pipefd), 0);
  pid_t pid = fork();
  if (pid == 0) { /* keep the page shared until the parent is done */
    char c;
    close(pipefd[1]);
    _exit(read(pipefd[0], &c, 1) < 0);
  }
  int err;
  size_t done = uffd_move(&u, (uintptr_t)dst, (uintptr_t)src, TPAGE, 0, &err);
  cr_assert_eq(err, -EBUSY);
  cr_assert_eq(done, 0);
  close(pipefd[1]);
  waitpid(pid, NULL, 0);
  munmap(dst, TUNIT);
  munmap(src, TUNIT);
}

Test(pager_uffd, copy_and_zeropage_fill_absent_pages)
{
  char *dst = map_units(TUNIT), *ro = mmap(NULL, TUNIT, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  cr_assert_eq(uffd_register(&u, (uintptr_t)dst, TUNIT, NULL), 0);
  int err;
  /* COPY from a never-written range: the kernel's zero page is the source. */
  cr_assert_eq(uffd_copy(&u, (uintptr_t)dst, (uintptr_t)ro, 64 * TPAGE, 0, &err), 64 * TPAGE);
  cr_assert_eq(err, 0);
  cr_assert(all_zero(dst, 64 * TPAGE));
  dst[0] = 3; /* a real page: writable without a fault */
  cr_assert_eq(uffd_zeropage(&u, (uintptr_t)dst + 64 * TPAGE, 64 * TPAGE, 0, &err), 64 * TPAGE);
  cr_assert_eq(err, 0);
  cr_assert(all_zero(dst + 64 * TPAGE, 64 * TPAGE));
  cr_assert_eq(uffd_zeropage(&u, (uintptr_t)dst, TPAGE, 0, &err), 0);
  cr_assert_eq(err, -EEXIST);
  cr_assert_eq(uffd_wake(&u, (uintptr_t)dst, TUNIT), 0);
  munmap(dst, TUNIT);
  munmap(ro, TUNIT);
}

/* A handler that serves one fault by COPY of a page of 0x11. */
struct handler_arg {
  int served;
  uint64_t flags;
};

static void *serve_one(void *arg)
{
  struct handler_arg *h = arg;
  static char page[4096] __attribute__((aligned(4096)));
  memset(page, 0x11, sizeof page);
  for (;;) {
    struct uffd_msg msg;
    int n = uffd_read(&u, &msg, 1);
    if (n < 0) break;
    if (n == 0) {
      usleep(100);
      continue;
    }
    int err;
    h->flags = msg.arg.pagefault.flags;
    uffd_copy(&u, msg.arg.pagefault.address & ~(TPAGE - 1), (uintptr_t)page, TPAGE, 0, &err);
    h->served++;
    break;
  }
  return NULL;
}

Test(pager_uffd, a_fault_inside_the_kernel_is_trapped_not_efault)
{
  char *dst = map_units(TUNIT);
  cr_assert_eq(uffd_register(&u, (uintptr_t)dst, TUNIT, NULL), 0);
  struct handler_arg h = { 0, 0 };
  pthread_t t;
  cr_assert_eq(pthread_create(&t, NULL, serve_one, &h), 0);
  int pipefd[2];
  cr_assert_eq(pipe(pipefd), 0);
  cr_assert_eq(write(pipefd[1], "hello", 5), 5);
  /* read(2) writes into the absent page from inside the kernel. */
  cr_assert_eq(read(pipefd[0], dst + 100, 5), 5, "a user-mode-only uffd would give EFAULT here");
  pthread_join(t, NULL);
  cr_assert_eq(h.served, 1);
  cr_assert(h.flags & UFFD_PAGEFAULT_FLAG_WRITE);
  cr_assert_eq(memcmp(dst + 100, "hello", 5), 0);
  cr_assert_eq(dst[0], 0x11, "the page came from the handler");
  close(pipefd[0]);
  close(pipefd[1]);
  munmap(dst, TUNIT);
}

static void *touch_first(void *arg)
{
  volatile char *p = arg;
  p[0] = 9; /* waits on the uffd until it is closed */
  return NULL;
}

Test(pager_uffd, closing_the_uffd_wakes_a_waiting_thread)
{
  char *dst = map_units(TUNIT);
  cr_assert_eq(uffd_register(&u, (uintptr_t)dst, TUNIT, NULL), 0);
  pthread_t t;
  cr_assert_eq(pthread_create(&t, NULL, touch_first, dst), 0);
  struct uffd_msg msg;
  int n = 0;
  for (int i = 0; i < 30000 && n == 0; i++) { /* the fault is queued (up to 30 s on a loaded machine) */
    n = uffd_read(&u, &msg, 1);
    if (n == 0) usleep(1000);
  }
  cr_assert_eq(n, 1, "the thread's fault reached the uffd");
  uffd_close(&u); /* no handler any more: this must wake it */
  cr_assert_eq(pthread_join(t, NULL), 0);
  cr_assert_eq(dst[0], 9);
  munmap(dst, TUNIT);
}
