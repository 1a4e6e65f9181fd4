/* pagemap.h: /proc/self/pagemap, the kernel's word on each page of ours.
 *
 * Two interfaces (Documentation/admin-guide/mm/pagemap.rst): read(),
 * one 64-bit entry per page, and the PAGEMAP_SCAN ioctl (Linux 6.7),
 * runs of pages that share the categories asked for, which costs a few
 * nanoseconds a page where an entry costs tens and tells the zero page
 * apart without reading it.
 * Used by calloc's clearing (zero.c) and the pager's reclaim, both from
 * inside malloc or free: the file is opened per use, since a descriptor
 * kept open could be closed or reused by the program, and through raw
 * syscalls, so that a library wrapping open() (fakeroot, a sandbox) is not
 * entered from the allocator. */
#ifndef HAKMEM_PAGEMAP_H
#define HAKMEM_PAGEMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PAGEMAP_PRESENT (1ULL << 63)   /* mapped: a page of ours or the zero page */
#define PAGEMAP_SWAP (1ULL << 62)      /* swapped out: holds data, not present */
#define PAGEMAP_EXCLUSIVE (1ULL << 56) /* a page this process alone maps */
#define PAGEMAP_FRAME ((1ULL << 55) - 1) /* the frame number: 0 without CAP_SYS_ADMIN */

/* A descriptor for pagemap_read(), or -1 (no /proc, a sandbox). */
int pagemap_open(void);
void pagemap_close(int fd);

/* The entries of the n pages from the page-aligned addr; returns how many
 * were read (0 on an error). */
size_t pagemap_read(int fd, uintptr_t addr, uint64_t *entries, size_t n);

/* PAGEMAP_SCAN's categories (PAGE_IS_* in <linux/fs.h>). */
#define PAGEMAP_CAT_PRESENT (1ULL << 3)
#define PAGEMAP_CAT_SWAPPED (1ULL << 4)
#define PAGEMAP_CAT_PFNZERO (1ULL << 5) /* mapped to the zero page (or huge zero page) */
#define PAGEMAP_CAT_HUGE (1ULL << 6)    /* part of a huge page mapped whole (a PMD) */

struct pagemap_run {
  uint64_t start, end; /* [start, end), page-aligned */
  uint64_t categories; /* those of the report mask that hold for every page of the run */
};

/* Runs of the pages in [*from, end) that have any category of `anyof`,
 * each with its categories among `report`; fills at most n runs and moves
 * *from past the pages it looked at (pages it skips had none of `anyof`).
 * Returns the runs filled, or -1 when the kernel has no PAGEMAP_SCAN (then
 * every later call returns -1 at once) or it failed. */
long pagemap_scan(int fd, uintptr_t *from, uintptr_t end, uint64_t anyof, uint64_t report,
                  struct pagemap_run *runs, size_t n);

/* Whether [addr, addr + 2 MiB) (2 MiB aligned) is one huge page mapped
 * whole: 1 yes, 0 no, -1 when the kernel cannot tell (no pagemap, no
 * PAGEMAP_SCAN: Linux before 6.7). */
int pagemap_is_huge_page(uintptr_t addr);

/* For the tests of the fallbacks: pretend pagemap is missing, or that the
 * kernel has no PAGEMAP_SCAN. */
void pagemap_test_disable(bool disable);
void pagemap_test_disable_scan(bool disable);

#endif /* HAKMEM_PAGEMAP_H */
