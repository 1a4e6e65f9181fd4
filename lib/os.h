/* os.h: every call the allocator makes to the kernel for memory.
 *
 * Contract: functions return 0 (or a pointer) on success and -errno (or
 * NULL) on failure, and never call malloc. errno may change on either:
 * the malloc family saves the caller's errno around its slow paths
 * (api.c). Each call is counted and timed in the stats (mmap_calls,
 * mmap_ns, ...). The page supplier below is where the pager plugs in:
 * lib/ knows it only through this header and works without it. */
#ifndef HAKMEM_OS_H
#define HAKMEM_OS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hakmem.h"

/* What an empty region's pages become when it enters the LRU. */
enum os_release_mode {
  OS_RELEASE_KEEP = 0,     /* keep the pages resident */
  OS_RELEASE_DONTNEED = 1, /* MADV_DONTNEED: zero on the next touch */
  OS_RELEASE_FREE = 2,     /* MADV_FREE: the kernel takes them when it needs them */
  OS_RELEASE_PAGER = 3,    /* hand them to the page supplier (pager) */
};

/* Slabs, runs and releases are laid out in PAGE_SIZE (4 KiB) pages; on a
 * kernel with larger pages madvise would round their ranges out over live
 * blocks. Returns unless kernel_page (0: unknown) is another size; then
 * prints one line and aborts. */
void os_require_page_size(unsigned long kernel_page);

/* Map len bytes of anonymous read-write memory whose address `offset`
 * bytes in (a multiple of the page size, below len) is aligned to align (a
 * power of two >= the page size), leaving up to `room` bytes above it
 * unmapped where it can (os.c), for it to grow into. NULL when the kernel
 * refuses. */
void *os_map_aligned_at(size_t len, size_t align, size_t offset, size_t room);

static inline void *os_map_aligned(size_t len, size_t align) { return os_map_aligned_at(len, align, 0, 0); }

/* Under transparent huge pages "always", keep the whole pages of
 * [addr, addr + len) out of huge pages (MADV_NOHUGEPAGE): for a sparse
 * table, whose one touched entry would otherwise make 2 MiB resident.
 * Where the madvise fails the range keeps the kernel's default. */
void os_keep_small_pages(void *addr, size_t len);

/* The mode of transparent huge pages (/sys/kernel/mm/transparent_hugepage/
 * enabled), read once: MADV_HUGEPAGE is accepted under "never" too, and
 * then asks for nothing. */
enum os_thp_mode { OS_THP_MISSING, OS_THP_NEVER, OS_THP_MADVISE, OS_THP_ALWAYS };
enum os_thp_mode os_thp_mode(void);

/* Ask for transparent huge pages on [addr, addr + len) (MADV_HUGEPAGE),
 * before anything in it is touched: each 2 MiB-aligned part then faults in
 * whole, one fault and one page-table entry where 512 pages took one each.
 * False when the kernel refuses (built without THP: EINVAL); the range
 * then faults in 4 KiB pages as before. */
bool os_ask_huge_pages(void *addr, size_t len);

/* Unmap a range previously mapped by os_map_aligned (or part of one),
 * counting `released` of its bytes as returned to the kernel (the others
 * were released before, or never used). */
int os_unmap(void *addr, size_t len, size_t released);

/* Grow or shrink a mapping to new_len where it is: true, or false (the
 * mapping unchanged) when the address space above it is taken. */
bool os_resize_in_place(void *addr, size_t old_len, size_t new_len);

/* Grow or shrink a mapping to new_len: in place where the address space
 * above it is free, else at a new address aligned to align, with `room`
 * (os_map_aligned_at); the contents move with it. Returns the new address
 * or NULL (old one intact). */
void *os_remap_aligned(void *addr, size_t old_len, size_t new_len, size_t align, size_t room);

/* Give the pages of [addr, addr+len) back with the given mode. Returns 0,
 * or -errno; with MADV_FREE unsupported it falls back to MADV_DONTNEED and
 * returns 0. The pager mode is only used through os_release_region(). */
int os_release(void *addr, size_t len, enum os_release_mode mode);

/* Make the absent pages of [addr, addr+len) present before the allocator
 * writes to them: through the page supplier when one is installed,
 * otherwise by MADV_POPULATE_WRITE. The pages are recorded in the ledger
 * under `path` (FRESH or REFAULT) with the time spent. When neither works
 * (kernel before 5.14) the program faults them in itself, and the ledger
 * counts them with no time. Never fails. */
void os_supply(void *addr, size_t len, enum hakmem_supply_path path);
/* os_supply() without the supplier: MADV_POPULATE_WRITE, timed; once
 * the process is threaded (os_note_threaded), a single page is left to
 * its fault. */
void os_populate(void *addr, size_t len, enum hakmem_supply_path path);
/* A second thread allocates: called when the second heap is made. */
void os_note_threaded(void);

/* Only the supplier's part of os_supply(), for blocks whose pages the
 * program may never touch (large and huge blocks): the bytes from addr on
 * that the supplier made present, 0 without a supplier. */
size_t os_supply_direct(void *addr, size_t len);

/* The page supplier. All hooks are called from application threads on the
 * allocator's slow paths, possibly with allocator locks held: they must not
 * call malloc, must not block on anything but their own short locks (but
 * trim, which malloc_trim calls without them), and must not touch the
 * ranges they are given. */
struct os_page_supplier {
  /* A region (a SuperSlab or a huge block's mapping) was mapped: all of it
   * absent except, possibly, its first page (the header). */
  void (*region_mapped)(void *base, size_t len);
  /* A region is about to be unmapped, or moved by mremap; or, when base
   * is inside a region, its tail from base on is, and the region ends at
   * base from now on. */
  void (*region_unmapping)(void *base, size_t len);
  /* A new SuperSlab, mapped, untouched and not yet published: make all of
   * it present with zeroed pages now, if the supplier can at little cost
   * (a huge page moved whole), registering it for that. False leaves it
   * absent, and region_mapped() follows. */
  bool (*supply_region)(void *base, size_t len);
  /* Make [addr, addr+len) present with zeroed pages, now, on this thread
   * (direct supply). Returns the number of bytes supplied from addr on,
   * or left to faults the supplier serves (0 to decline); the rest is
   * populated by the default path. The
   * supplier records its own rows of the ledger. */
  size_t (*supply)(void *addr, size_t len);
  /* Take the pages of [addr, addr+len) from a region entering the LRU,
   * leaving the range absent (and still registered). Returns 0, or -errno
   * to make the allocator fall back to MADV_DONTNEED. */
  int (*reclaim)(void *addr, size_t len);
  /* The allocator serves [base, base+len), a whole region, with (serve)
   * or without the supplier: without, its pages are made present by the
   * kernel's faults, one at a time, as if no supplier ran. */
  void (*region_serve)(void *base, size_t len, bool serve);
  /* malloc_trim: give back what the supplier holds ahead of need, now.
   * Returns the bytes. */
  size_t (*trim)(void);
};

/* Install (or, with NULL, remove) the page supplier. The caller keeps the
 * struct alive until it is removed. */
void os_set_page_supplier(const struct os_page_supplier *supplier);
const struct os_page_supplier *os_page_supplier(void);

/* Release [addr, addr+len) of a region entering the LRU by `mode`;
 * OS_RELEASE_PAGER goes to the supplier's reclaim and falls back to
 * MADV_DONTNEED. Returns the ledger path its pages take when next used. */
enum hakmem_supply_path os_release_region(void *addr, size_t len, enum os_release_mode mode);

/* Call fn for every region the allocator has mapped now (SuperSlabs live
 * or cached, huge blocks), e.g. to register them with a new supplier. */
void os_for_each_region(void (*fn)(void *base, size_t len, void *arg), void *arg);
/* The same, without the regions the allocator leaves to the kernel's
 * faults (region_supply_by_faults): those a new supplier registers. */
void os_for_each_served_region(void (*fn)(void *base, size_t len, void *arg), void *arg);

/* Monotonic nanoseconds (vDSO, no syscall). */
uint64_t os_now_ns(void);

/* open(2) and close(2) by the raw system calls: a library that wraps them
 * (fakeroot, a sandbox) and allocates is never entered from the allocator
 * (it would recurse into it). open returns -1 on failure; both keep errno. */
int os_open_file(const char *path, int flags);
void os_close_file(int fd);

/* The same clock as of the last timer tick (a few ms behind): 5 ns a
 * call here against 23, for checks made on every slow path. */
uint64_t os_coarse_now_ns(void);

/* For the tests of the fallbacks: pretend the kernel lacks
 * MADV_POPULATE_WRITE (and MADV_FREE) from now on. */
void os_test_disable_populate(bool disable);
void os_test_disable_madv_free(bool disable);
/* For the tests of the single-page rule: set or clear the mark that a
 * second thread allocates (a test runner's own threads set it). */
void os_test_set_threaded(bool threaded);
/* For the tests of what others see while a range goes: fn runs right
 * after each successful munmap (NULL: none). */
void os_test_after_unmap(void (*fn)(void *addr, size_t len));
/* For the tests of a refused cut: the nth munmap from now on (1 the
 * next, 0 none) fails with ENOMEM, as at the limit of mappings. */
void os_test_refuse_unmap(unsigned nth);

#endif /* HAKMEM_OS_H */
