#!/usr/bin/env bash
# The randomized fault run, in the spirit of Jepsen: a primary commits a
# workload while it ships (through tests/netproxy) to a receiver, and each
# round a nemesis picks one fault:
#   kill_exec, kill_shipper, kill_receiver   SIGKILL mid-workload
#   partition                                 silent drop (nftables) for 1.5-3 s
#   reset                                     the proxy resets the connection
#   slow                                      60 ms one way, 512 KB/s
#   disk_primary, disk_receiver               their file system full
#   crash, tear                               power loss at a random fault point
#                                             of the primary (SL_FAULTS): unsynced
#                                             writes dropped or torn; then a new boot
#   eio, enospc                               an I/O error at a random fault point
# (partition needs root and a network namespace, the disks loop mounts:
# without them those kinds are not drawn). After each round the faults
# heal and the checker runs. THE MODEL: every transaction creates one node
# whose seq property is unique; exec prints "node ID" once a commit is
# acknowledged, so the k-th such line acknowledges the k-th line's seq.
# THE CHECKS: the standby applies up to the primary's last txid and its
# export equals the primary's; every acknowledged seq is on the primary
# exactly once, no seq twice; a restore to a random txid holds exactly the
# seqs of txids 1..N (from the archive's records).
#   SL_NEMESIS_ROUNDS (default 30, 10 under ASan) or SL_NEMESIS_SECONDS bound the run;
#   SL_SEED=N replays the nemesis's choices. scripts/soak.sh runs it long.
# The last lines are the figures (faults by kind, drawn and fired -- a
# crash or I/O error at a point the exec did not reach does not fire; a
# full primary disk fires when a commit fails --, acknowledged, lost,
# duplicated), also written to $SL_NEMESIS_REPORT when set.
set -u

BIN=${SL_BIN:?SL_BIN must name the shiplog binary}
BUILD=${SL_BUILD:-$(dirname "$BIN")}
PROXY=$BUILD/netproxy
[ -x "$PROXY" ] || { echo "skip: no $PROXY"; exit 77; }
command -v jq >/dev/null || { echo "skip: jq is not installed"; exit 77; }
command -v stdbuf >/dev/null || { echo "skip: no stdbuf"; exit 77; }
. "$(dirname "$0")/lib_e2e.sh"
e2e_begin e2e_nemesis

KINDS=(kill_exec kill_shipper kill_receiver reset slow crash tear eio enospc)
INNS=()
if [ "$(id -u)" -eq 0 ] && command -v nft >/dev/null && command -v nsenter >/dev/null && e2e_netns &&
  e2e_in_ns nft list tables >/dev/null 2>&1; then
  INNS=(nsenter --net="/run/netns/$NS")
  KINDS+=(partition)
else
  echo "note: no partition faults (root, nft, nsenter and a network namespace needed${NETNS_WHY:+: $NETNS_WHY})"
fi
mkdir -p "$T/pm" "$T/rm"
if [ "$(id -u)" -eq 0 ] && command -v mkfs.ext4 >/dev/null; then
  for fs in pm rm; do
    truncate -s 256M "$T/$fs.img" && mkfs.ext4 -q -m 0 "$T/$fs.img" && mount -o loop "$T/$fs.img" "$T/$fs" &&
      e2e_on_exit=("umount -l $T/$fs" "${e2e_on_exit[@]}")
  done
  mountpoint -q "$T/pm" && mountpoint -q "$T/rm" && KINDS+=(disk_primary disk_receiver)
fi
echo "kinds: ${KINDS[*]}"

P=$T/pm/store D=$T/rm/data BOOT=boot-$SEED-0
# Small segments: checkpoints prune the primary's log every few rounds, so
# that power losses meet a log that no longer starts at txid 1 (LMDB comes
# back from its last checkpoint, not from a replay of the whole log).
"$BIN" init "$P" --segment-size 16K >/dev/null
# The stream's consumer position from the start, as a shipper that had
# connected once would have left it (one that never connected records none,
# and the primary would prune what it never shipped); the shipper replaces
# it by its own (ship-s@HOST_PORT) once that is on disk.
mkdir -p "$P/log/consumers" && echo 0 >"$P/log/consumers/ship-s"
declare -A injected=() fired=()
pruned_losses=0
# CI: 30 rounds (about 30 s); 10 in the sanitizer tree, whose processes are slower.
DEFAULT_ROUNDS=30
grep -qs "SL_SANITIZE:BOOL=ON" "$BUILD/CMakeCache.txt" && DEFAULT_ROUNDS=10
ROUNDS=${SL_NEMESIS_ROUNDS:-$DEFAULT_ROUNDS}
[ -n "${SL_NEMESIS_SECONDS:-}" ] && ROUNDS=1000000
END=$((SECONDS + ${SL_NEMESIS_SECONDS:-100000}))

# ---- the processes (fixed ports inside the namespace; else the ones given) ----
port_of() { # port_of FILE PID: waits for a ready file (60 s at most)
  local deadline=$((SECONDS + 60))
  while [ "$SECONDS" -lt "$deadline" ]; do
    [ -s "$1" ] && { cat "$1"; return 0; }
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}
# listening NAME LOG CMD...: start CMD (given --ready-file $T/NAME.port) in the
# background until it listens (a killed one's port may linger); sets PID and PORT.
listening() {
  local name=$1 log=$2 i
  shift 2
  for i in 1 2 3 4 5 6 7 8 9 10; do
    rm -f "$T/$name.port"
    "${INNS[@]}" "$@" --ready-file "$T/$name.port" 2>>"$log" &
    PID=$!
    pids+=("$PID")
    PORT=$(port_of "$T/$name.port" "$PID") && return 0
    kill -9 "$PID" 2>/dev/null # (alive but silent: do not wait on it for ever)
    wait "$PID" 2>/dev/null
    sleep 0.3
  done
  echo "cannot start the $name"
  return 1
}
RXPORT=0 PXPORT=0
start_receiver() {
  listening rx "$T/rx.log" "$BIN" receive --listen "127.0.0.1:$RXPORT" --data "$D" --insecure --allow-root \
    --heartbeat-ms 200 --timeout-ms 1000 --segment-size 256K || return 1
  RX_PID=$PID RXPORT=$PORT
}
start_proxy() { # start_proxy [options]
  listening px "$T/proxy.log" "$PROXY" --listen "127.0.0.1:$PXPORT" --to "127.0.0.1:$RXPORT" "$@" || return 1
  PX_PID=$PID PXPORT=$PORT
}
start_shipper() {
  "${INNS[@]}" "$BIN" ship "$P" --to "127.0.0.1:$PXPORT" --stream s --insecure --heartbeat-ms 200 \
    --timeout-ms 1000 --backoff-max-ms 300 2>>"$T/ship.log" &
  SH_PID=$!
  pids+=("$SH_PID")
}
kill9() { kill -9 "$1" 2>/dev/null; wait "$1" 2>/dev/null; }
start_receiver && start_proxy && start_shipper || exit 1

# ---- the workload and the model ---------------------------------------------------------
: >"$T/acked"
NEXT_SEQ=1
# workload N: N transactions, one node each with a fresh seq, into $T/w
workload() {
  awk -v s="$NEXT_SEQ" -v n="$1" 'BEGIN { for (i = 0; i < n; i++)
    printf "{\"ops\":[{\"op\":\"create_node\",\"labels\":[\"T\"],\"props\":{\"seq\":%d,\"pad\":\"%016d\"}}]}\n", s + i, 0 }' >"$T/w"
  WSEQ=$NEXT_SEQ
  NEXT_SEQ=$((NEXT_SEQ + $1))
}
# run_exec [env...]: exec the workload in the background as EX_PID
run_exec() {
  : >"$T/exec.out" # here: a child killed before its own redirection would leave the last round's
  env SL_TEST_BOOT_ID="$BOOT" "$@" stdbuf -oL "$BIN" exec "$P" "$T/w" --stop-on-error >"$T/exec.out" \
    2>>"$T/exec.log" &
  EX_PID=$!
  pids+=("$EX_PID")
}
# finish_exec: wait for it; the acknowledged seqs join the model
finish_exec() {
  wait "$EX_PID" 2>/dev/null
  EX_RC=$?
  local k
  k=$(grep -c '^node ' "$T/exec.out")
  [ "$k" -gt 0 ] && seq "$WSEQ" $((WSEQ + k - 1)) >>"$T/acked"
}

# ---- the checker -------------------------------------------------------------------------
lost_total=0 dup_total=0 restores=0 checks_failed=0
ARCH=$T/arch
mkdir -p "$ARCH" && ln -sfn "$D/streams/s/archive" "$ARCH/log"
check_round() {
  local r=$1 last nacked lost dup n=0
  # After a failed fsync, transactions LMDB shows may not be durable yet: the
  # next open for writing (with this boot) decides them, as the primary's
  # restart would. Until then the shipper (durable only) cannot ship them.
  env SL_TEST_BOOT_ID="$BOOT" "$BIN" exec "$P" /dev/null 2>>"$T/exec.log" &&
    "$BIN" stats "$P" --json >"$T/stats.json" 2>>"$T/exec.log" || {
    echo "round $r: the primary does not open"; return 1; }
  last=$(jq -r .last_txid "$T/stats.json")
  e2e_wait_applied "$D" s "$last" 90 || { echo "round $r: the standby does not catch up"; return 1; }
  e2e_same_export "$P" "$D/streams/s/standby" || { echo "round $r: the standby differs"; return 1; }
  jq -r 'select(.type == "node") | .properties.seq' "$T/p.json" | LC_ALL=C sort >"$T/seqs" # comm's order
  nacked=$(wc -l <"$T/acked")
  lost=$(LC_ALL=C sort "$T/acked" | LC_ALL=C comm -23 - "$T/seqs" | wc -l)
  dup=$(uniq -d "$T/seqs" | wc -l)
  lost_total=$lost dup_total=$dup
  [ "$lost" -eq 0 ] && [ "$dup" -eq 0 ] || { echo "round $r: $lost acknowledged seqs lost, $dup seqs twice"; return 1; }
  # A restore to a random txid equals the archive's first N records.
  if [ "$last" -gt 0 ]; then
    n=$((1 + RANDOM * 32768 % last + RANDOM % last))
    n=$((n > last ? last : n))
    rm -rf "$T/restored"
    "$BIN" restore --data "$D" --stream s --to-txid "$n" --into "$T/restored" --quiet >/dev/null 2>>"$T/restore.log" || {
      echo "round $r: restore to txid $n failed"; return 1; }
    "$BIN" log "$ARCH" --json 2>/dev/null | head -n "$n" | jq -r '.ops[] | select(.op == "create_node") | .props.seq' |
      sort -n >"$T/want"
    "$BIN" export "$T/restored" --to - | jq -r 'select(.type == "node") | .properties.seq' | sort -n >"$T/got"
    cmp -s "$T/want" "$T/got" || { echo "round $r: restore to txid $n differs from the model"; return 1; }
    restores=$((restores + 1))
  fi
  echo "    round $r: txids 1..$last on both, $nacked acknowledged all present once; restore to txid $n exact"
}

# ---- the nemesis ------------------------------------------------------------------------------
fill() { dd if=/dev/zero of="$1/ballast" bs=256k 2>/dev/null; }
POINTS=(1 2 3 4 5 6 7 8 9 12 13) # the fault points an exec passes
# pick N: 0..N-1 from a 64-bit LCG seeded by SEED. Successive $RANDOMs are
# too correlated modulo small numbers: with them the kind "crash" never met
# a point that every commit passes in a 10-minute soak.
R=$((SEED * 2654435761 + 1))
pick() {
  R=$(((R * 6364136223846793005 + 1442695040888963407) & 0x7fffffffffffffff))
  PICK=$(((R >> 29) % $1))
}
round=0
while [ "$round" -lt "$ROUNDS" ] && [ "$SECONDS" -lt "$END" ]; do
  round=$((round + 1))
  pick ${#KINDS[@]}
  kind=${KINDS[PICK]}
  injected[$kind]=$((${injected[$kind]:-0} + 1))
  workload $((100 + RANDOM % 400))
  case $kind in
  kill_exec) run_exec; sleep "0.$((RANDOM % 4))"; kill -9 "$EX_PID" 2>/dev/null ;;
  kill_shipper) run_exec; sleep "0.$((RANDOM % 4))"; kill9 "$SH_PID"; start_shipper ;;
  kill_receiver) run_exec; sleep "0.$((RANDOM % 4))"; kill9 "$RX_PID"; start_receiver || break ;;
  reset) run_exec; sleep "0.$((RANDOM % 4))"; kill -USR1 "$PX_PID" ;;
  slow) kill9 "$PX_PID"; start_proxy --delay-ms 60 --rate 524288 || break; run_exec ;;
  partition) e2e_cut "$PXPORT"; run_exec; sleep "$((1 + RANDOM % 2)).$((RANDOM % 10))"; e2e_heal ;;
  disk_primary) fill "$T/pm"; run_exec ;;
  disk_receiver) fill "$T/rm"; run_exec; sleep 1 ;;
  crash | tear | eio | enospc)
    pick ${#POINTS[@]}
    p=${POINTS[PICK]}
    case $kind in eio) code=EIO ;; enospc) code=ENOSPC ;; *) code=$kind ;; esac
    pick $((p <= 2 ? 40 : 2)) # every commit passes points 1 and 2, rotations and checkpoints the others
    run_exec SL_FAULTS="$p:$code:$PICK" SL_SEED=$((SEED + round)) ;;
  esac
  finish_exec
  if [ "$EX_RC" -eq 86 ]; then
    BOOT=boot-$SEED-$round # the machine comes back up
    [ -e "$P/log/00000000000000000001.seg" ] || pruned_losses=$((pruned_losses + 1))
  fi
  # Whether the fault fired: a fault point is reached only so often.
  case $kind in
  crash | tear) [ "$EX_RC" -eq 86 ] && fired[$kind]=$((${fired[$kind]:-0} + 1)) ;;
  eio | enospc | disk_primary) [ "$EX_RC" -ne 0 ] && fired[$kind]=$((${fired[$kind]:-0} + 1)) ;;
  *) fired[$kind]=$((${fired[$kind]:-0} + 1)) ;;
  esac
  rm -f "$T/pm/ballast" "$T/rm/ballast"
  if [ "$kind" = slow ]; then kill9 "$PX_PID"; start_proxy || break; fi
  echo "round $round: $kind (exec exit $EX_RC, $(grep -c '^node ' "$T/exec.out") acknowledged)"
  check_round "$round" || { checks_failed=$((checks_failed + 1)); bad "round $round ($kind): checks"; break; }
done

# ---- figures ------------------------------------------------------------------------------------
report() {
  local k total=0
  for k in "${!injected[@]}"; do total=$((total + injected[$k])); done
  echo "| fault | rounds | fired | outcome |"
  echo "| --- | ---: | ---: | --- |"
  for k in $(printf '%s\n' "${!injected[@]}" | sort); do
    echo "| $k | ${injected[$k]} | ${fired[$k]:-0} | healed; standby = primary, nothing lost or doubled |"
  done
  echo
  echo "seed $SEED: $round rounds, $total faults, $(wc -l <"$T/acked") acknowledged transactions," \
    "lost: $lost_total, duplicated: $dup_total, restores checked: $restores, failed rounds: $checks_failed," \
    "power losses with a pruned log: $pruned_losses"
}
report | tee "${SL_NEMESIS_REPORT:-/dev/null}"
[ "$checks_failed" -eq 0 ] && ok "nemesis: $round rounds, every check held" || true
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
