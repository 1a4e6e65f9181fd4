/* lru.h: the cache of empty regions (SuperSlabs and huge blocks).
 *
 * Bounded by count (HAKMEM_LRU_MAX), bytes (HAKMEM_LRU_MAX_MB) and age
 * (HAKMEM_LRU_AGE_MS); the least recently cached region is unmapped first.
 * HAKMEM_SS_LAZY_ZERO decides what happens to the pages of a region that
 * enters: kept, MADV_DONTNEED, MADV_FREE, or handed to the pager. The
 * release is deferred and batched: a region taken again soon after it was
 * cached keeps its pages and pays neither the madvise nor the refaults;
 * the ones that stay are released, oldest first, once more than
 * LRU_PENDING_MAX wait or one has waited LRU_PENDING_NS. */
#ifndef HAKMEM_LRU_H
#define HAKMEM_LRU_H

#include <stddef.h>

#include "types.h"

#define LRU_PENDING_MAX 4
#define LRU_PENDING_NS (50u * 1000u * 1000u)

/* Cache an empty region. Its header stays valid; the rest of its pages may
 * be released. */
void lru_put(struct region_header *h);

/* Take the most recently cached region of min..max bytes, or NULL. Its
 * h->pages says what state the pages after its header are in. */
struct region_header *lru_take(size_t min, size_t max);

/* Release every pending region, and with `all` unmap every cached one.
 * Returns the bytes given back to the kernel. */
size_t lru_trim(int all);

void lru_fork_prepare(void);
void lru_fork_parent(void);
void lru_fork_child(void);

#endif /* HAKMEM_LRU_H */
