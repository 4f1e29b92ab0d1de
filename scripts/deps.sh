#!/usr/bin/env bash
# Install the Debian packages that building and testing shiplog needs, and only
# when some are missing: a machine that has them all is left alone (no apt-get
# update, no network). Works on a fresh Debian 12 minbase system (bash,
# coreutils, grep, sed and mawk are all the scripts use besides these), as root
# or through sudo, without questions (DEBIAN_FRONTEND=noninteractive).
#
# Usage: scripts/deps.sh           # install what is missing
#        scripts/deps.sh --check   # only list what is missing; exit 1 if any
set -euo pipefail

# Build: compiler, CMake, pkg-config and the libraries CMakeLists.txt looks for.
# Tests: cmocka; jq reads the --json output of the commands in the end-to-end
# tests. lmdb-utils (mdb_stat, mdb_dump) helps look inside a store.
# libinih-dev parses --config files. Operations tests (tests/e2e_ops.sh,
# e2e_systemd.sh): curl scrapes /metrics, prometheus brings promtool and the
# server that scrapes shiplog, systemd brings systemd-analyze. libssl-dev:
# TLS (codec/tls.c); openssl makes the test and demo certificates; clang
# and its sanitizer/libFuzzer runtimes (libclang-rt-14-dev) build the fuzz
# targets (tests/fuzz/run.sh). libcurl4-openssl-dev: the S3 client (objstore/,
# AWS SigV4 signing built into libcurl); ceph-mon, ceph-osd, radosgw and
# ceph-common: the real S3 server of the object-storage tests
# (scripts/radosgw.sh). Fault tests (tests/e2e_partition.sh,
# e2e_fulldisk.sh, e2e_nemesis.sh): iproute2 (ip netns), nftables (silent
# drops), e2fsprogs and util-linux (loop-mounted ext4 file systems, nsenter).
# nodejs and npm: tests/e2e_cypher.sh lints `export --cypher` output with
# Neo4j's linter, an npm package it installs (pinned by
# tests/cypher-lint/package-lock.json) into the build tree.
PACKAGES=(
  gcc make libc6-dev cmake pkg-config
  liburing-dev liblz4-dev libprotobuf-c-dev protobuf-c-compiler
  liblmdb-dev libjansson-dev libcmocka-dev libinih-dev libssl-dev
  jq lmdb-utils openssl clang libclang-rt-14-dev
  curl prometheus systemd
  libcurl4-openssl-dev ceph-mon ceph-osd radosgw ceph-common
  iproute2 nftables e2fsprogs util-linux
  nodejs npm
)
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

if [[ ${1:-} == --check ]]; then
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
