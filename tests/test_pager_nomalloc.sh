#!/bin/sh
# Description: the pager never calls malloc. Its objects may not reference
# the malloc family, nor the libc calls that allocate behind the caller's
# back (stdio streams, strdup, asprintf, qsort...): the pager thread must
# not allocate from hakmem, whose pages it serves. A static check of the
# pager's convenience library; the pager's liburing calls (set-up, submit,
# wait) map their rings and do not allocate either.
set -eu
lib=pager/.libs/libhakmem_pager.a
if [ ! -f "$lib" ]; then
  echo "SKIP: $lib not built (configure --enable-uffd)"
  exit 77
fi
if ! command -v nm > /dev/null; then
  echo "SKIP: no nm to read the pager's objects"
  exit 77
fi
deny='malloc|calloc|realloc|reallocarray|free|posix_memalign|aligned_alloc|memalign|valloc|strdup|strndup|asprintf|vasprintf|fopen|fdopen|fprintf|printf|vprintf|vfprintf|puts|fputs|perror|getline|getdelim|qsort|opendir|scandir|backtrace|io_uring_get_probe|io_uring_get_probe_ring'
bad=$(nm -u "$lib" | awk '{print $NF}' | grep -E "^($deny)(@.*)?$" | sort -u || true)
if [ -n "$bad" ]; then
  echo "FAIL: the pager references functions that allocate:"
  echo "$bad"
  exit 1
fi
echo "1 passed, 0 failed"
