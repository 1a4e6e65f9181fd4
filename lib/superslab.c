/* superslab.c: acquiring SuperSlabs, carving their units into slabs, and
 * giving them back.
 *
 * A small SuperSlab tracks how many leading pages of each unit are
 * resident. A slab's pages are made present just before its blocks are
 * first written (os_supply: the pager's direct supply, or
 * MADV_POPULATE_WRITE: 900 ns a page here against 1.5-3 us for a fault),
 * a few pages at a time as the slab grows (the pager's direct supply: the
 * whole unit), so that a class with few blocks costs few pages. The time
 * is measured and the pages counted in the ledger by the path they take:
 * fresh, refault after lazy zeroing, reuse after MADV_FREE, or resident
 * reuse. */
#include "superslab.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "lru.h"
#include "os.h"
#include "region_map.h"
#include "slab.h"
#include "stats.h"

#define ALL_UNITS 0xffffffffu

/* A large SuperSlab's pages are the kernel's faults' to supply, not a
 * page supplier's: a block of 32 KiB-1 MiB is often written only in part,
 * and the pager's windows made present what was never written, on the
 * allocating thread under the large lock (50,000 blocks of 40 KB written
 * at one byte each: 2.0 GB of RSS and 0.92 s with the pager, 206 MB and
 * 0.09 s without), and served a fault across CPUs (about 19 us) where
 * the kernel's costs 1-2 us. Whole-written blocks gained little from it
 * (README). A heap sets its small SuperSlabs' way itself (heap.c). */
struct region_header *superslab_region_acquire(enum region_kind kind, bool supply_whole) {
  struct region_header *h = lru_take(REGION_SIZE, REGION_SIZE);
  if (h) {
    /* A cached huge block's region made a SuperSlab counts as mapped, as a
     * SuperSlab's made a huge block's counts as unmapped (huge.c): mapped
     * stays live + cached + unmapped. */
    stats_add(h->kind == REGION_HUGE ? STAT_ss_mapped_total : STAT_ss_reused_total, 1);
  } else {
    h = region_map_new(REGION_SIZE, REGION_SIZE, kind, 1, supply_whole);
    if (!h) {
      errno = ENOMEM;
      return NULL;
    }
    stats_add(STAT_ss_mapped_total, 1);
  }
  if (kind == REGION_LARGE) region_supply_by_faults(h, true);
  return h;
}

/* Unit u's 16 pages in a large SuperSlab's page map (inverted when
 * `clear`): the length of the prefix up to the last page whose bit is set. */
static uint8_t unit_prefix(const uint64_t *map, unsigned u, bool clear) {
  uint32_t bits = (uint32_t)(uint16_t)(map[u / 4] >> ((u % 4) * UNIT_PAGES));
  if (clear) bits = ~bits & 0xffffu;
  return bits ? (uint8_t)(32 - __builtin_clz(bits)) : 0;
}

/* The resident prefix of unit u of a cached region, read from the header
 * of the kind it had when it was cached. */
static uint8_t resident_pages_of(const struct region_header *h, unsigned u) {
  if (h->kind == REGION_HUGE) return UNIT_PAGES;
  if (h->kind == REGION_SMALL) return ((const struct superslab *)h)->present_pages[u];
  const struct large_ss *l = (const struct large_ss *)h;
  /* Up to the last resident page: an absent page below it counts as
   * resident (it faults in as the kernel's, unseen by the ledger), but no
   * page that holds old bytes may count as absent, which means zero. */
  return unit_prefix(l->absent_map, u, true);
}

/* The released prefix of unit u of a cached region (its absent pages
 * there refault), read from the header of the kind it had. */
static uint8_t released_pages_of(const struct region_header *h, unsigned u) {
  if (h->kind == REGION_SMALL) return ((const struct superslab *)h)->released_pages[u];
  if (h->kind != REGION_LARGE) return 0;
  return unit_prefix(((const struct large_ss *)h)->released_map, u, false);
}

uint8_t region_touched_pages(const struct region_header *h, unsigned u) {
  uint8_t resident = resident_pages_of(h, u), released = released_pages_of(h, u);
  return resident > released ? resident : released;
}

unsigned region_released_absent_pages(const struct region_header *h) {
  unsigned n = 0;
  if (h->kind == REGION_HUGE) return 0; /* released whole, or not at all */
  for (unsigned u = 1; u < UNITS_PER_SS; u++) {
    uint8_t resident = resident_pages_of(h, u), released = released_pages_of(h, u);
    if (released > resident) n += released - resident;
  }
  return n;
}

static uint32_t lazyfree_units_of(const struct region_header *h) {
  if (h->kind == REGION_SMALL) return ((const struct superslab *)h)->lazyfree_units;
  if (h->kind == REGION_LARGE && ((const struct large_ss *)h)->lazyfree) return ALL_UNITS & ~1u;
  return 0;
}

struct superslab *superslab_new_with(struct heap *owner, bool supply_whole) {
  struct region_header *h = superslab_region_acquire(REGION_SMALL, supply_whole);
  if (!h) return NULL;
  uint8_t present[UNITS_PER_SS] = { 0 }, released[UNITS_PER_SS] = { 0 };
  uint32_t lazyfree = 0;
  if (region_body_resident(h)) {
    for (unsigned u = 1; u < UNITS_PER_SS; u++) {
      present[u] = resident_pages_of(h, u);
      released[u] = released_pages_of(h, u);
    }
    lazyfree = lazyfree_units_of(h);
    if (h->pages == HAKMEM_SUPPLY_LAZYFREE)
      for (unsigned u = 1; u < UNITS_PER_SS; u++)
        if (present[u]) lazyfree |= 1u << u;
  } else if (h->pages == HAKMEM_SUPPLY_REFAULT) {
    for (unsigned u = 1; u < UNITS_PER_SS; u++) released[u] = region_touched_pages(h, u);
    h->absent_path = HAKMEM_SUPPLY_FRESH;
  } else {
    h->absent_path = h->pages;
  }
  if (h->kind != REGION_SMALL) region_set_kind(h, REGION_SMALL);
  struct superslab *ss = (struct superslab *)h;
  ss->owner = owner;
  ss->next = ss->prev = NULL;
  ss->free_units = ALL_UNITS & ~1u;
  ss->lazyfree_units = lazyfree;
  ss->units_free_since_ns = 0;
  memcpy(ss->present_pages, present, sizeof present);
  memcpy(ss->released_pages, released, sizeof released);
  ss->slabs_in_use = 0;
  memset(ss->slabs, 0, sizeof ss->slabs);
  stats_add(STAT_ss_live, 1);
  return ss;
}

static unsigned unit_of(const struct superslab *ss, const struct slab *s) {
  return (unsigned)(s - ss->slabs);
}

/* Count the unit's resident pages in the ledger as they are handed out. */
static void count_resident_unit(struct superslab *ss, unsigned unit) {
  uint32_t bit = 1u << unit;
  if (ss->lazyfree_units & bit) {
    ss->lazyfree_units &= ~bit;
    stats_supply(HAKMEM_SUPPLY_LAZYFREE, ss->present_pages[unit], 0, 0);
  } else if (ss->present_pages[unit]) {
    stats_supply(HAKMEM_SUPPLY_REUSE, ss->present_pages[unit], 0, 0);
  }
}

struct slab *superslab_carve_slab(struct superslab *ss, unsigned cls) {
  if (!ss->free_units) return NULL;
  unsigned unit = (unsigned)__builtin_ctz(ss->free_units);
  ss->free_units &= ~(1u << unit);
  ss->slabs_in_use++;
  struct slab *s = &ss->slabs[unit];
  bool lazyfree = ss->lazyfree_units & (1u << unit); /* before the ledger clears it */
  count_resident_unit(ss, unit);
  slab_init(s, ss->owner, (char *)ss + (size_t)unit * UNIT_SIZE, cls);
  /* Pages absent now will be zero when supplied; resident ones hold old
   * bytes, and MADV_FREE'd ones may. */
  slab_cold(s)->zero_from = lazyfree ? s->end : s->start + (size_t)ss->present_pages[unit] * PAGE_SIZE;
  stats_add(STAT_slabs_carved, 1);
  return s;
}

char *superslab_present_end(const struct slab *s) {
  const struct superslab *ss = superslab_of(s->start);
  return s->start + (size_t)ss->present_pages[unit_of(ss, s)] * PAGE_SIZE;
}

bool slab_refill_needs_a_page(const struct slab *s) {
  return !s || (!s->free && s->carve + s->block_size > superslab_present_end(s));
}

/* Whether a page supplier serves ss's pages: not while it leaves them to
 * the kernel's faults (heap.c: a heap's first SuperSlab). */
static bool supplier_serves(const struct superslab *ss) {
  return os_page_supplier() && !ss->h.by_faults;
}

/* Pages [from, to) of slab s, about to be written, by `path`. */
static void supply_pages(struct slab *s, unsigned from, unsigned to, enum hakmem_supply_path path) {
  if (from >= to) return;
  bool supplier = supplier_serves(superslab_of(s->start));
  if (!supplier && s->block_size > PAGE_SIZE) {
    /* Only a block's first page is sure to be written (its free-list
     * link); the program faults in the rest if it uses them, as with
     * the other allocators. 64 MiB of 16 KiB blocks of which the program
     * writes 256 B each: 18 MB of RSS instead of 67 (README). */
    stats_supply(path, to - from, 0, 0);
    return;
  }
  char *addr = s->start + (size_t)from * PAGE_SIZE;
  size_t len = (size_t)(to - from) * PAGE_SIZE;
  if (supplier) os_supply(addr, len, path);
  else os_populate(addr, len, path);
}

void superslab_supply(struct slab *s, const char *upto) {
  struct superslab *ss = superslab_of(s->start);
  unsigned unit = unit_of(ss, s);
  unsigned have = ss->present_pages[unit];
  unsigned need = (unsigned)((upto - s->start + PAGE_SIZE - 1) / PAGE_SIZE);
  if (need <= have) return;
  /* Exactly the pages about to be written: supplying ahead would cost a
   * class with few blocks pages it never uses. A page supplier (the pager)
   * gets the rest of the unit at once: a move costs the same for one page
   * as for sixteen. */
  unsigned want = supplier_serves(ss) ? UNIT_PAGES : need;
  /* Pages a trim or purge gave back refault; those past them are new. */
  unsigned released = ss->released_pages[unit];
  unsigned split = released < have ? have : released > want ? want : released;
  supply_pages(s, have, split, HAKMEM_SUPPLY_REFAULT);
  supply_pages(s, split, want, (enum hakmem_supply_path)ss->h.absent_path);
  ss->present_pages[unit] = (uint8_t)want;
}

void superslab_refault_pages(struct slab *s, unsigned from, unsigned to) {
  supply_pages(s, from, to, HAKMEM_SUPPLY_REFAULT);
}

/* Give back pages [from, to) of slab s; 0 when the kernel refused. */
static size_t release_slab_run(struct slab *s, unsigned from, unsigned to) {
  size_t bytes = (size_t)(to - from) * PAGE_SIZE;
  return os_release(s->start + (size_t)from * PAGE_SIZE, bytes, OS_RELEASE_DONTNEED) ? 0 : bytes;
}

/* The slab's resident pages past its last carved one: the present prefix
 * shrinks, and they refault when the slab grows into them again. */
static size_t release_slab_tail(struct superslab *ss, struct slab *s) {
  unsigned unit = unit_of(ss, s);
  unsigned carved = (unsigned)(((size_t)(s->carve - s->start) + PAGE_SIZE - 1) / PAGE_SIZE);
  unsigned present = ss->present_pages[unit];
  if (present <= carved || !release_slab_run(s, carved, present)) return 0;
  if (present > ss->released_pages[unit]) ss->released_pages[unit] = (uint8_t)present;
  ss->present_pages[unit] = (uint8_t)carved;
  return (size_t)(present - carved) * PAGE_SIZE;
}

size_t superslab_release_slab_pages(struct slab *s) {
  struct superslab *ss = superslab_of(s->start);
  size_t released = release_slab_tail(ss, s);
  uint16_t pages = slab_parkable_pages(s);
  if (!pages) return released;
  /* Off the list before the pages go: their blocks' links go with them. */
  slab_park(s, pages);
  while (pages) {
    unsigned from = (unsigned)__builtin_ctz(pages), to = from;
    while (to < UNIT_PAGES && (pages >> to) & 1) to++;
    pages &= (uint16_t)~(((1u << to) - 1) & ~((1u << from) - 1));
    size_t bytes = release_slab_run(s, from, to);
    released += bytes;
    if (!bytes)
      for (unsigned page = to; page-- > from;) slab_unpark(s, page);
  }
  return released;
}

bool superslab_return_slab(struct superslab *ss, struct slab *s) {
  unsigned unit = unit_of(ss, s);
  s->owner = NULL;
  s->carve = s->start; /* no block of it is valid to free any more */
  ss->free_units |= 1u << unit;
  return --ss->slabs_in_use == 0;
}

/* The resident prefix of each free unit, by one mincore() of the region:
 * the allocator's count includes pages of classes above 4 KiB that the
 * program never touched, and misses what a page supplier (the pager) moved
 * in ahead of the slabs it was asked for. Without mincore, the count. */
static void free_units_resident(const struct superslab *ss, uint32_t units, uint8_t pages[UNITS_PER_SS]) {
  unsigned char vec[PAGES_PER_REGION];
  bool supplier = os_page_supplier() != NULL, look = supplier;
  for (unsigned u = 1; u < UNITS_PER_SS; u++) {
    pages[u] = (units >> u) & 1 ? ss->present_pages[u] : 0;
    look = look || pages[u];
  }
  if (!look) return;
  if (mincore((void *)ss, REGION_SIZE, vec)) {
    for (unsigned u = 1; u < UNITS_PER_SS && supplier; u++)
      if ((units >> u) & 1) pages[u] = UNIT_PAGES;
    return;
  }
  for (unsigned u = 1; u < UNITS_PER_SS; u++) {
    if (!((units >> u) & 1)) continue;
    unsigned p = UNIT_PAGES;
    while (p > 0 && !(vec[u * UNIT_PAGES + p - 1] & 1)) p--;
    pages[u] = (uint8_t)p;
  }
}

/* Adjacent free units go in one call, from the first's base to the end of
 * the last resident page (releasing absent pages costs nothing). */
size_t superslab_release_free_units(struct superslab *ss) {
  size_t released = 0;
  uint32_t units = ss->free_units & ~1u;
  uint8_t pages[UNITS_PER_SS];
  free_units_resident(ss, units, pages);
  while (units) {
    unsigned first = (unsigned)__builtin_ctz(units), last = first;
    while (last + 1 < UNITS_PER_SS && (units >> (last + 1)) & 1) last++;
    char *from = (char *)ss + (size_t)first * UNIT_SIZE, *end = from;
    for (unsigned u = first; u <= last; u++) {
      units &= ~(1u << u);
      if (pages[u]) end = (char *)ss + (size_t)u * UNIT_SIZE + (size_t)pages[u] * PAGE_SIZE;
    }
    if (end == from || os_release(from, (size_t)(end - from), OS_RELEASE_DONTNEED)) continue;
    for (unsigned u = first; u <= last; u++) {
      released += (size_t)pages[u] * PAGE_SIZE;
      if (pages[u] > ss->released_pages[u]) ss->released_pages[u] = pages[u];
      if (pages[u]) ss->lazyfree_units &= ~(1u << u);
      ss->present_pages[u] = 0;
    }
  }
  /* A run the kernel would not release (locked pages) waits, as the
   * others, for units to be freed again: no retry at every purge. */
  ss->units_free_since_ns = 0;
  return released;
}

void superslab_retire(struct superslab *ss) {
  ss->owner = NULL;
  stats_add(STAT_ss_live, -1);
  lru_put(&ss->h);
}
