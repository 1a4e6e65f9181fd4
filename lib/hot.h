/* hot.h: the free cookie's secret (diag.h), which every free reads, in a
 * cache line of its own in .data.
 *
 * Where the words every malloc and free read live decided Tiny Hot's
 * speed. With the size-class table in .rodata, 10 of 15 runs of the
 * benchmark harness ran near 490M ops/s and the rest near 560M, by where
 * the address-space layout put things; with the table beside the secret
 * in .data, runs ran near 560M wherever in its page the line was put (15
 * runs at each of four placements), and a constant secret with the table
 * left in .rodata ran as slow. The table is now in .data.rel.ro
 * (size_class.c, which has the later counts). The secret must be
 * writable: diag_init() draws it at start-up. */
#ifndef HAKMEM_HOT_H
#define HAKMEM_HOT_H

#include <stdint.h>

#include "types.h"

/* A whole line: the variables after it are written (the pager's state). */
struct hot_words {
  uintptr_t diag_secret;
} __attribute__((aligned(64)));

extern struct hot_words hk_hot HIDDEN;

#endif /* HAKMEM_HOT_H */
