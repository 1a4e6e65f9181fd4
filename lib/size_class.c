/* size_class.c: the class tables, computed at compile time. */
#include "size_class.h"

/* Sizes of classes 8 and up: 128 << g plus (k + 1) quarters of it. */
#define C_GROUP(c) ((c) < 8 ? 0u : ((c) - 8u) / 4u) /* kept in range in both branches, for clang */
#define C_SIZE(c) (((c) < 8) ? 16u * ((c) + 1u) \
                   : (128u << C_GROUP(c)) + (((c) - 8u) % 4u + 1u) * (32u << C_GROUP(c)))

HIDDEN const uint32_t size_class_sizes[CLASS_COUNT] = {
#define S4(c) C_SIZE(c), C_SIZE(c + 1), C_SIZE(c + 2), C_SIZE(c + 3)
  S4(0), S4(4), S4(8), S4(12), S4(16), S4(20), S4(24), S4(28), S4(32), S4(36),
#undef S4
};

/* Index (size + 15) >> 4 for every size up to SMALL_MAX: 2049 entries, so
 * that malloc finds any small class with one load and one branch on the
 * size. Class boundaries are multiples of 16, so each 16-byte bucket has
 * one class: that of its largest size, 16 * i.
 *
 * One table, not a copy of its head for sizes up to 2 KiB beside it:
 * malloc's branch between the two mispredicted when a program mixed sizes
 * on both sides (blocks of 2^k + 1 bytes for k = 8..14 freed and malloc'd
 * at random: 226M ops/s with the branch, 301-378M without, tcmalloc 262M).
 * In .data.rel.ro, the page that relocation writes in every process,
 * where .data would take one page more: in .rodata, 8 of 60 runs of Tiny
 * Hot fell near 500M ops/s against 0 to 1 of 60 for the head copy in
 * .data (hot.h), and here 3 of 120 did (mimalloc 6 of the 60 beside the
 * first half). */
#define T_LOG2(x) (31 - __builtin_clz(x))
#define T_CLASS(i) ((i) <= 8 ? ((i) == 0 ? 0 : (i) - 1)                                     \
                    : 8 + (T_LOG2(16 * (i) - 1) - 7) * 4 + (((16 * (i) - 1) >> (T_LOG2(16 * (i) - 1) - 2)) & 3))
#define T(i) (T_CLASS(i) * (CLASS_STRIDE / CLASS_TABLE_SCALE))
#define T4(i) T(i), T(i + 1), T(i + 2), T(i + 3)
#define T16(i) T4(i), T4(i + 4), T4(i + 8), T4(i + 12)
#define T64(i) T16(i), T16(i + 16), T16(i + 32), T16(i + 48)
#define T256(i) T64(i), T64(i + 64), T64(i + 128), T64(i + 192)
#define T1024(i) T256(i), T256(i + 256), T256(i + 512), T256(i + 768)
HIDDEN uint8_t size_class_table[SMALL_MAX / 16 + 1] __attribute__((aligned(64), section(".data.rel.ro"))) = {
  T1024(0), T1024(1024), T(2048),
};

/* 0 until the first aligned allocation fills it (no class has that
 * shift: all are 16-byte aligned). Any thread may fill it; they all
 * write the same values. posix_memalign(64, 16..2015 B), 10M calls:
 * 0.19 s walking each class's borrow chain, 0.09 s so (tcmalloc 0.12). */
HIDDEN uint8_t class_alignment_shifts[CLASS_COUNT];

unsigned class_alignment_fill(unsigned cls) {
  for (unsigned c = 0; c < CLASS_COUNT; c++) {
    unsigned k = 4;
    while (((size_t)1 << (k + 1)) <= SMALL_MAX && class_aligned_to(c, (size_t)1 << (k + 1))) k++;
    __atomic_store_n(&class_alignment_shifts[c], (uint8_t)k, __ATOMIC_RELAXED);
  }
  return class_alignment_shifts[cls];
}

_Static_assert(CLASS_COUNT * (CLASS_STRIDE / CLASS_TABLE_SCALE) <= UINT8_MAX, "size_class_table's entries fit a byte");
_Static_assert(CLASS_STRIDE % CLASS_TABLE_SCALE == 0, "size_class_table's entries are whole");
