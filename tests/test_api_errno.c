/* Description: a call of the malloc family that succeeds leaves errno as
 * it was, as glibc's do, on the default path and with the pager: a random
 * mix of every function over small, large and huge sizes, where huge
 * blocks grow by mremap (which may first be refused in place), large runs
 * grow in place and the pager moves pages (where a move may meet EEXIST);
 * and large blocks from the thread's run cache while a purge's madvise
 * fails. */
#include "helpers.h"

#include <malloc.h>
#include <sys/mman.h>
#include <time.h>

#include "hakmem.h"

#define SLOTS 256
#define SENTINEL 4242

static uint64_t mix_state = 88172645463325252ull;

static uint64_t mix_next(void)
{
  mix_state ^= mix_state << 13;
  mix_state ^= mix_state >> 7;
  mix_state ^= mix_state << 17;
  return mix_state;
}

/* Mostly small, a quarter up to 40 KB, some large, a few huge. */
static size_t mix_size(void)
{
  unsigned r = mix_next() % 100;
  if (r < 60) return mix_next() % 1024 + 1;
  if (r < 85) return mix_next() % 40000 + 1;
  if (r < 97) return mix_next() % (1 << 20) + 30000;
  return mix_next() % (12 << 20) + 1;
}

/* One operation on slot k; the name of the call whose errno is checked. */
static const char *mix_step(void **slot)
{
  unsigned op = mix_next() % 100;
  if (op < 40) {
    void *n = realloc(*slot, mix_size());
    if (n) *slot = n;
    return "realloc";
  }
  free(*slot);
  *slot = NULL;
  if (op < 55) return "free";
  errno = SENTINEL;
  if (op < 80) {
    *slot = malloc(mix_size());
    return "malloc";
  }
  if (op < 90) {
    *slot = calloc(1, mix_size());
    return "calloc";
  }
  if (op < 97) {
    *slot = memalign((size_t)16 << (mix_next() % 17), mix_size());
    return "memalign";
  }
  malloc_trim(0);
  return "malloc_trim";
}

static void errno_survives_a_random_mix(unsigned steps)
{
  static void *slots[SLOTS];
  for (unsigned i = 0; i < steps; i++) {
    void **slot = &slots[mix_next() % SLOTS];
    errno = SENTINEL;
    const char *call = mix_step(slot);
    cr_assert_eq(errno, SENTINEL, "step %u: %s succeeded but left errno %d (%s)", i, call, errno, strerror(errno));
  }
  for (unsigned i = 0; i < SLOTS; i++) {
    free(slots[i]);
    slots[i] = NULL;
  }
}

Test(errno_kept, a_call_that_succeeds_leaves_errno_alone)
{
  errno_survives_a_random_mix(60000);
}

Test(errno_kept, a_huge_block_grown_by_a_moving_mremap_leaves_errno_alone)
{
  /* A mapping of the test's own right after the block's region (whose
   * pages end where its usable size does) makes mremap refuse to grow it
   * in place; realloc then moves it. */
  size_t len = (size_t)4 << 20;
  char *p = malloc(len);
  cr_assert_not_null(p);
  memset(p, 7, len);
  char *after = (char *)(((uintptr_t)p + malloc_usable_size(p) + 4095) & ~(uintptr_t)4095);
  void *fence = mmap(after, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  cr_assert_neq(fence, MAP_FAILED, "no room for a mapping after the block at %p: %s", (void *)p, strerror(errno));
  errno = SENTINEL;
  char *q = realloc(p, 3 * len);
  cr_assert_not_null(q);
  cr_assert_eq(errno, SENTINEL, "realloc succeeded but left errno %d (%s)", errno, strerror(errno));
  cr_assert_eq(q[len - 1], 7);
  free(q);
  munmap(fence, 4096);
}

/* Large blocks served by the thread's run cache skip errno's keeping;
 * the cache's rare look at the arena's purge keeps it itself. Here the
 * purge's madvise fails (EINVAL on pages locked by mlockall), under mallocs
 * and frees that all succeed. */
Test(errno_kept, a_failed_purge_under_the_run_cache_leaves_errno_alone)
{
  free(malloc(16)); /* the thread gets a heap, so large frees are cached */
  char *keep = malloc(40000); /* keeps the SuperSlab in use */
  char *big = malloc(512 << 10); /* past the cache: its free goes to the arena */
  cr_assert(keep && big);
  memset(big, 1, 512 << 10);
  free(big); /* resident free pages: their purge falls due after a second */
  free(malloc(40000)); /* a run in the thread's cache */
  if (mlockall(MCL_CURRENT | MCL_FUTURE) != 0)
    cr_skip_test("mlockall failed (%s): no RLIMIT_MEMLOCK room or no CAP_IPC_LOCK", strerror(errno));
  struct timespec wait = { 1, 200 * 1000 * 1000 };
  nanosleep(&wait, NULL);
  struct hakmem_stats s0, s1;
  hakmem_stats_get(&s0);
  for (unsigned k = 0; k < 600; k++) {
    errno = SENTINEL;
    void *p = malloc(40000);
    cr_assert_not_null(p);
    cr_assert_eq(errno, SENTINEL, "malloc %u of a cached run succeeded but left errno %d (%s)", k, errno, strerror(errno));
    free(p);
    cr_assert_eq(errno, SENTINEL, "free %u of a cached run left errno %d (%s)", k, errno, strerror(errno));
  }
  hakmem_stats_get(&s1);
  cr_assert_gt(s1.madvise_calls, s0.madvise_calls, "test premise: the purge's madvise was tried");
  cr_assert_eq(s1.pages_released, s0.pages_released, "test premise: the locked pages were not released");
  munlockall();
  free(keep);
}

Test(errno_kept, with_the_pager_a_call_that_succeeds_leaves_errno_alone)
{
  errno = SENTINEL;
  if (hakmem_pager_start() != 0) {
    cr_skip_test("the pager does not run here (%s): built without --enable-uffd or no full userfaultfd",
                 strerror(errno));
  }
  cr_assert_eq(errno, SENTINEL, "hakmem_pager_start() succeeded but left errno %d", errno);
  errno_survives_a_random_mix(60000);
  errno = SENTINEL;
  hakmem_pager_stop();
  cr_assert_eq(errno, SENTINEL, "hakmem_pager_stop() left errno %d", errno);
}
