#!/bin/sh
# Description: fork handlers that allocate, registered by a library whose
# constructor ran before hakmem's (under LD_PRELOAD the loader runs the
# preloaded library's constructor last). Their prepare handler then runs
# after hakmem's, and their parent and child handlers before hakmem's:
# all three inside the window in which hakmem holds its locks for the
# fork. glibc lets fork handlers use malloc; so does hakmem: the forking
# thread takes those locks again, nested. Each handler allocates a small
# block (its thread's first: the heaps lock), a large one (an arena's
# lock) and a huge one (the LRU's and the region map's locks), and writes
# them; the child also fills 8 MiB of small blocks, and the parent checks
# that its own blocks are intact after the fork. A child handler may also
# start a thread whose first malloc waits for those locks: hakmem's child
# handler must wake it when it resets them. With and without the pager.
#
# Exit status, per automake: 0 passed, 77 skipped (no shared library or
# no compiler), 99 hakmem is not built, 1 failed.
#
# Environment: HAKMEM_BUILDDIR (set by make check) and CC.

set -u

tmp_prefix=hakmem-atfork
. "$(dirname "$0")/preload_setup.sh"

cat >"$tmp/handlers.c" <<'EOF'
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
static const char *which;
static void use(const char *name) {
  static const size_t sizes[] = { 64, 200000, 4 << 20 };
  if (strcmp(which, name) != 0) return;
  for (int i = 0; i < 3; i++) {
    char *p = malloc(sizes[i]);
    if (!p) _exit(5);
    memset(p, 0x5a, sizes[i]);
    free(p);
  }
}
static pthread_t started;
static int thread_started;
static void *thread_main(void *arg) {
  (void)arg;
  free(malloc(64)); /* its first malloc: the heaps lock, held until hakmem's child handler */
  return NULL;
}
static void prepare(void) { use("prepare"); }
static void parent(void) { use("parent"); }
static void child(void) {
  if (strcmp(which, "child-thread") == 0) {
    thread_started = pthread_create(&started, NULL, thread_main, NULL) == 0;
    usleep(50000); /* let it wait for the lock */
  }
  use("child");
  if (strcmp(which, "child") != 0) return;
  for (int i = 0; i < 131072; i++) { /* 8 MiB of fresh small blocks */
    char *p = malloc(64);
    if (!p) _exit(5);
    memset(p, 0x77, 64);
  }
}
__attribute__((constructor)) static void install(void) {
  which = getenv("HANDLER");
  if (which) pthread_atfork(prepare, parent, child);
}
void handlers_join(void) {
  if (thread_started) pthread_join(started, NULL);
}
EOF
cat >"$tmp/main.c" <<'EOF'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
void handlers_join(void);
#define N 4096
int main(void) {
  static unsigned char *mine[N];
  for (int i = 0; i < N; i++) {
    mine[i] = malloc(48);
    if (!mine[i]) return 2;
    memset(mine[i], i & 0xff, 48);
  }
  pid_t pid = fork();
  if (pid < 0) return 3;
  if (pid == 0) {
    handlers_join();
    _exit(0);
  }
  int status;
  if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) return 4;
  for (int i = 0; i < N; i++)
    for (int j = 0; j < 48; j++)
      if (mine[i][j] != (i & 0xff)) return 6;
  puts("done");
  return 0;
}
EOF
if ! $CC -shared -fPIC -o "$tmp/libhandlers.so" "$tmp/handlers.c" -lpthread ||
  ! $CC -o "$tmp/main" "$tmp/main.c" -L"$tmp" -lhandlers -Wl,-rpath,"$tmp"; then
  echo "ERROR: cannot build the test programs" >&2
  exit 99
fi

passed=0 failed=0
for handler in prepare parent child child-thread; do
  for uffd in 0 1; do
    out=$(HANDLER=$handler HAKMEM_UFFD=$uffd LD_PRELOAD="$lib" timeout 20 "$tmp/main" 2>"$tmp/err")
    rc=$?
    if [ $rc -ne 0 ] || [ "$out" != done ]; then
      what="exit $rc"
      [ $rc -eq 124 ] && what="hung (killed after 20 s)"
      echo "FAIL: a $handler handler that allocates, HAKMEM_UFFD=$uffd: $what, output '$out'; stderr: $(head -c 300 "$tmp/err")"
      failed=$((failed + 1))
    else
      echo "ok: a $handler handler that allocates, HAKMEM_UFFD=$uffd"
      passed=$((passed + 1))
    fi
  done
done
echo "# fork-handlers: $passed passed, $failed failed"
[ $failed -eq 0 ]
