#!/usr/bin/env bash
# The openCypher TCK through Bolt: tests/tck/run.mjs --backend bolt runs
# every scenario with Neo4j's JavaScript driver (pinned in tests/bolt-driver,
# installed by bolt_driver_install) against a `shiplog serve` of its own
# fresh store, and prints passed/failed/skipped by directory; it fails when
# a scenario of tests/tck/passing.txt (the cli backend's list, e2e_tck.sh)
# fails through Bolt. tests/tck/skip-bolt.txt lists, with a reason each,
# the scenarios that pass through `shiplog query` but not through Bolt.
# Skips (77) without node, when npm cannot install the driver, and in the
# sanitizer tree: the engine under ASan is e2e_tck's, and the Bolt layer's
# is e2e_bolt's; one more hour-long TCK run there would test neither more.
# Needs $SL_BIN, $SL_TEST_TMP, $SL_SOURCE; SL_TCK_JOBS (default 2) and
# SL_TCK_FILTER (a regex on scenario keys) narrow a run.
set -u

. "$(dirname "$0")/lib_e2e.sh"
e2e_need -c serve node
if grep -qs "SL_SANITIZE:BOOL=ON" "$BUILD/CMakeCache.txt"; then
  echo "skip: the TCK through Bolt runs in the normal build only (the sanitizer tree runs the TCK through e2e_tck and the Bolt server through e2e_bolt)"
  exit 77
fi
e2e_begin e2e_tck_bolt
bolt_driver_install

# The stores (one per scenario, each fsynced) go to memory where there is /dev/shm.
S=$T
if [ -w /dev/shm ]; then
  S=$(mktemp -d /dev/shm/e2e_tck_bolt.XXXXXX) || exit 1
  rm_stores() { rm -rf "$S"; }
  e2e_on_exit+=(rm_stores)
fi
args=(--backend bolt --bin "$BIN" --tmp "$S" --jobs "${SL_TCK_JOBS:-2}" --failures "$T/failures.txt")
[ -n "${SL_TCK_FILTER:-}" ] && args+=(--filter "$SL_TCK_FILTER")
check "no scenario of tests/tck/passing.txt fails through Bolt" node "$SRC/tests/tck/run.mjs" "${args[@]}"
[ "$failed" -eq 0 ] || echo "each failure's detail: $T/failures.txt"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
