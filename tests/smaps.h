/* smaps.h: what /proc/self/smaps says of the mapping that holds an
 * address, for the tests of transparent huge pages. */
#ifndef HAKMEM_TESTS_SMAPS_H
#define HAKMEM_TESTS_SMAPS_H

#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The smaps entry of the mapping that holds addr: its VmFlags line and
 * its AnonHugePages in KiB. */
static inline void smaps_of(const void *addr, char *flags, size_t size, long *huge_kb)
{
  FILE *f = fopen("/proc/self/smaps", "r");
  cr_assert_not_null(f, "no /proc/self/smaps");
  char line[512];
  bool inside = false;
  flags[0] = 0;
  *huge_kb = -1;
  while (fgets(line, sizeof line, f)) {
    unsigned long start, end;
    if (sscanf(line, "%lx-%lx ", &start, &end) == 2) {
      if (inside)
        break;
      inside = (uintptr_t)addr >= start && (uintptr_t)addr < end;
    } else if (inside && strncmp(line, "AnonHugePages:", 14) == 0) {
      *huge_kb = strtol(line + 14, NULL, 10);
    } else if (inside && strncmp(line, "VmFlags:", 8) == 0) {
      snprintf(flags, size, "%s", line + 8);
    }
  }
  fclose(f);
  cr_assert(flags[0], "no mapping holds %p", addr);
}

/* Whether the mapping that holds addr was advised MADV_HUGEPAGE: its
 * VmFlags name it "hg". *huge_kb (unless NULL): its AnonHugePages. */
static inline bool asks_for_huge_pages(const void *addr, long *huge_kb)
{
  char flags[256];
  long kb;
  smaps_of(addr, flags, sizeof flags, &kb);
  if (huge_kb)
    *huge_kb = kb;
  return strstr(flags, " hg") != NULL;
}

static inline void skip_without_thp(void)
{
  if (access("/sys/kernel/mm/transparent_hugepage/enabled", F_OK) != 0)
    cr_skip_test("this kernel has no transparent huge pages");
}

#endif /* HAKMEM_TESTS_SMAPS_H */
