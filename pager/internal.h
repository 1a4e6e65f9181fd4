/* internal.h: the pager's one instance, shared by its files.
 *
 *   pager.c  life cycle: start, stop, fork, configuration, load and exit
 *   hooks.c  the page-supplier hooks, on application threads
 *   loop.c   the pager thread: faults, background work, the ring
 *
 * `state`, `users` and `sleeping` (exchanged by pager_kick()) are the only
 * fields application threads use without a lock besides the pool (which
 * has its own); every other field
 * is written before RUNNING is published and read-only until the hooks
 * have drained, except those marked "pager thread". */
#ifndef HAKMEM_PAGER_INTERNAL_H
#define HAKMEM_PAGER_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "fd.h"
#include "os.h"
#include "pager.h"
#include "pool.h"
#include "ring.h"
#include "stash.h"
#include "supply.h"
#include "uffd.h"

#define PAGER_UNIT ((uintptr_t)2 << 20) /* regions are aligned to this */

enum pager_state { PAGER_IDLE, PAGER_RUNNING, PAGER_STOPPING };

struct pager {
  _Atomic int state;   /* enum pager_state */
  _Atomic long users;  /* hooks running now */
  _Atomic long users_left; /* of them, hooks the stopping thread will never leave */
  _Atomic bool sleeping; /* the pager thread is (about to be) blocked in the ring */
  _Atomic bool stop;   /* asks the pager thread to leave its loop */
  struct pager_config cfg;
  bool use_pool;       /* UFFDIO_MOVE usable: supply from the pool */
  struct uffd uffd;
  struct pool pool;
  struct stash stash;  /* huge pages for new SuperSlabs; base 0: none */
  struct ring ring;    /* pager thread */
  int efd;             /* the command eventfd: hooks write, the ring reads */
  int statfd;          /* /proc/self/stat, read once a period (loop.c); -1 without /proc */
  struct fd_identity uffd_id, efd_id, ring_id, statfd_id; /* what the descriptors were opened as */
  pthread_t thread;
  bool thread_live;    /* joinable: under the start lock */
  sigset_t start_mask; /* the starting thread's signal mask */
  _Atomic bool leader_gone; /* main() called pthread_exit(): the pager thread leaves */
  _Atomic bool loop_done;   /* the pager thread has released its descriptors */
  _Atomic pid_t tid;        /* the pager thread's, for its ring's workers (workers.h) */
  uint64_t last_fault_ns; /* pager thread */
};

extern struct pager pager;
extern const struct os_page_supplier pager_hooks;

/* Nonzero while this process's pager runs. It lives on a page marked
 * MADV_WIPEONFORK, so it reads zero in a child however it was forked: a
 * child made by a raw clone() or SYS_fork runs no atfork handler, and its
 * copy of the uffd acts on the parent's address space (a move or a copy
 * through it fills the parent's pages), while the pager thread it sees in
 * its copy of our state does not exist there. */
extern _Atomic uint64_t *pager_here;

static inline bool pager_in_this_process(void) {
  return pager_here && atomic_load_explicit(pager_here, memory_order_relaxed);
}

/* The hooks this thread is inside: a signal handler that calls exit(), or
 * a siglongjmp() out of malloc, leaves them below on the stack or gone,
 * and stopping the pager must not wait for them (pager_quiesce()). */
extern __thread long pager_hooks_here __attribute__((tls_model("initial-exec"), visibility("hidden")));

/* A hook's entry and exit: false when the pager is not running. */
static inline bool pager_enter(void) {
  if (!pager_in_this_process()) return false;
  pager_hooks_here++;
  atomic_fetch_add(&pager.users, 1);
  if (atomic_load(&pager.state) == PAGER_RUNNING) return true;
  atomic_fetch_sub(&pager.users, 1);
  pager_hooks_here--;
  return false;
}

static inline void pager_leave(void) {
  atomic_fetch_sub(&pager.users, 1);
  pager_hooks_here--;
}

/* The pager thread, at its end: its regions unregistered, its uffd and
 * ring closed (pager.c). */
void pager_release_descriptors(void);

/* Regions whose length is not a multiple of 2 MiB (huge blocks) end inside
 * their last unit, and a fault chunk must stop there: a move or a
 * zeropage past the mapping's end fails whole. One word per unit in a
 * direct-mapped table: the unit's tag, and the end's page in the unit. A
 * lost entry (a collision) only costs the fault a few halvings of its
 * chunk (loop.c). */
#define PAGER_ENDS 1024
extern _Atomic uint64_t pager_ends[PAGER_ENDS];

static inline void pager_end_set(uintptr_t end, bool set) {
  uintptr_t unit = end >> 21;
  uint64_t v = ((uint64_t)(unit & 0xffffffffu) << 32) | ((end & (PAGER_UNIT - 1)) >> 12);
  _Atomic uint64_t *slot = &pager_ends[unit % PAGER_ENDS];
  if (!(end & (PAGER_UNIT - 1))) return;
  if (set) atomic_store_explicit(slot, v, memory_order_relaxed);
  else atomic_compare_exchange_strong(slot, &v, 0);
}

/* The end of the region in addr's unit, or the unit's end. */
static inline uintptr_t pager_end_of(uintptr_t addr) {
  uintptr_t unit = addr >> 21, unit_end = (unit + 1) << 21;
  uint64_t v = atomic_load_explicit(&pager_ends[unit % PAGER_ENDS], memory_order_relaxed);
  if ((v >> 32) != (unit & 0xffffffffu) || !(uint32_t)v) return unit_end;
  uintptr_t end = (unit << 21) + ((uintptr_t)(uint32_t)v << 12);
  return end > addr ? end : unit_end;
}

/* Wake the pager thread if it sleeps: work is waiting for it. */
void pager_kick(void);
/* Pages are being supplied: the pool, empty until the first supply, fills. */
void pager_expect_supply(void);
/* Remove the hooks and wait until none runs; idempotent, any thread. */
void pager_quiesce(void);
/* The pager thread's body. */
void *pager_loop(void *arg);

#endif /* HAKMEM_PAGER_INTERNAL_H */
