/* size_class.c: the class tables, computed at compile time. */
#include "size_class.h"

/* Sizes of classes 8 and up: 128 << g plus (k + 1) quarters of it. */
#define C_SIZE(c) (((c) < 8) ? 16u * ((c) + 1u) \
                   : (128u << (((c) - 8u) / 4u)) + (((c) - 8u) % 4u + 1u) * (32u << (((c) - 8u) / 4u)))

HIDDEN const uint32_t size_class_sizes[CLASS_COUNT] = {
#define S4(c) C_SIZE(c), C_SIZE(c + 1), C_SIZE(c + 2), C_SIZE(c + 3)
  S4(0), S4(4), S4(8), S4(12), S4(16), S4(20), S4(24), S4(28), S4(32), S4(36),
#undef S4
};

/* Index (size + 15) >> 4 for sizes 0..1024: entries 0..64. */
#define T(i) (((i) <= 8) ? ((i) == 0 ? 0 : (i) - 1)                                         \
              : ((i) <= 10) ? 8 : ((i) <= 12) ? 9 : ((i) <= 14) ? 10 : ((i) <= 16) ? 11     \
              : ((i) <= 20) ? 12 : ((i) <= 24) ? 13 : ((i) <= 28) ? 14 : ((i) <= 32) ? 15   \
              : ((i) <= 40) ? 16 : ((i) <= 48) ? 17 : ((i) <= 56) ? 18 : 19)
HIDDEN const uint8_t size_class_small_table[65] = {
#define T8(i) T(i), T(i + 1), T(i + 2), T(i + 3), T(i + 4), T(i + 5), T(i + 6), T(i + 7)
  T8(0), T8(8), T8(16), T8(24), T8(32), T8(40), T8(48), T8(56), T(64),
#undef T8
};
