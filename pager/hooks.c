/* hooks.c: the page-supplier hooks the allocator calls (os.h).
 *
 * They run on application threads, on the allocator's slow paths and
 * possibly under its locks: none calls malloc, none but hook_trim (for
 * malloc_trim, which waits up to 200 ms for the pager's trim in flight)
 * blocks on anything but the pool's short lock, none touches the pages of
 * the ranges it is given (it only moves pages in or out of them). */
#include "config.h"

#include <errno.h>

#include "internal.h"
#include "os.h"
#include "readahead.h"
#include "region_map.h"
#include "stats.h"
#include "types.h"

/* Which 64 KiB slabs of a 2 MiB unit this pager supplied: one word per
 * unit in a direct-mapped table, the unit's tag in the high half and a bit
 * per slab in the low half. A slab grows a page or a few at a time
 * (superslab_supply), and every call after the first finds its slab here
 * and returns at once, without a failed move and a mincore(). The table is
 * only a hint: a wrong "supplied" (a collision of tags, or a region whose
 * pages were released by MADV_DONTNEED since) leaves absent pages that
 * fault, and the pager serves them. Reclaim and unmapping clear a unit. */
#define SLAB_SHIFT 16
#define SUPPLIED_SLOTS 4096
static LARGE_BSS _Atomic uint64_t supplied[SUPPLIED_SLOTS];

static _Atomic uint64_t *supplied_slot(uintptr_t addr, uint64_t *tag) {
  uintptr_t unit = addr >> 21;
  *tag = (uint64_t)(unit & 0xffffffffu) << 32;
  return &supplied[unit % SUPPLIED_SLOTS];
}

/* The bits of the slabs wholly inside [lo, hi), both in one unit. */
static uint32_t slab_bits(uintptr_t lo, uintptr_t hi) {
  uintptr_t unit = lo & ~(PAGER_UNIT - 1);
  unsigned first = (unsigned)((lo - unit + (1u << SLAB_SHIFT) - 1) >> SLAB_SHIFT);
  unsigned last = (unsigned)((hi - unit) >> SLAB_SHIFT); /* exclusive */
  if (last <= first) return 0;
  return (uint32_t)((((uint64_t)1 << last) - 1) & ~(((uint64_t)1 << first) - 1));
}

/* Was the slab holding [a, end) supplied, whole? */
static bool supplied_has(uintptr_t a, uintptr_t end) {
  uint64_t tag, v;
  uintptr_t slab = a & ~(((uintptr_t)1 << SLAB_SHIFT) - 1);
  uint32_t need = slab_bits(slab, slab + ((uintptr_t)1 << SLAB_SHIFT));
  if (end > slab + ((uintptr_t)1 << SLAB_SHIFT)) return false;
  v = atomic_load_explicit(supplied_slot(a, &tag), memory_order_relaxed);
  return (v & 0xffffffff00000000ull) == tag && ((uint32_t)v & need) == need;
}

static void supplied_add(uintptr_t lo, uintptr_t hi) {
  uint64_t tag, v, nv;
  _Atomic uint64_t *slot = supplied_slot(lo, &tag);
  uint32_t bits = slab_bits(lo & ~(((uintptr_t)1 << SLAB_SHIFT) - 1), hi);
  if (!bits || hi - 1 > (lo | (PAGER_UNIT - 1))) return;
  v = atomic_load_explicit(slot, memory_order_relaxed);
  do {
    nv = (v & 0xffffffff00000000ull) == tag ? v | bits : tag | bits;
  } while (!atomic_compare_exchange_weak_explicit(slot, &v, nv, memory_order_relaxed, memory_order_relaxed));
}

static void supplied_clear(uintptr_t base, size_t len) {
  for (uintptr_t u = base & ~(PAGER_UNIT - 1); u < base + len; u += PAGER_UNIT) {
    uint64_t tag, v;
    _Atomic uint64_t *slot = supplied_slot(u, &tag);
    v = atomic_load_explicit(slot, memory_order_relaxed);
    if ((v & 0xffffffff00000000ull) == tag) atomic_compare_exchange_strong(slot, &v, 0);
  }
}

/* Direct supply moves the pool's pages into the slab and ahead of it, a
 * fault chunk from the slab's start (2 MiB by default: the rest of the
 * SuperSlab) within its 2 MiB unit. The allocator carves a SuperSlab's
 * slabs in order, and each UFFDIO_MOVE call flushes the TLB on every CPU
 * running the process (about 16 us once two threads run), so one large
 * move beats several small ones. grow's first round, direct supply by the
 * ledger, ns/page, 3-4 runs each: one slab ahead, doubling per slab
 * supplied, 307-425; 8 slabs 228-266; 16 slabs 211-256; the unit 159-203.
 * Random Mixed's RSS with the pager stays 5.7 MB. Pages supplied ahead
 * read as zero, as absent ones do, and the map above remembers them; only
 * what the pool holds goes ahead (hook_supply). The extension stops at
 * the end of the region (pager_end_of): a move past it would fail, and the
 * pool pages of the failed span would be dropped. */
static uintptr_t supply_end(uintptr_t addr, uintptr_t end) {
  uintptr_t unit_end = pager_end_of(addr);
  uintptr_t ext = (addr & ~(((uintptr_t)1 << SLAB_SHIFT) - 1)) + pager.cfg.chunk;
  if (end >= unit_end) return end;
  if (ext < end) ext = end;
  return ext < unit_end ? ext : unit_end;
}

static void hook_region_mapped(void *base, size_t len) {
  if (!pager_enter()) return;
  /* A range that cannot be registered (another uffd holds it, ENOMEM)
   * simply faults the kernel's way. */
  pager_end_set((uintptr_t)base + len, true);
  uffd_register(&pager.uffd, (uintptr_t)base, len, NULL);
  pager_leave();
}

/* Before munmap (of a region, or of the tail a cut leaves), and before
 * mremap: the registration does not follow a moved range (no
 * UFFD_FEATURE_EVENT_REMAP), region_mapped() registers the new one.
 * Unregistering also wakes any thread waiting in the range. */
static void hook_region_unmapping(void *base, size_t len) {
  if (!pager_enter()) return;
  supplied_clear((uintptr_t)base, len);
  pager_end_set((uintptr_t)base + len, false);
  pager_end_set((uintptr_t)base, true); /* a tail cut off: the region ends at base */
  uffd_unregister(&pager.uffd, (uintptr_t)base, len);
  pager_leave();
}

/* A region the allocator leaves to the kernel's faults is unregistered, so
 * that its faults are the kernel's; one it serves again is registered. */
static void hook_region_serve(void *base, size_t len, bool serve) {
  if (!pager_enter()) return;
  if (serve) {
    uffd_register(&pager.uffd, (uintptr_t)base, len, NULL);
  } else {
    supplied_clear((uintptr_t)base, len);
    uffd_unregister(&pager.uffd, (uintptr_t)base, len);
  }
  pager_leave();
}

/* A new SuperSlab, mapped and untouched (region_map_new): a huge page of
 * the stash, moved in whole before its header is written, or nothing. A
 * move goes only into a registered range, and a registered range that
 * stays absent would send the header's write to the pager before the
 * region is published: it is registered only for the move, and left
 * unregistered when nothing moved (region_mapped() registers it after). */
static bool hook_supply_region(void *base, size_t len) {
  bool whole = false;
  uint64_t t0;
  int slot;

  if (!pager_enter()) return false;
  if (!pager.cfg.direct || len != PAGER_UNIT) goto out;
  t0 = os_now_ns();
  slot = stash_claim(&pager.stash);
  if (slot < 0) goto out_kick;
  if (uffd_register(&pager.uffd, (uintptr_t)base, len, NULL) != 0) {
    stash_unclaim(&pager.stash, slot);
    goto out_kick;
  }
  whole = stash_move_out(&pager.stash, slot, &pager.uffd, (uintptr_t)base);
  if (whole) {
    stats_supply(HAKMEM_SUPPLY_DIRECT, len / PAGE_SIZE, 1, os_now_ns() - t0);
    supplied_add((uintptr_t)base, (uintptr_t)base + len);
  } else {
    uffd_unregister(&pager.uffd, (uintptr_t)base, len);
  }
out_kick:
  if (stash_wants_fill(&pager.stash)) pager_kick();
out:
  pager_leave();
  return whole;
}

static void account(const struct supply_result *r, enum hakmem_supply_path moved_path, uint64_t ns) {
  uint64_t pages = r->moved + r->copied + r->zeroed;
  if (!pages) return;
  if (r->moved) stats_supply(moved_path, r->moved, r->moves, ns * r->moved / pages);
  if (r->copied) stats_supply(HAKMEM_SUPPLY_UFFD_COPY, r->copied, r->copies, ns * r->copied / pages);
  if (r->zeroed) stats_supply(HAKMEM_SUPPLY_UFFD_ZERO, r->zeroed, 1, ns * r->zeroed / pages);
}

static size_t hook_supply(void *addr, size_t len) {
  struct supply_result r = { 0 };
  uintptr_t a = (uintptr_t)addr, end = a + len, done;
  size_t ret = 0;
  uint64_t t0;

  if (!pager_enter()) return 0;
  /* Without direct supply the pages come by the faults this pager serves
   * and counts: declining would have the allocator populate them, the
   * populate's faults come here all the same, and the ledger count them
   * twice (fresh and UFFDIO_MOVE). */
  if (!pager.cfg.direct) {
    ret = len;
    goto out;
  }
  pager_expect_supply();
  if (supplied_has(a, end)) {
    ret = len;
    goto out;
  }
  t0 = os_now_ns();
  if (region_map_kind(a) != REGION_SMALL) {
    /* A huge block's body (large SuperSlabs are left to the kernel's
     * faults: superslab.c): its first window now, if the pool
     * holds it; the rest faults in as the program writes on, in windows
     * that grow while it writes in order (readahead.h). */
    uintptr_t first = a + readahead_first_window() * PAGE_SIZE;
    done = pager.use_pool ? supply_range_from(&pager.pool, SUPPLY_POOL, a, first < end ? first : end, false, &r) : a;
    readahead_note(a, done);
  } else {
    /* Ahead only from the pool; what the program needs now, from the
     * kernel by COPY where the pool runs dry. */
    done = pager.use_pool ? supply_range_from(&pager.pool, SUPPLY_POOL, a, supply_end(a, end), false, &r) : a;
    if (done < end) done = supply_range(&pager.pool, pager.use_pool, done, end, false, &r);
  }
  account(&r, HAKMEM_SUPPLY_DIRECT, os_now_ns() - t0);
  supplied_add(a, done);
  ret = done >= end ? len : done - a;
  if (pool_wants_refill(&pager.pool)) pager_kick();
out:
  pager_leave();
  return ret;
}

static int hook_reclaim(void *addr, size_t len) {
  uint64_t moved = 0;
  int err;

  err = -ENODEV;
  if (!pager_enter()) goto out;
  err = -EOPNOTSUPP;
  if (!pager.use_pool) goto out_leave;
  supplied_clear((uintptr_t)addr, len);
  err = pool_reclaim(&pager.pool, (uintptr_t)addr, len, &moved);
  if (moved) {
    stats_add(STAT_pager_recycled, (int64_t)moved);
    pager_kick();
  }
out_leave:
  pager_leave();
out:
  return err;
}

/* malloc_trim: the pool, but for one bin's worth, and the stash back to
 * the kernel.
 * The pager thread counts the bins it was giving back itself. */
static size_t hook_trim(void) {
  uint64_t pages = 0, waited = 0;

  if (!pager_enter()) return 0;
  if (pager.use_pool) pages = pool_shrink(&pager.pool, &waited);
  pages += stash_shrink(&pager.stash);
  stats_add(STAT_pager_returned, (int64_t)pages);
  pager_leave();
  return (size_t)(pages + waited) * PAGE_SIZE;
}

const struct os_page_supplier pager_hooks = {
  .region_mapped = hook_region_mapped,
  .region_unmapping = hook_region_unmapping,
  .supply_region = hook_supply_region,
  .supply = hook_supply,
  .reclaim = hook_reclaim,
  .region_serve = hook_region_serve,
  .trim = hook_trim,
};
