/* Description: the pager's io_uring loop (pager/ring.c): readiness of the
 * uffd, the command eventfd, the periodic timer, and batched madvise whose
 * completions come back with their ids; the ring's worker threads, which
 * are found by name and waited for after their thread's end
 * (pager/workers.c). */
#include "test_pager_helpers.h"

#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>

#include "ring.h"
#include "workers.h"

static struct ring r;
static int efd = -1;
static struct uffd u;

struct seen {
  int uffd, event, timer, madvise;
  uint64_t madvise_ids;
};

static void count(void *arg, uint64_t tag, int res)
{
  struct seen *s = arg;
  switch (tag & 0xff) {
  case RING_UFFD: s->uffd++; break;
  case RING_EVENT: s->event++; break;
  case RING_TIMER: s->timer++; break;
  case RING_MADVISE:
    cr_assert_eq(res, 0);
    s->madvise++;
    s->madvise_ids += tag >> 8;
    break;
  }
}

static void setup(void)
{
  skip_unless_uffd(false);
  cr_assert_eq(uffd_open(&u, 0), 0);
  efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  cr_assert_geq(efd, 0);
  int err = ring_init(&r, u.fd, efd, 20000000);
  if (err == -ENOSYS || err == -EPERM) cr_skip_test("io_uring is not available here (%s)", strerror(-err));
  cr_assert_eq(err, 0);
}

static void teardown(void)
{
  ring_fini(&r);
  close(efd);
  uffd_close(&u);
}

TestSuite(pager_ring, .init = setup, .fini = teardown);

Test(pager_ring, the_timer_fires_and_is_rearmed)
{
  struct seen s = { 0 };
  while (s.timer < 2) cr_assert_geq(ring_wait(&r, true, count, &s), 0);
  cr_assert_eq(s.uffd + s.event, 0);
}

Test(pager_ring, the_eventfd_wakes_it)
{
  struct seen s = { 0 };
  uint64_t one = 1;
  cr_assert_eq(ring_wait(&r, false, count, &s), 0, "nothing yet");
  cr_assert_eq(write(efd, &one, sizeof one), (ssize_t)sizeof one);
  while (!s.event) cr_assert_geq(ring_wait(&r, true, count, &s), 0);
  cr_assert_eq(r.efd_value, 1);
}

static void *touch(void *arg)
{
  ((volatile char *)arg)[0] = 5;
  return NULL;
}

Test(pager_ring, a_fault_makes_the_uffd_readable)
{
  char *dst = map_units(TUNIT);
  cr_assert_eq(uffd_register(&u, (uintptr_t)dst, TUNIT, NULL), 0);
  pthread_t t;
  cr_assert_eq(pthread_create(&t, NULL, touch, dst), 0);
  struct seen s = { 0 };
  while (!s.uffd) cr_assert_geq(ring_wait(&r, true, count, &s), 0);
  struct uffd_msg msg;
  cr_assert_eq(uffd_read(&u, &msg, 1), 1);
  cr_assert_eq(msg.event, UFFD_EVENT_PAGEFAULT);
  cr_assert_eq(msg.arg.pagefault.address & ~(TPAGE - 1), (uintptr_t)dst);
  static char page[4096] __attribute__((aligned(4096)));
  int err;
  cr_assert_eq(uffd_copy(&u, (uintptr_t)dst, (uintptr_t)page, TPAGE, 0, &err), TPAGE);
  cr_assert_eq(pthread_join(t, NULL), 0);
  cr_assert_eq(dst[0], 5);
  munmap(dst, TUNIT);
}

Test(pager_ring, madvise_is_batched_and_completes_with_its_id)
{
  char *m = map_units(4 * TUNIT);
  memset(m, 1, 4 * TUNIT);
  for (uint64_t i = 0; i < 4; i++) {
    int rc = ring_madvise(&r, m + i * TUNIT, (uint32_t)TUNIT, MADV_DONTNEED, i + 1);
    if (rc == -EOPNOTSUPP) cr_skip_test("this kernel's io_uring has no IORING_OP_MADVISE: nothing to batch");
    cr_assert_eq(rc, 0);
  }
  struct seen s = { 0 };
  while (s.madvise < 4) cr_assert_geq(ring_wait(&r, true, count, &s), 0);
  cr_assert_eq(s.madvise_ids, 1 + 2 + 3 + 4);
  cr_assert(all_zero(m, 4 * TUNIT), "the pages were released");
  munmap(m, 4 * TUNIT);
}

/* A madvise through the ring runs on a worker of the submitting thread's
 * ("iou-wrk-<tid>"), which stays after its completion and leaves the
 * process's threads a moment after its thread's end: found while there,
 * and gone once waited for. */
struct worker_probe {
  pid_t tid;
  int err;
  bool listed, any;
};

static void *madvise_through_a_ring_of_its_own(void *arg)
{
  struct worker_probe *w = arg;
  w->tid = (pid_t)syscall(SYS_gettid);
  struct ring own;
  int own_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if ((w->err = own_efd < 0 ? -errno : ring_init(&own, u.fd, own_efd, 20000000)) != 0) return NULL;
  char *m = map_units(TUNIT);
  memset(m, 1, TUNIT);
  if ((w->err = ring_madvise(&own, m, (uint32_t)TUNIT, MADV_DONTNEED, 1)) == 0) {
    struct seen s = { 0 };
    while (s.madvise < 1 && (w->err = ring_wait(&own, true, count, &s)) >= 0) {}
    if (w->err > 0) w->err = 0;
    w->listed = ring_workers_listed(w->tid);
    w->any = any_ring_worker();
  }
  ring_fini(&own);
  close(own_efd);
  munmap(m, TUNIT);
  return NULL;
}

Test(pager_ring, the_rings_workers_are_found_and_waited_for)
{
  struct worker_probe w = { 0 };
  pthread_t t;
  cr_assert_eq(pthread_create(&t, NULL, madvise_through_a_ring_of_its_own, &w), 0);
  cr_assert_eq(pthread_join(t, NULL), 0);
  if (w.err == -EOPNOTSUPP) cr_skip_test("this kernel's io_uring has no IORING_OP_MADVISE: no worker to wait for");
  cr_assert_eq(w.err, 0, "the madvise through the ring failed: %s", strerror(-w.err));
  if (!w.listed && w.any)
    cr_skip_test("the ring's worker is named by a pid this process cannot see (a pid namespace): not waited for");
  cr_assert(w.listed, "no thread iou-wrk-%d after a madvise through the ring", (int)w.tid);
  thread_and_ring_workers_wait_gone(w.tid);
  cr_assert(!ring_workers_listed(w.tid), "iou-wrk-%d is still there a second after its thread's end", (int)w.tid);
}
