/* harness_machine.h: the machine and the allocator versions a report
 * names, so its ratios can be read in context. */
#ifndef BENCH_HARNESS_MACHINE_H
#define BENCH_HARNESS_MACHINE_H

#include <stddef.h>

#define MACHINE_MAX_PACKAGES 6

struct package_version {
  char what[24];    /* glibc, mimalloc, ... */
  char package[32]; /* the Debian package asked about */
  char version[64]; /* "not installed" or "unknown" when it cannot be told */
};

struct machine_info {
  char cpu[128];    /* model name from /proc/cpuinfo */
  long cores;       /* online CPUs */
  char kernel[128]; /* uname -sr */
  char thp[64];     /* the selected [mode] of transparent_hugepage/enabled */
  char memory[32];  /* MemTotal */
  char date[32];    /* when the run started, UTC */
  char hakmem_version[64];
  size_t npackages;
  struct package_version packages[MACHINE_MAX_PACKAGES];
};

/* Collect everything; hakmem_version is given by the caller. */
void machine_collect(struct machine_info *m, const char *hakmem_version);

/* The bracketed choice of a sysfs selector line "always [madvise] never";
 * the whole line when there is none. */
void selected_choice(const char *line, char *out, size_t size);

#endif /* BENCH_HARNESS_MACHINE_H */
