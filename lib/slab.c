/* slab.c: blocks in and out of a slab. */
#include "slab.h"

#include "region_map.h"
#include "size_class.h"
#include "superslab.h"

_Static_assert(REGION_MAP_BITS < REMOTE_COUNT_SHIFT, "a block's address fits below the remote count");
_Static_assert(SMALL_MAX <= UINT16_MAX, "a block size fits in a slab's block_size");
_Static_assert(UNIT_SIZE / 16 < ((uintptr_t)1 << (64 - REMOTE_COUNT_SHIFT)), "a slab's blocks fit in the remote count");

void slab_init(struct slab *s, struct heap *owner, char *unit, unsigned cls) {
  uint32_t size = (uint32_t)class_to_size(cls);
  uint32_t capacity = (uint32_t)(UNIT_SIZE / size);
  s->start = unit;
  s->carve = unit;
  s->end = unit + (size_t)capacity * size;
  s->block_size = (uint16_t)size;
  s->divides = UINT64_MAX / size + 1;
  s->bin_key = tcache_slab_key(cls);
  s->cls = (uint8_t)cls;
  s->in_partial = 0;
  s->capacity = (uint16_t)capacity;
  s->used = 0;
  s->parked = 0;
  s->free = NULL;
  struct slab_cold *c = slab_cold(s);
  c->next = c->prev = NULL;
  atomic_store_explicit(&c->remote, 0, memory_order_relaxed);
  c->pending_next = NULL;
  atomic_thread_fence(memory_order_release);
  s->owner = owner; /* last: the slow free path tests it first */
}

static void slab_unpark_for(struct slab *s, unsigned blocks);

unsigned slab_take(struct slab *s, unsigned n, unsigned pages, struct free_block **head, struct free_block **tail) {
  struct free_block *first = NULL, *last = NULL;
  unsigned got = 0;
  /* Recently freed blocks first: their lines are warm; then those of
   * parked pages, which are taken back before fresh pages are touched. */
  while (got < n && (s->free || s->parked)) {
    if (!s->free) {
      slab_unpark_for(s, n - got);
      continue;
    }
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
  if (!s->free || s->parked) return NULL; /* parked blocks are free but not on the list */
  unsigned k = (unsigned)((size_t)(s->carve - s->start) / s->block_size) - s->used;
  if (k > max) return NULL;
  struct free_block *list = s->free;
  s->free = NULL;
  s->used += k;
  *count = k;
  return list;
}

bool slab_put_remote_chain(struct slab *s, struct free_block *head, struct free_block *tail, unsigned n) {
  _Atomic uintptr_t *remote = &slab_cold(s)->remote;
  uintptr_t old = atomic_load_explicit(remote, memory_order_relaxed), count;
  do {
    tail->next = remote_head(old);
    count = remote_count(old) + n;
  } while (!atomic_compare_exchange_weak_explicit(remote, &old, count << REMOTE_COUNT_SHIFT | (uintptr_t)head | 1,
                                                  memory_order_release, memory_order_relaxed));
  if (old & 1) return false;
  /* The first chain of the list ends it. The fence orders the tail's store
   * after the owner's read of the last one (before its exchange emptied
   * the list); the caller's push onto the pending list (a release)
   * publishes it to the owner's next collection. */
  atomic_thread_fence(memory_order_acquire);
  slab_cold(s)->remote_tail = tail;
  return true;
}

unsigned slab_collect_remote(struct slab *s, unsigned *warm) {
  struct slab_cold *c = slab_cold(s);
  /* Read before the exchange, which lets a free queue s again and set the
   * next list's tail (the free's CAS acquires what the exchange releases). */
  struct free_block *tail = c->remote_tail;
  uintptr_t word = atomic_exchange_explicit(&c->remote, 0, memory_order_acq_rel);
  struct free_block *list = remote_head(word);
  unsigned n = (unsigned)remote_count(word);
  if (!list) return 0;
  if (n <= *warm) {
    *warm -= n;
    for (tail = list; tail->next; tail = tail->next) {}
  }
  tail->next = s->free;
  s->free = list;
  s->used -= n;
  return n;
}

/* The blocks of s that start on page `page` and have been carved:
 * [*first, *last], false when none does. */
static bool blocks_starting_on(const struct slab *s, unsigned page, size_t *first, size_t *last) {
  size_t from = (size_t)page * PAGE_SIZE, to = from + PAGE_SIZE;
  size_t carved = (size_t)(s->carve - s->start);
  if (to > carved) to = carved;
  *first = (from + s->block_size - 1) / s->block_size;
  if (*first * s->block_size >= to) return false;
  *last = (to - 1) / s->block_size;
  return true;
}

uint16_t slab_parkable_pages(const struct slab *s) {
  uint64_t free_map[UNIT_SIZE / 16 / 64] = { 0 }; /* a bit per block of the smallest class */
  for (const struct free_block *b = s->free; b; b = b->next) {
    size_t i = (size_t)((const char *)b - s->start) / s->block_size;
    if (i >= s->capacity) return 0; /* a list the program overwrote: give nothing back */
    free_map[i / 64] |= (uint64_t)1 << (i % 64);
  }
  uint16_t pages = 0;
  unsigned whole = (unsigned)((size_t)(s->carve - s->start) / PAGE_SIZE);
  for (unsigned page = 0; page < whole; page++) {
    /* Every block that overlaps the page: from the one holding its first
     * byte to the one holding its last. */
    size_t i = (size_t)page * PAGE_SIZE / s->block_size;
    size_t last = ((size_t)(page + 1) * PAGE_SIZE - 1) / s->block_size;
    while (i <= last && (free_map[i / 64] >> (i % 64)) & 1) i++;
    if (i > last) pages |= (uint16_t)(1u << page);
  }
  return pages;
}

void slab_park(struct slab *s, uint16_t pages) {
  struct free_block *keep = NULL, **tail = &keep;
  s->parked |= pages;
  for (struct free_block *b = s->free; b; b = b->next) {
    if (slab_block_parked(s, b)) continue;
    *tail = b;
    tail = &b->next;
  }
  *tail = NULL;
  s->free = keep;
  if (s->parked) s->divides = 0;
}

void slab_unpark(struct slab *s, unsigned page) {
  size_t first, last;
  /* From the last down: the list comes out in address order. */
  if (blocks_starting_on(s, page, &first, &last)) {
    for (size_t i = last + 1; i-- > first;) {
      struct free_block *b = (struct free_block *)(s->start + i * s->block_size);
      b->cookie = diag_cookie(b);
      b->next = s->free;
      s->free = b;
    }
  }
  /* Only now does the page stop counting as parked, and the fast path
   * open: a second free from another thread meanwhile finds the block
   * parked, or its cookie set. */
  atomic_thread_fence(memory_order_release);
  s->parked &= (uint16_t)~(1u << page);
  if (!s->parked) s->divides = UINT64_MAX / s->block_size + 1;
}

/* Unpark the run of parked pages from the lowest on, as many as hold
 * `blocks` blocks, supplied again in one call. */
static void slab_unpark_for(struct slab *s, unsigned blocks) {
  unsigned first = (unsigned)__builtin_ctz(s->parked), end = first + 1;
  unsigned want = (unsigned)(((size_t)blocks * s->block_size + PAGE_SIZE - 1) / PAGE_SIZE);
  while (end < UNIT_PAGES && end - first < want && (s->parked >> end) & 1) end++;
  superslab_refault_pages(s, first, end);
  for (unsigned page = end; page-- > first;) slab_unpark(s, page);
}
