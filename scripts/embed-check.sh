#!/usr/bin/env bash
# The public library as an application sees it (README "Embed shiplog"),
# run by scripts/test.sh after it builds BUILD (default build/):
#   1. `cmake --install BUILD --prefix TMP/inst`: header, libshiplog.so and
#      .a, shiplog.pc (besides the binary and the systemd files)
#   2. libshiplog.so exports exactly the functions shiplog.h marks SHIPLOG_API
#      (the library is built with -fvisibility=hidden)
#   3. examples/embed.c compiled with nothing but the installed files,
#      `cc ... $(pkg-config --cflags --libs shiplog)`, and run
#      (LD_LIBRARY_PATH); what it prints is checked
#   4. the same linked statically against libshiplog.a (pkg-config --static,
#      -l:libshiplog.a so that the linker cannot take the .so), and run
# Prints one "embed: ok ..." or "embed: FAILED ..." line per part and exits
# with the number of the 4 parts that failed (0: all passed; a failed
# install fails all 4, since nothing else can be checked). TMP is removed at
# the end.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 4

BUILD=${1:-build}
CC=${CC:-cc}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=0
ok() { echo "embed: ok: $*"; }
bad() {
  echo "embed: FAILED: $*"
  failed=$((failed + 1))
}

# What embed.c must print (a new store: ids from 1, one transaction).
expect() {
  grep -qx 'committed txid 1' "$1" &&
    grep -qx 'delete without detach: SL_EHASRELS (.*)' "$1" &&
    grep -qx '2 nodes, 1 relationships, applied txid 1' "$1" &&
    grep -qx 'node 1 :Person born=1815 name="Ada"' "$1" &&
    grep -qx 'node 2 :Person born=1791 name="Charles"' "$1" &&
    grep -qx 'rel 1 KNOWS 1->2 since=1833' "$1" &&
    grep -qx '  (1)-\[1:KNOWS\]->(2)' "$1"
}

if ! cmake --install "$BUILD" --prefix "$tmp/inst" >"$tmp/install.log" 2>&1; then
  cat "$tmp/install.log"
  bad "cmake --install $BUILD"
  exit 4
fi
pc=$(find "$tmp/inst" -name shiplog.pc | head -1)
so=$(find "$tmp/inst" -name 'libshiplog.so.*.*.*' | head -1)
if [[ -z $pc || -z $so || ! -f $tmp/inst/include/shiplog.h ]] || ! find "$tmp/inst" -name libshiplog.a | grep -q .; then
  bad "install lacks shiplog.pc, libshiplog.so, libshiplog.a or include/shiplog.h"
  exit 4
fi
ok "installed $(cd "$tmp/inst" && find . -path ./lib/systemd -prune -o \( -type f -o -type l \) -print | grep -E 'shiplog(\.h|\.pc|\.a|\.so)' | sort | tr '\n' ' ')"
export PKG_CONFIG_PATH=${pc%/*}
libdir=$(pkg-config --variable=libdir shiplog)

# The exports: every SHIPLOG_API function of the header, nothing else.
sed -nE 's/^SHIPLOG_API [^(]*[ *](sl_[a-z0-9_]+)\(.*/\1/p' "$tmp/inst/include/shiplog.h" | sort >"$tmp/api"
nm -D --defined-only "$so" | awk '$2 ~ /^[TDBRVW]$/ { print $3 }' | sort >"$tmp/exports"
if [[ -s $tmp/api ]] && cmp -s "$tmp/api" "$tmp/exports"; then
  ok "libshiplog.so exports the $(wc -l <"$tmp/api") functions of shiplog.h and nothing else"
else
  diff "$tmp/api" "$tmp/exports" | sed 's/^/  /'
  bad "libshiplog.so's exports differ from shiplog.h's SHIPLOG_API functions (< header only, > exported only)"
fi

# shellcheck disable=SC2046 # pkg-config's output is a list of flags
if $CC -std=c11 -Wall -Wextra -Werror examples/embed.c $(pkg-config --cflags --libs shiplog) -o "$tmp/embed" &&
  LD_LIBRARY_PATH=$libdir "$tmp/embed" "$tmp/store" >"$tmp/out" && expect "$tmp/out"; then
  ok "examples/embed.c built with pkg-config --cflags --libs shiplog against libshiplog.so, ran"
else
  cat "$tmp/out" 2>/dev/null
  bad "examples/embed.c against libshiplog.so (build, run or output)"
fi

# shellcheck disable=SC2046
if $CC -std=c11 -Wall -Wextra -Werror examples/embed.c $(pkg-config --cflags shiplog) \
  $(pkg-config --static --libs shiplog | sed 's/-lshiplog\b/-l:libshiplog.a/') -o "$tmp/embed-static" &&
  ! readelf -d "$tmp/embed-static" | grep -q 'libshiplog' &&
  "$tmp/embed-static" "$tmp/store-static" >"$tmp/out-static" && expect "$tmp/out-static"; then
  ok "examples/embed.c built with pkg-config --static against libshiplog.a, ran"
else
  cat "$tmp/out-static" 2>/dev/null
  bad "examples/embed.c against libshiplog.a (build, run, output, or it needs libshiplog.so)"
fi
exit "$failed"
