/* tcache.h: the per-thread caches, the hot path of malloc and free.
 *
 * One LIFO list per size class in initial-exec TLS: a same-thread malloc
 * or free of a cached size takes no lock and no atomic instruction. The
 * malloc fast path costs a size-class lookup, a TLS load, a pop, a
 * prefetch of the next block and the store that clears the free cookie
 * (20 instructions with the ret); free costs the region-map load, a prefetch of
 * the block for writing, the slab's bounds and block-grid checks, the cookie
 * check, a prefetch and a push (36 with the ret),
 * whichever thread's block it is. Everything else is in heap.c, out of
 * line. */
#ifndef HAKMEM_TCACHE_H
#define HAKMEM_TCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "diag.h"
#include "region_map.h"
#include "size_class.h"
#include "types.h"

struct tcache_bin {
  void *head;
  int32_t room;   /* blocks the bin may still take; 0 until the thread has a
                     heap, so that every free goes slow */
  uint16_t max;   /* at most UNIT_SIZE / 16 */
  uint16_t ahead; /* free prefetches the block this many 8-byte words past
                     the one it frees: set while the bin fills in address
                     order (tcache_watch_order), else 0 */
};

struct tcache {
  struct heap *heap;
  struct tcache_bin bins[CLASS_COUNT];
};

extern __thread struct tcache hk_tcache __attribute__((tls_model("initial-exec"), visibility("hidden")));

static inline uint32_t tcache_bin_count(const struct tcache_bin *b) { return b->max - (uint32_t)b->room; }

/* The hot paths reach a bin by its offset in hk_tcache, its key: malloc
 * reads it from the size-class table (size_class.h), and a slab keeps its
 * class's (tcache_slab_key), which spares free the two instructions that
 * would compute it from the class. Through %fs (__seg_fs, the offset
 * from the thread pointer as the key) the paths took two instructions
 * fewer but ran Tiny Hot at 533M against 587M ops/s (25 interleaved runs,
 * medians, on AMD EPYC): a segment base lengthens the address generation
 * of the loads and stores that chain one malloc or free to the next. A
 * slab's key is such an offset too, but free adds it to the thread
 * pointer (read from %fs:0) in a register, and reaches the bin through
 * that register without a segment prefix. */
_Static_assert(sizeof(struct tcache_bin) == CLASS_STRIDE, "size_class_table holds bin offsets");
_Static_assert(UNIT_SIZE / 16 <= UINT16_MAX && SMALL_MAX / 2 <= UINT16_MAX, "a bin's max and ahead fit 16 bits");

/* The key of the bin of the class that size_to_class_stride() gave. */
static inline intptr_t tcache_key_of_stride(unsigned stride) {
  return (intptr_t)offsetof(struct tcache, bins) + (intptr_t)stride;
}

static inline struct tcache_bin *tcache_bin_of_key(intptr_t key) {
  return (struct tcache_bin *)((char *)&hk_tcache + key);
}

static inline intptr_t tcache_key(unsigned cls) { return tcache_key_of_stride(cls * CLASS_STRIDE); }

/* A slab's key is its bin's offset from the thread pointer, the same in
 * every thread (initial-exec TLS): free then adds the thread pointer to
 * the key in one instruction, where hk_tcache's address takes a load from
 * the GOT and two adds. */
#if defined(__has_builtin)
#if __has_builtin(__builtin_thread_pointer)
#define HK_HAVE_THREAD_POINTER 1
#endif
#endif

static inline char *tcache_slab_key_base(void) {
#ifdef HK_HAVE_THREAD_POINTER
  return __builtin_thread_pointer();
#else
  return (char *)&hk_tcache;
#endif
}

static inline int32_t tcache_slab_key(unsigned cls) {
  return (int32_t)((char *)tcache_bin_of_key(tcache_key(cls)) - tcache_slab_key_base());
}

static inline struct tcache_bin *tcache_bin_of_slab_key(int32_t key) {
  return (struct tcache_bin *)(tcache_slab_key_base() + key);
}

/* Ask for p's cache line in the exclusive state, as a store would.
 * __builtin_prefetch(p, 1) gives that only where the compiler is told
 * the CPU has PRFCHW; on x86-64 the instruction is always safe to issue
 * (AMD has had it since the K6, and Intel's cores without it decode it
 * as a no-op). */
static inline void prefetch_exclusive(const void *p) {
#if defined(__x86_64__)
  __asm__("prefetchw %0" ::"m"(*(const char *)p));
#else
  __builtin_prefetch(p, 1);
#endif
}

/* A free block: word 0 links it, word 1 holds its cookie. */
struct free_block {
  struct free_block *next;
  uintptr_t cookie;
};

/* Free blocks set aside with their number: a heap's stash and spilled bins. */
struct block_list {
  struct free_block *head;
  uint32_t count;
};

static inline void *tcache_pop_key(intptr_t key) {
  struct tcache_bin *b = tcache_bin_of_key(key);
  struct free_block *blk = b->head;
  if (likely(blk != NULL)) {
    b->head = blk->next;
    /* The next pop reads the new head's link: a miss when the blocks were
     * freed in random order, which the program's work until then can
     * hide (1M blocks freed in random order, allocated again: 34.3
     * against 30.0 ns a malloc with nothing in between). Never NULL: a
     * prefetch of an unmapped page walks the page tables every time, and
     * a bin a malloc empties is common where a program frees and mallocs
     * one size in turn (blocks of 2^k + 1 bytes, k = 8..14, malloc'd and
     * freed at random: 301-378M -> 424-433M ops/s). */
    __builtin_prefetch(b->head ? (void *)b->head : (void *)blk, 1);
    b->room++;
    blk->cookie = 0;
    return blk;
  }
  return NULL;
}

static inline void *tcache_pop(unsigned cls) { return tcache_pop_key(tcache_key(cls)); }

/* The slab holding a small block, from its address alone. */
static inline struct slab *slab_of(const void *p) {
  uintptr_t a = (uintptr_t)p;
  uintptr_t ss = a & ~(uintptr_t)REGION_MASK;
  /* The unit's index times 64 (sizeof(struct slab)) in one shift and mask. */
  uintptr_t off = (a >> (UNIT_SHIFT - 6)) & ((UNITS_PER_SS - 1) << 6);
  return (struct slab *)(ss + offsetof(struct superslab, slabs) + off);
}

/* free's first step: the slab holding p when p lies in a small SuperSlab,
 * else NULL. The map index is masked rather than bounds-checked, and the
 * slab is found from the index, not from p: a pointer above the 47-bit
 * space aliases a chunk below it, but it gets a real slab, whose bounds
 * check it then fails (every slab lies below it). Three instructions
 * fewer than region_map_kind() and slab_of(). */
static inline struct slab *small_slab_of(const void *p) {
  uintptr_t a = (uintptr_t)p;
  uintptr_t i = (a >> REGION_SHIFT) & (REGION_MAP_ENTRIES - 1);
  if (atomic_load_explicit(&region_map[i], memory_order_relaxed) != REGION_SMALL) return NULL;
  uintptr_t off = (a >> (UNIT_SHIFT - 6)) & ((UNITS_PER_SS - 1) << 6);
  return (struct slab *)((i << REGION_SHIFT) + offsetof(struct superslab, slabs) + off);
}

/* Whether p is the start of a block that slab s has handed out. A slab
 * starts at its unit's base, so p's offset in it is p's low bits. */
static inline int slab_holds_block(const struct slab *s, const void *p) {
  uint64_t off = (uintptr_t)p & (UNIT_SIZE - 1);
  return (const char *)p < s->carve && off * s->divides < s->divides;
}

/* Whether p is a block slab s handed out and is not marked free: free's
 * inline checks. A no sends the caller to the slow checks, which tell a
 * parked block, a bad pointer and a double free apart. */
static inline int slab_block_in_use(const struct slab *s, const void *p) {
  return slab_holds_block(s, p) && ((const struct free_block *)p)->cookie != diag_cookie(p);
}

/* Push a freed block, this thread's or another's; 0 when the bin is full
 * or the thread has no heap yet (no room): the caller goes slow. */
static inline int tcache_push(struct slab *s, void *p) {
  struct tcache_bin *b = tcache_bin_of_slab_key(s->bin_key);
  /* Signed, so that the decrement and its test are one subl and a js. */
  if (unlikely(--b->room < 0)) {
    b->room = 0;
    return 0;
  }
  /* The block free will read next, when the program frees in the order it
   * allocated: its cookie is most likely cold then (a container torn
   * down), and the load of a cookie that misses holds free up. */
  __builtin_prefetch((char *)p + (uintptr_t)b->ahead * 8);
  struct free_block *blk = p;
  blk->next = b->head;
  blk->cookie = diag_cookie(p);
  b->head = blk;
  return 1;
}

/* At a full bin, before p goes in: whether its newest blocks, p's slab's
 * size apart, were freed in address order, the pattern where free's
 * prefetch 4 blocks ahead pays. Set and cleared on the slow paths only: a
 * test on every free cost Random Mixed 6% in mispredicted branches, and
 * a prefetch on every free cost frees in random order 8%. */
static inline void tcache_watch_order(struct tcache_bin *b, const struct slab *s, const void *p) {
  uintptr_t size = s->block_size;
  const struct free_block *newest = b->head;
  bool in_order = newest && (uintptr_t)p - (uintptr_t)newest == size && newest->next &&
                  (uintptr_t)newest - (uintptr_t)newest->next == size;
  b->ahead = in_order ? (uint16_t)(size / 2) : 0;
}

#endif /* HAKMEM_TCACHE_H */
