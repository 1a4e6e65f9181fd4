/* unit_helpers.h: what the unit tests of lib/ share. Everything is static:
 * each test program is one translation unit. */
#ifndef HAKMEM_TESTS_UNIT_HELPERS_H
#define HAKMEM_TESTS_UNIT_HELPERS_H

#include <criterion/criterion.h>
#include <fcntl.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hakmem.h"
#include "smaps.h"
#include "size_class.h"
#include "tcache.h"
#include "types.h"

/* Values the compiler cannot see through, so that it keeps a malloc/free
 * pair or a size it could otherwise fold. */
static inline void *opaque(void *p)
{
  __asm__ volatile("" : "+r"(p) : : "memory");
  return p;
}

static inline size_t opaque_size(size_t n)
{
  __asm__ volatile("" : "+r"(n));
  return n;
}

static inline struct hakmem_stats snap(void)
{
  struct hakmem_stats s;
  cr_assert_eq(hakmem_stats_get(&s), 0);
  return s;
}

static inline void run_thread(void *(*fn)(void *), void *arg)
{
  pthread_t t;
  cr_assert_eq(pthread_create(&t, NULL, fn, arg), 0);
  cr_assert_eq(pthread_join(t, NULL), 0);
}

/* Allocate blocks of `size` until this thread holds every block of some
 * slab; returns that slab, and its blocks in `mine` (address order) unless
 * mine is NULL. Every block allocated is in all[0..*nall). */
static inline struct slab *hold_a_whole_slab(size_t size, void **all, unsigned *nall, void **mine)
{
  enum { SLABS = 64 };
  struct slab *slabs[SLABS];
  unsigned counts[SLABS], nslabs = 0;
  unsigned cap = (unsigned)(UNIT_SIZE / class_to_size(size_to_class(size)));
  unsigned n = 0;
  for (unsigned round = 0; round < 4; round++) {
    for (unsigned i = 0; i < cap; i++) {
      void *p = malloc(opaque_size(size));
      cr_assert_not_null(p);
      all[n++] = p;
      struct slab *s = slab_of(p);
      unsigned k = 0;
      while (k < nslabs && slabs[k] != s)
        k++;
      if (k == nslabs) {
        cr_assert_lt(nslabs, SLABS, "%u blocks of %zu B come from over %d slabs", n, size, SLABS);
        slabs[nslabs] = s;
        counts[nslabs++] = 0;
      }
      counts[k]++;
    }
    for (unsigned k = 0; k < nslabs; k++) {
      if (counts[k] != slabs[k]->capacity)
        continue;
      for (unsigned j = 0; mine && j < cap; j++)
        mine[j] = slabs[k]->start + (size_t)j * slabs[k]->block_size;
      *nall = n;
      return slabs[k];
    }
  }
  cr_assert_fail("no slab of %zu B blocks is wholly held after %u blocks", size, n);
  return NULL;
}

/* Whether transparent huge pages back any of this process's memory: then
 * a region's first write may make a whole 2 MiB resident, and a page's
 * residency says nothing about whether it was written. */
static inline int thp_in_use(void)
{
  static char buf[4096];
  int fd = open("/proc/self/smaps_rollup", O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return 0;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0)
    return 0;
  buf[n] = '\0';
  const char *l = strstr(buf, "AnonHugePages:");
  return l && strtoul(l + strlen("AnonHugePages:"), NULL, 10) > 0;
}

#endif /* HAKMEM_TESTS_UNIT_HELPERS_H */
