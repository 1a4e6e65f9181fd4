/* Description: unit tests of lib/lock.h, the futex lock of the slow
 * paths. More threads than cores increment a plain counter under one
 * lock and none of the increments is lost; a thread that waits for the
 * lock (and sleeps in the kernel) finds errno as it left it, and so do
 * the holder that wakes it and a wait that fails (EAGAIN); trylock fails on a held lock and succeeds on
 * a free one; a lock held when the process forks is free in the child
 * after hk_lock_reset. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lock.h"

static hk_lock_t lock = HK_LOCK_INIT;
static unsigned long counter;

enum { THREADS = 8, ROUNDS = 200000 };

static void *increment(void *arg)
{
  (void)arg;
  for (unsigned i = 0; i < ROUNDS; i++) {
    hk_lock(&lock);
    unsigned long c = counter;
    if (i % 1024 == 0)
      sched_yield(); /* let a waiter reach the kernel now and then */
    counter = c + 1;
    hk_unlock(&lock);
  }
  return NULL;
}

Test(lock, no_increment_is_lost_with_more_threads_than_cores)
{
  pthread_t t[THREADS];
  for (unsigned i = 0; i < THREADS; i++)
    cr_assert_eq(pthread_create(&t[i], NULL, increment, NULL), 0);
  for (unsigned i = 0; i < THREADS; i++)
    cr_assert_eq(pthread_join(t[i], NULL), 0);
  cr_assert_eq(counter, (unsigned long)THREADS * ROUNDS);
  cr_assert_eq(atomic_load(&lock.state), 0, "the lock is not free at the end");
}

static void *wait_for_lock(void *arg)
{
  int *seen = arg;
  errno = 4321;
  hk_lock(&lock);
  *seen = errno;
  hk_unlock(&lock);
  return NULL;
}

Test(lock, waiting_and_waking_keep_errno)
{
  hk_lock(&lock);
  int seen = 0;
  pthread_t t;
  cr_assert_eq(pthread_create(&t, NULL, wait_for_lock, &seen), 0);
  /* Until the waiter has marked the lock as waited for (2): it sleeps. */
  for (unsigned i = 0; i < 5000 && atomic_load(&lock.state) != 2; i++) {
    struct timespec ms = { 0, 1000000 };
    nanosleep(&ms, NULL);
  }
  cr_assert_eq(atomic_load(&lock.state), 2, "the waiter did not wait");
  errno = 1234;
  hk_unlock(&lock);
  cr_assert_eq(errno, 1234, "the wake changed the holder's errno");
  cr_assert_eq(pthread_join(t, NULL), 0);
  cr_assert_eq(seen, 4321, "the waiter's errno became %d", seen);
}

/* A wait on a word that changed meanwhile fails at once with EAGAIN, as
 * a waiter's does when the holder unlocks first: errno stays. */
Test(lock, a_futex_wait_that_fails_keeps_errno)
{
  atomic_int word = 0;
  errno = 77;
  hk_futex(&word, FUTEX_WAIT_PRIVATE, 2);
  cr_assert_eq(errno, 77, "errno became %d", errno);
}

Test(lock, trylock_fails_on_a_held_lock)
{
  cr_assert(hk_trylock(&lock));
  cr_assert_not(hk_trylock(&lock));
  hk_unlock(&lock);
  cr_assert(hk_trylock(&lock));
  hk_unlock(&lock);
}

Test(lock, a_fork_child_resets_a_held_lock)
{
  hk_lock(&lock);
  pid_t child = fork();
  cr_assert_geq(child, 0);
  if (child == 0) {
    hk_lock_reset(&lock);
    _exit(hk_trylock(&lock) ? 0 : 1);
  }
  int status;
  cr_assert_eq(waitpid(child, &status, 0), child);
  cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  hk_unlock(&lock);
}
