/* supply.c: filling a range from the pool, else from the kernel.
 *
 * Runs on application threads (direct supply) and on the pager thread
 * (faults) alike; the only shared state is the pool, behind its lock. */
#include "config.h"

#include "supply.h"

#include <errno.h>
#include <sys/mman.h>

#define PAGE PAGE_SIZE
#define MINCORE_MAX 512 /* pages looked at per mincore() call */

/* dst is present (EEXIST): the next absent page of [dst, end), or end.
 * A page that mincore calls absent but the kernel calls present (a swap
 * entry) is skipped all the same, so this always advances. */
static uintptr_t skip_present(uintptr_t dst, uintptr_t end) {
  unsigned char vec[MINCORE_MAX];
  size_t n = (end - dst) / PAGE, i;

  if (n > MINCORE_MAX) n = MINCORE_MAX;
  if (mincore((void *)dst, n * PAGE, vec)) return dst + PAGE;
  for (i = 0; i < n && (vec[i] & 1); i++)
    ;
  return dst + (i ? i : 1) * PAGE;
}

/* The pages of a span that a hard error left unmoved are dropped rather
 * than put back: the error may be the source's, and the next take would
 * meet it again. */
static uintptr_t move_span(struct pool *p, const struct pool_span *s, uintptr_t dst, uintptr_t end, uint64_t mode,
                           struct supply_result *r) {
  uintptr_t src = s->addr;
  uint32_t left = s->pages;
  int err = 0;

  while (left && dst < end) {
    size_t n = (end - dst) / PAGE, done;
    if (n > left) n = left;
    done = uffd_move(p->uffd, dst, src, n * PAGE, mode, &err);
    dst += done;
    src += done;
    left -= (uint32_t)(done / PAGE);
    r->moved += done / PAGE;
    r->moves++;
    if (err == -EEXIST) {
      dst = skip_present(dst, end);
      err = 0;
      continue;
    }
    if (err == -EINVAL) pool_moves_refused(p);
    if (err) break;
  }
  /* EINVAL is the destination's: locked, or protected, unlike the pool
   * (the program's mlock or mprotect of its block). The pages go back. */
  if (err && left && err != -EINVAL) {
    /* Refused (locked pages), they stay: the bin's next refill meets them
     * (EEXIST) and clears them in place. */
    (void)madvise((void *)src, (size_t)left * PAGE, MADV_DONTNEED);
    left = 0;
  }
  pool_put(p, s, left);
  r->err = err;
  return dst;
}

static uintptr_t copy_range(struct pool *p, uintptr_t dst, uintptr_t end, uint64_t mode, struct supply_result *r) {
  int err = 0;

  while (dst < end) {
    size_t n = end - dst, done;
    if (n > POOL_BIN_SIZE) n = POOL_BIN_SIZE;
    done = uffd_copy(p->uffd, dst, p->zero, n, mode, &err);
    dst += done;
    r->copied += done / PAGE;
    r->copies++;
    if (err == -EEXIST) {
      dst = skip_present(dst, end);
      err = 0;
      continue;
    }
    if (err == -ENOMEM) { /* no page to copy into: the zero page at least */
      uintptr_t stop = end - dst < POOL_BIN_SIZE ? end : dst + POOL_BIN_SIZE;
      dst = supply_zeropage(p, dst, stop, mode & UFFDIO_COPY_MODE_DONTWAKE, r);
      err = r->err;
    }
    if (err) break;
  }
  r->err = err;
  return dst;
}

uintptr_t supply_zeropage(struct pool *p, uintptr_t dst, uintptr_t end, bool dontwake, struct supply_result *r) {
  uint64_t mode = dontwake ? UFFDIO_ZEROPAGE_MODE_DONTWAKE : 0;
  int err = 0;

  while (dst < end) {
    size_t done = uffd_zeropage(p->uffd, dst, end - dst, mode, &err);
    dst += done;
    r->zeroed += done / PAGE;
    if (err == -EEXIST) {
      dst = skip_present(dst, end);
      err = 0;
      continue;
    }
    if (err) break;
  }
  r->err = err;
  return dst;
}

uintptr_t supply_range(struct pool *p, bool use_pool, uintptr_t dst, uintptr_t end, bool dontwake,
                       struct supply_result *r) {
  return supply_range_from(p, use_pool ? SUPPLY_POOL_THEN_COPY : SUPPLY_COPY, dst, end, dontwake, r);
}

uintptr_t supply_range_from(struct pool *p, enum supply_source from, uintptr_t dst, uintptr_t end, bool dontwake,
                            struct supply_result *r) {
  uint64_t move_mode = dontwake ? UFFDIO_MOVE_MODE_DONTWAKE : 0;
  uint64_t copy_mode = dontwake ? UFFDIO_COPY_MODE_DONTWAKE : 0;

  r->err = 0;
  while (dst < end && !r->err) {
    struct pool_span s;
    uint32_t got = from != SUPPLY_COPY ? pool_take(p, (uint32_t)((end - dst) / PAGE), &s) : 0;
    if (!got) return from == SUPPLY_POOL ? dst : copy_range(p, dst, end, copy_mode, r);
    dst = move_span(p, &s, dst, end, move_mode, r);
  }
  /* A move refused (a locked destination, say): the rest by copy. */
  if (r->err && dst < end && from == SUPPLY_POOL_THEN_COPY) {
    r->err = 0;
    dst = copy_range(p, dst, end, copy_mode, r);
  }
  return dst;
}
