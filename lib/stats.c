/* stats.c: the counters, the page-supply ledger and the report. */
#include "stats.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <fcntl.h>
#include <unistd.h>

#include "diag.h"
#include "fd.h"
#include "heap.h"
#include "options.h"
#include "types.h"

static _Atomic uint64_t counters[STAT_COUNT];
static _Atomic uint64_t supply_rows[HAKMEM_SUPPLY_COUNT][3];
static _Atomic uint64_t wait_hist[HAKMEM_WAIT_BUCKETS];

void stats_add(enum stat_id id, int64_t delta) {
  atomic_fetch_add_explicit(&counters[id], (uint64_t)delta, memory_order_relaxed);
}

void stats_set(enum stat_id id, uint64_t value) {
  atomic_store_explicit(&counters[id], value, memory_order_relaxed);
}

void stats_supply(enum hakmem_supply_path path, uint64_t pages, uint64_t events, uint64_t wait_ns) {
  atomic_fetch_add_explicit(&supply_rows[path][0], pages, memory_order_relaxed);
  atomic_fetch_add_explicit(&supply_rows[path][1], events, memory_order_relaxed);
  atomic_fetch_add_explicit(&supply_rows[path][2], wait_ns, memory_order_relaxed);
}

void stats_fault_wait(uint64_t wait_ns) {
  unsigned b = 0;
  while (b + 1 < HAKMEM_WAIT_BUCKETS && wait_ns >= ((uint64_t)256 << b)) b++;
  atomic_fetch_add_explicit(&wait_hist[b], 1, memory_order_relaxed);
}

static void stats_snapshot(struct hakmem_stats *out) {
  memset(out, 0, sizeof *out);
  out->version = HAKMEM_STATS_VERSION;
  out->size = sizeof *out;
#define STATS_COPY(name, text) out->name = atomic_load_explicit(&counters[STAT_##name], memory_order_relaxed);
  HAKMEM_STATS_ALL_COUNTERS(STATS_COPY)
#undef STATS_COPY
  out->bytes_in_use += (uint64_t)heap_small_bytes_in_use();
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) == 0) out->minor_faults = (uint64_t)ru.ru_minflt;
  for (int p = 0; p < HAKMEM_SUPPLY_COUNT; p++) {
    out->supply[p].pages = atomic_load_explicit(&supply_rows[p][0], memory_order_relaxed);
    out->supply[p].events = atomic_load_explicit(&supply_rows[p][1], memory_order_relaxed);
    out->supply[p].wait_ns = atomic_load_explicit(&supply_rows[p][2], memory_order_relaxed);
  }
  out->supply[HAKMEM_SUPPLY_REUSE].pages += heap_run_cache_pages();
  for (int b = 0; b < HAKMEM_WAIT_BUCKETS; b++)
    out->fault_wait_hist[b] = atomic_load_explicit(&wait_hist[b], memory_order_relaxed);
}

EXPORT int hakmem_stats_get_sized(struct hakmem_stats *out, size_t size) {
  struct hakmem_stats s;
  if (size < offsetof(struct hakmem_stats, size) + sizeof s.size) {
    errno = EINVAL;
    return -1;
  }
  stats_snapshot(&s);
  memcpy(out, &s, size < sizeof s ? size : sizeof s);
  if (size > sizeof s) memset((char *)out + sizeof s, 0, size - sizeof s);
  return 0;
}

/* The plain symbol cannot know its caller's struct: it fills version 1's,
 * the smallest any caller has, and later fields stay the caller's. */
#undef hakmem_stats_get
EXPORT int hakmem_stats_get(struct hakmem_stats *out) {
  return hakmem_stats_get_sized(out, offsetof(struct hakmem_stats, pager_refill_pages));
}

static const char *const supply_names[] = {
#define SUPPLY_NAME(NAME, name, text) #name,
  HAKMEM_SUPPLY_PATHS(SUPPLY_NAME)
#undef SUPPLY_NAME
};
static const char *const supply_texts[] = {
#define SUPPLY_TEXT(NAME, name, text) text,
  HAKMEM_SUPPLY_PATHS(SUPPLY_TEXT)
#undef SUPPLY_TEXT
};

/* The report is formatted on the stack: printing must not allocate. */
static void print_ledger(int fd, const struct hakmem_stats *s) {
  char line[192];
  uint64_t total_pages = 0, total_ns = 0;
  diag_write(fd, "hakmem: page-supply ledger      pages     events    wait_ms  ns/page  path\n");
  for (int p = 0; p < HAKMEM_SUPPLY_COUNT; p++) {
    const struct hakmem_supply_row *r = &s->supply[p];
    total_pages += r->pages;
    total_ns += r->wait_ns;
    if (r->pages == 0 && r->events == 0) continue;
    char per[24];
    if (r->wait_ns && r->pages) snprintf(per, sizeof per, "%8.0f", (double)r->wait_ns / (double)r->pages);
    else snprintf(per, sizeof per, "%8s", "-");
    snprintf(line, sizeof line, "hakmem: supply %-12s %10llu %10llu %10.3f %s  %s\n", supply_names[p],
             (unsigned long long)r->pages, (unsigned long long)r->events, (double)r->wait_ns / 1e6, per,
             supply_texts[p]);
    diag_write(fd, line);
  }
  snprintf(line, sizeof line, "hakmem: supply %-12s %10llu %10s %10.3f\n", "total",
           (unsigned long long)total_pages, "", (double)total_ns / 1e6);
  diag_write(fd, line);
}

static void print_wait_histogram(int fd, const struct hakmem_stats *s) {
  char line[160];
  uint64_t any = 0;
  for (int b = 0; b < HAKMEM_WAIT_BUCKETS; b++) any += s->fault_wait_hist[b];
  if (!any) return;
  diag_write(fd, "hakmem: fault wait histogram (faulting thread, message to wake)\n");
  for (int b = 0; b < HAKMEM_WAIT_BUCKETS; b++) {
    if (!s->fault_wait_hist[b]) continue;
    bool last = b == HAKMEM_WAIT_BUCKETS - 1; /* every longer wait too (stats_fault_wait) */
    snprintf(line, sizeof line, "hakmem: wait %s %10llu ns %10llu\n", last ? ">=" : "< ",
             (unsigned long long)256 << (last ? b - 1 : b), (unsigned long long)s->fault_wait_hist[b]);
    diag_write(fd, line);
  }
}

EXPORT void hakmem_stats_print(int fd) {
  struct hakmem_stats s;
  char line[192];
  stats_snapshot(&s);
  snprintf(line, sizeof line, "hakmem %s: statistics of pid %d\n", HAKMEM_VERSION_STRING, (int)getpid());
  diag_write(fd, line);
#define STATS_LINE(name, text)                                                                 \
  snprintf(line, sizeof line, "hakmem: %-18s %16llu  %s\n", #name, (unsigned long long)s.name, text); \
  diag_write(fd, line);
  HAKMEM_STATS_ALL_COUNTERS(STATS_LINE)
#undef STATS_LINE
  print_ledger(fd, &s);
  print_wait_histogram(fd, &s);
}

/* A copy of stderr taken at load, out of the program's way: programs
 * (coreutils among them) close fd 2 in their own exit handlers, which run
 * before this one. The report goes to the copy, else to fd 2, whichever is
 * still the stderr of the start: a program may have closed the copy's
 * number and opened a file of its own there (`exec 3>file` in bash). */
static int report_fd = -1;
static struct fd_identity report_stderr;

static void stats_exit_report(void) {
  if (fd_is(report_fd, &report_stderr)) hakmem_stats_print(report_fd);
  else if (fd_is(2, &report_stderr)) hakmem_stats_print(2);
}

void stats_install_exit_report(void) {
  if (!hakmem_options.stats) return;
  fd_identify(2, &report_stderr);
  report_fd = fcntl(2, F_DUPFD_CLOEXEC, 3);
  if (report_fd >= 0) report_fd = fd_stash(report_fd);
  atexit(stats_exit_report);
}
