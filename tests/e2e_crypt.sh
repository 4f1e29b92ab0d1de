#!/usr/bin/env bash
# End-to-end test of at-rest encryption (README "Security", "At-rest
# encryption") with real processes on 127.0.0.1, over TLS:
#   1. key files: one readable by others, a bad line (named FILE:LINE):
#      refused before anything starts.
#   2. encrypted shipping: the standby equals the primary's export; a
#      property string written on the primary appears in no byte of the
#      archive, the snapshots or a dump (but in the primary's own log).
#   3. an archive-only receiver without the key: stores ciphertext, acks
#      durable, says "archive-only: ... key A ..." in status; restore from it
#      with the key equals the primary, without it is refused naming key A.
#   4. rotation: a key file "B ..., A ..." reads files sealed with A; new
#      dumps are sealed with B; a wrong key (same id, other bytes) is
#      refused with "authentication failed".
#   5. a flipped byte in an archive segment, a snapshot and a dump: each
#      refused naming the file; on a live receiver the damaged stream stops
#      its standby naming the segment while a second stream goes on; a
#      stream sealed with other key bytes under the receiver's key id stops
#      its standby naming segment, offset, txid and key, nothing applied;
#      one sealed with a key the receiver lacks is archive-only.
#   6. a shipper without a key into a receiver with one: the receiver seals
#      what arrives in clear before it archives it (no byte of the archive
#      holds the test string), its standby applies the plaintext; restore
#      with the key equals the primary, without it is refused naming key A.
#   7. compression before sealing (store/log.h SEALED FRAMES, compressed):
#      an encrypted stream of bench_gen data (large transactions) is
#      archived in fewer bytes than the primary's log holds, in segments flagged SL_SEG_F_SEALED_LZ4 (0x5),
#      holding no plaintext; restore and check --data with the key read it;
#      an archive written before compression (tests/data/sealed-v1, by the
#      shiplog of then) still restores to its primary's state, and continued
#      by this shiplog (new segments flagged 0x5 after the old 0x1 ones)
#      restores whole.
# Needs $SL_BIN, bench_gen, openssl, jq.
set -u

. "$(dirname "$0")/lib_e2e.sh"
e2e_need -g openssl jq
e2e_begin e2e_crypt
SECRET=TOPSECRET-7f3a9c
mutations() { # mutations N FIRST_ID: N transactions creating a node each
  local i
  for ((i = 0; i < $1; i++)); do
    printf '{"ops":[{"op":"create_node","id":%d,"labels":["N"],"props":{"k":%d,"s":"%s-%0100d"}}]}\n' \
      $(($2 + i)) "$i" "$SECRET" "$i"
  done
}
no_secret() { # no_secret DESCRIPTION PATH...: no byte of any file holds $SECRET
  grep -rqaF -- "$SECRET" "${@:2}"
  case $? in
  1) ok "$1" ;;
  0) bad "$1"; grep -rlaF -- "$SECRET" "${@:2}" | sed 's/^/    in: /' ;;
  *) bad "$1 (grep failed)" ;;
  esac
}
PKI=$T/pki
bash "$SRC/tests/make_certs.sh" "$PKI" p1 p2 || { bad "make certificates"; exit 1; }
TLS_RX=(--tls-cert "$PKI/receiver.crt" --tls-key "$PKI/receiver.key" --tls-ca "$PKI/ca.crt")
tls_of() { echo --tls-cert "$PKI/$1.crt" --tls-key "$PKI/$1.key" --tls-ca "$PKI/ca.crt"; }
keyfile() { # keyfile FILE LINE...: a key file of mode 0600
  (umask 077 && printf '%s\n' "${@:2}" >"$1")
}
KA=$(openssl rand -hex 32) KB=$(openssl rand -hex 32) KX=$(openssl rand -hex 32)
keyfile "$T/a.keys" "# at-rest key" "A $KA"
keyfile "$T/ba.keys" "B $KB" "A $KA"
keyfile "$T/wrong.keys" "A $KX"
keyfile "$T/c.keys" "C $KX"

stop_receiver() { kill "$RX_PID" 2>/dev/null; wait "$RX_PID" 2>/dev/null; }
# ---- 1. key files ------------------------------------------------------------------------------
"$BIN" init "$T/p1" >/dev/null && "$BIN" init "$T/p2" >/dev/null
mutations 600 1 | "$BIN" exec "$T/p1" - >/dev/null
mutations 50 1 | "$BIN" exec "$T/p2" - >/dev/null
N1=$(e2e_last_txid "$T/p1")
cp "$T/a.keys" "$T/open.keys" && chmod 0644 "$T/open.keys"
expect 1 "1: a key file readable by others is refused" \
  "$BIN" dump "$T/p1" --to "$T/x.dump" --key-file "$T/open.keys"
contains "$T/err" "$T/open.keys: permissions 0644 are too open" "1: ...saying so (as ssh does)"
check "1: ...writing nothing" [ ! -e "$T/x.dump" ]
keyfile "$T/badline.keys" "A $KA" "B 12345"
expect 1 "1: a bad line is refused" "$BIN" dump "$T/p1" --to "$T/x.dump" --key-file "$T/badline.keys"
contains "$T/err" "$T/badline.keys:2: the key is not 64 hex digits" "1: ...naming FILE:LINE"
if grep -qF "$KA" "$T/err"; then bad "1: the key is never printed"; else ok "1: the key is never printed"; fi
SHIPLOG_KEY_FILE=$T/open.keys expect 1 "1: SHIPLOG_KEY_FILE is read like --key-file" \
  "$BIN" dump "$T/p1" --to "$T/x.dump"

# ---- 2. encrypted shipping -------------------------------------------------------------------------
R1=$T/r1
start_receiver "$R1" "${TLS_RX[@]}" --key-file "$T/a.keys" --segment-size 64K || exit 1
ship() { # ship STORE STREAM CERT ARGS...
  timeout 60 "$BIN" ship "$1" --to "127.0.0.1:$RX_PORT" --stream "$2" $(tls_of "$3") --exit-when-caught-up \
    "${@:4}" 2>>"$T/ship.log"
}
check "2: an encrypted stream ships (TLS, --key-file)" ship "$T/p1" s1 p1 --key-file "$T/a.keys"
check "2: ...and is applied on the standby" e2e_wait_status "$R1" s1 applied "$N1" 120
check "2: the standby equals the primary" e2e_same_export "$T/p1" "$R1/streams/s1/standby"
check "2: the archive has several segments" [ "$(ls "$R1/streams/s1/archive/"*.seg | wc -l)" -ge 2 ]
if grep -rqaF -- "$SECRET" "$T/p1/log"; then ok "2: (the primary's own log holds the string in clear)"
else bad "2: the test string is not in the primary's log"; fi
no_secret "2: no byte of the receiver's archive holds it" "$R1/streams/s1/archive"
check "2: a snapshot of the stream" "$BIN" snapshot --data "$R1" --stream s1 --key-file "$T/a.keys" --quiet
SNAP=$(ls "$R1/streams/s1/snapshots/"*.snap 2>/dev/null | tail -1)
no_secret "2: no byte of the snapshot holds it" "$R1/streams/s1/snapshots"
SHIPLOG_KEY_FILE= "$BIN" info --data "$R1" --stream s1 --json >"$T/info.json" 2>"$T/info.err"
check "2: info without the key lists the sealed snapshot, with its key id" \
  jqe '.streams[0].snapshots | map(select(.key_id == "A")) | length >= 1' "$T/info.json"
check "2: ...without an error" [ ! -s "$T/info.err" ]
check "2: an encrypted dump" "$BIN" dump "$T/p1" --to "$T/p1.dump" --key-file "$T/a.keys" --quiet
no_secret "2: no byte of the dump holds it" "$T/p1.dump"
check "2: the dump's header names key A" [ "$(dd if="$T/p1.dump" bs=1 skip=80 count=1 status=none)" = A ]

# ---- 3. an archive-only receiver ---------------------------------------------------------------------
R2=$T/r2
RX1_PID=$RX_PID RX1_PORT=$RX_PORT
start_receiver "$R2" "${TLS_RX[@]}" || exit 1
check "3: an encrypted stream ships to a receiver without the key" ship "$T/p1" s1 p1 --key-file "$T/a.keys"
check "3: ...which acks it durable" e2e_wait_status "$R2" s1 durable "$N1" 120
check "3: ...and is archive-only" e2e_wait_status "$R2" s1 state archive-only 120
"$BIN" status --data "$R2" >"$T/status" 2>&1
contains "$T/status" "archive-only: frames sealed with key A, not in the key file" "3: status says so, naming the key"
contains "$T/rx.log" "archive-only: frames sealed with key A" "3: ...and so does the log"
# (not the standby: its LMDB file is sparse and as large as its map size)
no_secret "3: the archive-only receiver's archive holds only ciphertext" "$R2/streams/s1/archive"
expect 0 "3: restore from it with the key" \
  "$BIN" restore --data "$R2" --stream s1 --to-txid "$N1" --into "$T/rest2" --key-file "$T/a.keys" --quiet
check "3: ...equals the primary" e2e_same_export "$T/p1" "$T/rest2"
expect 1 "3: restore without the key is refused" \
  "$BIN" restore --data "$R2" --stream s1 --to-txid "$N1" --into "$T/rest2b" --quiet
contains "$T/err" "is sealed with key A: give the key file" "3: ...naming the key id"
check "3: ...leaving nothing behind" [ ! -e "$T/rest2b" ]
stop_receiver
start_receiver "$R2" "${TLS_RX[@]}" --key-file "$T/a.keys" || exit 1
check "3: restarted with the key, its standby catches up" e2e_wait_status "$R2" s1 applied "$N1" 120
check "3: ...and equals the primary" e2e_same_export "$T/p1" "$R2/streams/s1/standby"
stop_receiver

# ---- 4. rotation and a wrong key -------------------------------------------------------------------------
RX_PID=$RX1_PID RX_PORT=$RX1_PORT
expect 0 "4: a key file 'B, A' restores what A sealed" \
  "$BIN" restore --data "$R1" --stream s1 --to-txid "$N1" --into "$T/rest1" --key-file "$T/ba.keys" --quiet
check "4: ...equal to the primary" e2e_same_export "$T/p1" "$T/rest1"
expect 0 "4: ...and loads A's dump" "$BIN" load "$T/p1.dump" --into "$T/load1" --key-file "$T/ba.keys" --quiet
check "4: ...equal to the primary" e2e_same_export "$T/p1" "$T/load1"
check "4: a new dump is sealed with B" "$BIN" dump "$T/p1" --to "$T/p1b.dump" --key-file "$T/ba.keys" --quiet
check "4: ...its header names key B" [ "$(dd if="$T/p1b.dump" bs=1 skip=80 count=1 status=none)" = B ]
expect 1 "4: a key file without A is refused" "$BIN" load "$T/p1.dump" --into "$T/load2" --key-file "$T/c.keys"
contains "$T/err" "sealed with key A, which is not in the key file $T/c.keys" "4: ...naming key A"
expect 1 "4: a wrong key (same id, other bytes) is refused" \
  "$BIN" load "$T/p1.dump" --into "$T/load2" --key-file "$T/wrong.keys"
contains "$T/err" "authentication failed" "4: ...as an authentication failure"
check "4: ...leaving nothing behind" [ ! -e "$T/load2" ]
expect 1 "4: a wrong key is refused by restore" \
  "$BIN" restore --data "$R1" --stream s1 --to-txid "$N1" --into "$T/rest3" --key-file "$T/wrong.keys" --quiet
contains "$T/err" "authentication failed" "4: ...as an authentication failure"

# ---- 5. flipped bytes ------------------------------------------------------------------------------------------
cp "$T/p1.dump" "$T/flip.dump" && flip "$T/flip.dump" $(($(size "$T/flip.dump") / 2))
expect 1 "5: a dump with a flipped byte is refused" \
  "$BIN" load "$T/flip.dump" --into "$T/load3" --key-file "$T/a.keys"
contains "$T/err" "$T/flip.dump: offset" "5: ...naming the file and offset"
if [ -n "$SNAP" ]; then
  cp -r "$R1" "$T/r1copy"
  CSNAP=$T/r1copy/streams/s1/snapshots/$(basename "$SNAP")
  flip "$CSNAP" $(($(size "$CSNAP") / 2))
  expect 0 "5: a sealed snapshot with a flipped byte gives way to an older base" \
    "$BIN" restore --data "$T/r1copy" --stream s1 --to-txid "$N1" --into "$T/rest4" --key-file "$T/a.keys"
  contains "$T/err" "$CSNAP" "5: ...naming the snapshot"
  contains "$T/err" "restoring from" "5: ...and the base used instead"
else
  bad "5: no snapshot was taken"
fi
SEG1=$R1/streams/s1/archive/00000000000000000001.seg
# A second stream on the same receiver: s2 from p2 with key A.
check "5: a second stream ships" ship "$T/p2" s2 p2 --key-file "$T/a.keys"
check "5: ...and applies" e2e_wait_status "$R1" s2 applied "$(e2e_last_txid "$T/p2")" 120
# Damage s1's oldest segment and rebuild its standby from the archive: the
# replay meets the flipped byte and stops, naming the segment.
stop_receiver
rm -rf "$R1/streams/s1/standby" "$R1/streams/s1/snapshots/"*.snap
flip "$SEG1" 4000
start_receiver "$R1" "${TLS_RX[@]}" --key-file "$T/a.keys" --segment-size 64K || exit 1
check "5: s1's standby stops at the damaged frame" e2e_wait_status "$R1" s1 state stopped 120
"$BIN" status --data "$R1" --stream s1 >"$T/status" 2>&1
contains "$T/status" "standby stopped at txid" "5: ...saying so in status"
contains "$T/rx.log" "$SEG1: bad frame at offset" "5: ...and naming the segment and offset in the log"
mutations 30 1000 | "$BIN" exec "$T/p2" - >/dev/null
check "5: the second stream goes on" ship "$T/p2" s2 p2 --key-file "$T/a.keys"
check "5: ...and applies" e2e_wait_status "$R1" s2 applied "$(e2e_last_txid "$T/p2")" 120
check "5: ...its standby equals its primary" e2e_same_export "$T/p2" "$R1/streams/s2/standby"
# The wrong key bytes under the receiver's key id: archived, but nothing
# opens; the standby stops naming segment, offset, txid and key.
check "5: a stream sealed with another key under id A ships" ship "$T/p2" s4 p2 --key-file "$T/wrong.keys"
check "5: ...its standby stops" e2e_wait_status "$R1" s4 state stopped 120
"$BIN" status --data "$R1" --stream s4 >"$T/status" 2>&1
contains "$T/status" "00000000000000000001.seg offset 128: sealed frame (key A) does not open: authentication failed" \
  "5: ...naming segment, offset and key in status"
contains "$T/rx.log" "standby stopped at txid 1" "5: ...and the txid in the log"
check "5: ...nothing of it applied" [ "$(e2e_rx_json "$R1" s4 applied 0)" = 0 ]
# A stream sealed with a key the receiver lacks is archive-only, beside s2.
check "5: a stream sealed with key C ships to it" ship "$T/p2" s3 p2 --key-file "$T/c.keys"
check "5: ...and is archive-only there" e2e_wait_status "$R1" s3 state archive-only 120
stop_receiver

# ---- 6. sealed by the receiver ---------------------------------------------------------------------------------
R3=$T/r3
start_receiver "$R3" "${TLS_RX[@]}" --key-file "$T/a.keys" --segment-size 64K || exit 1
check "6: a stream ships without a key to a receiver with one" ship "$T/p1" s6 p1
check "6: ...and is applied on the standby" e2e_wait_status "$R3" s6 applied "$N1" 20
check "6: ...which equals the primary" e2e_same_export "$T/p1" "$R3/streams/s6/standby"
no_secret "6: no byte of the archive holds the test string (sealed by the receiver)" "$R3/streams/s6/archive"
# The rolling checksum runs over the plaintext frame CRCs wherever a frame
# is sealed: the shipper's next session (its Hello and batches carry its own
# checksums) is judged the same history, not diverged.
mutations 20 5000 | "$BIN" exec "$T/p1" - >/dev/null
N1=$(e2e_last_txid "$T/p1")
check "6: the shipper's next session continues the stream (same lineage)" ship "$T/p1" s6 p1
check "6: ...and is applied" e2e_wait_status "$R3" s6 applied "$N1" 20
if grep -q "diverged" "$T/rx.log"; then bad "6: ...nothing judged diverged"; else ok "6: ...nothing judged diverged"; fi
stop_receiver
expect 0 "6: restore with the key" \
  "$BIN" restore --data "$R3" --stream s6 --to-txid "$N1" --into "$T/rest6" --key-file "$T/a.keys" --quiet
check "6: ...equals the primary" e2e_same_export "$T/p1" "$T/rest6"
expect 1 "6: restore without the key is refused" \
  "$BIN" restore --data "$R3" --stream s6 --to-txid "$N1" --into "$T/rest6b" --quiet
contains "$T/err" "is sealed with key A: give the key file" "6: ...naming the key id"
check "6: ...leaving nothing behind" [ ! -e "$T/rest6b" ]

# ---- 7. compression before sealing ---------------------------------------------------------------------------
seg_bytes() { cat "$1"/*.seg | wc -c; } # seg_bytes DIR: bytes of its log segments
# Transactions of 20-40 ops (~1.3 KB): LZ4 finds their repeated labels and
# keys within each frame (a frame is compressed alone; transactions of a few
# ops barely shrink, and sealing adds ~60 bytes to each).
"$GEN" --tx 800 --ops-per-tx 20-40 --seed "$SEED" >"$T/w7.jsonl"
"$BIN" init "$T/p7" >/dev/null && "$BIN" exec "$T/p7" "$T/w7.jsonl" >/dev/null
N7=$(e2e_last_txid "$T/p7")
R7=$T/r7
start_receiver "$R7" "${TLS_RX[@]}" --key-file "$T/a.keys" --segment-size 256K || exit 1
check "7: an encrypted stream of bench_gen data ships" ship "$T/p7" s7 p1 --key-file "$T/a.keys"
check "7: ...and is applied on the standby" e2e_wait_status "$R7" s7 applied "$N7" 120
check "7: ...which equals the primary" e2e_same_export "$T/p7" "$R7/streams/s7/standby"
stop_receiver
LOG7=$(seg_bytes "$T/p7/log") ARCH7=$(seg_bytes "$R7/streams/s7/archive")
echo "    primary's log $LOG7 bytes, encrypted archive $ARCH7 bytes ($((ARCH7 * 100 / LOG7))%)"
check "7: the encrypted archive is smaller than the log it holds" [ "$ARCH7" -lt "$LOG7" ]
flags7=$(for f in "$R7/streams/s7/archive/"*.seg; do od -An -tu4 -j12 -N4 "$f"; done | sort -u | tr -d ' ')
check "7: ...in segments flagged sealed + compressed frames (0x5)" [ "$flags7" = 5 ]
no_secret "7: ...holding no plaintext" "$R7/streams/s7/archive"
if ! grep -qF -- '"Person"' "$T/w7.jsonl"; then bad "7: the workload has label Person"
elif grep -rqaF -- 'Person' "$R7/streams/s7/archive"; then bad "7: the workload's label Person is in the archive"
else ok "7: the workload's label Person is in no byte of the archive"; fi
expect 0 "7: restore with the key" \
  "$BIN" restore --data "$R7" --stream s7 --to-txid "$N7" --into "$T/rest7" --key-file "$T/a.keys" --quiet
check "7: ...equals the primary" e2e_same_export "$T/p7" "$T/rest7"
expect 0 "7: check --data opens every frame" "$BIN" check --data "$R7" --stream s7 --key-file "$T/a.keys"
# An archive of the older sealed form (frames sealed as they are, flags 0x1).
cp -r "$SRC/tests/data/sealed-v1" "$T/old" && chmod 600 "$T/old/old.keys"
"$BIN" init "$T/p_old" >/dev/null && "$BIN" exec "$T/p_old" "$T/old/mutations.jsonl" >/dev/null
expect 0 "7: an archive sealed before compression restores" \
  "$BIN" restore --data "$T/old" --stream old --to-txid 59 --into "$T/rest_old" --key-file "$T/old/old.keys" --quiet
check "7: ...equal to its primary's state" e2e_same_export "$T/p_old" "$T/rest_old"
expect 0 "7: ...and check --data opens it" "$BIN" check --data "$T/old" --stream old --key-file "$T/old/old.keys"
# Upgraded: the restored store (same store id and log) goes on committing
# and ships its continuation to this shiplog's receiver over the old
# archive: the compressed frames start a flagged segment after the old ones.
"$GEN" --tx 100 --ops-per-tx 20-40 --seed "$SEED" --id-base 1000000 >"$T/w_up.jsonl"
"$BIN" exec "$T/rest_old" "$T/w_up.jsonl" >/dev/null
N_UP=$(e2e_last_txid "$T/rest_old")
start_receiver "$T/old" "${TLS_RX[@]}" --key-file "$T/old/old.keys" --segment-size 4K || exit 1
check "7: the old archive's stream continues from a store restored from it" \
  ship "$T/rest_old" old p1 --key-file "$T/old/old.keys"
check "7: ...and is applied" e2e_wait_status "$T/old" old applied "$N_UP" 120
stop_receiver
flags_up=$(for f in "$T/old/streams/old/archive/"*.seg; do od -An -tu4 -j12 -N4 "$f"; done | tr -s ' \n' ' ')
check "7: ...old segments keep flags 0x1, new ones have 0x5" \
  bash -c '[[ "$1" =~ ^\ (1\ ){3}(5\ )+$ ]]' _ "$flags_up"
expect 0 "7: the mixed archive restores" \
  "$BIN" restore --data "$T/old" --stream old --to-txid "$N_UP" --into "$T/rest_up" --key-file "$T/old/old.keys" --quiet
check "7: ...equal to the store it was shipped from" e2e_same_export "$T/rest_old" "$T/rest_up"

echo "passed $passed, failed $failed"
[ "$failed" -eq 0 ]
