/* Description: the pager serving the allocator: direct supply of fresh
 * slabs (the slabs ahead in the same move), write faults of huge blocks served by UFFDIO_MOVE a chunk at a
 * time, read faults by the zero page, read(2) into fresh memory, eight
 * threads filling 64 MiB each, a signal handler writing into fresh memory
 * while threads allocate, realloc moving huge blocks (mremap), blocks
 * released to the kernel and reused, SuperSlabs recycled through the pool
 * (HAKMEM_SS_LAZY_ZERO=3) and zeroed in the background, the pool's fresh
 * pages counted with their time, the COPY fallback
 * where UFFDIO_MOVE is missing, and the ledger's rows for all of it;
 * HAKMEM_HUGE_THP asks for no huge pages while the pager serves. */
#include "test_pager_helpers.h"

#include "internal.h"
#include "lru.h"
#include "options.h"
#include "pool.h"
#include "smaps.h"

#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

static void setup(void)
{
  skip_unless_uffd(true);
  start_or_fail(test_config());
}

static void teardown(void) { pager_stop(); }

TestSuite(pager_serve, .init = setup, .fini = teardown, .timeout = 120);

Test(pager_serve, small_blocks_come_by_direct_supply_and_read_as_zero)
{
  struct hakmem_stats s0 = stats_now();
  enum { N = 20000 };
  static char *b[N];
  for (int i = 0; i < N; i++) {
    b[i] = calloc(1, 16 + (size_t)(i % 64) * 16);
    cr_assert(all_zero(b[i], 16));
    memset(b[i], 0x77, 16);
  }
  struct hakmem_stats s1 = stats_now();
  /* Moved from the pool, or copied on this thread while the pool was still
   * filling: either way on the allocating thread, without a fault. */
  uint64_t direct = s1.supply[HAKMEM_SUPPLY_DIRECT].pages - s0.supply[HAKMEM_SUPPLY_DIRECT].pages;
  uint64_t copied = s1.supply[HAKMEM_SUPPLY_UFFD_COPY].pages - s0.supply[HAKMEM_SUPPLY_UFFD_COPY].pages;
  cr_assert_gt(direct + copied, 0);
  cr_assert_eq(s1.pager_faults, s0.pager_faults, "no slab page faulted");
  for (int i = 0; i < N; i++) free(b[i]);
}

/* The pool's fresh pages are background zeroing too, by the kernel on the
 * pager's thread: counted with the time they took. Every clean page came
 * from a refill or was a recycled page the pager cleared. */
Test(pager_serve, the_pools_fresh_pages_are_counted_with_their_time)
{
  struct hakmem_stats s0 = stats_now();
  fill_pool(512);
  struct hakmem_stats s1 = stats_now();
  uint64_t refilled = s1.pager_refill_pages - s0.pager_refill_pages;
  uint64_t cleared = s1.pager_zero_pages - s0.pager_zero_pages;
  cr_assert_gt(refilled, 0, "the pool filled, and no fresh page was counted");
  cr_assert_gt(s1.pager_refill_ns, s0.pager_refill_ns, "%llu fresh pages took no time", (unsigned long long)refilled);
  cr_assert_leq(s1.pager_pool_pages, s0.pager_pool_pages + refilled + cleared,
                "%llu pages in the pool, %llu before, %llu refilled and %llu cleared since",
                (unsigned long long)s1.pager_pool_pages, (unsigned long long)s0.pager_pool_pages,
                (unsigned long long)refilled, (unsigned long long)cleared);
}

/* A fresh slab's direct supply takes the rest of its SuperSlab from the
 * pool in one move, not a move per slab: each move flushes the TLB on
 * every CPU the process runs on. */
Test(pager_serve, direct_supply_moves_the_slabs_ahead_in_one_move)
{
  fill_pool(512);
  enum { N = 200, SIZE = 3072 }; /* about ten 64 KiB slabs */
  static char *b[N];
  struct hakmem_stats s0 = stats_now();
  for (int i = 0; i < N; i++) {
    b[i] = malloc(SIZE);
    memset(b[i], 0x5C, SIZE);
  }
  struct hakmem_stats s1 = stats_now();
  uint64_t pages = s1.supply[HAKMEM_SUPPLY_DIRECT].pages - s0.supply[HAKMEM_SUPPLY_DIRECT].pages;
  uint64_t moves = s1.supply[HAKMEM_SUPPLY_DIRECT].events - s0.supply[HAKMEM_SUPPLY_DIRECT].events;
  cr_assert_geq(pages, N * SIZE / 4096, "%llu pages by direct supply", (unsigned long long)pages);
  /* One move per SuperSlab the blocks reach: at most two, and one more for
   * a move that met a page present already. */
  cr_assert_leq(moves, 3, "%llu moves for %llu pages", (unsigned long long)moves, (unsigned long long)pages);
  cr_assert_eq(s1.pager_faults, s0.pager_faults, "a slab page faulted");
  for (int i = 0; i < N; i++) free(b[i]);
}

/* Without direct supply a huge block's pages come by faults. The pool's
 * first bin is filled before the test goes on. */
static void restart_without_direct(void)
{
  pager_stop();
  struct pager_config c = test_config();
  c.direct = false;
  start_or_fail(c);
  fill_pool(512);
}

static uint64_t supplied_pages(const struct hakmem_stats *a, const struct hakmem_stats *b)
{
  uint64_t n = 0;
  for (int i = HAKMEM_SUPPLY_UFFD_MOVE; i <= HAKMEM_SUPPLY_UFFD_ZERO; i++) n += b->supply[i].pages - a->supply[i].pages;
  return n;
}

/* A huge block gets its first window from the pool as it is handed out,
 * never by COPY on the allocating thread; written in order, the rest
 * comes in windows that grow four times a fault, up to a 2 MiB chunk. */
Test(pager_serve, a_huge_block_written_in_order_comes_in_growing_windows)
{
  fill_pool(512); /* what the pool holds before the test grows it */
  struct hakmem_stats s0 = stats_now();
  size_t len = 24 << 20; /* bigger than anything cached: a fresh mapping */
  char *p = malloc(len);
  struct hakmem_stats s1 = stats_now();
  uint64_t first = s1.supply[HAKMEM_SUPPLY_DIRECT].pages - s0.supply[HAKMEM_SUPPLY_DIRECT].pages;
  cr_assert_gt(first, 0, "no page of the block came as it was handed out");
  cr_assert_leq(first, 16, "%llu pages supplied ahead of any write", (unsigned long long)first);
  cr_assert_eq(s1.supply[HAKMEM_SUPPLY_UFFD_COPY].pages, s0.supply[HAKMEM_SUPPLY_UFFD_COPY].pages,
               "a huge block is never allocated by COPY on the allocating thread");
  /* Past the first window, the first fault brings the next 64 pages. */
  memset(p, 1, (first + 64) * TPAGE);
  struct hakmem_stats s15 = stats_now();
  cr_assert_leq(s15.pager_faults - s1.pager_faults, 2, "%llu faults for the first %llu pages",
                (unsigned long long)(s15.pager_faults - s1.pager_faults), (unsigned long long)(first + 64));
  uint64_t second = supplied_pages(&s1, &s15);
  cr_assert(second >= 64 && second < 256, "the window after the first brought %llu pages, not 64",
            (unsigned long long)second);
  memset(p, 1, len);
  struct hakmem_stats s2 = stats_now();
  uint64_t faults = s2.pager_faults - s1.pager_faults;
  /* 16 pages, then 64, 256 and whole chunks: about 3 + 12 faults. */
  cr_assert_leq(faults, 24, "%llu faults for a 24 MiB block written in order", (unsigned long long)faults);
  cr_assert_geq(supplied_pages(&s0, &s2), len / TPAGE - 1);
  free(p);
}

/* Written backwards, page by page from its end (as sort fills its line
 * table), a huge block comes in windows that grow downwards: a few dozen
 * faults, not one a page. */
Test(pager_serve, a_huge_block_written_backwards_comes_in_growing_windows)
{
  fill_pool(64);
  size_t len = 24 << 20; /* bigger than anything cached: a fresh mapping */
  char *p = malloc(len);
  cr_assert_not_null(p);
  struct hakmem_stats s0 = stats_now();
  for (size_t off = len; off >= TPAGE; off -= TPAGE) p[off - TPAGE] = (char)(off >> 12);
  struct hakmem_stats s1 = stats_now();
  uint64_t faults = s1.pager_faults - s0.pager_faults;
  cr_assert_leq(faults, 64, "%llu faults for a 24 MiB block written backwards", (unsigned long long)faults);
  for (size_t off = 0; off < len; off += TPAGE) cr_assert_eq(p[off], (char)((off + TPAGE) >> 12));
  free(p);
}

/* A program that writes its huge blocks at their first bytes only soon
 * gets no first window: each block then holds the header's page alone,
 * not 16 more; and one that writes a block on in order gets them back. */
Test(pager_serve, blocks_written_at_their_start_only_lose_their_first_window)
{
  fill_pool(64);
  enum { N = 48, WARM = 16 };
  size_t len = (size_t)11 << 17; /* 1.375 MiB: a huge block */
  char *p[N];
  struct hakmem_stats s0 = stats_now(), s1 = s0;
  for (int i = 0; i < N; i++) {
    if (i == WARM) s1 = stats_now();
    p[i] = malloc(len);
    cr_assert_not_null(p[i]);
    p[i][0] = 1;
  }
  struct hakmem_stats s2 = stats_now();
  uint64_t late = supplied_pages(&s1, &s2);
  cr_assert_leq(late, N - WARM, "%llu pages supplied for %d blocks written at their first byte",
                (unsigned long long)late, N - WARM);
  uint64_t early = s1.supply[HAKMEM_SUPPLY_DIRECT].pages - s0.supply[HAKMEM_SUPPLY_DIRECT].pages;
  cr_assert_gt(early, WARM, "test premise: the first %d blocks got first windows (%llu pages)", WARM,
               (unsigned long long)early);
  enum { DENSE = 3 };
  char *dense[DENSE];
  for (int i = 0; i < DENSE; i++) { /* written in order: first windows come back */
    dense[i] = malloc(len);
    cr_assert_not_null(dense[i]);
    memset(dense[i], 2, len);
  }
  fill_pool(64); /* a first window comes from the pool only */
  struct hakmem_stats s3 = stats_now();
  char *after = malloc(24 << 20); /* bigger than anything cached: a fresh mapping */
  struct hakmem_stats s4 = stats_now();
  cr_assert_geq(s4.supply[HAKMEM_SUPPLY_DIRECT].pages - s3.supply[HAKMEM_SUPPLY_DIRECT].pages, 16,
                "a block handed out after blocks written in order got no first window");
  for (int i = 0; i < N; i++) free(p[i]);
  for (int i = 0; i < DENSE; i++) free(dense[i]);
  free(after);
}

/* A block the program writes here and there gets windows around its
 * writes, not its whole body: its first and last bytes written, 256 KiB
 * blocks of 16 MiB cost at most a few windows each. */
Test(pager_serve, a_huge_block_written_sparsely_gets_only_windows)
{
  fill_pool(512); /* what the pool holds before the test grows it */
  enum { N = 8 };
  size_t len = 16 << 20;
  char *p[N];
  struct hakmem_stats s0 = stats_now();
  for (int i = 0; i < N; i++) {
    p[i] = malloc(len);
    cr_assert_not_null(p[i]);
    p[i][0] = 1;
    p[i][len / 2] = 2;
    p[i][len - 1] = 3;
  }
  struct hakmem_stats s1 = stats_now();
  uint64_t pages = supplied_pages(&s0, &s1);
  cr_assert_leq(pages, N * 3 * 16, "%llu pages supplied for %d blocks written at three places",
                (unsigned long long)pages, N);
  for (int i = 0; i < N; i++) {
    cr_assert_eq(p[i][1], 0);
    cr_assert_eq(p[i][len / 2 + 1], 0);
    cr_assert_eq(p[i][len - 1], 3);
    free(p[i]);
  }
}

Test(pager_serve, write_faults_of_a_huge_block_are_served_by_move)
{
  restart_without_direct();
  struct hakmem_stats s0 = stats_now();
  size_t len = 16 << 20;
  char *p = malloc(len);
  for (size_t i = 0; i < len; i += TPAGE) p[i] = (char)(i >> 12); /* write first: no zero page */
  for (size_t i = 0; i < len; i += TPAGE) {
    cr_assert_eq(p[i], (char)(i >> 12));
    cr_assert_eq(p[i + 7], 0, "the rest of a supplied page is zero");
  }
  struct hakmem_stats s1 = stats_now();
  uint64_t faults = s1.pager_faults - s0.pager_faults;
  uint64_t moved = s1.supply[HAKMEM_SUPPLY_UFFD_MOVE].pages - s0.supply[HAKMEM_SUPPLY_UFFD_MOVE].pages;
  cr_assert_gt(faults, 0);
  cr_assert_gt(moved, 0);
  cr_assert_leq(faults, len / TPAGE / 8, "many pages per fault, never one: %lu faults", (unsigned long)faults);
  uint64_t waits = 0;
  for (int i = 0; i < HAKMEM_WAIT_BUCKETS; i++) waits += s1.fault_wait_hist[i] - s0.fault_wait_hist[i];
  cr_assert_eq(waits, faults, "every fault's wait is in the histogram");
  free(p);
}

/* A fault's pages are in the ledger before the faulting thread wakes: a
 * snapshot taken right after the writes counts every page they faulted,
 * the last window's too. */
Test(pager_serve, a_snapshot_right_after_the_writes_counts_every_page_they_faulted)
{
  restart_without_direct();
  char *p[4];
  for (int round = 0; round < 4; round++) {
    /* Bigger than anything cached, and live till the end: all fresh. */
    size_t len = (size_t)(24 + round) << 20;
    struct hakmem_stats s0 = stats_now();
    p[round] = malloc(len);
    cr_assert_not_null(p[round]);
    for (size_t i = 0; i < len; i += TPAGE) p[round][i] = 1;
    struct hakmem_stats s1 = stats_now();
    uint64_t counted = supplied_pages(&s0, &s1) + s1.supply[HAKMEM_SUPPLY_DIRECT].pages - s0.supply[HAKMEM_SUPPLY_DIRECT].pages;
    cr_assert_geq(counted, len / TPAGE - 1, "round %d: %llu pages counted of %zu written", round,
                  (unsigned long long)counted, len / TPAGE);
  }
  for (int round = 0; round < 4; round++) free(p[round]);
}

Test(pager_serve, read_faults_map_the_zero_page)
{
  restart_without_direct();
  struct hakmem_stats s0 = stats_now();
  size_t len = 12 << 20;
  char *p = calloc(1, len);
  volatile char sum = 0;
  for (size_t i = 0; i < len; i += TPAGE) sum += p[i];
  cr_assert_eq(sum, 0);
  struct hakmem_stats s1 = stats_now();
  cr_assert_gt(s1.supply[HAKMEM_SUPPLY_UFFD_ZERO].pages, s0.supply[HAKMEM_SUPPLY_UFFD_ZERO].pages);
  p[len / 2] = 1; /* and writing afterwards works */
  cr_assert_eq(p[len / 2], 1);
  free(p);
}

static void *writer(void *arg)
{
  int fd = *(int *)arg;
  static char chunk[65536];
  for (size_t i = 0; i < sizeof chunk; i++) chunk[i] = (char)(i * 7);
  for (int k = 0; k < 64; k++)
    if (write(fd, chunk, sizeof chunk) != (ssize_t)sizeof chunk) break;
  close(fd);
  return NULL;
}

Test(pager_serve, read_syscalls_into_fresh_malloc_memory)
{
  int pipefd[2];
  cr_assert_eq(pipe(pipefd), 0);
  pthread_t t;
  cr_assert_eq(pthread_create(&t, NULL, writer, &pipefd[1]), 0);
  size_t len = 4 << 20, got = 0;
  char *p = malloc(len); /* a huge block: absent, registered */
  ssize_t n;
  while ((n = read(pipefd[0], p + got, len - got)) > 0) got += (size_t)n;
  cr_assert_eq(n, 0, "read: %s", strerror(errno));
  cr_assert_eq(got, 64 * 65536);
  for (size_t i = 0; i < got; i++) cr_assert_eq(p[i], (char)((i % 65536) * 7));
  pthread_join(t, NULL);
  close(pipefd[0]);
  /* From a file too: /proc/self/exe into a fresh block. */
  int fd = open("/proc/self/exe", O_RDONLY);
  char *q = malloc(2 << 20);
  cr_assert_gt(read(fd, q, 2 << 20), 0);
  cr_assert_eq(memcmp(q + 1, "ELF", 3), 0);
  close(fd);
  free(q);
  free(p);
}

static void *fill_64mib(void *arg)
{
  uintptr_t seed = (uintptr_t)arg;
  size_t total = 0;
  char *blocks[4096];
  int n = 0;
  while (total < (64u << 20)) {
    size_t sz = (n % 8 == 0) ? (1u << 20) + (seed << 12) : 64 + (size_t)(n % 200) * 40;
    char *p = malloc(sz);
    memset(p, (int)(seed + (uintptr_t)n), sz);
    blocks[n++ % 4096] = p;
    total += sz;
    if (n % 4096 == 0)
      for (int i = 0; i < 4096; i++) {
        cr_assert_eq((unsigned char)blocks[i][0], (unsigned char)(seed + (uintptr_t)i + (uintptr_t)(n - 4096)));
        free(blocks[i]);
      }
  }
  for (int i = 0; i < n % 4096; i++) free(blocks[i]);
  return NULL;
}

Test(pager_serve, eight_threads_fill_64_mib_each)
{
  struct hakmem_stats s0 = stats_now();
  pthread_t t[8];
  for (uintptr_t i = 0; i < 8; i++) cr_assert_eq(pthread_create(&t[i], NULL, fill_64mib, (void *)i), 0);
  for (int i = 0; i < 8; i++) cr_assert_eq(pthread_join(t[i], NULL), 0);
  struct hakmem_stats s1 = stats_now();
  cr_assert_gt(pager_pages(&s1), pager_pages(&s0));
}

Test(pager_serve, eight_threads_fault_at_once_without_direct_supply)
{
  restart_without_direct();
  struct hakmem_stats s0 = stats_now();
  pthread_t t[8];
  for (uintptr_t i = 0; i < 8; i++) cr_assert_eq(pthread_create(&t[i], NULL, fill_64mib, (void *)(i + 8)), 0);
  for (int i = 0; i < 8; i++) cr_assert_eq(pthread_join(t[i], NULL), 0);
  struct hakmem_stats s1 = stats_now();
  cr_assert_gt(s1.pager_faults - s0.pager_faults, 8, "every thread's faults were served");
}

/* A signal handler that writes into a fresh malloc'd buffer (no malloc in
 * it) interrupts threads inside malloc and free, some of them holding the
 * pool's lock: its fault must still be served. Before the lock blocked
 * signals, this hung within seconds. */
static char *handler_buf;
static const size_t handler_len = 256u << 20;
static volatile size_t handler_pos;
static volatile long handler_hits;
static struct timespec churn_until;

static void touch_fresh_page(int sig)
{
  (void)sig;
  handler_buf[handler_pos % handler_len] = 1;
  handler_pos += 7 * TPAGE;
  handler_hits++;
}

static bool churn_over(void)
{
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return now.tv_sec > churn_until.tv_sec || (now.tv_sec == churn_until.tv_sec && now.tv_nsec >= churn_until.tv_nsec);
}

static void *churn_small_and_large(void *arg)
{
  uint64_t r = (uintptr_t)arg * 0x9E3779B97F4A7C15ull | 1;
  void *v[256] = { 0 };
  for (long i = 0; (i & 1023) || !churn_over(); i++) {
    r ^= r << 13;
    r ^= r >> 7;
    r ^= r << 17;
    unsigned k = r & 255;
    free(v[k]);
    v[k] = malloc((r >> 8) % 70000);
    if (v[k]) ((char *)v[k])[0] = 1;
  }
  for (int k = 0; k < 256; k++) free(v[k]);
  return NULL;
}

/* Every thread allocates, the main one too, so that the signals land in
 * malloc and free. */
Test(pager_serve, a_signal_handler_touching_fresh_memory_is_served)
{
  handler_buf = malloc(handler_len); /* a huge block, its pages absent */
  cr_assert_not_null(handler_buf);
  struct sigaction sa = { .sa_handler = touch_fresh_page };
  cr_assert_eq(sigaction(SIGALRM, &sa, NULL), 0);
  clock_gettime(CLOCK_MONOTONIC, &churn_until);
  churn_until.tv_sec += 3;
  struct itimerval it = { { 0, 100 }, { 0, 100 } };
  cr_assert_eq(setitimer(ITIMER_REAL, &it, NULL), 0);
  pthread_t t[2];
  for (uintptr_t i = 0; i < 2; i++) cr_assert_eq(pthread_create(&t[i], NULL, churn_small_and_large, (void *)(i + 1)), 0);
  churn_small_and_large((void *)3);
  for (int i = 0; i < 2; i++) cr_assert_eq(pthread_join(t[i], NULL), 0);
  struct itimerval off = { { 0, 0 }, { 0, 0 } };
  setitimer(ITIMER_REAL, &off, NULL);
  cr_assert_gt(handler_hits, 100, "the timer fired %ld times", handler_hits);
  free(handler_buf);
}

static size_t resident_in(const char *from, const char *to)
{
  static unsigned char vec[512];
  size_t n = 0;
  cr_assert_eq(mincore((void *)from, (size_t)(to - from), vec), 0);
  for (size_t i = 0; i < (size_t)(to - from) / TPAGE; i++) n += vec[i] & 1;
  return n;
}

/* Blocks of 32 KiB-1 MiB (large SuperSlabs) are left to the kernel's
 * faults: the pager supplies none of their pages, so a block written at
 * two bytes has two pages, not a window of sixteen; and malloc_trim gives
 * back the free pages after a block written whole. */
Test(pager_serve, large_blocks_are_left_to_the_kernels_faults)
{
  hakmem_trim(); /* no free page left resident by the test harness's blocks */
  struct hakmem_stats s0;
  hakmem_stats_get(&s0);
  char *p = malloc(300000);
  cr_assert_not_null(p);
  p[0] = 1;
  p[200000] = 2;
  size_t usable = malloc_usable_size(p);
  cr_assert_eq(resident_in(p, p + usable), 2, "pages of a block written at two bytes: %zu",
               resident_in(p, p + usable));
  struct hakmem_stats s1;
  hakmem_stats_get(&s1);
  cr_assert_eq(pager_pages(&s1) - pager_pages(&s0), 0, "the pager supplied pages of a large block");
  memset(p, 1, 300000);
  char *base = (char *)((uintptr_t)p & ~(TUNIT - 1)), *end = base + TUNIT;
  char *after = p + ((usable + TPAGE - 1) & ~(TPAGE - 1));
  hakmem_trim();
  size_t left = resident_in(after, end);
  cr_assert_lt(left, 8, "%zu free pages of the large SuperSlab still resident after malloc_trim", left);
  for (size_t i = 0; i < 300000; i++) cr_assert_eq(p[i], 1);
  free(p);
}

Test(pager_serve, realloc_moves_huge_blocks_and_they_stay_served)
{
  size_t len = 3 << 20;
  char *p = malloc(len);
  for (size_t i = 0; i < len; i += TPAGE) p[i] = (char)(i >> 12);
  for (int k = 0; k < 6; k++) {
    size_t nlen = len * 2;
    char *q = realloc(p, nlen);
    cr_assert_not_null(q);
    for (size_t i = 0; i < len; i += TPAGE) cr_assert_eq(q[i], (char)(i >> 12), "contents kept at %zu", i);
    for (size_t i = len; i < nlen; i += TPAGE) q[i] = (char)(i >> 12); /* the grown tail faults */
    p = q;
    len = nlen;
  }
  p = realloc(p, 5 << 20); /* and shrinks */
  cr_assert_not_null(p);
  for (size_t i = 0; i < (5 << 20); i += TPAGE) cr_assert_eq(p[i], (char)(i >> 12), "contents kept at %zu", i);
  free(p);
}

/* A cached region taken for a smaller block is cut, and its tail
 * unmapped: fault chunks must stop at the new end, or every move into its
 * last unit runs past the mapping and fails whole (the pool's zeroed pages
 * wasted). The slack of the first block leaves the second none. */
Test(pager_serve, a_cut_huge_region_ends_where_the_cut_is)
{
  char *big = malloc((size_t)30 << 20), *mid = malloc((size_t)20 << 20);
  cr_assert(big && mid);
  free(big);
  free(mid); /* both cached */
  char *a = malloc((size_t)3 << 19); /* takes the 20 MiB region whole, slack 17 MiB */
  char *b = malloc((size_t)9 << 19); /* takes the 30 MiB one, no slack left: cut to twice */
  cr_assert(a && b);
  cr_assert_eq((void *)((uintptr_t)b & ~(TUNIT - 1)), (void *)((uintptr_t)big & ~(TUNIT - 1)),
               "test premise: the block took the cached 30 MiB region");
  struct region_header *h = (struct region_header *)((uintptr_t)b & ~(TUNIT - 1));
  uintptr_t end = (uintptr_t)h + h->size;
  cr_assert_lt(h->size, (size_t)30 << 20, "the region was cut (%zu bytes)", h->size);
  cr_assert_neq(end & (TUNIT - 1), 0, "the cut ends inside a unit");
  cr_assert_eq(pager_end_of(end - TPAGE), end, "faults in the last unit stop at the cut");
  memset(b, 0x5a, (size_t)9 << 19);
  cr_assert_eq(b[((size_t)9 << 19) - 1], 0x5a);
  free(a);
  free(b);
}

Test(pager_serve, released_and_unmapped_ranges_come_back_zero)
{
  for (int k = 0; k < 20; k++) {
    size_t len = ((size_t)1 << 20) + (size_t)k * 12345;
    char *p = calloc(1, len);
    cr_assert(all_zero(p, len & ~(size_t)7));
    memset(p, 0xee, len);
    free(p); /* cached with its pages released (madvise) or unmapped */
  }
}

/* Unset, HAKMEM_SS_LAZY_ZERO hands cached regions to the pool while the
 * pager runs (3), and releases them with MADV_DONTNEED (1) otherwise; a
 * value given is kept. */
Test(pager_serve, the_pool_takes_cached_regions_unless_told_otherwise)
{
  hakmem_options.given &= ~((uint32_t)1 << OPTION_SS_LAZY_ZERO);
  cr_assert_eq(lru_release_policy(), OS_RELEASE_PAGER);
  OPTION_SET(SS_LAZY_ZERO, ss_lazy_zero, 1);
  cr_assert_eq(lru_release_policy(), OS_RELEASE_DONTNEED);
  OPTION_SET(SS_LAZY_ZERO, ss_lazy_zero, 0);
  cr_assert_eq(lru_release_policy(), OS_RELEASE_KEEP);
  hakmem_options.given &= ~((uint32_t)1 << OPTION_SS_LAZY_ZERO);
  pager_stop();
  cr_assert_eq(lru_release_policy(), OS_RELEASE_DONTNEED, "no pager, no pool");
  OPTION_SET(SS_LAZY_ZERO, ss_lazy_zero, 3);
  cr_assert_eq(lru_release_policy(), OS_RELEASE_DONTNEED, "no pager, no pool");
  start_or_fail(test_config()); /* for the teardown */
}

Test(pager_serve, superslabs_are_recycled_through_the_pool)
{
  hakmem_options.given &= ~((uint32_t)1 << OPTION_SS_LAZY_ZERO); /* the default */
  enum { N = 60000 };
  static char *b[N];
  for (int round = 0; round < 3; round++) {
    for (int i = 0; i < N; i++) {
      b[i] = malloc(512);
      memset(b[i], 0xa5, 512);
    }
    for (int i = 0; i < N; i++) free(b[i]);
    lru_trim(0); /* release the cached SuperSlabs now, by the policy: to the pager */
  }
  struct hakmem_stats s = stats_now();
  cr_assert_gt(s.pager_recycled, 0, "pages of empty SuperSlabs went to the pool");
  for (int i = 0; i < 3000 && stats_now().pager_zero_pages == 0; i++) usleep(10000); /* up to 30 s */
  cr_assert_gt(stats_now().pager_zero_pages, 0, "and were zeroed in the background");
  for (int i = 0; i < N; i++) {
    b[i] = calloc(1, 512);
    cr_assert(all_zero(b[i], 512), "a recycled page reads as zero");
  }
  for (int i = 0; i < N; i++) free(b[i]);
}

Test(pager_serve, without_move_faults_are_served_by_copy)
{
  pager_stop();
  struct pager_config c = test_config();
  c.no_move = true;
  start_or_fail(c);
  struct hakmem_stats s0 = stats_now();
  size_t len = 8 << 20;
  char *p = malloc(len);
  memset(p, 3, len);
  struct hakmem_stats s1 = stats_now();
  cr_assert_gt(s1.supply[HAKMEM_SUPPLY_UFFD_COPY].pages, s0.supply[HAKMEM_SUPPLY_UFFD_COPY].pages);
  cr_assert_eq(s1.supply[HAKMEM_SUPPLY_UFFD_MOVE].pages, s0.supply[HAKMEM_SUPPLY_UFFD_MOVE].pages);
  free(p);
}

Test(pager_serve, without_direct_supply_slabs_fault_in)
{
  pager_stop();
  struct pager_config c = test_config();
  c.direct = false;
  start_or_fail(c);
  struct hakmem_stats s0 = stats_now();
  enum { N = 20000 };
  static char *b[N];
  for (int i = 0; i < N; i++) {
    b[i] = malloc(700);
    memset(b[i], 1, 700);
  }
  struct hakmem_stats s1 = stats_now();
  cr_assert_eq(s1.supply[HAKMEM_SUPPLY_DIRECT].pages, s0.supply[HAKMEM_SUPPLY_DIRECT].pages);
  cr_assert_gt(s1.pager_faults, s0.pager_faults);
  /* Each page once, by the fault that brought it: not also as a fresh
   * page populated by the allocator, whose populate faulted here. */
  uint64_t fresh = s1.supply[HAKMEM_SUPPLY_FRESH].pages - s0.supply[HAKMEM_SUPPLY_FRESH].pages;
  cr_assert_leq(fresh, 600, "%llu pages counted fresh besides the pager's (the heap's first SuperSlab has 512)", (unsigned long long)fresh);
  for (int i = 0; i < N; i++) free(b[i]);
}

/* malloc_trim gives back the pool too, but for the one bin it refills:
 * 128 MiB written in small blocks grow the pool's target, their
 * SuperSlabs' pages go to the pool once released (lru_trim(0) releases
 * them now, rather than on refills this test does not make, or after an
 * idle pool shrank back), and after the trim the program holds what it
 * held before, the bin aside. */
Test(pager_serve, malloc_trim_gives_back_the_pool_but_one_bin)
{
  enum { N = 128 << 12 }; /* 128 MiB of 256-byte blocks */
  char **b = mmap(NULL, N * sizeof *b, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  cr_assert(b != MAP_FAILED);
  for (int i = 0; i < N; i++) {
    b[i] = malloc(256);
    memset(b[i], 0x5A, 256);
  }
  for (int i = 0; i < N; i++) free(b[i]);
  munmap(b, N * sizeof *b);
  lru_trim(0);
  struct pager_info before, after;
  for (int wait = 0; wait < 3000; wait++) { /* the pager refills in the background (up to 30 s) */
    pager_get_info(&before);
    if (before.clean_pages + before.dirty_pages > POOL_BIN_PAGES) break;
    usleep(10000);
  }
  malloc_trim(0);
  pager_get_info(&after);
  cr_assert_gt(before.clean_pages + before.dirty_pages, POOL_BIN_PAGES, "the pool never grew: nothing tested");
  cr_assert_leq(after.clean_pages + after.dirty_pages, POOL_BIN_PAGES, "%llu pages left in the pool",
                (unsigned long long)(after.clean_pages + after.dirty_pages));
  cr_assert_eq(after.target_pages, POOL_BIN_PAGES);
}

/* With a pool of 256 MiB, a trim finds hundreds of MB in it, and the
 * pager thread, told to keep one bin, gives bins back beside the caller
 * by io_uring: malloc_trim returns once those are back too, and the
 * cached SuperSlabs it unmaps go straight to the kernel, not through a
 * pool about to shrink. The process's resident set says so, right after
 * the call. (Before, this test found 61-72 MB left in three runs; a
 * program with a 1 GiB pool that freed 512 MiB of blocks, 453-548 MB,
 * the pager's releases landing 20-40 ms later.) */
Test(pager_serve, malloc_trim_returns_with_a_large_pool_given_back)
{
  pager_stop();
  struct pager_config c = test_config();
  c.pool_bytes = (size_t)256 << 20;
  start_or_fail(c);
  enum { N = 384 << 12 }; /* 384 MiB of 96-byte blocks */
  char **b = mmap(NULL, N * sizeof *b, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  cr_assert(b != MAP_FAILED);
  malloc_trim(0);
  size_t base = rss_bytes();
  for (int i = 0; i < N; i++) {
    b[i] = malloc(96);
    memset(b[i], 0x5A, 96);
  }
  for (int i = 0; i < N; i++) free(b[i]);
  munmap(b, N * sizeof *b);
  lru_trim(0); /* the cached SuperSlabs' pages into the pool now */
  struct pager_info before;
  pager_get_info(&before);
  cr_assert_gt(before.clean_pages + before.dirty_pages, 32 * POOL_BIN_PAGES, "the pool holds %llu pages: nothing tested",
               (unsigned long long)(before.clean_pages + before.dirty_pages));
  malloc_trim(0);
  size_t left = rss_bytes();
  cr_assert_lt(left, base + ((size_t)16 << 20), "%zu MB resident after malloc_trim, %zu MB before the blocks",
               left >> 20, base >> 20);
}

/* Threads that each write one block of a dozen classes: each new heap's
 * first SuperSlab is left to the kernel's faults, which make present one
 * page a class, not the pager's 64 KiB unit a class (and the rest of the
 * SuperSlab ahead). In a child, where every thread's heap is new. */
enum { FEW_THREADS = 16, FEW_CLASSES = 12 };

static pthread_barrier_t few_barrier;

static void *write_a_few_classes(void *arg)
{
  static const size_t sizes[FEW_CLASSES] = { 16, 48, 96, 160, 256, 384, 640, 1024, 1536, 2560, 3072, 4096 };
  char *b[FEW_CLASSES];
  (void)arg;
  for (int i = 0; i < FEW_CLASSES; i++) {
    b[i] = malloc(sizes[i]);
    memset(b[i], 0x3C, 16);
  }
  pthread_barrier_wait(&few_barrier); /* all alive at once: no heap is adopted */
  for (int i = 0; i < FEW_CLASSES; i++) free(b[i]);
  return NULL;
}

static int threads_of_little_memory(void)
{
  if (hakmem_pager_start() != 0) return 2;
  pthread_t t[FEW_THREADS];
  pthread_barrier_init(&few_barrier, NULL, FEW_THREADS);
  struct hakmem_stats s0 = stats_now();
  size_t rss0 = rss_bytes();
  for (int i = 0; i < FEW_THREADS; i++)
    if (pthread_create(&t[i], NULL, write_a_few_classes, NULL)) return 3;
  for (int i = 0; i < FEW_THREADS; i++) pthread_join(t[i], NULL);
  size_t rss1 = rss_bytes();
  struct hakmem_stats s1 = stats_now();
  uint64_t direct = s1.supply[HAKMEM_SUPPLY_DIRECT].pages - s0.supply[HAKMEM_SUPPLY_DIRECT].pages;
  if (direct > 0) return 4;                 /* the pager supplied their slabs */
  if (s1.pager_faults != s0.pager_faults) return 5;
  if (rss1 > rss0 + ((size_t)4 << 20)) return 6; /* 16 x 12 units would be 12 MiB */
  hakmem_pager_stop();
  return 0;
}

Test(pager_serve, a_heaps_first_superslab_is_left_to_the_kernels_faults)
{
  pager_stop(); /* the child starts its own */
  run_in_child(threads_of_little_memory);
  start_or_fail(test_config()); /* for the teardown */
}

/* The kernel would bring a region's first huge page in at its header's
 * write, before the pager registers it, and the ledger would count none
 * of its pages: while the pager runs, new regions keep small pages. */
Test(pager_serve, with_huge_thp_new_regions_keep_small_pages_and_are_counted)
{
  OPTION_SET(HUGE_THP, huge_thp, 2);
  lru_trim(1);
  struct hakmem_stats s0 = stats_now();
  enum { N = 4096 };
  static char *b[N];
  for (int i = 0; i < N; i++) { /* 4 MiB of 1 KiB blocks: new SuperSlabs */
    b[i] = malloc(1024);
    cr_assert_not_null(b[i]);
    memset(b[i], 0x5A, 1024);
  }
  char *huge = malloc(8u << 20);
  cr_assert_not_null(huge);
  memset(huge, 0x5A, 8u << 20);
  cr_assert_not(asks_for_huge_pages(b[N - 1], NULL), "a SuperSlab asked for huge pages");
  cr_assert_not(asks_for_huge_pages(huge, NULL), "a huge block's region asked for huge pages");
  struct hakmem_stats s1 = stats_now();
  uint64_t counted = 0;
  for (int path = 0; path < HAKMEM_SUPPLY_COUNT; path++)
    if (path != HAKMEM_SUPPLY_REUSE) counted += s1.supply[path].pages - s0.supply[path].pages;
  cr_assert_geq(counted, (4u << 20) / PAGE_SIZE, "%llu pages counted for 12 MiB written", (unsigned long long)counted);
  for (int i = 0; i < N; i++) free(b[i]);
  free(huge);
}
