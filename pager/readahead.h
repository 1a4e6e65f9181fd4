/* readahead.h: how far ahead to supply a large or huge block's pages.
 *
 * A slab is carved in order, so a SuperSlab gets whole chunks. A block's
 * pages are another matter: a program may write all of a 4 MiB buffer, or
 * only its first and last bytes, and every page supplied that it never
 * writes costs a zeroed page from the pool (the pager's CPU, the
 * program's RSS). So a block gets a first window when it is handed out,
 * and a write fault right where the last supply of a block ended (the
 * program writes on in order) gets four times that supply's length, up to
 * the fault chunk; one on the page just before where a supply began (the
 * program writes downwards, as sort fills its line table) as much,
 * backward, within the fault's 2 MiB unit; any other write fault gets the
 * first window again, forward from the faulting page. The record of where supplies ended is a
 * small direct-mapped table: a lost entry only costs a smaller window.
 *
 * The first window's length is learned: READAHEAD_FIRST_PAGES while the
 * program writes on past its blocks' first windows, none (and a page a
 * fault) while it does not (a block written at a byte or two would
 * otherwise hold 16 pages: 30,000 blocks of 1.1 MB written at one byte
 * each took 1.4 GB of RSS with the pager, 122 MB without). */
#ifndef HAKMEM_PAGER_READAHEAD_H
#define HAKMEM_PAGER_READAHEAD_H

#include <stdbool.h>
#include <stdint.h>

/* Pages of a block's first window, while the program writes on past them. */
#define READAHEAD_FIRST_PAGES 16u

/* Pages of the first window to give a block handed out now (0: none);
 * counts the block. */
uint32_t readahead_first_window(void);

/* A supply covered the pages of [start, end) (page addresses). */
void readahead_note(uintptr_t start, uintptr_t end);

/* Pages to supply for the write fault at page `addr`, at most max_pages:
 * forward from it, or, with *backward, ending with it. */
uint32_t readahead_pages(uintptr_t addr, uint32_t max_pages, bool *backward);

#endif /* HAKMEM_PAGER_READAHEAD_H */
