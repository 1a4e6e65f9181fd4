/* Description: glibc's introspection calls and C23's sized frees describe
 * and act on hakmem's heap, not glibc's empty one. mallinfo2 and mallinfo
 * follow the program's allocations (mapped, in use, free, huge blocks,
 * cached; the calling thread's caches not in use), mallinfo saturates
 * instead of wrapping, malloc_info writes a <malloc> element and refuses
 * options, malloc_stats prints hakmem's report on stderr, mallopt answers
 * as glibc does (without effect), and free_sized and free_aligned_sized
 * free small, large and huge blocks. */
#include "helpers.h"

#include <limits.h>
#include <malloc.h>

#include <hakmem.h>

/* Not declared by glibc before 2.43. */
void free_sized(void *p, size_t size);
void free_aligned_sized(void *p, size_t align, size_t size);

Test(mallinfo2, follows_small_and_huge_allocations)
{
  enum { N = 16 * 1024 };
  static void *p[N];
  struct mallinfo2 before = mallinfo2();
  for (size_t i = 0; i < N; i++) {
    p[i] = malloc(launder_size(2048));
    cr_assert_not_null(p[i]);
  }
  void *huge = malloc(launder_size(64 * MiB));
  cr_assert_not_null(huge);
  struct mallinfo2 during = mallinfo2();
  cr_assert_geq(during.uordblks, before.uordblks + 64 * MiB + 24 * MiB,
                "uordblks %zu -> %zu after 32 MiB of small blocks and a 64 MiB one", before.uordblks,
                during.uordblks);
  cr_assert_geq(during.arena, during.uordblks, "arena %zu below uordblks %zu", during.arena, during.uordblks);
  cr_assert_eq(during.fordblks, during.arena - during.uordblks);
  cr_assert_eq(during.hblks, before.hblks + 1);
  cr_assert_eq(during.hblkhd, 0, "hblkhd is counted in arena");
  cr_assert_eq(during.ordblks + during.smblks + during.fsmblks + during.usmblks, 0);

  free(huge);
  for (size_t i = 0; i < N; i++)
    free(p[i]);
  hakmem_trim();
  struct mallinfo2 after = mallinfo2();
  cr_assert_lt(after.uordblks, during.uordblks - 64 * MiB, "uordblks %zu after freeing, %zu before",
               after.uordblks, during.uordblks);
  cr_assert_eq(after.hblks, before.hblks);
  cr_assert_lt(after.arena, during.arena - 64 * MiB, "a freed and trimmed huge block is still in arena");
}

/* A thread that frees all it allocated finds uordblks where it was, as
 * under glibc, though its caches keep the blocks (a leak check compares
 * the two): 13.5 MB stayed counted before the caches were taken out. */
Test(mallinfo2, uordblks_comes_back_once_the_thread_frees_all)
{
  enum { N = 1000 };
  static void *p[N];
  struct mallinfo2 before = mallinfo2();
  for (size_t i = 0; i < N; i++) {
    p[i] = malloc(launder_size(i * 50 + 1)); /* small blocks and large runs */
    cr_assert_not_null(p[i]);
  }
  struct mallinfo2 during = mallinfo2();
  cr_assert_gt(during.uordblks, before.uordblks + 20 * MiB, "uordblks %zu -> %zu", before.uordblks,
               during.uordblks);
  for (size_t i = 0; i < N; i++)
    free(p[i]);
  struct mallinfo2 after = mallinfo2();
  /* Within a page: the test's framework may allocate or free a block. */
  cr_assert_leq(after.uordblks, before.uordblks + 4096, "uordblks %zu before the blocks, %zu after they were freed",
                before.uordblks, after.uordblks);
  cr_assert_eq(after.fordblks, after.arena - after.uordblks);
}

/* keepcost: what malloc_trim(0) would give back, the empty SuperSlabs. */
Test(mallinfo2, keepcost_is_the_cached_superslabs)
{
  enum { N = 4 * 1024 };
  static void *p[N];
  hakmem_trim();
  for (size_t i = 0; i < N; i++) {
    p[i] = malloc(launder_size(4096));
    cr_assert_not_null(p[i]);
  }
  for (size_t i = 0; i < N; i++)
    free(p[i]);
  /* The frees emptied SuperSlabs, which wait in the LRU. */
  struct hakmem_stats s;
  size_t keepcost = mallinfo2().keepcost;
  hakmem_stats_get(&s);
  cr_assert_gt(s.ss_cached, 0, "test premise: 16 MiB freed left no SuperSlab cached");
  cr_assert_eq(keepcost, s.ss_cached * ((size_t)2 << 20), "keepcost %zu for %llu cached SuperSlabs", keepcost,
               (unsigned long long)s.ss_cached);
  hakmem_trim(); /* thread cache and slabs back, empty SuperSlabs unmapped */
  cr_assert_eq(mallinfo2().keepcost, 0);
  hakmem_stats_get(&s);
  cr_assert_eq(s.ss_cached, 0);
}

Test(mallinfo, saturates_at_int_max)
{
  void *p = malloc(launder_size((size_t)3 << 30)); /* mapped, never touched */
  cr_assert_not_null(p);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations" /* glibc deprecates it; programs still call it */
  struct mallinfo mi = mallinfo();
#pragma GCC diagnostic pop
  cr_assert_eq(mi.arena, INT_MAX);
  cr_assert_eq(mi.uordblks, INT_MAX);
  cr_assert_geq(mi.hblks, 1);
  free(p);
}

static char *info_text(int options, int *ret)
{
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  cr_assert_not_null(f);
  *ret = malloc_info(options, f);
  fclose(f);
  return buf;
}

Test(malloc_info, writes_a_malloc_element_with_the_bytes_in_use)
{
  void *p = malloc(launder_size(8 * MiB));
  cr_assert_not_null(p);
  int ret;
  char *text = info_text(0, &ret);
  cr_assert_eq(ret, 0);
  cr_assert(strncmp(text, "<malloc version=\"hakmem-", 24) == 0, "%s", text);
  cr_assert(strstr(text, "</malloc>\n") != NULL, "%s", text);
  const char *in_use = strstr(text, "<total type=\"in-use\" size=\"");
  cr_assert_not_null(in_use, "%s", text);
  unsigned long long bytes = strtoull(in_use + strlen("<total type=\"in-use\" size=\""), NULL, 10);
  cr_assert_geq(bytes, 8 * MiB, "%s", text);
  free(text);
  free(p);
}

Test(malloc_info, refuses_options)
{
  int ret;
  errno = 0;
  char *text = info_text(1, &ret);
  cr_assert_eq(ret, EINVAL, "malloc_info(1) returned %d, glibc's EINVAL", ret);
  cr_assert_eq(errno, 0, "malloc_info(1) set errno to %d", errno);
  cr_assert_eq(text[0], '\0', "wrote %s", text);
  free(text);
}

Test(malloc_stats, prints_the_report_to_stderr)
{
  int fd = unnamed_file();
  int saved = dup(2);
  cr_assert(saved >= 0);
  cr_assert_eq(dup2(fd, 2), 2);
  malloc_stats();
  cr_assert_eq(dup2(saved, 2), 2);
  close(saved);
  char text[256] = { 0 };
  cr_assert_gt(pread(fd, text, sizeof text - 1, 0), 0, "malloc_stats wrote nothing");
  close(fd);
  cr_assert(strstr(text, "hakmem") != NULL && strstr(text, "ss_live") != NULL, "%s", text);
}

/* glibc's answers: 1 for every parameter, known or not, but 0 for an
 * M_MXFAST past its largest fastbin size (80 * sizeof(size_t) / 4). */
Test(mallopt, answers_as_glibc_does)
{
  const int params[] = { M_MXFAST,   M_TRIM_THRESHOLD, M_TOP_PAD,   M_MMAP_THRESHOLD, M_MMAP_MAX,
                         M_CHECK_ACTION, M_PERTURB,    M_ARENA_TEST, M_ARENA_MAX };
  for (size_t i = 0; i < sizeof params / sizeof params[0]; i++)
    cr_assert_eq(mallopt(params[i], 1), 1, "mallopt(%d) refused", params[i]);
  cr_assert_eq(mallopt(12345, 1), 1);
  cr_assert_eq(mallopt(-9, 1), 1);
  cr_assert_eq(mallopt(M_MXFAST, 80 * sizeof(size_t) / 4), 1);
  cr_assert_eq(mallopt(M_MXFAST, 100000), 0);
  cr_assert_eq(mallopt(M_MXFAST, -1), 0);
  /* Without effect: M_PERTURB would make glibc fill a block malloc hands
   * out with 0x55 (0xAA ^ 0xff). */
  cr_assert_eq(mallopt(M_PERTURB, 0xAA), 1);
  unsigned char *p = malloc(launder_size(64)); /* a power of two: its own class's block (no borrowing) */
  cr_assert_not_null(p);
  memset(p, 0x11, 64);
  free(p);
  unsigned char *q = malloc(launder_size(64));
  cr_assert_eq(q, p, "test premise: the same block comes back");
  cr_assert_eq(q[40], 0x11, "the block was filled (0x%02x)", q[40]);
  free(q);
}

static void *alloc(size_t size, size_t align)
{
  void *p = align ? aligned_alloc(align, launder_size(size)) : malloc(launder_size(size));
  cr_assert_not_null(p);
  memset(p, 0x5A, size);
  return p;
}

static void sized_free(void *p, size_t size, size_t align)
{
  if (align)
    free_aligned_sized(p, align, size);
  else
    free_sized(p, size);
}

/* A small block goes to the thread cache, whose next allocation of the
 * class returns it, and so does a large one of up to 256 KiB that needs no
 * alignment above a page (the thread's run cache, lib/large.c); a larger
 * or huge one leaves the bytes in use at once. */
static void sized_free_frees(size_t size, size_t align)
{
  void *p = alloc(size, align);
  if (size <= 256 * KiB && align <= 4096) {
    sized_free(p, size, align);
    void *q = alloc(size, align);
    cr_assert_eq(q, p, "a %zu-byte block freed by a sized free was not reused", size);
    sized_free(q, size, align);
    return;
  }
  struct hakmem_stats before, after;
  hakmem_stats_get(&before);
  sized_free(p, size, align);
  hakmem_stats_get(&after);
  cr_assert_leq(after.bytes_in_use + size, before.bytes_in_use, "a %zu-byte block is still in use after a sized free",
                size);
}

Test(free_sized, frees_small_large_and_huge_blocks)
{
  sized_free_frees(24, 0);
  sized_free_frees(3000, 0);
  sized_free_frees(200 * KiB, 0);
  sized_free_frees(16 * MiB, 0);
  free_sized(NULL, 10);
}

Test(free_aligned_sized, frees_aligned_blocks)
{
  sized_free_frees(100, 64);
  sized_free_frees(5000, 4096);
  sized_free_frees(3 * MiB, 2 * MiB);
  free_aligned_sized(NULL, 64, 10);
}
