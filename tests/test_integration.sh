#!/bin/sh
# Description: real programs under LD_PRELOAD=libhakmem.so give the same
# output, byte for byte, and the same exit status as without it: python3
# (PYTHONMALLOC=malloc: dicts, lists, string building, a JSON round trip,
# sorting 200k items), sort on a generated file, sqlite3 (20k rows
# inserted in a transaction, aggregate queries), perl (hashes and
# regexes), git (init, commits, log, fsck, gc), gcc (the object files
# are identical and the compiled program prints the same) and g++ (a C++
# program using new/delete, containers, exceptions and threads). With
# HAKMEM_STATS=1 the report must appear on stderr, and only there.
#
# A program that is not installed is skipped with a message. Exit status,
# per automake: 0 all ran passed, 77 nothing could run, 99 hakmem's
# library is missing, 1 a program's output differed.
#
# Environment: HAKMEM_BUILDDIR (set by make check) or the current
# directory is the top build directory; HAKMEM_LIB overrides the library.

set -u

builddir=${HAKMEM_BUILDDIR:-$(pwd)}
lib=${HAKMEM_LIB:-$builddir/lib/.libs/libhakmem.so}
limit=${HAKMEM_TEST_TIMEOUT:-300}

if [ ! -f "$lib" ] && [ -f "$builddir/lib/.libs/libhakmem.a" ]; then
  echo "SKIP: no $lib (built with --disable-shared): nothing to preload"
  exit 77
fi
if [ ! -f "$lib" ]; then
  echo "ERROR: $lib not found: build the library first (make)" >&2
  exit 99
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hakmem-integration.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT INT TERM

passed=0
failed=0
skipped=0

have() {
  command -v "$1" >/dev/null 2>&1
}

skip() {
  echo "SKIP: $1 ($2)"
  skipped=$((skipped + 1))
}

# run NAME DIR CMD...: run CMD in DIR (created fresh) writing
# $tmp/NAME.out, .err and .status.
run() {
  name=$1 dir=$2
  shift 2
  rm -rf "$dir" && mkdir -p "$dir" || return 1
  (cd "$dir" && timeout "$limit" "$@") >"$tmp/$name.out" 2>"$tmp/$name.err"
  echo $? >"$tmp/$name.status"
}

# compare TITLE CMD...: run CMD without hakmem and with it, compare.
compare() {
  title=$1
  shift
  run "$title.ref" "$tmp/$title.ref.d" "$@"
  run "$title.hak" "$tmp/$title.hak.d" env LD_PRELOAD="$lib" "$@"
  ok=1
  if [ "$(cat "$tmp/$title.ref.status")" != 0 ]; then
    echo "FAIL: $title: the reference run (without hakmem) exited $(cat "$tmp/$title.ref.status")"
    sed 's/^/  ref stderr: /' "$tmp/$title.ref.err" | head -20
    ok=0
  elif [ "$(cat "$tmp/$title.hak.status")" != 0 ]; then
    echo "FAIL: $title: exit status $(cat "$tmp/$title.hak.status") under hakmem"
    sed 's/^/  stderr: /' "$tmp/$title.hak.err" | head -20
    ok=0
  elif ! cmp -s "$tmp/$title.ref.out" "$tmp/$title.hak.out"; then
    echo "FAIL: $title: output differs under hakmem"
    diff "$tmp/$title.ref.out" "$tmp/$title.hak.out" | head -20
    ok=0
  elif grep -q '^hakmem: ' "$tmp/$title.hak.err"; then
    echo "FAIL: $title: hakmem reported a problem"
    grep '^hakmem: ' "$tmp/$title.hak.err" | head -5
    ok=0
  fi
  if [ $ok = 1 ]; then
    echo "PASS: $title ($(wc -c <"$tmp/$title.ref.out") bytes of output identical)"
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
  fi
}

# The preload must really replace malloc: the library is mapped.
if env LD_PRELOAD="$lib" cat /proc/self/maps | grep -q libhakmem; then
  echo "PASS: preload (libhakmem is mapped into a preloaded process)"
  passed=$((passed + 1))
else
  echo "FAIL: preload: libhakmem.so is not mapped into a preloaded process"
  failed=$((failed + 1))
fi

# ---- python3 -------------------------------------------------------------
cat >"$tmp/workload.py" <<'EOF'
import hashlib, json, random
random.seed(12345)
d = {}
for i in range(200000):
    d["k%d" % i] = [i, str(i) * 3, {"x": i % 7, "y": [i] * (i % 5)}]
blob = json.dumps(d, sort_keys=True)
back = json.loads(blob)
assert back == d
print(len(d), len(blob), hashlib.sha256(blob.encode()).hexdigest())
items = [random.random() for _ in range(200000)]
items.sort()
print("%.12f %.12f %.6f" % (items[0], items[-1], sum(items)))
parts = []
for i in range(100000):
    parts.append("line %d %s" % (i, "xyz"[i % 3] * (i % 40)))
text = "\n".join(parts)
words = sorted(text.split(), key=lambda w: (len(w), w))
print(len(text), len(words), words[:3], words[-3:])
s = set(range(0, 300000, 3)) ^ set(range(0, 300000, 5))
print(len(s), sum(s))
t = tuple(str(i)[::-1] for i in range(100000))
print(hashlib.md5("".join(sorted(t)).encode()).hexdigest())
b = bytearray()
for i in range(50000):
    b += bytes([i % 251]) * (i % 17)
print(len(b), hashlib.sha1(b).hexdigest())
EOF
# The interpreter itself, not a wrapper script (such as a pyenv shim) that
# would start several processes.
python=
if have python3; then
  python=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null)
fi
if [ -n "$python" ]; then
  compare python3 env PYTHONMALLOC=malloc PYTHONHASHSEED=0 "$python" "$tmp/workload.py"
else
  skip python3 "python3 is not installed"
fi

# ---- sort ------------------------------------------------------------------
awk 'BEGIN { srand(7); for (i = 0; i < 200000; i++)
  printf "%08d %s w%d\n", int(rand() * 100000000), i, int(rand() * 1000) }' >"$tmp/sort.in"
if have sort; then
  compare sort env LC_ALL=C sort -k1,1 -k2n "$tmp/sort.in"
  compare sort-threads env LC_ALL=C sort --parallel=2 -S 4M -T "$tmp" -k3,3 -k2nr "$tmp/sort.in"
else
  skip sort "sort is not installed"
fi

# ---- sqlite3 ---------------------------------------------------------------
awk 'BEGIN {
  print "CREATE TABLE t (id INTEGER PRIMARY KEY, grp INTEGER, name TEXT, val REAL);"
  print "BEGIN;"
  for (i = 0; i < 20000; i++)
    printf "INSERT INTO t (grp, name, val) VALUES (%d, '\''name-%d-%s'\'', %d.25);\n", i % 37, i, substr("abcdefghij", 1 + i % 10), (i * 7919) % 10007
  print "COMMIT;"
  print "CREATE INDEX t_grp ON t (grp);"
  print "SELECT count(*), sum(val), min(name), max(name) FROM t;"
  print "SELECT grp, count(*), avg(val), group_concat(substr(name, -1), '\'''\'') FROM t GROUP BY grp ORDER BY grp;"
  print "SELECT name, val FROM t WHERE val > 10000 ORDER BY val DESC, name LIMIT 20;"
  print "SELECT length(group_concat(name)) FROM (SELECT name FROM t ORDER BY name);"
  print "UPDATE t SET val = val * 2 WHERE grp % 2 = 0;"
  print "DELETE FROM t WHERE id % 3 = 0;"
  print "SELECT count(*), total(val) FROM t;"
}' >"$tmp/workload.sql"
if have sqlite3; then
  compare sqlite3 sh -c "sqlite3 test.db <'$tmp/workload.sql'"
else
  skip sqlite3 "sqlite3 is not installed"
fi

# ---- perl ------------------------------------------------------------------
cat >"$tmp/workload.pl" <<'EOF'
use strict; use warnings;
my %h; my @words;
for my $i (0 .. 199999) {
  my $k = sprintf("key%06d-%s", $i, join("", map { chr(97 + ($i * $_) % 26) } 1 .. ($i % 12)));
  $h{$k} = $i * 3;
  push @words, $k if $i % 7 == 0;
}
my $n = 0; my $sum = 0;
for my $k (sort keys %h) {
  if ($k =~ /^key(\d+)-([a-m]+)$/) { $n++; $sum += $1 + length($2); }
}
print scalar(keys %h), " $n $sum\n";
my $text = join(" ", @words) x 3;
(my $t2 = $text) =~ s/key0*(\d+)/<$1>/g;
my @m = ($t2 =~ /<(\d*7)>/g);
print length($text), " ", length($t2), " ", scalar(@m), "\n";
my %count; $count{substr($_, -1)}++ for @words;
print join(",", map { "$_=$count{$_}" } sort keys %count), "\n";
my @sorted = sort { $h{$b} <=> $h{$a} or $a cmp $b } keys %h;
print "@sorted[0 .. 4]\n";
EOF
if have perl; then
  compare perl perl "$tmp/workload.pl"
else
  skip perl "perl is not installed"
fi

# ---- git -------------------------------------------------------------------
cat >"$tmp/workload-git.sh" <<'EOF'
set -e
export HOME="$PWD" GIT_CONFIG_NOSYSTEM=1 GIT_AUTHOR_NAME=Test GIT_AUTHOR_EMAIL=t@example.org
export GIT_COMMITTER_NAME=Test GIT_COMMITTER_EMAIL=t@example.org
export GIT_AUTHOR_DATE='2024-01-01T00:00:00Z' GIT_COMMITTER_DATE='2024-01-01T00:00:00Z'
git init -q -b main repo
cd repo
for c in 1 2 3 4 5 6 7 8; do
  for f in 1 2 3 4 5 6 7 8 9 10; do
    awk -v c=$c -v f=$f 'BEGIN { for (i = 0; i < 300 * f; i++) print c, f, i, (i * c * f) % 9973 }' >file$f.txt
  done
  mkdir -p dir$c && seq 1 $((c * 100)) >dir$c/seq
  git add -A
  git commit -q -m "commit $c"
done
git log --stat --format='%H %s'
git fsck --full --strict 2>&1
git gc -q
git count-objects -v | grep -v size
git rev-list --all --objects | sort
git diff HEAD~5 HEAD --stat
EOF
if have git; then
  compare git sh "$tmp/workload-git.sh"
else
  skip git "git is not installed"
fi

# ---- gcc -------------------------------------------------------------------
cat >"$tmp/prog.c" <<'EOF'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
struct node { struct node *next; int v; };
static int cmp(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }
int main(void) {
  struct node *head = NULL;
  for (int i = 0; i < 1000; i++) {
    struct node *n = malloc(sizeof *n);
    n->v = (i * 7919) % 1009; n->next = head; head = n;
  }
  int a[1000], k = 0;
  for (struct node *n = head; n; n = n->next) a[k++] = n->v;
  qsort(a, 1000, sizeof a[0], cmp);
  long s = 0;
  for (int i = 0; i < 1000; i++) s += (long)a[i] * i;
  printf("%d %d %ld\n", a[0], a[999], s);
  return 0;
}
EOF
cat >"$tmp/workload-gcc.sh" <<EOF
set -e
gcc -O2 -Wall -c "$tmp/prog.c" -o prog.o
gcc prog.o -o prog
cksum <prog.o
EOF
if have gcc; then
  compare gcc sh "$tmp/workload-gcc.sh"
  # The programs both compilers built print the same.
  if [ -x "$tmp/gcc.ref.d/prog" ] && [ -x "$tmp/gcc.hak.d/prog" ]; then
    a=$("$tmp/gcc.ref.d/prog") b=$("$tmp/gcc.hak.d/prog")
    if [ -n "$a" ] && [ "$a" = "$b" ]; then
      echo "PASS: gcc-output (the program built under hakmem prints \"$b\")"
      passed=$((passed + 1))
    else
      echo "FAIL: gcc-output: \"$a\" without hakmem, \"$b\" with it"
      failed=$((failed + 1))
    fi
  fi
else
  skip gcc "gcc is not installed"
fi

# ---- g++: C++ new/delete -------------------------------------------------
# new and delete go through malloc and free: containers, strings, virtual
# objects, exceptions and threads, built by g++ (which itself runs under
# hakmem) and run under hakmem.
cat >"$tmp/prog.cc" <<'EOF'
#include <cstdio>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>
struct Shape { virtual ~Shape() {} virtual long area() const = 0; };
struct Rect : Shape { long w, h; Rect(long a, long b) : w(a), h(b) {} long area() const override { return w * h; } };
static long work(int seed) {
  std::map<std::string, std::vector<int>> m;
  std::unordered_map<int, std::string> u;
  std::vector<std::unique_ptr<Shape>> shapes;
  long sum = 0;
  for (int i = 0; i < 50000; i++) {
    std::string k = "k" + std::to_string((i * 7919 + seed) % 10007);
    m[k].push_back(i);
    u[i % 5003] += static_cast<char>('a' + i % 26);
    shapes.emplace_back(new Rect(i % 100, seed + 1));
    if (i % 1000 == 0) {
      try { throw std::runtime_error(k); } catch (const std::exception &e) { sum += e.what()[1]; }
    }
  }
  for (auto &kv : m) sum += static_cast<long>(kv.first.size() * kv.second.size());
  for (auto &kv : u) sum += static_cast<long>(kv.second.size());
  for (auto &s : shapes) sum += s->area();
  int *arr = new int[100000]();
  for (int i = 0; i < 100000; i++) sum += arr[i];
  delete[] arr;
  return sum;
}
int main() {
  long results[4] = {0, 0, 0, 0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; t++) threads.emplace_back([t, &results] { results[t] = work(t); });
  for (auto &th : threads) th.join();
  for (long r : results) std::printf("%ld\n", r);
  return 0;
}
EOF
cat >"$tmp/workload-gxx.sh" <<EOF
set -e
g++ -O1 -pthread "$tmp/prog.cc" -o prog
./prog
EOF
if have g++; then
  compare g++ sh "$tmp/workload-gxx.sh"
else
  skip g++ "g++ is not installed"
fi

# ---- HAKMEM_STATS=1 --------------------------------------------------------
# The report goes to stderr at exit; stdout is untouched. sort is a program
# whose own exit handler closes stdout and stderr (gnulib's close_stdout),
# which runs before an exit handler installed when hakmem was loaded: the
# report must survive that too.
stats_check() {
  title=$1
  shift
  timeout "$limit" "$@" >"$tmp/$title.ref" 2>/dev/null
  HAKMEM_STATS=1 LD_PRELOAD="$lib" timeout "$limit" "$@" >"$tmp/$title.out" 2>"$tmp/$title.err"
  status=$?
  if [ $status != 0 ]; then
    echo "FAIL: $title: exit status $status with HAKMEM_STATS=1"
    failed=$((failed + 1))
  elif ! cmp -s "$tmp/$title.ref" "$tmp/$title.out"; then
    echo "FAIL: $title: HAKMEM_STATS=1 changed stdout"
    failed=$((failed + 1))
  elif ! grep -q '^hakmem.*statistics' "$tmp/$title.err" || ! grep -q '^hakmem.*supply' "$tmp/$title.err" \
    || ! grep -q '^hakmem.*bytes_mapped' "$tmp/$title.err"; then
    echo "FAIL: $title: no report on stderr with HAKMEM_STATS=1; stderr was:"
    head -20 "$tmp/$title.err"
    failed=$((failed + 1))
  else
    echo "PASS: $title (report of $(wc -l <"$tmp/$title.err") lines on stderr)"
    passed=$((passed + 1))
  fi
}
if [ -n "$python" ]; then
  stats_check stats-python3 "$python" -c 'print(sorted(str(i) for i in range(100000))[-1])'
else
  skip stats-python3 "python3 is not installed"
fi
if have sort; then
  stats_check stats-sort env LC_ALL=C sort "$tmp/sort.in"
  if LD_PRELOAD="$lib" LC_ALL=C sort "$tmp/sort.in" 2>&1 >/dev/null \
    | grep -q '^hakmem.*\(statistics\|supply\|bytes_mapped\)'; then
    echo "FAIL: stats-off: a report appeared without HAKMEM_STATS=1"
    failed=$((failed + 1))
  else
    echo "PASS: stats-off (no report without HAKMEM_STATS)"
    passed=$((passed + 1))
  fi
fi

# The report's copy of stderr is the library's: a program that puts a
# file of its own on that number (python below finds the number; it fails
# when it finds none) finds only its own bytes in the file, and the report
# still goes to stderr.
own_file_check() {
  title=$1
  shift
  rm -f "$tmp/$title.file"
  HAKMEM_STATS=1 LD_PRELOAD="$lib" timeout "$limit" "$@" "$tmp/$title.file" >"$tmp/$title.out" 2>"$tmp/$title.err"
  status=$?
  if [ $status != 0 ] || [ "$(cat "$tmp/$title.file" 2>/dev/null)" != hi ]; then
    echo "FAIL: $title: status $status; the program's file holds:"
    head -5 "$tmp/$title.file"
    failed=$((failed + 1))
  elif ! grep -q '^hakmem.*statistics' "$tmp/$title.err"; then
    echo "FAIL: $title: no report on stderr"
    failed=$((failed + 1))
  else
    echo "PASS: $title ($(cat "$tmp/$title.out"))"
    passed=$((passed + 1))
  fi
}
cat >"$tmp/own_file.py" <<'PY'
import os, resource, sys
err = os.fstat(2)
def is_stderr(n):
    try:
        st = os.fstat(n)
    except OSError:
        return False
    return (st.st_dev, st.st_ino) == (err.st_dev, err.st_ino)
copies = [int(n) for n in os.listdir('/proc/self/fd') if int(n) > 2 and is_stderr(int(n))]
if not copies:
    sys.exit("no copy of stderr to put a file on: the report's copy was not found")
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
if copies and max(copies) >= soft:
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(copies) + 1, max(hard, max(copies) + 1)))
for n in copies:
    os.dup2(fd, n)
os.write(fd, b'hi\n')
print("the program's file on the report's number%s %s" % ("s" * (len(copies) != 1), copies))
PY
if [ -n "$python" ] && [ "$(id -u)" = 0 ]; then
  own_file_check stats-own-file-python "$python" "$tmp/own_file.py"
else
  skip stats-own-file-python "needs python3 and root (to raise RLIMIT_NOFILE to the copy's number)"
fi

echo "# integration: $passed passed, $failed failed, $skipped skipped"
if [ $failed -gt 0 ]; then
  exit 1
fi
if [ $passed -eq 0 ]; then
  exit 77
fi
exit 0
