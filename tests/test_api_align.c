/* Description: the aligned allocators. posix_memalign, aligned_alloc and
 * memalign honour every power-of-two alignment from 16 B to 4 MiB for
 * small, large and huge sizes, and give a block of its own for size 0 at
 * every alignment up to 64 MiB; posix_memalign returns EINVAL for an
 * alignment that is not a power-of-two multiple of sizeof(void *) and
 * leaves errno alone; aligned_alloc and memalign return NULL with EINVAL
 * for an alignment that is not a power of two; valloc and pvalloc are
 * page aligned and pvalloc rounds the size up to a page. */
#include "helpers.h"

#include <malloc.h>

static const size_t sizes[] = {
    1, 8, 16, 100, 1000, 4096, 5000, 40 * KiB, 64 * KiB, 100 * KiB, 1 * MiB, 3 * MiB,
};
#define N_SIZES (sizeof sizes / sizeof sizes[0])
#define MAX_ALIGN (4 * MiB)

typedef void *(*align_fn)(size_t align, size_t size);

static void *via_posix_memalign(size_t align, size_t size)
{
  void *p = NULL;
  int rc = posix_memalign(&p, align, size);
  cr_assert_eq(rc, 0, "posix_memalign(%zu, %zu) = %d", align, size, rc);
  return p;
}

static void *via_aligned_alloc(size_t align, size_t size)
{
  return aligned_alloc(align, size);
}

static void *via_memalign(size_t align, size_t size)
{
  return memalign(align, size);
}

/* For each alignment, all sizes alive together, each block filled with
 * its own pattern, then checked and freed. */
static void check_alignments(align_fn fn, const char *name)
{
  void *p[N_SIZES];
  for (size_t align = 16; align <= MAX_ALIGN; align *= 2) {
    for (size_t i = 0; i < N_SIZES; i++) {
      p[i] = fn(launder_size(align), launder_size(sizes[i]));
      cr_assert_not_null(p[i], "%s(%zu, %zu) returned NULL", name, align, sizes[i]);
      cr_assert_eq((uintptr_t)p[i] % align, 0, "%s(%zu, %zu) = %p is misaligned", name, align,
                   sizes[i], p[i]);
      cr_assert_geq(malloc_usable_size(p[i]), sizes[i], "%s(%zu, %zu): usable %zu", name, align,
                    sizes[i], malloc_usable_size(p[i]));
      pattern_fill(p[i], sizes[i], i, align);
    }
    for (size_t i = 0; i < N_SIZES; i++) {
      cr_assert_eq(pattern_check(p[i], sizes[i], i, align), (size_t)-1,
                   "%s(%zu, %zu): block overwritten", name, align, sizes[i]);
      free(p[i]);
    }
  }
}

Test(posix_memalign, honours_every_alignment)
{
  check_alignments(via_posix_memalign, "posix_memalign");
}

Test(aligned_alloc, honours_every_alignment)
{
  check_alignments(via_aligned_alloc, "aligned_alloc");
}

Test(memalign, honours_every_alignment)
{
  check_alignments(via_memalign, "memalign");
}

/* Alignments below 16 are valid and still give 16-byte aligned blocks. */
Test(aligned_alloc, small_alignments_still_give_16)
{
  for (size_t align = 1; align < 16; align *= 2) {
    void *a = aligned_alloc(launder_size(align), 24);
    void *m = memalign(launder_size(align), 24);
    cr_assert_not_null(a);
    cr_assert_not_null(m);
    cr_assert_eq((uintptr_t)a % 16, 0, "aligned_alloc(%zu, 24) = %p", align, a);
    cr_assert_eq((uintptr_t)m % 16, 0, "memalign(%zu, 24) = %p", align, m);
    free(a);
    free(m);
  }
  void *p = NULL;
  cr_assert_eq(posix_memalign(&p, sizeof(void *), 24), 0);
  cr_assert_eq((uintptr_t)p % 16, 0);
  free(p);
}

/* Many aligned blocks of one alignment at once: none overlaps another. */
static bool overlap(const char *a, size_t alen, const char *b, size_t blen)
{
  return a < b + blen && b < a + alen;
}

/* A block of size 0 is a block of its own at every alignment: not the
 * next block's address (64 KiB .. 1 MiB gave a zero-page run), not one past
 * its own mapping (2 MiB and up gave the neighbouring region's base). */
static void size_zero_is_a_block(align_fn fn, const char *name)
{
  for (size_t align = 16; align <= 64 * MiB; align *= 2) {
    char *big = malloc(launder_size(4 * MiB));
    char *a = fn(align, launder_size(0));
    char *b = fn(align, launder_size(5000));
    char *c = fn(align, launder_size(0));
    cr_assert(big && a && b && c, "%s(%zu, 0) failed", name, align);
    cr_assert_eq((uintptr_t)a % align, 0);
    cr_assert_eq((uintptr_t)c % align, 0);
    size_t ua = malloc_usable_size(a), uc = malloc_usable_size(c);
    cr_assert(!overlap(a, ua ? ua : 1, b, 5000) && !overlap(c, uc ? uc : 1, b, 5000) &&
                  !overlap(a, ua ? ua : 1, c, uc ? uc : 1) && !overlap(a, ua ? ua : 1, big, 4 * MiB) &&
                  !overlap(c, uc ? uc : 1, big, 4 * MiB),
              "%s(%zu, 0): %p (%zu usable) and %p (%zu) share memory with %p (5000) or %p (4 MiB)", name, align,
              (void *)a, ua, (void *)c, uc, (void *)b, (void *)big);
    memset(b, 'B', 5000);
    memset(big, 'H', 4 * MiB);
    free(a);
    free(c);
    char *d = fn(align, launder_size(5000));
    cr_assert_not_null(d);
    memset(d, 'D', 5000);
    cr_assert_eq(b[0], 'B', "%s(%zu): a block of size 0 freed gave b's memory away", name, align);
    cr_assert_eq(big[0], 'H');
    free(d);
    free(b);
    free(big);
  }
}

Test(posix_memalign, size_zero_is_a_block_of_its_own)
{
  size_zero_is_a_block(via_posix_memalign, "posix_memalign");
}

Test(aligned_alloc, size_zero_is_a_block_of_its_own)
{
  size_zero_is_a_block(via_aligned_alloc, "aligned_alloc");
}

Test(memalign, size_zero_is_a_block_of_its_own)
{
  size_zero_is_a_block(via_memalign, "memalign");
}

Test(posix_memalign, many_blocks_alive)
{
  enum { N = 400 };
  static void *p[N];
  static const size_t aligns[] = {64, 4096, 65536};
  for (size_t a = 0; a < 3; a++) {
    for (size_t i = 0; i < N; i++) {
      size_t size = 1 + (i * 97) % 9000;
      cr_assert_eq(posix_memalign(&p[i], aligns[a], launder_size(size)), 0);
      cr_assert_eq((uintptr_t)p[i] % aligns[a], 0);
      pattern_fill(p[i], size, i, a);
    }
    for (size_t i = 0; i < N; i++) {
      size_t size = 1 + (i * 97) % 9000;
      cr_assert_eq(pattern_check(p[i], size, i, a), (size_t)-1, "align %zu block %zu", aligns[a], i);
      free(p[i]);
    }
  }
}

/* Aligned blocks can be reallocated, keeping their contents. */
Test(posix_memalign, blocks_realloc_and_free)
{
  void *p = NULL;
  cr_assert_eq(posix_memalign(&p, 4096, launder_size(3000)), 0);
  pattern_fill(p, 3000, 1, 1);
  p = realloc(p, launder_size(300000));
  cr_assert_not_null(p);
  cr_assert_eq(pattern_check(p, 3000, 1, 1), (size_t)-1);
  p = realloc(p, launder_size(100));
  cr_assert_not_null(p);
  cr_assert_eq(pattern_check(p, 100, 1, 1), (size_t)-1);
  free(p);
}

/* Blocks with large alignments (their user pointer sits at an offset in
 * their region) grow, shrink and move with their contents. */
Test(posix_memalign, large_alignments_realloc, .timeout = 60)
{
  static const size_t aligns[] = {4096, 64 * KiB, 2 * MiB, 4 * MiB};
  static const size_t steps[] = {3 * MiB, 9 * MiB, 100 * KiB, 5 * MiB, 1000, 3 * MiB};
  for (size_t a = 0; a < sizeof aligns / sizeof aligns[0]; a++) {
    void *p = NULL;
    size_t size = 1 * MiB + 5;
    cr_assert_eq(posix_memalign(&p, aligns[a], launder_size(size)), 0);
    cr_assert_eq((uintptr_t)p % aligns[a], 0);
    pattern_fill(p, size, a, 0);
    for (size_t k = 0; k < sizeof steps / sizeof steps[0]; k++) {
      void *q = realloc(p, launder_size(steps[k]));
      cr_assert_not_null(q, "realloc of a %zu-aligned block to %zu", aligns[a], steps[k]);
      size_t keep = size < steps[k] ? size : steps[k];
      cr_assert_eq(pattern_check(q, keep, a, k), (size_t)-1,
                   "realloc of a %zu-aligned block %zu -> %zu lost the contents", aligns[a], size,
                   steps[k]);
      cr_assert_geq(malloc_usable_size(q), steps[k]);
      pattern_fill(q, steps[k], a, k + 1);
      p = q;
      size = steps[k];
    }
    free(p);
  }
}

Test(posix_memalign, bad_alignment_is_einval_and_errno_untouched)
{
  static const size_t bad[] = {0, 1, 2, 3, sizeof(void *) / 2, 12, 24, 48, 100, 4097,
                               ((size_t)1 << 40) + 8, SIZE_MAX};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    void *p = (void *)0x1;
    errno = 777;
    int rc = posix_memalign(&p, launder_size(bad[i]), 64);
    cr_assert_eq(rc, EINVAL, "posix_memalign(alignment %zu) = %d, expected EINVAL", bad[i], rc);
    cr_assert_eq(errno, 777, "posix_memalign(alignment %zu) changed errno to %d", bad[i], errno);
  }
}

Test(posix_memalign, impossible_size_is_enomem)
{
  static const size_t aligns[] = {16, 4096, 2 * MiB};
  for (size_t i = 0; i < 3; i++) {
    void *p = (void *)0x1;
    int rc = posix_memalign(&p, aligns[i], launder_size(SIZE_MAX - aligns[i] + 1));
    cr_assert_eq(rc, ENOMEM, "posix_memalign(%zu, huge) = %d", aligns[i], rc);
    rc = posix_memalign(&p, aligns[i], launder_size((size_t)PTRDIFF_MAX + 1));
    cr_assert_eq(rc, ENOMEM, "posix_memalign(%zu, PTRDIFF_MAX + 1) = %d", aligns[i], rc);
  }
}

Test(aligned_alloc, non_power_of_two_is_einval)
{
  static const size_t bad[] = {0, 3, 5, 24, 48, 100, 4097, 3 * MiB, ((size_t)1 << 40) + 1, SIZE_MAX};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    errno = 0;
    void *p = aligned_alloc(launder_size(bad[i]), 64);
    cr_assert_null(p, "aligned_alloc(%zu, 64) = %p, expected NULL", bad[i], p);
    cr_assert_eq(errno, EINVAL, "aligned_alloc(%zu, 64): errno %d, expected EINVAL", bad[i], errno);
  }
}

Test(memalign, non_power_of_two_is_einval)
{
  static const size_t bad[] = {3, 5, 24, 48, 100, 4097, 3 * MiB, ((size_t)1 << 40) + 1, SIZE_MAX};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    errno = 0;
    void *p = memalign(launder_size(bad[i]), 64);
    cr_assert_null(p, "memalign(%zu, 64) = %p, expected NULL", bad[i], p);
    cr_assert_eq(errno, EINVAL, "memalign(%zu, 64): errno %d, expected EINVAL", bad[i], errno);
  }
}

Test(aligned_alloc, impossible_size_is_enomem)
{
  errno = 0;
  cr_assert_null(aligned_alloc(4096, launder_size(SIZE_MAX)));
  cr_assert_eq(errno, ENOMEM);
  errno = 0;
  cr_assert_null(memalign(64, launder_size(SIZE_MAX - 100)));
  cr_assert_eq(errno, ENOMEM);
}

Test(valloc, page_aligned)
{
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  static const size_t vsizes[] = {1, 100, 4095, 4096, 4097, 40 * KiB, 100 * KiB, 3 * MiB};
  for (size_t i = 0; i < sizeof vsizes / sizeof vsizes[0]; i++) {
    unsigned char *p = valloc(launder_size(vsizes[i]));
    cr_assert_not_null(p, "valloc(%zu)", vsizes[i]);
    cr_assert_eq((uintptr_t)p % page, 0, "valloc(%zu) = %p", vsizes[i], (void *)p);
    cr_assert_geq(malloc_usable_size(p), vsizes[i]);
    memset(p, 0x3C, vsizes[i]);
    free(p);
  }
}

Test(pvalloc, page_aligned_and_rounded_up)
{
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  static const size_t psizes[] = {1, 100, 4095, 4096, 4097, 40 * KiB + 1, 100 * KiB, 3 * MiB + 5};
  for (size_t i = 0; i < sizeof psizes / sizeof psizes[0]; i++) {
    size_t rounded = (psizes[i] + page - 1) / page * page;
    unsigned char *p = pvalloc(launder_size(psizes[i]));
    cr_assert_not_null(p, "pvalloc(%zu)", psizes[i]);
    cr_assert_eq((uintptr_t)p % page, 0, "pvalloc(%zu) = %p", psizes[i], (void *)p);
    cr_assert_geq(malloc_usable_size(p), rounded, "pvalloc(%zu): usable %zu < %zu", psizes[i],
                  malloc_usable_size(p), rounded);
    memset(p, 0x3C, rounded); /* the whole rounded size is the program's */
    free(p);
  }
  errno = 0;
  cr_assert_null(pvalloc(launder_size(SIZE_MAX - 10)), "pvalloc of a size that wraps when rounded");
  cr_assert_eq(errno, ENOMEM);
}

/* A small aligned request takes the smallest class whose blocks are all
 * aligned, not the power of two above it (alignas(64) C++ objects): 640 B
 * for 576 at 64. (Its bin may hand out a block lent by the next class up,
 * aligned as well: the test asks for less than the power of two.) */
Test(aligned_alloc, small_requests_take_a_class_below_the_power_of_two)
{
  static const struct { size_t align, size; } cases[] = {
      {64, 576}, {64, 1088}, {64, 320}, {128, 640}, {256, 1500}, {1024, 5000},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    size_t pow2 = 1;
    while (pow2 < cases[i].size)
      pow2 *= 2;
    void *p = aligned_alloc(launder_size(cases[i].align), launder_size(cases[i].size));
    cr_assert_not_null(p);
    cr_assert_eq((uintptr_t)p % cases[i].align, 0);
    size_t usable = malloc_usable_size(p);
    cr_assert(usable >= cases[i].size && usable < pow2, "aligned_alloc(%zu, %zu): %zu usable bytes", cases[i].align,
              cases[i].size, usable);
    free(p);
  }
}

/* Plain mallocs and frees of neighbouring sizes (whose classes lend each
 * other cached blocks) interleaved with aligned requests of every small
 * alignment: every aligned block is aligned and keeps its contents. */
Test(aligned_alloc, stays_aligned_among_mallocs_of_neighbouring_classes)
{
  enum { SLOTS = 512, OPS = 400000 };
  static char *slot[SLOTS];
  static size_t len[SLOTS], alignment[SLOTS];
  uint64_t state = 0x9E3779B97F4A7C15u;
  for (unsigned op = 0; op < OPS; op++) {
    uint64_t r = xorshift64(&state);
    unsigned i = (unsigned)(r % SLOTS);
    if (slot[i]) {
      cr_assert_eq(pattern_check(slot[i], len[i], i, alignment[i]), (size_t)-1, "slot %u overwritten", i);
      free(slot[i]);
      slot[i] = NULL;
      continue;
    }
    len[i] = 1 + (r >> 20) % 2048;
    if ((r >> 40) & 1) {
      alignment[i] = (size_t)32 << ((r >> 41) % 8); /* 32 .. 4096 */
      slot[i] = aligned_alloc(launder_size(alignment[i]), launder_size(len[i]));
      cr_assert_not_null(slot[i]);
      cr_assert_eq((uintptr_t)slot[i] % alignment[i], 0, "aligned_alloc(%zu, %zu) = %p at op %u", alignment[i],
                   len[i], (void *)slot[i], op);
    } else {
      alignment[i] = 16;
      slot[i] = malloc(launder_size(len[i]));
      cr_assert_not_null(slot[i]);
    }
    pattern_fill(slot[i], len[i], i, alignment[i]);
  }
  for (unsigned i = 0; i < SLOTS; i++)
    free(slot[i]);
}
