# The harness shared by the end-to-end scripts that start shiplog processes
# (sourced, not run): what a script needs (e2e_need: else skip), a scratch
# directory, a printed and replayable seed, pass/fail counters, and a
# cleanup that SIGKILLs every process whose PID the script appended to pids
# and keeps $T when something failed; then the checks scripts share
# (expect, contains), file helpers (flip, size), start_receiver and, for
# Bolt, start_serve.

# e2e_need [-c COMMAND] [-g] [TOOL...]: skip (exit 77) unless $SL_BIN runs
# (and has COMMAND), with -g unless bench_gen is built, and unless every
# TOOL is installed. Sets BIN, BUILD ($SL_BUILD), GEN (bench_gen), SRC
# ($SL_SOURCE) and ROOT (--allow-root when root, for the receiver).
e2e_need() {
  BIN=${SL_BIN:?SL_BIN must name the shiplog binary}
  BUILD=${SL_BUILD:-$(dirname "$BIN")}
  GEN=$BUILD/bench_gen
  SRC=${SL_SOURCE:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
  ROOT=()
  [ "$(id -u)" -eq 0 ] && ROOT=(--allow-root)
  [ -x "$BIN" ] || { echo "skip: $BIN is not executable"; exit 77; }
  local o OPTIND=1 t
  while getopts c:g o; do
    case $o in
    c) "$BIN" "$OPTARG" --help >/dev/null 2>&1 || { echo "skip: $BIN has no $OPTARG command"; exit 77; } ;;
    g) [ -x "$GEN" ] || { echo "skip: no bench_gen at $GEN"; exit 77; } ;;
    *) exit 2 ;;
    esac
  done
  shift $((OPTIND - 1))
  for t in "$@"; do command -v "$t" >/dev/null || { echo "skip: $t is not installed"; exit 77; }; done
}

# e2e_begin NAME: $T (scratch, fresh), $SEED (SL_SEED=N replays a run),
# RANDOM seeded from it, counters, and the EXIT trap.
e2e_begin() {
  T=${SL_TEST_TMP:-/tmp/shiplog-test}/$1.$$
  rm -rf "$T" && mkdir -p "$T" || exit 1
  SEED=${SL_SEED:-$(($(date +%s) % 100000))}
  RANDOM=$SEED
  echo "seed $SEED (rerun with SL_SEED=$SEED)"
  passed=0
  failed=0
  skipped=0
  pids=()
  e2e_on_exit=()
  trap e2e_cleanup EXIT
}

e2e_cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
  wait 2>/dev/null
  local c
  for c in "${e2e_on_exit[@]}"; do $c 2>/dev/null; done
  if [ "$failed" -eq 0 ]; then rm -rf "$T"; else echo "kept $T for inspection"; fi
}

ok() { passed=$((passed + 1)); echo "ok   $1"; }
bad() { failed=$((failed + 1)); echo "FAIL $1"; }
skip() { skipped=$((skipped + 1)); echo "skip $1"; }
check() { # check DESCRIPTION CMD...: CMD's exit status decides
  local desc=$1
  shift
  if "$@"; then ok "$desc"; else bad "$desc"; fi
}
jqe() { jq -e "$@" >/dev/null; }

# expect STATUS DESCRIPTION CMD...: CMD (60 s at most) must exit STATUS;
# its stdout goes to $T/out, its stderr to $T/err (shown on failure).
expect() {
  local want=$1 desc=$2
  shift 2
  timeout 60 "$@" >"$T/out" 2>"$T/err"
  local got=$?
  if [ "$got" -eq "$want" ]; then ok "$desc"; else
    bad "$desc (exit $got, want $want)"
    sed 's/^/    err: /' "$T/err" | head -5
  fi
}
# contains FILE TEXT DESCRIPTION: FILE holds TEXT (a fixed string).
contains() {
  if grep -qF -- "$2" "$1"; then ok "$3"; else
    bad "$3: '$2' not in $1"
    sed 's/^/    | /' "$1" | tail -5
  fi
}
# flip FILE OFFSET [MASK]: change one byte (xor MASK, default 0x55) in place.
flip() {
  local b
  b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
  # shellcheck disable=SC2059
  printf "$(printf '\\%03o' $(((b ^ ${3:-0x55}) & 0xff)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}
size() { stat -c %s "$1"; }

# start_receiver [-p PORT] DATA ARGS...: `shiplog receive` on 127.0.0.1:PORT
# (default 0: a free one) with ARGS (TLS or --insecure, ...) and ROOT;
# RX_TIMEOUT_MS (default 2000) is its --timeout-ms. Sets RX_PID (added to
# pids) and RX_PORT; its stderr goes to $T/rx.log. Returns 1 if it does not
# listen within 60 s; a fixed PORT is tried 10 times (a killed receiver's
# socket may linger).
start_receiver() {
  local port=0 tries=1 pf="$T/port.$RANDOM" data try p deadline
  if [ "$1" = -p ]; then port=$2 tries=10; shift 2; fi
  data=$1
  shift
  for ((try = 1; try <= tries; try++)); do
    [ "$try" -gt 1 ] && { kill -9 "$RX_PID" 2>/dev/null; wait "$RX_PID" 2>/dev/null; sleep 0.3; }
    rm -f "$pf"
    "$BIN" receive --listen "127.0.0.1:$port" --data "$data" --ready-file "$pf" --heartbeat-ms 200 \
      --timeout-ms "${RX_TIMEOUT_MS:-2000}" --verbose "${ROOT[@]}" "$@" 2>>"$T/rx.log" &
    RX_PID=$!
    pids+=("$RX_PID")
    deadline=$((SECONDS + 60))
    while [ "$SECONDS" -lt "$deadline" ]; do
      p=$(cat "$pf" 2>/dev/null)
      if [[ $p =~ ^[0-9]+$ ]]; then RX_PORT=$p; return 0; fi
      kill -0 "$RX_PID" 2>/dev/null || break
      sleep 0.05
    done
  done
  echo "    cannot start a receiver on port $port:"; tail -3 "$T/rx.log" | sed 's/^/    /'
  return 1
}

# ---- a primary, its workload and its standby (the fault scripts) ------------------------
# Need $BIN, $GEN (bench_gen), $SEED and $T.
# e2e_gen FILE N CHUNK [OPS]: N random transactions (OPS operations each,
# default 1-6) whose ids do not meet other chunks'.
e2e_gen() { "$GEN" --tx "$2" --ops-per-tx "${4:-1-6}" --seed $((SEED + $3)) --id-base $(($3 * 10000000 + 1)) >"$1"; }
e2e_last_txid() { "$BIN" stats "$1" --json | jq -r .last_txid; }
# e2e_rx_json DATA STREAM FIELD [DEFAULT]: the receiver's status of STREAM,
# one field (DEFAULT, a jq value, or nothing where it has none).
e2e_rx_json() { "$BIN" status --data "$1" --stream "$2" --json 2>/dev/null | jq -r ".streams[0].$3 // ${4:-empty}"; }
# e2e_wait_status DATA STREAM FIELD VALUE SECONDS: until the receiver's
# status of STREAM says FIELD = VALUE; e2e_wait_applied, until it applied TXID.
e2e_wait_status() {
  local deadline=$((SECONDS + $5)) a
  while :; do
    a=$(e2e_rx_json "$1" "$2" "$3")
    [ "$a" = "$4" ] && return 0
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "    stream $2 of $1: $3 ${a:-none}, want $4"
      "$BIN" status --data "$1" --stream "$2" | sed 's/^/    /'
      return 1
    fi
    sleep 0.1
  done
}
# e2e_until SECONDS CMD...: poll CMD until it succeeds; 1 when SECONDS pass
# first. For waits on a loaded machine: give generous SECONDS (the wait
# ends as soon as CMD holds), and never assert on how long it took.
e2e_until() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    [ "$SECONDS" -ge "$deadline" ] && return 1
    sleep 0.1
  done
}
e2e_wait_applied() { e2e_wait_status "$1" "$2" applied "$3" "$4"; } # DATA STREAM TXID SECONDS
# e2e_times DATA STREAM: $T/times.tsv, "txid commit_us" of every record in
# the receiver's archive of STREAM; commit_of TXID and txid_at TIME_US look
# it up; line_of TIME_US: the workload line of a commit time, with lines
# TS0 + (i-1)*STEP apart (bench_gen --ts-start TS0 --ts-step STEP).
e2e_times() {
  mkdir -p "$T/arch" && ln -sfn "$1/streams/$2/archive" "$T/arch/log"
  "$BIN" log "$T/arch" --json | jq -r '[.txid, .commit_time_us] | @tsv' >"$T/times.tsv"
}
commit_of() { awk -v t="$1" '$1 == t { print $2 }' "$T/times.tsv"; }
txid_at() { awk -v u="$1" '$2 <= u { n = $1 } END { print n + 0 }' "$T/times.tsv"; }
line_of() { echo $((($1 - TS0) / STEP + 1)); }
# e2e_model_at TXID: the model store $M (the workload $W applied with
# `shiplog exec`, its first $model_lines lines so far) moved on to TXID's
# commit (a line that changes nothing gets no txid: lines go by time).
e2e_model_at() {
  local want=0
  [ "$1" -gt 0 ] && want=$(line_of "$(commit_of "$1")")
  if [ "$want" -gt "$model_lines" ]; then
    sed -n "$((model_lines + 1)),${want}p" "$W" | "$BIN" exec "$M" - >/dev/null
    model_lines=$want
  fi
}
# e2e_to_time US: restore's --to-time for a commit time (@SECONDS.MICROS)
e2e_to_time() { printf '@%d.%06d' $(($1 / 1000000)) $(($1 % 1000000)); }
# e2e_same_export STORE STANDBY: the canonical exports are byte-equal.
e2e_same_export() {
  "$BIN" export "$1" --to "$T/p.json" && "$BIN" export "$2" --to "$T/s.json" || return 1
  cmp -s "$T/p.json" "$T/s.json" && return 0
  echo "    exports differ:"
  diff "$T/p.json" "$T/s.json" | head -5 | cut -c1-150 | sed 's/^/    /'
  return 1
}
# e2e_netns: a fresh network namespace $NS with its loopback up (root only;
# removed at exit); e2e_in_ns CMD... runs CMD in it (in the background, use
# `nsenter --net=/run/netns/$NS CMD &`, whose $! is CMD's pid). Returns 1
# where namespaces do not work, the reason in $NETNS_WHY. Entered with
# `nsenter --net`, not `ip netns exec`, which also remounts / as a slave
# and so fails in a chroot, where / is no mount point ("mount
# --make-rslave /" failed: Invalid argument).
e2e_netns() {
  local mounted=1 err
  mountpoint -q /run/netns 2>/dev/null || mounted=0
  NS=sl$$x$RANDOM
  if ! err=$(ip netns add "$NS" 2>&1); then
    NETNS_WHY="ip netns add: ${err:-failed}"
    return 1
  fi
  e2e_on_exit+=("ip netns del $NS")
  # `ip netns add` bind-mounts /run/netns on itself; leave no mount behind
  # that was not there (it would pin a chroot the tests ran in).
  [ "$mounted" -eq 1 ] || e2e_on_exit+=(e2e_netns_unmount)
  if ! err=$(e2e_in_ns ip link set lo up 2>&1); then
    NETNS_WHY="nsenter --net: ${err:-failed}"
    return 1
  fi
}
e2e_in_ns() { nsenter --net="/run/netns/$NS" "$@"; }
e2e_netns_unmount() { [ -n "$(ls -A /run/netns 2>/dev/null)" ] || umount /run/netns; }
# e2e_cut PORT / e2e_heal: silently drop every packet to or from PORT
# inside $NS (no RST: the peers must notice by themselves).
e2e_cut() {
  e2e_in_ns nft -f - <<NFT
table inet slcut {
  chain in { type filter hook input priority 0; tcp dport $1 drop; tcp sport $1 drop; }
}
NFT
}
e2e_heal() { e2e_in_ns nft delete table inet slcut 2>/dev/null; }

# bolt_driver_install: Neo4j's JavaScript driver as tests/bolt-driver's
# package-lock.json pins it, installed once into the build tree
# (tests/npm-pinned.sh); exports NODE_PATH, and sets LOCK to the folder of
# the driver scripts. Exits 77 (skip) when npm or the
# registry is not there, 1 when the install fails otherwise.
bolt_driver_install() {
  LOCK=$SRC/tests/bolt-driver
  NPM_DIR=$BUILD/npm-bolt-driver
  SRC=$SRC "$SRC/tests/npm-pinned.sh" "$LOCK" "$NPM_DIR" neo4j-driver || exit $?
  export NODE_PATH=$NPM_DIR/node_modules
  echo "driver: neo4j-driver $(jq -r .version "$NPM_DIR/node_modules/neo4j-driver/package.json"), node $(node --version)"
}

# ---- Bolt: `shiplog serve` (tests/e2e_bolt*.sh) ----------------------------------------
# start_serve NAME STORE ARGS...: `shiplog serve` on a free port; sets
# SERVE_PID (added to pids) and PORT; its stderr in $T/NAME.log
start_serve() {
  local name=$1 store=$2
  shift 2
  rm -f "$T/$name.port"
  "$BIN" serve "$store" --listen 127.0.0.1:0 --ready-file "$T/$name.port" "$@" 2>"$T/$name.log" &
  SERVE_PID=$!
  pids+=("$SERVE_PID")
  e2e_until 30 test -s "$T/$name.port" || { bad "$name: serve did not start"; tail -5 "$T/$name.log"; return 1; }
  PORT=$(cat "$T/$name.port")
}
# stop_serve NAME: SIGTERM; it must exit 0 (under ASan: no leak, no report)
stop_serve() {
  kill -TERM "$SERVE_PID"
  if wait "$SERVE_PID"; then ok "$1: SIGTERM stops serve, exit 0"; else
    bad "$1: serve exited $? on SIGTERM"
    grep -m5 -E 'Sanitizer|runtime error' "$T/$1.log"
  fi
}

# free_port: a port free now (for a --bolt HOST:PORT that must be known before it listens)
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
