/* Description: the contract of malloc and free. Every size from 1 B to
 * 40 KiB (all size classes) and large and huge sizes give a pointer
 * aligned to at least 16 whose usable size covers the request; blocks
 * alive together do not overlap; malloc(0) gives unique freeable
 * pointers; free(NULL) does nothing and free keeps errno; sizes that
 * cannot be served give NULL with errno ENOMEM, and memory freed under an
 * address-space limit serves again. */
#include "helpers.h"

#include <malloc.h>
#include <stddef.h>
#include <sys/resource.h>
#include <sys/wait.h>

#define MAX_CLASS_SIZE (40 * KiB)

static void check_block(void *p, size_t size)
{
  cr_assert_not_null(p, "malloc(%zu) returned NULL", size);
  cr_assert_eq((uintptr_t)p % 16, 0, "malloc(%zu) = %p is not 16-byte aligned", size, p);
  size_t usable = malloc_usable_size(p);
  cr_assert_geq(usable, size, "malloc_usable_size(malloc(%zu)) = %zu", size, usable);
}

Test(malloc, every_small_size_is_aligned_and_usable)
{
  for (size_t size = 1; size <= MAX_CLASS_SIZE; size++) {
    unsigned char *p = malloc(launder_size(size));
    check_block(p, size);
    p[0] = 0x11;
    p[size - 1] = 0x22;
    free(p);
  }
}

/* Keep one block of each size alive at once, each filled with its own
 * pattern: a block handed out twice, or overlapping a neighbour, breaks
 * someone's pattern. Sizes 1..4096 one by one, then every 48 B to 40 KiB. */
Test(malloc, blocks_alive_together_do_not_overlap)
{
  enum { N = 4096 + (40 * 1024 - 4096) / 48 + 1 };
  static void *blocks[N];
  static size_t sizes[N];
  size_t n = 0;
  for (size_t size = 1; size <= 4096; size++)
    sizes[n++] = size;
  for (size_t size = 4096 + 48; size <= MAX_CLASS_SIZE && n < N; size += 48)
    sizes[n++] = size;

  for (size_t i = 0; i < n; i++) {
    blocks[i] = malloc(launder_size(sizes[i]));
    check_block(blocks[i], sizes[i]);
    pattern_fill(blocks[i], sizes[i], i, 1);
  }
  for (size_t i = 0; i < n; i++) {
    size_t bad = pattern_check(blocks[i], sizes[i], i, 1);
    cr_assert_eq(bad, (size_t)-1, "block %zu (%zu B at %p) overwritten at offset %zu", i,
                 sizes[i], blocks[i], bad);
  }
  for (size_t i = 0; i < n; i += 2)
    free(blocks[i]);
  for (size_t i = 1; i < n; i += 2) {
    size_t bad = pattern_check(blocks[i], sizes[i], i, 1);
    cr_assert_eq(bad, (size_t)-1, "block %zu changed when its neighbours were freed", i);
    free(blocks[i]);
  }
}

/* Large and huge blocks: writable on every page, first and last byte. */
Test(malloc, large_and_huge_sizes)
{
  static const size_t sizes[] = {
      40 * KiB + 1, 64 * KiB,     100 * KiB,   256 * KiB,        1 * MiB,
      2 * MiB - 1,  2 * MiB,      2 * MiB + 1, 3 * MiB,          100 * MiB,
  };
  long page = sysconf(_SC_PAGESIZE);
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    size_t size = sizes[i];
    unsigned char *p = launder(malloc(launder_size(size)));
    check_block(p, size);
    for (size_t off = 0; off < size; off += (size_t)page)
      p[off] = (unsigned char)(off >> 12);
    for (size_t off = 0; off < size; off += (size_t)page)
      cr_assert_eq(p[off], (unsigned char)(off >> 12), "%zu B block, offset %zu", size, off);
    p[size - 1] = 0x5A;
    cr_assert_eq(p[size - 1], 0x5A);
    cr_assert_eq(p[0], 0);
    free(p);
  }
}

/* Several large blocks alive together keep their contents. */
Test(malloc, large_blocks_alive_together)
{
  enum { N = 24 };
  void *blocks[N];
  size_t sizes[N];
  for (size_t i = 0; i < N; i++) {
    sizes[i] = 48 * KiB + i * 37 * KiB + i * 3;
    blocks[i] = malloc(launder_size(sizes[i]));
    check_block(blocks[i], sizes[i]);
    pattern_fill(blocks[i], sizes[i], i, 7);
  }
  for (size_t i = 0; i < N; i++) {
    cr_assert_eq(pattern_check(blocks[i], sizes[i], i, 7), (size_t)-1, "large block %zu", i);
    free(blocks[i]);
  }
}

Test(malloc, zero_size_gives_unique_freeable_pointers)
{
  enum { N = 256 };
  void *p[N];
  for (int i = 0; i < N; i++) {
    p[i] = malloc(launder_size(0));
    cr_assert_not_null(p[i], "malloc(0) returned NULL");
    cr_assert_eq((uintptr_t)p[i] % 16, 0);
    for (int j = 0; j < i; j++)
      cr_assert_neq(p[i], p[j], "malloc(0) returned %p twice", p[i]);
  }
  for (int i = 0; i < N; i++)
    free(p[i]);
}

Test(malloc, free_null_is_a_no_op)
{
  errno = 1234;
  free(launder(NULL));
  cr_assert_eq(errno, 1234, "free(NULL) changed errno");
  void *p = malloc(launder_size(32));
  cr_assert_not_null(p);
  free(NULL);
  free(p);
}

/* POSIX.1-2024: free() shall not modify errno. */
Test(malloc, free_preserves_errno)
{
  static const size_t sizes[] = {16, 1000, 40 * KiB, 100 * KiB, 4 * MiB};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    void *p = malloc(launder_size(sizes[i]));
    cr_assert_not_null(p);
    errno = 4321;
    free(p);
    cr_assert_eq(errno, 4321, "free of a %zu B block changed errno to %d", sizes[i], errno);
  }
}

static void expect_enomem(size_t size)
{
  errno = 0;
  void *p = malloc(launder_size(size));
  cr_assert_null(p, "malloc(%#zx) = %p, expected NULL", size, p);
  cr_assert_eq(errno, ENOMEM, "malloc(%#zx): errno = %d, expected ENOMEM", size, errno);
}

Test(malloc, impossible_sizes_fail_with_enomem)
{
  expect_enomem(SIZE_MAX);
  expect_enomem((size_t)PTRDIFF_MAX + 1);
  /* Sizes where rounding up to a class, a page or a 2 MiB region wraps. */
  expect_enomem(SIZE_MAX - 1);
  expect_enomem(SIZE_MAX - 15);
  expect_enomem(SIZE_MAX - 16);
  expect_enomem(SIZE_MAX - 4095);
  expect_enomem(SIZE_MAX - 4096);
  expect_enomem(SIZE_MAX - 2 * MiB + 1);
  expect_enomem(SIZE_MAX - 2 * MiB);
  expect_enomem((size_t)PTRDIFF_MAX);
  /* The allocator still works afterwards. */
  void *p = malloc(launder_size(100));
  cr_assert_not_null(p);
  free(p);
}

/* glibc's own names for its allocator reach hakmem too: a block from one
 * name is freed by the other. */
extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t size);
extern void *__libc_memalign(size_t align, size_t size);
extern void __libc_free(void *p);

Test(malloc, glibc_internal_names_are_hakmem)
{
  char *a = __libc_malloc(launder_size(100));
  cr_assert_not_null(a);
  cr_assert_geq(malloc_usable_size(a), 100);
  memset(a, 0x3C, 100);
  a = __libc_realloc(a, launder_size(5000));
  cr_assert_not_null(a);
  cr_assert_eq(a[99], 0x3C);
  free(a);
  char *z = __libc_calloc(10, launder_size(10));
  cr_assert_not_null(z);
  for (int i = 0; i < 100; i++)
    cr_assert_eq(z[i], 0);
  __libc_free(z);
  void *m = __libc_memalign(256, launder_size(40));
  cr_assert_not_null(m);
  cr_assert_eq((uintptr_t)m % 256, 0);
  __libc_free(malloc(launder_size(7)));
  __libc_free(m);
}

/* The kernel's overcommit policy decides sizes beyond memory: under the
 * heuristic (0) and strict (2) policies, a request larger than RAM and
 * swap together fails as it does with glibc, never a mapping that would
 * kill the program at first touch. */
Test(malloc, sizes_beyond_memory_fail_under_the_overcommit_policy)
{
  FILE *f = fopen("/proc/sys/vm/overcommit_memory", "r");
  int policy = -1;
  if (f) {
    if (fscanf(f, "%d", &policy) != 1)
      policy = -1;
    fclose(f);
  }
  if (policy != 0 && policy != 2) {
    cr_skip_test("overcommit_memory is %d, not 0 or 2: the kernel grants any size", policy);
  }
  static const size_t sizes[] = { (size_t)1 << 46, (size_t)1 << 45, (size_t)1 << 44 };
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    expect_enomem(sizes[i]);
    errno = 0;
    cr_assert_null(calloc(1, launder_size(sizes[i])), "calloc(1, %#zx)", sizes[i]);
    cr_assert_eq(errno, ENOMEM);
  }
}

/* Under an address-space limit (RLIMIT_AS, ulimit -v), memory freed must
 * serve again: the regions hakmem caches for reuse are mapped and count
 * against the limit, so a mapping that fails gives them back and retries.
 * In a child, which alone gets the limit. */
static int refill_after_exhaustion(void)
{
  long pages = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (!f || fscanf(f, "%ld", &pages) != 1)
    return 1;
  fclose(f);
  rlim_t limit = (rlim_t)pages * 4096 + 256 * MiB;
  struct rlimit rl = { limit, limit };
  if (setrlimit(RLIMIT_AS, &rl) != 0)
    return 2;
  enum { MAX = 512 };
  static void *big[MAX];
  int n = 0;
  while (n < MAX && (big[n] = malloc(launder_size(3 * MiB))) != NULL)
    memset(big[n++], 0x21, 4096);
  if (n == 0 || n == MAX || errno != ENOMEM)
    return 3;
  for (int i = 0; i < n; i++)
    free(big[i]);
  /* What was freed, in other sizes: a block larger than any cached, which
   * maps anew once the cache's regions are gone (errno stays as it was),
   * small blocks, then huge ones. */
  errno = 0;
  void *first = malloc(launder_size(8 * MiB));
  if (first == NULL || errno != 0)
    return 6;
  free(first);
  static void *small[200000];
  size_t bytes = 0;
  int m = 0;
  while (m < 200000 && bytes < (size_t)n * 3 * MiB / 2 && (small[m] = malloc(launder_size(1000))) != NULL)
    bytes += 1000, m++;
  if (bytes < (size_t)n * 3 * MiB / 2)
    return 4;
  for (int i = 0; i < m; i++)
    free(small[i]);
  for (int i = 0; i < n / 4; i++)
    if ((big[i] = malloc(launder_size(8 * MiB))) == NULL)
      return 5;
  return 0;
}

Test(malloc, freed_memory_serves_again_under_an_address_space_limit)
{
  pid_t pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0)
    _exit(refill_after_exhaustion());
  int status;
  cr_assert_eq(waitpid(pid, &status, 0), pid);
  cr_assert(WIFEXITED(status), "child died: status %#x", status);
  cr_assert_eq(WEXITSTATUS(status), 0, "child failed at step %d", WEXITSTATUS(status));
}

/* Freeing in an order other than allocation order (FIFO, interleaved)
 * and reallocating gives back working blocks. */
Test(malloc, free_orders_and_reuse)
{
  enum { N = 20000 };
  static void *p[N];
  for (int round = 0; round < 3; round++) {
    for (int i = 0; i < N; i++) {
      size_t size = 1 + (size_t)(i * 7 + round) % 700;
      p[i] = malloc(launder_size(size));
      check_block(p[i], size);
      pattern_fill(p[i], size, (uint64_t)i, (uint64_t)round);
    }
    for (int i = 0; i < N; i++) {
      size_t size = 1 + (size_t)(i * 7 + round) % 700;
      cr_assert_eq(pattern_check(p[i], size, (uint64_t)i, (uint64_t)round), (size_t)-1,
                   "round %d block %d", round, i);
    }
    if (round == 0)
      for (int i = 0; i < N; i++)
        free(p[i]);
    else if (round == 1)
      for (int i = N - 1; i >= 0; i--)
        free(p[i]);
    else {
      for (int i = 0; i < N; i += 3)
        free(p[i]);
      for (int i = 1; i < N; i += 3)
        free(p[i]);
      for (int i = 2; i < N; i += 3)
        free(p[i]);
    }
  }
}
