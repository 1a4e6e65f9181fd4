#!/bin/sh
# Description: hakmem under a preloaded library that wraps open() and
# fstat() and allocates in its wrappers (fakeroot and sandboxes wrap
# libc's file calls).
# The allocator opens files itself (the transparent-huge-page setting at
# its first mapping, /proc/self/pagemap, and with the pager
# /dev/userfaultfd and /proc/self/stat): through libc's open() it would
# enter the wrapper, which would call malloc again, recursing until the
# stack ran out or deadlocking on the allocator's lock. It uses the raw
# system calls, so the program below runs to its end, its first
# allocation small or large, with and without the pager. The pager knows
# its descriptors by fstat, also in fork's child handler, where a wrapper
# would run at the worst time: the program forks, and the wrapped fstat
# must never be called.
#
# Exit status, per automake: 0 passed, 77 skipped (no shared library or
# no compiler), 99 hakmem is not built, 1 failed.
#
# Environment: HAKMEM_BUILDDIR (set by make check) and CC.

set -u

tmp_prefix=hakmem-wrap
. "$(dirname "$0")/preload_setup.sh"
failed=0

cat >"$tmp/wrap.c" <<'EOF'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
struct stat;
struct stat64;
static void allocate(void) {
  char *p = malloc(100), *q = malloc(40000);
  if (p && q) { memset(p, 1, 100); memset(q, 1, 40000); }
  free(p);
  free(q);
}
static int call_next(const char *name, const char *path, int flags, va_list ap) {
  int mode = va_arg(ap, int);
  allocate();
  int (*next)(const char *, int, ...) = (int (*)(const char *, int, ...))dlsym(RTLD_NEXT, name);
  return next(path, flags, mode);
}
int open(const char *path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  int fd = call_next("open", path, flags, ap);
  va_end(ap);
  return fd;
}
int open64(const char *path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  int fd = call_next("open64", path, flags, ap);
  va_end(ap);
  return fd;
}
static int fstat_calls;
static int stat_next(const char *name, int fd, void *st) {
  fstat_calls++;
  allocate();
  int (*next)(int, void *) = (int (*)(int, void *))dlsym(RTLD_NEXT, name);
  return next(fd, st);
}
int fstat(int fd, struct stat *st) { return stat_next("fstat", fd, st); }
int fstat64(int fd, struct stat64 *st) { return stat_next("fstat64", fd, st); }
__attribute__((destructor)) static void report(void) {
  static const char line[] = "the wrapped fstat was called\n";
  if (fstat_calls) write(2, line, sizeof line - 1);
}
EOF
cat >"$tmp/first.c" <<'EOF'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
int main(int argc, char **argv) {
  size_t first = argc > 1 ? strtoul(argv[1], NULL, 10) : 100;
  char *p = malloc(first);
  if (!p) return 2;
  memset(p, 7, first);
  for (int i = 0; i < 1000; i++) free(malloc(1 + (size_t)i * 977));
  free(p);
  pid_t child = fork();
  if (child < 0) return 3;
  if (child == 0) {
    for (int i = 0; i < 100; i++) free(malloc(1 + (size_t)i * 977));
    _exit(0);
  }
  int status;
  if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0) return 4;
  puts("done");
  return 0;
}
EOF
if ! $CC -shared -fPIC -o "$tmp/wrap.so" "$tmp/wrap.c" -ldl || ! $CC -o "$tmp/first" "$tmp/first.c"; then
  echo "ERROR: cannot build the test programs" >&2
  exit 99
fi

for first in 100 40000 3000000; do
  for uffd in 0 1; do
    out=$(HAKMEM_UFFD=$uffd LD_PRELOAD="$tmp/wrap.so $lib" timeout 60 "$tmp/first" $first 2>"$tmp/err")
    rc=$?
    if [ $rc -ne 0 ] || [ "$out" != done ] || grep -q 'wrapped fstat' "$tmp/err"; then
      echo "FAIL: first allocation $first B, HAKMEM_UFFD=$uffd: exit $rc, output '$out'; stderr: $(head -c 300 "$tmp/err")"
      failed=1
    else
      echo "ok: first allocation $first B, HAKMEM_UFFD=$uffd"
    fi
  done
done
exit $failed
