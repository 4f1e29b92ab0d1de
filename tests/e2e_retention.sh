#!/usr/bin/env bash
# End-to-end test of what the receiver keeps by itself (issue 21, the
# receiver's half), with real `shiplog` processes and, for object storage,
# a real S3 server (Ceph's radosgw, scripts/radosgw.sh, as e2e_s3.sh):
#   1. packed archive segments: every sealed segment is packed (LZ4, header
#      flag) and smaller; restore, check --data, export --at-txid and a
#      standby rebuilt after its removal read packed and plain segments;
#   2. --retain-snapshots: the receiver removes older snapshots and the
#      archive below the oldest kept one; info says what it keeps;
#   3. --max-replay-seconds: info shows the replay estimate; a bound far
#      above it takes no snapshot, one below it does (no assertion on the
#      speed itself);
#   4. (S3) --archive-timeout: a quiet stream with the default 64 MiB
#      segments (none is ever sealed) reaches object storage as the active
#      segment's durable prefix; restore --from s3:// reaches its last
#      durable txid, by txid and by time, and again after it grew (a new
#      partial, the old one deleted later);
#   5. (S3) retention in object storage: the same rules, objects packed,
#      expired objects deleted after the manifest stops naming them; a
#      restore from object storage still reaches the present.
# Needs $SL_BIN, bench_gen, jq, curl; 4 and 5 the ceph packages (skipped
# without them).
set -u

. "$(dirname "$0")/lib_e2e.sh"
e2e_need -g jq curl
e2e_begin e2e_retention
RGW=$SRC/scripts/radosgw.sh
have_s3=0 started_rgw=0
if command -v radosgw >/dev/null || [ "$(id -u)" -eq 0 ]; then
  if "$RGW" status || { { "$RGW" start || "$RGW" start; } >"$T/rgw.env" 2>"$T/rgw.log" && started_rgw=1; }; then
    have_s3=1
    # shellcheck disable=SC1090
    source <("$RGW" env)
  else
    cat "$T/rgw.log"
    echo "FAIL cannot start radosgw"
    exit 1
  fi
fi
PREFIX=e2e-ret-$$-$SEED
URL=s3://${SL_S3_BUCKET:-none}/$PREFIX
s3curl() { # METHOD KEY [curl args...]: the object KEY of the bucket
  local m=$1 k=$2
  shift 2
  curl -s -X "$m" --aws-sigv4 "aws:amz:$AWS_DEFAULT_REGION:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
    -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$@" "$SL_S3_ENDPOINT/$SL_S3_BUCKET/$k"
}
s3_keys() { # PREFIX: the keys under it, one a line
  s3curl GET "" -G --data-urlencode "list-type=2" --data-urlencode "prefix=$1" | grep -o '<Key>[^<]*</Key>' |
    sed 's/<[^>]*>//g'
}
ret_cleanup() {
  if [ "$have_s3" = 1 ]; then for k in $(s3_keys "$PREFIX/"); do s3curl DELETE "$k" >/dev/null; done; fi
  [ "$started_rgw" = 1 ] && "$RGW" stop
  e2e_cleanup
}
trap ret_cleanup EXIT

# the receiver's status field F of stream S (upload.* too)
up() { "$BIN" status --data "$D" --stream "$1" --json 2>/dev/null | jq -r ".streams[0].$2 // 0"; }
uploaded() { [ "$(up "$1" upload.uploaded_txid)" = "$2" ]; } # STREAM TXID
nodes() { # FROM TO: one transaction per node
  for i in $(seq "$1" "$2"); do echo "{\"ops\":[{\"op\":\"create_node\",\"id\":$i,\"labels\":[\"Q\"],\"props\":{\"i\":$i}}]}"; done
}
gone() { ! s3_keys "$PREFIX/$1" | grep -qx "$PREFIX/$1"; } # KEY under PREFIX
flags() { od -An -tu1 -j 12 -N1 "$1" | tr -d ' '; } # a segment file's (or object's) header flags
# every sealed segment of DIR is packed (header flag 2), the active one plain
all_packed() {
  local segs n i=0 f
  mapfile -t segs < <(ls "$1"/*.seg)
  n=${#segs[@]}
  [ "$n" -ge 2 ] || return 1
  for f in "${segs[@]}"; do
    i=$((i + 1))
    if [ "$i" -lt "$n" ]; then [ "$(flags "$f")" = 2 ] || return 1; else [ "$(flags "$f")" = 0 ] || return 1; fi
  done
}
n_snaps() { ls "$1" 2>/dev/null | grep -c '\.snap$'; }
# all_packed, for the archive A of store P: when the first snapshot came after the whole workload
# (the keeper ticks once a second) retention removed every sealed segment, so once more
# transactions are sent (about two segments' worth) for a sealed segment to look at
more_sent=0
packed_or_more() {
  all_packed "$A" && return 0
  if [ "$more_sent" = 0 ] && [ "$(ls "$A"/*.seg | wc -l)" -lt 2 ]; then
    more_sent=1
    nodes 800001 801500 | "$BIN" exec "$P" - >/dev/null
  fi
  return 1
}
ship_to() { # STORE STREAM: a shipper to the receiver running now
  "$BIN" ship "$1" --to "127.0.0.1:$RX_PORT" --stream "$2" --heartbeat-ms 200 --timeout-ms 3000 --backoff-max-ms 300 \
    --insecure 2>>"$T/ship.log" &
  pids+=($!)
}
stop_receiver() { kill -TERM "$RX_PID" 2>/dev/null; wait "$RX_PID" 2>/dev/null; }

# ---- 1. packed segments; 2. retention in the receiver ------------------------------------------------
P=$T/primary D=$T/data W=$T/work.jsonl
"$GEN" --tx 3000 --ops-per-tx 1-6 --seed "$SEED" --nodes-first 50 >"$W"
"$BIN" init "$P" >/dev/null
start_receiver "$D" --insecure --segment-size 64K --snapshot-after-bytes 100K --retain-snapshots 2 || exit 1
ship_to "$P" s
"$BIN" exec "$P" "$W" --quiet >/dev/null
L=$(e2e_last_txid "$P")
check "1: the receiver applies the workload ($L)" e2e_wait_applied "$D" s "$L" 120
A=$D/streams/s/archive
check "1: every sealed archive segment is packed, the active one plain" e2e_until 60 packed_or_more
big=0
for f in $(ls "$A"/*.seg | head -n -1); do [ "$(size "$f")" -lt 60000 ] || big=$((big + 1)); done
check "1: packed segments are smaller than the 64K they held" [ "$big" = 0 ]
# two more snapshots at new txids (whatever the byte rule took): three at least
for i in 1 2; do
  nodes $((900000 + i)) $((900000 + i)) | "$BIN" exec "$P" - >/dev/null
  e2e_wait_applied "$D" s "$(e2e_last_txid "$P")" 60 && "$BIN" snapshot --data "$D" --stream s >/dev/null
done
L=$(e2e_last_txid "$P")
check "2: retention keeps 2 snapshots" e2e_until 60 bash -c "[ \$(ls '$D/streams/s/snapshots' | grep -c '\.snap\$') = 2 ]"
check "2: and the archive from the oldest kept one on (txid 1 is gone)" \
  e2e_until 60 bash -c "[ \"\$('$BIN' info --data '$D' --stream s --json | jq .streams[0].archive_first_txid)\" -gt 1 ]"
contains "$T/rx.log" "retention removed snapshot" "2: the receiver logs what retention removed"
"$BIN" info --data "$D" --stream s >"$T/info.txt"
contains "$T/info.txt" "retention    the receiver keeps the newest 2 snapshots" "2: info says what retention keeps"
"$BIN" info --data "$D" --stream s --json >"$T/info.json"
check "2: info --json too" jqe '.streams[0].retention.snapshots == 2' "$T/info.json"
expect 0 "1: check --data reads packed and plain segments" "$BIN" check --data "$D" --stream s
FIRST=$(jq .streams[0].window.first_txid "$T/info.json")
MID=$(( (FIRST + L) / 2 ))
expect 0 "1: restore --to-txid $MID (a base, then packed segments)" "$BIN" restore --data "$D" --stream s --to-txid "$MID" --into "$T/r-mid"
expect 0 "1: restore --to-txid $L (into the active plain one)" "$BIN" restore --data "$D" --stream s --to-txid "$L" --into "$T/r-last"
check "1: ... equals the primary" e2e_same_export "$T/r-last" "$P"
expect 0 "1: export --at-txid $MID" "$BIN" export --data "$D" --stream s --at-txid "$MID" --to "$T/at.json"
"$BIN" export "$T/r-mid" --to "$T/r-mid.json" >/dev/null 2>&1
check "1: ... equals the restore to that txid" cmp -s "$T/at.json" "$T/r-mid.json"
stop_receiver
rm -rf "$D/streams/s/standby"
start_receiver "$D" --insecure --segment-size 64K --snapshot-after-bytes 100K --retain-snapshots 2 || exit 1
ship_to "$P" s
check "1: a standby removed is rebuilt from a snapshot and packed segments" e2e_wait_applied "$D" s "$L" 120
check "1: ... and equals the primary" e2e_same_export "$D/streams/s/standby" "$P"

# ---- 3. --max-replay-seconds -----------------------------------------------------------------------
stop_receiver
D=$T/data3
start_receiver "$D" --insecure --segment-size 64K --snapshot-after-bytes 0 --max-replay-seconds 1000000 || exit 1
ship_to "$P" r
check "3: the receiver applies the stream" e2e_wait_applied "$D" r "$L" 120
est() { "$BIN" info --data "$D" --stream r --json | jq -r '.streams[0].replay.estimate_s'; }
check "3: info shows the replay estimate of a restore" e2e_until 30 bash -c "[ \"\$('$BIN' info --data '$D' --stream r --json | jq -r '.streams[0].replay.estimate_s | type')\" = number ]"
"$BIN" info --data "$D" --stream r >"$T/info3.txt"
contains "$T/info3.txt" "a restore from the newest snapshot replays about" "3: in words too"
check "3: a bound far above the estimate ($(est) s) takes no snapshot" [ "$(n_snaps "$D/streams/r/snapshots")" = 0 ]
stop_receiver
start_receiver "$D" --insecure --segment-size 64K --snapshot-after-bytes 0 --max-replay-seconds 0.000001 || exit 1
ship_to "$P" r
check "3: one below it (the rate measured before the restart) takes one" \
  e2e_until 60 bash -c "ls '$D/streams/r/snapshots' | grep -q '\.snap\$'"
contains "$T/rx.log" "a restore would replay too long" "3: saying why"
stop_receiver

if [ "$have_s3" = 0 ]; then
  skip "4, 5: the ceph packages (radosgw) are missing and only root may install them (scripts/deps.sh --tests)"
  echo "passed $passed, failed $failed"
  [ "$failed" -eq 0 ]
  exit
fi
# ---- 4. --archive-timeout: a quiet stream reaches object storage ----------------------------------------
P=$T/quiet D=$T/data4
"$BIN" init "$P" >/dev/null
start_receiver "$D" --insecure --archive-to "$URL" --archive-timeout 1 || exit 1
ship_to "$P" q
nodes 1 30 | "$BIN" exec "$P" - >/dev/null
L=$(e2e_last_txid "$P")
check "4: (the primary committed $L transactions)" [ "$L" -ge 1 ]
check "4: within the archive timeout the active segment's durable prefix reaches object storage (txid $L)" \
  e2e_until 120 uploaded q "$L"
check "4: no segment was sealed (64 MiB segments)" [ "$(ls "$D/streams/q/archive" | grep -c '\.seg$')" = 1 ]
s3curl GET "$PREFIX/q/manifest.json" -o "$T/manifest.json"
check "4: the manifest names it as the partial segment" \
  jqe --argjson l "$L" '.segments == [] and .partial.first_txid == 1 and .partial.last_txid == $l and
    (.partial.object | test("^[0-9]+-[0-9]+\\.partial$"))' "$T/manifest.json"
OBJ1=$(jq -r .partial.object "$T/manifest.json")
"$BIN" status --data "$D" --stream q >"$T/status.txt"
contains "$T/status.txt" "object storage holds txids up to $L" "4: status shows it"
expect 0 "4: restore --from s3:// --to-txid $L" "$BIN" restore --from "$URL" --stream q --to-txid "$L" --into "$T/r1"
check "4: ... equals the primary" e2e_same_export "$T/r1" "$P"
"$BIN" info --from "$URL" --stream q --json >"$T/info.json" 2>"$T/err"
check "4: info --from: restorable through txid $L" jqe --argjson l "$L" '.streams[0].window.last_txid == $l' "$T/info.json"

# More transactions: a new partial replaces the first (a new object; the old
# one is deleted at the following replacement).
nodes 31 45 | "$BIN" exec "$P" - >/dev/null
L2=$(e2e_last_txid "$P")
check "4: the stream grew: object storage follows to txid $L2" e2e_until 120 uploaded q "$L2"
# (a time to the second, after the last commit; then the reachable time, the
# primary's clock as last reported, moves past it with the heartbeats)
sleep 1.1
NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)
e2e_until 60 bash -c "[ \$('$BIN' status --data '$D' --stream q --json | jq .streams[0].reachable_time_us) -gt \$(( \$(date -u -d $NOW +%s) * 1000000 + 1100000 )) ]"
expect 0 "4: restore --from s3:// --to-time now" "$BIN" restore --from "$URL" --stream q --to-time "$NOW" --into "$T/r2"
check "4: ... reaches txid $L2 and equals the primary" e2e_same_export "$T/r2" "$P"
nodes 99 99 | "$BIN" exec "$P" - >/dev/null
L3=$(e2e_last_txid "$P")
check "4: and again (txid $L3)" e2e_until 120 uploaded q "$L3"
check "4: the first partial object is deleted once retired twice" \
  e2e_until 30 gone "q/archive/$OBJ1"

stop_receiver

# ---- 5. retention in object storage --------------------------------------------------------------
P=$T/primary D=$T/data5
start_receiver "$D" --insecure --segment-size 64K --snapshot-after-bytes 100K --retain-snapshots 1 \
  --archive-to "$URL" --archive-timeout 1 || exit 1
ship_to "$P" s5
L=$(e2e_last_txid "$P")
check "5: the stream is applied" e2e_wait_applied "$D" s5 "$L" 120
check "5: object storage holds it to the last txid" e2e_until 120 uploaded s5 "$L"
man() { s3curl GET "$PREFIX/s5/manifest.json" -o "$T/m5.json" && jq -e "$1" "$T/m5.json" >/dev/null; }
check "5: the manifest keeps one snapshot and the segments from it on" \
  e2e_until 120 man '(.snapshots | length) == 1 and .segments[0].first_txid > 1 and .segments[0].first_txid <= .snapshots[0].txid + 1'
check "5: and the local receiver the same" [ "$(n_snaps "$D/streams/s5/snapshots")" = 1 ]
FIRST=$(jq -r '.segments[0].name' "$T/m5.json")
check "5: the objects of expired segments are deleted" e2e_until 60 gone "s5/archive/00000000000000000001.seg"
check "5: the kept ones are there" s3curl GET "$PREFIX/s5/archive/$FIRST" -f -o "$T/obj.seg"
check "5: uploaded segments are packed" [ "$(flags "$T/obj.seg")" = 2 ]
expect 0 "5: restore --from s3:// --to-txid $L" "$BIN" restore --from "$URL" --stream s5 --to-txid "$L" --into "$T/r5"
check "5: ... equals the primary" e2e_same_export "$T/r5" "$P"
stop_receiver

echo "passed $passed, failed $failed"
[ "$failed" -eq 0 ]
