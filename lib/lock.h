/* lock.h: the allocator's lock, for slow paths only.
 *
 * A test-and-test-and-set spinlock that yields the CPU after a short spin:
 * critical sections are short (list updates), it needs no initialisation
 * (safe before libc is up) and it can be reset in a fork child. */
#ifndef HAKMEM_LOCK_H
#define HAKMEM_LOCK_H

#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>

typedef struct { atomic_bool held; } hk_lock_t;

#define HK_LOCK_INIT { false }

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
  return !atomic_load_explicit(&l->held, memory_order_relaxed) &&
         !atomic_exchange_explicit(&l->held, true, memory_order_acquire);
}

static inline void hk_lock(hk_lock_t *l) {
  for (unsigned spins = 0; !hk_trylock(l); spins++) {
    if (spins < 64) hk_cpu_relax();
    else sched_yield();
  }
}

static inline void hk_unlock(hk_lock_t *l) {
  atomic_store_explicit(&l->held, false, memory_order_release);
}

/* In a fork child only: the thread that held it does not exist there. */
static inline void hk_lock_reset(hk_lock_t *l) {
  atomic_store_explicit(&l->held, false, memory_order_relaxed);
}

#endif /* HAKMEM_LOCK_H */
