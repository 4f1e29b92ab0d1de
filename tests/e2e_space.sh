#!/usr/bin/env bash
# data.mdb tracks the live data, not the write history (issue: 30,000 small
# transactions grew it to 76x what a load of its own dump takes, and a 64 MB
# file system ran out of space at 6,000 of them):
#   1. a store on a 64 MB loop-mounted ext4 takes 8,000 small durable
#      transactions (a few MB of data) without running out of space;
#   2. the primary's data.mdb, the receiver's standby and a point-in-time
#      restore each take at most 2x (+16 MiB) what a load of the store's
#      dump takes;
#   3. `stats` shows the free share; `shiplog compact` refuses a store that
#      is open, gives back the free pages of one that is not, and the store
#      verifies after it.
# Root needed (mount), else skip (77). SL_SEED=N replays.
set -u

. "$(dirname "$0")/lib_e2e.sh"
[ "$(id -u)" -eq 0 ] || { echo "skip: needs root (mount)"; exit 77; }
e2e_need -g -c compact mkfs.ext4 mount umount jq
e2e_begin e2e_space

truncate -s 64M "$T/fs.img" && mkfs.ext4 -q -m 0 "$T/fs.img" && mkdir -p "$T/fs" &&
  mount -o loop "$T/fs.img" "$T/fs" || { echo "skip: cannot mount a loop file system here"; exit 77; }
e2e_on_exit=("umount -l $T/fs")

# bytes DIR: what DIR/data.mdb takes on disk (a writer's is sparse)
bytes() { du -B1 "$1/data.mdb" | cut -f1; }
# within NAME DIR REF: DIR's data.mdb takes at most 2x REF + 16 MiB
within() {
  local b
  b=$(bytes "$2")
  echo "    $1: data.mdb $((b >> 10)) KiB, a loaded dump $(($3 >> 10)) KiB"
  [ "$b" -le $((2 * $3 + (16 << 20))) ]
}

P=$T/fs/store D=$T/rx
"$BIN" init "$P" >/dev/null
start_receiver "$D" --insecure || exit 1
"$BIN" ship "$P" --to "127.0.0.1:$RX_PORT" --stream s --insecure --heartbeat-ms 200 \
  --timeout-ms 2000 --backoff-max-ms 300 2>>"$T/ship.log" &
pids+=($!)

# ---- 1. many small transactions on a small file system ------------------------------------------
"$GEN" --tx 8000 --ops-per-tx 1-3 --seed "$SEED" --nodes-first 50 >"$T/w.jsonl"
expect 0 "1: 8,000 small transactions fit a 64 MB file system" "$BIN" exec "$P" "$T/w.jsonl" --stop-on-error
last=$(e2e_last_txid "$P")
check "1: no line failed (last txid $last)" grep -q "^exec: [0-9]* transactions applied, 0 failed" "$T/err"
echo "    df: $(df -h --output=used,avail "$T/fs" | tail -1)"

# ---- 2. primary, standby and restore against a load of the dump -------------------------------
"$BIN" dump "$P" --to "$T/full.dump" >/dev/null 2>&1 && "$BIN" load "$T/full.dump" --into "$T/loaded" >/dev/null 2>&1
ref=$(bytes "$T/loaded")
check "2: the primary's data.mdb is within 2x a loaded dump + 16 MiB" within primary "$P" "$ref"
check "2: the standby applies every transaction" e2e_wait_applied "$D" s "$last" 60
check "2: the standby's data.mdb is within 2x + 16 MiB" within standby "$D/streams/s/standby" "$ref"
"$BIN" restore --data "$D" --stream s --to-txid "$last" --into "$T/restored" >/dev/null 2>&1
check "2: the restore equals the primary" e2e_same_export "$P" "$T/restored"
check "2: the restored data.mdb is within 2x + 16 MiB" within restored "$T/restored" "$ref"

# ---- 3. stats and compact ----------------------------------------------------------------------
check "3: stats shows data.mdb's free share" jqe '.lmdb_free_bytes >= 0 and .lmdb_used_bytes > 0' \
  <("$BIN" stats "$P" --json)
"$BIN" stats "$P" >"$T/stats"
check "3: stats says it in the table" grep -q "^lmdb .* in use, [0-9]*% of that free" "$T/stats"
kill -9 "${pids[@]}" 2>/dev/null
wait 2>/dev/null
pids=()
"$GEN" --tx 2000 --ops-per-tx 1-3 --seed "$((SEED + 1))" --id-base 50000000 >"$T/w2.jsonl"
(sleep 30 | "$BIN" exec "$P" - >/dev/null) &
holder=$!
sleep 0.5
expect 1 "3: compact refuses a store another process holds" "$BIN" compact "$P"
check "3: and says why" grep -q "open for writing by another process" "$T/err"
kill "$holder" 2>/dev/null
pkill -f "exec $P -" 2>/dev/null
wait 2>/dev/null
before=$(bytes "$P")
expect 0 "3: compact runs" "$BIN" compact "$P"
check "3: and says what it gave back" grep -q "compact: .* -> [0-9]* bytes" "$T/out"
after=$(bytes "$P")
echo "    compact: $before -> $after bytes"
check "3: compact does not grow data.mdb" [ "$after" -le "$before" ]
check "3: the compacted store verifies" "$BIN" verify "$P"
expect 0 "3: the compacted store takes more commits" "$BIN" exec "$P" "$T/w2.jsonl"
check "3: and verifies again" "$BIN" verify "$P"

echo "e2e_space: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
