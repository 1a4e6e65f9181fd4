/* workers.h: the pager thread's and its io_uring workers' leaving.
 *
 * The kernel runs the ring's madvise requests on worker threads of the
 * process ("iou-wrk-<pid>", the pid of the thread that submitted them, in
 * the kernel's first pid namespace). The pager thread's exit waits for
 * them to end, but each, and the pager thread itself, leaves the
 * process's list of threads a moment after pthread_join() returns, so
 * that right after the join the process may still count more than one
 * thread, and unshare(CLONE_NEWUSER), which needs a single thread, fails
 * with EINVAL. Stopping the pager waits for them to leave. Inside a pid
 * namespace the workers' names hold pids the process cannot see: there
 * only the pager thread is waited for. */
#ifndef HAKMEM_PAGER_WORKERS_H
#define HAKMEM_PAGER_WORKERS_H

#include <stdbool.h>
#include <sys/types.h>

/* Whether a worker of owner's ring is still one of the process's threads.
 * False when /proc cannot tell. Does not allocate. */
bool ring_workers_listed(pid_t owner);

/* Wait, up to a second, until neither the thread owner nor a worker of
 * its ring is one of the process's threads. */
void thread_and_ring_workers_wait_gone(pid_t owner);

#endif /* HAKMEM_PAGER_WORKERS_H */
