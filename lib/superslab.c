/* superslab.c: acquiring SuperSlabs, carving their units into slabs, and
 * giving them back.
 *
 * A small SuperSlab tracks which of its units are resident. Carving an
 * absent unit makes all its 64 KiB present at once (os_supply: the pager's
 * direct supply, or MADV_POPULATE_WRITE, 900 ns a page here against 1.5-3
 * us for a fault), timed and counted in the ledger by the path its pages
 * take: fresh, refault after lazy zeroing, reuse after MADV_FREE, or
 * resident reuse. */
#include "superslab.h"

#include <errno.h>
#include <string.h>

#include "lru.h"
#include "os.h"
#include "region_map.h"
#include "slab.h"
#include "stats.h"

#define UNIT_PAGES (UNIT_SIZE / PAGE_SIZE)
#define ALL_UNITS 0xffffffffu

struct region_header *superslab_region_acquire(enum region_kind kind) {
  struct region_header *h = lru_take(REGION_SIZE, REGION_SIZE);
  if (h) {
    stats_add(STAT_ss_reused_total, 1);
    return h;
  }
  h = region_map_new(REGION_SIZE, kind, 1);
  if (!h) {
    errno = ENOMEM;
    return NULL;
  }
  stats_add(STAT_ss_mapped_total, 1);
  return h;
}

/* Units of a cached region whose pages were all resident when it was cached,
 * read from the header of the kind it had then. */
static uint32_t resident_units_of(const struct region_header *h) {
  if (h->kind == REGION_HUGE) return ALL_UNITS;
  if (h->kind == REGION_SMALL) return ((const struct superslab *)h)->present_units;
  const struct large_ss *l = (const struct large_ss *)h;
  uint32_t units = 1;
  for (unsigned u = 1; u < UNITS_PER_SS; u++) {
    uint16_t absent = (uint16_t)(l->absent_map[u / 4] >> ((u % 4) * UNIT_PAGES));
    if (absent == 0) units |= 1u << u;
  }
  return units;
}

static uint32_t lazyfree_units_of(const struct region_header *h, uint32_t resident) {
  if (h->kind == REGION_HUGE) return 0;
  if (h->kind == REGION_SMALL) return ((const struct superslab *)h)->lazyfree_units;
  return ((const struct large_ss *)h)->lazyfree ? resident & ~1u : 0;
}

struct superslab *superslab_new(struct heap *owner) {
  struct region_header *h = superslab_region_acquire(REGION_SMALL);
  if (!h) return NULL;
  uint32_t present = 1, lazyfree = 0;
  if (h->pages == HAKMEM_SUPPLY_REUSE || h->pages == HAKMEM_SUPPLY_LAZYFREE) {
    present = resident_units_of(h);
    lazyfree = h->pages == HAKMEM_SUPPLY_LAZYFREE ? present & ~1u : lazyfree_units_of(h, present);
  } else {
    h->absent_path = h->pages; /* FRESH, or REFAULT after a release */
  }
  if (h->kind != REGION_SMALL) region_set_kind(h, REGION_SMALL);
  struct superslab *ss = (struct superslab *)h;
  ss->owner = owner;
  ss->next = ss->prev = NULL;
  ss->free_units = ALL_UNITS & ~1u;
  ss->present_units = present;
  ss->lazyfree_units = lazyfree;
  ss->slabs_in_use = 0;
  memset(ss->slabs, 0, sizeof ss->slabs);
  stats_add(STAT_ss_live, 1);
  return ss;
}

/* Make the unit's pages present and count them by the path they take. */
static void supply_unit(struct superslab *ss, unsigned unit) {
  char *base = (char *)ss + (size_t)unit * UNIT_SIZE;
  uint32_t bit = 1u << unit;
  if (ss->lazyfree_units & bit) {
    ss->lazyfree_units &= ~bit;
    stats_supply(HAKMEM_SUPPLY_LAZYFREE, UNIT_PAGES, 0, 0);
  } else if (ss->present_units & bit) {
    stats_supply(HAKMEM_SUPPLY_REUSE, UNIT_PAGES, 0, 0);
  } else {
    os_supply(base, UNIT_SIZE, (enum hakmem_supply_path)ss->h.absent_path);
    ss->present_units |= bit;
  }
}

struct slab *superslab_carve_slab(struct superslab *ss, unsigned cls) {
  if (!ss->free_units) return NULL;
  unsigned unit = (unsigned)__builtin_ctz(ss->free_units);
  ss->free_units &= ~(1u << unit);
  ss->slabs_in_use++;
  supply_unit(ss, unit);
  struct slab *s = &ss->slabs[unit];
  slab_init(s, ss->owner, (char *)ss + (size_t)unit * UNIT_SIZE, cls);
  stats_add(STAT_slabs_carved, 1);
  return s;
}

bool superslab_return_slab(struct superslab *ss, struct slab *s) {
  unsigned unit = (unsigned)(s - ss->slabs);
  s->owner = NULL;
  s->carve = s->start; /* no block of it is valid to free any more */
  ss->free_units |= 1u << unit;
  return --ss->slabs_in_use == 0;
}

void superslab_retire(struct superslab *ss) {
  ss->owner = NULL;
  stats_add(STAT_ss_live, -1);
  lru_put(&ss->h);
}
