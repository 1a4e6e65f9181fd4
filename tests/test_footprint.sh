#!/bin/sh
# Description: the pages of hakmem's own zero-filled variables that a
# small program touches.
# Every page of the library's .bss that a process writes, or reads, is a
# page fault and a page of memory. The small variables every process
# touches share the page after .data; the large tables (the region map,
# the LRU's size bins, the large arenas, the first heap's spilled bins,
# the pager's tables) follow, and only the region map's byte for each
# region in use is touched. A single-threaded program that allocates and
# frees small blocks of several sizes, and frees NULL, therefore finds one
# page of the anonymous mapping after libhakmem.so present: that of its
# SuperSlab's region map entry. Before the LRU's size bins were skipped
# when no huge block was cached, and the first heap's spilled bins moved
# out of its struct, three more were (Random Mixed took four to six more
# faults).
#
# Exit status, per automake: 0 passed, 77 skipped (no shared library or
# no compiler), 99 hakmem is not built, 1 failed.
#
# Environment: HAKMEM_BUILDDIR (set by make check) and CC.

set -u

tmp_prefix=hakmem-footprint
. "$(dirname "$0")/preload_setup.sh"

cat >"$tmp/probe.c" <<'EOF'
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Present pages of [start, end), from /proc/self/pagemap; -1 on error. */
static long present_pages(uintptr_t start, uintptr_t end) {
  int fd = open("/proc/self/pagemap", O_RDONLY);
  if (fd < 0) return -1;
  long n = 0;
  for (uintptr_t a = start; a < end; a += 4096) {
    uint64_t e;
    if (pread(fd, &e, sizeof e, (off_t)(a / 4096 * sizeof e)) != (ssize_t)sizeof e) { close(fd); return -1; }
    n += (long)(e >> 63);
  }
  close(fd);
  return n;
}

int main(void) {
  static const size_t sizes[] = { 16, 24, 100, 1000, 3000, 20000 };
  void *p[6];
  for (int round = 0; round < 50; round++) {
    for (int i = 0; i < 6; i++) { p[i] = malloc(sizes[i]); if (!p[i]) return 2; memset(p[i], 1, sizes[i]); }
    for (int i = 0; i < 6; i++) free(p[i]);
  }
  free(NULL);
  /* The maps are read into a buffer that stdio did not allocate first. */
  static char maps[1 << 16];
  int fd = open("/proc/self/maps", O_RDONLY);
  if (fd < 0) return 3;
  size_t len = 0;
  ssize_t got;
  while ((got = read(fd, maps + len, sizeof maps - 1 - len)) > 0) len += (size_t)got;
  close(fd);
  maps[len] = 0;
  uintptr_t lib_end = 0;
  for (char *line = strtok(maps, "\n"); line; line = strtok(NULL, "\n")) {
    unsigned long start, end;
    if (sscanf(line, "%lx-%lx", &start, &end) != 2) continue;
    if (strstr(line, "libhakmem.so")) {
      lib_end = end;
    } else if (lib_end && start == lib_end && !strchr(line, '/')) {
      printf("%ld\n", present_pages(start, end));
      return 0;
    }
  }
  return 4; /* no mapping after the library's: nothing to look at */
}
EOF
if ! $CC -O1 -o "$tmp/probe" "$tmp/probe.c"; then
  echo "ERROR: cannot build the probe" >&2
  exit 99
fi

pages=$(HAKMEM_UFFD=0 LD_PRELOAD="$lib" "$tmp/probe")
rc=$?
if [ $rc -eq 4 ]; then
  echo "SKIP: no anonymous mapping follows libhakmem.so's (a loader that lays out .bss otherwise)"
  exit 77
fi
if [ $rc -ne 0 ] || [ -z "$pages" ] || [ "$pages" -lt 0 ]; then
  echo "FAIL: the probe exited $rc, output '$pages'"
  exit 1
fi
if [ "$pages" -gt 1 ]; then
  echo "FAIL: $pages pages of hakmem's .bss present after small allocations (at most 1, the region map's)"
  exit 1
fi
echo "ok: $pages page of hakmem's .bss present after small allocations"
exit 0
