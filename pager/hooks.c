/* hooks.c: the page-supplier hooks the allocator calls (os.h).
 *
 * They run on application threads, on the allocator's slow paths and
 * possibly under its locks: none calls malloc, none blocks on anything but
 * the pool's short lock, none touches the pages of the ranges it is given
 * (it only moves pages in or out of them). */
#include "config.h"

#include <errno.h>

#include "internal.h"
#include "os.h"
#include "stats.h"

static void hook_region_mapped(void *base, size_t len) {
  if (!pager_enter()) return;
  /* A range that cannot be registered (another uffd holds it, ENOMEM)
   * simply faults the kernel's way. */
  uffd_register(&pager.uffd, (uintptr_t)base, len, NULL);
  pager_leave();
}

/* Before munmap, and before mremap: the registration does not follow a
 * moved range (no UFFD_FEATURE_EVENT_REMAP), region_mapped() registers the
 * new one. Unregistering also wakes any thread waiting in the range. */
static void hook_region_unmapping(void *base, size_t len) {
  if (!pager_enter()) return;
  uffd_unregister(&pager.uffd, (uintptr_t)base, len);
  pager_leave();
}

/* Direct supply extends the range to the fault chunk, within its 2 MiB
 * unit: the allocator carves slabs in order, so the next slabs' pages come
 * with this move, and one TLB flush serves several slabs. Pages supplied
 * ahead are zero, as absent ones read; the next supply finds them present
 * (EEXIST) and moves nothing. */
static uintptr_t supply_end(uintptr_t addr, uintptr_t end) {
  uintptr_t chunk = pager.cfg.chunk, unit_end = (addr & ~(PAGER_UNIT - 1)) + PAGER_UNIT;
  uintptr_t ext = (end + chunk - 1) & ~(chunk - 1);
  if (end > unit_end) return end;
  return ext < unit_end ? ext : unit_end;
}

/* The range this thread last supplied ahead. A slab grows a page or a few
 * at a time (superslab_supply), and each call that falls inside this range
 * returns at once instead of paying a failed move and a mincore(). A stale
 * range (its region released and reused since) costs no correctness: its
 * absent pages fault and the pager serves them. The first call for a slab
 * (at a 64 KiB boundary) always does the real work, which refreshes it. */
#define SLAB_ALIGN ((uintptr_t)64 << 10)
static __thread struct {
  uintptr_t lo, hi;
} ahead __attribute__((tls_model("initial-exec")));

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
  if (!pager.cfg.direct) goto out;
  if ((a & (SLAB_ALIGN - 1)) && a >= ahead.lo && end <= ahead.hi) {
    ret = len;
    goto out;
  }
  t0 = os_now_ns();
  done = supply_range(&pager.pool, pager.use_pool, a, supply_end(a, end), false, &r);
  if (r.err && done < end) /* the extension may pass the mapping's end */
    done = supply_range(&pager.pool, pager.use_pool, done, end, false, &r);
  account(&r, HAKMEM_SUPPLY_DIRECT, os_now_ns() - t0);
  ahead.lo = a;
  ahead.hi = done;
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

const struct os_page_supplier pager_hooks = {
  .region_mapped = hook_region_mapped,
  .region_unmapping = hook_region_unmapping,
  .supply = hook_supply,
  .reclaim = hook_reclaim,
};
