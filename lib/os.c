/* os.c: mmap, munmap, mremap and madvise, counted and timed, and the page
 * supplier hook. Every result is checked; the fallbacks are:
 *  - munmap of a range mapped here and given up before any use (a hint
 *    the kernel misplaced, a mapping past the region map, a failed move's
 *    target, the MADV_FREE probe page) refused: the range is leaked, out
 *    of every map, as nothing else can be done with it;
 *  - MAP_FIXED_NOREPLACE refused or ignored: over-map by the alignment and
 *    trim (three calls instead of one);
 *  - MADV_FREE unsupported (EINVAL): MADV_DONTNEED;
 *  - MADV_POPULATE_WRITE unsupported (EINVAL, kernels before 5.14): the
 *    program faults its pages in itself; the ledger counts them untimed;
 *  - mremap cannot grow in place: move to a fresh aligned range. */
#include "os.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>

#include "config.h"
#include "diag.h"
#include "region_map.h"
#include "stats.h"
#include "types.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#ifndef MADV_FREE
#define MADV_FREE 8
#endif
#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

void os_require_page_size(unsigned long kernel_page) {
  if (kernel_page == 0 || kernel_page == PAGE_SIZE) return;
  char line[112], num[24];
  strcpy(line, "hakmem: built for 4096-byte pages, this kernel's are ");
  strcat(line, diag_format_u64(num, kernel_page, 10));
  strcat(line, " bytes: cannot run\n");
  diag_write(2, line);
  abort();
}

static _Atomic(const struct os_page_supplier *) supplier;
static atomic_bool populate_missing;
static atomic_bool threaded; /* a second heap was made (os_note_threaded) */
static atomic_bool madv_free_missing;
static _Atomic uintptr_t map_hint;   /* the last region mapped; 0 once it is unmapped */
static _Atomic uintptr_t map_anchor; /* the last region the kernel placed */

static uint64_t clock_ns(clockid_t clock) {
  struct timespec t;
  clock_gettime(clock, &t);
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

uint64_t os_now_ns(void) { return clock_ns(CLOCK_MONOTONIC); }

uint64_t os_coarse_now_ns(void) { return clock_ns(CLOCK_MONOTONIC_COARSE); }

static void *timed_mmap(void *addr, size_t len, int flags) {
  uint64_t t0 = os_now_ns();
  void *p = mmap(addr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | flags, -1, 0);
  stats_add(STAT_mmap_calls, 1);
  stats_add(STAT_mmap_ns, (int64_t)(os_now_ns() - t0));
  return p;
}

static _Atomic unsigned refused_unmap; /* tests: the nth next munmap fails */

/* Counts a munmap down to the refused one (os_test_refuse_unmap). */
static NOINLINE bool unmap_refused_for_test(void) {
  unsigned nth = atomic_load_explicit(&refused_unmap, memory_order_relaxed);
  while (nth && !atomic_compare_exchange_weak(&refused_unmap, &nth, nth - 1)) {}
  return nth == 1;
}

static int timed_munmap(void *addr, size_t len) {
  if (unlikely(atomic_load_explicit(&refused_unmap, memory_order_relaxed)) && unmap_refused_for_test()) {
    errno = ENOMEM;
    return -ENOMEM;
  }
  uint64_t t0 = os_now_ns();
  int rc = munmap(addr, len);
  stats_add(STAT_munmap_calls, 1);
  stats_add(STAT_munmap_ns, (int64_t)(os_now_ns() - t0));
  return rc == 0 ? 0 : -errno;
}

/* Returns 0 or -errno, and leaves errno as it was. */
static int timed_madvise(void *addr, size_t len, int advice) {
  int saved = errno;
  uint64_t t0 = os_now_ns();
  int rc = madvise(addr, len, advice) == 0 ? 0 : -errno;
  stats_add(STAT_madvise_calls, 1);
  stats_add(STAT_madvise_ns, (int64_t)(os_now_ns() - t0));
  errno = saved;
  return rc;
}

/* One call when the aligned place just below the last region mapped (the
 * hint) is free: the kernel hands out addresses top-down, so it usually
 * is, and a region ending where the last one starts joins its kernel
 * mapping (one line of /proc/self/maps for a run of SuperSlabs). The end
 * of the last region, tried before, is where older mappings are: every
 * SuperSlab cost a failed mmap, a mmap of twice its size and a munmap.
 * Regions placed so never reuse the space above them that others freed:
 * once the hint is unmapped, or HINT_SPAN_MAX below where the kernel
 * last placed one, the kernel places the next (in the highest hole), or
 * mapping and unmapping would walk down the address space for ever (4.9
 * TB in 200,000 huge blocks, each 8 GiB a page of the region map).
 * A mapping asked for with room goes that much lower, and the hole left
 * above it lets it grow in place (os_remap_aligned), until a mapping of
 * the program's own takes it (one the kernel places first, as it takes
 * the highest hole: map_trimmed()). */
#define HINT_SPAN_MAX ((uintptr_t)1 << 30)

static void *map_at_hint(size_t len, size_t align, size_t offset, size_t room) {
  uintptr_t below = atomic_load_explicit(&map_hint, memory_order_relaxed);
  uintptr_t anchor = atomic_load_explicit(&map_anchor, memory_order_relaxed);
  if (len > HINT_SPAN_MAX || room > HINT_SPAN_MAX || below < len + room + align + offset ||
      anchor - below > HINT_SPAN_MAX)
    return NULL;
  uintptr_t hint = ((below - room - len + offset) & ~(uintptr_t)(align - 1)) - offset;
  void *p = timed_mmap((void *)hint, len, MAP_FIXED_NOREPLACE);
  if (p == MAP_FAILED) return NULL;
  if ((uintptr_t)p != hint) { /* a kernel before 4.17 took it as a hint */
    timed_munmap(p, len);
    return NULL;
  }
  return p;
}

/* The room is mapped with the rest and cut off as the tail, which leaves
 * it a hole above the mapping; where that much address space is refused
 * (RLIMIT_AS), the mapping is tried without it. */
static void *map_trimmed(size_t len, size_t align, size_t offset, size_t room) {
  size_t over = len + room + align - PAGE_SIZE;
  if (over < len) return NULL;
  char *raw = timed_mmap(NULL, over, 0);
  if (raw == MAP_FAILED) return room ? map_trimmed(len, align, offset, 0) : NULL;
  char *p = (char *)((((uintptr_t)raw + offset + align - 1) & ~(uintptr_t)(align - 1)) - offset);
  size_t head = (size_t)(p - raw), tail = over - head - len;
  /* A cut splits a mapping the kernel merged with a neighbour, which it
   * refuses at the process's limit of mappings (ENOMEM). Then what was
   * mapped goes, and the request fails as an mmap would there; should
   * that be refused too, the mapping is kept, its untouched head and tail
   * costing address space only. */
  if (head && timed_munmap(raw, head) != 0) return timed_munmap(raw, over) == 0 ? NULL : p;
  if (tail && timed_munmap(p + len, tail) != 0) return timed_munmap(p, len + tail) == 0 ? NULL : p;
  return p;
}

/* With transparent huge pages "always", a 2 MiB-aligned region would get a
 * huge page at its first touch: 2 MiB zeroed and resident for one header
 * write (10-12 us per 4 KiB, measured on the development machine). Regions opt out; where the
 * madvise fails the region merely keeps the kernel's default. */
static int thp_mode = -1; /* enum os_thp_mode once read */

int os_open_file(const char *path, int flags) {
  int saved = errno;
  long fd = syscall(SYS_openat, AT_FDCWD, path, flags);
  errno = saved;
  return fd < 0 ? -1 : (int)fd;
}

void os_close_file(int fd) {
  int saved = errno;
  syscall(SYS_close, fd);
  errno = saved;
}

/* Threads that map at once may each read the file; they store the same. */
enum os_thp_mode os_thp_mode(void) {
  int mode = __atomic_load_n(&thp_mode, __ATOMIC_RELAXED);
  if (mode < 0) {
    char buf[64] = { 0 };
    int fd = os_open_file("/sys/kernel/mm/transparent_hugepage/enabled", O_RDONLY | O_CLOEXEC);
    int saved = errno;
    bool read_it = fd >= 0 && syscall(SYS_read, fd, buf, sizeof buf - 1) > 0;
    errno = saved;
    if (fd >= 0) os_close_file(fd);
    mode = !read_it                         ? OS_THP_MISSING
           : strstr(buf, "[always]") != NULL  ? OS_THP_ALWAYS
           : strstr(buf, "[madvise]") != NULL ? OS_THP_MADVISE
                                              : OS_THP_NEVER;
    __atomic_store_n(&thp_mode, mode, __ATOMIC_RELAXED);
  }
  return (enum os_thp_mode)mode;
}

static bool thp_is_always(void) { return os_thp_mode() == OS_THP_ALWAYS; }

void os_keep_small_pages(void *addr, size_t len) {
  uintptr_t first = ((uintptr_t)addr + PAGE_SIZE - 1) & ~(uintptr_t)(PAGE_SIZE - 1);
  uintptr_t end = ((uintptr_t)addr + len) & ~(uintptr_t)(PAGE_SIZE - 1);
  if (end > first && thp_is_always()) timed_madvise((void *)first, end - first, MADV_NOHUGEPAGE);
}

bool os_ask_huge_pages(void *addr, size_t len) { return timed_madvise(addr, len, MADV_HUGEPAGE) == 0; }

void *os_map_aligned_at(size_t len, size_t align, size_t offset, size_t room) {
  int saved = errno; /* a refused hint is no error of the caller's */
  void *p = map_at_hint(len, align, offset, room);
  if (!p && (p = map_trimmed(len, align, offset, room)) != NULL)
    atomic_store_explicit(&map_anchor, (uintptr_t)p, memory_order_relaxed);
  if (!p) return NULL;
  /* The region map covers 47 bits of address space: the kernel maps above
   * them (5-level page tables, a 52-bit arm64) only when asked with a
   * hint up there, which is never ours, but a mapping out of its reach
   * would be written past its end. */
  if ((uintptr_t)p + len > ((uintptr_t)1 << REGION_MAP_BITS)) {
    timed_munmap(p, len);
    errno = ENOMEM;
    return NULL;
  }
  errno = saved;
  if (len >= REGION_SIZE && thp_is_always()) timed_madvise(p, len, MADV_NOHUGEPAGE);
  atomic_store_explicit(&map_hint, (uintptr_t)p, memory_order_relaxed);
  stats_add(STAT_bytes_mapped, (int64_t)len);
  return p;
}

static void (*_Atomic after_unmap)(void *addr, size_t len);

int os_unmap(void *addr, size_t len, size_t released) {
  int rc = timed_munmap(addr, len);
  if (rc == 0) {
    uintptr_t hint = (uintptr_t)addr;
    atomic_compare_exchange_strong_explicit(&map_hint, &hint, 0, memory_order_relaxed, memory_order_relaxed);
    stats_add(STAT_bytes_mapped, -(int64_t)len);
    stats_add(STAT_pages_released, (int64_t)(released / PAGE_SIZE));
    void (*fn)(void *, size_t) = atomic_load_explicit(&after_unmap, memory_order_relaxed);
    if (unlikely(fn != NULL)) fn(addr, len);
  }
  return rc;
}

bool os_resize_in_place(void *addr, size_t old_len, size_t new_len) {
  int saved = errno; /* a refusal is an answer, not an error */
  uint64_t t0 = os_now_ns();
  void *p = mremap(addr, old_len, new_len, 0);
  stats_add(STAT_mmap_calls, 1);
  stats_add(STAT_mmap_ns, (int64_t)(os_now_ns() - t0));
  errno = saved;
  if (p == MAP_FAILED) return false;
  stats_add(STAT_bytes_mapped, (int64_t)new_len - (int64_t)old_len);
  if (new_len < old_len) /* the tail cut off */
    stats_add(STAT_pages_released, (int64_t)((old_len - new_len) / PAGE_SIZE));
  return true;
}

void *os_remap_aligned(void *addr, size_t old_len, size_t new_len, size_t align, size_t room) {
  if (os_resize_in_place(addr, old_len, new_len)) return addr;
  if (new_len <= old_len) return NULL;
  void *dst = os_map_aligned_at(new_len, align, 0, room);
  if (!dst) return NULL;
  uint64_t t0 = os_now_ns();
  void *p = mremap(addr, old_len, new_len, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
  stats_add(STAT_mmap_calls, 1);
  stats_add(STAT_mmap_ns, (int64_t)(os_now_ns() - t0));
  if (p == MAP_FAILED) {
    os_unmap(dst, new_len, 0); /* never used; a refusal leaks it (above) */
    return NULL;
  }
  /* dst's pages were replaced and addr's range is gone. */
  stats_add(STAT_bytes_mapped, -(int64_t)old_len);
  return p;
}

/* EINVAL from MADV_FREE means a kernel before 4.5, or a range that is
 * locked (mlock, mlockall): asked of a page of its own, unlocked, the
 * kernel tells which. */
static bool madv_free_works(void) {
  static atomic_bool works_seen;
  if (atomic_load_explicit(&works_seen, memory_order_relaxed)) return true;
  void *page = mmap(NULL, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (page == MAP_FAILED) return true; /* unknown: asked again at the next EINVAL */
  munlock(page, PAGE_SIZE);            /* mlockall(MCL_FUTURE) locked it */
  bool works = madvise(page, PAGE_SIZE, MADV_FREE) == 0;
  munmap(page, PAGE_SIZE);
  if (works) atomic_store_explicit(&works_seen, true, memory_order_relaxed);
  return works;
}

int os_release(void *addr, size_t len, enum os_release_mode mode) {
  int rc = 0;
  if (mode == OS_RELEASE_KEEP) return 0;
  if (mode == OS_RELEASE_FREE && !atomic_load_explicit(&madv_free_missing, memory_order_relaxed)) {
    rc = timed_madvise(addr, len, MADV_FREE);
    if (rc != -EINVAL) goto out;
    if (!madv_free_works()) atomic_store(&madv_free_missing, true);
  }
  rc = timed_madvise(addr, len, MADV_DONTNEED);
out:
  if (rc == 0) stats_add(STAT_pages_released, (int64_t)(len / PAGE_SIZE));
  return rc;
}

size_t os_supply_direct(void *addr, size_t len) {
  const struct os_page_supplier *s = atomic_load_explicit(&supplier, memory_order_acquire);
  if (!s || !s->supply) return 0;
  size_t done = s->supply(addr, len);
  return done < len ? done : len;
}

void os_supply(void *addr, size_t len, enum hakmem_supply_path path) {
  size_t done = os_supply_direct(addr, len);
  if (done < len) os_populate((char *)addr + done, len - done, path);
}

void os_note_threaded(void) { atomic_store_explicit(&threaded, true, memory_order_relaxed); }

void os_populate(void *addr, size_t len, enum hakmem_supply_path path) {
  uint64_t pages = len / PAGE_SIZE;
  /* Once threads allocate, a single page is left to its fault: madvise
   * takes the address space's lock, which thread creation holds for
   * writing (stacks' mmap and mprotect), while a fault takes only its
   * area's. 600 threads at once, each allocating 64 blocks, five waves:
   * 0.32-0.35 s with the madvise, 0.27-0.29 without (glibc 0.20; five
   * interleaved runs). A single-threaded program keeps
   * it, and is spared the page's fault. */
  bool single_page_of_threads = pages == 1 && atomic_load_explicit(&threaded, memory_order_relaxed);
  if (!single_page_of_threads && !atomic_load_explicit(&populate_missing, memory_order_relaxed)) {
    uint64_t t0 = os_now_ns();
    int rc = timed_madvise(addr, len, MADV_POPULATE_WRITE);
    if (rc == 0) {
      stats_supply(path, pages, 1, os_now_ns() - t0);
      return;
    }
    if (rc == -EINVAL) atomic_store(&populate_missing, true);
  }
  stats_supply(path, pages, 0, 0);
}

void os_set_page_supplier(const struct os_page_supplier *s) {
  atomic_store_explicit(&supplier, s, memory_order_release);
}

const struct os_page_supplier *os_page_supplier(void) {
  return atomic_load_explicit(&supplier, memory_order_acquire);
}

enum hakmem_supply_path os_release_region(void *addr, size_t len, enum os_release_mode mode) {
  if (mode == OS_RELEASE_PAGER) {
    const struct os_page_supplier *s = os_page_supplier();
    if (s && s->reclaim && s->reclaim(addr, len) == 0) return HAKMEM_SUPPLY_REFAULT;
    mode = OS_RELEASE_DONTNEED;
  }
  if (os_release(addr, len, mode) != 0) return HAKMEM_SUPPLY_REUSE; /* still resident */
  switch (mode) {
  case OS_RELEASE_KEEP: return HAKMEM_SUPPLY_REUSE;
  case OS_RELEASE_FREE:
    return atomic_load(&madv_free_missing) ? HAKMEM_SUPPLY_REFAULT : HAKMEM_SUPPLY_LAZYFREE;
  default: return HAKMEM_SUPPLY_REFAULT;
  }
}

struct for_each_ctx {
  void (*fn)(void *base, size_t len, void *arg);
  void *arg;
  bool served_only;
};

static void for_each_thunk(struct region_header *h, void *arg) {
  struct for_each_ctx *c = arg;
  if (!c->served_only || !h->by_faults) c->fn(h, h->size, c->arg);
}

void os_for_each_region(void (*fn)(void *base, size_t len, void *arg), void *arg) {
  struct for_each_ctx c = { fn, arg, false };
  region_for_each(for_each_thunk, &c);
}

void os_for_each_served_region(void (*fn)(void *base, size_t len, void *arg), void *arg) {
  struct for_each_ctx c = { fn, arg, true };
  region_for_each(for_each_thunk, &c);
}

void os_test_disable_populate(bool disable) { atomic_store(&populate_missing, disable); }
void os_test_disable_madv_free(bool disable) { atomic_store(&madv_free_missing, disable); }
void os_test_set_threaded(bool is_threaded) { atomic_store(&threaded, is_threaded); }
void os_test_after_unmap(void (*fn)(void *addr, size_t len)) { atomic_store(&after_unmap, fn); }
void os_test_refuse_unmap(unsigned nth) { atomic_store(&refused_unmap, nth); }
