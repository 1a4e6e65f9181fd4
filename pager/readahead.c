/* readahead.c: where block supplies began and ended, to tell writes in
 * order, forward or backward. */
#include "readahead.h"

#include <stdatomic.h>

#include "types.h"

#define SLOTS 256u

/* Each slot: the page number where a supply ended (began), shifted left
 * by 8, and the supply's length in pages as a power of two (its log2)
 * below. */
static LARGE_BSS _Atomic uint64_t ends[SLOTS], starts[SLOTS];

static _Atomic uint64_t *slot_in(_Atomic uint64_t *table, uint64_t page) {
  return &table[(page ^ (page >> 8) ^ (page >> 16)) % SLOTS];
}

static uint32_t log2_floor(uint32_t n) { return 31u - (uint32_t)__builtin_clz(n); }

/* Down by one for each block handed out, up by FIRST_CREDIT for each
 * in-order write past a first window, within [-FIRST_SCORE_MAX,
 * FIRST_SCORE_MAX]. Above zero, a block gets READAHEAD_FIRST_PAGES as it
 * is handed out and a write fault as many; else none (its first bytes
 * share the header's page, present) and one page. A program that writes
 * at least one block in two on in order keeps the score up; one that
 * writes none past its first page brings it down within FIRST_SCORE_MAX
 * blocks, and two blocks written on in order bring it back. */
#define FIRST_SCORE_MAX 8
#define FIRST_CREDIT 2
static _Atomic int first_score = FIRST_SCORE_MAX;

static void first_score_add(int delta) {
  int s = atomic_load_explicit(&first_score, memory_order_relaxed), next;
  do {
    next = s + delta;
    if (next > FIRST_SCORE_MAX) next = FIRST_SCORE_MAX;
    if (next < -FIRST_SCORE_MAX) next = -FIRST_SCORE_MAX;
  } while (next != s && !atomic_compare_exchange_weak_explicit(&first_score, &s, next, memory_order_relaxed,
                                                               memory_order_relaxed));
}

static uint32_t first_pages(void) {
  return atomic_load_explicit(&first_score, memory_order_relaxed) > 0 ? READAHEAD_FIRST_PAGES : 1;
}

uint32_t readahead_first_window(void) {
  uint32_t pages = first_pages() > 1 ? READAHEAD_FIRST_PAGES : 0;
  first_score_add(-1);
  return pages;
}

void readahead_note(uintptr_t start, uintptr_t end) {
  uint64_t first = start >> PAGE_SHIFT, last = end >> PAGE_SHIFT;
  if (last <= first) return;
  uint64_t length = log2_floor((uint32_t)(last - first < UINT32_MAX ? last - first : UINT32_MAX));
  atomic_store_explicit(slot_in(ends, last), last << 8 | length, memory_order_relaxed);
  atomic_store_explicit(slot_in(starts, first), first << 8 | length, memory_order_relaxed);
}

/* Four times the length of the supply recorded in slot value v. */
static uint32_t grown(uint64_t v, uint32_t max_pages) {
  uint32_t shift = (uint32_t)(v & 0xff) + 2;
  return shift >= 31 ? max_pages : 1u << shift;
}

uint32_t readahead_pages(uintptr_t addr, uint32_t max_pages, bool *backward) {
  uint64_t page = addr >> PAGE_SHIFT;
  uint64_t v = atomic_load_explicit(slot_in(ends, page), memory_order_relaxed);
  uint32_t pages = first_pages();
  *backward = false;
  if (v >> 8 == page) {
    pages = grown(v, max_pages);
    if ((1u << (v & 0xff)) <= READAHEAD_FIRST_PAGES) first_score_add(FIRST_CREDIT); /* on past a first window */
  } else if ((v = atomic_load_explicit(slot_in(starts, page + 1), memory_order_relaxed)) >> 8 == page + 1) {
    pages = grown(v, max_pages); /* just before the last supply: the program writes downwards */
    *backward = true;
  }
  return pages < max_pages ? pages : max_pages;
}
