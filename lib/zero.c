/* zero.c: clearing reused pages by what each one is (zero.h). */
#include "zero.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "os.h"
#include "pagemap.h"
#include "types.h"

#define PAGEMAP_BATCH 512 /* entries per read: 4 KiB of stack */
#define SCAN_RUNS 64      /* runs per PAGEMAP_SCAN: 1.5 KiB of stack */

/* Whether a present page reads as zero; a page with data usually says so
 * in its first line. */
static bool page_reads_zero(const void *page) {
  const uint64_t *w = page;
  for (size_t i = 0; i < PAGE_SIZE / sizeof *w; i += 8) {
    uint64_t any = w[i] | w[i + 1] | w[i + 2] | w[i + 3] | w[i + 4] | w[i + 5] | w[i + 6] | w[i + 7];
    if (any) return false;
  }
  return true;
}

static void zero_present_page(char *page, struct zero_result *r) {
  if (page_reads_zero(page)) {
    r->clean++;
  } else {
    memset(page, 0, PAGE_SIZE);
    r->cleared++;
  }
}

static void zero_swapped_pages(char *addr, size_t pages, struct zero_result *r) {
  if (os_release(addr, pages * PAGE_SIZE, OS_RELEASE_DONTNEED) == 0) {
    r->absent += pages; /* released: they come back as zero pages */
  } else {
    memset(addr, 0, pages * PAGE_SIZE); /* DONTNEED does not fail on a mapped range; if it did */
    r->cleared += pages;
  }
}

static void zero_page_by_entry(char *page, uint64_t entry, struct zero_result *r) {
  if (entry & PAGEMAP_PRESENT) zero_present_page(page, r);
  else if (entry & PAGEMAP_SWAP) zero_swapped_pages(page, 1, r);
  else r->absent++;
}

/* A run of present pages whose first page holds data is memset whole: its
 * pages were most likely written together, and a look at each page first
 * is a cache miss a page, paid before the memset can stream (calloc of
 * 1..8 MiB blocks on regions written whole: 57% of the time went to the
 * looks). A run that starts clean is looked at page by page. */
static void zero_present_run(char *addr, size_t pages, struct zero_result *r) {
  if (page_reads_zero(addr)) {
    r->clean++;
    for (size_t i = 1; i < pages; i++) zero_present_page(addr + i * PAGE_SIZE, r);
  } else {
    memset(addr, 0, pages * PAGE_SIZE);
    r->cleared += pages;
  }
}

/* Runs of pages that are the zero page are clean without a look. */
static size_t zero_run(const struct pagemap_run *run, struct zero_result *r) {
  char *addr = (char *)(uintptr_t)run->start;
  size_t pages = (size_t)(run->end - run->start) / PAGE_SIZE;
  if (run->categories & PAGEMAP_CAT_PFNZERO) r->clean += pages;
  else if (run->categories & PAGEMAP_CAT_PRESENT) zero_present_run(addr, pages, r);
  else zero_swapped_pages(addr, pages, r);
  return pages;
}

/* Through PAGEMAP_SCAN, which skips absent pages and names the zero page.
 * Returns where it stopped: end, or where the kernel would go no further. */
static uintptr_t zero_by_scan(int fd, uintptr_t from, uintptr_t end, struct zero_result *r) {
  struct pagemap_run runs[SCAN_RUNS];
  uintptr_t start = from;
  size_t reported = 0;
  while (from < end) {
    long n = pagemap_scan(fd, &from, end, PAGEMAP_CAT_PRESENT | PAGEMAP_CAT_SWAPPED,
                          PAGEMAP_CAT_PRESENT | PAGEMAP_CAT_SWAPPED | PAGEMAP_CAT_PFNZERO, runs, SCAN_RUNS);
    if (n < 0) break;
    for (long i = 0; i < n; i++) reported += zero_run(&runs[i], r);
  }
  r->absent += (from - start) / PAGE_SIZE - reported;
  return from;
}

/* Through pagemap's entries. Returns the pages they described; the caller
 * memsets the rest. */
static size_t zero_by_pagemap(int fd, char *addr, size_t pages, struct zero_result *r) {
  uint64_t entries[PAGEMAP_BATCH];
  size_t done = 0;
  while (done < pages) {
    size_t want = pages - done < PAGEMAP_BATCH ? pages - done : PAGEMAP_BATCH;
    size_t n = pagemap_read(fd, (uintptr_t)addr + done * PAGE_SIZE, entries, want);
    if (!n) break;
    for (size_t i = 0; i < n; i++) zero_page_by_entry(addr + (done + i) * PAGE_SIZE, entries[i], r);
    done += n;
  }
  return done;
}

struct zero_result zero_pages(void *addr, size_t len) {
  struct zero_result r = {0, 0, 0};
  int saved_errno = errno; /* a failed open or ioctl is no error of calloc's */
  uintptr_t from = (uintptr_t)addr, end = from + len / PAGE_SIZE * PAGE_SIZE;
  int fd = pagemap_open();
  if (fd >= 0) {
    from = zero_by_scan(fd, from, end, &r);
    from += zero_by_pagemap(fd, (char *)from, (end - from) / PAGE_SIZE, &r) * PAGE_SIZE;
    pagemap_close(fd);
  }
  if (from < end) {
    memset((char *)from, 0, end - from);
    r.cleared += (end - from) / PAGE_SIZE;
  }
  errno = saved_errno;
  return r;
}
