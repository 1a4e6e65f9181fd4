/* Description: realloc of a pointer that is not a live block aborts:
 * a freed small, large or huge block (also when the realloc would shrink
 * it, or keep its size, so no copy is needed, or when malloc_trim gave its
 * page back), an interior pointer and a wild pointer. hakmem prints one line "hakmem: ..." with the address and
 * calls abort(). (malloc_usable_size of a freed pointer is not required
 * to abort, so it is not tested here.) */
#include "helpers.h"

#include <malloc.h>

/* What the line must say: the operation and the problem. */
#define FREED "realloc;freed|double free"
#define INVALID "realloc;invalid|not allocated|not a block"

struct realloc_case {
  void *ptr;
  size_t new_size;
  int free_first;
};

static void do_realloc(void *arg)
{
  struct realloc_case *c = arg;
  if (c->free_first)
    free(c->ptr);
  void *q = realloc(launder(c->ptr), launder_size(c->new_size));
  /* Not reached when hakmem aborts; keep q alive so the call is made. */
  launder(q);
}

static void realloc_freed(size_t size, size_t new_size)
{
  static struct realloc_case c;
  c.ptr = malloc(launder_size(size));
  cr_assert_not_null(c.ptr);
  c.new_size = new_size;
  c.free_first = 1;
  die_with_line(do_realloc, &c, (uintptr_t)c.ptr, FREED);
}

Test(realloc_freed, small_grow, .signal = SIGABRT)
{
  realloc_freed(32, 4000);
}

/* realloc(p, 0) frees p: with p already freed, that is a double free. */
Test(realloc_freed, small_to_zero, .signal = SIGABRT)
{
  static struct realloc_case c;
  c.ptr = malloc(launder_size(64));
  cr_assert_not_null(c.ptr);
  c.new_size = 0;
  c.free_first = 1;
  die_with_line(do_realloc, &c, (uintptr_t)c.ptr, "freed|double free");
}

Test(realloc_freed, huge_to_zero, .signal = SIGABRT)
{
  static struct realloc_case c;
  c.ptr = malloc(launder_size(4 * MiB));
  cr_assert_not_null(c.ptr);
  c.new_size = 0;
  c.free_first = 1;
  die_with_line(do_realloc, &c, (uintptr_t)c.ptr, "freed|double free");
}

Test(realloc_freed, small_same_size, .signal = SIGABRT)
{
  realloc_freed(32, 32);
}

Test(realloc_freed, small_shrink, .signal = SIGABRT)
{
  realloc_freed(1000, 10);
}

Test(realloc_freed, large, .signal = SIGABRT)
{
  realloc_freed(100 * KiB, 200 * KiB);
}

Test(realloc_freed, large_shrink, .signal = SIGABRT)
{
  realloc_freed(100 * KiB, 90 * KiB);
}

Test(realloc_freed, huge, .signal = SIGABRT)
{
  realloc_freed(4 * MiB, 8 * MiB);
}

Test(realloc_freed, huge_shrink, .signal = SIGABRT)
{
  realloc_freed(4 * MiB, 3 * MiB);
}

Test(realloc_invalid, interior_pointer, .signal = SIGABRT)
{
  static struct realloc_case c;
  unsigned char *p = malloc(launder_size(256));
  cr_assert_not_null(p);
  c.ptr = p + 16;
  c.new_size = 512;
  c.free_first = 0;
  die_with_line(do_realloc, &c, (uintptr_t)c.ptr, INVALID);
}

Test(realloc_invalid, wild_pointer, .signal = SIGABRT)
{
  static struct realloc_case c = {(void *)0x1000, 64, 0};
  die_with_line(do_realloc, &c, 0x1000, INVALID);
}

/* A freed block whose page malloc_trim(0) gave back (the other blocks of
 * its slab live on): the block is parked, its memory zero, and still
 * known to be free. */
static void *page_blocks[4];

static void realloc_parked(void *p)
{
  for (int i = 0; i < 4; i++)
    free(page_blocks[i]);
  malloc_trim(0);
  void *q = realloc(launder(p), launder_size(2000));
  launder(q);
}

Test(realloc_freed, after_a_trim_gave_its_page_back, .signal = SIGABRT)
{
  blocks_of_one_page(1024, page_blocks);
  die_with_line(realloc_parked, page_blocks[1], (uintptr_t)page_blocks[1], FREED);
}
