/* lock.h: the allocator's lock, for slow paths only.
 *
 * A futex lock (Drepper's "Futexes Are Tricky", mutex 2): 0 free, 1 held,
 * 2 held and maybe waited for. It spins a little, then sleeps in the
 * kernel until the holder wakes it. It needs no initialisation (safe
 * before libc is up) and can be reset in a fork child. A spinlock that
 * yielded, as this was, let four to eight threads on two cores spend a
 * third of their time in sched_yield() behind a holder the scheduler had
 * preempted (4 threads keeping 1000 blocks of 16 B..512 KiB each: 0.60 s
 * against 0.48 with this lock, mimalloc 0.47). */
#ifndef HAKMEM_LOCK_H
#define HAKMEM_LOCK_H

#include <errno.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/syscall.h>
#include <unistd.h>

typedef struct { atomic_int state; } hk_lock_t;

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

static inline void hk_lock(hk_lock_t *l) {
  if (__builtin_expect(hk_trylock(l), 1)) return;
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
  if (atomic_exchange_explicit(&l->state, 0, memory_order_release) == 2)
    hk_futex(&l->state, FUTEX_WAKE_PRIVATE, 1);
}

/* In a fork child only: the thread that held it does not exist there. */
static inline void hk_lock_reset(hk_lock_t *l) {
  atomic_store_explicit(&l->state, 0, memory_order_relaxed);
}

#endif /* HAKMEM_LOCK_H */
