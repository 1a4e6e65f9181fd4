/* size_class.h: request sizes to size classes and back.
 *
 * 40 classes from 16 B to 32 KiB: 16 B steps up to 128 B, then four
 * classes per doubling (160, 192, 224, 256, 320, ...), so internal waste
 * stays under 20% of the block above 128 B (below, under 16 bytes). Every
 * class size is a multiple of 16, and slabs start on 64 KiB boundaries,
 * so the blocks of a class whose size is a multiple of a power of two are
 * aligned to it; power-of-two sizes are classes too, aligned to their size. */
#ifndef HAKMEM_SIZE_CLASS_H
#define HAKMEM_SIZE_CLASS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "types.h"

/* The table holds each class times CLASS_STRIDE / 8, CLASS_STRIDE being
 * the size of a thread cache bin (tcache.h): in a byte, and scaled by 8 in
 * the address of the bin, malloc goes from a size to its bin with one
 * load and, built by gcc, no shift. Not const, so that every compiler
 * gives its section (size_class.c) the writable flag that puts it in
 * RELRO: clang marks a const one read-only, and lld then maps it with
 * .rodata. Nothing writes it. */
#define CLASS_STRIDE 16u
#define CLASS_TABLE_SCALE 8u
extern uint8_t size_class_table[] HIDDEN; /* by (size + 15) >> 4, for size <= SMALL_MAX */
extern const uint32_t size_class_sizes[CLASS_COUNT] HIDDEN;

/* The class of a size in 1..SMALL_MAX (0 counts as 1), times CLASS_STRIDE. */
static inline unsigned size_to_class_stride(size_t size) {
  return size_class_table[(size + 15) >> 4] * CLASS_TABLE_SCALE;
}

/* The class of a size in 1..SMALL_MAX (0 counts as 1). */
static inline unsigned size_to_class(size_t size) { return size_to_class_stride(size) / CLASS_STRIDE; }

static inline size_t class_to_size(unsigned cls) { return size_class_sizes[cls]; }

/* Whether a malloc of class cls may take a cached block of class cls + 1
 * rather than touch a new page (heap.c): when that wastes at most a quarter
 * more, and not for power-of-two classes, whose blocks stay aligned to
 * their size as in jemalloc and mimalloc. */
static inline bool class_may_borrow(unsigned cls) {
  size_t size = size_class_sizes[cls];
  return cls + 1 < CLASS_COUNT && size_class_sizes[cls + 1] * 4 <= size * 5 && (size & (size - 1)) != 0;
}

/* Whether every block a malloc of class cls can return is aligned to
 * align (a power of two up to SMALL_MAX): slabs start on 64 KiB
 * boundaries, so a class's blocks are aligned when its size is a multiple
 * of align; and its bin may hold blocks borrowed from the next class up,
 * whose bin may hold the next one's, up to a class that does not borrow. */
static inline bool class_aligned_to(unsigned cls, size_t align) {
  for (;; cls++) {
    if (size_class_sizes[cls] & (align - 1)) return false;
    if (!class_may_borrow(cls)) return true;
  }
}

/* class_aligned_to for every class as the largest alignment, a shift;
 * 0 until the first call fills it (size_class.c). */
extern uint8_t class_alignment_shifts[CLASS_COUNT] HIDDEN;
unsigned class_alignment_fill(unsigned cls);

/* The largest power of two, as a shift, that every block a malloc of
 * class cls can return is aligned to. */
static inline unsigned class_alignment_shift(unsigned cls) {
  unsigned shift = __atomic_load_n(&class_alignment_shifts[cls], __ATOMIC_RELAXED);
  return likely(shift) ? shift : class_alignment_fill(cls);
}

/* Most blocks of a class a thread cache holds: a slab's worth (64 KiB),
 * so that a refill can take any slab's free list whole (heap.c). Capped
 * at 512, the small classes walked their long lists block by block: a
 * sh6bench-like test with random-order frees ran 71.1M ops/s against
 * 84.0M uncapped (nine interleaved runs; larson, mstress and xmalloc
 * equal or better). */
static inline uint32_t class_cache_max(unsigned cls) {
  uint32_t n = (uint32_t)(UNIT_SIZE / size_class_sizes[cls]);
  return n < 4 ? 4 : n;
}

#endif /* HAKMEM_SIZE_CLASS_H */
