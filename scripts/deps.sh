#!/usr/bin/env bash
# Install the Debian packages that building (and, asked, testing or the demo)
# shiplog needs, and only when some are missing: a machine that has them all
# is left alone (no apt-get update, no network). Works on a fresh Debian 12
# minbase system (bash, coreutils, grep, sed and mawk are all the scripts use
# besides these), as root or through sudo, without questions
# (DEBIAN_FRONTEND=noninteractive).
#
# Usage: scripts/deps.sh [--tests] [--demo] [--check]
#          (none)    what building needs (scripts/build.sh)
#          --tests   and what the tests need (scripts/test.sh)
#          --demo    and what scripts/demo.sh runs besides the build
#          --check   only list what is missing; exit 1 if any
set -euo pipefail

# Build: compiler, CMake, pkg-config and the libraries CMakeLists.txt looks
# for: liburing (the shipper's reads), lz4, protobuf-c and its compiler, LMDB,
# jansson, libinih-dev (parses --config files), libssl-dev (TLS, codec/tls.c,
# and at-rest encryption, crypt/), libcurl4-openssl-dev (the S3 client,
# objstore/, AWS SigV4 signing built into libcurl), tzdata (the zone
# database base/tzdb.c reads for DateTimes in IANA zones). The cmocka tests are
# built only when cmocka is found (CMake's SL_BUILD_TESTS=AUTO), so it is a
# test package.
BUILD_PACKAGES=(
  gcc make libc6-dev cmake pkg-config
  liburing-dev liblz4-dev libprotobuf-c-dev protobuf-c-compiler
  liblmdb-dev libjansson-dev libinih-dev libssl-dev libcurl4-openssl-dev
  tzdata
)
# Tests: libcmocka-dev builds the unit tests; jq reads the --json output of
# the commands in the end-to-end tests. lmdb-utils (mdb_stat, mdb_dump) helps
# look inside a store. Operations tests (tests/e2e_ops.sh, e2e_systemd.sh):
# curl scrapes /metrics, prometheus brings promtool and the server that
# scrapes shiplog, systemd brings systemd-analyze. openssl makes the test
# certificates; clang and its sanitizer/libFuzzer runtimes
# (libclang-rt-14-dev) build the fuzz targets (tests/fuzz/run.sh).
# ceph-mon, ceph-osd, radosgw and ceph-common: the real S3 server of the
# object-storage tests (scripts/radosgw.sh). Fault tests
# (tests/e2e_partition.sh, e2e_fulldisk.sh, e2e_nemesis.sh): iproute2 (ip
# netns), nftables (silent drops), e2fsprogs and util-linux (loop-mounted
# ext4 file systems, nsenter). nodejs and npm: tests/e2e_cypher.sh lints
# `export --cypher` output with Neo4j's linter, an npm package it installs
# (pinned by tests/cypher-lint/package-lock.json) into the build tree.
TEST_PACKAGES=(
  libcmocka-dev
  jq lmdb-utils openssl clang libclang-rt-14-dev
  curl prometheus systemd
  ceph-mon ceph-osd radosgw ceph-common
  iproute2 nftables e2fsprogs util-linux
  nodejs npm
)
# Demo (scripts/demo.sh, which builds through scripts/build.sh): openssl
# makes its CA, certificates and the at-rest key; nodejs and npm run Neo4j's
# JavaScript driver against the primary and the standby (the driver itself
# comes from the npm registry, pinned; without the registry that step is
# skipped, saying why).
DEMO_PACKAGES=(openssl nodejs npm)

wanted=("${BUILD_PACKAGES[@]}")
check=0
for arg in "$@"; do
  case $arg in
  --tests) wanted+=("${TEST_PACKAGES[@]}") ;;
  --demo) wanted+=("${DEMO_PACKAGES[@]}") ;;
  --check) check=1 ;;
  *)
    echo "usage: scripts/deps.sh [--tests] [--demo] [--check]" >&2
    exit 2
    ;;
  esac
done
# Each package once (openssl is in two groups).
PACKAGES=()
declare -A seen=()
for p in "${wanted[@]}"; do
  [[ -n ${seen[$p]:-} ]] || PACKAGES+=("$p")
  seen[$p]=1
done
# Packages whose command another package may bring: NodeSource's nodejs
# has its own npm and conflicts with Debian's, so npm counts as present
# when the command is.
declare -A COMMAND_OF=([nodejs]=node [npm]=npm)

installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed' && return 0
  [[ -n ${COMMAND_OF[$1]:-} ]] && command -v "${COMMAND_OF[$1]}" >/dev/null
}

missing=()
for p in "${PACKAGES[@]}"; do
  installed "$p" || missing+=("$p")
done

if ((check)); then
  if ((${#missing[@]})); then
    echo "deps: missing: ${missing[*]}"
    exit 1
  fi
  echo "deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

if ((${#missing[@]} == 0)); then
  echo "deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

echo "deps: installing ${missing[*]}"
if [[ $(id -u) -eq 0 ]]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1; then
  echo "deps: not root, using sudo"
  as_root=(sudo)
else
  echo "deps: missing packages (${missing[*]}) and not root, and sudo is not installed." >&2
  echo "deps: run as root: apt-get update && apt-get install -y ${missing[*]}" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -q --no-install-recommends "${missing[@]}"

still=()
for p in "${missing[@]}"; do
  installed "$p" || still+=("$p")
done
if ((${#still[@]})); then
  echo "deps: could not install: ${still[*]}" >&2
  exit 1
fi
echo "deps: installed ${#missing[@]} packages"
