/* stash.c: the pager's huge pages for new SuperSlabs (stash.h). */
#include "config.h"

#include "stash.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "os.h"
#include "pagemap.h"
#include "types.h"

#ifndef MADV_DONTFORK
#define MADV_DONTFORK 10
#endif

#define STASH_MAX_REFUSALS 4
#define SLOT_PAGES ((uint32_t)(STASH_SLOT_SIZE / PAGE_SIZE))

enum stash_slot_state { SLOT_EMPTY = 0, SLOT_FILLING = 1, SLOT_FULL = 2, SLOT_TAKING = 3 };

static unsigned slot_state(uint64_t word, uint32_t i) { return (unsigned)(word >> (2 * i)) & 3u; }

static uint64_t with_state(uint64_t word, uint32_t i, unsigned state) {
  return (word & ~((uint64_t)3 << (2 * i))) | ((uint64_t)state << (2 * i));
}

static uintptr_t slot_addr(const struct stash *s, uint32_t i) { return s->base + (uintptr_t)i * STASH_SLOT_SIZE; }

/* Move some slot from `from` to `to`; its index, or -1 when none is in
 * `from`. */
static int claim_slot(struct stash *s, unsigned from, unsigned to) {
  uint64_t word = atomic_load_explicit(&s->slots, memory_order_acquire);
  for (;;) {
    uint32_t i = 0;
    while (i < s->nslots && slot_state(word, i) != from) i++;
    if (i == s->nslots) return -1;
    if (atomic_compare_exchange_weak_explicit(&s->slots, &word, with_state(word, i, to), memory_order_acq_rel,
                                              memory_order_acquire))
      return (int)i;
  }
}

/* The claimed slot i goes to `to`. */
static void release_slot(struct stash *s, uint32_t i, unsigned to) {
  uint64_t word = atomic_load_explicit(&s->slots, memory_order_relaxed);
  while (!atomic_compare_exchange_weak_explicit(&s->slots, &word, with_state(word, i, to), memory_order_acq_rel,
                                                memory_order_relaxed)) {
  }
}

static uint32_t slots_in(struct stash *s, unsigned state) {
  uint64_t word = atomic_load_explicit(&s->slots, memory_order_relaxed);
  uint32_t n = 0;
  for (uint32_t i = 0; i < s->nslots; i++) n += slot_state(word, i) == state;
  return n;
}

int stash_init(struct stash *s, size_t cap_bytes) {
  size_t nslots = cap_bytes / STASH_SLOT_SIZE;
  memset(s, 0, sizeof *s);
  if (nslots > STASH_MAX_SLOTS) nslots = STASH_MAX_SLOTS;
  if (nslots == 0) nslots = 1;
  if (os_thp_mode() < OS_THP_MADVISE) return -EOPNOTSUPP;
  size_t len = nslots * STASH_SLOT_SIZE;
  void *raw = mmap(NULL, len + STASH_SLOT_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
  if (raw == MAP_FAILED) return -errno;
  uintptr_t base = ((uintptr_t)raw + STASH_SLOT_SIZE - 1) & ~(STASH_SLOT_SIZE - 1);
  uintptr_t head = base - (uintptr_t)raw, tail = STASH_SLOT_SIZE - head;
  /* Trimming the ends of our own mapping does not fail but for ENOMEM at
   * the limit of mappings; then the ends stay mapped, untouched. */
  if (head) (void)munmap(raw, head);
  if (tail) (void)munmap((void *)(base + len), tail);
  /* Not inherited by fork: a huge page shared with a child could not be
   * moved (EBUSY). */
  if (madvise((void *)base, len, MADV_DONTFORK) != 0 || madvise((void *)base, len, MADV_HUGEPAGE) != 0) {
    int err = -errno;
    munmap((void *)base, len);
    return err;
  }
  s->base = base;
  s->nslots = (uint32_t)nslots;
  atomic_store(&s->open, true);
  return 0;
}

void stash_fini(struct stash *s) {
  if (s->base) munmap((void *)s->base, (size_t)s->nslots * STASH_SLOT_SIZE);
  memset(s, 0, sizeof *s);
}

void stash_forget(struct stash *s) { memset(s, 0, sizeof *s); }

int stash_claim(struct stash *s) {
  if (!s->base || !atomic_load_explicit(&s->open, memory_order_relaxed)) return -1;
  int i = claim_slot(s, SLOT_FULL, SLOT_TAKING);
  if (i < 0) {
    atomic_fetch_add_explicit(&s->misses, 1, memory_order_relaxed);
    uint32_t none = 0;
    atomic_compare_exchange_strong(&s->target, &none, 1); /* the first take asks for a slot */
  }
  return i;
}

void stash_unclaim(struct stash *s, int slot) { release_slot(s, (uint32_t)slot, SLOT_FULL); }

bool stash_move_out(struct stash *s, int slot, const struct uffd *u, uintptr_t dst) {
  int err;
  uintptr_t src = slot_addr(s, (uint32_t)slot);
  size_t moved = uffd_move(u, dst, src, STASH_SLOT_SIZE, 0, &err);
  if (moved == STASH_SLOT_SIZE) {
    atomic_fetch_add_explicit(&s->taken, 1, memory_order_relaxed);
    release_slot(s, (uint32_t)slot, SLOT_EMPTY);
    return true;
  }
  if (moved == 0 && (err == -EEXIST || err == -EAGAIN)) { /* dst was filled meanwhile; the slot keeps its page */
    release_slot(s, (uint32_t)slot, SLOT_FULL);
    return false;
  }
  if (moved == 0) {
    /* Refused outright (EBUSY, ENOMEM, a kernel that splits no PMD): the
     * stash closes, and new SuperSlabs take the pool's pages. */
    atomic_store(&s->open, false);
  }
  /* A split move: what reached dst is zero and stays; the slot's rest goes
   * back to the kernel (and all of it after a refusal). */
  (void)madvise((void *)src, STASH_SLOT_SIZE, MADV_DONTNEED);
  release_slot(s, (uint32_t)slot, SLOT_EMPTY);
  return false;
}

bool stash_wants_fill(struct stash *s) {
  if (!s->base || !atomic_load_explicit(&s->open, memory_order_relaxed)) return false;
  uint32_t target = atomic_load_explicit(&s->target, memory_order_relaxed);
  return target && slots_in(s, SLOT_FULL) + slots_in(s, SLOT_FILLING) < target;
}

static void slot_refused(struct stash *s, uint32_t i) {
  (void)madvise((void *)slot_addr(s, i), STASH_SLOT_SIZE, MADV_DONTNEED);
  release_slot(s, i, SLOT_EMPTY);
  if (++s->refusals >= STASH_MAX_REFUSALS) atomic_store(&s->open, false);
}

uint32_t stash_fill_step(struct stash *s) {
  if (!stash_wants_fill(s)) return 0;
  int slot = claim_slot(s, SLOT_EMPTY, SLOT_FILLING);
  if (slot < 0) return 0;
  volatile char *addr = (volatile char *)slot_addr(s, (uint32_t)slot);
  /* One write: the fault brings the whole huge page, cleared by the
   * kernel. A fault takes only the stash's own lock, where
   * MADV_POPULATE_WRITE would hold the address space's for as long, and
   * every mmap of the program, a new SuperSlab's first, would wait. */
  *addr = 0;
  if (pagemap_is_huge_page((uintptr_t)addr) == 0) { /* -1: the kernel cannot tell; trusted */
    slot_refused(s, (uint32_t)slot);
    return 0;
  }
  s->refusals = 0;
  release_slot(s, (uint32_t)slot, SLOT_FULL);
  return SLOT_PAGES;
}

/* The full slots back to the kernel, each held as FILLING meanwhile so
 * that no take claims it. */
static uint64_t release_full(struct stash *s) {
  uint64_t pages = 0;
  int i;
  while ((i = claim_slot(s, SLOT_FULL, SLOT_FILLING)) >= 0) {
    /* Refused (locked pages), the slot stays full: it holds zeros still. */
    bool gone = madvise((void *)slot_addr(s, (uint32_t)i), STASH_SLOT_SIZE, MADV_DONTNEED) == 0;
    release_slot(s, (uint32_t)i, gone ? SLOT_EMPTY : SLOT_FULL);
    if (!gone) break;
    pages += SLOT_PAGES;
  }
  return pages;
}

uint64_t stash_adapt(struct stash *s, uint64_t idle_limit) {
  if (!s->base) return 0;
  uint64_t taken = atomic_load(&s->taken), misses = atomic_load(&s->misses);
  uint32_t target = atomic_load(&s->target);
  if (misses != s->seen_misses && target) {
    uint32_t doubled = 2 * target < s->nslots ? 2 * target : s->nslots;
    atomic_compare_exchange_strong(&s->target, &target, doubled);
  }
  bool idle = taken == s->seen_taken && misses == s->seen_misses;
  s->seen_taken = taken;
  s->seen_misses = misses;
  if (!idle) {
    s->idle_ticks = 0;
    return 0;
  }
  if (++s->idle_ticks < idle_limit) return 0;
  atomic_store(&s->target, 0);
  return release_full(s);
}

uint64_t stash_shrink(struct stash *s) {
  if (!s->base) return 0;
  atomic_store(&s->target, 0);
  return release_full(s);
}

uint64_t stash_level(struct stash *s) { return s->base ? (uint64_t)slots_in(s, SLOT_FULL) * SLOT_PAGES : 0; }
