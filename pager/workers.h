/* workers.h: the io_uring's worker threads of the pager thread.
 *
 * The kernel runs the ring's madvise requests on worker threads of the
 * process ("iou-wrk-<tid>", tid the pager thread's). The pager thread's
 * exit waits for them to end, but each leaves the process's list of
 * threads a moment later, so that right after the join the process may
 * still count more than one thread, and unshare(CLONE_NEWUSER), which
 * needs a single thread, fails with EINVAL. Stopping the pager waits for
 * them to leave. */
#ifndef HAKMEM_PAGER_WORKERS_H
#define HAKMEM_PAGER_WORKERS_H

#include <stdbool.h>
#include <sys/types.h>

/* Whether a worker of owner's ring is still one of the process's threads.
 * False when /proc cannot tell. Does not allocate. */
bool ring_workers_listed(pid_t owner);

/* Wait, up to a second, until none is. */
void ring_workers_wait_gone(pid_t owner);

#endif /* HAKMEM_PAGER_WORKERS_H */
