/* zero.c: clearing reused pages by what each one is (zero.h). */
#include "zero.h"

#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "os.h"
#include "types.h"

/* pagemap entry bits (Documentation/admin-guide/mm/pagemap.rst). */
#define PM_PRESENT (1ULL << 63)
#define PM_SWAP (1ULL << 62)

#define PAGEMAP_BATCH 512 /* entries per read: 4 KiB of stack */

static atomic_bool pagemap_disabled;

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
  if (entry & PM_PRESENT) {
    if (page_reads_zero(page)) {
      r->clean++;
    } else {
      memset(page, 0, PAGE_SIZE);
      r->cleared++;
    }
  } else if ((entry & PM_SWAP) && os_release(page, PAGE_SIZE, OS_RELEASE_DONTNEED) != 0) {
    memset(page, 0, PAGE_SIZE); /* DONTNEED does not fail on a mapped page; if it did */
    r->cleared++;
  } else {
    r->absent++;
  }
}

/* Returns the pages pagemap described; the caller memsets the rest. */
static size_t zero_by_pagemap(int fd, char *addr, size_t pages, struct zero_result *r) {
  uint64_t entries[PAGEMAP_BATCH];
  size_t done = 0;
  while (done < pages) {
    size_t want = pages - done < PAGEMAP_BATCH ? pages - done : PAGEMAP_BATCH;
    off_t off = (off_t)(((uintptr_t)addr / PAGE_SIZE + done) * sizeof(uint64_t));
    ssize_t got = syscall(SYS_pread64, fd, entries, want * sizeof(uint64_t), off);
    if (got < (ssize_t)sizeof(uint64_t)) break;
    size_t n = (size_t)got / sizeof(uint64_t);
    for (size_t i = 0; i < n; i++) zero_page_by_entry(addr + (done + i) * PAGE_SIZE, entries[i], r);
    done += n;
  }
  return done;
}

struct zero_result zero_pages(void *addr, size_t len) {
  struct zero_result r = {0, 0, 0};
  size_t pages = len / PAGE_SIZE, done = 0;
  /* Opened per call: a descriptor kept open could be closed or reused by
   * the program; three syscalls are nothing next to the pages. Raw
   * syscalls, so that a library wrapping open() (fakeroot, a sandbox) is
   * not entered from inside calloc. */
  int fd = atomic_load_explicit(&pagemap_disabled, memory_order_relaxed)
               ? -1
               : (int)syscall(SYS_openat, AT_FDCWD, "/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    done = zero_by_pagemap(fd, addr, pages, &r);
    syscall(SYS_close, fd);
  }
  if (done < pages) {
    memset((char *)addr + done * PAGE_SIZE, 0, (pages - done) * PAGE_SIZE);
    r.cleared += pages - done;
  }
  return r;
}

void zero_test_disable_pagemap(bool disable) { atomic_store(&pagemap_disabled, disable); }
