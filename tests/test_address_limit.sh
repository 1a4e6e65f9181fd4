#!/bin/sh
# Description: under a limit on the address space (RLIMIT_AS, `ulimit -v`)
# the cache of freed regions keeps at most a sixteenth of it, so that the
# program's own mappings still fit. A program under a 2 GiB limit fills
# 1.6 GB with huge blocks of 8 MiB (each cached when freed), frees them,
# and maps 1.5 GiB itself: without the bound the cache kept all 1.6 GB
# mapped (resident or released) and the mmap failed with ENOMEM.
#
# Exit status, per automake: 0 passed, 77 skipped (no shared library or
# no compiler), 99 hakmem is not built, 1 failed.
#
# Environment: HAKMEM_BUILDDIR (set by make check) and CC.

set -u

tmp_prefix=hakmem-address-limit
. "$(dirname "$0")/preload_setup.sh"

cat >"$tmp/probe.c" <<'EOF'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

enum { BLOCKS = 200 };

int main(void) {
  static char *p[BLOCKS];
  for (int i = 0; i < BLOCKS; i++) {
    if (!(p[i] = malloc(8 << 20))) return 2;
    memset(p[i], 1, 4096);
  }
  for (int i = 0; i < BLOCKS; i++) free(p[i]);
  size_t len = (size_t)1536 << 20;
  void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) {
    perror("mmap of 1.5 GiB after the frees");
    return 1;
  }
  munmap(m, len);
  puts("ok");
  return 0;
}
EOF
if ! $CC -O1 -o "$tmp/probe" "$tmp/probe.c"; then
  echo "ERROR: cannot build the probe" >&2
  exit 99
fi

for uffd in 0 1; do
  out=$( (ulimit -v 2097152 && HAKMEM_UFFD=$uffd LD_PRELOAD="$lib" "$tmp/probe") 2>&1)
  rc=$?
  if [ $rc -ne 0 ]; then
    echo "FAIL: HAKMEM_UFFD=$uffd, under a 2 GiB address space limit: exit $rc: $out"
    exit 1
  fi
done
echo "ok: the program's own 1.5 GiB mapping fits under a 2 GiB limit after 1.6 GB of huge blocks were freed"
exit 0
