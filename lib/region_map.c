/* region_map.c: the chunk map and the list of every region. */
#include "region_map.h"

#include <errno.h>

#include "diag.h"
#include "lock.h"
#include "lru.h"
#include "options.h"
#include "os.h"
#include "stats.h"

HIDDEN LARGE_BSS _Atomic uint8_t region_map[REGION_MAP_ENTRIES];

static hk_lock_t regions_lock = HK_LOCK_INIT;
static struct region_header *regions_head;

/* A program touches a few entries of the map's 64 MiB: with huge pages
 * "always" each would make 2 MiB present (tests/test_footprint.sh). The
 * rest of .lbss, beside the map, spans less than a huge page. */
void region_map_init(void) { os_keep_small_pages((void *)region_map, sizeof region_map); }

struct region_header *region_of(const void *a) {
  uintptr_t p = (uintptr_t)a;
  unsigned kind = region_map_kind(p);
  if (kind == REGION_NONE) return NULL;
  uintptr_t base = p & ~(uintptr_t)REGION_MASK;
  if (kind > REGION_HUGE) base -= (uintptr_t)(kind - REGION_HUGE) << REGION_SHIFT;
  return (struct region_header *)base;
}

static void map_set(struct region_header *h, unsigned chunks, enum region_kind kind) {
  uintptr_t first = (uintptr_t)h >> REGION_SHIFT;
  for (unsigned i = 0; i < chunks; i++) {
    uint8_t v = kind == REGION_NONE ? REGION_NONE : i == 0 ? (uint8_t)kind : (uint8_t)(REGION_HUGE + i);
    atomic_store_explicit(&region_map[first + i], v, memory_order_release);
  }
}

void region_publish(struct region_header *h) {
  h->magic = REGION_MAGIC;
  hk_lock(&regions_lock);
  h->all_prev = NULL;
  h->all_next = regions_head;
  if (regions_head) regions_head->all_prev = h;
  regions_head = h;
  hk_unlock(&regions_lock);
  map_set(h, h->chunks, (enum region_kind)h->kind);
}

void region_withdraw(struct region_header *h) {
  map_set(h, h->chunks, REGION_NONE);
  hk_lock(&regions_lock);
  if (h->all_prev) h->all_prev->all_next = h->all_next;
  else regions_head = h->all_next;
  if (h->all_next) h->all_next->all_prev = h->all_prev;
  hk_unlock(&regions_lock);
  h->magic = 0;
}

struct region_header *region_map_new(size_t size, size_t align, enum region_kind kind, unsigned chunks,
                                     bool supply_whole) {
  size_t at = (size_t)(chunks - 1) << REGION_SHIFT;
  int saved = errno;
  size_t room = kind == REGION_HUGE ? region_growth_room(size) : 0;
  struct region_header *h = os_map_aligned_at(size, align, at, room);
  /* Out of address space (RLIMIT_AS) or of commit (overcommit off): the
   * cached regions count against both, so they go first. A retry that
   * succeeds leaves errno as the caller had it. */
  if (!h && lru_trim(1) > 0 && (h = os_map_aligned_at(size, align, at, room)) != NULL) errno = saved;
  if (!h) return NULL;
  /* Before the header's write, so that the first 2 MiB can be a huge page
   * too. Refused (no THP in the kernel), the region keeps small pages. Not
   * while a page supplier runs: the kernel would bring a huge page in at
   * the header's write, before the region is the supplier's to serve, and
   * neither would count it in the ledger. The supplier may fill it whole
   * instead (the pager's huge pages), also before the header's write: a
   * huge page moves only into a wholly absent 2 MiB. */
  const struct os_page_supplier *s = os_page_supplier();
  bool supplied = false;
  if (s && supply_whole && s->supply_region) supplied = s->supply_region(h, size);
  else if (!s && hakmem_options.huge_thp >= (kind == REGION_HUGE ? 1 : 2)) (void)os_ask_huge_pages(h, size);
  h->kind = (uint8_t)kind;
  h->pages = HAKMEM_SUPPLY_FRESH;
  h->absent_path = HAKMEM_SUPPLY_FRESH;
  h->chunks = (uint8_t)chunks;
  h->size = size;
  region_publish(h);
  /* Read after publishing: a pager that starts later finds the region
   * published and registers it itself; one that started before is seen. */
  s = os_page_supplier();
  if (s && s->region_mapped && !supplied) s->region_mapped(h, size);
  return h;
}

void region_unmap(struct region_header *h, bool recycle) {
  size_t size = h->size;
  const struct os_page_supplier *s = os_page_supplier();
  bool body_gone = !region_body_resident(h); /* released before: counted then */
  /* Policy 3: the pages go to the supplier's pool, not back to the kernel
   * (a move of the region costs less than munmap freeing them). */
  if (recycle && s && s->reclaim && lru_release_policy() == OS_RELEASE_PAGER)
    body_gone = s->reclaim((char *)h + PAGE_SIZE, size - PAGE_SIZE) == 0 || body_gone;
  if (s && s->region_unmapping) s->region_unmapping(h, size);
  region_withdraw(h);
  /* Unmapping a whole mapping splits no VMA and does not fail; if it did,
   * the range is merely leaked: it is out of the map and never reused. */
  if (os_unmap(h, size, body_gone ? PAGE_SIZE : size) != 0)
    diag_write(2, "hakmem: munmap of a region failed; its range is leaked\n");
}

void region_supply_by_faults(struct region_header *h, bool by_faults) {
  if (h->by_faults == by_faults) return;
  h->by_faults = by_faults;
  const struct os_page_supplier *s = os_page_supplier();
  if (s && s->region_serve) s->region_serve(h, h->size, !by_faults);
}

/* The size changes under the lock of region_for_each(), before the tail
 * goes: a walk must never see a range past the mapping, for once the tail
 * is unmapped a new mapping may take its place at once (the pager's start,
 * which registers every region it walks, mapped its pool there and then
 * registered the pool's zero page: its copies from it faulted for ever). */
bool region_shrink(struct region_header *h, size_t size) {
  size_t old = h->size;
  hk_lock(&regions_lock);
  h->size = size;
  hk_unlock(&regions_lock);
  if (os_unmap((char *)h + size, old - size, region_body_resident(h) ? old - size : 0) == 0) return true;
  hk_lock(&regions_lock);
  h->size = old;
  hk_unlock(&regions_lock);
  return false;
}

void region_set_kind(struct region_header *h, enum region_kind kind) {
  h->kind = (uint8_t)kind;
  atomic_store_explicit(&region_map[(uintptr_t)h >> REGION_SHIFT], (uint8_t)kind, memory_order_release);
}

void region_for_each(void (*fn)(struct region_header *h, void *arg), void *arg) {
  hk_lock(&regions_lock);
  for (struct region_header *h = regions_head; h; h = h->all_next) fn(h, arg);
  hk_unlock(&regions_lock);
}

void region_fork_prepare(void) { hk_lock_for_fork(&regions_lock); }
void region_fork_parent(void) { hk_unlock_after_fork(&regions_lock); }
void region_fork_child(void) { hk_lock_reset(&regions_lock); }
