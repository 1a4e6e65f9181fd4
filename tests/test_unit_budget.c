/* Description: unit tests of lib/budget.h, the bound that threads reserve
 * from in steps. A reservation that fits is granted and one past the
 * bound refused, leaving the total as it was; what is given back can be
 * reserved again; a thread whose steps always fit is never refused while
 * another thread keeps asking for more than fits; threads that reserve
 * and give back at once never see the total pass the bound, and leave it
 * at zero. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "budget.h"

enum { LIMIT = 64, STEP = 8, ROUNDS = 2000000 };

Test(budget, grants_what_fits_and_refuses_the_rest_unchanged)
{
  _Atomic size_t total = 0;
  for (unsigned i = 0; i < LIMIT / STEP; i++)
    cr_assert(budget_reserve(&total, STEP, LIMIT), "step %u of %u", i + 1, LIMIT / STEP);
  cr_assert_not(budget_reserve(&total, 1, LIMIT));
  cr_assert_eq(atomic_load(&total), LIMIT);
  budget_release(&total, STEP);
  cr_assert_not(budget_reserve(&total, STEP + 1, LIMIT));
  cr_assert(budget_reserve(&total, STEP, LIMIT));
  cr_assert_eq(atomic_load(&total), LIMIT);
}

static _Atomic size_t shared_total;
static atomic_bool stop;

/* Asks for more than is left (a whole LIMIT, with one STEP always held by
 * the other thread or not), refused every time. */
static void *ask_too_much(void *arg)
{
  unsigned long *granted = arg;
  while (!atomic_load_explicit(&stop, memory_order_relaxed))
    if (budget_reserve(&shared_total, LIMIT - STEP + 1, LIMIT)) {
      ++*granted;
      budget_release(&shared_total, LIMIT - STEP + 1);
    }
  return NULL;
}

Test(budget, a_request_that_fits_is_not_refused_for_one_that_does_not)
{
  unsigned long granted = 0, refused = 0;
  atomic_store(&shared_total, 0);
  atomic_store(&stop, false);
  cr_assert(budget_reserve(&shared_total, STEP, LIMIT)); /* held throughout */
  pthread_t t;
  cr_assert_eq(pthread_create(&t, NULL, ask_too_much, &granted), 0);
  for (unsigned i = 0; i < ROUNDS; i++) {
    if (budget_reserve(&shared_total, STEP, LIMIT))
      budget_release(&shared_total, STEP);
    else
      refused++;
  }
  atomic_store(&stop, true);
  pthread_join(t, NULL);
  cr_assert_eq(refused, 0, "a step that fitted was refused %lu times in %u", refused, ROUNDS);
  cr_assert_eq(granted, 0, "a request past the bound was granted %lu times", granted);
  cr_assert_eq(atomic_load(&shared_total), STEP);
}

static atomic_bool passed_bound;

static void *reserve_and_release(void *arg)
{
  size_t n = (size_t)(uintptr_t)arg;
  for (unsigned i = 0; i < ROUNDS / 4; i++) {
    if (!budget_reserve(&shared_total, n, LIMIT))
      continue;
    if (atomic_load_explicit(&shared_total, memory_order_relaxed) > LIMIT)
      atomic_store(&passed_bound, true);
    budget_release(&shared_total, n);
  }
  return NULL;
}

Test(budget, threads_reserving_at_once_stay_within_the_bound)
{
  atomic_store(&shared_total, 0);
  atomic_store(&passed_bound, false);
  pthread_t t[4];
  for (uintptr_t i = 0; i < 4; i++)
    cr_assert_eq(pthread_create(&t[i], NULL, reserve_and_release, (void *)(STEP * (i + 2))), 0);
  for (unsigned i = 0; i < 4; i++)
    pthread_join(t[i], NULL);
  cr_assert_not(atomic_load(&passed_bound));
  cr_assert_eq(atomic_load(&shared_total), 0);
}
