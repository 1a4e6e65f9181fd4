/* pagemap.h: /proc/self/pagemap, the kernel's word on each page of ours.
 *
 * One 64-bit entry per page (Documentation/admin-guide/mm/pagemap.rst).
 * Read by calloc's clearing (zero.c) and the pager's reclaim, both from
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

/* A descriptor for pagemap_read(), or -1 (no /proc, a sandbox). */
int pagemap_open(void);
void pagemap_close(int fd);

/* The entries of the n pages from the page-aligned addr; returns how many
 * were read (0 on an error). */
size_t pagemap_read(int fd, uintptr_t addr, uint64_t *entries, size_t n);

/* For the tests of the fallbacks: pretend pagemap is missing. */
void pagemap_test_disable(bool disable);

#endif /* HAKMEM_PAGEMAP_H */
