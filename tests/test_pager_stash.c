/* Description: the pager's stash of huge pages (pager/stash.h). Its slots
 * fill only after a first miss, are claimed, moved out whole and given
 * back; a heap that grows gets new SuperSlabs made present whole by one
 * huge page moved in before the header is written, counted as direct
 * supply, with no fault and blocks that read as zero; the stash goes back
 * to the kernel at malloc_trim; a fork child, which has no stash,
 * allocates; and without the stash (no_stash) new SuperSlabs keep small
 * pages. Skipped where transparent huge pages are off. */
#include "test_pager_helpers.h"

#include "internal.h"
#include "lru.h"
#include "pagemap.h"
#include "stash.h"

#include <malloc.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static void setup(void)
{
  skip_unless_uffd(true);
  start_or_fail(test_config());
}

static void teardown(void) { pager_stop(); }

TestSuite(pager_stash, .init = setup, .fini = teardown, .timeout = 120);

static void skip_without_stash(void)
{
  struct pager_info info;
  pager_get_info(&info);
  if (!info.stash_open)
    cr_skip_test("the pager has no stash: transparent huge pages are off (\"never\") or missing here");
}

/* Whether [p, p + 2 MiB) is one huge page mapped whole. */
static bool one_huge_page(const void *p)
{
  int huge = pagemap_is_huge_page((uintptr_t)p);
  if (huge < 0)
    cr_skip_test("this kernel has no PAGEMAP_SCAN (Linux 6.7) to tell a huge page");
  return huge == 1;
}

enum { BLOCK = 1024, PER_SS = (int)(TUNIT / BLOCK), MAX_BLOCKS = 64 * PER_SS };
static char *blocks[MAX_BLOCKS];
static int nblocks;

/* 2 MiB of 1 KiB blocks, calloc'ed, checked to read as zero, then
 * written: most of a new SuperSlab. */
static void grow_heap(void)
{
  cr_assert_leq(nblocks + PER_SS, MAX_BLOCKS);
  for (int i = 0; i < PER_SS; i++) {
    char *b = calloc(1, BLOCK);
    cr_assert_not_null(b);
    cr_assert(all_zero(b, BLOCK), "a block of a new SuperSlab read as not zero");
    memset(b, 0x6B, BLOCK);
    blocks[nblocks++] = b;
  }
}

static void free_blocks(void)
{
  while (nblocks) free(blocks[--nblocks]);
}

/* Grow the heap until the stash holds a full slot (up to 20 s: the
 * test's premise). The LRU is emptied first: a cached SuperSlab is taken
 * before a new one is mapped. */
static void fill_stash(void)
{
  struct pager_info info;
  lru_trim(1);
  for (int i = 0; i < 2000; i++) {
    pager_get_info(&info);
    if (info.stash_pages >= TUNIT / TPAGE) return;
    if (nblocks + PER_SS <= MAX_BLOCKS / 2) grow_heap();
    usleep(10000);
  }
  cr_assert_fail("test premise: the stash filled (it holds %llu pages)", (unsigned long long)info.stash_pages);
}

/* The SuperSlabs of the blocks from `first` on that are one huge page. */
static int huge_superslabs_from(int first)
{
  int huge = 0;
  uintptr_t last = 0;
  for (int i = first; i < nblocks; i++) {
    uintptr_t ss = (uintptr_t)blocks[i] & ~(uintptr_t)(TUNIT - 1);
    if (ss == last)
      continue;
    last = ss;
    huge += one_huge_page((void *)ss);
  }
  return huge;
}

Test(pager_stash, slots_fill_after_a_miss_and_are_moved_out_whole)
{
  skip_without_stash();
  struct stash s;
  cr_assert_eq(stash_init(&s, 2 * TUNIT), 0);
  cr_assert_not(stash_wants_fill(&s), "the stash fills before anything asked for it");
  cr_assert_eq(stash_claim(&s), -1);
  cr_assert(stash_wants_fill(&s), "a miss did not ask for a slot");
  cr_assert_eq(stash_fill_step(&s), TUNIT / TPAGE, "the kernel gave no huge page");
  cr_assert_eq(stash_level(&s), TUNIT / TPAGE);
  cr_assert_not(stash_wants_fill(&s), "the stash wants more than its target");

  char *dst = map_units(TUNIT);
  cr_assert_eq(uffd_register(&pager.uffd, (uintptr_t)dst, TUNIT, NULL), 0);
  int slot = stash_claim(&s);
  cr_assert_geq(slot, 0);
  cr_assert(stash_move_out(&s, slot, &pager.uffd, (uintptr_t)dst));
  cr_assert_eq(resident_pages(dst, TUNIT), TUNIT / TPAGE);
  cr_assert(one_huge_page(dst), "the huge page did not move whole");
  cr_assert(all_zero(dst, TUNIT));
  cr_assert_eq(stash_level(&s), 0);

  cr_assert_eq(stash_fill_step(&s), TUNIT / TPAGE);
  cr_assert_eq(stash_shrink(&s), TUNIT / TPAGE);
  cr_assert_eq(stash_level(&s), 0);
  cr_assert_not(stash_wants_fill(&s), "a shrunk stash fills again before a miss");
  uffd_unregister(&pager.uffd, (uintptr_t)dst, TUNIT);
  munmap(dst, TUNIT);
  stash_fini(&s);
}

Test(pager_stash, a_growing_heap_gets_new_superslabs_as_whole_huge_pages)
{
  skip_without_stash();
  grow_heap(); /* the heap's first SuperSlab is left to the kernel's faults */
  fill_stash();
  struct hakmem_stats s0 = stats_now();
  int first = nblocks;
  grow_heap();
  grow_heap();
  struct hakmem_stats s1 = stats_now();
  cr_assert_geq(huge_superslabs_from(first), 1, "no new SuperSlab is a huge page");
  cr_assert_geq(s1.supply[HAKMEM_SUPPLY_DIRECT].pages - s0.supply[HAKMEM_SUPPLY_DIRECT].pages, TUNIT / TPAGE,
                "the huge page's pages were not counted as direct supply");
  cr_assert_eq(s1.pager_faults, s0.pager_faults, "a page of a new SuperSlab faulted");
  free_blocks();
}

Test(pager_stash, goes_back_to_the_kernel_at_malloc_trim)
{
  skip_without_stash();
  grow_heap();
  fill_stash();
  struct hakmem_stats s0 = stats_now();
  malloc_trim(0);
  struct pager_info info;
  pager_get_info(&info);
  cr_assert_eq(info.stash_pages, 0, "%llu pages stay in the stash", (unsigned long long)info.stash_pages);
  struct hakmem_stats s1 = stats_now();
  cr_assert_geq(s1.pager_returned - s0.pager_returned, TUNIT / TPAGE);
  free_blocks();
}

static int child_grows_heap(void)
{
  for (int round = 0; round < 4; round++) {
    char *b[PER_SS];
    for (int i = 0; i < PER_SS; i++) {
      b[i] = calloc(1, BLOCK);
      if (!b[i])
        return 1;
      for (int k = 0; k < BLOCK; k++)
        if (b[i][k])
          return 2;
      memset(b[i], 0x3C, BLOCK);
    }
    for (int i = 0; i < PER_SS; i++)
      free(b[i]);
  }
  return 0;
}

Test(pager_stash, a_fork_child_allocates_and_the_parent_keeps_its_stash)
{
  skip_without_stash();
  grow_heap();
  fill_stash();
  run_in_child(child_grows_heap);
  int first = nblocks;
  grow_heap();
  grow_heap();
  cr_assert_geq(huge_superslabs_from(first), 1, "after the fork no new SuperSlab is a huge page");
  free_blocks();
}

Test(pager_stash, without_it_new_superslabs_keep_small_pages)
{
  pager_stop();
  struct pager_config c = test_config();
  c.no_stash = true;
  start_or_fail(c);
  struct pager_info info;
  pager_get_info(&info);
  cr_assert_not(info.stash_open);
  lru_trim(1);
  grow_heap();
  struct hakmem_stats s0 = stats_now();
  int first = nblocks;
  for (int i = 0; i < 4; i++)
    grow_heap();
  struct hakmem_stats s1 = stats_now();
  cr_assert_eq(huge_superslabs_from(first), 0, "a SuperSlab is a huge page without the stash");
  cr_assert_gt(pager_pages(&s1) - pager_pages(&s0), 0, "the pager supplied nothing");
  free_blocks();
}
