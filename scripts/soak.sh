#!/usr/bin/env bash
# The long randomized fault run (tests/e2e_nemesis.sh) for as long as asked,
# then the figures: faults injected by kind, rounds, acknowledged
# transactions, lost, duplicated (the table of README "Faults").
#
# Usage: scripts/soak.sh [--minutes N] [--build DIR] [--seed N]
#   --minutes N  run time (default 10)
#   --build DIR  a configured and built tree (default build)
#   --seed N     replay a run's nemesis choices
# As root it draws every fault kind (network namespaces, loop-mounted
# disks); otherwise only kills, power losses, I/O errors, resets and slow
# links. Exit status 0 when every round's checks held.
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=10 build=build
while (($#)); do
  case $1 in
  --minutes) minutes=$2; shift 2 ;;
  --build) build=$2; shift 2 ;;
  --seed) export SL_SEED=$2; shift 2 ;;
  *) echo "usage: scripts/soak.sh [--minutes N] [--build DIR] [--seed N]" >&2; exit 2 ;;
  esac
done
[[ $minutes =~ ^[0-9]+$ ]] || { echo "soak: --minutes wants a whole number" >&2; exit 2; }
build=$(cd "$build" && pwd)
report=$(mktemp)
trap 'rm -f "$report"' EXIT
echo "soak: $minutes minutes of tests/e2e_nemesis.sh with $build"
SL_BIN=$build/shiplog SL_BUILD=$build SL_SOURCE=$PWD SL_TEST_TMP=${SL_TEST_TMP:-$build/testtmp} \
  SL_NEMESIS_SECONDS=$((minutes * 60)) SL_NEMESIS_REPORT=$report bash tests/e2e_nemesis.sh >"$build/soak.log" 2>&1 &&
  rc=0 || rc=$?
grep -E "^(round|FAIL|seed)" "$build/soak.log" | tail -5
echo
echo "## figures ($(date -u +%Y-%m-%dT%H:%MZ), $minutes minutes; full log: $build/soak.log)"
cat "$report"
exit "$rc"
