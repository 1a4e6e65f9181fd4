/* zero.c: clearing reused pages by what each one is (zero.h). */
#include "zero.h"

#include <stdint.h>
#include <string.h>

#include "os.h"
#include "pagemap.h"
#include "types.h"

#define PAGEMAP_BATCH 512 /* entries per read: 4 KiB of stack */

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

static void zero_page_by_entry(char *page, uint64_t entry, struct zero_result *r) {
  if (entry & PAGEMAP_PRESENT) {
    if (page_reads_zero(page)) {
      r->clean++;
    } else {
      memset(page, 0, PAGE_SIZE);
      r->cleared++;
    }
  } else if (!(entry & PAGEMAP_SWAP) || os_release(page, PAGE_SIZE, OS_RELEASE_DONTNEED) == 0) {
    r->absent++; /* absent, or swapped out and now released */
  } else {
    memset(page, 0, PAGE_SIZE); /* DONTNEED does not fail on a mapped page; if it did */
    r->cleared++;
  }
}

/* Returns the pages pagemap described; the caller memsets the rest. */
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
  size_t pages = len / PAGE_SIZE, done = 0;
  int fd = pagemap_open();
  if (fd >= 0) {
    done = zero_by_pagemap(fd, addr, pages, &r);
    pagemap_close(fd);
  }
  if (done < pages) {
    memset((char *)addr + done * PAGE_SIZE, 0, (pages - done) * PAGE_SIZE);
    r.cleared += pages - done;
  }
  return r;
}
