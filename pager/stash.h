/* stash.h: whole huge pages, cleared ahead of time, for new SuperSlabs.
 *
 * A SuperSlab is one 2 MiB unit. A new one is wholly absent until its
 * header is written, and a huge page moved into it whole (UFFDIO_MOVE of
 * one PMD) makes all of it present at once with a single page-table
 * entry. Where 4 KiB entries are dear this is the only cheap way in: on
 * the PVM guest (README, "The machine") a fault costs 10 us a page, and
 * any 4 KiB entry the program's own fault did not write (a move from the
 * pool, a copy, MADV_POPULATE_WRITE) costs 4.4 us at its first touch,
 * while a huge page moved whole cost 8-12 ns a 4 KiB page and 24-28 at
 * the first write (bench/page_costs).
 *
 * The stash is a mapping of `nslots` slots of 2 MiB, MADV_HUGEPAGE and
 * MADV_DONTFORK, never registered with the uffd (the pager thread faults
 * its huge pages in by a write; a move's source need not be registered). A slot is EMPTY, FILLING (the pager thread populates it),
 * FULL (a huge page of zeros), or TAKING (an application thread moves it
 * out); the states of all slots are one atomic word, changed by
 * compare-and-swap, so no lock is held and no signal needs blocking.
 *
 * A fill that brings a small page (the kernel found no free huge page) is
 * given back at once: 512 small pages would cost the pager 512 faults and
 * the program 512 first touches, more than the pool's path; after
 * STASH_MAX_REFUSALS such fills in a row the stash closes. */
#ifndef HAKMEM_PAGER_STASH_H
#define HAKMEM_PAGER_STASH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "uffd.h"

#define STASH_SLOT_SIZE ((uintptr_t)2 << 20)
#define STASH_MAX_SLOTS 32 /* two bits of state each in one 64-bit word */

struct stash {
  _Atomic uint64_t slots;  /* two bits a slot: enum stash_slot_state */
  uintptr_t base;          /* nslots * STASH_SLOT_SIZE, 2 MiB aligned; 0: no stash */
  uint32_t nslots;
  _Atomic uint32_t target; /* slots the pager keeps full: 0 until the first take */
  _Atomic bool open;       /* false once huge pages proved unobtainable */
  _Atomic uint64_t taken, misses; /* takes that moved a slot, and those that found none */
  uint64_t seen_taken, seen_misses, idle_ticks; /* stash_adapt()'s memory (pager thread) */
  uint32_t refusals;       /* fills in a row that gave small pages (pager thread) */
};

/* Map the stash for up to cap_bytes of huge pages (at most STASH_MAX_SLOTS
 * slots). 0, or -errno: -EOPNOTSUPP when transparent huge pages are off
 * ("never") or missing; then there is no stash and nothing changes. */
int stash_init(struct stash *s, size_t cap_bytes);
void stash_fini(struct stash *s);
/* In a fork child: the mapping was MADV_DONTFORK, forget it. */
void stash_forget(struct stash *s);

/* Application thread: claim a full slot, or -1 when none is full (the
 * first such miss makes the pager keep a slot full from then on). A
 * claimed slot is moved out or unclaimed. */
int stash_claim(struct stash *s);
void stash_unclaim(struct stash *s, int slot);
/* Move the claimed slot's huge page to dst (2 MiB aligned, absent,
 * registered with u). True when all 2 MiB are there now; false when
 * nothing moved, or the move split and only part of dst is present (with
 * zeros: the caller supplies the rest its usual way). */
bool stash_move_out(struct stash *s, int slot, const struct uffd *u, uintptr_t dst);

/* Pager thread: fill one empty slot if fewer than the target are full, by
 * a write to it (the kernel clears the huge page as it faults it in).
 * Returns the 4 KiB pages of the huge page it brought (0 when none was
 * wanted or the kernel gave a small page). */
uint32_t stash_fill_step(struct stash *s);
bool stash_wants_fill(struct stash *s);

/* Pager thread, on its timer: the target doubles (up to all slots) after a
 * take found the stash empty, and after idle_limit ticks without a take
 * the full slots go back to the kernel. Returns the pages given back. */
uint64_t stash_adapt(struct stash *s, uint64_t idle_limit);

/* Any thread (malloc_trim): give the full slots back to the kernel now;
 * the target falls to one slot. Returns the pages given back. */
uint64_t stash_shrink(struct stash *s);

/* Pages held in full slots now. */
uint64_t stash_level(struct stash *s);

#endif /* HAKMEM_PAGER_STASH_H */
