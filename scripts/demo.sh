#!/usr/bin/env bash
# The shiplog demonstration (the README's first quick-start command).
#
# Installs what is missing, builds, then shows the store end to end in a demo
# directory that is made anew on every run (./demo-data, or $SL_DEMO_DIR):
#   1. dependencies and build (scripts/deps.sh --demo: openssl, nodejs and npm besides what
#      building needs; scripts/build.sh)
#   2. an empty store (shiplog init)
#   3. the LDBC SNB example graph replayed as its own history: every creation
#      and deletion from 2010 to 2013 as a transaction at its original time
#      (scripts/ldbc-to-mutations.sh, shiplog exec)
#   4. a random graph workload on top of it (bench_gen, shiplog exec)
#   5. shiplog stats
#   6. the transaction log: its first and last records, and a time filter
#   7. shiplog verify: every frame checked, state equal to a replay of the log
#   8. the canonical export
#   9. shipping and point-in-time restore: a CA and certificates made with the
#      openssl command in the demo directory, a TLS receiver on 127.0.0.1
#      (port 0, --ready-file) with an allow list, the store shipped to it over
#      TLS 1.3 with a client certificate, status until the standby has
#      caught up, a snapshot, then the store restored to a moment of the LDBC
#      history and its stats; the processes are stopped by their PIDs.
#      At-rest encryption is on throughout: a key file (openssl rand -hex 32,
#      mode 0600) makes the shipper seal every frame, the receiver open them
#      for its standby and seal its snapshots, and the dump of step 10 sealed
#      Cypher queries (shiplog query) on the LDBC graph, on the primary and on
#      the standby (read-only while the receiver holds it). Then, when node and
#      npm are there and Neo4j's JavaScript driver installs as
#      tests/bolt-driver pins it (else one "skipped: ..." line): the primary
#      served over Bolt (shiplog serve), the standby too (receive --bolt),
#      both with TLS, and examples/bolt_routing.js writes a node through
#      neo4j:// routing on the primary and reads it back from the standby
#      with the write's bookmark.
#  10. an encrypted backup file: dump --key-file, shown to hold no plaintext,
#      and loaded back with the key
# Each step is a function; it stops at the first failure with a non-zero
# exit status and says which step failed.
set -Eeuo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

BUILD=${SL_BUILD_DIR:-build}
DEMO=${SL_DEMO_DIR:-demo-data}
SHIPLOG=$BUILD/shiplog
STORE=$DEMO/store
current_step=startup

step() {
  current_step=$*
  printf '\n=== %s ===\n' "$*"
}
# Echo a command, then run it (output redirections are the caller's: echo those by hand).
run() {
  printf '$ %s\n' "$*"
  "$@"
}
trap 'echo; echo "demo: FAILED in step: $current_step" >&2' ERR
# Background processes (step 9) are stopped by PID however the demo ends.
bg_pids=()
stop_bg() {
  local p
  for p in "${bg_pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${bg_pids[@]}"; do wait "$p" 2>/dev/null || true; done
  bg_pids=()
}
trap stop_bg EXIT

# The LDBC sample: the repository's copy, else the shared data beside it.
find_ldbc() {
  local d
  for d in data/ldbc-snb-example-graph ../shared/data/ldbc-snb-example-graph; do
    if [[ -d $d/dynamic && -d $d/static ]]; then
      LDBC=$d
      return
    fi
  done
  echo "demo: the LDBC SNB example graph is missing: looked in data/ldbc-snb-example-graph" >&2
  echo "demo: and ../shared/data/ldbc-snb-example-graph (each needs static/ and dynamic/)" >&2
  return 1
}

step_build() {
  step "1. dependencies and build"
  scripts/deps.sh --demo
  scripts/build.sh
}

step_init() {
  step "2. a new store in $STORE"
  rm -rf "$DEMO"
  mkdir -p "$DEMO"
  run "$SHIPLOG" init "$STORE"
}

step_ldbc() {
  step "3. the LDBC SNB example graph, replayed in time order"
  find_ldbc
  echo "\$ scripts/ldbc-to-mutations.sh $LDBC > $DEMO/ldbc.jsonl"
  scripts/ldbc-to-mutations.sh "$LDBC" >"$DEMO/ldbc.jsonl"
  echo "$(grep -vc '^//' "$DEMO/ldbc.jsonl") transactions from $LDBC; the first and last:"
  grep -v '^//' "$DEMO/ldbc.jsonl" | sed -n '1p;$p' | cut -c1-200
  run "$SHIPLOG" exec "$STORE" "$DEMO/ldbc.jsonl"
  echo "the graph as it stood at the end of the LDBC history: $(counts)"
}

# "N nodes, M relationships, last txid T" from shiplog stats --json.
counts() {
  "$SHIPLOG" stats "$STORE" --json |
    sed -E 's/.*"nodes":([0-9]+),"relationships":([0-9]+),"last_txid":([0-9]+).*/\1 nodes, \2 relationships, last txid \3/'
}

step_random() {
  step "4. a random graph workload on top (bench_gen)"
  # Ids from 10^6 up: the LDBC nodes are at KIND * 10^12 + id and its
  # relationships at 1..100, so nothing collides.
  local gen=("$BUILD/bench_gen" --tx 3000 --ops-per-tx 1-8 --seed 42 --nodes-first 200 --id-base 1000000)
  echo "\$ ${gen[*]} > $DEMO/random.jsonl"
  "${gen[@]}" >"$DEMO/random.jsonl"
  echo "$(wc -l <"$DEMO/random.jsonl") transactions, $(wc -c <"$DEMO/random.jsonl") bytes; the first:"
  head -1 "$DEMO/random.jsonl" | cut -c1-200
  local t0 t1
  t0=$(date +%s%N)
  run "$SHIPLOG" exec "$STORE" "$DEMO/random.jsonl"
  t1=$(date +%s%N)
  echo "applied in $(((t1 - t0) / 1000000)) ms, every transaction durable (fdatasync'd) before the next"
}

step_stats() {
  step "5. stats"
  run "$SHIPLOG" stats "$STORE"
}

step_log() {
  step "6. the transaction log"
  "$SHIPLOG" log "$STORE" >"$DEMO/log.txt"
  echo "\$ $SHIPLOG log $STORE   ($(wc -l <"$DEMO/log.txt") lines; first and last 4)"
  head -4 "$DEMO/log.txt" | cut -c1-200
  echo "..."
  tail -4 "$DEMO/log.txt" | cut -c1-200
  echo
  "$SHIPLOG" log "$STORE" --since 2012-07-01T00:00:00Z >"$DEMO/log-since.txt"
  echo "\$ $SHIPLOG log $STORE --since 2012-07-01T00:00:00Z   (first 4: the LDBC deletions of 2012-2013)"
  head -4 "$DEMO/log-since.txt" | cut -c1-200
  echo
  "$SHIPLOG" log "$STORE" --from-txid 1 --json >"$DEMO/log.jsonl"
  echo "\$ $SHIPLOG log $STORE --from-txid 1 --json   (first record)"
  head -1 "$DEMO/log.jsonl" | cut -c1-300
}

step_verify() {
  step "7. verify"
  run "$SHIPLOG" verify "$STORE"
}

step_export() {
  step "8. canonical export"
  run "$SHIPLOG" export "$STORE" --to "$DEMO/export.jsonl"
  echo "$(wc -l <"$DEMO/export.jsonl") lines (nodes by id, then relationships); a Person and a KNOWS:"
  grep -m1 '"labels":\["Person"\],"properties":{"birthday"' "$DEMO/export.jsonl" | cut -c1-300 || true
  grep -m1 '"label":"KNOWS"' "$DEMO/export.jsonl" | cut -c1-300 || true
}

# A CA, the receiver's certificate (localhost) and the primary's (CN demo-primary),
# as README "Security" makes them; keys 0600.
make_certs() {
  local d=$1 ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
  mkdir -p "$d"
  (
    umask 077
    cd "$d"
    openssl req -x509 -new "${ec[@]}" -days 30 -subj "/CN=shiplog demo CA" -keyout ca.key -out ca.crt
    openssl req -new "${ec[@]}" -subj "/CN=localhost" -keyout receiver.key -out receiver.csr
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >receiver.ext
    openssl x509 -req -in receiver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 \
      -extfile receiver.ext -out receiver.crt
    openssl req -new "${ec[@]}" -subj "/CN=demo-primary" -keyout primary.key -out primary.csr
    # a client for shipping, a server for Bolt (step 9's shiplog serve)
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=clientAuth,serverAuth\n' >primary.ext
    openssl x509 -req -in primary.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 \
      -extfile primary.ext -out primary.crt
  ) 2>/dev/null
}

# A few Cypher queries on the LDBC graph of STORE (README "Queries (Cypher)").
cypher_queries() {
  run "$SHIPLOG" query "$1" --format table \
    "MATCH (p:Person) RETURN count(p) AS persons, count(DISTINCT p.browserUsed) AS browsers"
  run "$SHIPLOG" query "$1" --format table "MATCH (p:Person)-[:KNOWS]-(f:Person)
    RETURN p.firstName + ' ' + p.lastName AS person, count(DISTINCT f) AS friends ORDER BY friends DESC, person LIMIT 3"
  run "$SHIPLOG" query "$1" --format jsonl "MATCH (t:Tag)<-[:HAS_TAG]-(m) RETURN t.name AS tag, count(m) AS uses
    ORDER BY uses DESC, tag LIMIT 3"
}

# Neo4j's JavaScript driver as tests/bolt-driver pins it, installed once
# into the build tree (tests/npm-pinned.sh, as the tests do): sets
# BOLT_NODE_PATH, or BOLT_SKIP to why the driver step is left out.
bolt_driver_ready() {
  local out
  BOLT_SKIP=
  command -v node >/dev/null || { BOLT_SKIP="node is not installed"; return; }
  command -v npm >/dev/null || { BOLT_SKIP="npm is not installed"; return; }
  if ! out=$(SRC=$PWD tests/npm-pinned.sh tests/bolt-driver "$BUILD/npm-bolt-driver" neo4j-driver 2>&1); then
    BOLT_SKIP=$(grep -m1 -E '^(skip|FAIL)' <<<"$out" | sed -E 's/^(skip|FAIL):? //')
    BOLT_SKIP=${BOLT_SKIP:-the pinned neo4j-driver did not install}
    return
  fi
  BOLT_NODE_PATH=$(cd "$BUILD/npm-bolt-driver/node_modules" && pwd)
}

# The primary over Bolt (shiplog serve, TLS with its certificate, the stream's
# name as database) beside the receiver's --bolt, and the driver on both.
bolt_driver_demo() {
  local pki=$1 port i standby=
  echo
  echo "Neo4j's JavaScript driver on the primary and the standby (neo4j:// routing, a bookmark):"
  echo "\$ $SHIPLOG serve $STORE --listen 127.0.0.1:0 --no-auth --database demo --tls-cert $pki/primary.crt" \
    "--tls-key $pki/primary.key --ready-file $DEMO/serve.port &"
  "$SHIPLOG" serve "$STORE" --listen 127.0.0.1:0 --no-auth --database demo --tls-cert "$pki/primary.crt" \
    --tls-key "$pki/primary.key" --ready-file "$DEMO/serve.port" 2>"$DEMO/serve.log" &
  bg_pids+=($!)
  for i in $(seq 100); do
    port=$(cat "$DEMO/serve.port" 2>/dev/null || true)
    [[ $port =~ ^[0-9]+$ ]] && break
    sleep 0.1
  done
  [[ $port =~ ^[0-9]+$ ]] || { echo "demo: shiplog serve did not start (see $DEMO/serve.log)" >&2; return 1; }
  # the primary names as readers the standbys its shipper reports (receive --bolt)
  for i in $(seq 100); do
    standby=$(sed -n 's/^bolt=//p' "$STORE/ship/demo.status" 2>/dev/null || true)
    [[ -n $standby ]] && break
    sleep 0.1
  done
  [[ -n $standby ]] || { echo "demo: the shipper did not learn the standby's Bolt address" >&2; return 1; }
  echo "the primary serves Bolt on 127.0.0.1:$port; its shipper learned the standby's: $standby ($STORE/ship/demo.status)"
  # (--no-deprecation: node warns that the driver names an IP address as the TLS server name)
  run env NODE_PATH="$BOLT_NODE_PATH" node --no-deprecation examples/bolt_routing.js "127.0.0.1:$port" demo "$pki/ca.crt"
}

step_ship_restore() {
  step "9. shipping over TLS and point-in-time restore"
  local data=$DEMO/receiver port_file=$DEMO/receiver.port port last applied i root=()
  local pki=$DEMO/pki
  echo "a CA and certificates with openssl (README \"Security\") in $pki:"
  make_certs "$pki"
  ls "$pki"
  printf '# stream  certificate identities\ndemo  demo-primary\n' >"$DEMO/allow"
  echo "allow list $DEMO/allow: stream demo may be written by certificate demo-primary only"
  local rx_tls=(--tls-cert "$pki/receiver.crt" --tls-key "$pki/receiver.key" --tls-ca "$pki/ca.crt"
    --allow "$DEMO/allow")
  local sh_tls=(--tls-cert "$pki/primary.crt" --tls-key "$pki/primary.key" --tls-ca "$pki/ca.crt")
  # At-rest encryption (README "Security"): one AES-256 key, id demo1, mode 0600.
  KEYS=$DEMO/keys
  (umask 077 && printf '# KEY_ID HEX: the first key seals new files\ndemo1 %s\n' "$(openssl rand -hex 32)" >"$KEYS")
  echo "an at-rest key file $KEYS (mode $(stat -c %a "$KEYS")): \"demo1 <64 hex digits>\""
  rx_tls+=(--key-file "$KEYS")
  sh_tls+=(--key-file "$KEYS")
  [[ $(id -u) -eq 0 ]] && root=(--allow-root) # the receiver refuses root unless told
  bolt_driver_ready
  # with the driver: the standby over Bolt too (TLS with the receiver's certificate)
  if [[ -z $BOLT_SKIP ]]; then rx_tls+=(--bolt 127.0.0.1:0 --bolt-no-auth); fi
  echo "\$ $SHIPLOG receive --listen 127.0.0.1:0 --data $data --ready-file $port_file ${rx_tls[*]} ${root[*]} &"
  "$SHIPLOG" receive --listen 127.0.0.1:0 --data "$data" --ready-file "$port_file" "${rx_tls[@]}" "${root[@]}" \
    2>"$DEMO/receiver.log" &
  bg_pids+=($!)
  for i in $(seq 100); do
    port=$(cat "$port_file" 2>/dev/null || true)
    [[ $port =~ ^[0-9]+$ ]] && break
    sleep 0.1
  done
  [[ $port =~ ^[0-9]+$ ]] || { echo "demo: the receiver did not start (see $DEMO/receiver.log)" >&2; return 1; }
  echo "\$ $SHIPLOG ship $STORE --to 127.0.0.1:$port --stream demo ${sh_tls[*]} &"
  "$SHIPLOG" ship "$STORE" --to "127.0.0.1:$port" --stream demo "${sh_tls[@]}" 2>"$DEMO/ship.log" &
  bg_pids+=($!)
  last=$("$SHIPLOG" stats "$STORE" --json | sed -E 's/.*"last_txid":([0-9]+).*/\1/')
  for i in $(seq 300); do
    # (no stream yet until the shipper's first session: not a failure)
    applied=$("$SHIPLOG" status --data "$data" --stream demo --json 2>/dev/null |
      sed -nE 's/.*"applied":([0-9]+).*/\1/p' || true)
    [[ ${applied:-0} == "$last" ]] && break
    sleep 0.1
  done
  [[ ${applied:-0} == "$last" ]] || { echo "demo: the standby did not catch up (applied ${applied:-0} of $last)" >&2; return 1; }
  echo "the standby applied every transaction (txid $last):"
  run "$SHIPLOG" status --data "$data"
  echo "Cypher on the primary, then the same queries on the standby (read-only, while the receiver applies):"
  cypher_queries "$STORE"
  cypher_queries "$data/streams/demo/standby"
  if [[ -z $BOLT_SKIP ]]; then
    bolt_driver_demo "$pki"
  else
    echo
    echo "skipped: Neo4j's JavaScript driver on the primary and the standby ($BOLT_SKIP)"
  fi
  echo "the archive holds sealed frames: a Person's name from the LDBC data is in the primary's log"
  echo "but in no byte of the receiver's archive:"
  local name
  name=$(grep -m1 -o '"firstName":"[A-Za-z]*"' "$DEMO/export.jsonl" | cut -d'"' -f4)
  echo "  '$name' in $STORE/log: $(grep -rlaF "$name" "$STORE/log" | wc -l) files; in $data/streams/demo/archive:" \
    "$(grep -rlaF "$name" "$data/streams/demo/archive" | wc -l || true) files"
  run "$SHIPLOG" snapshot --data "$data" --stream demo --key-file "$KEYS"
  echo
  echo "the store as it stood on 2012-07-01 (the LDBC history), rebuilt from the receiver's archive:"
  run "$SHIPLOG" restore --data "$data" --stream demo --to-time 2012-07-01T00:00:00Z --into "$DEMO/restored" \
    --key-file "$KEYS"
  run "$SHIPLOG" stats "$DEMO/restored"
  stop_bg
}

step_encrypted_dump() {
  step "10. an encrypted backup file"
  run "$SHIPLOG" dump "$STORE" --to "$DEMO/store.dump" --key-file "$KEYS"
  echo "its header names key $(dd if="$DEMO/store.dump" bs=1 skip=80 count=32 status=none | tr -d '\0');" \
    "the body is AES-256-GCM ciphertext"
  run "$SHIPLOG" load "$DEMO/store.dump" --into "$DEMO/loaded" --key-file "$KEYS"
  echo "\$ $SHIPLOG load $DEMO/store.dump --into $DEMO/loaded2   (without the key: refused)"
  if "$SHIPLOG" load "$DEMO/store.dump" --into "$DEMO/loaded2" 2>&1; then return 1; fi
}

# Failover (README "Failover"), self-contained: its own small primary and a
# plain-TCP receiver. The primary dies with a transaction nobody archived;
# the standby is promoted; the old primary is refused, then rewound.
step_failover() {
  step "11. failover: promote the standby, refuse and rewind the old primary"
  local fo=$DEMO/failover port i root=()
  rm -rf "$fo" && mkdir -p -m 700 "$fo/rx"
  [[ $(id -u) -eq 0 ]] && root=(--allow-root)
  fo_receiver() {
    rm -f "$fo/port"
    "$SHIPLOG" receive --listen 127.0.0.1:0 --data "$fo/rx" --ready-file "$fo/port" --insecure "${root[@]}" \
      2>>"$fo/receiver.log" &
    bg_pids+=($!)
    for i in $(seq 100); do
      port=$(cat "$fo/port" 2>/dev/null || true)
      [[ $port =~ ^[0-9]+$ ]] && return 0
      sleep 0.1
    done
    echo "demo: the receiver did not start (see $fo/receiver.log)" >&2
    return 1
  }
  node() { printf '{"ops":[{"op":"create_node","id":%d,"labels":["%s"],"props":{}}]}\n' "$1" "$2"; }
  run "$SHIPLOG" init "$fo/primary" >/dev/null
  for i in $(seq 20); do node "$i" Before; done | "$SHIPLOG" exec "$fo/primary" - >/dev/null
  fo_receiver
  run "$SHIPLOG" ship "$fo/primary" --to "127.0.0.1:$port" --stream demo --insecure --exit-when-caught-up 2>/dev/null
  stop_bg
  echo "the primary commits txid 21, which nobody archives, and dies"
  node 21 Lost | "$SHIPLOG" exec "$fo/primary" - >/dev/null
  run "$SHIPLOG" promote --data "$fo/rx" --stream demo --into "$fo/new"
  echo "writes go on at the new primary (txid 21 of epoch 1):"
  node 22 After | "$SHIPLOG" exec "$fo/new" - >/dev/null
  run "$SHIPLOG" log "$fo/new" --from-txid 21
  fo_receiver
  run "$SHIPLOG" ship "$fo/new" --to "127.0.0.1:$port" --stream demo --insecure --exit-when-caught-up 2>/dev/null
  echo "the old primary comes back and is refused (exit 1):"
  printf '$ %s\n' "$SHIPLOG ship $fo/primary --to 127.0.0.1:$port --stream demo --insecure"
  if "$SHIPLOG" ship "$fo/primary" --to "127.0.0.1:$port" --stream demo --insecure 2>"$fo/refused"; then
    echo "demo: the old primary was not refused" >&2
    return 1
  fi
  grep -o 'diverged: .*' "$fo/refused" | cut -c1-200
  run "$SHIPLOG" log "$fo/primary" --diverged --data "$fo/rx" --stream demo
  stop_bg
  run "$SHIPLOG" rewind "$fo/primary" --to-txid 20
}

step_build
step_init
step_ldbc
step_random
step_stats
step_log
step_verify
step_export
step_ship_restore
step_encrypted_dump
step_failover
current_step=done
echo
echo "demo: all steps passed; the store and its files are in $DEMO/"
