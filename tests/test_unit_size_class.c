/* Description: unit tests of lib/size_class.h, the tables that map request
 * sizes to size classes and back. Every size 0..SMALL_MAX maps to the
 * smallest class that holds it; class sizes increase, are multiples of 16
 * and include every power of two from 16 to 32 KiB (blocks of those classes
 * are aligned to their size, which aligned allocation relies on); the
 * internal waste is bounded; class_cache_max is a slab's worth (at least 4) and the
 * thread cache's bins take their bounds from it; malloc_usable_size of a
 * small block is the size of its class. The table's stride leads malloc,
 * and a slab's key (an offset from the thread pointer) leads free in any
 * thread, to the bin of the class. */
#include <criterion/criterion.h>
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>

#include "size_class.h"
#include "tcache.h"
#include "types.h"
#include "unit_helpers.h"

Test(size_class, every_size_maps_to_the_smallest_class_that_holds_it)
{
  for (size_t size = 0; size <= SMALL_MAX; size++) {
    unsigned cls = size_to_class(size);
    cr_assert_lt(cls, CLASS_COUNT, "size %zu maps to class %u of %d", size, cls, CLASS_COUNT);
    size_t need = size ? size : 1;
    cr_assert_geq(class_to_size(cls), need, "size %zu maps to class %u of %zu bytes", size, cls,
                  class_to_size(cls));
    if (cls > 0)
      cr_assert_lt(class_to_size(cls - 1), need,
                   "size %zu maps to class %u (%zu B) though class %u (%zu B) holds it", size, cls,
                   class_to_size(cls), cls - 1, class_to_size(cls - 1));
  }
}

Test(size_class, the_mapping_is_monotonic_and_covers_every_class)
{
  unsigned prev = 0;
  unsigned seen[CLASS_COUNT] = { 0 };
  for (size_t size = 0; size <= SMALL_MAX; size++) {
    unsigned cls = size_to_class(size);
    cr_assert_geq(cls, prev, "size %zu maps to class %u below the class %u of size %zu", size, cls, prev,
                  size - 1);
    cr_assert_leq(cls, prev + 1, "size %zu skips from class %u to %u", size, prev, cls);
    prev = cls;
    seen[cls]++;
  }
  for (unsigned c = 0; c < CLASS_COUNT; c++)
    cr_assert_gt(seen[c], 0, "no size maps to class %u (%zu B)", c, class_to_size(c));
  cr_assert_eq(size_to_class(SMALL_MAX), CLASS_COUNT - 1);
}

Test(size_class, class_sizes_increase_in_multiples_of_16_from_16_to_32k)
{
  cr_assert_eq(class_to_size(0), 16);
  cr_assert_eq(class_to_size(CLASS_COUNT - 1), SMALL_MAX);
  for (unsigned c = 0; c < CLASS_COUNT; c++) {
    size_t s = class_to_size(c);
    cr_assert_eq(s % 16, 0, "class %u has %zu bytes, not a multiple of 16", c, s);
    cr_assert_eq(size_to_class(s), c, "the size of class %u (%zu) maps to class %u", c, s,
                 size_to_class(s));
    if (c > 0)
      cr_assert_gt(s, class_to_size(c - 1), "class %u (%zu B) after class %u (%zu B)", c, s, c - 1,
                   class_to_size(c - 1));
    if (c + 1 < CLASS_COUNT)
      cr_assert_eq(size_to_class(s + 1), c + 1, "one byte past class %u maps to class %u", c,
                   size_to_class(s + 1));
  }
}

Test(size_class, table_agrees_with_the_class_sizes)
{
  /* The table serves every small size: (size + 15) >> 4 indexes it, and
   * each entry is the smallest class that holds the bucket's sizes. */
  for (size_t size = 1; size <= SMALL_MAX; size++) {
    unsigned cls = size_class_table[(size + 15) >> 4] * CLASS_TABLE_SCALE / CLASS_STRIDE;
    cr_assert_geq(class_to_size(cls), size, "table entry for %zu: class %u (%zu B)", size, cls,
                  class_to_size(cls));
    cr_assert(cls == 0 || class_to_size(cls - 1) < size, "table entry for %zu: class %u, class %u holds it", size,
              cls, cls - 1);
  }
  cr_assert_eq(size_to_class(1025), size_to_class(1024) + 1);
  cr_assert_eq(class_to_size(size_to_class(1024)), 1024);
  cr_assert_eq(size_to_class(SMALL_MAX), CLASS_COUNT - 1);
}

/* The smallest class that holds size (0 counts as 1), from the class
 * sizes alone. */
static unsigned smallest_class_holding(size_t size) {
  unsigned c = 0;
  while (class_to_size(c) < (size == 0 ? 1 : size)) c++;
  return c;
}

Test(size_class, the_table_leads_malloc_to_the_bin_of_the_class)
{
  /* malloc goes from a size to its bin by size_to_class_stride() alone
   * (tcache.h): the table's byte, scaled in the bin's address. */
  for (size_t size = 0; size <= SMALL_MAX; size++) {
    unsigned c = smallest_class_holding(size);
    cr_assert_eq(tcache_bin_of_key(tcache_key_of_stride(size_to_class_stride(size))), &hk_tcache.bins[c],
                 "size %zu: not the bin of class %u", size, c);
  }
}

/* free goes from a slab to its class's bin by the key the slab keeps, an
 * offset from the thread pointer: the keys one thread computed lead every
 * thread to its own bins. */
struct slab_keys {
  int32_t key[CLASS_COUNT];
  bool all_to_own_bins;
};

static void *follow_slab_keys(void *arg)
{
  struct slab_keys *k = arg;
  k->all_to_own_bins = true;
  for (unsigned c = 0; c < CLASS_COUNT; c++)
    k->all_to_own_bins &= tcache_bin_of_slab_key(k->key[c]) == &hk_tcache.bins[c];
  return NULL;
}

Test(size_class, a_slabs_key_leads_free_to_the_bin_of_its_class_in_every_thread)
{
  struct slab_keys k;
  for (unsigned c = 0; c < CLASS_COUNT; c++)
    k.key[c] = tcache_slab_key(c);
  follow_slab_keys(&k);
  cr_assert(k.all_to_own_bins, "a slab key led this thread elsewhere than its bin");
  run_thread(follow_slab_keys, &k);
  cr_assert(k.all_to_own_bins, "a key computed in one thread led another elsewhere than its own bin");
  void *p = malloc(opaque_size(100));
  struct slab *s = slab_of(p);
  cr_assert_eq(s->bin_key, k.key[s->cls]);
  free(p);
}

/* Waste: under 16 bytes up to 128 B (16 B steps), and above that a step is
 * a quarter of the power of two below, so the waste stays under a fifth of
 * the block. The worst cases sit just above a class boundary. */
Test(size_class, waste_is_bounded)
{
  size_t worst_size = 0;
  double worst = 0;
  for (size_t size = 1; size <= SMALL_MAX; size++) {
    size_t cs = class_to_size(size_to_class(size));
    size_t waste = cs - size;
    if (size <= 128) {
      cr_assert_lt(waste, 16, "size %zu wastes %zu bytes in a %zu B class", size, waste, cs);
    } else {
      cr_assert_lt(waste * 5, cs, "size %zu wastes %zu bytes of a %zu B block (%.1f%%)", size, waste, cs,
                   100.0 * (double)waste / (double)cs);
      double w = (double)waste / (double)cs;
      if (w > worst) {
        worst = w;
        worst_size = size;
      }
    }
  }
  cr_log_info("worst waste above 128 B: %.1f%% of the block, at %zu B", 100 * worst, worst_size);
  cr_assert_gt(worst_size, 128);
}

Test(size_class, powers_of_two_are_classes)
{
  for (size_t p = 16; p <= SMALL_MAX; p <<= 1) {
    unsigned cls = size_to_class(p);
    cr_assert_eq(class_to_size(cls), p, "the power of two %zu maps to a class of %zu bytes", p,
                 class_to_size(cls));
  }
}

/* Slabs start on 64 KiB boundaries, so each block of a power-of-two class
 * is aligned to its size. */
Test(size_class, blocks_of_power_of_two_classes_are_aligned_to_their_size)
{
  enum { N = 8 };
  for (size_t p = 16; p <= SMALL_MAX; p <<= 1) {
    void *blocks[N];
    for (int i = 0; i < N; i++) {
      blocks[i] = malloc(opaque_size(p));
      cr_assert_not_null(blocks[i]);
      cr_assert_eq((uintptr_t)blocks[i] % p, 0, "block %p of the %zu B class is not aligned to it",
                   blocks[i], p);
    }
    for (int i = 0; i < N; i++)
      free(opaque(blocks[i]));
  }
}

/* Borrowing from the next class wastes at most a quarter more, and never
 * happens to a power-of-two class. */
Test(size_class, only_classes_with_a_close_neighbour_borrow)
{
  unsigned borrowers = 0;
  for (unsigned c = 0; c < CLASS_COUNT; c++) {
    size_t size = class_to_size(c);
    bool pow2 = (size & (size - 1)) == 0;
    if (pow2 || c + 1 == CLASS_COUNT) {
      cr_assert_not(class_may_borrow(c), "class %u (%zu B) borrows", c, size);
      continue;
    }
    bool close = class_to_size(c + 1) * 4 <= size * 5;
    cr_assert_eq(class_may_borrow(c), close, "class %u (%zu B), next %zu B", c, size, class_to_size(c + 1));
    borrowers += close;
  }
  cr_assert(class_may_borrow(size_to_class(320)) && class_may_borrow(size_to_class(112)));
  cr_assert_not(class_may_borrow(size_to_class(48)), "48 B would take a 64 B block: a third more");
  cr_assert_geq(borrowers, 20);
}

Test(size_class, class_cache_max_is_bounded_and_follows_the_slab)
{
  for (unsigned c = 0; c < CLASS_COUNT; c++) {
    uint32_t max = class_cache_max(c);
    uint32_t per_unit = (uint32_t)(UNIT_SIZE / class_to_size(c));
    cr_assert_geq(max, 4, "class %u caches at most %u blocks", c, max);
    uint32_t want = per_unit < 4 ? 4 : per_unit;
    cr_assert_eq(max, want, "class %u (%zu B): cache max %u, expected %u", c, class_to_size(c), max, want);
    if (c > 0)
      cr_assert_leq(max, class_cache_max(c - 1), "larger classes do not cache more blocks");
    /* A slab holds at least two blocks of every class. */
    cr_assert_geq(per_unit, 2, "a 64 KiB slab holds %u blocks of class %u", per_unit, c);
  }
  cr_assert_eq(class_cache_max(0), UNIT_SIZE / 16);
  cr_assert_eq(class_cache_max(CLASS_COUNT - 1), 4);
}

Test(size_class, the_thread_cache_bins_take_class_cache_max)
{
  free(opaque(malloc(opaque_size(1)))); /* attaches this thread's heap */
  cr_assert_not_null(hk_tcache.heap);
  for (unsigned c = 0; c < CLASS_COUNT; c++)
    cr_assert_eq(hk_tcache.bins[c].max, class_cache_max(c), "bin %u: max %u, class_cache_max %u", c,
                 hk_tcache.bins[c].max, class_cache_max(c));
}

Test(size_class, usable_size_of_a_small_block_is_its_class_size)
{
  for (size_t size = 0; size <= SMALL_MAX; size += (size < 2048 ? 1 : 61)) {
    void *p = malloc(opaque_size(size));
    cr_assert_not_null(p, "malloc(%zu)", size);
    size_t usable = malloc_usable_size(p);
    unsigned cls = size_to_class(size);
    bool borrowed = class_may_borrow(cls) && usable == class_to_size(cls + 1);
    cr_assert(usable == class_to_size(cls) || borrowed, "malloc(%zu): usable %zu, class size %zu", size,
              usable, class_to_size(cls));
    cr_assert_eq((uintptr_t)p % 16, 0, "malloc(%zu) = %p is not 16-byte aligned", size, p);
    free(p);
  }
}

Test(size_class, the_alignment_table_agrees_with_class_aligned_to)
{
  /* aligned_alloc reads each class's alignment from a table filled at
   * its first call: every class and alignment agree with the rule. */
  for (unsigned c = 0; c < CLASS_COUNT; c++)
    for (size_t align = 16; align <= SMALL_MAX; align *= 2)
      cr_assert_eq(class_alignment_shift(c) >= (unsigned)__builtin_ctzl(align), class_aligned_to(c, align),
                   "class %u (%zu B), alignment %zu", c, class_to_size(c), align);
}
