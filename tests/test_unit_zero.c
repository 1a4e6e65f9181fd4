/* Description: unit tests of lib/zero.c, which clears reused pages for
 * calloc by what each page is. A page with data is memset; a page that
 * reads as zero (the kernel's zero page, a page cleared before) is left
 * alone and takes no fault; an absent page stays absent; pages shared with
 * a forked child read as zero in the parent and keep their data in the
 * child; the same through PAGEMAP_SCAN's runs (long ones included) and
 * through pagemap's entries; without /proc/self/pagemap every page is
 * memset. PAGEMAP_SCAN itself names the zero page's runs. Through calloc:
 * a reused huge block whose last user wrote some pages and only read
 * others comes back all zero, and only the written pages are memset. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pagemap.h"
#include "types.h"
#include "unit_helpers.h"
#include "zero.h"

enum { PAGES = 64 };

static char *map_pages(size_t pages)
{
  char *p = mmap(NULL, pages * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  cr_assert_neq(p, MAP_FAILED);
  return p;
}

static long minor_faults(void)
{
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_minflt;
}

static size_t resident_pages(char *p, size_t pages)
{
  unsigned char vec[PAGES];
  cr_assert_leq(pages, PAGES);
  cr_assert_eq(mincore(p, pages * PAGE_SIZE, vec), 0);
  size_t n = 0;
  for (size_t i = 0; i < pages; i++)
    n += vec[i] & 1;
  return n;
}

/* Whether a read fault on fresh anonymous memory maps the kernel's zero
 * page. Some kernels map a page of its own for each (a PVM guest booted
 * with pvm_no_zero_page=1: pages only read are then ordinary pages that
 * read as zero). Two pages only read share one frame when it is the zero
 * page; PAGEMAP_SCAN names it where frame numbers are hidden (not root). */
static bool reads_map_the_zero_page(void)
{
  char *p = map_pages(2);
  volatile char sink = p[0] + p[PAGE_SIZE];
  (void)sink;
  int fd = pagemap_open();
  cr_assert_geq(fd, 0, "no /proc/self/pagemap");
  uint64_t entries[2];
  cr_assert_eq(pagemap_read(fd, (uintptr_t)p, entries, 2), 2);
  uint64_t frame0 = entries[0] & PAGEMAP_FRAME, frame1 = entries[1] & PAGEMAP_FRAME;
  bool zero_page = frame0 == frame1;
  if (frame0 == 0) {
    struct pagemap_run run;
    uintptr_t from = (uintptr_t)p;
    long n = pagemap_scan(fd, &from, from + 2 * PAGE_SIZE, PAGEMAP_CAT_PRESENT, PAGEMAP_CAT_PFNZERO, &run, 1);
    zero_page = n < 0 || (n == 1 && (run.categories & PAGEMAP_CAT_PFNZERO));
  }
  pagemap_close(fd);
  munmap(p, 2 * PAGE_SIZE);
  return zero_page;
}

static void assert_reads_zero(const char *p, size_t len)
{
  for (size_t i = 0; i < len; i++)
    cr_assert_eq(p[i], 0, "byte %zu is %d", i, p[i]);
}

Test(zero, pages_with_data_are_cleared)
{
  char *p = map_pages(PAGES);
  for (size_t i = 0; i < PAGES; i++)
    memset(p + i * PAGE_SIZE + 100, 0x5A, 7 + i);
  struct zero_result r = zero_pages(p, PAGES * PAGE_SIZE);
  cr_assert_eq(r.cleared, PAGES);
  cr_assert_eq(r.clean + r.absent, 0);
  assert_reads_zero(p, PAGES * PAGE_SIZE);
  munmap(p, PAGES * PAGE_SIZE);
}

/* Pages only read are the kernel's zero page: left alone, no write fault. */
Test(zero, pages_that_read_as_zero_are_left_alone)
{
  char *p = map_pages(PAGES);
  volatile char sink = 0;
  for (size_t i = 0; i < PAGES; i++)
    sink += p[i * PAGE_SIZE];
  (void)sink;
  long before = minor_faults();
  struct zero_result r = zero_pages(p, PAGES * PAGE_SIZE);
  cr_assert_eq(r.clean, PAGES, "clean %zu, cleared %zu, absent %zu", r.clean, r.cleared, r.absent);
  /* A memset would take one fault per page; allow the test's own stack. */
  cr_assert_leq(minor_faults() - before, 2, "leaving zero pages alone took %ld faults",
                minor_faults() - before);
  assert_reads_zero(p, PAGES * PAGE_SIZE);
  munmap(p, PAGES * PAGE_SIZE);
}

Test(zero, absent_pages_stay_absent)
{
  char *p = map_pages(PAGES);
  struct zero_result r = zero_pages(p, PAGES * PAGE_SIZE);
  cr_assert_eq(r.absent, PAGES);
  cr_assert_eq(resident_pages(p, PAGES), 0, "zeroing made absent pages present");
  munmap(p, PAGES * PAGE_SIZE);
}

/* Pages written, read and untouched in turn: each kind counted as itself. */
static void zero_a_mixed_range(void)
{
  char *p = map_pages(PAGES);
  volatile char sink = 0;
  size_t written = 0, read = 0;
  for (size_t i = 0; i < PAGES; i++) {
    if (i % 3 == 0) {
      p[i * PAGE_SIZE + PAGE_SIZE - 1] = 1; /* data in the last byte only */
      written++;
    } else if (i % 3 == 1) {
      sink += p[i * PAGE_SIZE];
      read++;
    }
  }
  (void)sink;
  struct zero_result r = zero_pages(p, PAGES * PAGE_SIZE);
  if (reads_map_the_zero_page()) {
    cr_assert_eq(r.cleared, written);
    cr_assert_eq(r.clean, read);
  } else {
    /* A page only read is an ordinary page here, and a run of present pages
     * that starts with data is memset whole. */
    cr_assert_geq(r.cleared, written);
    cr_assert_eq(r.cleared + r.clean, written + read);
  }
  cr_assert_eq(r.absent, PAGES - written - read);
  assert_reads_zero(p, PAGES * PAGE_SIZE);
  munmap(p, PAGES * PAGE_SIZE);
}

Test(zero, a_mixed_range_gets_each_treatment)
{
  zero_a_mixed_range();
}

Test(zero, pagemap_scan_names_runs_of_the_zero_page)
{
  if (!reads_map_the_zero_page())
    cr_skip_test("this kernel maps an ordinary page, not the zero page, on a read fault");
  char *p = map_pages(8);
  volatile char sink = 0;
  for (size_t i = 0; i < 4; i++)
    sink += p[i * PAGE_SIZE];
  (void)sink;
  p[4 * PAGE_SIZE] = p[5 * PAGE_SIZE] = 1;
  int fd = pagemap_open();
  cr_assert_geq(fd, 0, "no /proc/self/pagemap");
  struct pagemap_run runs[4];
  uintptr_t from = (uintptr_t)p, end = from + 8 * PAGE_SIZE;
  long n = pagemap_scan(fd, &from, end, PAGEMAP_CAT_PRESENT,
                        PAGEMAP_CAT_PRESENT | PAGEMAP_CAT_PFNZERO, runs, 4);
  pagemap_close(fd);
  if (n < 0)
    cr_skip_test("the kernel has no PAGEMAP_SCAN (Linux 6.7); zero.c reads pagemap's entries");
  cr_assert_eq(from, end, "the scan stopped at page %zu", (size_t)(from - (uintptr_t)p) / PAGE_SIZE);
  cr_assert_eq(n, 2, "%ld runs", n);
  cr_assert_eq(runs[0].start, (uintptr_t)p);
  cr_assert_eq(runs[0].end, (uintptr_t)p + 4 * PAGE_SIZE);
  cr_assert_eq(runs[0].categories, PAGEMAP_CAT_PRESENT | PAGEMAP_CAT_PFNZERO);
  cr_assert_eq(runs[1].start, (uintptr_t)p + 4 * PAGE_SIZE);
  cr_assert_eq(runs[1].end, (uintptr_t)p + 6 * PAGE_SIZE);
  cr_assert_eq(runs[1].categories, PAGEMAP_CAT_PRESENT);
  munmap(p, 8 * PAGE_SIZE);
}

/* Kernels before 6.7 have no PAGEMAP_SCAN: one entry per page instead. */
Test(zero, without_pagemap_scan_the_entries_give_each_treatment)
{
  pagemap_test_disable_scan(true);
  zero_a_mixed_range();
  pagemap_test_disable_scan(false);
}

/* The scan reports the zero page's runs as such: a long run of pages only
 * read is clean, with no fault and no write. */
Test(zero, the_scan_reports_a_run_of_zero_pages_as_clean)
{
  enum { RUN = 4096 }; /* 16 MiB: more runs than one scan call returns when interleaved */
  char *p = mmap(NULL, (size_t)RUN * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  cr_assert_neq(p, MAP_FAILED);
  madvise(p, (size_t)RUN * PAGE_SIZE, MADV_NOHUGEPAGE); /* one run per page, not a huge zero page */
  volatile char sink = 0;
  for (size_t i = 0; i < RUN; i += 2)
    sink += p[i * PAGE_SIZE]; /* every other page: one run per page */
  for (size_t i = 1; i < RUN; i += 4)
    p[i * PAGE_SIZE] = 9;
  (void)sink;
  long before = minor_faults();
  struct zero_result r = zero_pages(p, (size_t)RUN * PAGE_SIZE);
  cr_assert_eq(r.clean, RUN / 2, "clean %zu, cleared %zu, absent %zu", r.clean, r.cleared, r.absent);
  cr_assert_eq(r.cleared, RUN / 4);
  cr_assert_eq(r.absent, RUN / 4);
  cr_assert_leq(minor_faults() - before, 2, "zeroing took %ld faults", minor_faults() - before);
  for (size_t i = 0; i < RUN; i++)
    cr_assert_eq(p[i * PAGE_SIZE], 0, "page %zu", i);
  munmap(p, (size_t)RUN * PAGE_SIZE);
}

/* After fork the parent's pages are shared with the child: the parent's
 * view is cleared, the child's keeps its data. */
Test(zero, pages_shared_with_a_forked_child_are_cleared_in_the_parent_only)
{
  char *p = map_pages(PAGES);
  memset(p, 0x77, PAGES * PAGE_SIZE);
  int go[2], done[2];
  cr_assert_eq(pipe(go), 0);
  cr_assert_eq(pipe(done), 0);
  pid_t child = fork();
  cr_assert_geq(child, 0);
  if (child == 0) {
    char c;
    if (read(go[0], &c, 1) != 1)
      _exit(2);
    for (size_t i = 0; i < PAGES * PAGE_SIZE; i++)
      if (p[i] != 0x77)
        _exit(1);
    _exit(0);
  }
  struct zero_result r = zero_pages(p, PAGES * PAGE_SIZE);
  cr_assert_eq(r.cleared, PAGES);
  assert_reads_zero(p, PAGES * PAGE_SIZE);
  cr_assert_eq(write(go[1], "g", 1), 1);
  int status;
  cr_assert_eq(waitpid(child, &status, 0), child);
  cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child's pages changed");
  munmap(p, PAGES * PAGE_SIZE);
}

Test(zero, without_pagemap_every_page_is_memset)
{
  char *p = map_pages(PAGES);
  memset(p, 0x11, PAGE_SIZE);
  pagemap_test_disable(true);
  struct zero_result r = zero_pages(p, PAGES * PAGE_SIZE);
  pagemap_test_disable(false);
  cr_assert_eq(r.cleared, PAGES);
  cr_assert_eq(r.clean + r.absent, 0);
  assert_reads_zero(p, PAGES * PAGE_SIZE);
  munmap(p, PAGES * PAGE_SIZE);
}

/* Through calloc: the huge block's region comes back from the LRU with
 * pages written, pages only read and pages never touched. */
Test(zero, calloc_of_a_reused_huge_block_reads_zero_and_memsets_only_written_pages)
{
  const size_t size = 4u << 20, pages = size / PAGE_SIZE;
  char *a = malloc(opaque_size(size));
  cr_assert_not_null(a);
  volatile char sink = 0;
  for (size_t i = 0; i < pages; i++) {
    if (i % 4 == 0)
      memset(a + i * PAGE_SIZE, 0xC3, PAGE_SIZE);
    else if (i % 4 == 1)
      sink += a[i * PAGE_SIZE];
  }
  (void)sink;
  free(a);
  struct hakmem_stats s0 = snap();
  char *b = calloc(1, opaque_size(size));
  cr_assert_eq(b, a, "test premise: the region is reused from the LRU");
  struct hakmem_stats s1 = snap();
  assert_reads_zero(b, size);
  /* The written pages come back as reuse; the never-touched quarter (and
   * the page the header shares) fault in fresh: nothing was released. */
  uint64_t reused = s1.supply[HAKMEM_SUPPLY_REUSE].pages - s0.supply[HAKMEM_SUPPLY_REUSE].pages;
  uint64_t fresh = s1.supply[HAKMEM_SUPPLY_FRESH].pages - s0.supply[HAKMEM_SUPPLY_FRESH].pages;
  cr_assert_geq(fresh, pages / 4 - 2, "absent pages counted as fresh: %llu", (unsigned long long)fresh);
  cr_assert_eq(s1.supply[HAKMEM_SUPPLY_REFAULT].pages, s0.supply[HAKMEM_SUPPLY_REFAULT].pages,
               "never-released pages counted as refaults");
  /* The page past the block's last, which only its last bytes share, is
   * absent and left so. */
  cr_assert_geq(reused, pages / 2 - 1, "reused pages: %llu", (unsigned long long)reused);
  free(b);
}
