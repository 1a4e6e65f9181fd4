#!/usr/bin/env bash
# Install what building and testing hakmem needs, when it is missing
# (Debian 12 or Ubuntu, as root; with sudo otherwise).
#   tests/install-deps.sh test    build tools, liburing, Criterion, the programs
#                                 the integration test runs
#   tests/install-deps.sh bench   the above and the allocators compared
set -euo pipefail

want=(gcc g++ make binutils autoconf automake libtool pkg-config liburing-dev libcriterion-dev
      python3 perl sqlite3 git coreutils)
if [[ ${1:-test} == bench ]]; then
  want+=(libmimalloc-dev libjemalloc-dev libtcmalloc-minimal4 libc6-dev)
fi

missing=()
for pkg in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
((${#missing[@]} == 0)) && exit 0

sudo=()
((EUID == 0)) || sudo=(sudo)
echo "install-deps: installing ${missing[*]}"
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
