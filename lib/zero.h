/* zero.h: make a range of reused memory read as zero at the least cost.
 *
 * calloc of a block on pages used before cannot simply memset them: a page
 * its last user only read is the kernel's shared zero page, and writing to
 * it takes a copy-on-write fault (1-2 us here) to clear 4 KiB that read as
 * zero already. /proc/self/pagemap says which pages are there, and each
 * gets the cheapest treatment that leaves it reading as zero:
 *
 *   absent           nothing: it faults in zeroed
 *   present          read it; memset it only if a byte is not zero (the
 *                    zero page and a page already clear are left alone);
 *                    a run of present pages whose first page holds data
 *                    is memset whole, without a look at the others
 *   swapped out      MADV_DONTNEED: it comes back as a zero page
 *
 * Reading is enough to decide, whatever shares the page (the zero page, a
 * forked child, KSM): a page that reads as zero gives a private copy of
 * zeros on the program's first write.
 *
 * PAGEMAP_SCAN (Linux 6.7) reports runs: absent pages cost nothing and the
 * zero page is known without reading it (calloc workload: reuse went from
 * about 100 to a few ns a page). Older kernels read one entry per page and
 * check each present page's bytes. Without pagemap (no /proc, a sandbox)
 * every page is memset. */
#ifndef HAKMEM_ZERO_H
#define HAKMEM_ZERO_H

#include <stdbool.h>
#include <stddef.h>

struct zero_result {
  size_t cleared; /* pages memset */
  size_t clean;   /* present pages that read as zero already */
  size_t absent;  /* pages absent, or swapped out and released */
};

/* Make the page-aligned range [addr, addr+len) read as zero. */
struct zero_result zero_pages(void *addr, size_t len);

#endif /* HAKMEM_ZERO_H */
