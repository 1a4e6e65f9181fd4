#!/usr/bin/env bash
# Install what building and testing hakmem needs, when it is missing
# (Debian 12 or Ubuntu, as root; with sudo otherwise).
#   tests/install-deps.sh test    build tools, liburing, Criterion, the programs
#                                 the integration tests run, CPython's test suite
#   tests/install-deps.sh bench   the above and the allocators compared
set -euo pipefail

want=(gcc g++ make binutils autoconf automake libtool pkg-config liburing-dev libcriterion-dev
      python3 perl sqlite3 git coreutils)
if [[ ${1:-test} == bench ]]; then
  want+=(libmimalloc-dev libjemalloc-dev libtcmalloc-minimal4 libc6-dev)
fi

sudo=()
((EUID == 0)) || sudo=(sudo)
updated=no

install() {
  echo "install-deps: installing $*"
  if [[ $updated == no ]]; then
    "${sudo[@]}" apt-get update -qq
    updated=yes
  fi
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

missing=()
for pkg in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
((${#missing[@]} == 0)) || install "${missing[@]}"

# CPython's regression tests (tests/test_pager_cpython.sh) come in their
# own package, named after the python3 version: libpython3.11-testsuite
# on Debian 12. Only when the python3 in PATH lacks them.
if ! python3 -c 'import test.libregrtest, test.test_json' 2>/dev/null; then
  version=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  pkg=libpython$version-testsuite
  if [[ $updated == no ]] && ! apt-cache show "$pkg" >/dev/null 2>&1; then
    "${sudo[@]}" apt-get update -qq
    updated=yes
  fi
  if apt-cache show "$pkg" >/dev/null 2>&1; then
    install "$pkg"
  else
    echo "install-deps: no package $pkg: tests/test_pager_cpython.sh will skip"
  fi
fi
