#!/usr/bin/env bash
# make check's way to run a test program (LOG_COMPILER). A Criterion
# program prints each test's result, so its skips show with their reasons
# ([SKIP] lines, which tests/run.sh counts), and one whose every test
# skipped exits 77, which automake reports as SKIP. Other programs (the
# shell tests) run unchanged.
set -o pipefail
export CRITERION_VERBOSITY_LEVEL=1
# hakmem reads its options (HAKMEM_STATS, HAKMEM_SS_LAZY_ZERO...) from the
# environment: a user's own would change what every test measures and
# prints. The tests set those they want themselves; the harness's
# variables stay.
for v in $(compgen -e); do
  case $v in
    HAKMEM_BUILDDIR | HAKMEM_SRCDIR | HAKMEM_LIB | HAKMEM_TEST_TIMEOUT) ;;
    HAKMEM_*) unset "$v" ;;
  esac
done
out=$(mktemp) || exit 99
"$@" 2>&1 | tee "$out"
rc=$?
if ((rc == 0)) && grep -aq 'Synthesis: Tested: 0 ' "$out" && grep -aq '^\[SKIP\]' "$out"; then rc=77; fi
# Criterion exits 1 after a cr_log_warn() even when every test passed.
if ((rc == 1)) && grep -aq 'Failing: 0 | Crashing: 0' "$out" && grep -aq '^\[WARN\]' "$out"; then
  echo "criterion-run.sh: every test passed, but Criterion fails a program that printed a [WARN] line"
fi
rm -f "$out"
exit "$rc"
