/* Description: memory goes back to the kernel. A program allocates 512 MiB
 * of small blocks (64..512 B), touches them, frees them all and calls
 * malloc_trim(0): its RSS must then be within 16 MiB of where it started.
 * The pointer table is mmap'ed directly so it is not part of what is
 * measured. Also with the blocks freed in a scattered order, by another
 * thread than the one that allocated them, with large blocks, with a few
 * large or small blocks surviving between the freed ones (then the space
 * between them serves again; also without malloc_trim, after a second),
 * and under
 * the other lazy-zero policies and the pager (trimming returns memory now,
 * whatever the policy). Last, malloc_trim(0) in a loop while threads
 * allocate, free and check their blocks: trimming must not take memory
 * that is in use. */
#include "helpers.h"

#include <malloc.h>
#include <hakmem.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <unistd.h>

#define TOTAL (512 * MiB)

struct table {
  void **p;
  size_t n, cap, bytes;
};

static struct table table_new(void)
{
  struct table t = {0};
  t.cap = TOTAL / 64 + 1;
  t.p = mmap(NULL, t.cap * sizeof(void *), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
             -1, 0);
  cr_assert(t.p != MAP_FAILED, "mmap of the pointer table: %s", strerror(errno));
  return t;
}

static void table_free(struct table *t)
{
  munmap(t->p, t->cap * sizeof(void *));
}

static void fill(struct table *t)
{
  uint64_t rng = 0xC0FFEE;
  while (t->bytes < TOTAL) {
    size_t size = 64 + (size_t)(xorshift64(&rng) % 449); /* 64..512 B */
    void *p = malloc(launder_size(size));
    cr_assert_not_null(p, "malloc failed after %zu MiB", t->bytes / MiB);
    memset(p, 0xA5, size);
    t->p[t->n++] = p;
    t->bytes += size;
  }
}

/* Free every block, in order or in a scattered order (a stride prime to n). */
static void free_all(struct table *t, int scattered)
{
  size_t stride = scattered ? 1000003 : 1;
  for (size_t k = 0, i = 0; k < t->n; k++, i = (i + stride) % t->n) {
    free(t->p[i]);
    t->p[i] = NULL;
  }
}

static void check_returned(size_t rss0, size_t rss_full)
{
  int rc = malloc_trim(0);
  cr_assert(rc == 0 || rc == 1);
  size_t rss = rss_bytes();
  cr_assert_lt(rss, rss0 + 16 * MiB,
               "RSS started at %zu MiB, reached %zu MiB, is %zu MiB after free and malloc_trim(0)",
               rss0 / MiB, rss_full / MiB, rss / MiB);
}

Test(stress_trim, small_blocks_freed_in_order, .timeout = 120)
{
  size_t rss0 = rss_bytes();
  struct table t = table_new();
  fill(&t);
  size_t rss_full = rss_bytes();
  cr_assert_gt(rss_full, rss0 + TOTAL, "512 MiB touched, RSS only %zu MiB", rss_full / MiB);
  free_all(&t, 0);
  table_free(&t);
  check_returned(rss0, rss_full);
}

Test(stress_trim, small_blocks_freed_scattered, .timeout = 120)
{
  size_t rss0 = rss_bytes();
  struct table t = table_new();
  fill(&t);
  size_t rss_full = rss_bytes();
  cr_assert(t.n % 1000003 != 0);
  free_all(&t, 1);
  table_free(&t);
  check_returned(rss0, rss_full);
}

static void *free_all_thread(void *arg)
{
  free_all(arg, 0);
  return NULL;
}

Test(stress_trim, small_blocks_freed_by_another_thread, .timeout = 120)
{
  size_t rss0 = rss_bytes();
  struct table t = table_new();
  fill(&t);
  size_t rss_full = rss_bytes();
  pthread_t th;
  cr_assert_eq(pthread_create(&th, NULL, free_all_thread, &t), 0);
  pthread_join(th, NULL);
  table_free(&t);
  check_returned(rss0, rss_full);
}

/* 512 MiB of large blocks (48 KiB .. 1 MiB) and a few huge ones. */
Test(stress_trim, large_blocks, .timeout = 120)
{
  size_t rss0 = rss_bytes();
  struct table t = table_new();
  uint64_t rng = 0xBEEF;
  while (t.bytes < TOTAL) {
    uint64_t r = xorshift64(&rng);
    size_t size = r % 64 == 0 ? 3 * MiB : 48 * KiB + (size_t)(r >> 8) % (1 * MiB - 48 * KiB);
    void *p = malloc(launder_size(size));
    cr_assert_not_null(p);
    memset(p, 0xA5, size);
    t.p[t.n++] = p;
    t.bytes += size;
  }
  size_t rss_full = rss_bytes();
  free_all(&t, 1);
  table_free(&t);
  check_returned(rss0, rss_full);
}

/* Every `keep`th block of `size` bytes survives, its bytes checked after
 * the trim; the free space between survivors goes back to the kernel:
 * RSS ends within `resident` + 16 MiB of where it started. */
static void survivors(size_t size, size_t keep, size_t total, size_t resident)
{
  size_t n = total / size, live = 0;
  void **p = mmap(NULL, n * sizeof *p, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  cr_assert(p != MAP_FAILED);
  size_t rss0 = rss_bytes();
  for (size_t i = 0; i < n; i++) {
    p[i] = malloc(launder_size(size));
    cr_assert_not_null(p[i]);
    pattern_fill(p[i], size, i, 1);
  }
  size_t rss_full = rss_bytes();
  for (size_t i = 0; i < n; i++) {
    if (i % keep == 0) {
      live += size;
      continue;
    }
    free(p[i]);
    p[i] = NULL;
  }
  malloc_trim(0);
  size_t rss = rss_bytes();
  for (size_t i = 0; i < n; i += keep)
    cr_assert_eq(pattern_check(p[i], size, i, 1), (size_t)-1, "block %zu changed by the trim", i);
  /* The space the trim gave back serves again: calloc'd blocks are zero. */
  for (size_t i = 0; i < n; i++) {
    if (p[i])
      continue;
    p[i] = i % 2 ? calloc(1, launder_size(size)) : malloc(launder_size(size));
    cr_assert_not_null(p[i]);
    if (i % 2)
      cr_assert(all_zero(p[i], size), "calloc block %zu after the trim is not zero", i);
    pattern_fill(p[i], size, i, 2);
  }
  for (size_t i = 0; i < n; i++) {
    cr_assert_eq(pattern_check(p[i], size, i, i % keep ? 2 : 1), (size_t)-1, "block %zu changed", i);
    free(p[i]);
  }
  munmap(p, n * sizeof *p);
  cr_assert_lt(rss, rss0 + resident + 16 * MiB,
               "%zu-byte blocks, one in %zu kept (%zu MiB): RSS from %zu MiB to %zu MiB, %zu MiB after malloc_trim(0)",
               size, keep, live / MiB, rss0 / MiB, rss_full / MiB, rss / MiB);
}

/* A 100 KiB block in twenty lives on: the free runs between them go. */
Test(stress_trim, large_blocks_between_survivors, .timeout = 120)
{
  survivors(100 * KiB, 20, 256 * MiB, 256 * MiB / 20);
}

/* 8 KiB blocks, eight to a slab, one in 64 kept: seven slabs in eight are
 * empty in SuperSlabs still in use, and their pages go; each survivor
 * keeps its slab's 64 KiB. */
Test(stress_trim, small_slabs_between_survivors, .timeout = 120)
{
  survivors(8 * KiB, 64, 256 * MiB, 256 * MiB / 8);
}

/* 1 KiB blocks, four to a page, one in twenty kept: the pages whose
 * blocks are all free go back from the slabs still in use (four pages in
 * five), the rest stay. */
Test(stress_trim, small_blocks_between_survivors, .timeout = 120)
{
  survivors(1 * KiB, 20, 256 * MiB, 256 * MiB / 4);
}

/* Without malloc_trim: the free units of SuperSlabs still in use go back
 * once they have been free a second, on later refills of the thread. */
Test(stress_trim, free_units_idle_for_a_second_go_back_without_trim, .timeout = 120)
{
  const size_t size = 8 * KiB, n = 128 * MiB / (8 * KiB), keep = 64;
  void **p = mmap(NULL, n * sizeof *p, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  cr_assert(p != MAP_FAILED);
  for (size_t i = 0; i < n; i++) {
    p[i] = malloc(launder_size(size));
    cr_assert_not_null(p[i]);
    pattern_fill(p[i], size, i, 1);
  }
  for (size_t i = 0; i < n; i++)
    if (i % keep) {
      free(p[i]);
      p[i] = NULL;
    }
  size_t rss_freed = rss_bytes();
  usleep(1100 * 1000);
  enum { M = 20000 }; /* about twenty refills of the 64 B class */
  static void *q[M];
  for (size_t k = 0; k < M; k++)
    cr_assert_not_null(q[k] = malloc(launder_size(64)));
  for (size_t k = 0; k < M; k++)
    free(q[k]);
  size_t rss = rss_bytes();
  for (size_t i = 0; i < n; i += keep) {
    cr_assert_eq(pattern_check(p[i], size, i, 1), (size_t)-1, "block %zu changed", i);
    free(p[i]);
  }
  munmap(p, n * sizeof *p);
  cr_assert_lt(rss + 64 * MiB, rss_freed, "RSS %zu MiB after the frees, %zu MiB a second later", rss_freed / MiB,
               rss / MiB);
}

Test(stress_trim, under_other_lazy_zero_policies, .timeout = 300)
{
  static const char *const settings[] = {
      "HAKMEM_SS_LAZY_ZERO=0",
      "HAKMEM_SS_LAZY_ZERO=2",
      "HAKMEM_UFFD=1 HAKMEM_SS_LAZY_ZERO=3",
  };
  for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++) {
    rerun_with_env("stress_trim/small_blocks_freed_in_order", settings[i]);
    rerun_with_env("stress_trim/large_blocks", settings[i]);
    rerun_with_env("stress_trim/large_blocks_between_survivors", settings[i]);
    rerun_with_env("stress_trim/small_blocks_between_survivors", settings[i]);
  }
}

/* Threads work on their own slots while main trims in a loop. */
#define TRIM_WORKERS 3
static atomic_int trim_stop;

struct trim_worker {
  pthread_t thread;
  int id;
  long bad, nulls, ops;
};

static void *trim_worker(void *arg)
{
  struct trim_worker *w = arg;
  enum { SLOTS = 512 };
  void *p[SLOTS] = {0};
  size_t sz[SLOTS] = {0};
  uint64_t gen[SLOTS] = {0};
  uint64_t rng = mix64((uint64_t)w->id + 1) | 1;
  while (!atomic_load_explicit(&trim_stop, memory_order_relaxed) || w->ops < 20000) {
    uint64_t r = xorshift64(&rng);
    size_t i = r % SLOTS;
    if (p[i]) {
      if (pattern_check(p[i], sz[i], i, gen[i]) != (size_t)-1)
        w->bad++;
      free(p[i]);
      p[i] = NULL;
      continue;
    }
    uint64_t pick = (r >> 16) % 100;
    sz[i] = pick == 0 ? 2 * MiB + (r >> 24) % MiB : pick < 5 ? 40 * KiB + (r >> 24) % (200 * KiB)
                                                             : 1 + (r >> 24) % 4000;
    p[i] = pick % 2 ? calloc(1, launder_size(sz[i])) : malloc(launder_size(sz[i]));
    if (!p[i]) {
      w->nulls++;
      continue;
    }
    if (pick % 2 && !all_zero(p[i], sz[i]))
      w->bad++;
    gen[i]++;
    pattern_fill(p[i], sz[i], i, gen[i]);
    w->ops++;
  }
  for (size_t i = 0; i < SLOTS; i++) {
    if (p[i] && pattern_check(p[i], sz[i], i, gen[i]) != (size_t)-1)
      w->bad++;
    free(p[i]);
  }
  return NULL;
}

Test(stress_trim, trim_while_threads_allocate, .timeout = 120)
{
  struct trim_worker w[TRIM_WORKERS];
  for (int k = 0; k < TRIM_WORKERS; k++) {
    w[k] = (struct trim_worker){.id = k};
    cr_assert_eq(pthread_create(&w[k].thread, NULL, trim_worker, &w[k]), 0);
  }
  for (int i = 0; i < 300; i++) {
    int rc = i % 2 ? malloc_trim(0) : (int)(hakmem_trim() > 0);
    cr_assert(rc == 0 || rc == 1);
    usleep(1000);
  }
  atomic_store(&trim_stop, 1);
  for (int k = 0; k < TRIM_WORKERS; k++) {
    pthread_join(w[k].thread, NULL);
    cr_assert_eq(w[k].bad, 0, "worker %d saw %ld corrupted or unzeroed blocks", k, w[k].bad);
    cr_assert_eq(w[k].nulls, 0, "worker %d saw %ld allocation failures", k, w[k].nulls);
    cr_assert_geq(w[k].ops, 20000);
  }
}
