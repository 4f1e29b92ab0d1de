#!/usr/bin/env bash
# A throw-away one-node Ceph cluster serving the S3 API on 127.0.0.1, for the
# object-storage tests, bench/s3 and the README's walkthrough: one monitor,
# one OSD (BlueStore on a sparse file) and radosgw; no manager. Nothing is
# authenticated inside the cluster (auth none) and nothing listens beyond
# loopback; radosgw itself checks S3 signatures against one user.
#
#   scripts/radosgw.sh start   # install the packages (scripts/deps.sh --tests) if
#                              # missing, start (or find running), create the
#                              # user and the bucket, print the environment
#   scripts/radosgw.sh env     # print the environment of the running one
#   scripts/radosgw.sh stop    # kill every daemon of it, remove its folder
#   scripts/radosgw.sh status  # exit 0 when its S3 endpoint answers
#   scripts/radosgw.sh rgw-stop | rgw-start
#                              # kill radosgw alone (SIGKILL) / start it
#                              # again and wait until it answers (fault tests)
#   scripts/radosgw.sh rgw-pause | rgw-resume
#                              # SIGSTOP / SIGCONT radosgw: a server that
#                              # accepts connections and answers nothing
#
# The environment (also in $SL_RGW_DIR/env, for `source`):
#   SL_S3_ENDPOINT=http://127.0.0.1:PORT  SL_S3_BUCKET=shiplog
#   AWS_ACCESS_KEY_ID=...  AWS_SECRET_ACCESS_KEY=...  AWS_DEFAULT_REGION=default
# SL_RGW_DIR (default /var/tmp/shiplog-radosgw: BlueStore wants a real file
# system, not tmpfs), SL_RGW_PORT (7480) and SL_RGW_MON_PORT (6789) move it.
# Facts: ready in about 20 s; about 360 MB of RSS at peak. With auth none,
# radosgw also needs `ms mon client mode = crc secure`, else it retries an
# auth error (-13) for minutes.
set -euo pipefail

DIR=${SL_RGW_DIR:-/var/tmp/shiplog-radosgw}
PORT=${SL_RGW_PORT:-7480}
MON_PORT=${SL_RGW_MON_PORT:-6789}
BUCKET=shiplog
KEY=shiplogtestaccesskey
SECRET=shiplogtestsecretkey0123456789abcdefghij
CONF=$DIR/ceph.conf
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

say() { echo "radosgw.sh: $*" >&2; }

print_env() {
  cat <<EOF
export SL_S3_ENDPOINT=http://127.0.0.1:$PORT
export SL_S3_BUCKET=$BUCKET
export AWS_ACCESS_KEY_ID=$KEY
export AWS_SECRET_ACCESS_KEY=$SECRET
export AWS_DEFAULT_REGION=default
EOF
}

answers() { curl -s -o /dev/null -m 2 "http://127.0.0.1:$PORT/"; }

# pids of the daemons started from this folder's ceph.conf
daemon_pids() {
  local p
  for p in $(pgrep -x ceph-mon; pgrep -x ceph-osd; pgrep -x radosgw); do
    if tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -qF -- "$CONF"; then echo "$p"; fi
  done
}

stop() {
  local pids
  pids=$(daemon_pids)
  if [[ -n $pids ]]; then
    # shellcheck disable=SC2086
    kill -9 $pids 2>/dev/null || true
    for _ in $(seq 50); do
      [[ -z $(daemon_pids) ]] && break
      sleep 0.1
    done
  fi
  rm -rf "$DIR"
}

fail() {
  say "$*"
  for f in "$DIR"/log/*.log; do
    [[ -f $f ]] && { say "--- tail of $f"; tail -n 20 "$f" >&2; }
  done
  stop
  exit 1
}

start() {
  if answers && [[ -f $DIR/env ]]; then
    cat "$DIR/env"
    return 0
  fi
  if ! command -v radosgw >/dev/null || ! command -v ceph-osd >/dev/null || ! command -v ceph-mon >/dev/null ||
    ! command -v ceph >/dev/null; then
    "$ROOT/scripts/deps.sh" --tests >&2
  fi
  stop
  local t0=$SECONDS fsid
  mkdir -p "$DIR"/{mon,osd,rgw,run,log}
  fsid=$(cat /proc/sys/kernel/random/uuid)
  cat >"$CONF" <<EOF
[global]
fsid = $fsid
mon host = 127.0.0.1:$MON_PORT
public addr = 127.0.0.1
auth cluster required = none
auth service required = none
auth client required = none
ms mon client mode = crc secure
ms bind msgr2 = false
run dir = $DIR/run
admin socket = $DIR/run/\$name.asok
log file = $DIR/log/\$name.log
pid file = $DIR/run/\$name.pid
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon max pg per osd = 1000
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0
[mon]
mon data = $DIR/mon/\$cluster-\$id
[osd]
osd data = $DIR/osd/\$cluster-\$id
osd objectstore = bluestore
# placed in the CRUSH map by this script: the OSD's own update at start races
# its first monitor map ("wrong fsid") and then fails its start now and then
osd crush update on start = false
osd class update on start = false
bluestore block create = true
bluestore block size = 4294967296
bluestore cache autotune = false
bluestore cache size = 134217728
osd memory target = 939524096
[client.rgw]
rgw frontends = beast endpoint=127.0.0.1:$PORT
rgw data = $DIR/rgw
EOF
  monmaptool --create --add a "127.0.0.1:$MON_PORT" --fsid "$fsid" "$DIR/monmap" >/dev/null ||
    fail "monmaptool failed"
  ceph-authtool --create-keyring "$DIR/mon.keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
  ceph-mon -c "$CONF" --mkfs -i a --monmap "$DIR/monmap" --keyring "$DIR/mon.keyring" ||
    fail "ceph-mon --mkfs failed"
  ceph-mon -c "$CONF" -i a 2>>"$DIR/log/daemons.err" || fail "ceph-mon did not start"
  local uuid id
  uuid=$(cat /proc/sys/kernel/random/uuid)
  id=$(timeout 60 ceph -c "$CONF" osd new "$uuid") || fail "ceph osd new failed (is the monitor up?)"
  mkdir -p "$DIR/osd/ceph-$id"
  timeout 60 ceph -c "$CONF" osd crush add "osd.$id" 1.0 root=default >/dev/null 2>&1 ||
    fail "ceph osd crush add failed"
  ceph-osd -c "$CONF" -i "$id" --mkfs --osd-uuid "$uuid" >"$DIR/log/osd-mkfs.out" 2>&1 ||
    fail "ceph-osd --mkfs failed: $(tail -3 "$DIR/log/osd-mkfs.out")"
  ceph-osd -c "$CONF" -i "$id" 2>>"$DIR/log/daemons.err" || fail "ceph-osd did not start"
  radosgw -c "$CONF" -n client.rgw 2>>"$DIR/log/daemons.err" || fail "radosgw did not start"
  for _ in $(seq 240); do
    answers && break
    sleep 0.5
  done
  answers || fail "radosgw does not answer on 127.0.0.1:$PORT"
  radosgw-admin -c "$CONF" user create --uid=shiplog --display-name=shiplog \
    --access-key="$KEY" --secret-key="$SECRET" >/dev/null || fail "radosgw-admin user create failed"
  local code
  for _ in $(seq 60); do
    code=$(curl -s -o "$DIR/log/bucket.out" -w '%{http_code}' -X PUT --aws-sigv4 aws:amz:default:s3 -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
      --user "$KEY:$SECRET" "http://127.0.0.1:$PORT/$BUCKET") || code=000
    [[ $code == 200 || $code == 409 ]] && break
    sleep 0.5
  done
  [[ $code == 200 || $code == 409 ]] || fail "cannot create bucket $BUCKET: HTTP $code $(cat "$DIR/log/bucket.out")"
  print_env >"$DIR/env"
  say "ready in $((SECONDS - t0)) s: http://127.0.0.1:$PORT bucket $BUCKET (data in $DIR)"
  cat "$DIR/env"
}

rgw_pid() { daemon_pids | while read -r p; do [[ $(cat "/proc/$p/comm" 2>/dev/null) == radosgw ]] && echo "$p"; done; }

rgw_stop() {
  local p
  p=$(rgw_pid)
  [[ -n $p ]] && kill -9 $p
  for _ in $(seq 50); do
    answers || return 0
    sleep 0.1
  done
  say "radosgw still answers"
  return 1
}

rgw_start() {
  [[ -f $CONF ]] || { say "no cluster in $DIR: use start"; return 1; }
  [[ -z $(rgw_pid) ]] && radosgw -c "$CONF" -n client.rgw 2>>"$DIR/log/daemons.err"
  for _ in $(seq 120); do
    answers && return 0
    sleep 0.25
  done
  say "radosgw does not answer on 127.0.0.1:$PORT"
  return 1
}

case ${1:-} in
rgw-stop) rgw_stop ;;
rgw-pause) kill -STOP $(rgw_pid) ;;
rgw-resume) kill -CONT $(rgw_pid) ;;
rgw-start) rgw_start ;;
start) start ;;
stop) stop ;;
env)
  [[ -f $DIR/env ]] || { say "not running (no $DIR/env)"; exit 1; }
  cat "$DIR/env"
  ;;
status) answers ;;
*)
  echo "usage: $0 start|stop|env|status|rgw-stop|rgw-start|rgw-pause|rgw-resume" >&2
  exit 2
  ;;
esac
