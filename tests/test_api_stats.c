/* Description: hakmem's own API and the trimming entry points.
 * hakmem_stats_get fills a versioned snapshot whose counters follow the
 * program's allocations (SuperSlabs live, huge blocks, bytes in use and
 * mapped, kernel calls, the page-supply ledger); hakmem_stats_print
 * writes a report naming every counter and the supply paths in use; hakmem_trim and malloc_trim(0)
 * return, empty the cache of SuperSlabs and give memory back. */
#include "helpers.h"

#include <hakmem.h>
#include <malloc.h>
#include <stddef.h>

static struct hakmem_stats snap(void)
{
  struct hakmem_stats s;
  memset(&s, 0xFF, sizeof s);
  cr_assert_eq(hakmem_stats_get(&s), 0, "hakmem_stats_get failed");
  return s;
}

static uint64_t supply_pages(const struct hakmem_stats *s)
{
  uint64_t n = 0;
  for (int i = 0; i < HAKMEM_SUPPLY_COUNT; i++)
    n += s->supply[i].pages;
  return n;
}

Test(stats, snapshot_is_versioned)
{
  struct hakmem_stats s = snap();
  cr_assert_eq(s.version, HAKMEM_STATS_VERSION);
  cr_assert_eq(s.size, sizeof(struct hakmem_stats));
  cr_assert_str_eq(hakmem_version(), HAKMEM_VERSION_STRING);
}

/* The size the caller passes bounds what is written: an older, smaller
 * struct gets its part and nothing past it; a larger one gets zeros past
 * the library's; one that cannot hold the header is refused. The plain
 * function, as dlsym finds it, fills version 1's struct only. */
Test(stats, a_snapshot_writes_no_more_than_the_callers_size)
{
  static unsigned char buf[sizeof(struct hakmem_stats) + 64];
  size_t part = offsetof(struct hakmem_stats, supply);
  memset(buf, 0xAA, sizeof buf);
  cr_assert_eq(hakmem_stats_get_sized((struct hakmem_stats *)buf, part), 0);
  struct hakmem_stats head;
  memcpy(&head, buf, part);
  cr_assert_eq(head.version, HAKMEM_STATS_VERSION);
  cr_assert_eq(head.size, sizeof(struct hakmem_stats));
  for (size_t i = part; i < sizeof buf; i++) cr_assert_eq(buf[i], 0xAA, "byte %zu past the caller's size written", i);

  memset(buf, 0xAA, sizeof buf);
  cr_assert_eq(hakmem_stats_get_sized((struct hakmem_stats *)buf, sizeof buf), 0);
  for (size_t i = sizeof(struct hakmem_stats); i < sizeof buf; i++) cr_assert_eq(buf[i], 0, "byte %zu", i);

  errno = 0;
  cr_assert_eq(hakmem_stats_get_sized((struct hakmem_stats *)buf, 4), -1);
  cr_assert_eq(errno, EINVAL);

  /* The plain function, which a program built with version 1's header may
   * reach through dlsym, writes no more than version 1's struct. */
  size_t v1 = offsetof(struct hakmem_stats, pager_refill_pages);
  memset(buf, 0xAA, sizeof buf);
  cr_assert_eq((hakmem_stats_get)((struct hakmem_stats *)buf), 0);
  memcpy(&head, buf, sizeof head.version + sizeof head.size);
  cr_assert_eq(head.version, HAKMEM_STATS_VERSION);
  for (size_t i = v1; i < sizeof buf; i++) cr_assert_eq(buf[i], 0xAA, "byte %zu past version 1's struct written", i);
}

/* 64 MiB of 1 KiB blocks: the counters must see most of it. The counters
 * are updated on slow paths only, so allow what thread caches may hold. */
Test(stats, counters_follow_small_allocations)
{
  enum { N = 64 * 1024 };
  static void *p[N];
  struct hakmem_stats before = snap();
  for (size_t i = 0; i < N; i++) {
    p[i] = malloc(launder_size(1024));
    cr_assert_not_null(p[i]);
    memset(p[i], 1, 1024);
  }
  struct hakmem_stats during = snap();
  cr_assert_geq(during.bytes_in_use, before.bytes_in_use + 48 * MiB,
                "bytes_in_use %" PRIu64 " -> %" PRIu64 " after allocating 64 MiB",
                before.bytes_in_use, during.bytes_in_use);
  cr_assert_geq(during.bytes_mapped, before.bytes_mapped + 48 * MiB,
                "bytes_mapped %" PRIu64 " -> %" PRIu64, before.bytes_mapped, during.bytes_mapped);
  cr_assert_geq(during.bytes_mapped, during.bytes_in_use);
  cr_assert_geq(during.ss_live, 24, "64 MiB of small blocks live in at least 24 SuperSlabs, not %" PRIu64,
                during.ss_live);
  cr_assert_gt(during.ss_mapped_total, before.ss_mapped_total);
  cr_assert_gt(during.slabs_carved, before.slabs_carved);
  cr_assert_gt(during.mmap_calls, before.mmap_calls);
  cr_assert_geq(supply_pages(&during), supply_pages(&before) + (48 * MiB) / 4096,
                "the page-supply ledger accounts for the pages of 64 MiB");

  for (size_t i = 0; i < N; i++)
    free(p[i]);
  hakmem_trim();
  struct hakmem_stats after = snap();
  cr_assert_leq(after.bytes_in_use, before.bytes_in_use + 8 * MiB,
                "bytes_in_use %" PRIu64 " -> %" PRIu64 " after freeing everything",
                before.bytes_in_use, after.bytes_in_use);
  cr_assert_lt(after.ss_live, during.ss_live);
  cr_assert_eq(after.ss_cached, 0, "hakmem_trim leaves %" PRIu64 " SuperSlabs cached", after.ss_cached);
  cr_assert_gt(after.pages_released, before.pages_released);
}

Test(stats, huge_blocks_are_counted)
{
  struct hakmem_stats before = snap();
  void *p = malloc(launder_size(100 * MiB));
  cr_assert_not_null(p);
  struct hakmem_stats during = snap();
  cr_assert_eq(during.huge_live, before.huge_live + 1);
  cr_assert_geq(during.bytes_mapped, before.bytes_mapped + 100 * MiB);
  cr_assert_geq(during.bytes_in_use, before.bytes_in_use + 100 * MiB);
  free(p);
  hakmem_trim();
  struct hakmem_stats after = snap();
  cr_assert_eq(after.huge_live, before.huge_live);
  cr_assert_lt(after.bytes_mapped, during.bytes_mapped - 90 * MiB,
               "a freed and trimmed 100 MiB block is still mapped");
}

static char *read_report(void)
{
  int fd = unnamed_file();
  hakmem_stats_print(fd);
  off_t len = lseek(fd, 0, SEEK_END);
  cr_assert_gt(len, 0, "hakmem_stats_print wrote nothing");
  char *text = malloc((size_t)len + 1);
  cr_assert_not_null(text);
  cr_assert_eq(pread(fd, text, (size_t)len, 0), len);
  text[len] = '\0';
  close(fd);
  return text;
}

/* Every counter is named; every supply path that has supplied pages has
 * its row (rows of paths that supplied nothing may be left out). */
Test(stats, print_names_every_counter_and_used_path)
{
  void *p = malloc(launder_size(1000));
  cr_assert_not_null(p);
  struct hakmem_stats s = snap();
  char *text = read_report();
  cr_assert(strstr(text, "hakmem") != NULL, "report does not say hakmem:\n%s", text);
#define CHECK_COUNTER(name, desc)                                                                  \
  cr_assert(strstr(text, #name) != NULL || strstr(text, desc) != NULL,                           \
            "report lacks the counter %s:\n%s", #name, text);
  HAKMEM_STATS_ALL_COUNTERS(CHECK_COUNTER)
#undef CHECK_COUNTER
  int rows = 0;
#define CHECK_PATH(NAME, name, desc)                                                               \
  if (s.supply[HAKMEM_SUPPLY_##NAME].pages > 0) {                                                  \
    rows++;                                                                                        \
    cr_assert(strstr(text, #name) != NULL || strstr(text, desc) != NULL,                         \
              "report lacks the supply path %s (%" PRIu64 " pages):\n%s", #name,                  \
              s.supply[HAKMEM_SUPPLY_##NAME].pages, text);                                        \
  }
  HAKMEM_SUPPLY_PATHS(CHECK_PATH)
#undef CHECK_PATH
  cr_assert_gt(rows, 0, "no supply path has supplied a page, yet a block is live");
  free(text);
  free(p);
}

Test(trim, malloc_trim_returns)
{
  void *p = malloc(launder_size(100));
  cr_assert_not_null(p);
  int rc = malloc_trim(0);
  cr_assert(rc == 0 || rc == 1, "malloc_trim(0) = %d", rc);
  rc = malloc_trim(1 * MiB);
  cr_assert(rc == 0 || rc == 1, "malloc_trim(1 MiB) = %d", rc);
  free(p);
  /* The allocator works after trimming. */
  for (int i = 0; i < 1000; i++) {
    void *q = malloc(launder_size((size_t)i * 100 + 1));
    cr_assert_not_null(q);
    free(q);
  }
}

/* Freed huge blocks and empty SuperSlabs go back: RSS drops. */
Test(trim, gives_memory_back)
{
  enum { N = 32 };
  void *p[N];
  size_t rss0 = rss_bytes();
  for (int i = 0; i < N; i++) {
    p[i] = malloc(launder_size(4 * MiB));
    cr_assert_not_null(p[i]);
    memset(p[i], 0x77, 4 * MiB);
  }
  size_t rss1 = rss_bytes();
  cr_assert_geq(rss1, rss0 + 100 * MiB, "128 MiB touched but RSS grew by %zu KiB",
                (rss1 - rss0) / KiB);
  for (int i = 0; i < N; i++)
    free(p[i]);
  hakmem_trim();
  size_t rss2 = rss_bytes();
  cr_assert_leq(rss2, rss0 + 16 * MiB, "after free and hakmem_trim RSS is %zu KiB above the start",
                (rss2 - rss0) / KiB);
  struct hakmem_stats s = snap();
  cr_assert_eq(s.ss_cached, 0);

  /* The same through malloc_trim(0), with small blocks. */
  enum { M = 100000 };
  static void *q[M];
  for (int i = 0; i < M; i++) {
    q[i] = malloc(launder_size(512));
    cr_assert_not_null(q[i]);
    memset(q[i], 0x55, 512);
  }
  for (int i = 0; i < M; i++)
    free(q[i]);
  malloc_trim(0);
  size_t rss3 = rss_bytes();
  cr_assert_leq(rss3, rss0 + 16 * MiB, "after free and malloc_trim(0) RSS is %zu KiB above the start",
                (rss3 - rss0) / KiB);
}
