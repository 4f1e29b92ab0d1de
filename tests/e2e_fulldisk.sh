#!/usr/bin/env bash
# Full disks, for real: the primary's store and the receiver's data
# directory each live on a small loop-mounted ext4 file system (mkfs -m 0,
# so that root cannot write into reserved blocks), filled with a ballast
# file until write() fails with ENOSPC.
#   1. primary full: commits fail with a clear error, no transaction is half
#      applied (the count of acknowledged lines equals the txids added, and
#      the standby, which applies the log, ends equal to the primary), the
#      store stays usable and accepts commits once the ballast is removed;
#   2. receiver full: the stream pauses with an error naming the full disk
#      in the receiver's log and `status`; the primary keeps every segment
#      the receiver does not hold; once space returns shipping resumes by
#      itself and the standby equals the primary (a standby that cannot
#      grow pauses and retries; it is never stopped for a full disk).
# Root needed (mount), else skip (77). SL_SEED=N replays.
set -u

. "$(dirname "$0")/lib_e2e.sh"
[ "$(id -u)" -eq 0 ] || { echo "skip: needs root (mount)"; exit 77; }
e2e_need -g mkfs.ext4 mount umount jq
e2e_begin e2e_fulldisk

# small_fs NAME MB: an ext4 file system mounted at $T/NAME
small_fs() {
  truncate -s "$2M" "$T/$1.img" && mkfs.ext4 -q -m 0 "$T/$1.img" && mkdir -p "$T/$1" &&
    mount -o loop "$T/$1.img" "$T/$1" || return 1
  e2e_on_exit=("umount -l $T/$1" "${e2e_on_exit[@]}")
}
# fill DIR: a ballast until ENOSPC, and a 1 MiB one (removed to let a little in)
fill() {
  dd if=/dev/zero of="$1/ballast.small" bs=64k count=16 2>/dev/null
  dd if=/dev/zero of="$1/ballast" bs=64k 2>/dev/null
  sync -f "$1"
}
small_fs pm 48 && small_fs rm 48 || { echo "skip: cannot mount a loop file system here"; exit 77; }

P=$T/pm/store D=$T/rm/data
"$BIN" init "$P" --segment-size 1M >/dev/null
"$BIN" receive --listen 127.0.0.1:0 --data "$D" --ready-file "$T/port" --insecure --allow-root \
  --heartbeat-ms 200 --timeout-ms 2000 --segment-size 1M 2>>"$T/rx.log" &
pids+=($!)
e2e_until 60 test -s "$T/port"
"$BIN" ship "$P" --to "127.0.0.1:$(cat "$T/port")" --stream s --insecure --heartbeat-ms 200 \
  --timeout-ms 2000 --backoff-max-ms 300 2>>"$T/ship.log" &
pids+=($!)
# commit N CHUNK: exec stops at the first failed line; ACKED: the lines before it
commit() {
  e2e_gen "$T/w$2" "$1" "$2"
  "$BIN" exec "$P" "$T/w$2" --stop-on-error >/dev/null 2>"$T/exec$2.err"
  EXEC_RC=$?
  local l
  l=$(grep -o -m1 "error: $T/w$2:[0-9]*:" "$T/exec$2.err" | sed 's/.*:\([0-9]*\):$/\1/')
  ACKED=$((${l:-$(($1 + 1))} - 1))
}
caught_up() {
  local l
  l=$(e2e_last_txid "$P")
  check "$1: the standby applies up to $l" e2e_wait_applied "$D" s "$l" 120
  check "$1: the standby equals the primary" e2e_same_export "$P" "$D/streams/s/standby"
}
commit 500 1
caught_up "0. before any fault"

# ---- 1. the primary's disk is full ------------------------------------------------------------
# The model: a copy of the store on a roomy disk, given exactly the lines
# that exec acknowledged, must end equal to the primary.
cp -a "$P" "$T/model"
fill "$T/pm"
rm -f "$T/pm/ballast.small"
commit 6000 2
echo "    $ACKED of 6000 transactions acknowledged while the disk filled up; df: $(df -h --output=avail "$T/pm" | tail -1)"
check "1: exec survives the full disk (exit 1: some lines failed)" [ "$EXEC_RC" -eq 1 ]
check "1: commits failed on the full disk" [ "$ACKED" -lt 6000 ]
check "1: the error says so" grep -q "No space left on device" "$T/exec2.err"
grep -m1 "No space" "$T/exec2.err" | cut -c1-160 | sed 's/^/    /'
head -n "$ACKED" "$T/w2" >"$T/acked2"
"$BIN" exec "$T/model" "$T/acked2" >/dev/null
check "1: the primary holds exactly the acknowledged transactions (equals the model)" e2e_same_export "$P" "$T/model"
rm -f "$T/pm/ballast"*
commit 500 3
check "1: once space returns the store accepts every commit" [ "$ACKED" -eq 500 ]
caught_up "1: after the primary's disk was full"

# ---- 2. the receiver's disk is full -------------------------------------------------------------
fill "$T/rm"
held=$(e2e_rx_json "$D" s durable)
commit 4000 4
rx_error() { [ -n "$(e2e_rx_json "$D" s error)" ]; }
check "2: the receiver's status shows an error" e2e_until 120 rx_error
e2e_rx_json "$D" s error | cut -c1-160 | sed 's/^/    status: /'
# The shipper reconnects every few hundred ms and each batch fails again:
# the error must hold across those sessions, not blink out at each one.
blank=0
for i in $(seq 40); do rx_error || blank=$((blank + 1)); sleep 0.05; done
check "2: ... and keeps showing it while the disk is full ($blank of 40 looks without)" [ "$blank" -eq 0 ]
check "2: the receiver's log names the full disk" grep -q "No space left on device" "$T/rx.log"
durable=$(e2e_rx_json "$D" s durable)
first=$("$BIN" stats "$P" --json | jq -r .log.first_txid)
check "2: the primary keeps every segment the receiver lacks (first txid $first <= $((durable + 1)))" \
  [ "$first" -le $((durable + 1)) ]
check "2: the stream paused (durable $durable < last $(e2e_last_txid "$P"))" [ "$durable" -lt "$(e2e_last_txid "$P")" ]
echo "    receiver durable txid: $held before the disk filled, $durable while full"
rm -f "$T/rm/ballast"*
caught_up "2: after the receiver's disk was full (resumed by itself)"
rx_clear() { [ -z "$(e2e_rx_json "$D" s error)" ]; }
check "2: the error is gone once archiving works again" e2e_until 60 rx_clear
check "2: the standby paused at most, never stopped" [ "$(grep -c "standby stops applying" "$T/rx.log")" -eq 0 ]

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
