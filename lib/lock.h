/* lock.h: the allocator's lock, for slow paths only.
 *
 * A futex lock (Drepper's "Futexes Are Tricky", mutex 2): 0 free, 1 held,
 * 2 held and maybe waited for. It spins a little, then sleeps in the
 * kernel until the holder wakes it. It needs no initialisation (safe
 * before libc is up) and can be reset in a fork child. A spinlock that
 * yielded, as this was, let four to eight threads on two cores spend a
 * third of their time in sched_yield() behind a holder the scheduler had
 * preempted (4 threads keeping 1000 blocks of 16 B..512 KiB each: 0.60 s
 * against 0.48 with this lock, mimalloc 0.47).
 *
 * The locks a fork's prepare handler takes (hk_lock_for_fork) stay the
 * forking thread's until its parent or child handler: fork handlers that
 * other libraries registered before hakmem's run inside that window (after
 * hakmem's prepare, before its parent and child), and may allocate. The
 * forking thread takes such a lock again without waiting, nested, as glibc
 * lets fork handlers use its malloc; any other thread waits. */
#ifndef HAKMEM_LOCK_H
#define HAKMEM_LOCK_H

#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

typedef struct {
  atomic_int state;
  int fork_depth;                /* nested takes by the forking thread (holder only) */
  _Atomic uintptr_t fork_holder; /* the thread holding it across a fork, or 0 */
} hk_lock_t;

#define HK_LOCK_INIT { 0 }
#define HK_LOCK_SPINS 100

static inline void hk_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ volatile("yield" ::: "memory");
#else
  __asm__ volatile("" ::: "memory");
#endif
}

static inline bool hk_trylock(hk_lock_t *l) {
  int free_state = 0;
  return atomic_load_explicit(&l->state, memory_order_relaxed) == 0 &&
         atomic_compare_exchange_strong_explicit(&l->state, &free_state, 1, memory_order_acquire,
                                                 memory_order_relaxed);
}

/* The futex call, errno kept: a malloc that succeeds leaves it alone. */
static inline void hk_futex(atomic_int *word, int op, int val) {
  int saved = errno;
  syscall(SYS_futex, word, op, val, NULL, NULL, 0);
  errno = saved;
}

static inline bool hk_lock_nested_in_fork(hk_lock_t *l) {
  if (atomic_load_explicit(&l->fork_holder, memory_order_relaxed) != (uintptr_t)pthread_self()) return false;
  l->fork_depth++;
  return true;
}

static inline void hk_lock(hk_lock_t *l) {
  if (__builtin_expect(hk_trylock(l), 1)) return;
  if (hk_lock_nested_in_fork(l)) return;
  for (unsigned spins = 0; spins < HK_LOCK_SPINS; spins++) {
    hk_cpu_relax();
    if (hk_trylock(l)) return;
  }
  /* Marked as waited for (2) by whoever takes it from here on, so that
   * its unlock wakes the next sleeper. */
  while (atomic_exchange_explicit(&l->state, 2, memory_order_acquire) != 0)
    hk_futex(&l->state, FUTEX_WAIT_PRIVATE, 2);
}

static inline void hk_unlock(hk_lock_t *l) {
  if (__builtin_expect(l->fork_depth != 0, 0)) {
    l->fork_depth--;
    return;
  }
  if (atomic_exchange_explicit(&l->state, 0, memory_order_release) == 2)
    hk_futex(&l->state, FUTEX_WAKE_PRIVATE, 1);
}

/* A fork's prepare handler takes l for the fork; the parent handler
 * gives it back with hk_unlock_after_fork, the child's with hk_lock_reset. */
static inline void hk_lock_for_fork(hk_lock_t *l) {
  hk_lock(l);
  atomic_store_explicit(&l->fork_holder, (uintptr_t)pthread_self(), memory_order_relaxed);
}

static inline void hk_unlock_after_fork(hk_lock_t *l) {
  atomic_store_explicit(&l->fork_holder, 0, memory_order_relaxed);
  hk_unlock(l);
}

/* In a fork child only: the thread that held it may not exist there.
 * A release all the same, with its wake: a thread that a child handler
 * registered before hakmem's started may already wait for it. */
static inline void hk_lock_reset(hk_lock_t *l) {
  l->fork_depth = 0;
  atomic_store_explicit(&l->fork_holder, 0, memory_order_relaxed);
  if (atomic_exchange_explicit(&l->state, 0, memory_order_release) == 2)
    hk_futex(&l->state, FUTEX_WAKE_PRIVATE, 1);
}

#endif /* HAKMEM_LOCK_H */
