#!/bin/sh
# Description: linking with hakmem as hakmem.pc says gives a program that
# runs on hakmem.
# - Shared: a program that calls no allocator function itself (its
#   allocations happen in libraries) keeps libhakmem.so under the
#   linker's --as-needed, the default of Debian's gcc.
# - Static (`pkg-config --static`, only libhakmem.a in the directory): the
#   allocator comes in although the program calls no allocator function,
#   hakmem's internal names do not clash with a program's own
#   (options_init, region_map), and, built with --enable-uffd, the pager
#   starts at load under HAKMEM_UFFD=1 although the program names none of
#   its functions.
#
# Exit status, per automake: 0 passed, 77 skipped (no static library, no
# compiler), 99 hakmem is not built, 1 failed.
#
# Environment: HAKMEM_BUILDDIR (set by make check), CC and PKG_CONFIG.

set -u

builddir=${HAKMEM_BUILDDIR:-$(pwd)}
CC=${CC:-cc}
PKG_CONFIG=${PKG_CONFIG:-pkg-config}

if { [ ! -f "$builddir/lib/.libs/libhakmem.so" ] && [ ! -f "$builddir/lib/.libs/libhakmem.a" ]; } ||
  [ ! -f "$builddir/hakmem.pc" ]; then
  echo "ERROR: hakmem is not built in $builddir (make first)" >&2
  exit 99
fi
if ! command -v "${CC%% *}" >/dev/null 2>&1 || ! command -v "$PKG_CONFIG" >/dev/null 2>&1; then
  echo "SKIP: no C compiler ($CC) or no $PKG_CONFIG"
  exit 77
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hakmem-link.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT INT TERM
failed=0

fail() {
  echo "FAIL: $1"
  failed=1
}

# pc_libs DIR [--static]: hakmem.pc's link flags, its libdir set to DIR.
pc_libs() {
  dir=$1
  shift
  PKG_CONFIG_PATH=$builddir $PKG_CONFIG --define-variable=libdir="$dir" "$@" --libs hakmem
}

# The program calls nothing of the allocator's: a library allocates for it.
cat >"$tmp/nocall.c" <<'EOF'
#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
int main(void) {
  char buf[64];
  DIR *d = opendir("/"); /* glibc allocates the stream */
  if (d) closedir(d);
  /* Threads of this process, the pager's among them when it runs. */
  int tasks = 0;
  DIR *t = opendir("/proc/self/task");
  struct dirent *e;
  while (t && (e = readdir(t))) tasks += e->d_name[0] != '.';
  if (t) closedir(t);
  snprintf(buf, sizeof buf, "tasks %d\n", tasks);
  return write(1, buf, strlen(buf)) < 0;
}
EOF

# Shared, under --as-needed.
if [ ! -f "$builddir/lib/.libs/libhakmem.so" ]; then
  echo "SKIP: shared link test (built with --disable-shared)"
elif ! $CC -Wl,--as-needed -o "$tmp/nocall_shared" "$tmp/nocall.c" $(pc_libs "$builddir/lib/.libs") \
    -Wl,-rpath,"$builddir/lib/.libs" 2>"$tmp/cc.err"; then
  cat "$tmp/cc.err"
  fail "the shared link with hakmem.pc's flags failed"
elif ! HAKMEM_VERBOSE=1 "$tmp/nocall_shared" 2>&1 >/dev/null | grep -q '^hakmem'; then
  fail "a program linked with hakmem.pc's flags under --as-needed did not load libhakmem.so"
else
  echo "PASS: shared link keeps libhakmem.so under --as-needed"
fi

if [ ! -f "$builddir/lib/.libs/libhakmem.a" ]; then
  echo "SKIP: static link tests (built with --disable-static)"
  [ $failed -eq 0 ] && exit 0
  exit 1
fi
mkdir "$tmp/static" && cp "$builddir/lib/.libs/libhakmem.a" "$tmp/static/"

# Static: the whole allocator, no clash, the pager at load.
cat >"$tmp/clash.c" <<'EOF'
int options_init = 1;
int region_map(void) { return options_init; }
EOF
if [ "$(ar t "$tmp/static/libhakmem.a" 2>/dev/null)" != hakmem.o ]; then
  echo "SKIP: static link tests (libhakmem.a was not merged into one object: an LTO build, or no objcopy)"
elif ! $CC -o "$tmp/nocall_static" "$tmp/nocall.c" "$tmp/clash.c" $(pc_libs "$tmp/static" --static) 2>"$tmp/cc.err"; then
  cat "$tmp/cc.err"
  fail "a static link beside a program defining options_init and region_map failed"
else
  if ! HAKMEM_VERBOSE=1 "$tmp/nocall_static" 2>&1 >/dev/null | grep -q '^hakmem'; then
    fail "a static link of a program calling no allocator function left hakmem out"
  else
    echo "PASS: static link brings hakmem in, without a clash of internal names"
  fi
  if grep -q '^#define HAKMEM_ENABLE_UFFD 1' "$builddir/config.h"; then
    out=$(HAKMEM_UFFD=1 "$tmp/nocall_static" 2>"$tmp/uffd.err")
    if grep -q "the kernel's fault path serves" "$tmp/uffd.err"; then
      echo "SKIP: the pager at load in a static program (no full userfaultfd here: $(cat "$tmp/uffd.err"))"
    elif [ "$out" != "tasks 2" ]; then
      cat "$tmp/uffd.err"
      fail "HAKMEM_UFFD=1 in a static program: '$out', expected 'tasks 2' (main and the pager)"
    else
      echo "PASS: HAKMEM_UFFD=1 starts the pager in a static program"
    fi
  fi
fi

exit $failed
