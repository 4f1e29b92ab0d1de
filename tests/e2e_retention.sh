#!/usr/bin/env bash
# End-to-end test of what the receiver keeps by itself (issue 21, the
# receiver's half), with real `shiplog` processes and, for object storage,
# a real S3 server (Ceph's radosgw, scripts/radosgw.sh, as e2e_s3.sh):
#   1. --archive-timeout: a quiet stream with the default 64 MiB segments
#      (none is ever sealed) reaches object storage as the active segment's
#      durable prefix; restore --from s3:// reaches its last durable txid,
#      by txid and by time, and again after the stream grew (a new partial,
#      the old one deleted later).
# Needs $SL_BIN, jq, curl, and the ceph packages (skipped without them).
set -u

. "$(dirname "$0")/lib_e2e.sh"
e2e_need jq curl
RGW=$SRC/scripts/radosgw.sh
if ! command -v radosgw >/dev/null && [ "$(id -u)" -ne 0 ]; then
  echo "skip: the ceph packages (radosgw) are missing and only root may install them (scripts/deps.sh --tests)"
  exit 77
fi
e2e_begin e2e_retention

started_rgw=0
if ! "$RGW" status; then
  { "$RGW" start || "$RGW" start; } >"$T/rgw.env" 2>"$T/rgw.log" || { cat "$T/rgw.log"; echo "FAIL cannot start radosgw"; exit 1; }
  started_rgw=1
fi
# shellcheck disable=SC1090
source <("$RGW" env)
PREFIX=e2e-ret-$$-$SEED
URL=s3://$SL_S3_BUCKET/$PREFIX
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
  for k in $(s3_keys "$PREFIX/"); do s3curl DELETE "$k" >/dev/null; done
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

# ---- 1. --archive-timeout: a quiet stream reaches object storage ----------------------------------------
P=$T/primary D=$T/data
"$BIN" init "$P" >/dev/null
start_receiver "$D" --insecure --archive-to "$URL" --archive-timeout 1 || exit 1
"$BIN" ship "$P" --to "127.0.0.1:$RX_PORT" --stream q --heartbeat-ms 200 --timeout-ms 3000 --backoff-max-ms 300 \
  --insecure 2>>"$T/ship.log" &
pids+=($!)
nodes 1 30 | "$BIN" exec "$P" - >/dev/null
L=$(e2e_last_txid "$P")
check "1: (the primary committed $L transactions)" [ "$L" -ge 1 ]
check "1: within the archive timeout the active segment's durable prefix reaches object storage (txid $L)" \
  e2e_until 120 uploaded q "$L"
check "1: no segment was sealed (64 MiB segments)" [ "$(ls "$D/streams/q/archive" | grep -c '\.seg$')" = 1 ]
s3curl GET "$PREFIX/q/manifest.json" -o "$T/manifest.json"
check "1: the manifest names it as the partial segment" \
  jqe --argjson l "$L" '.segments == [] and .partial.first_txid == 1 and .partial.last_txid == $l and
    (.partial.object | test("^[0-9]+-[0-9]+\\.partial$"))' "$T/manifest.json"
OBJ1=$(jq -r .partial.object "$T/manifest.json")
"$BIN" status --data "$D" --stream q >"$T/status.txt"
contains "$T/status.txt" "object storage holds txids up to $L" "1: status shows it"
expect 0 "1: restore --from s3:// --to-txid $L" "$BIN" restore --from "$URL" --stream q --to-txid "$L" --into "$T/r1"
check "1: ... equals the primary" e2e_same_export "$T/r1" "$P"
"$BIN" info --from "$URL" --stream q --json >"$T/info.json" 2>"$T/err"
check "1: info --from: restorable through txid $L" jqe --argjson l "$L" '.streams[0].window.last_txid == $l' "$T/info.json"

# More transactions: a new partial replaces the first (a new object; the old
# one is deleted at the following replacement).
nodes 31 45 | "$BIN" exec "$P" - >/dev/null
L2=$(e2e_last_txid "$P")
check "1: the stream grew: object storage follows to txid $L2" e2e_until 120 uploaded q "$L2"
# (a time to the second, after the last commit; then the reachable time, the
# primary's clock as last reported, moves past it with the heartbeats)
sleep 1.1
NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)
e2e_until 60 bash -c "[ \$('$BIN' status --data '$D' --stream q --json | jq .streams[0].reachable_time_us) -gt \$(( \$(date -u -d $NOW +%s) * 1000000 + 1100000 )) ]"
expect 0 "1: restore --from s3:// --to-time now" "$BIN" restore --from "$URL" --stream q --to-time "$NOW" --into "$T/r2"
check "1: ... reaches txid $L2 and equals the primary" e2e_same_export "$T/r2" "$P"
nodes 99 99 | "$BIN" exec "$P" - >/dev/null
L3=$(e2e_last_txid "$P")
check "1: and again (txid $L3)" e2e_until 120 uploaded q "$L3"
check "1: the first partial object is deleted once retired twice" \
  e2e_until 30 gone "q/archive/$OBJ1"

echo "passed $passed, failed $failed"
[ "$failed" -eq 0 ]
