/* ring.c: the pager's io_uring: arming, submitting, reaping.
 *
 * liburing's set-up maps the rings with mmap and does not call malloc;
 * io_uring_get_probe() would, so the probe is read into a buffer on the
 * stack instead. */
#include "config.h"

#include "ring.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define RING_ENTRIES 64

/* IORING_OP_MADVISE came with 5.6, as did the probe: a kernel that
 * refuses the probe lacks it too. */
static bool has_madvise_op(struct io_uring *uring) {
  union {
    struct io_uring_probe probe;
    char bytes[sizeof(struct io_uring_probe) + 256 * sizeof(struct io_uring_probe_op)];
  } buf;

  memset(&buf, 0, sizeof buf);
  if (io_uring_register_probe(uring, &buf.probe, 256) < 0) return false;
  return buf.probe.last_op >= IORING_OP_MADVISE &&
         (buf.probe.ops[IORING_OP_MADVISE].flags & IO_URING_OP_SUPPORTED);
}

int ring_init(struct ring *r, int uffd, int efd, uint64_t period_ns) {
  int err;

  memset(r, 0, sizeof *r);
  r->uffd = uffd;
  r->efd = efd;
  r->period.tv_sec = (long long)(period_ns / 1000000000u);
  r->period.tv_nsec = (long long)(period_ns % 1000000000u);
  err = io_uring_queue_init(RING_ENTRIES, &r->uring, 0);
  if (err) goto out;
  /* A fork child must not share the rings' pages with the pager. */
  err = io_uring_ring_dontfork(&r->uring);
  if (err) {
    io_uring_queue_exit(&r->uring);
    goto out;
  }
  r->sync_madvise = !has_madvise_op(&r->uring);
out:
  return err;
}

void ring_set_fd(struct ring *r, int fd) {
  r->uring.ring_fd = fd;
  r->uring.enter_ring_fd = fd;
}

void ring_fini(struct ring *r) {
  io_uring_queue_exit(&r->uring);
  memset(r, 0, sizeof *r);
}

void ring_forget(struct ring *r) {
  if (r->uring.ring_fd > 0) close(r->uring.ring_fd);
  memset(r, 0, sizeof *r);
}

/* An SQE, submitting what is queued first when the ring is full. */
static struct io_uring_sqe *sqe_get(struct ring *r) {
  struct io_uring_sqe *sqe = io_uring_get_sqe(&r->uring);
  if (!sqe) {
    io_uring_submit(&r->uring);
    sqe = io_uring_get_sqe(&r->uring);
  }
  return sqe;
}

int ring_madvise(struct ring *r, void *addr, uint32_t len, int advice, uint64_t id) {
  struct io_uring_sqe *sqe;

  if (r->sync_madvise) return -EOPNOTSUPP;
  sqe = sqe_get(r);
  if (!sqe) return -EBUSY;
  io_uring_prep_madvise(sqe, addr, len, advice);
  io_uring_sqe_set_data64(sqe, RING_MADVISE | (id << 8));
  return 0;
}

static int arm(struct ring *r) {
  struct io_uring_sqe *sqe;

  if (!r->uffd_armed) {
    if (!(sqe = sqe_get(r))) return -EBUSY;
    io_uring_prep_poll_add(sqe, r->uffd, POLLIN);
    io_uring_sqe_set_data64(sqe, RING_UFFD);
    r->uffd_armed = true;
  }
  if (!r->efd_armed && r->efd >= 0) {
    if (!(sqe = sqe_get(r))) return -EBUSY;
    io_uring_prep_read(sqe, r->efd, &r->efd_value, sizeof r->efd_value, 0);
    io_uring_sqe_set_data64(sqe, RING_EVENT);
    r->efd_armed = true;
  }
  if (!r->timer_armed) {
    if (!(sqe = sqe_get(r))) return -EBUSY;
    io_uring_prep_timeout(sqe, &r->period, 0, 0);
    io_uring_sqe_set_data64(sqe, RING_TIMER);
    r->timer_armed = true;
  }
  return 0;
}

static void reap_one(struct ring *r, uint64_t tag, int res, ring_fn *fn, void *arg) {
  switch (tag & 0xff) {
  case RING_UFFD: r->uffd_armed = false; break;
  case RING_EVENT: r->efd_armed = false; break;
  case RING_TIMER: r->timer_armed = false; break;
  default: break;
  }
  fn(arg, tag, res);
}

int ring_wait(struct ring *r, bool block, ring_fn *fn, void *arg) {
  struct io_uring_cqe *cqe;
  unsigned head, count = 0;
  int err;

  err = arm(r);
  if (err) goto out;
  err = block ? io_uring_submit_and_wait(&r->uring, 1) : io_uring_submit(&r->uring);
  if (err == -EINTR || err == -EAGAIN || err == -ETIME) err = 0;
  if (err < 0) goto out;
  io_uring_for_each_cqe(&r->uring, head, cqe) {
    reap_one(r, io_uring_cqe_get_data64(cqe), cqe->res, fn, arg);
    count++;
  }
  io_uring_cq_advance(&r->uring, count);
  err = (int)count;
out:
  return err;
}
