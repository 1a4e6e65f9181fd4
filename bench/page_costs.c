/* page_costs: what a page costs this machine's programs, by the way it
 * reaches them. The numbers hakmem's design rests on (fault, zeroing,
 * moves) differ by a factor of ten between machines, a VM's paging above
 * all; run this to read them here. No allocator is involved: every range
 * is mmap'd anew.
 *
 * For each path, the mean time per 4 KiB page over a 64 MiB range, the
 * best and the worst of three (the first try of a path that takes fresh
 * memory is often the worst: a VM's host may back it only then): a write
 * and a read fault; whether a read fault maps the
 * kernel's zero page; MADV_POPULATE_WRITE, then the program's first
 * write to the populated pages; memset of resident pages; a move by
 * mremap, then the first write at the new address; MADV_DONTNEED, then
 * the refault; a read of resident pages, warm and right after another
 * range of the same size was written and unmapped, or 4 MiB of it moved
 * by mremap (a shadow-paging hypervisor may drop the process's shadow
 * entries then, and every page it touches next costs a trap); a
 * transparent huge page's fault, and its refault after MADV_DONTNEED,
 * where THP can be asked for. Built with --enable-uffd,
 * also the pager's ways in, each then the program's first access: a
 * UFFDIO_MOVE of zeroed pages, of small and of huge ones (a huge page
 * moves whole when both ends are 2 MiB aligned), UFFDIO_COPY a page a
 * call, and UFFDIO_ZEROPAGE, where a full userfaultfd can be opened. */
#define _GNU_SOURCE 1
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#ifdef PAGE_COSTS_UFFD
#include "uffd.h"
#endif

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#define RANGE ((size_t)64 << 20)
#define HUGE_ALIGN ((size_t)2 << 20)
#define PAGE 4096
#define PAGES (RANGE / PAGE)
#define TRIES 3

static volatile uint64_t sink;

static uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* A fresh 64 MiB range, 2 MiB aligned, with or without huge pages. */
static char *map_range(bool huge) {
  char *raw = mmap(NULL, RANGE + HUGE_ALIGN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) {
    perror("page_costs: mmap");
    _exit(1);
  }
  char *p = (char *)(((uintptr_t)raw + HUGE_ALIGN - 1) & ~(uintptr_t)(HUGE_ALIGN - 1));
  size_t head = (size_t)(p - raw);
  if (head) munmap(raw, head);
  if (HUGE_ALIGN - head) munmap(p + RANGE, HUGE_ALIGN - head);
  /* A kernel without THP refuses both advices (EINVAL): small pages are
   * all it has, and a huge range cannot be had. */
  if (madvise(p, RANGE, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE) != 0 && huge) {
    munmap(p, RANGE);
    return NULL;
  }
  return p;
}

static void unmap_range(char *p) {
  munmap(p, RANGE);
}

static void write_each_page(char *p) {
  for (size_t i = 0; i < RANGE; i += PAGE) p[i] = 1;
}

static void read_each_page(const char *p) {
  uint64_t sum = 0;
  for (size_t i = 0; i < RANGE; i += PAGE) sum += (unsigned char)p[i];
  sink += sum;
}

/* Two pages only read are the zero page when they share one frame; frame
 * numbers read as 0 without CAP_SYS_ADMIN, and then this cannot tell. */
static const char *zero_page_on_read(void) {
  char *p = map_range(false);
  if (!p) return "unknown";
  sink += (unsigned char)p[0] + (unsigned char)p[PAGE];
  uint64_t entries[2] = {0, 0};
  int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  bool read_ok = fd >= 0 && pread(fd, entries, sizeof entries, (off_t)((uintptr_t)p / PAGE * 8)) == sizeof entries;
  if (fd >= 0) close(fd);
  unmap_range(p);
  const uint64_t frame = (1ULL << 55) - 1;
  if (!read_ok || (entries[0] & frame) == 0) return "unknown (frame numbers need root)";
  return (entries[0] & frame) == (entries[1] & frame) ? "yes" : "no (each read maps a page of its own)";
}

enum path {
  WRITE_FAULT, READ_FAULT, POPULATE, POPULATED_FIRST_WRITE, MEMSET_RESIDENT, MREMAP_MOVE,
  MOVED_FIRST_WRITE, DONTNEED_REFAULT, RESIDENT_READ, RESIDENT_READ_AFTER_UNMAP, RESIDENT_READ_AFTER_MOVE,
  THP_FAULT, THP_REFAULT, UFFD_MOVE, UFFD_MOVED_FIRST_WRITE,
  UFFD_MOVE_HUGE, UFFD_MOVED_HUGE_FIRST_WRITE, UFFD_COPY, UFFD_COPIED_FIRST_WRITE, UFFD_ZEROPAGE,
  UFFD_ZEROPAGE_FIRST_READ, PATHS
};

static const char *const path_names[PATHS] = {
  "write fault (fresh page)",
  "read fault (fresh page)",
  "MADV_POPULATE_WRITE",
  "first write to populated pages",
  "memset of resident pages",
  "mremap move",
  "first write after the move",
  "refault after MADV_DONTNEED",
  "read of resident pages",
  "the same, after another range unmapped",
  "the same, after 4 MiB of another moved",
  "huge page fault (THP)",
  "huge page refault after MADV_DONTNEED",
  "UFFDIO_MOVE of zeroed pages",
  "first write after UFFDIO_MOVE",
  "UFFDIO_MOVE of zeroed huge pages",
  "first write after the huge pages' move",
  "UFFDIO_COPY, a page a call",
  "first write after UFFDIO_COPY",
  "UFFDIO_ZEROPAGE",
  "first read after UFFDIO_ZEROPAGE",
};

struct cost {
  double best, worst; /* ns per page; best < 0: not measured */
};

static void record(struct cost costs[PATHS], enum path path, uint64_t ns) {
  double per_page = (double)ns / PAGES;
  struct cost *c = &costs[path];
  if (c->best < 0 || per_page < c->best) c->best = per_page;
  if (per_page > c->worst) c->worst = per_page;
}

static void measure_small_pages(struct cost costs[PATHS]) {
  char *p = map_range(false);
  if (!p) return;
  uint64_t t = now_ns();
  write_each_page(p);
  record(costs, WRITE_FAULT, now_ns() - t);
  t = now_ns();
  memset(p, 2, RANGE);
  record(costs, MEMSET_RESIDENT, now_ns() - t);
  if (madvise(p, RANGE, MADV_DONTNEED) == 0) {
    t = now_ns();
    write_each_page(p);
    record(costs, DONTNEED_REFAULT, now_ns() - t);
  }
  char *to = map_range(false);
  if (to) {
    t = now_ns();
    char *moved = mremap(p, RANGE, RANGE, MREMAP_MAYMOVE | MREMAP_FIXED, to);
    uint64_t move_ns = now_ns() - t;
    if (moved != MAP_FAILED) {
      record(costs, MREMAP_MOVE, move_ns);
      p = moved;
      t = now_ns();
      write_each_page(p);
      record(costs, MOVED_FIRST_WRITE, now_ns() - t);
    } else {
      unmap_range(to);
    }
  }
  unmap_range(p);

  p = map_range(false);
  if (!p) return;
  t = now_ns();
  read_each_page(p);
  record(costs, READ_FAULT, now_ns() - t);
  unmap_range(p);

  p = map_range(false);
  if (!p) return;
  t = now_ns();
  if (madvise(p, RANGE, MADV_POPULATE_WRITE) == 0) {
    record(costs, POPULATE, now_ns() - t);
    t = now_ns();
    write_each_page(p);
    record(costs, POPULATED_FIRST_WRITE, now_ns() - t);
  }
  unmap_range(p);
}

#define MOVED ((size_t)4 << 20)

/* Move the first MOVED bytes of range p by mremap (it grows, and cannot
 * where it is), then unmap all of it. */
static void move_part(char *p) {
  char *moved = mremap(p, MOVED, 2 * MOVED, MREMAP_MAYMOVE);
  if (moved != MAP_FAILED) munmap(moved, 2 * MOVED);
  munmap(p + MOVED, RANGE - MOVED);
}

/* Resident pages read again: before, and after a range of the same size
 * elsewhere is written and unmapped, or 4 MiB of one moved by mremap;
 * four of each a try, as what follows one is not always the same. */
static void measure_read_after_others(struct cost costs[PATHS]) {
  char *p = map_range(false);
  if (!p) return;
  write_each_page(p);
  read_each_page(p);
  uint64_t t = now_ns();
  read_each_page(p);
  record(costs, RESIDENT_READ, now_ns() - t);
  for (int i = 0; i < 8; i++) {
    char *other = map_range(false);
    write_each_page(other);
    if (i % 2) move_part(other);
    else unmap_range(other);
    t = now_ns();
    read_each_page(p);
    record(costs, i % 2 ? RESIDENT_READ_AFTER_MOVE : RESIDENT_READ_AFTER_UNMAP, now_ns() - t);
  }
  unmap_range(p);
}

/* MADV_HUGEPAGE is accepted under "never" too, and then asks for nothing. */
static bool huge_pages_possible(void) {
  char mode[128] = "";
  FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
  if (!f) return false;
  bool read = fgets(mode, sizeof mode, f) != NULL;
  fclose(f);
  return read && strstr(mode, "[never]") == NULL;
}

static void measure_huge_pages(struct cost costs[PATHS]) {
  if (!huge_pages_possible()) return;
  char *p = map_range(true);
  if (!p) return;
  uint64_t t = now_ns();
  write_each_page(p);
  record(costs, THP_FAULT, now_ns() - t);
  if (madvise(p, RANGE, MADV_DONTNEED) == 0) {
    t = now_ns();
    write_each_page(p);
    record(costs, THP_REFAULT, now_ns() - t);
  }
  unmap_range(p);
}

#ifdef PAGE_COSTS_UFFD
/* A fresh range registered for missing faults; NULL when refused. */
static char *map_registered(const struct uffd *u) {
  char *p = map_range(false);
  if (p && uffd_register(u, (uintptr_t)p, RANGE, NULL) != 0) {
    unmap_range(p);
    return NULL;
  }
  return p;
}

/* From a source of small pages, or of huge ones, which move whole: both
 * ranges are 2 MiB aligned. */
static void measure_uffd_move(const struct uffd *u, bool huge, struct cost costs[PATHS]) {
  char *src = map_range(huge), *dst = map_registered(u);
  int err = 0;
  if (src && dst && madvise(src, RANGE, MADV_POPULATE_WRITE) == 0) {
    uint64_t t = now_ns();
    size_t moved = uffd_move(u, (uintptr_t)dst, (uintptr_t)src, RANGE, 0, &err);
    uint64_t ns = now_ns() - t;
    if (moved == RANGE) {
      record(costs, huge ? UFFD_MOVE_HUGE : UFFD_MOVE, ns);
      t = now_ns();
      write_each_page(dst);
      record(costs, huge ? UFFD_MOVED_HUGE_FIRST_WRITE : UFFD_MOVED_FIRST_WRITE, now_ns() - t);
    }
  }
  if (src) unmap_range(src);
  if (dst) unmap_range(dst);
}

static void measure_uffd_copy(const struct uffd *u, struct cost costs[PATHS]) {
  static char zeroes[PAGE] __attribute__((aligned(PAGE)));
  char *dst = map_registered(u);
  if (!dst) return;
  int err = 0;
  uint64_t t = now_ns();
  for (size_t off = 0; off < RANGE && !err; off += PAGE)
    uffd_copy(u, (uintptr_t)dst + off, (uintptr_t)zeroes, PAGE, 0, &err);
  uint64_t ns = now_ns() - t;
  if (!err) {
    record(costs, UFFD_COPY, ns);
    t = now_ns();
    write_each_page(dst);
    record(costs, UFFD_COPIED_FIRST_WRITE, now_ns() - t);
  }
  unmap_range(dst);
}

static void measure_uffd_zeropage(const struct uffd *u, struct cost costs[PATHS]) {
  char *dst = map_registered(u);
  if (!dst) return;
  int err = 0;
  uint64_t t = now_ns();
  size_t done = uffd_zeropage(u, (uintptr_t)dst, RANGE, 0, &err);
  uint64_t ns = now_ns() - t;
  if (done == RANGE) {
    record(costs, UFFD_ZEROPAGE, ns);
    t = now_ns();
    read_each_page(dst);
    record(costs, UFFD_ZEROPAGE_FIRST_READ, now_ns() - t);
  }
  unmap_range(dst);
}

static void measure_uffd(struct cost costs[PATHS]) {
  struct uffd u;
  if (uffd_open(&u, UFFD_FEATURE_MOVE) != 0) return; /* no privilege, or no userfaultfd */
  if (u.can_move) measure_uffd_move(&u, false, costs);
  if (u.can_move && huge_pages_possible()) measure_uffd_move(&u, true, costs);
  measure_uffd_copy(&u, costs);
  measure_uffd_zeropage(&u, costs);
  uffd_close(&u);
}
#else
static void measure_uffd(struct cost costs[PATHS]) { (void)costs; }
#endif

int main(void) {
  struct cost costs[PATHS];
  for (int i = 0; i < PATHS; i++) costs[i] = (struct cost){-1, -1};
  for (int i = 0; i < TRIES; i++) {
    measure_small_pages(costs);
    measure_read_after_others(costs);
    measure_huge_pages(costs);
    measure_uffd(costs);
  }
  printf("page_costs: ns per 4 KiB page over %zu MiB, best and worst of %d\n", RANGE >> 20, TRIES);
  for (int i = 0; i < PATHS; i++) {
    if (costs[i].best < 0) printf("  %-40s not available here\n", path_names[i]);
    else printf("  %-40s %8.0f %8.0f\n", path_names[i], costs[i].best, costs[i].worst);
  }
  printf("  %-40s %s\n", "a read fault maps the zero page", zero_page_on_read());
  return 0;
}
