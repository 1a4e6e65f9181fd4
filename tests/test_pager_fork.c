/* Description: fork() beside threads that allocate while the pager runs.
 * The child has no pager (its regions are not registered) and allocates
 * the kernel's way, or starts a pager of its own; the parent's pager keeps
 * serving, its pool never shared with the child (MADV_DONTFORK). The same
 * for a child of a raw SYS_fork, which runs no atfork handler: it does not
 * use the parent's uffd, and stopping the pager there does not wait for a
 * pager thread it does not have; and the parent may stop its pager (and
 * start one again) while such a child lives. */
#include "test_pager_helpers.h"

#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "internal.h"

static atomic_bool running;

static void *churn(void *arg)
{
  (void)arg;
  while (atomic_load(&running)) {
    char *big = malloc(2 << 20);
    memset(big, 1, 2 << 20);
    void *small[256];
    for (int i = 0; i < 256; i++) {
      small[i] = malloc(48 + (size_t)i * 8);
      memset(small[i], 2, 48);
    }
    for (int i = 0; i < 256; i++) free(small[i]);
    free(big);
  }
  return NULL;
}

static void setup(void)
{
  skip_unless_uffd(true);
  start_or_fail(test_config());
}

static void teardown(void) { pager_stop(); }

TestSuite(pager_fork, .init = setup, .fini = teardown, .timeout = 120);

static int child_allocates(bool restart)
{
  if (hakmem_pager_active()) return 10;
  if (restart && hakmem_pager_start() != 0) return 11;
  struct hakmem_stats s0 = stats_now();
  size_t len = 24 << 20;
  char *p = calloc(1, len);
  for (size_t i = 0; i < len; i += TPAGE)
    if (p[i]) return 12;
  memset(p, 9, len);
  char *q = malloc(100000);
  memset(q, 9, 100000);
  free(q);
  free(p);
  struct hakmem_stats s1 = stats_now();
  if (restart && s1.pager_faults == s0.pager_faults && pager_pages(&s1) == pager_pages(&s0)) return 13;
  if (restart) hakmem_pager_stop();
  return 0;
}

static void assert_child_succeeded(int status)
{
  cr_assert(WIFEXITED(status), "child died: status %d", status);
  cr_assert_eq(WEXITSTATUS(status), 0, "child failed with %d", WEXITSTATUS(status));
}

/* After the children: the parent's pager still serves. The block is
 * bigger than any the test freed, so no cached region, resident, takes
 * it. */
static void assert_parent_pager_serves(void)
{
  cr_assert(pager_running());
  struct hakmem_stats s0 = stats_now();
  char *p = malloc(64 << 20);
  memset(p, 5, 64 << 20);
  free(p);
  struct hakmem_stats s1 = stats_now();
  cr_assert_gt(pager_pages(&s1) + s1.pager_faults, pager_pages(&s0) + s0.pager_faults);
}

static void fork_beside_threads(bool restart)
{
  pthread_t t[3];
  atomic_store(&running, true);
  for (int i = 0; i < 3; i++) cr_assert_eq(pthread_create(&t[i], NULL, churn, NULL), 0);
  for (int k = 0; k < 10; k++) {
    usleep(3000);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) _exit(child_allocates(restart));
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    assert_child_succeeded(status);
  }
  atomic_store(&running, false);
  for (int i = 0; i < 3; i++) cr_assert_eq(pthread_join(t[i], NULL), 0);
  assert_parent_pager_serves();
}

Test(pager_fork, the_child_allocates_without_a_pager) { fork_beside_threads(false); }

Test(pager_fork, the_child_may_start_its_own_pager) { fork_beside_threads(true); }

/* The pool is MADV_DONTFORK: a child has none of it (its own allocations
 * go the kernel's way, above), so the parent's pages are never shared. */
Test(pager_fork, the_pool_is_not_in_the_child)
{
  fill_pool(64);
  char *base = (char *)pager.pool.base;
  cr_assert_not_null(base);
  unsigned char vec[1];
  cr_assert_eq(mincore(base, TPAGE, vec), 0, "test premise: the pool is mapped in the parent");
  pid_t pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0) _exit(mincore(base, TPAGE, vec) == 0 ? 1 : errno == ENOMEM ? 0 : 2);
  int status;
  cr_assert_eq(waitpid(pid, &status, 0), pid);
  cr_assert(WIFEXITED(status));
  cr_assert_eq(WEXITSTATUS(status), 0, "the pool is %s in the child",
               WEXITSTATUS(status) == 1 ? "mapped" : "not what mincore expects");
  assert_parent_pager_serves();
}

/* The child's status, or -1 if it did not exit within 30 s (killed). */
static int wait_bounded(pid_t pid)
{
  int status;
  for (int i = 0; i < 3000; i++) {
    pid_t got = waitpid(pid, &status, WNOHANG);
    if (got == pid) return status;
    usleep(10000);
  }
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  return -1;
}

static void raw_fork_child_allocates(bool restart)
{
  enum { KEEP = 32, KEEP_SIZE = 100000 };
  static char *keep[KEEP];
  for (int i = 0; i < KEEP; i++) {
    keep[i] = malloc(KEEP_SIZE);
    memset(keep[i], 0x31, KEEP_SIZE);
  }
  pid_t pid = (pid_t)syscall(SYS_fork);
  cr_assert_geq(pid, 0);
  if (pid == 0) {
    int rc = child_allocates(restart);
    hakmem_pager_stop(); /* what the destructor runs at exit */
    _exit(rc);
  }
  int status = wait_bounded(pid);
  cr_assert_neq(status, -1, "the child hung");
  assert_child_succeeded(status);
  for (int i = 0; i < KEEP; i++)
    for (size_t j = 0; j < KEEP_SIZE; j++)
      cr_assert_eq(keep[i][j], 0x31, "the parent's block %d changed at %zu", i, j);
  assert_parent_pager_serves();
  for (int i = 0; i < KEEP; i++) free(keep[i]);
}

Test(pager_fork, a_raw_fork_child_allocates_without_the_parents_pager) { raw_fork_child_allocates(false); }

Test(pager_fork, a_raw_fork_child_may_start_its_own_pager) { raw_fork_child_allocates(true); }

/* A raw fork child lingers, holding its copy of the uffd, while the parent
 * stops its pager. Closing the parent's uffd alone would leave its regions
 * registered to a uffd that the child's copy keeps open and nobody reads:
 * the parent's next fault would wait until the child exited. The pager
 * unregisters them first, so the kernel serves the parent at once; a pager
 * started again registers them anew and serves. */
static void stop_beside_a_lingering_raw_fork_child(bool restart)
{
  char *warm = malloc(8 << 20);
  memset(warm, 1, 8 << 20);
  free(warm);
  pid_t pid = (pid_t)syscall(SYS_fork);
  cr_assert_geq(pid, 0);
  if (pid == 0) {
    sleep(60); /* past the test's timeout: a hang shows as one */
    _exit(0);
  }
  pager_stop();
  if (restart) start_or_fail(test_config());
  for (int i = 0; i < 20; i++) {
    size_t len = (3 << 20) + (size_t)i * TPAGE;
    char *p = malloc(len);
    memset(p, 2, len);
    free(p);
    char *s[100];
    for (int k = 0; k < 100; k++) {
      s[k] = malloc(16 + (size_t)k * 100);
      memset(s[k], 3, 16 + (size_t)k * 100);
    }
    for (int k = 0; k < 100; k++) free(s[k]);
  }
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  if (restart) assert_parent_pager_serves();
}

Test(pager_fork, stopping_beside_a_lingering_raw_fork_child, .timeout = 30)
{
  stop_beside_a_lingering_raw_fork_child(false);
}

Test(pager_fork, restarting_beside_a_lingering_raw_fork_child, .timeout = 30)
{
  stop_beside_a_lingering_raw_fork_child(true);
}
