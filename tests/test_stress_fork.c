/* Description: fork() from a multi-threaded program while other threads
 * allocate and free. The child must be able to allocate at once (hakmem's
 * atfork handlers leave no lock held by a thread that does not exist in
 * the child): it mallocs and frees 10,000 blocks, checks their contents,
 * frees blocks inherited from the parent (also blocks of a parent thread
 * that does not exist in the child), starts a thread of its own and
 * exits 0. A child that deadlocks is killed by alarm() and fails. */
#include "helpers.h"

#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>

#define BUSY_THREADS 3
#define FORKS 30

static atomic_int stop;

static void *busy(void *arg)
{
  uint64_t rng = (uintptr_t)arg * 0x9E3779B97F4A7C15ULL + 1;
  void *slots[256] = {0};
  while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
    uint64_t r = xorshift64(&rng);
    size_t i = r % 256;
    free(slots[i]);
    size_t size = (r >> 16) % 32 == 0 ? 40 * KiB + (r >> 24) % (200 * KiB) : 1 + (r >> 24) % 2048;
    slots[i] = malloc(launder_size(size));
    if (slots[i])
      memset(slots[i], (int)i, size < 64 ? size : 64);
    if ((r >> 40) % 1024 == 0) {
      void *h = malloc(launder_size(3 * MiB)); /* huge blocks too */
      free(h);
    }
  }
  for (int i = 0; i < 256; i++)
    free(slots[i]);
  return NULL;
}

static void *child_thread(void *arg)
{
  (void)arg;
  for (int i = 0; i < 1000; i++) {
    void *p = malloc(launder_size((size_t)i + 1));
    if (!p)
      return (void *)1;
    free(p);
  }
  return NULL;
}

/* A thread that allocates blocks for main and then waits, alive in the
 * parent, absent in the child, which frees its blocks. */
#define PARKED_BLOCKS 200
static void *parked_blocks[PARKED_BLOCKS];
static atomic_int parked_release;

static size_t parked_size(int i)
{
  return i % 10 == 0 ? 50 * KiB + (size_t)i : 16 + (size_t)i * 9;
}

static void *parked(void *arg)
{
  atomic_int *ready = arg;
  for (int i = 0; i < PARKED_BLOCKS; i++) {
    parked_blocks[i] = malloc(launder_size(parked_size(i)));
    if (parked_blocks[i])
      pattern_fill(parked_blocks[i], parked_size(i), (uint64_t)i, 6);
  }
  atomic_store(ready, 1);
  while (!atomic_load(&parked_release))
    usleep(1000);
  return NULL;
}

/* The child's work; returns its exit status. */
static int child_main(void **inherited, int n_inherited)
{
  enum { N = 10000 };
  static void *p[N];
  for (int i = 0; i < N; i++) {
    size_t size = 1 + (size_t)(i * 31) % 4096;
    if (i % 500 == 0)
      size = 64 * KiB + (size_t)i;
    p[i] = malloc(launder_size(size));
    if (!p[i])
      return 2;
    pattern_fill(p[i], size, (uint64_t)i, 77);
  }
  for (int i = 0; i < N; i++) {
    size_t size = 1 + (size_t)(i * 31) % 4096;
    if (i % 500 == 0)
      size = 64 * KiB + (size_t)i;
    if (pattern_check(p[i], size, (uint64_t)i, 77) != (size_t)-1)
      return 3;
    free(p[i]);
  }
  for (int i = 0; i < n_inherited; i++) {
    if (pattern_check(inherited[i], 100, (uint64_t)i, 5) != (size_t)-1)
      return 4;
    free(inherited[i]);
  }
  /* Blocks of a thread that does not exist in the child. */
  for (int i = 0; i < PARKED_BLOCKS && n_inherited > 0; i++) {
    if (pattern_check(parked_blocks[i], parked_size(i), (uint64_t)i, 6) != (size_t)-1)
      return 7;
    free(parked_blocks[i]);
  }
  pthread_t t;
  void *res = (void *)1;
  if (pthread_create(&t, NULL, child_thread, NULL) != 0)
    return 5;
  pthread_join(t, &res);
  return res == NULL ? 0 : 6;
}

Test(stress_fork, child_allocates_while_parent_threads_run, .timeout = 120)
{
  enum { INHERITED = 100 };
  void *inherited[INHERITED];
  for (int i = 0; i < INHERITED; i++) {
    inherited[i] = malloc(launder_size(100));
    cr_assert_not_null(inherited[i]);
    pattern_fill(inherited[i], 100, (uint64_t)i, 5);
  }
  atomic_int ready = 0;
  pthread_t parked_thread;
  cr_assert_eq(pthread_create(&parked_thread, NULL, parked, &ready), 0);
  while (!atomic_load(&ready))
    usleep(1000);
  for (int i = 0; i < PARKED_BLOCKS; i++)
    cr_assert_not_null(parked_blocks[i]);

  pthread_t t[BUSY_THREADS];
  for (int i = 0; i < BUSY_THREADS; i++)
    cr_assert_eq(pthread_create(&t[i], NULL, busy, (void *)(uintptr_t)(i + 1)), 0);

  for (int f = 0; f < FORKS; f++) {
    usleep(2000); /* let the threads get into malloc and free */
    pid_t pid = fork();
    cr_assert(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
      alarm(30);
      _exit(child_main(inherited, INHERITED));
    }
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status), "fork %d: the child died of signal %d%s", f,
              WIFSIGNALED(status) ? WTERMSIG(status) : 0,
              WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM ? " (deadlocked)" : "");
    cr_assert_eq(WEXITSTATUS(status), 0, "fork %d: the child exited %d", f, WEXITSTATUS(status));
  }

  atomic_store(&stop, 1);
  for (int i = 0; i < BUSY_THREADS; i++)
    pthread_join(t[i], NULL);
  atomic_store(&parked_release, 1);
  pthread_join(parked_thread, NULL);
  /* The parent is unharmed: the blocks the children freed are intact here. */
  for (int i = 0; i < INHERITED; i++) {
    cr_assert_eq(pattern_check(inherited[i], 100, (uint64_t)i, 5), (size_t)-1);
    free(inherited[i]);
  }
  for (int i = 0; i < PARKED_BLOCKS; i++) {
    cr_assert_eq(pattern_check(parked_blocks[i], parked_size(i), (uint64_t)i, 6), (size_t)-1);
    free(parked_blocks[i]);
  }
}

/* A child that itself forks again, while its own thread allocates. */
Test(stress_fork, grandchild_allocates, .timeout = 120)
{
  pthread_t t;
  cr_assert_eq(pthread_create(&t, NULL, busy, (void *)(uintptr_t)9), 0);
  usleep(2000);
  pid_t pid = fork();
  cr_assert(pid >= 0);
  if (pid == 0) {
    alarm(30);
    pthread_t ct;
    if (pthread_create(&ct, NULL, busy, (void *)(uintptr_t)10) != 0)
      _exit(10);
    usleep(2000);
    pid_t gpid = fork();
    if (gpid < 0)
      _exit(11);
    if (gpid == 0) {
      alarm(30);
      _exit(child_main(NULL, 0));
    }
    int gstatus = 0;
    if (waitpid(gpid, &gstatus, 0) != gpid)
      _exit(12);
    atomic_store(&stop, 1);
    pthread_join(ct, NULL);
    _exit(WIFEXITED(gstatus) ? WEXITSTATUS(gstatus) : 13);
  }
  int status = 0;
  cr_assert_eq(waitpid(pid, &status, 0), pid);
  cr_assert(WIFEXITED(status), "the child died of signal %d", WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  cr_assert_eq(WEXITSTATUS(status), 0, "the child (or grandchild) exited %d", WEXITSTATUS(status));
  atomic_store(&stop, 1);
  pthread_join(t, NULL);
}

/* A thread alive at the fork may have been halfway through an update of
 * its heap that no lock covers (a list link, a remote list taken but not
 * yet collected): in the child, its heap is left alone, never adopted by
 * a new thread or walked by a trim, and its blocks stay valid to free. */
#define HOLDER_BLOCKS 4000
static void *holder_blocks[HOLDER_BLOCKS];

static void *holder(void *arg)
{
  atomic_int *ready = arg;
  for (int i = 0; i < HOLDER_BLOCKS; i++)
    holder_blocks[i] = malloc(launder_size(48));
  for (int i = 0; i < HOLDER_BLOCKS; i += 2) { /* free slots in its slabs, past what its cache holds */
    free(holder_blocks[i]);
    holder_blocks[i] = NULL;
  }
  atomic_store(ready, 1);
  while (atomic_load(ready) != 2)
    usleep(1000);
  return NULL;
}

/* Threads started in the child, all alive at once: each takes a heap. */
#define CHILD_THREADS 8
static pthread_barrier_t child_barrier;

static void *alloc_48(void *arg)
{
  (void)arg;
  void *p = malloc(launder_size(48));
  pthread_barrier_wait(&child_barrier);
  return p;
}

Test(stress_fork, a_live_threads_heap_is_left_alone_in_the_child, .timeout = 60)
{
  atomic_int ready = 0;
  pthread_t t;
  cr_assert_eq(pthread_create(&t, NULL, holder, &ready), 0);
  while (atomic_load(&ready) != 1)
    usleep(1000);
  uintptr_t holder_region = (uintptr_t)holder_blocks[1] & ~(uintptr_t)(2 * MiB - 1);
  pid_t pid = fork();
  cr_assert(pid >= 0);
  if (pid == 0) {
    alarm(30);
    pthread_t ct[CHILD_THREADS];
    void *p[CHILD_THREADS];
    pthread_barrier_init(&child_barrier, NULL, CHILD_THREADS);
    for (int i = 0; i < CHILD_THREADS; i++)
      if (pthread_create(&ct[i], NULL, alloc_48, NULL) != 0)
        _exit(2);
    for (int i = 0; i < CHILD_THREADS; i++)
      if (pthread_join(ct[i], &p[i]) != 0 || !p[i])
        _exit(2);
    for (int i = 0; i < CHILD_THREADS; i++)
      if (((uintptr_t)p[i] & ~(uintptr_t)(2 * MiB - 1)) == holder_region)
        _exit(3); /* a new thread took over the holder's heap */
    malloc_trim(0);
    for (int i = 1; i < HOLDER_BLOCKS; i += 2)
      free(holder_blocks[i]);
    for (int i = 0; i < CHILD_THREADS; i++)
      free(p[i]);
    _exit(0);
  }
  int status = 0;
  cr_assert_eq(waitpid(pid, &status, 0), pid);
  cr_assert(WIFEXITED(status), "the child died of signal %d", WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  cr_assert_eq(WEXITSTATUS(status), 0, "the child exited %d (3: a new thread adopted the live thread's heap)",
               WEXITSTATUS(status));
  atomic_store(&ready, 2);
  pthread_join(t, NULL);
  for (int i = 1; i < HOLDER_BLOCKS; i += 2)
    free(holder_blocks[i]);
}
