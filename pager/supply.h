/* supply.h: making a range of a registered region present with zeroed
 * pages, for a fault or for direct supply.
 *
 * Pages come from the pool by UFFDIO_MOVE in as few calls as the pool's
 * spans allow (each move costs a TLB flush on every CPU running the
 * process, about 16 us once two threads run, measured on the development
 * machine), else from the
 * kernel by UFFDIO_COPY of the zero source, else by UFFDIO_ZEROPAGE.
 * Pages already present are skipped (EEXIST, then mincore() to find the
 * next absent one), so a range may be supplied twice without harm. */
#ifndef HAKMEM_PAGER_SUPPLY_H
#define HAKMEM_PAGER_SUPPLY_H

#include <stdbool.h>
#include <stdint.h>

#include "pool.h"

struct supply_result {
  uint64_t moved, copied, zeroed; /* pages, by the path that supplied them */
  uint64_t moves, copies;         /* ioctls issued */
  int err;                        /* the -errno that stopped it, or 0 */
};

enum supply_source {
  SUPPLY_POOL_THEN_COPY, /* the pool, then the kernel for the rest */
  SUPPLY_POOL,           /* the pool only: stop where it runs dry */
  SUPPLY_COPY,           /* the kernel only (no UFFDIO_MOVE) */
};

uintptr_t supply_range_from(struct pool *p, enum supply_source from, uintptr_t dst, uintptr_t end, bool dontwake,
                            struct supply_result *r);

/* Supply the absent pages of [dst, end) (page-aligned). `use_pool`: take
 * pages from the pool (UFFDIO_MOVE negotiated); `dontwake`: leave the
 * faulting threads asleep (the caller wakes them). Returns how far the
 * range is done: `end` unless r->err. */
uintptr_t supply_range(struct pool *p, bool use_pool, uintptr_t dst, uintptr_t end, bool dontwake,
                       struct supply_result *r);

/* Map the shared zero page at the absent pages of [dst, end): what the
 * kernel itself does on a read fault of never-written memory, for a whole
 * chunk in one call. A later write faults again, the kernel's way. */
uintptr_t supply_zeropage(struct pool *p, uintptr_t dst, uintptr_t end, bool dontwake, struct supply_result *r);

#endif /* HAKMEM_PAGER_SUPPLY_H */
