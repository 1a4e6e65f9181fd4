#!/bin/sh
# Description: the pages of hakmem's own zero-filled variables that a
# small program touches.
# Every page of the library's .bss that a process writes, or reads, is a
# page fault and a page of memory. The small variables every process
# touches share .data's last page; the large tables (the region map,
# the LRU's size bins, the large arenas, the first heap's spilled bins,
# the pager's tables) follow, and only the region map's byte for each
# region in use is touched. A single-threaded program that allocates and
# frees small blocks of several sizes, and frees NULL, therefore finds one
# page of the library's zero-filled segment present (its PT_LOAD header
# says where that is; the page that also holds file bytes is not
# counted): that of its SuperSlab's region map entry. Before the LRU's
# size bins were skipped when no huge block was cached, and the first
# heap's spilled bins moved out of its struct, three more were.
#
# Exit status, per automake: 0 passed, 77 skipped (no shared library or
# no compiler), 99 hakmem is not built, 1 failed.
#
# Environment: HAKMEM_BUILDDIR (set by make check) and CC.

set -u

tmp_prefix=hakmem-footprint
. "$(dirname "$0")/preload_setup.sh"
if [ "$(uname -m)" != x86_64 ]; then
  echo "SKIP: the large tables go after .bss on x86-64 only (lib/types.h, LARGE_BSS)"
  exit 77
fi

cat >"$tmp/probe.c" <<'EOF'
#define _GNU_SOURCE
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The zero-filled part of libhakmem.so's writable segment: past the
 * file's bytes, .bss and .lbss. */
static uintptr_t bss_start, bss_end;

static int find_bss(struct dl_phdr_info *info, size_t size, void *arg) {
  (void)size, (void)arg;
  if (!info->dlpi_name || !strstr(info->dlpi_name, "libhakmem.so")) return 0;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_W) || ph->p_memsz <= ph->p_filesz) continue;
    uintptr_t file_end = info->dlpi_addr + ph->p_vaddr + ph->p_filesz;
    bss_start = (file_end + 4095) & ~(uintptr_t)4095; /* the page with file bytes is not counted */
    bss_end = info->dlpi_addr + ph->p_vaddr + ph->p_memsz;
  }
  return 1;
}

int main(void) {
  static const size_t sizes[] = { 16, 24, 100, 1000, 3000, 20000 };
  void *p[6];
  for (int round = 0; round < 50; round++) {
    for (int i = 0; i < 6; i++) { p[i] = malloc(sizes[i]); if (!p[i]) return 2; memset(p[i], 1, sizes[i]); }
    for (int i = 0; i < 6; i++) free(p[i]);
  }
  free(NULL);
  dl_iterate_phdr(find_bss, NULL);
  if (!bss_end) return 4; /* no zero-filled segment found */
  int fd = open("/proc/self/pagemap", O_RDONLY);
  if (fd < 0) return 3;
  long present = 0;
  for (uintptr_t a = bss_start; a < bss_end; a += 4096) {
    uint64_t e;
    if (pread(fd, &e, sizeof e, (off_t)(a / 4096 * sizeof e)) != (ssize_t)sizeof e) return 3;
    present += (long)(e >> 63);
  }
  printf("%ld\n", present);
  return 0;
}
EOF
if ! $CC -O1 -o "$tmp/probe" "$tmp/probe.c"; then
  echo "ERROR: cannot build the probe" >&2
  exit 99
fi

pages=$(HAKMEM_UFFD=0 LD_PRELOAD="$lib" "$tmp/probe")
rc=$?
if [ $rc -eq 4 ]; then
  echo "SKIP: libhakmem.so has no zero-filled segment past its file's pages"
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
