/* Description: a double free aborts. For small, large (100 KiB) and huge
 * (4 MiB) blocks, for blocks from the aligned allocators, for a double
 * free that is not the last free (another block freed in between), for
 * one whose first free happened in another thread, for one whose slab
 * or region emptied in between, and for one whose page malloc_trim gave
 * back, hakmem prints one
 * line "hakmem: ..." naming the double free and the address, then calls
 * abort(), also when stderr is a pipe nobody reads (no SIGPIPE first). Each test checks the line in a forked child, then repeats the
 * double free in the test process, which must die of SIGABRT. */
#include "helpers.h"

#include <malloc.h>
#include <pthread.h>

/* What the line must say: the problem, as README's table words it. */
#define DOUBLE_FREE "free(): double free"

static void double_free(void *p)
{
  free(p);
  free(launder(p));
}

static void double_free_of_size(size_t size)
{
  void *p = malloc(launder_size(size));
  cr_assert_not_null(p);
  memset(p, 0x42, size);
  die_with_line(double_free, p, (uintptr_t)p, DOUBLE_FREE);
}

Test(double_free, small, .signal = SIGABRT)
{
  double_free_of_size(32);
}

Test(double_free, smallest_class, .signal = SIGABRT)
{
  double_free_of_size(1);
}

Test(double_free, largest_small_class, .signal = SIGABRT)
{
  double_free_of_size(32 * KiB);
}

Test(double_free, large, .signal = SIGABRT)
{
  double_free_of_size(100 * KiB);
}

Test(double_free, huge, .signal = SIGABRT)
{
  double_free_of_size(4 * MiB);
}

/* The first free is not the most recent one: blocks of the same class are
 * freed in between, so the bad block is no longer at the head of any list. */
static void *between[64];

static void double_free_not_last(void *p)
{
  free(p);
  for (int i = 0; i < 64; i++)
    free(between[i]);
  free(launder(p));
}

Test(double_free, with_other_frees_in_between, .signal = SIGABRT)
{
  void *p = malloc(launder_size(48));
  cr_assert_not_null(p);
  for (int i = 0; i < 64; i++) {
    between[i] = malloc(launder_size(48));
    cr_assert_not_null(between[i]);
  }
  die_with_line(double_free_not_last, p, (uintptr_t)p, DOUBLE_FREE);
}

/* Many frees in between, enough to flush the thread cache to the slab. */
static void *flushed[20000];

static void double_free_after_flush(void *p)
{
  free(p);
  for (int i = 0; i < 20000; i++)
    free(flushed[i]);
  free(launder(p));
}

Test(double_free, after_the_thread_cache_flushed, .signal = SIGABRT)
{
  void *p = malloc(launder_size(64));
  cr_assert_not_null(p);
  for (int i = 0; i < 20000; i++) {
    flushed[i] = malloc(launder_size(64));
    cr_assert_not_null(flushed[i]);
  }
  die_with_line(double_free_after_flush, p, (uintptr_t)p, DOUBLE_FREE);
}

Test(double_free, aligned_block, .signal = SIGABRT)
{
  void *p = aligned_alloc(4096, launder_size(5000));
  cr_assert_not_null(p);
  die_with_line(double_free, p, (uintptr_t)p, DOUBLE_FREE);
}

Test(double_free, calloc_block, .signal = SIGABRT)
{
  void *p = calloc(launder_size(10), 10);
  cr_assert_not_null(p);
  die_with_line(double_free, p, (uintptr_t)p, DOUBLE_FREE);
}

/* The first free happens in another thread (a remote free into this
 * thread's slab), the second here. */
static void *free_in_thread(void *p)
{
  free(p);
  return NULL;
}

static void double_free_remote_first(void *p)
{
  pthread_t t;
  if (pthread_create(&t, NULL, free_in_thread, p) != 0)
    _exit(3);
  pthread_join(t, NULL);
  free(launder(p));
}

static void cross_thread_of_size(size_t size)
{
  void *p = malloc(launder_size(size));
  cr_assert_not_null(p);
  die_with_line(double_free_remote_first, p, (uintptr_t)p, DOUBLE_FREE);
}

Test(double_free, first_free_in_another_thread_small, .signal = SIGABRT)
{
  cross_thread_of_size(80);
}

Test(double_free, first_free_in_another_thread_large, .signal = SIGABRT)
{
  cross_thread_of_size(100 * KiB);
}

Test(double_free, first_free_in_another_thread_huge, .signal = SIGABRT)
{
  cross_thread_of_size(4 * MiB);
}

/* Both frees in other threads than the owner. */
static void double_free_two_threads(void *p)
{
  pthread_t t;
  if (pthread_create(&t, NULL, free_in_thread, p) != 0)
    _exit(3);
  pthread_join(t, NULL);
  if (pthread_create(&t, NULL, free_in_thread, p) != 0)
    _exit(3);
  pthread_join(t, NULL);
}

Test(double_free, both_frees_in_other_threads, .signal = SIGABRT)
{
  void *p = malloc(launder_size(200));
  cr_assert_not_null(p);
  die_with_line(double_free_two_threads, p, (uintptr_t)p, DOUBLE_FREE);
}

/* The first free happens in a thread that then exits: its cache goes back,
 * the block's slab (alone in its class) empties and its SuperSlab may go
 * to the LRU cache with its pages released, so a cookie written into the
 * block is gone. The second free must still be caught; since the memory
 * may by then be cached or unmapped, "invalid pointer" wording is
 * accepted too. */
static void *free_and_exit(void *p)
{
  free(p);
  return NULL;
}

static void double_free_after_thread_exit(void *arg)
{
  void **pp = arg;
  pthread_t t;
  if (pthread_create(&t, NULL, free_and_exit, pp[0]) != 0)
    _exit(3);
  pthread_join(t, NULL);
  free(launder(pp[0]));
}

static void *alloc_in_thread(void *arg)
{
  size_t size = *(size_t *)arg;
  void *p = malloc(launder_size(size));
  if (p)
    memset(p, 0x42, size);
  return p;
}

static void double_free_of_emptied(size_t size)
{
  static void *pp[1];
  pthread_t t;
  cr_assert_eq(pthread_create(&t, NULL, alloc_in_thread, &size), 0);
  cr_assert_eq(pthread_join(t, &pp[0]), 0);
  cr_assert_not_null(pp[0]);
  die_with_line(double_free_after_thread_exit, pp, (uintptr_t)pp[0],
                DOUBLE_FREE "|invalid|not allocated|not a block");
}

Test(double_free, after_its_slab_emptied_small, .signal = SIGABRT)
{
  double_free_of_emptied(24 * KiB);
}

Test(double_free, after_its_slab_emptied_large, .signal = SIGABRT)
{
  double_free_of_emptied(300 * KiB);
}

Test(double_free, after_its_region_was_cached_huge, .signal = SIGABRT)
{
  double_free_of_emptied(5 * MiB);
}

/* Four 1 KiB blocks fill a page; the other blocks of their slab live on.
 * malloc_trim(0) gives the page back, and its blocks leave the free list
 * (parked, their memory reads as zero): a second free of one of them is
 * still caught. */
static void *page_blocks[4];

static void double_free_of_parked(void *p)
{
  for (int i = 0; i < 4; i++)
    free(page_blocks[i]);
  malloc_trim(0);
  free(launder(p));
}

Test(double_free, after_a_trim_gave_its_page_back, .signal = SIGABRT)
{
  blocks_of_one_page(1024, page_blocks);
  die_with_line(double_free_of_parked, page_blocks[2], (uintptr_t)page_blocks[2], DOUBLE_FREE);
}

/* stderr a pipe whose reader has gone: the line's write must not end the
 * process by SIGPIPE before abort(). */
Test(double_free, with_stderr_a_broken_pipe, .signal = SIGABRT)
{
  int fds[2];
  cr_assert_eq(pipe(fds), 0);
  close(fds[0]);
  cr_assert_eq(dup2(fds[1], 2), 2);
  void *p = malloc(launder_size(48));
  cr_assert_not_null(p);
  double_free(p);
}
