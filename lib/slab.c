/* slab.c: blocks in and out of a slab. */
#include "slab.h"

#include "size_class.h"
#include "superslab.h"

void slab_init(struct slab *s, struct heap *owner, char *unit, unsigned cls) {
  uint32_t size = (uint32_t)class_to_size(cls);
  uint32_t capacity = (uint32_t)(UNIT_SIZE / size);
  s->start = unit;
  s->carve = unit;
  s->end = unit + (size_t)capacity * size;
  s->block_size = size;
  s->divides = UINT64_MAX / size + 1;
  s->cls = (uint8_t)cls;
  s->in_partial = 0;
  s->capacity = (uint16_t)capacity;
  s->used = 0;
  s->free = NULL;
  struct slab_cold *c = slab_cold(s);
  c->next = c->prev = NULL;
  atomic_store_explicit(&c->remote, 0, memory_order_relaxed);
  c->pending_next = NULL;
  atomic_thread_fence(memory_order_release);
  s->owner = owner; /* last: the slow free path tests it first */
}

unsigned slab_take(struct slab *s, unsigned n, unsigned pages, struct free_block **head, struct free_block **tail) {
  struct free_block *first = NULL, *last = NULL;
  unsigned got = 0;
  /* Recently freed blocks first: their lines are warm. */
  while (got < n && s->free) {
    struct free_block *b = s->free;
    s->free = b->next;
    if (last) last->next = b;
    else first = b;
    last = b;
    got++;
  }
  /* Never-used blocks, up to `pages` page boundaries past the first. */
  if (got == n || s->carve >= s->end) goto done;
  char *limit = (char *)(((uintptr_t)s->carve + s->block_size + (size_t)pages * PAGE_SIZE - 1) &
                         ~(uintptr_t)(PAGE_SIZE - 1));
  if (limit > s->end) limit = s->end;
  unsigned carve = (unsigned)((size_t)(limit - s->carve) / s->block_size);
  if (carve > n - got) carve = n - got;
  if (carve) superslab_supply(s, s->carve + (size_t)carve * s->block_size);
  while (carve--) {
    struct free_block *b = (struct free_block *)s->carve;
    s->carve += s->block_size;
    b->cookie = diag_cookie(b);
    if (last) last->next = b;
    else first = b;
    last = b;
    got++;
  }
done:
  if (last) last->next = NULL;
  s->used += got;
  *head = first;
  *tail = last;
  return got;
}

struct free_block *slab_take_list(struct slab *s, unsigned max, unsigned *count) {
  if (!s->free) return NULL;
  unsigned k = (unsigned)((size_t)(s->carve - s->start) / s->block_size) - s->used;
  if (k > max) return NULL;
  struct free_block *list = s->free;
  s->free = NULL;
  s->used += k;
  *count = k;
  return list;
}

bool slab_put_remote(struct slab *s, struct free_block *b) {
  _Atomic uintptr_t *remote = &slab_cold(s)->remote;
  uintptr_t old = atomic_load_explicit(remote, memory_order_relaxed);
  do {
    b->next = (struct free_block *)(old & ~(uintptr_t)1);
  } while (!atomic_compare_exchange_weak_explicit(remote, &old, (uintptr_t)b | 1,
                                                  memory_order_release, memory_order_relaxed));
  return (old & 1) == 0;
}

unsigned slab_collect_remote(struct slab *s) {
  uintptr_t list = atomic_exchange_explicit(&slab_cold(s)->remote, 0, memory_order_acquire) & ~(uintptr_t)1;
  unsigned n = 0;
  struct free_block *b = (struct free_block *)list, *last = NULL;
  for (; b; last = b, b = b->next) n++;
  if (last) {
    last->next = s->free;
    s->free = (struct free_block *)list;
    s->used -= n;
  }
  return n;
}
