# Sourced by the shell tests that build a program and run it under
# LD_PRELOAD=libhakmem.so: checks what they need (exit 99 when hakmem is
# not built, 77 when there is no shared library or no compiler), and
# makes $tmp, removed at exit. Sets builddir, CC, lib and tmp; takes the
# temporary directory's name prefix from $tmp_prefix.

builddir=${HAKMEM_BUILDDIR:-$(pwd)}
CC=${CC:-cc}
lib=$builddir/lib/.libs/libhakmem.so

if [ ! -f "$builddir/lib/.libs/libhakmem.a" ] && [ ! -f "$lib" ]; then
  echo "ERROR: hakmem is not built in $builddir (make first)" >&2
  exit 99
fi
if [ ! -f "$lib" ]; then
  echo "SKIP: no libhakmem.so (a --disable-shared build): nothing to preload"
  exit 77
fi
if ! command -v "${CC%% *}" >/dev/null 2>&1; then
  echo "SKIP: no C compiler ($CC)"
  exit 77
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/$tmp_prefix.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT INT TERM
