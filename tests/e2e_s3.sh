#!/usr/bin/env bash
# End-to-end test of the off-site archive in object storage against a real S3
# server: Ceph's radosgw (scripts/radosgw.sh; started here unless one runs
# already, and then stopped again), with real `shiplog` processes:
#   1. a workload shipped to a receiver run with --archive-to: every sealed
#      segment and snapshot reaches object storage; status shows the upload;
#      info --from shows the window a restore from object storage reaches;
#      a multipart upload left unfinished (as by a killed receiver) is aborted;
#   2. restores from object storage alone (to random txids and times) equal
#      the restores from the local archive and the model (the workload's
#      lines applied with `shiplog exec`);
#   3. radosgw hung (SIGSTOP), then killed during uploads: the receiver goes on acknowledging
#      durable, status reports the upload lag and the error, retention keeps
#      every file not uploaded; radosgw restarted: the upload catches up;
#   4. a deleted object and an object with one flipped byte: restores that
#      need them are refused, naming the object;
#   5. dump --to s3:// and load s3://;
#   6. the README's walkthrough: the receiver's data directory deleted, the
#      stream restored to a point in time from object storage alone.
# Needs $SL_BIN, $SL_BUILD/bench_gen, jq, curl, and the ceph packages (as
# root, scripts/radosgw.sh installs them; otherwise it is skipped).
set -u

. "$(dirname "$0")/lib_e2e.sh"
e2e_need -g jq curl
RGW=$SRC/scripts/radosgw.sh
if ! command -v radosgw >/dev/null && [ "$(id -u)" -ne 0 ]; then
  echo "skip: the ceph packages (radosgw) are missing and only root may install them (scripts/deps.sh --tests)"
  exit 77
fi
e2e_begin e2e_s3

started_rgw=0
if ! "$RGW" status; then
  { "$RGW" start || "$RGW" start; } >"$T/rgw.env" 2>"$T/rgw.log" || { cat "$T/rgw.log"; echo "FAIL cannot start radosgw"; exit 1; }
  started_rgw=1
fi
# shellcheck disable=SC1090
source <("$RGW" env)
s3_cleanup() {
  "$RGW" rgw-start >/dev/null 2>&1 # a failed step 3 may have left it down
  [ "$started_rgw" = 1 ] && "$RGW" stop
  e2e_cleanup
}
trap s3_cleanup EXIT
PREFIX=e2e-$$-$SEED
URL=s3://$SL_S3_BUCKET/$PREFIX
s3curl() { # METHOD KEY [curl args...]: the object KEY of the bucket
  local m=$1 k=$2
  shift 2
  curl -s -X "$m" --aws-sigv4 "aws:amz:$AWS_DEFAULT_REGION:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
    -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$@" "$SL_S3_ENDPOINT/$SL_S3_BUCKET/$k"
}

RX_TIMEOUT_MS=3000
# (--archive-timeout 0: sealed segments only, whose manifest this script checks;
# e2e_retention.sh tests the partial segment)
RX_ARGS=(--segment-size 64K --snapshot-after-bytes 384K --insecure --archive-to "$URL" --archive-timeout 0)
st() { "$BIN" status --data "$D" --stream s --json 2>/dev/null | jq -r ".streams[0].$1 // 0"; }
wait_for() { # SECONDS DESCRIPTION CMD...: until CMD succeeds
  local deadline=$((SECONDS + $1)) desc=$2
  shift 2
  until "$@"; do
    if [ "$SECONDS" -ge "$deadline" ]; then bad "$desc (not within the time)"; return 1; fi
    sleep 0.2
  done
  ok "$desc"
}
# every sealed segment is uploaded: only the active one is left, as of an
# upload pass that saw everything (uploaded + lag = the primary's last txid)
caught_up() {
  local j l
  l=$(e2e_last_txid "$P")
  j=$("$BIN" status --data "$D" --stream s --json 2>/dev/null | jq -c '.streams[0].upload // {}')
  [ "$(jq -r '"\(.uploaded_txid + .lag_tx) \(.pending_files) \(.error)"' <<<"$j")" = "$l 1 " ]
}
# ---- 1. a workload shipped with --archive-to --------------------------------------------------
P=$T/primary D=$T/data W=$T/work.jsonl
TS0=1704067200000000 STEP=250000
"$GEN" --tx 6000 --ops-per-tx 1-6 --seed "$SEED" --nodes-first 50 --ts-start "$TS0" --ts-step "$STEP" >"$W"
NLINES=$(wc -l <"$W")
"$BIN" init "$P" >/dev/null
# what a receiver killed in the middle of a multipart upload leaves behind
s3curl POST "$PREFIX/s/archive/00000000000000000001.seg?uploads=" >"$T/mpu.xml"
check "1: (an unfinished multipart upload is there)" grep -q "<UploadId>" "$T/mpu.xml"
start_receiver "$D" "${RX_ARGS[@]}" || exit 1
"$BIN" ship "$P" --to "127.0.0.1:$RX_PORT" --stream s --heartbeat-ms 200 --timeout-ms 3000 --backoff-max-ms 300 \
  --insecure 2>>"$T/ship.log" &
pids+=($!)
head -n $((NLINES / 3)) "$W" | "$BIN" exec "$P" - >/dev/null
wait_for 120 "1: the receiver applies the first third" bash -c "[ \"\$('$BIN' status --data '$D' --stream s --json | jq .streams[0].applied)\" = $(e2e_last_txid "$P") ]"
"$BIN" snapshot --data "$D" --stream s >/dev/null
sed -n "$((NLINES / 3 + 1)),$((NLINES * 2 / 3))p" "$W" | "$BIN" exec "$P" - >/dev/null
wait_for 120 "1: every sealed segment and snapshot is uploaded" caught_up
L1=$(st upload.uploaded_txid)
"$BIN" status --data "$D" >"$T/status.txt"
contains "$T/status.txt" "upload: object storage holds txids up to $L1" "1: status shows the upload"
s3curl GET "?prefix=$PREFIX/&uploads=" >"$T/mpu.xml"
check "1: the receiver aborted the unfinished multipart upload" bash -c "! grep -q '<UploadId>' '$T/mpu.xml'"
# (a snapshot the receiver takes just after the last batch may still be on its way)
wait_for 120 "1: the local upload.json is the manifest" \
  bash -c "sleep 0.3; curl -s --aws-sigv4 'aws:amz:$AWS_DEFAULT_REGION:s3' --user '$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY' \
    -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' '$SL_S3_ENDPOINT/$SL_S3_BUCKET/$PREFIX/s/manifest.json' -o '$T/manifest.json' &&
    cmp -s '$T/manifest.json' '$D/streams/s/upload.json'"
check "1: the manifest names every uploaded segment, contiguous from txid 1" \
  jqe --argjson l "$L1" '.segments[0].first_txid == 1 and .segments[-1].last_txid == $l and
    ([.segments as $s | range(1; $s | length) | $s[.].first_txid == $s[. - 1].last_txid + 1] | all)' "$T/manifest.json"
check "1: and the snapshots" jqe '.snapshots | length >= 1' "$T/manifest.json"
# shiplog info --from reads the same manifest: the window a restore --from reaches.
"$BIN" info --from "$URL" --json >"$T/info.json" 2>"$T/err"
check "1: info --from lists the stream, restorable through txid $L1, its segments and snapshots as the manifest" \
  jqe --argjson l "$L1" --slurpfile m "$T/manifest.json" '.streams | length == 1 and .[0].stream == "s" and
    .[0].restorable and .[0].window.last_txid == $l and (.[0].segments | length) == ($m[0].segments | length) and
    (.[0].snapshots | length) == ($m[0].snapshots | length)' "$T/info.json"
"$BIN" info --from "$URL" --stream s >"$T/info.txt" 2>"$T/err"
contains "$T/info.txt" "restorable   txids" "1: info --from prints the window"
expect 1 "1: info --from names a missing stream" "$BIN" info --from "$URL" --stream nosuch
for f in $(jq -r '.segments[].name' "$T/manifest.json" | head -3); do
  s3curl GET "$PREFIX/s/archive/$f" -o "$T/obj"
  check "1: object archive/$f is the file byte for byte" cmp -s "$T/obj" "$D/streams/s/archive/$f"
done

# ---- 2. restores from object storage = from the local archive = the model ----------------------
e2e_times "$D" s
: >"$T/targets"
for _ in $(seq 4); do echo "txid $(( (RANDOM * 32768 + RANDOM) % L1 + 1 ))"; done >>"$T/targets"
for _ in $(seq 3); do
  k=$(( (RANDOM * 32768 + RANDOM) % L1 + 1 ))
  echo "time $(( $(commit_of "$k") + RANDOM % STEP ))"
done >>"$T/targets"
echo "txid $L1" >>"$T/targets"
while read -r kind val; do
  if [ "$kind" = txid ]; then echo "$val $kind $val"; else echo "$(txid_at "$val") $kind $val"; fi
done <"$T/targets" | sort -n >"$T/sorted"
M=$T/model
"$BIN" init "$M" >/dev/null
model_lines=0
while read -r r kind val; do
  e2e_model_at "$r"
  if [ "$kind" = txid ]; then arg=(--to-txid "$val"); else arg=(--to-time "$(e2e_to_time "$val")"); fi
  rm -rf "$T/rs" "$T/rl"
  if ! "$BIN" restore --from "$URL" --stream s "${arg[@]}" --into "$T/rs" --json >"$T/rs.json" 2>"$T/err"; then
    bad "2: restore --from ${arg[*]}"
    sed 's/^/    err: /' "$T/err" | head -3
    continue
  fi
  "$BIN" restore --data "$D" --stream s "${arg[@]}" --into "$T/rl" --json >"$T/rl.json" 2>/dev/null
  got=$(jq -r '"\(.txid) \(.base_txid)"' "$T/rs.json")
  if [ "$got" != "$(jq -r '"\(.txid) \(.base_txid)"' "$T/rl.json")" ] || [ "$(jq .txid "$T/rs.json")" != "$r" ]; then
    bad "2: restore --from ${arg[*]}: txid/base $got, local $(jq -c '[.txid, .base_txid]' "$T/rl.json"), want txid $r"
  elif e2e_same_export "$T/rs" "$T/rl" && e2e_same_export "$T/rs" "$M"; then
    ok "2: restore --from ${arg[*]} -> txid $r (base $(jq .base_txid "$T/rs.json"), $(jq .fetched_objects "$T/rs.json") objects) = local restore = model"
  else
    bad "2: restore --from ${arg[*]} -> txid $r equals the local restore and the model"
  fi
done <"$T/sorted"
expect 1 "2: a txid past what object storage holds is refused" \
  "$BIN" restore --from "$URL" --stream s --to-txid $((L1 + 1)) --into "$T/r-past"
contains "$T/err" "past what object storage holds" "2: ... saying what it holds"
expect 1 "2: a time before the stream's first commit is refused" \
  "$BIN" restore --from "$URL" --stream s --to-time 2023-12-31 --into "$T/r-early"
contains "$T/err" "before the stream's first commit" "2: ... saying so"
contains "$T/err" "holds txids 1..$L1 (committed from 2024-01-01T00:00:00Z to " "2: ... naming the window"
expect 1 "2: txid 0 is refused" "$BIN" restore --from "$URL" --stream s --to-txid 0 --into "$T/r-early"
check "2: the refused restores left nothing behind" [ ! -e "$T/r-early" ]
expect 1 "2: an unknown stream is refused" "$BIN" restore --from "$URL" --stream nosuch --to-txid 1 --into "$T/r-no"
contains "$T/err" "no such manifest" "2: ... naming the manifest"

# ---- 3. radosgw hung, then down during uploads, then back ------------------------------------------
"$RGW" rgw-pause # accepts connections, answers nothing: uploads hang
sed -n "$((NLINES * 2 / 3 + 1)),$((NLINES * 5 / 6))p" "$W" | "$BIN" exec "$P" - >/dev/null
L=$(e2e_last_txid "$P")
wait_for 120 "3: with radosgw hung the receiver still archives and applies everything ($L)" \
  bash -c "[ \"\$('$BIN' status --data '$D' --stream s --json | jq .streams[0].applied)\" = $L ]"
"$RGW" rgw-resume
"$RGW" rgw-stop
tail -n +$((NLINES * 5 / 6 + 1)) "$W" | "$BIN" exec "$P" - >/dev/null
L=$(e2e_last_txid "$P")
wait_for 120 "3: with radosgw down the receiver still archives and applies everything ($L)" \
  bash -c "[ \"\$('$BIN' status --data '$D' --stream s --json | jq .streams[0].durable)\" = $L ]"
wait_for 120 "3: status reports the upload error" bash -c "[ -n \"\$('$BIN' status --data '$D' --stream s --json | jq -r '.streams[0].upload.error')\" ]"
check "3: and the upload lag" [ "$(st upload.lag_tx)" -gt 0 ]
L1=$(st upload.uploaded_txid) # what got through while it was hung
e2e_times "$D" s
"$BIN" snapshot --data "$D" --stream s >/dev/null
ls "$D/streams/s/archive" "$D/streams/s/snapshots" >"$T/before-prune"
"$BIN" prune --data "$D" --stream s --keep-snapshots 1 >"$T/prune.out" 2>&1
missing=0 removed=0
for f in $(grep -E '\.(seg|snap)$' "$T/before-prune"); do
  d=archive
  [[ $f == *.snap ]] && d=snapshots
  [ -f "$D/streams/s/$d/$f" ] && continue
  removed=$((removed + 1))
  grep -qF "\"$f\"" "$D/streams/s/upload.json" || missing=$((missing + 1))
done
check "3: retention removed only files that are uploaded ($removed removed)" [ "$missing" = 0 ]
"$RGW" rgw-start
wait_for 90 "3: radosgw back: the upload catches up" caught_up
L2=$(st upload.uploaded_txid)
check "3: object storage now holds more ($L1 -> $L2)" [ "$L2" -gt "$L1" ]
model_at() { # TXID DIR: the workload up to TXID's commit, applied to a new store
  rm -rf "$2" && "$BIN" init "$2" >/dev/null &&
    head -n "$(line_of "$(commit_of "$1")")" "$W" | "$BIN" exec "$2" - >/dev/null
}
rm -rf "$T/rs"
"$BIN" restore --from "$URL" --stream s --to-txid "$L2" --into "$T/rs" >/dev/null 2>"$T/err"
model_at "$L2" "$T/m3"
check "3: a restore from object storage to txid $L2 equals the model" e2e_same_export "$T/rs" "$T/m3"

# ---- 4. a deleted object, a flipped byte ----------------------------------------------------------------
s3curl GET "$PREFIX/s/manifest.json" -o "$T/manifest.json"
SEG2=$(jq -r '.segments[1].name' "$T/manifest.json")
SEG3=$(jq -r '.segments[2].name' "$T/manifest.json")
T2=$(jq -r '.segments[1].last_txid' "$T/manifest.json")
T3=$(jq -r '.segments[2].last_txid' "$T/manifest.json")
# Copies from object storage, to put back: retention in 3 removed the local
# files of these early segments (they were uploaded).
s3curl GET "$PREFIX/s/archive/$SEG2" -o "$T/seg2.orig"
s3curl GET "$PREFIX/s/archive/$SEG3" -o "$T/seg3.orig"
cp "$T/seg3.orig" "$T/seg3"
s3curl DELETE "$PREFIX/s/archive/$SEG2" >/dev/null
expect 1 "4: a restore that needs a deleted object is refused" \
  "$BIN" restore --from "$URL" --stream s --to-txid "$T2" --into "$T/r-del"
contains "$T/err" "$PREFIX/s/archive/$SEG2: missing" "4: ... naming the object"
check "4: ... leaving nothing behind" bash -c "! ls -d '$T'/r-del* 2>/dev/null"
mid=$(( $(stat -c %s "$T/seg3") / 2 ))
byte=$(od -An -tu1 -j "$mid" -N1 "$T/seg3" | tr -d ' ')
printf "\\$(printf %03o $(( byte ^ 0x5a )))" | dd of="$T/seg3" bs=1 seek="$mid" conv=notrunc 2>/dev/null
s3curl PUT "$PREFIX/s/archive/$SEG3" -T "$T/seg3" >/dev/null
check "4: (the deleted object is put back)" s3curl PUT "$PREFIX/s/archive/$SEG2" -f -o /dev/null -T "$T/seg2.orig"
expect 1 "4: a restore that needs an object with a flipped byte is refused" \
  "$BIN" restore --from "$URL" --stream s --to-txid "$T3" --into "$T/r-flip"
contains "$T/err" "$PREFIX/s/archive/$SEG3: damaged" "4: ... naming the object"
# (with the deleted one still missing, the restore stopped at whichever
# failed first: the damaged one only some of the time)
check "4: ... and no other object" bash -c "! grep -qF '$SEG2' '$T/err'"

# ---- 5. dump --to s3:// and load s3:// --------------------------------------------------------------------
expect 0 "5: dump --to s3://" "$BIN" dump "$P" --to "$URL/p.dump"
expect 0 "5: load s3:// --into" "$BIN" load "$URL/p.dump" --into "$T/loaded"
check "5: the loaded store equals the primary" e2e_same_export "$P" "$T/loaded"
expect 1 "5: load of a missing object is refused" "$BIN" load "$URL/nosuch.dump" --into "$T/l2"
contains "$T/err" "no such object" "5: ... naming it"

# ---- 6. the walkthrough: no data directory left, restore to a point in time ------------------------------------
check "6: (the damaged object is put back)" s3curl PUT "$PREFIX/s/archive/$SEG3" -f -o /dev/null -T "$T/seg3.orig"
kill -TERM "$RX_PID" 2>/dev/null
wait "$RX_PID" 2>/dev/null
rm -rf "$D"
k=$(( L2 - 100 ))
at=$(commit_of "$k")
when="@$((at / 1000000)).$(printf %06d $((at % 1000000)))"
rm -rf "$T/rs"
expect 0 "6: with the data directory deleted, restore --from --to-time $when" \
  "$BIN" restore --from "$URL" --stream s --to-time "$when" --into "$T/rs" --parallel 3
r=$(txid_at "$at")
model_at "$r" "$T/model6"
check "6: it equals the model at txid $r" e2e_same_export "$T/rs" "$T/model6"

# leave the bucket as it was
s3curl GET "" -G --data-urlencode "list-type=2" --data-urlencode "prefix=$PREFIX/" -o "$T/list.xml"
for k in $(grep -o '<Key>[^<]*</Key>' "$T/list.xml" | sed 's/<[^>]*>//g'); do s3curl DELETE "$k" >/dev/null; done
echo "passed $passed, failed $failed"
[ "$failed" -eq 0 ]
