/* api.c: the malloc family, routing each request by size.
 *
 *   size <= 32 KiB   small: a size class, the thread cache, slabs (heap.c)
 *   size <= 1020 KiB large: a run of pages in a large SuperSlab (large.c)
 *   above            huge: a region of its own (huge.c)
 *
 * free() finds the kind from the region map, never by reading memory it has
 * not checked. Bad input: impossible sizes give NULL and ENOMEM, bad
 * alignments EINVAL; a bad free aborts with one line on stderr (diag.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "diag.h"
#include "heap.h"
#include "huge.h"
#include "large.h"
#include "lru.h"
#include "options.h"
#include "region_map.h"
#include "size_class.h"
#include "stats.h"
#include "tcache.h"
#include "types.h"

#define CALLOC_FRESH_MIN 1024

/* A call that succeeds leaves errno as it was, as glibc's do, although the
 * slow paths may meet kernel calls that fail on the way (a refused
 * mremap in place, a move the pager retries, a madvise to skip): each
 * slow path keeps the caller's errno unless it returns a failure. */
static inline void *errno_kept_unless_null(void *p, int saved) {
  if (p) errno = saved;
  return p;
}

static NOINLINE void *big_alloc_unkept(size_t size, size_t align, bool zero) {
  if (unlikely(size > (size_t)PTRDIFF_MAX)) {
    errno = ENOMEM;
    return NULL;
  }
  /* memalign(64 KiB, 0) lands here: a block of no pages would share the
   * next block's address, or lie past the end of its own mapping. */
  if (size == 0) size = 1;
  heap_global_init();
  if (size <= LARGE_MAX && align <= LARGE_ALIGN_MAX) return large_alloc(size, align, zero);
  return huge_alloc(size, align, zero);
}

static NOINLINE void *big_alloc_uncached(size_t size, size_t align, bool zero) {
  int saved = errno;
  return errno_kept_unless_null(big_alloc_unkept(size, align, zero), saved);
}

/* A run from the thread's cache needs no errno keeping (blocks just above
 * powers of two up to 64 KiB, malloc'd and freed at random: 159M -> 167M
 * ops/s). Runs are page aligned, and not known to be zero. */
static inline void *big_alloc_after_tick(size_t size, size_t align, bool zero) {
  if (size <= LARGE_CACHED_MAX && align <= PAGE_SIZE && !zero) {
    void *p = large_cache_alloc(size);
    if (likely(p != NULL)) return p;
  }
  return big_alloc_uncached(size, align, zero);
}

/* Due LRU releases go out on refills, and on large mallocs too: a
 * program whose small blocks all come from its thread caches would
 * otherwise keep freed regions resident until the age limit. */
static NOINLINE void *big_alloc(size_t size, size_t align, bool zero) {
  lru_tick();
  return big_alloc_after_tick(size, align, zero);
}

/* malloc's big_alloc: its constant arguments folded, and the LRU's tick
 * out of line, where keeping size across the call costs nothing. With
 * free's tail call to large_free_cached and the run cache's lighter
 * counting (large.c), a cached malloc and free of 32 KiB + 1 or 64 KiB + 1
 * bytes at random took 148 instructions with the loop, against 190. */
static NOINLINE void *malloc_big_ticking(size_t size, uint64_t due) {
  lru_tick_due(due);
  return big_alloc_after_tick(size, 0, false);
}

static NOINLINE void *malloc_big(size_t size) {
  uint64_t due = lru_due();
  if (unlikely(due != 0)) return malloc_big_ticking(size, due);
  return big_alloc_after_tick(size, 0, false);
}

static NOINLINE void *small_alloc_slow(unsigned cls) {
  int saved = errno;
  return errno_kept_unless_null(heap_alloc_slow(cls), saved);
}

static inline void *small_alloc(unsigned cls) {
  void *p = tcache_pop(cls);
  if (likely(p != NULL)) return p;
  return small_alloc_slow(cls);
}

/* malloc and free start on a cache line of their own: where the linker
 * happened to place them decided Tiny Hot by 4% (292M against 305M ops/s
 * aligned, nine interleaved runs), the front end fetching their few
 * instructions in one line or two. */
#define HOT_ENTRY __attribute__((aligned(64)))

/* Takes the size, not its class, so that malloc's fast path need not
 * keep the class in a register for the call. */
static NOINLINE void *malloc_small_slow(size_t size) { return small_alloc_slow(size_to_class(size)); }

static inline void *malloc_small(size_t size, unsigned stride) {
  void *p = tcache_pop_key(tcache_key_of_stride(stride));
  if (likely(p != NULL)) return p;
  return malloc_small_slow(size);
}

EXPORT HOT_ENTRY void *malloc(size_t size) {
  if (likely(size <= SMALL_MAX)) return malloc_small(size, size_to_class_stride(size));
  return malloc_big(size);
}

static NOINLINE void free_not_small_uncached(void *p, unsigned kind) {
  int saved = errno;
  if (kind >= REGION_HUGE) huge_free(p);
  else diag_fatal("free(): invalid pointer", p, "not allocated by hakmem");
  errno = saved;
}

static NOINLINE void free_not_small(void *p) {
  if (p == NULL) return;
  unsigned kind = region_map_kind((uintptr_t)p);
  if (kind == REGION_LARGE) large_free_cached(p);
  else free_not_small_uncached(p, kind);
}

static NOINLINE void free_small_slow(struct slab *s, void *p) {
  int saved = errno;
  heap_free_small(s, p);
  errno = saved;
}

EXPORT HOT_ENTRY void free(void *p) {
  struct slab *s = small_slab_of(p);
  if (likely(s != NULL)) {
    /* The cookie check reads the block and the push then writes it. When
     * another thread wrote it last, a plain read takes the line shared
     * and the stores must take it again; asked for exclusive now, it
     * comes over once. */
    prefetch_exclusive(p);
    if (likely(slab_block_in_use(s, p))) {
      if (likely(tcache_push(s, p))) return;
      /* A full bin, or a thread with no heap yet (no room: one that has
       * only freed), the checks passed: not made twice.
       * heap_free_small_checked keeps errno. */
      heap_free_small_checked(s, p);
      return;
    }
    free_small_slow(s, p);
    return;
  }
  free_not_small(p);
}

EXPORT void cfree(void *p) { free(p); }

/* C23's sized frees: the size and alignment are hints a block's slab or
 * region already knows, so a wrong one cannot mislead hakmem; the pointer
 * is checked as free() checks it. */
EXPORT void free_sized(void *p, size_t size) {
  (void)size;
  free(p);
}

EXPORT void free_aligned_sized(void *p, size_t align, size_t size) {
  (void)align;
  (void)size;
  free(p);
}

EXPORT void *calloc(size_t n, size_t m) {
  size_t size;
  if (unlikely(__builtin_mul_overflow(n, m, &size))) {
    errno = ENOMEM;
    return NULL;
  }
  if (likely(size <= SMALL_MAX)) {
    unsigned cls = size_to_class(size);
    /* With nothing cached, a never-used block on fresh pages needs no
     * clearing; below 1 KiB the memset costs less than looking. */
    if (size >= CALLOC_FRESH_MIN && hk_tcache.bins[cls].head == NULL) {
      int saved = errno;
      void *p = heap_calloc_fresh(cls);
      if (p) return errno_kept_unless_null(p, saved);
    }
    /* All of the block, which may be of a larger class (class_may_borrow):
     * a program may use its usable size, and the bytes past size hold an
     * earlier user's data and, in the smallest classes, free-list links. */
    void *p = small_alloc(cls);
    if (likely(p != NULL)) memset(p, 0, slab_of(p)->block_size);
    return p;
  }
  return big_alloc(size, 0, true);
}

/* Usable bytes of a live small block: free's fast checks inline, the
 * rest (parked pages, the diagnostics) out of line. */
static inline size_t small_usable_checked(const void *p, const char *op) {
  struct slab *s = slab_of(p);
  if (likely(slab_block_in_use(s, p))) return s->block_size;
  return heap_check_small(p, op)->block_size;
}

/* Usable bytes of a live block p in a region of `kind`; aborts, naming
 * op, when p is not one. */
static size_t usable_of_kind(const void *p, unsigned kind, const char *op) {
  if (likely(kind == REGION_SMALL)) return small_usable_checked(p, op);
  if (kind == REGION_LARGE) return large_usable(p, op);
  if (kind >= REGION_HUGE) return huge_usable(p, op);
  diag_fatal(op, p, "not allocated by hakmem");
}

/* The same, the kind read from the region map. */
static size_t usable_checked(const void *p, const char *op) {
  return usable_of_kind(p, region_map_kind((uintptr_t)p), op);
}

/* Whether a block of `usable` bytes stays as it is for `size`, without
 * a change: a small block down to half its size, a large one within its
 * last page, a huge one down to half its size (as huge_realloc would). */
static bool fits_unchanged(unsigned kind, size_t usable, size_t size) {
  if (kind == REGION_SMALL) return size <= usable && (size > usable / 2 || usable <= 64);
  if (kind == REGION_LARGE) return size <= usable && usable - size < PAGE_SIZE;
  return size <= usable && size > usable / 2;
}

/* A block resized back and forth across a tier's limit (32 KiB, 1020 KiB)
 * would be copied at every call: 2,000 blocks resized 200 times between
 * 30,000 and 40,000 bytes took 0.76 s (0.06 s now; glibc, mimalloc and
 * tcmalloc 0.04), and 200 between 1,000,000 and 1,100,000 bytes 1.00 s
 * (0.13 s now; the others 0.11-0.24). So a large block shrinks in place down to half the
 * largest small size (its run then wastes less than a page in four), and
 * a huge one keeps its region down to half the largest large size
 * (huge_realloc shrinks the mapping in place). */
#define LARGE_KEPT_MIN (SMALL_MAX / 2)
#define HUGE_KEPT_MIN (LARGE_MAX / 2)

/* Whether a large block can be resized in place: its run grows into the
 * free pages after it, or gives back its tail. */
static bool large_resizes_in_place(void *p, unsigned kind, size_t size) {
  return kind == REGION_LARGE && size > LARGE_KEPT_MIN && size <= LARGE_MAX && large_resize(p, size);
}

/* The size to move a growing block to. Large blocks are runs of pages:
 * a string grown a few bytes at a time would move, and be copied whole,
 * at almost every page, so a move takes an eighth more, as size classes
 * four to a doubling would give (64 strings grown to 1 MiB by 1..16 bytes
 * a realloc: README). */
static size_t growth_size(size_t usable, size_t size) {
  if (size <= SMALL_MAX || size <= usable || size > LARGE_MAX) return size;
  size_t more = size + size / 8;
  return more > LARGE_MAX ? LARGE_MAX : more;
}

EXPORT void *realloc(void *p, size_t size) {
  if (p == NULL) return malloc(size);
  if (size == 0) {
    free(p);
    return NULL;
  }
  unsigned kind = region_map_kind((uintptr_t)p);
  size_t usable = usable_of_kind(p, kind, "realloc(): invalid pointer");
  if (fits_unchanged(kind, usable, size)) return p;
  int saved = errno;
  if (large_resizes_in_place(p, kind, size)) return errno_kept_unless_null(p, saved);
  if (kind >= REGION_HUGE && size > HUGE_KEPT_MIN) return errno_kept_unless_null(huge_realloc(p, size), saved);
  void *n = malloc(growth_size(usable, size));
  if (n == NULL) return NULL;
  memcpy(n, p, usable < size ? usable : size);
  free(p);
  return n;
}

EXPORT void *reallocarray(void *p, size_t n, size_t m) {
  size_t size;
  if (unlikely(__builtin_mul_overflow(n, m, &size))) {
    errno = ENOMEM;
    return NULL;
  }
  return realloc(p, size);
}

static inline bool is_pow2(size_t x) { return x != 0 && (x & (x - 1)) == 0; }

/* align: a power of two. A small request takes the smallest class at
 * least as large whose blocks are all aligned (class_aligned_to): 640 B
 * for 576 B at 64, not 1024 (C++ objects of alignas(64) types, 2M of
 * 192..1088 B: 1.92 GB of RSS rounding to powers of two, tcmalloc 1.21).
 * The power of two above max(size, align) always qualifies. */
static void *aligned_alloc_checked(size_t align, size_t size) {
  if (align <= 16) return malloc(size);
  if (size <= SMALL_MAX && align <= SMALL_MAX) {
    size_t need = size > align ? size : align;
    unsigned shift = (unsigned)__builtin_ctzl(align);
    for (unsigned cls = size_to_class(need); cls < CLASS_COUNT; cls++)
      if (class_alignment_shift(cls) >= shift) return small_alloc(cls);
  }
  return big_alloc(size, align, false);
}

EXPORT int posix_memalign(void **out, size_t align, size_t size) {
  if (!is_pow2(align) || align % sizeof(void *) != 0) return EINVAL;
  int saved = errno;
  void *p = aligned_alloc_checked(align, size);
  errno = saved;
  if (p == NULL) return ENOMEM;
  *out = p;
  return 0;
}

EXPORT void *aligned_alloc(size_t align, size_t size) {
  if (!is_pow2(align)) {
    errno = EINVAL;
    return NULL;
  }
  return aligned_alloc_checked(align, size);
}

EXPORT void *memalign(size_t align, size_t size) { return aligned_alloc(align, size); }

EXPORT void *valloc(size_t size) { return aligned_alloc_checked(PAGE_SIZE, size); }

EXPORT void *pvalloc(size_t size) {
  if (size > (size_t)PTRDIFF_MAX) {
    errno = ENOMEM;
    return NULL;
  }
  return aligned_alloc_checked(PAGE_SIZE, (size + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1));
}

EXPORT size_t malloc_usable_size(void *p) {
  if (p == NULL) return 0;
  return usable_checked(p, "malloc_usable_size(): invalid pointer");
}

EXPORT size_t hakmem_trim(void) {
  int saved = errno;
  heap_global_init();
  size_t released = heap_trim();
  errno = saved;
  return released;
}

EXPORT int malloc_trim(size_t pad) {
  (void)pad;
  return hakmem_trim() > 0;
}

EXPORT const char *hakmem_version(void) { return HAKMEM_VERSION_STRING; }

/* glibc also exports its allocator under these names, and a few programs
 * and preloaded tools call them directly; a block from glibc's heap passed
 * to hakmem's free would abort as a pointer hakmem never returned. */
#if defined(__has_attribute) && __has_attribute(copy)
#define GLIBC_ALIAS(name, target) EXPORT __typeof__(target) name __attribute__((alias(#target), copy(target)))
#else
#define GLIBC_ALIAS(name, target) EXPORT __typeof__(target) name __attribute__((alias(#target)))
#endif
GLIBC_ALIAS(__libc_malloc, malloc);
GLIBC_ALIAS(__libc_free, free);
GLIBC_ALIAS(__libc_cfree, free);
GLIBC_ALIAS(__libc_calloc, calloc);
GLIBC_ALIAS(__libc_realloc, realloc);
GLIBC_ALIAS(__libc_memalign, memalign);
GLIBC_ALIAS(__libc_valloc, valloc);
GLIBC_ALIAS(__libc_pvalloc, pvalloc);
GLIBC_ALIAS(__posix_memalign, posix_memalign);

#ifndef HAKMEM_ENABLE_UFFD
/* Built without --enable-uffd: the default fault path is the only one. */
EXPORT int hakmem_pager_start(void) {
  errno = ENOSYS;
  return -1;
}
EXPORT void hakmem_pager_stop(void) {}
EXPORT int hakmem_pager_active(void) { return 0; }
#endif

__attribute__((constructor)) static void hakmem_load(void) {
  int saved = errno;
  heap_load();
  if (hakmem_options.verbose) options_print(2);
#ifndef HAKMEM_ENABLE_UFFD
  if (hakmem_options.uffd) diag_write(2, "hakmem: HAKMEM_UFFD=1 ignored: built without --enable-uffd\n");
#endif
  stats_install_exit_report();
  errno = saved;
}
