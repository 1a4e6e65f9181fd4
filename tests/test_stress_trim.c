/* Description: memory goes back to the kernel. A program allocates 512 MiB
 * of small blocks (64..512 B), touches them, frees them all and calls
 * malloc_trim(0): its RSS must then be within 16 MiB of where it started.
 * The pointer table is mmap'ed directly so it is not part of what is
 * measured. Also with the blocks freed in a scattered order, and by
 * another thread than the one that allocated them. */
#include "helpers.h"

#include <malloc.h>
#include <pthread.h>
#include <sys/mman.h>

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
