#!/usr/bin/env bash
# Build hakmem and run every test: the README's test command, and CI's.
# Installs what is missing, builds with the pager (--enable-uffd) and with
# warnings as errors, runs `make check`, checks that the build without the
# pager still compiles, and ends with one summary line over all tests.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
bash tests/install-deps.sh test
jobs=$(nproc)

autoreconf -fi >/dev/null 2>&1 || autoreconf -fi

build() { # build DIR CONFIGURE-ARGS...
  local dir=$1; shift
  mkdir -p "$dir"
  (cd "$dir" && "$top/configure" -q CFLAGS="-O2 -g -Werror" "$@" && make -s -j"$jobs")
}

echo "== build without the pager"
build build-nopager
echo "== build with the pager, and make check"
build build-check --enable-uffd
status=0
(cd build-check && make -s -j"$jobs" check) || status=$?

# One line for everything: Criterion's syntheses and the shell tests' lines.
tested=0 passing=0 failing=0 crashing=0 skipped=0
for log in build-check/tests/*.log; do
  [[ $log == */test-suite.log ]] && continue
  if line=$(grep -a 'Synthesis: Tested:' "$log" | tail -n 1) && [[ -n $line ]]; then
    read -r t p f c < <(sed -E 's/.*Tested: ([0-9]+).*Passing: ([0-9]+).*Failing: ([0-9]+).*Crashing: ([0-9]+).*/\1 \2 \3 \4/' <<<"$line")
    tested=$((tested + t)) passing=$((passing + p)) failing=$((failing + f)) crashing=$((crashing + c))
    skipped=$((skipped + $(grep -ac '^\[SKIP\]' "$log" || true)))
  elif line=$(grep -aE '^# [a-z-]+: [0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1) && [[ -n $line ]]; then
    read -r p f s < <(sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed(, ([0-9]+) skipped)?.*/\1 \2 \4/' <<<"$line")
    tested=$((tested + p + f)) passing=$((passing + p)) failing=$((failing + f)) skipped=$((skipped + ${s:-0}))
  fi
done
if ((status != 0 && tested == 0)); then
  echo "== make check failed before any test ran: the build's errors are above"
elif ((status != 0)) && [[ -f build-check/test-suite.log ]]; then
  echo "== failures (build-check/test-suite.log)"
  grep -aE '^(FAIL|ERROR)' build-check/test-suite.log || true
  # CI keeps only the end of the output: each failed program's own lines
  # that say why come last.
  for trs in build-check/tests/*.trs; do
    grep -aqE '^:test-result: (FAIL|ERROR)' "$trs" || continue
    log=${trs%.trs}.log
    echo "== ${log#build-check/}: its failed assertions, failures, warnings and last lines"
    # An assertion's location, then its message on the "[----]" lines after it.
    awk '/Assertion Failed/ { msg = 3; print; next }
         msg > 0 && /^\[----\] *[^ ]/ { msg--; print; next }
         /^\[(FAIL|WARN|ERR)|FAIL|[Ww]arning/ { msg = 0; print }' "$log" | head -n 30 || true
    tail -n 5 "$log"
  done
fi
echo "Synthesis: Tested: $tested | Passing: $passing | Failing: $failing | Crashing: $crashing"
echo "$passing passed, $((failing + crashing)) failed, $skipped skipped"
exit "$status"
