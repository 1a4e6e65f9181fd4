#!/bin/sh
# merge-static.sh ARCHIVE: rewrite libhakmem.a as one relocatable object
# whose internal symbols are local.
#
# The shared library hides hakmem's internals behind its version script; a
# static archive has no such thing, and its members would export names
# like options_init or region_map to the program, and be pulled in one by
# one: a program that calls malloc would get the allocator but not the
# pager's load-time start. One object, with every hidden symbol (all of
# hakmem's internals: -fvisibility=hidden) made local, exports exactly
# what libhakmem.so does and comes in whole. Archives nested by libtool
# (liburing.a) are dropped: a linker never reads them; the program links
# liburing itself (hakmem.pc's Libs.private).
#
# Environment: AR, LD, OBJCOPY, RANLIB (default: the plain tools).
set -eu

archive=$1
AR=${AR:-ar}
LD=${LD:-ld}
OBJCOPY=${OBJCOPY:-objcopy}
RANLIB=${RANLIB:-ranlib}

[ -f "$archive" ] || exit 0 # --disable-static
if ! command -v "${OBJCOPY%% *}" >/dev/null 2>&1; then
  echo "merge-static.sh: no $OBJCOPY: $archive keeps its members, and exports hakmem's internal names" >&2
  exit 0
fi
case $archive in
/*) ;;
*) archive=$(pwd)/$archive ;;
esac

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Already one object: nothing to do (make may run this twice).
members=$($AR t "$archive")
if [ "$members" = hakmem.o ]; then exit 0; fi

objects=$(printf '%s\n' "$members" | grep '\.o$' || true)
count=$(printf '%s\n' "$objects" | grep -c . || true)
(cd "$work" && $AR x "$archive")
extracted=$(cd "$work" && ls -- *.o 2>/dev/null | wc -l)
if [ "$count" -eq 0 ] || [ "$count" -ne "$extracted" ]; then
  echo "merge-static.sh: $archive: $count members but $extracted objects extracted (duplicate names?)" >&2
  exit 1
fi

# LTO objects hold the compiler's IR: ld -r would not compile them, and
# their symbols would lose their visibility.
for o in $objects; do
  if grep -q -a '\.gnu\.lto_' "$work/$o" || [ "$(head -c 2 "$work/$o")" = BC ]; then
    echo "merge-static.sh: $archive holds LTO objects: kept as it is, exporting hakmem's internal names" >&2
    exit 0
  fi
done
(cd "$work" && $LD -r -o merged.o $objects)
$OBJCOPY --localize-hidden "$work/merged.o" "$work/hakmem.o"
rm -f "$archive.tmp"
(cd "$work" && $AR cr "$archive.tmp" hakmem.o)
$RANLIB "$archive.tmp"
mv -f "$archive.tmp" "$archive"
