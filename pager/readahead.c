/* readahead.c: where block supplies ended, to tell writes in order. */
#include "readahead.h"

#include <stdatomic.h>

#include "types.h"

#define SLOTS 256u

/* Each slot: the page number where a supply ended, shifted left by 8,
 * and the supply's length in pages as a power of two (its log2) below. */
static _Atomic uint64_t ends[SLOTS];

static _Atomic uint64_t *slot_of(uint64_t page) {
  return &ends[(page ^ (page >> 8) ^ (page >> 16)) % SLOTS];
}

static uint32_t log2_floor(uint32_t n) { return 31u - (uint32_t)__builtin_clz(n); }

void readahead_note(uintptr_t end, uint32_t pages) {
  uint64_t page = end >> PAGE_SHIFT;
  if (!pages) return;
  atomic_store_explicit(slot_of(page), page << 8 | log2_floor(pages), memory_order_relaxed);
}

uint32_t readahead_pages(uintptr_t addr, uint32_t max_pages) {
  uint64_t page = addr >> PAGE_SHIFT;
  uint64_t v = atomic_load_explicit(slot_of(page), memory_order_relaxed);
  uint32_t pages = READAHEAD_FIRST_PAGES;
  if (v >> 8 == page) {
    uint32_t shift = (uint32_t)(v & 0xff) + 2;
    pages = shift >= 31 ? max_pages : 1u << shift;
  }
  return pages < max_pages ? pages : max_pages;
}
