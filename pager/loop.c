/* loop.c: the pager thread.
 *
 * Priorities, highest first: serve the faults waiting on the uffd; then
 * one bounded step of background work (zero a recycled bin, refill with
 * fresh pages, give bins above the cap back to the kernel); then spin for
 * a moment if a fault came recently (a sleeping handler costs the faulting
 * thread a cross-CPU wake-up: tens of microseconds here); then sleep in
 * the ring until the uffd, the eventfd or the timer wakes it.
 *
 * This thread never calls malloc and never touches registered memory
 * other than the present pages of pool bins it owns: its buffers are on
 * its stack or in the static struct pager. All signals are blocked in it
 * (pager.c), so no handler of the program runs here. */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fd.h"
#include "internal.h"
#include "lock.h"
#include "os.h"
#include "readahead.h"
#include "region_map.h"
#include "stats.h"
#include "supply.h"

#define FAULT_BATCH 16
#define STEP_PAGES 64   /* background work between two looks at the uffd */
#define TRIM_BATCH 16   /* bins released per ring submission */
#define IDLE_SECONDS 2  /* no take for this long: the pool shrinks */

/* ---- faults ---------------------------------------------------------------- */

struct served {
  uintptr_t start, end;
};

/* The chunk around a fault, within its 2 MiB unit. The first page of a
 * unit is often a region's header, present: start after it unless it is
 * the page that faulted. */
static void chunk_of(uintptr_t addr, uintptr_t chunk, uintptr_t *start, uintptr_t *end) {
  uintptr_t unit = addr & ~(PAGER_UNIT - 1), region_end = pager_end_of(addr);
  *start = addr & ~(chunk - 1);
  *end = *start + chunk;
  if (*end > region_end) *end = region_end;
  if (*start == unit && addr != unit) *start += PAGE_SIZE;
}

static uintptr_t serve_chunk(uintptr_t start, uintptr_t end, bool wr, struct supply_result *r) {
  if (!wr && pager.cfg.read_zeropage) return supply_zeropage(&pager.pool, start, end, true, r);
  pager_expect_supply();
  return supply_range(&pager.pool, pager.use_pool, start, end, true, r);
}

/* A write into a huge block: from the faulting page, forward or
 * backward, as far as the program's order of writing suggests
 * (readahead.h), within the region and, backward, the 2 MiB unit (which
 * holds one region; where the unit is the region's first, its header
 * page is present, and the supply steps over it on EEXIST); the page
 * alone if the window fails. */
static void serve_block_write(uintptr_t addr, uintptr_t *start, uintptr_t *end, struct supply_result *r) {
  bool backward;
  uint32_t pages = readahead_pages(addr, (uint32_t)(pager.cfg.chunk / PAGE_SIZE), &backward);
  uintptr_t span = (uintptr_t)pages * PAGE_SIZE, done;
  if (backward) {
    uintptr_t unit = addr & ~(PAGER_UNIT - 1);
    *start = addr - unit >= span - PAGE_SIZE ? addr + PAGE_SIZE - span : unit;
    *end = addr + PAGE_SIZE;
  } else {
    uintptr_t limit = pager_end_of(addr);
    *start = addr;
    *end = addr + span < limit ? addr + span : limit;
  }
  done = serve_chunk(*start, *end, true, r);
  if (r->err && done <= addr && *end - *start > PAGE_SIZE) {
    *start = addr;
    *end = addr + PAGE_SIZE;
    done = serve_chunk(*start, *end, true, r);
  }
  if (done > *start) readahead_note(*start, done);
}

/* Any other fault: the chunk around it. A chunk that fails whole (it
 * passes the end of a mapping the table does not know, or the range went
 * away) is halved around the faulting page, down to that page alone. */
static void serve_chunk_around(uintptr_t addr, bool wr, uintptr_t *start, uintptr_t *end, struct supply_result *r) {
  for (uintptr_t chunk = pager.cfg.chunk;; chunk /= 2) {
    chunk_of(addr, chunk, start, end);
    uintptr_t done = serve_chunk(*start, *end, wr, r);
    if (!r->err || done > addr || chunk == PAGE_SIZE) break;
  }
}

/* The ledger's rows for one fault's supply: its pages (with the one
 * event, on the first row that has any) when `pages`, else the wait ns,
 * shared by the pages of each row. */
static void count_served(const struct supply_result *r, bool pages, uint64_t ns) {
  static const enum hakmem_supply_path paths[3] = { HAKMEM_SUPPLY_UFFD_MOVE, HAKMEM_SUPPLY_UFFD_COPY,
                                                    HAKMEM_SUPPLY_UFFD_ZERO };
  const uint64_t n[3] = { r->moved, r->copied, r->zeroed };
  uint64_t total = n[0] + n[1] + n[2], before = 0;
  for (unsigned i = 0; i < 3; before += n[i], i++) {
    if (!n[i]) continue;
    if (pages) stats_supply(paths[i], n[i], before == 0, 0);
    else stats_supply(paths[i], 0, 0, ns * n[i] / total);
  }
}

/* 0, or -errno when the faulting thread could not be woken: the uffd
 * refuses its ioctls (a seccomp filter installed after the pager started),
 * and the pager must stop, which wakes every waiting thread. */
static int serve_fault(uintptr_t addr, bool wr, struct served *last) {
  struct supply_result r = { 0 };
  uintptr_t start, end;
  uint64_t t0 = os_now_ns(), ns;
  int err;

  addr &= ~(PAGE_SIZE - 1);
  if (addr >= last->start && addr < last->end) /* served by the previous message */
    return uffd_wake(&pager.uffd, addr, PAGE_SIZE);
  /* If even the faulting page fails, the wake makes the thread fault
   * again and meet the range as it is now. */
  if (wr && region_map_kind(addr) != REGION_SMALL) serve_block_write(addr, &start, &end, &r);
  else serve_chunk_around(addr, wr, &start, &end, &r);
  /* The pages are counted before the thread wakes, so that a snapshot it
   * takes next sees them; the wait, which includes the wake, after. */
  count_served(&r, 1, 0);
  err = uffd_wake(&pager.uffd, start, end - start);
  ns = os_now_ns() - t0;
  last->start = start;
  last->end = end;
  stats_add(STAT_pager_faults, 1);
  stats_fault_wait(ns);
  count_served(&r, 0, ns);
  return err;
}

/* Serve every message waiting; the number served, or -errno. */
static int drain_faults(void) {
  struct uffd_msg msgs[FAULT_BATCH];
  struct served last = { 0, 0 };
  int total = 0, n;

  do {
    n = uffd_read(&pager.uffd, msgs, FAULT_BATCH);
    if (n < 0) return n;
    for (int i = 0; i < n; i++) {
      /* Only fault messages were asked for: anything else was read from a
       * file the program put on the uffd's number (README). */
      if (msgs[i].event != UFFD_EVENT_PAGEFAULT && !fd_is(pager.uffd.fd, &pager.uffd_id)) return -EBADF;
      if (msgs[i].event != UFFD_EVENT_PAGEFAULT) continue;
      int err = serve_fault(msgs[i].arg.pagefault.address,
                            (msgs[i].arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WRITE) != 0, &last);
      if (err < 0) return err;
    }
    total += n;
  } while (n == FAULT_BATCH);
  return total;
}

/* ---- background work --------------------------------------------------------- */

/* A bin the kernel refused to take back (locked pages: mlockall) is zeroed
 * again and would be picked again at once: trimming waits for the next
 * tick instead. Pager thread. */
static bool trim_stuck;

/* The release of a bin picked for trimming ended with res (0 or -errno). */
static void trim_done(uint32_t bin, int res) {
  if (res == 0) {
    stats_add(STAT_pager_returned, pool_trimmed(&pager.pool, bin));
    return;
  }
  pool_trim_refused(&pager.pool, bin);
  trim_stuck = true;
}

static void trim(void) {
  uint32_t bins[TRIM_BATCH], n = pool_trim_pick(&pager.pool, bins, TRIM_BATCH);
  for (uint32_t i = 0; i < n; i++) {
    void *a = (void *)pool_bin_addr(&pager.pool, bins[i]);
    if (ring_madvise(&pager.ring, a, (uint32_t)POOL_BIN_SIZE, MADV_DONTNEED, bins[i]) == 0) continue;
    trim_done(bins[i], madvise(a, POOL_BIN_SIZE, MADV_DONTNEED) ? -errno : 0); /* not queued: here */
  }
}

/* A refill that made no progress waits for the next wake-up (timer,
 * command, fault) instead of being retried in a loop. Pager thread. */
static bool refill_stuck;

/* A fill of the stash that brought no huge page waits for the next
 * wake-up too. Pager thread. */
static bool stash_stuck;

/* One huge page into the stash: a step of 512 pages, which the kernel
 * clears in 130 us where its memory is at hand, up to 5 ms where the host
 * must back it first (README, "The machine"). */
static bool stash_step(void) {
  uint64_t t0 = os_now_ns();
  uint32_t n = stash_fill_step(&pager.stash);
  if (!n) {
    stash_stuck = true;
    return false;
  }
  stats_add(STAT_pager_refill_pages, n);
  stats_add(STAT_pager_refill_ns, (int64_t)(os_now_ns() - t0));
  return true;
}

/* One bounded step; true when it did something. The stash comes first: a
 * SuperSlab that finds it empty takes 512 of the pool's pages instead. */
static bool background_step(void) {
  uint64_t ns = 0;
  uint32_t n;

  pool_grow_on_miss(&pager.pool);
  if (!trim_stuck && pool_over_cap(&pager.pool)) {
    trim();
    return true;
  }
  if (!stash_stuck && stash_wants_fill(&pager.stash) && stash_step()) return true;
  if ((n = pool_zero_step(&pager.pool, STEP_PAGES, &ns))) {
    stats_add(STAT_pager_zero_pages, n);
    stats_add(STAT_pager_zero_ns, (int64_t)ns);
    return true;
  }
  if (pager.use_pool && !refill_stuck && pool_wants_refill(&pager.pool)) {
    uint64_t t0 = os_now_ns();
    if ((n = pool_refill_step(&pager.pool, STEP_PAGES))) {
      stats_add(STAT_pager_refill_pages, n);
      stats_add(STAT_pager_refill_ns, (int64_t)(os_now_ns() - t0));
      return true;
    }
    refill_stuck = true; /* no empty bin, or the kernel refused: until the next wake-up */
  }
  return false;
}

static bool has_work(void) {
  return (!trim_stuck && pool_over_cap(&pager.pool)) || pool_has_dirty(&pager.pool) ||
         (!stash_stuck && stash_wants_fill(&pager.stash)) ||
         (pager.use_pool && !refill_stuck && pool_wants_refill(&pager.pool));
}

/* ---- the end of the program's main thread ----------------------------------- */

/* Whether the process's leader has exited: main() called pthread_exit(),
 * and the leader stays a zombie until the last thread ends. glibc ends the
 * process with its last thread, so the pager, whose signals are blocked,
 * must not outlive the program's threads; /proc counts the io_uring's
 * workers among them, so the pager cannot tell when it is the last, and
 * stops as soon as main has gone. Read once a timer period. */
static bool leader_exited(void) {
  char buf[512];
  ssize_t n;

  if (!fd_is(pager.statfd, &pager.statfd_id)) return false;
  n = pread(pager.statfd, buf, sizeof buf - 1, 0);
  if (n <= 0) return false;
  buf[n] = 0;
  /* "pid (comm) state ...": comm may hold spaces and parentheses. */
  const char *p = strrchr(buf, ')');
  return p && p[1] == ' ' && p[2] == 'Z';
}

/* ---- the ring --------------------------------------------------------------- */

/* Timer periods without a take after which the pool and the stash shrink. */
static uint64_t idle_ticks(void) { return IDLE_SECONDS * 1000000000ull / pager.cfg.period_ns; }

static void on_completion(void *arg, uint64_t tag, int res) {
  (void)arg;
  refill_stuck = false;
  stash_stuck = false;
  switch (tag & 0xff) {
  case RING_TIMER:
    if (leader_exited()) {
      atomic_store(&pager.leader_gone, true);
      atomic_store(&pager.stop, true);
    }
    trim_stuck = false;
    pool_adapt(&pager.pool, idle_ticks());
    stats_add(STAT_pager_returned, (int64_t)stash_adapt(&pager.stash, idle_ticks()));
    stats_set(STAT_pager_pool_pages, pool_level(&pager.pool) + stash_level(&pager.stash));
    break;
  case RING_MADVISE:
    trim_done((uint32_t)(tag >> 8), res);
    break;
  case RING_EVENT:
    /* The read is re-armed by number: a program that closed the eventfd
     * may have that number for a pipe or socket of its own by now. */
    if (!fd_is(pager.efd, &pager.efd_id)) pager.ring.efd = -1;
    break;
  default: /* RING_UFFD: the loop looks at it anyway */
    break;
  }
}

/* Spin while faults keep coming: a read(2) that finds nothing costs a few
 * hundred nanoseconds, a wake-up of a sleeping pager tens of microseconds. */
static bool spin_wanted(void) {
  return pager.cfg.spin_ns && os_now_ns() - pager.last_fault_ns < pager.cfg.spin_ns;
}

static int sleep_in_ring(void) {
  int err;

  atomic_store(&pager.sleeping, true);
  if (has_work() || atomic_load(&pager.stop)) {
    atomic_store(&pager.sleeping, false);
    return 0;
  }
  err = ring_wait(&pager.ring, true, on_completion, NULL);
  atomic_store(&pager.sleeping, false);
  return err < 0 ? err : 0;
}

void *pager_loop(void *arg) {
  int err = 0, n;

  (void)arg;
  atomic_store(&pager.tid, (pid_t)syscall(SYS_gettid));
  while (!atomic_load(&pager.stop)) {
    n = drain_faults();
    err = n;
    if (n < 0) break;
    if (n) {
      pager.last_fault_ns = os_now_ns();
      refill_stuck = false;
      stash_stuck = false;
      continue;
    }
    if (background_step()) {
      err = ring_wait(&pager.ring, false, on_completion, NULL);
      if (err < 0) break;
      continue;
    }
    if (spin_wanted()) {
      hk_cpu_relax();
      continue;
    }
    err = sleep_in_ring();
    if (err < 0) break;
  }
  if (err < 0) {
    char line[96];
    snprintf(line, sizeof line, "hakmem: the pager stops (error %d); the kernel's fault path serves\n", -err);
    if (write(2, line, strlen(line)) < 0) { /* nothing more to say */ }
  }
  /* Nobody may wait on this uffd once this thread is gone. */
  pager_quiesce();
  pager_release_descriptors();
  pool_fini(&pager.pool); /* stopping by itself, it must not keep the pool (2 x HAKMEM_PAGER_POOL_MB) */
  stash_fini(&pager.stash);
  stats_set(STAT_pager_pool_pages, 0);
  atomic_store(&pager.loop_done, true);
  /* If this is the last thread, glibc calls exit() on it next, and the
   * program's exit handlers may rely on signals (alarm, a SIGTERM). */
  if (atomic_load(&pager.leader_gone)) pthread_sigmask(SIG_SETMASK, &pager.start_mask, NULL);
  return NULL;
}
