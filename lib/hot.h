/* hot.h: the words that every malloc and free read, in cache lines of
 * their own in .data: the free cookie's secret (diag.h) and, for sizes up
 * to HOT_CLASS_MAX, a copy of the size-class table's head (size_class.h).
 *
 * Where they live decided Tiny Hot's speed. With the table in .rodata,
 * most runs of the benchmark harness ran near 490M ops/s and some near
 * 560M, by where the address-space layout put things; with the table's
 * head beside the secret in .data every run ran near 560M, wherever in
 * its page the line was put (15 runs each of four placements, against
 * 10 of 15 slow runs for the table in .rodata; a constant secret, with
 * the table left in .rodata, ran as slow). The whole table (4 KiB) would
 * have pushed the library's small variables onto a second page, a fault
 * in every process; malloc's branch to the full table above
 * HOT_CLASS_MAX is where its fast path already tests the size. */
#ifndef HAKMEM_HOT_H
#define HAKMEM_HOT_H

#include <stdint.h>

#include "types.h"

#define HOT_CLASS_MAX 2048u

struct hot_words {
  uintptr_t diag_secret;
  uint16_t class_stride[HOT_CLASS_MAX / 16 + 1]; /* size_class_table's first entries */
};

extern struct hot_words hk_hot HIDDEN;

#endif /* HAKMEM_HOT_H */
