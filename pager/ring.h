/* ring.h: the pager thread's event loop on io_uring (liburing).
 *
 * One ring carries everything the pager waits for, so it sleeps in one
 * place: readiness of the uffd (IORING_OP_POLL_ADD; the messages are then
 * read without blocking), the command eventfd that application threads
 * write to wake it (IORING_OP_READ), a periodic timer for refill, trimming
 * and adaptation (IORING_OP_TIMEOUT), and batched releases of pool bins
 * (IORING_OP_MADVISE), so that no application thread pays for them.
 *
 * The ring and every buffer it reads into live in struct ring, which the
 * pager keeps in its own static memory: never in registered memory, never
 * from malloc. Only the pager thread uses a ring after ring_init(). */
#ifndef HAKMEM_PAGER_RING_H
#define HAKMEM_PAGER_RING_H

#include <stdbool.h>
#include <stdint.h>

#include <liburing.h>

enum ring_tag {
  RING_UFFD = 1,  /* the uffd is readable */
  RING_EVENT = 2, /* the eventfd was written */
  RING_TIMER = 3, /* the period elapsed */
  RING_MADVISE = 4, /* + bin index << 8: a bin was released */
};

struct ring {
  struct io_uring uring;
  int uffd, efd;
  uint64_t efd_value;            /* IORING_OP_READ target */
  struct __kernel_timespec period;
  bool uffd_armed, efd_armed, timer_armed;
  bool sync_madvise;             /* the kernel lacks IORING_OP_MADVISE */
};

int ring_init(struct ring *r, int uffd, int efd, uint64_t period_ns);
void ring_fini(struct ring *r);
/* The ring's descriptor was moved (dup'ed elsewhere, the old one closed). */
void ring_set_fd(struct ring *r, int fd);
/* In a fork child: close the ring's fd; its memory was MADV_DONTFORK. */
void ring_forget(struct ring *r);

/* Queue a madvise of [addr, addr+len); it completes in ring_wait() with
 * tag RING_MADVISE | (id << 8) and madvise's result. -EOPNOTSUPP where the
 * kernel lacks IORING_OP_MADVISE, -EBUSY with no SQE free: then nothing is
 * queued and the caller makes the call itself. */
int ring_madvise(struct ring *r, void *addr, uint32_t len, int advice, uint64_t id);

/* Arm what is not armed, submit, and wait for at least one completion
 * when `block` (else only reap). Calls fn for each completion. Returns
 * the number of completions, or -errno. */
typedef void ring_fn(void *arg, uint64_t tag, int res);
int ring_wait(struct ring *r, bool block, ring_fn *fn, void *arg);

#endif /* HAKMEM_PAGER_RING_H */
