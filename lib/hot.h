/* hot.h: the words that every malloc and free read, in cache lines of
 * their own in .data: the free cookie's secret (diag.h) and, for sizes up
 * to HOT_CLASS_MAX, a copy of the size-class table's head (size_class.h).
 *
 * Where they live decided Tiny Hot's speed. With the table in .rodata,
 * 10 of 15 runs of the benchmark harness ran near 490M ops/s and the rest
 * near 560M, by where the address-space layout put things; with the whole
 * table beside the secret in .data, runs ran near 560M wherever in its
 * page the line was put (15 runs at each of four placements), and a
 * constant secret with the table left in .rodata ran as slow. Only the
 * head is here: the whole table (4 KiB) would have pushed the library's
 * small variables onto a second page, a fault in every process, and
 * malloc's branch to the full table above HOT_CLASS_MAX is where its
 * fast path tests the size anyway. The price: the copy is writable, as
 * the secret must be, where the table is read-only. */
#ifndef HAKMEM_HOT_H
#define HAKMEM_HOT_H

#include <stdint.h>

#include "types.h"

#define HOT_CLASS_MAX 2048u

/* Whole lines: the variables after it are written (the pager's state). */
struct hot_words {
  uintptr_t diag_secret;
  uint16_t class_stride[HOT_CLASS_MAX / 16 + 1]; /* size_class_table's first entries */
} __attribute__((aligned(64)));

extern struct hot_words hk_hot HIDDEN;

#endif /* HAKMEM_HOT_H */
