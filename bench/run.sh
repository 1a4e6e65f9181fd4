#!/usr/bin/env bash
# Build hakmem and run the headline benchmark: the README's first command.
# Installs what is missing (the compared allocators too), builds with the
# pager in build-bench/, runs `make bench` (QUICK=1: `make bench-quick`)
# and leaves bench-report/report.md, results.csv and report.svg there.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
bash tests/install-deps.sh bench
autoreconf -fi >/dev/null 2>&1 || autoreconf -fi
mkdir -p build-bench
cd build-bench
[[ -f Makefile ]] || "$top/configure" -q --enable-uffd CFLAGS="-O2 -g"
make -s -j"$(nproc)"
target=bench
[[ ${QUICK:-0} == 1 ]] && target=bench-quick
status=0
make -s "$target" ${BENCH_ARGS:+BENCH_ARGS="$BENCH_ARGS"} || status=$?
echo "report: $PWD/bench-report/report.md (results.csv, report.svg beside it)"
exit "$status"
