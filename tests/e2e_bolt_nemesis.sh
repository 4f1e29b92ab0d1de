#!/usr/bin/env bash
# The randomized fault run through Bolt: concurrent clients on Neo4j's
# JavaScript driver (tests/bolt-driver/ack_writer.js) commit to `shiplog
# serve`, whose group commit shares each fdatasync among them, while `ship`
# streams the log to a receiver's standby. tests/e2e_nemesis.sh does the
# same with one `exec` writer; here many commits are in flight in one
# group when the fault strikes. Each round a nemesis picks one fault of
# serve:
#   kill     SIGKILL mid-workload (the process dies, the machine does not)
#   term     SIGTERM mid-workload (must exit 0)
#   crash, tear   power loss at a random fault point (SL_FAULTS): unsynced
#                 writes dropped or torn, then a new boot
#   eio      a failed log write or fdatasync at a random pass
# THE MODEL: a seq divisible by 4 is an explicit transaction creating
# (:T {seq}) and (:P {of: seq}), every other seq an autocommit creating
# (:T {seq}); the client prints "ack SEQ" once the commit was acknowledged,
# and reads every eighth acknowledged seq on the receiver's standby over
# Bolt, bringing the write's bookmark.
# THE CHECKS: no causal read ran without seeing its write (one that timed
# out waiting is allowed); after serve is started again (recovering): every
# acknowledged seq is on the primary, no seq twice, an explicit
# transaction's two nodes both or neither; the standby applies up to the
# primary's last txid and its export equals the primary's.
#   SL_NEMESIS_ROUNDS (default 8, 4 under sanitizers); SL_SEED=N replays
#   the nemesis's choices (not the threads' interleaving).
set -u
. "$(dirname "$0")/lib_e2e.sh"
e2e_need -c serve node jq
e2e_begin e2e_bolt_nemesis
bolt_driver_install

DEFAULT_ROUNDS=8
grep -qs "SL_SANITIZE:BOOL=ON" "$BUILD/CMakeCache.txt" && DEFAULT_ROUNDS=4
ROUNDS=${SL_NEMESIS_ROUNDS:-$DEFAULT_ROUNDS}
KINDS=(kill term crash tear eio)
# The fault points serve passes: the log's write and fdatasync (every
# group), segment rotation, pruning, the checkpoint file and LMDB's sync.
POINTS=(1 2 3 4 5 6 7 8 9 12)
R=$((SEED * 2654435761 + 1)) # pick N: 0..N-1, as tests/e2e_nemesis.sh draws
pick() {
  R=$(((R * 6364136223846793005 + 1442695040888963407) & 0x7fffffffffffffff))
  PICK=$(((R >> 29) % $1))
}

P=$T/primary D=$T/rx BOOT=boot-$SEED-0
"$BIN" init "$P" --segment-size 16K >/dev/null
mkdir -p "$P/log/consumers" && echo 0 >"$P/log/consumers/ship-s" # as in e2e_nemesis.sh
BOLT_RX=$(free_port)
start_receiver "$D" --insecure --bolt "127.0.0.1:$BOLT_RX" --bolt-no-auth || exit 1
"$BIN" ship "$P" --to "127.0.0.1:$RX_PORT" --stream s --insecure --heartbeat-ms 200 --timeout-ms 1000 \
  --backoff-max-ms 300 2>>"$T/ship.log" &
pids+=($!)

# serve_up [ENV...]: serve the primary (with this boot) as SERVE_PID on PORT
serve_up() {
  rm -f "$T/serve.port"
  env SL_TEST_BOOT_ID="$BOOT" "$@" "$BIN" serve "$P" --listen 127.0.0.1:0 --no-auth \
    --ready-file "$T/serve.port" 2>>"$T/serve.log" &
  SERVE_PID=$!
  pids+=("$SERVE_PID")
  e2e_until 60 test -s "$T/serve.port" || return 1
  PORT=$(cat "$T/serve.port")
}

: >"$T/acked"
NEXT_SEQ=1 lost_total=0 dup_total=0 torn_total=0 checks_failed=0 seen_total=0 stale_total=0 unseen_total=0
declare -A injected=() fired=()
check_round() {
  local r=$1 last lost dup torn
  serve_up || { echo "round $r: serve does not start again"; tail -3 "$T/serve.log"; return 1; }
  last=$("$BIN" stats "$P" --json 2>>"$T/check.log" | jq -r .last_txid)
  e2e_wait_applied "$D" s "$last" 90 || { echo "round $r: the standby does not catch up"; return 1; }
  e2e_same_export "$P" "$D/streams/s/standby" || { echo "round $r: the standby differs"; return 1; }
  jq -r 'select(.type == "node" and .labels == ["T"]) | .properties.seq' "$T/p.json" | LC_ALL=C sort >"$T/seqs"
  jq -r 'select(.type == "node" and .labels == ["P"]) | .properties.of' "$T/p.json" | LC_ALL=C sort >"$T/pairs"
  lost=$(LC_ALL=C sort "$T/acked" | LC_ALL=C comm -23 - "$T/seqs" | wc -l)
  dup=$(($(uniq -d "$T/seqs" | wc -l) + $(uniq -d "$T/pairs" | wc -l)))
  # An explicit transaction's (:T) without its (:P), or the other way round.
  torn=$(awk '$1 % 4 == 0' "$T/seqs" | LC_ALL=C comm -3 - "$T/pairs" | wc -l)
  lost_total=$((lost_total + lost)) dup_total=$((dup_total + dup)) torn_total=$((torn_total + torn))
  kill -TERM "$SERVE_PID"
  wait "$SERVE_PID" || { echo "round $r: serve exited $? on SIGTERM"; return 1; }
  [ "$lost" -eq 0 ] && [ "$dup" -eq 0 ] && [ "$torn" -eq 0 ] || {
    echo "round $r: $lost acknowledged seqs lost, $dup twice, $torn explicit transactions half there"; return 1; }
  echo "    round $r: txids 1..$last on both; $(wc -l <"$T/acked") acknowledged, all there once; no half transaction"
}

round=0
while [ "$round" -lt "$ROUNDS" ]; do
  round=$((round + 1))
  pick ${#KINDS[@]}
  kind=${KINDS[PICK]}
  injected[$kind]=$((${injected[$kind]:-0} + 1))
  workers=$((4 + RANDOM % 29)) count=$((300 + RANDOM % 900))
  faults=()
  case $kind in
  crash | tear | eio)
    pick ${#POINTS[@]}
    p=${POINTS[PICK]}
    [ "$kind" = eio ] && { pick 2; p=$((PICK + 1)); } # the log's write or sync: a commit fails
    code=$kind && [ "$kind" = eio ] && code=EIO
    pick $((p <= 2 ? 60 : 3)) # every group passes points 1 and 2; rotations, checkpoints the others
    faults=(SL_FAULTS="$p:$code:$PICK" SL_SEED=$((SEED + round))) ;;
  esac
  : >"$T/w.out"
  if serve_up "${faults[@]}"; then
    node "$SRC/tests/bolt-driver/ack_writer.js" "$PORT" "$workers" "$NEXT_SEQ" "$count" "$BOLT_RX" s \
      >"$T/w.out" 2>>"$T/w.err" &
    W_PID=$!
    pids+=("$W_PID")
    case $kind in # once the clients are writing
    kill | term) e2e_until 30 grep -q . "$T/w.out"; sleep "0.$((RANDOM % 6))" ;;&
    kill) kill -9 "$SERVE_PID" ;;
    term) kill -TERM "$SERVE_PID" ;;
    esac
    wait "$W_PID" 2>/dev/null
  elif kill -0 "$SERVE_PID" 2>/dev/null || [ -z "${faults[0]:-}" ]; then
    bad "round $round: serve does not start"; tail -3 "$T/serve.log"; break
  fi # else the power went out while it opened the store
  NEXT_SEQ=$((NEXT_SEQ + count))
  awk '$1 == "ack" { print $2 }' "$T/w.out" >>"$T/acked"
  seen_total=$((seen_total + $(grep -c '^seen' "$T/w.out")))
  stale_total=$((stale_total + $(grep -c '^stale' "$T/w.out")))
  unseen=$(grep -c '^unseen' "$T/w.out")
  unseen_total=$((unseen_total + unseen))
  [ "$unseen" -eq 0 ] || bad "round $round: $unseen reads with a write's bookmark ran on the standby without seeing it"
  # Serve outlived the workload (no fault fired, or an I/O error it reports
  # to the clients): SIGTERM.
  kill -0 "$SERVE_PID" 2>/dev/null && kill -TERM "$SERVE_PID"
  wait "$SERVE_PID" 2>/dev/null
  rc=$?
  case $kind in
  term) [ "$rc" -eq 0 ] || bad "round $round: serve exited $rc on SIGTERM mid-workload" ;;
  crash | tear) [ "$rc" -eq 86 ] && fired[$kind]=$((${fired[$kind]:-0} + 1)) && BOOT=boot-$SEED-$round ;;
  eio) grep -q '^err' "$T/w.out" && fired[$kind]=$((${fired[$kind]:-0} + 1)) ;;
  esac
  case $kind in kill | term) fired[$kind]=$((${fired[$kind]:-0} + 1)) ;; esac
  echo "round $round: $kind${faults[0]:+ (${faults[0]})}, $workers clients: serve exit $rc," \
    "$(grep -c '^ack' "$T/w.out") acknowledged, $(grep -c '^err' "$T/w.out") failed"
  check_round "$round" || { checks_failed=$((checks_failed + 1)); bad "round $round ($kind): checks"; break; }
done

echo "| fault | rounds | fired |"
echo "| --- | ---: | ---: |"
for k in $(printf '%s\n' "${!injected[@]}" | sort); do echo "| $k | ${injected[$k]} | ${fired[$k]:-0} |"; done
echo "seed $SEED: $round rounds, $(wc -l <"$T/acked") acknowledged transactions, lost: $lost_total," \
  "twice: $dup_total, half there: $torn_total, failed rounds: $checks_failed; causal reads on the standby:" \
  "$seen_total saw their write, $stale_total timed out or failed, $unseen_total ran without it"
grep -m5 -E 'Sanitizer|runtime error' "$T/serve.log" "$T/rx.log" && bad "a sanitizer report"
[ "$checks_failed" -eq 0 ] && ok "bolt nemesis: $round rounds, every check held"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
