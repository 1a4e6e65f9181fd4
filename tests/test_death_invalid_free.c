/* Description: free of a pointer hakmem never returned aborts: interior
 * pointers of small, large and huge blocks, a stack address, a global, a
 * wild pointer such as 0x1000, an unmapped 2 MiB-aligned address (where a
 * SuperSlab header would be, so hakmem must not read it blindly) and an
 * address inside memory the program mapped itself, and the same through
 * C23's free_sized. hakmem prints one line
 * "hakmem: ..." with the address and calls abort(). */
#include "helpers.h"

#include <sys/mman.h>

/* What the line must say: the operation and the problem. */
#define INVALID "free;invalid|not allocated|not a block"

static void do_free(void *p)
{
  free(launder(p));
}

static void interior_free(size_t size, size_t offset)
{
  unsigned char *p = malloc(launder_size(size));
  cr_assert_not_null(p);
  memset(p, 0x42, size);
  die_with_line(do_free, p + offset, (uintptr_t)(p + offset), INVALID);
}

Test(invalid_free, small_interior_plus_8, .signal = SIGABRT)
{
  interior_free(64, 8);
}

Test(invalid_free, small_interior_plus_16, .signal = SIGABRT)
{
  /* +16 lands where the next block of the 16 B class would start in a
   * larger block: hakmem must know 64 B blocks, not 16 B ones, live here. */
  interior_free(64, 16);
}

Test(invalid_free, small_interior_of_a_16_byte_block, .signal = SIGABRT)
{
  interior_free(16, 8);
}

Test(invalid_free, large_interior_plus_4096, .signal = SIGABRT)
{
  interior_free(100 * KiB, 4096);
}

/* One page past the end of a 10-page large block, a page never handed
 * out: an invalid pointer, not a double free. */
Test(invalid_free, large_one_page_past_the_end, .signal = SIGABRT)
{
  interior_free(40000, 10 * 4096);
}

Test(invalid_free, huge_interior_plus_4096, .signal = SIGABRT)
{
  interior_free(4 * MiB, 4096);
}

void free_sized(void *p, size_t size); /* C23; not declared by glibc 2.36 */

static void do_free_sized(void *p)
{
  free_sized(launder(p), 64);
}

/* The sized free checks its pointer as free() does. */
Test(invalid_free, free_sized_of_an_interior_pointer, .signal = SIGABRT)
{
  unsigned char *p = malloc(launder_size(64));
  cr_assert_not_null(p);
  die_with_line(do_free_sized, p + 16, (uintptr_t)(p + 16), INVALID);
}

Test(invalid_free, stack_address, .signal = SIGABRT)
{
  char on_stack[64];
  memset(on_stack, 0, sizeof on_stack);
  die_with_line(do_free, on_stack, (uintptr_t)on_stack, INVALID);
}

static char global_block[256] __attribute__((aligned(64)));

Test(invalid_free, global_address, .signal = SIGABRT)
{
  die_with_line(do_free, global_block, (uintptr_t)global_block, INVALID);
}

Test(invalid_free, wild_pointer_0x1000, .signal = SIGABRT)
{
  die_with_line(do_free, (void *)0x1000, 0x1000, INVALID);
}

/* An address that is 2 MiB aligned, like a SuperSlab base, but not mapped:
 * map 4 MiB, take the 2 MiB-aligned address inside, unmap everything. */
Test(invalid_free, unmapped_2mib_aligned_address, .signal = SIGABRT)
{
  size_t len = 4 * MiB;
  void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  cr_assert(m != MAP_FAILED, "mmap: %s", strerror(errno));
  uintptr_t aligned = ((uintptr_t)m + 2 * MiB - 1) & ~(uintptr_t)(2 * MiB - 1);
  cr_assert_eq(munmap(m, len), 0);
  /* A block-like offset inside the would-be SuperSlab, and its base. */
  die_with_line(do_free, (void *)(aligned + 4096), aligned + 4096, INVALID);
}

Test(invalid_free, unmapped_2mib_aligned_base, .signal = SIGABRT)
{
  size_t len = 4 * MiB;
  void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  cr_assert(m != MAP_FAILED, "mmap: %s", strerror(errno));
  uintptr_t aligned = ((uintptr_t)m + 2 * MiB - 1) & ~(uintptr_t)(2 * MiB - 1);
  cr_assert_eq(munmap(m, len), 0);
  die_with_line(do_free, (void *)aligned, aligned, INVALID);
}

/* Memory the program mapped itself, 2 MiB aligned, filled with bytes that
 * could pass for a header: hakmem must not trust memory it did not map. */
Test(invalid_free, foreign_mapping_that_looks_like_a_superslab, .signal = SIGABRT)
{
  size_t len = 4 * MiB;
  unsigned char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  cr_assert(m != MAP_FAILED, "mmap: %s", strerror(errno));
  uintptr_t aligned = ((uintptr_t)m + 2 * MiB - 1) & ~(uintptr_t)(2 * MiB - 1);
  /* Copy the first bytes of a real SuperSlab over the fake one. */
  void *real = malloc(launder_size(64));
  cr_assert_not_null(real);
  uintptr_t real_base = (uintptr_t)real & ~(uintptr_t)(2 * MiB - 1);
  memcpy((void *)aligned, (void *)real_base, 4096);
  void *fake = (void *)(aligned + ((uintptr_t)real - real_base));
  die_with_line(do_free, fake, (uintptr_t)fake, INVALID);
}

/* Addresses above the 47-bit user space whose low bits are those of a live
 * small block: free's map lookup masks the high bits away, so these land
 * on that block's real slab, and must fail its bounds check there rather
 * than be cached or followed. One non-canonical (bit 63), one canonical
 * only with 5-level paging (bit 47). */
static void aliased_free(uintptr_t high_bits)
{
  void *real = malloc(launder_size(64));
  cr_assert_not_null(real);
  uintptr_t alias = (uintptr_t)real | high_bits;
  die_with_line(do_free, (void *)alias, alias, INVALID);
}

Test(invalid_free, a_live_blocks_address_with_bit_63_set, .signal = SIGABRT)
{
  aliased_free((uintptr_t)1 << 63);
}

Test(invalid_free, a_live_blocks_address_with_bit_47_set, .signal = SIGABRT)
{
  aliased_free((uintptr_t)1 << 47);
}
