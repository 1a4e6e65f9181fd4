/* budget.h: a bound that all threads share, which each reserves from and
 * gives back to (the spilled bins of heap.c, the run caches of large.c,
 * the slack of huge.c's blocks).
 *
 * A reservation compares and swaps: an add that undid itself when it went
 * past the bound made the total look fuller than it was meanwhile, and a
 * thread asking for a step that fits could be refused because another's
 * request that did not fit was on its way out. */
#ifndef HAKMEM_BUDGET_H
#define HAKMEM_BUDGET_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

/* n more units of *total, if it stays within limit. */
static inline bool budget_reserve(_Atomic size_t *total, size_t n, size_t limit) {
  size_t old = atomic_load_explicit(total, memory_order_relaxed);
  do {
    if (old > limit || n > limit - old) return false;
  } while (!atomic_compare_exchange_weak_explicit(total, &old, old + n, memory_order_relaxed,
                                                  memory_order_relaxed));
  return true;
}

static inline void budget_release(_Atomic size_t *total, size_t n) {
  atomic_fetch_sub_explicit(total, n, memory_order_relaxed);
}

#endif /* HAKMEM_BUDGET_H */
