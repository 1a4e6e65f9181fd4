/* Description: a randomized malloc/free/realloc/calloc/aligned_alloc run
 * that checks contents. 200,000 operations on 4096 slots, seeded
 * xorshift, sizes from 1 B to 256 KiB with a few up to 4 MiB. Every block
 * is filled with a pattern derived from (slot, generation) and checked
 * before it is freed or reallocated; calloc'd blocks are checked to be
 * zero first; realloc must keep the common prefix. Run single-threaded
 * and in two threads at once with different seeds, and again under the
 * other lazy-zero policies and the pager. A failure names the seed and the
 * operation number so it can be replayed. */
#include "helpers.h"

#include <malloc.h>
#include <pthread.h>

#define SLOTS 4096
#define OPS 200000

struct slot {
  unsigned char *p;
  size_t size;
  uint64_t gen;
};

struct run {
  uint64_t seed;
  long ops;
  char error[256]; /* empty when the run passed */
};

static size_t random_size(uint64_t *rng)
{
  uint64_t r = xorshift64(rng);
  unsigned pick = (unsigned)(r % 1000);
  r >>= 10;
  if (pick < 2)
    return 256 * KiB + r % (3 * MiB + 768 * KiB + 1); /* up to 4 MiB: 0.2 % */
  if (pick < 40)
    return 1 + r % (256 * KiB);                        /* large: 3.8 % */
  if (pick < 250)
    return 1 + r % (32 * KiB);                         /* up to the small classes' top */
  return 1 + r % 512;                                  /* most blocks are small */
}

#define FAIL(...)                                                                                  \
  do {                                                                                             \
    snprintf(run->error, sizeof run->error, __VA_ARGS__);                                          \
    goto out;                                                                                      \
  } while (0)

static void *random_run(void *arg)
{
  struct run *run = arg;
  struct slot *slots = calloc(SLOTS, sizeof *slots);
  uint64_t rng = run->seed;
  run->error[0] = '\0';
  if (!slots)
    FAIL("calloc of the slot table failed");
  for (long op = 0; op < run->ops; op++) {
    uint64_t r = xorshift64(&rng);
    size_t i = r % SLOTS;
    struct slot *s = &slots[i];
    unsigned kind = (unsigned)((r >> 16) % 100);
    size_t bad;

    if (s->p && (bad = pattern_check(s->p, s->size, i, s->gen)) != (size_t)-1)
      FAIL("seed %#llx op %ld: slot %zu (%zu B at %p, gen %llu) corrupted at offset %zu",
           (unsigned long long)run->seed, op, i, s->size, (void *)s->p,
           (unsigned long long)s->gen, bad);

    if (s->p && kind < 45) { /* free */
      free(s->p);
      s->p = NULL;
      continue;
    }
    size_t size = random_size(&rng);
    s->gen++;
    if (s->p) { /* realloc */
      unsigned char *q = realloc(s->p, launder_size(size));
      if (!q)
        FAIL("seed %#llx op %ld: realloc(%zu -> %zu) failed", (unsigned long long)run->seed, op,
             s->size, size);
      size_t keep = s->size < size ? s->size : size;
      if ((bad = pattern_check(q, keep, i, s->gen - 1)) != (size_t)-1)
        FAIL("seed %#llx op %ld: realloc %zu -> %zu (%p -> %p) lost contents at %zu",
             (unsigned long long)run->seed, op, s->size, size, (void *)s->p, (void *)q, bad);
      s->p = q;
    } else if (kind < 70) {
      s->p = malloc(launder_size(size));
    } else if (kind < 90) {
      size_t n = size >= 8 && size % 8 == 0 ? size / 8 : size;
      size_t m = n == size ? 1 : 8;
      s->p = calloc(launder_size(n), m);
      if (s->p && !all_zero(s->p, size))
        FAIL("seed %#llx op %ld: calloc(%zu, %zu) not zeroed", (unsigned long long)run->seed, op,
             n, m);
    } else {
      size_t align = (size_t)16 << ((r >> 32) % 9); /* 16 B .. 4 KiB */
      s->p = aligned_alloc(align, launder_size(size));
      if (s->p && (uintptr_t)s->p % align)
        FAIL("seed %#llx op %ld: aligned_alloc(%zu, %zu) = %p", (unsigned long long)run->seed, op,
             align, size, (void *)s->p);
    }
    if (!s->p)
      FAIL("seed %#llx op %ld: allocation of %zu B failed", (unsigned long long)run->seed, op, size);
    if ((uintptr_t)s->p % 16)
      FAIL("seed %#llx op %ld: %p is not 16-byte aligned", (unsigned long long)run->seed, op,
           (void *)s->p);
    if (malloc_usable_size(s->p) < size)
      FAIL("seed %#llx op %ld: usable %zu < %zu", (unsigned long long)run->seed, op,
           malloc_usable_size(s->p), size);
    s->size = size;
    pattern_fill(s->p, size, i, s->gen);
  }
  for (size_t i = 0; i < SLOTS; i++) {
    size_t bad;
    if (slots[i].p && (bad = pattern_check(slots[i].p, slots[i].size, i, slots[i].gen)) != (size_t)-1)
      FAIL("seed %#llx at the end: slot %zu corrupted at %zu", (unsigned long long)run->seed, i, bad);
  }
out:
  if (slots)
    for (size_t i = 0; i < SLOTS; i++)
      free(slots[i].p);
  free(slots);
  return NULL;
}

Test(stress_random, single_thread, .timeout = 120)
{
  struct run run = {.seed = 0x2545F4914F6CDD1DULL, .ops = OPS};
  random_run(&run);
  cr_assert_str_empty(run.error, "%s", run.error);
}

Test(stress_random, two_threads, .timeout = 120)
{
  struct run runs[2] = {{.seed = 42, .ops = OPS / 2}, {.seed = 4242, .ops = OPS / 2}};
  pthread_t t[2];
  for (int k = 0; k < 2; k++)
    cr_assert_eq(pthread_create(&t[k], NULL, random_run, &runs[k]), 0);
  for (int k = 0; k < 2; k++) {
    pthread_join(t[k], NULL);
    cr_assert_str_empty(runs[k].error, "%s", runs[k].error);
  }
}

/* A quarter of the run, which the other policies repeat. */
Test(stress_random, short_run, .timeout = 120)
{
  struct run run = {.seed = 0x9E3779B97F4A7C15ULL, .ops = OPS / 4};
  random_run(&run);
  cr_assert_str_empty(run.error, "%s", run.error);
}

Test(stress_random, under_other_policies, .timeout = 300)
{
  static const char *const settings[] = {
      "HAKMEM_SS_LAZY_ZERO=0",
      "HAKMEM_SS_LAZY_ZERO=2",
      "HAKMEM_LRU_MAX=0",
      "HAKMEM_UFFD=1 HAKMEM_SS_LAZY_ZERO=3",
  };
  for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++)
    rerun_with_env("stress_random/short_run", settings[i]);
}
