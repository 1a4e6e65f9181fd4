/* Description: helpers of the pager's tests: the skip when this machine
 * gives no full userfaultfd (or no UFFDIO_MOVE), a pager configuration
 * from the options, anonymous mappings the tests own, and the ledger.
 *
 * Everything here is static: each test program is one translation unit. */
#ifndef HAKMEM_TESTS_PAGER_HELPERS_H
#define HAKMEM_TESTS_PAGER_HELPERS_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <criterion/criterion.h>
#include <dirent.h>
#include <liburing.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hakmem.h"
#include "rss.h"
#include "unnamed_file.h"
#include "options.h"
#include "pager.h"
#include "uffd.h"

/* Keep gcc from folding a malloc/free pair. */
static inline void *launder_ptr(void *p)
{
  __asm__ volatile("" : "+r"(p) : : "memory");
  return p;
}

#define TPAGE ((size_t)4096)
#define TUNIT ((size_t)2 << 20)

/* Skip the test, saying why, unless a full userfaultfd can be opened here
 * (and, with need_move, UFFDIO_MOVE negotiated), and an io_uring, the
 * pager's event loop (kernel.io_uring_disabled or a seccomp filter may
 * refuse one). */
static inline void skip_unless_uffd(bool need_move)
{
  struct uffd u;
  int err = uffd_open(&u, UFFD_FEATURE_MOVE);
  if (err)
    cr_skip_test("no full userfaultfd on this machine (%s): the pager cannot run here", strerror(-err));
  bool move = u.can_move;
  uffd_close(&u);
  if (need_move && !move) cr_skip_test("the kernel lacks UFFDIO_MOVE (Linux 6.8+): nothing to test here");
  struct io_uring ring;
  err = io_uring_queue_init(2, &ring, 0);
  if (err)
    cr_skip_test("no io_uring here (%s; kernel.io_uring_disabled?): the pager cannot run here", strerror(-err));
  io_uring_queue_exit(&ring);
}

/* Whether any thread of this process is an io_uring worker, whoever's. */
static inline bool any_ring_worker(void)
{
  DIR *d = opendir("/proc/self/task");
  if (!d) return false;
  bool found = false;
  for (struct dirent *e; !found && (e = readdir(d));) {
    char path[300], comm[32] = "";
    snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
    FILE *f = fopen(path, "r");
    if (!f) continue;
    found = fgets(comm, sizeof comm, f) && strncmp(comm, "iou-wrk-", 8) == 0;
    fclose(f);
  }
  closedir(d);
  return found;
}

/* The configuration the options give, with a small pool. */
static inline struct pager_config test_config(void)
{
  struct pager_config c;
  pager_config_from_options(&c);
  c.pool_bytes = (size_t)16 << 20;
  return c;
}

static inline void start_or_fail(struct pager_config c)
{
  int err = pager_start(&c);
  cr_assert_eq(err, 0, "pager_start: %s", strerror(-err));
  cr_assert(pager_running());
}

/* A 2 MiB-aligned anonymous mapping of len bytes, all absent. */
static inline char *map_units(size_t len)
{
  char *raw = mmap(NULL, len + TUNIT, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  cr_assert_neq(raw, MAP_FAILED);
  char *p = (char *)(((uintptr_t)raw + TUNIT - 1) & ~(uintptr_t)(TUNIT - 1));
  if (p > raw) munmap(raw, (size_t)(p - raw));
  munmap(p + len, (size_t)(raw + TUNIT - p));
  /* Page by page: under THP "always" a first write would make the whole
   * 2 MiB present, and the tests count present pages and holes. */
  madvise(p, len, MADV_NOHUGEPAGE);
  return p;
}

/* Pages of [p, p+len) present now. */
static inline size_t resident_pages(const void *p, size_t len)
{
  unsigned char vec[4096];
  size_t n = len / TPAGE, count = 0;
  cr_assert_leq(n, sizeof vec);
  cr_assert_eq(mincore((void *)p, len, vec), 0);
  for (size_t i = 0; i < n; i++) count += vec[i] & 1;
  return count;
}

static inline bool all_zero(const char *p, size_t len)
{
  for (size_t i = 0; i < len; i += sizeof(uint64_t))
    if (*(const uint64_t *)(p + i)) return false;
  return true;
}

static inline struct hakmem_stats stats_now(void)
{
  struct hakmem_stats s;
  hakmem_stats_get(&s);
  return s;
}

/* Pages the pager supplied by any of its paths. */
static inline uint64_t pager_pages(const struct hakmem_stats *s)
{
  return s->supply[HAKMEM_SUPPLY_UFFD_MOVE].pages + s->supply[HAKMEM_SUPPLY_DIRECT].pages +
         s->supply[HAKMEM_SUPPLY_UFFD_COPY].pages + s->supply[HAKMEM_SUPPLY_UFFD_ZERO].pages;
}

/* Wait until the running pager's pool holds `pages` clean pages (up to
 * 20 s, else the test fails: its premise), and return what it holds. The
 * pool fills only once the pager has
 * supplied pages; a huge block written in part, each round, makes it
 * supply some (by faults, or directly), and a dry pool grows. The trim
 * first makes that block a fresh mapping, not a cached one whose page is
 * present already. */
static inline struct pager_info fill_pool(uint64_t pages)
{
  struct pager_info info;
  malloc_trim(0);
  for (int i = 0; i < 4000; i++) {
    pager_get_info(&info);
    if (info.clean_pages >= pages) break;
    char *warm = malloc(4 << 20);
    cr_assert(warm != NULL);
    /* Past the page that holds the region's header, 256 KiB in order,
     * past a first window: the pager keeps giving blocks their first
     * windows (readahead.h). */
    memset(warm + (1 << 20), 1, 256 << 10);
    free(warm);
    usleep(5000);
  }
  cr_assert_geq(info.clean_pages, pages, "test premise: the pool filled to %llu pages (%llu clean)",
                (unsigned long long)pages, (unsigned long long)info.clean_pages);
  return info;
}

/* Run fn in a forked child: the test fails unless fn returns 0, its
 * exit code naming the step that failed. */
static inline void run_in_child(int (*fn)(void))
{
  pid_t pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0) _exit(fn());
  int status;
  cr_assert_eq(waitpid(pid, &status, 0), pid);
  cr_assert(WIFEXITED(status), "child died: status %d", status);
  cr_assert_eq(WEXITSTATUS(status), 0, "child failed at step %d", WEXITSTATUS(status));
}

#endif /* HAKMEM_TESTS_PAGER_HELPERS_H */
