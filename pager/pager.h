/* pager.h: the pager's life cycle and configuration (--enable-uffd).
 *
 * The pager is one thread serving the MISSING faults of every region the
 * allocator maps, from a pool of pages zeroed ahead of time (pool.h), and
 * a set of hooks (os.h's struct os_page_supplier) through which
 * application threads register regions, supply pages to fresh slabs
 * themselves (direct supply) and hand the pages of empty regions back.
 *
 * States: IDLE -> RUNNING (pager_start) -> STOPPING -> IDLE (pager_stop,
 * at exit, or on a failure of the pager thread). A hook runs only while
 * RUNNING and counts itself in `users`; stopping removes the hooks, waits
 * for `users` to drain, then the pager thread closes the uffd, which wakes
 * every thread waiting on a fault and unregisters every range: nobody
 * waits forever on a pager that is gone.
 *
 * fork(): the child has no pager thread and its regions are not
 * registered (UFFD_FEATURE_EVENT_FORK is not asked for), so the child
 * forgets the pager and its memory faults the kernel's way; a child may
 * call hakmem_pager_start() to get its own. The pool is MADV_DONTFORK, so
 * the parent's pages never become shared and its pager keeps serving. */
#ifndef HAKMEM_PAGER_PAGER_H
#define HAKMEM_PAGER_PAGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pager_config {
  size_t chunk;        /* bytes supplied per fault, a power of two in [4 KiB, 2 MiB] */
  size_t pool_bytes;   /* the pool's cap */
  uint64_t spin_ns;    /* the pager spins this long after a fault before sleeping */
  uint64_t period_ns;  /* the timer: refill, trimming, adaptation */
  bool direct;         /* direct supply on application threads */
  bool read_zeropage;  /* a read fault maps the zero page over its chunk */
  bool no_move;        /* act as if the kernel lacked UFFDIO_MOVE (tests) */
  bool no_stash;       /* no huge pages for new SuperSlabs (tests) */
};

/* The configuration HAKMEM_* asks for. */
void pager_config_from_options(struct pager_config *c);

/* 0, or -errno: -EPERM no full userfaultfd may be opened, -ENOSYS the
 * kernel has none, -EALREADY a pager runs. */
int pager_start(const struct pager_config *c);
void pager_stop(void);
bool pager_running(void);

/* For tests and benchmarks: what the pager negotiated and holds now. */
struct pager_info {
  uint64_t features;
  bool via_dev;      /* the uffd came from /dev/userfaultfd */
  bool can_move;     /* faults and direct supply use UFFDIO_MOVE */
  uint64_t clean_pages, dirty_pages, target_pages, keep_pages;
  bool stash_open;       /* new SuperSlabs get huge pages from the stash */
  uint64_t stash_pages;  /* pages in the stash's full slots now */
};
int pager_get_info(struct pager_info *out);

#endif /* HAKMEM_PAGER_PAGER_H */
