#!/usr/bin/env bash
# End-to-end test of point-in-time recovery with real `shiplog` processes
# (receive, ship, exec, snapshot, restore, prune, export --at-txid):
#   1. a workload with known commit times ("ts" on every line) is shipped;
#      snapshots are taken on demand while the receiver applies, and by the
#      receiver itself (--snapshot-after-bytes);
#   2. restores to many random txids and times, each compared with the
#      model: the workload's lines up to that point applied to a fresh store
#      with `shiplog exec` (an independent path: mutation parsing and
#      commits), canonical exports compared byte for byte; each restore must
#      start from the newest snapshot at or before its target;
#   3. refusals: a target past the end, usage errors; a damaged snapshot:
#      prune keeps what it would replace, a restore takes an older base;
#   4. retention (prune) while the receiver runs, then restores from the
#      oldest kept snapshot, and a target before it refused;
#   5. a power loss (the standby's writer.lock left open by another boot):
#      the receiver rebuilds the standby from the newest snapshot + archive;
#   6. the README's story: data deleted by mistake on the primary, restored
#      to one second before, --into a new store and then --in-place (refused
#      while a process holds the store open; the old state kept aside).
# Needs $SL_BIN, $SL_BUILD/bench_gen, jq. SL_SEED=N replays the random choices.
set -u

. "$(dirname "$0")/lib_e2e.sh"
e2e_need -c restore -g jq
e2e_begin e2e_restore

# ---- processes (as e2e_ship.sh) ----------------------------------------------------------
# plain TCP here (tests/e2e_security.sh covers TLS)
RX_TIMEOUT_MS=3000
RX_ARGS=(--segment-size 64K --snapshot-after-bytes 256K --insecure)
start_shipper() { # STORE PORT STREAM: sets SH_PID
  "$BIN" ship "$1" --to "127.0.0.1:$2" --stream "$3" --heartbeat-ms 200 --timeout-ms 3000 \
    --backoff-max-ms 300 --insecure 2>>"$T/ship.log" &
  SH_PID=$!
  pids+=("$SH_PID")
}
stop() { kill -TERM "$1" 2>/dev/null; wait "$1" 2>/dev/null; }

# ---- 1. a workload with known commit times, shipped ---------------------------------------------
P=$T/primary D=$T/data W=$T/work.jsonl
TS0=1704067200000000 STEP=250000 # 2024-01-01T00:00:00Z, 4 transactions a second
NLINES=4000
"$GEN" --tx "$NLINES" --ops-per-tx 1-6 --seed "$SEED" --nodes-first 50 --ts-start "$TS0" --ts-step "$STEP" >"$W"
NLINES=$(wc -l <"$W")
"$BIN" init "$P" >/dev/null
start_receiver "$D" "${RX_ARGS[@]}" || exit 1
RX=$RX_PID PORT=$RX_PORT
start_shipper "$P" "$PORT" s
SH=$SH_PID
head -n $((NLINES / 2)) "$W" | "$BIN" exec "$P" - >/dev/null
# On demand while the receiver applies the second half.
tail -n +$((NLINES / 2 + 1)) "$W" | "$BIN" exec "$P" - >/dev/null &
EX=$!
ondemand=0
while kill -0 "$EX" 2>/dev/null; do
  "$BIN" snapshot --data "$D" --stream s >>"$T/snap.out" 2>>"$T/snap.err" && ondemand=$((ondemand + 1))
  sleep 0.$((3 + RANDOM % 5))
done
wait "$EX"
L=$(e2e_last_txid "$P")
check "1: the standby applies the workload ($L transactions)" e2e_wait_applied "$D" s "$L" 120
check "1: snapshots on demand while the receiver applies ($ondemand taken)" [ "$ondemand" -ge 1 ]
check "1: no snapshot command failed" [ ! -s "$T/snap.err" ]
check "1: the receiver took snapshots itself (--snapshot-after-bytes)" grep -q "snapshot at txid" "$T/rx.log"
"$BIN" snapshot --data "$D" --stream s >"$T/out"
contains "$T/out" "at txid $L" "1: a snapshot at the last txid"
ls "$D/streams/s/snapshots" | grep -c '\.snap$' | sed 's/^/    snapshots: /'
check "1: no temporary snapshot file is left" [ -z "$(ls "$D/streams/s/snapshots" | grep -v '\.snap$')" ]
SNAPS=$(ls "$D/streams/s/snapshots" | grep '\.snap$' | sed 's/\.snap$//' | sed 's/^0*//')

# txid -> commit time, from the archive (the primary prunes what was shipped).
e2e_times "$D" s
check "1: the archive holds txids 1..$L" [ "$(wc -l <"$T/times.tsv")" = "$L" ]
base_for() { # TXID [TIME]: the newest snapshot at or before, 0 for none
  local b=0 s
  for s in $SNAPS; do
    if [ "$s" -le "$1" ] && { [ -z "${2:-}" ] || [ "$(commit_of "$s")" -le "$2" ]; }; then [ "$s" -gt "$b" ] && b=$s; fi
  done
  echo "$b"
}

# ---- 2. restores to random txids and times, compared with the model -------------------------------
# Targets: "txid N" or "time US"; each resolves to a txid R and a model line count.
targets=()
for i in $(seq 8); do targets+=("txid $(( (RANDOM * 32768 + RANDOM) % L + 1 ))"); done
for s in $SNAPS; do targets+=("txid $s"); break; done
targets+=("txid $L" "txid 1")
for i in $(seq 8); do
  k=$(( (RANDOM * 32768 + RANDOM) % L + 1 ))
  us=$(commit_of "$k")
  case $((RANDOM % 3)) in 0) ;; 1) us=$((us + 1 + RANDOM % (STEP - 1))) ;; 2) ((k > 1)) && us=$((us - 1)) ;; esac
  targets+=("time $us")
done
targets+=("time $TS0") # the first commit: the earliest point (before it: refused, part 3)
# Sort by resolved txid so that one model store goes forward through them.
: >"$T/targets"
for t in "${targets[@]}"; do
  set -- $t
  if [ "$1" = txid ]; then r=$2; else r=$(txid_at "$2"); fi
  echo "$r $1 $2" >>"$T/targets"
done
sort -n -o "$T/targets" "$T/targets"
M=$T/model
"$BIN" init "$M" >/dev/null
model_lines=0
while read -r r kind val; do
  e2e_model_at "$r"
  [ "$(e2e_last_txid "$M")" = "$r" ] || { bad "2: the model reaches txid $r"; continue; }
  R=$T/restored
  rm -rf "$R"
  if [ "$kind" = txid ]; then arg=(--to-txid "$val"); else arg=(--to-time "$(e2e_to_time "$val")"); fi
  if ! "$BIN" restore --data "$D" --stream s "${arg[@]}" --into "$R" --json >"$T/r.json" 2>"$T/err"; then
    bad "2: restore ${arg[*]}"
    sed 's/^/    err: /' "$T/err" | head -3
    continue
  fi
  b=$(if [ "$kind" = time ]; then base_for "$r" "$val"; else base_for "$r"; fi)
  got=$(jq -r '"\(.txid) \(.base_txid) \(.replayed)"' "$T/r.json")
  if [ "$got" != "$r $b $((r - b))" ]; then
    bad "2: restore ${arg[*]}: txid/base/replayed $got, want $r $b $((r - b))"
  elif e2e_same_export "$M" "$R"; then
    ok "2: restore ${arg[*]} -> txid $r from base $b: equals the model"
  else
    bad "2: restore ${arg[*]} -> txid $r equals the model"
  fi
done <"$T/targets"
check "2: a successful restore prints nothing on stderr when it is not a terminal" [ ! -s "$T/err" ]
"$BIN" restore --data "$D" --stream s --to-txid 1234 --into "$T/r2" >"$T/out"
contains "$T/out" "restored s to txid 1234" "2: the summary names the txid reached"
"$BIN" export --data "$D" --stream s --at-txid 1234 --to "$T/at.json"
"$BIN" export "$T/r2" --to "$T/r2.json"
check "2: export --at-txid equals the restored store's export" cmp -s "$T/at.json" "$T/r2.json"
check "2: a restored store takes new commits from the next txid" \
  bash -c "echo '{\"ops\":[{\"op\":\"create_node\",\"id\":900000000,\"labels\":[\"New\"]}]}' | '$BIN' exec '$T/r2' - >/dev/null && [ \$('$BIN' stats '$T/r2' --json | jq .last_txid) = 1235 ]"

# ---- 3. refusals ------------------------------------------------------------------------------
expect 1 "3: --to-txid past the archive's end" "$BIN" restore --data "$D" --stream s --to-txid $((L + 1)) --into "$T/x"
contains "$T/err" "past the end of the archive" "3: it says the target is past the end"
contains "$T/err" "holds txids 1..$L" "3: and what the archive holds"
expect 1 "3: --to-time later than the primary's last reported clock" \
  "$BIN" restore --data "$D" --stream s --to-time 2099-01-01T00:00:00Z --into "$T/x"
contains "$T/err" "past what the archive is known to hold" "3: it says so"
# Before the first commit (the archive starts at txid 1): refused like a point
# past the end, naming the window, nothing left behind.
expect 1 "3: --to-time before the stream's first commit" \
  "$BIN" restore --data "$D" --stream s --to-time "$(e2e_to_time $((TS0 - 1000000)))" --into "$T/x"
contains "$T/err" "before the stream's first commit" "3: it says the target is before the first commit"
contains "$T/err" "holds txids 1..$L (committed from 2024-01-01T00:00:00Z to " "3: and names the window: txids and times"
expect 1 "3: --to-time a date before the first commit" \
  "$BIN" restore --data "$D" --stream s --to-time 2000-01-01 --into "$T/x"
expect 1 "3: --to-txid 0" "$BIN" restore --data "$D" --stream s --to-txid 0 --into "$T/x"
contains "$T/err" "txid 0 is before the stream's first commit" "3: it says so"
check "3: the refused restores left nothing behind" [ ! -e "$T/x" ]
expect 1 "3: an unknown stream" "$BIN" restore --data "$D" --stream nope --to-txid 1 --into "$T/x"
expect 2 "3: no target" "$BIN" restore --data "$D" --stream s --into "$T/x"
expect 2 "3: two targets" "$BIN" restore --data "$D" --stream s --to-txid 1 --to-time @1 --into "$T/x"
expect 2 "3: no destination" "$BIN" restore --data "$D" --stream s --to-txid 1
expect 2 "3: a bad time" "$BIN" restore --data "$D" --stream s --to-time yesterday --into "$T/x"
expect 2 "3: prune with a bad --keep-days" "$BIN" prune --data "$D" --keep-days -1
newest=$(ls "$D/streams/s/snapshots" | grep '\.snap$' | tail -1)
cp "$D/streams/s/snapshots/$newest" "$T/saved.snap"
printf '\x55' | dd of="$D/streams/s/snapshots/$newest" bs=1 seek=300 conv=notrunc 2>/dev/null
expect 1 "3: prune keeps what a damaged newest snapshot would replace" "$BIN" prune --data "$D" --stream s --keep-snapshots 1
contains "$T/err" "$newest: offset" "3: the message names the file and offset"
contains "$T/err" "nothing pruned" "3: and says nothing was removed"
check "3: every snapshot is still there" [ "$(ls "$D/streams/s/snapshots" | grep -c '\.snap$')" -ge 2 ]
expect 0 "3: a damaged snapshot gives way to an older base" "$BIN" restore --data "$D" --stream s --to-txid "$L" --into "$T/x"
contains "$T/err" "$newest: offset" "3: the damage is named (file and offset)"
contains "$T/err" "restoring from" "3: and the base used instead"
check "3: the restore from the older base equals the model at txid $L" e2e_same_export "$M" "$T/x"
rm -rf "$T/x"
for s in "$D/streams/s/snapshots/"*.snap; do cp "$s" "$s.saved"; printf '\x55' | dd of="$s" bs=1 seek=300 conv=notrunc 2>/dev/null; done
expect 0 "3: every snapshot damaged: the empty store and the whole archive serve" "$BIN" restore --data "$D" --stream s --to-txid "$L" --into "$T/x" --json
check "3: ... from txid 0" jqe '.base_txid == 0' "$T/out"
check "3: ... and equals the model" e2e_same_export "$M" "$T/x"
rm -rf "$T/x"
for s in "$D/streams/s/snapshots/"*.snap.saved; do mv "$s" "${s%.saved}"; done
cp "$T/saved.snap" "$D/streams/s/snapshots/$newest"

# ---- 4. retention, while the receiver runs -----------------------------------------------------
nseg_before=$(ls "$D/streams/s/archive" | grep -c '\.seg$')
expect 0 "4: prune --keep-snapshots 2" "$BIN" prune --data "$D" --stream s --keep-snapshots 2 --json
echo "    $(cat "$T/out")"
FIRST=$(jq -r .archive_first_txid "$T/out")
nseg_after=$(ls "$D/streams/s/archive" | grep -c '\.seg$')
check "4: archive segments were removed ($nseg_before -> $nseg_after)" [ "$nseg_after" -lt "$nseg_before" ]
check "4: two snapshots are left" [ "$(ls "$D/streams/s/snapshots" | grep -c '\.snap$')" = 2 ]
OLDEST=$(ls "$D/streams/s/snapshots" | grep '\.snap$' | head -1 | sed 's/\.snap$//; s/^0*//')
check "4: the archive still continues the oldest kept snapshot (first txid $FIRST <= $OLDEST + 1)" [ "$FIRST" -le $((OLDEST + 1)) ]
expect 1 "4: a target before the oldest kept snapshot is refused" \
  "$BIN" restore --data "$D" --stream s --to-txid $((OLDEST - 1)) --into "$T/x"
contains "$T/err" "before the first snapshot" "4: it says so"
mid=$((OLDEST + (L - OLDEST) / 2))
rm -rf "$T/r4"
expect 0 "4: restore to txid $mid after pruning" "$BIN" restore --data "$D" --stream s --to-txid "$mid" --into "$T/r4"
contains "$T/out" "(txid $OLDEST)" "4: from the oldest kept snapshot"
rm -rf "$M" && "$BIN" init "$M" >/dev/null
sed -n "1,$(line_of "$(commit_of "$mid")")p" "$W" | "$BIN" exec "$M" - >/dev/null
check "4: it equals the model" e2e_same_export "$M" "$T/r4"

# ---- 5. a power loss: the standby is rebuilt from the newest snapshot -------------------------------
gen2() { "$GEN" --tx "$1" --ops-per-tx 1-4 --seed $((SEED + $2)) --id-base $(($2 * 10000000 + 1)); }
gen2 300 7 | "$BIN" exec "$P" - >/dev/null
L=$(e2e_last_txid "$P")
check "5: applied up to $L" e2e_wait_applied "$D" s "$L" 120
stop "$RX"
echo "open 00000000-0000-0000-0000-000000000000" >"$D/streams/s/standby/writer.lock"
expect 1 "5: a standby left open by another boot is not read" "$BIN" export "$D/streams/s/standby"
contains "$T/err" "the machine went down" "5: it says why"
start_receiver "$D" --snapshot-every 1 "${RX_ARGS[@]}" || exit 1
RX=$RX_PID
stop "$SH"
start_shipper "$P" "$RX_PORT" s
SH=$SH_PID
gen2 100 8 | "$BIN" exec "$P" - >/dev/null
L=$(e2e_last_txid "$P")
check "5: the rebuilt standby applies up to $L" e2e_wait_applied "$D" s "$L" 120
contains "$T/rx.log" "was torn by a power loss: rebuilt from the newest snapshot" "5: rebuilt from a snapshot"
check "5: it equals the primary" e2e_same_export "$P" "$D/streams/s/standby"
check "5: the receiver takes snapshots on a schedule (--snapshot-every 1)" e2e_until 60 grep -q "(schedule)" "$T/rx.log"

# ---- 6. the README's story: a mistake on the primary, undone ------------------------------------------
# (README "Point-in-time restore" shows these commands.)
"$BIN" export "$P" --to "$T/before-mistake.json"
sleep 1.2
ids=($(head -2 "$T/before-mistake.json" | jq -r .id))
echo "{\"ops\":[{\"op\":\"delete_node\",\"id\":${ids[0]},\"detach\":true},{\"op\":\"delete_node\",\"id\":${ids[1]},\"detach\":true}]}" >"$T/mistake.jsonl"
"$BIN" exec "$P" "$T/mistake.jsonl" >/dev/null
MISTAKE_US=$("$BIN" log "$P" --json | tail -1 | jq -r .commit_time_us)
L=$(e2e_last_txid "$P")
check "6: the mistake is shipped" e2e_wait_applied "$D" s "$L" 120
# a heartbeat reports the primary's clock past the mistake
past_mistake() { [ "$(e2e_rx_json "$D" s reachable_time_us 0)" -gt "$MISTAKE_US" ]; }
e2e_until 60 past_mistake
BEFORE="@$(( (MISTAKE_US - 1000000) / 1000000 )).$(printf %06d $(( (MISTAKE_US - 1000000) % 1000000 )))"
rm -rf "$T/restored"
expect 0 "6: restore --to-time one second before the mistake --into a new store" \
  "$BIN" restore --data "$D" --stream s --to-time "$BEFORE" --into "$T/restored"
sed 's/^/    /' "$T/out"
contains "$T/out" "restored s to txid $((L - 1))" "6: it reached the transaction before the mistake"
"$BIN" export "$T/restored" --to "$T/restored.json"
check "6: the restored store equals the primary before the mistake" cmp -s "$T/before-mistake.json" "$T/restored.json"

expect 1 "6: --in-place is refused while its log is being shipped" \
  "$BIN" restore --data "$D" --stream s --to-time "$BEFORE" --in-place "$P"
contains "$T/err" "its log is being shipped" "6: it says why"
stop "$SH" # the primary's own processes stop before it is replaced
mkfifo "$T/fifo"
exec 3<>"$T/fifo"
"$BIN" exec "$P" - <"$T/fifo" >/dev/null 2>&1 3>&- & # only this shell may hold the writing end
HOLD=$!
pids+=("$HOLD")
e2e_until 60 grep -q "^open " "$P/writer.lock" # it has the store open
expect 1 "6: --in-place is refused while a process has the store open" \
  "$BIN" restore --data "$D" --stream s --to-time "$BEFORE" --in-place "$P"
contains "$T/err" "open for writing by another process" "6: it says why"
check "6: the refused restore changed nothing" [ -z "$(ls -d "$P".* 2>/dev/null)" ]
exec 3>&-
wait "$HOLD"
expect 0 "6: --in-place once nothing holds it" "$BIN" restore --data "$D" --stream s --to-time "$BEFORE" --in-place "$P"
sed 's/^/    /' "$T/out"
KEPT=$(ls -d "$P".before-restore-* 2>/dev/null | head -1)
contains "$T/out" "kept in $KEPT" "6: it says where the old state is kept"
"$BIN" export "$P" --to "$T/inplace.json"
check "6: the store is back to before the mistake" cmp -s "$T/before-mistake.json" "$T/inplace.json"
check "6: the old state (with the mistake) is kept aside" [ "$(e2e_last_txid "$KEPT")" = "$L" ]

stop "$RX"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
