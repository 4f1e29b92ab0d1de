#!/usr/bin/env bash
# The systemd units of dist/systemd (README "Operations"):
#   1. `systemd-analyze verify` accepts every unit (an instance of each
#      template), with no diagnostic at all, ExecStart pointing at the
#      built binary;
#   2. the units keep what the issue asks for: Type=notify for the two
#      services, restart on failure, a dedicated user, ProtectSystem=strict,
#      ReadWritePaths=, NoNewPrivileges=yes, the dump timer's schedule;
#   3. `cmake --install` puts the units (ExecStart at the install prefix),
#      the sysusers.d and tmpfiles.d files in place.
# Skips (77) when systemd-analyze is missing or cannot run here (some
# containers), saying why.
set -u

SRC=${SL_SOURCE:?SL_SOURCE must name the source tree}
BIN=${SL_BIN:?SL_BIN must name the shiplog binary}
BUILD=${SL_BUILD:-$(dirname "$BIN")}
T=${SL_TEST_TMP:-/tmp/shiplog-test}/e2e_systemd.$$
rm -rf "$T" && mkdir -p "$T" || exit 1
trap 'rm -rf "$T"' EXIT

command -v systemd-analyze >/dev/null || { echo "skip: systemd-analyze is not installed (apt-get install systemd)"; exit 77; }

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok   $1"; }
bad() { failed=$((failed + 1)); echo "FAIL $1"; }

# The units with ExecStart at the built binary, one instance per template.
U=$T/units
mkdir -p "$U"
for f in "$SRC"/dist/systemd/*.in; do
  sed "s#@SHIPLOG_BIN@#$BIN#g" "$f" >"$U/$(basename "$f" .in)"
done
cp "$SRC"/dist/systemd/*.timer "$U/"
ln -s shiplog-ship@.service "$U/shiplog-ship@main.service"
ln -s shiplog-dump@.service "$U/shiplog-dump@main.service"
ln -s shiplog-serve@.service "$U/shiplog-serve@main.service"
ln -s shiplog-dump@.timer "$U/shiplog-dump@main.timer"
units=(shiplog-receive.service shiplog-ship@main.service shiplog-serve@main.service shiplog-dump@main.service
  shiplog-dump@main.timer)

# Can it run here at all? A unit known to be good must verify cleanly.
cat >"$U/probe.service" <<EOF
[Service]
ExecStart=$BIN --help
EOF
if ! (cd "$U" && systemd-analyze verify --man=no ./probe.service) >"$T/probe.out" 2>&1; then
  echo "skip: systemd-analyze verify cannot run here:"
  sed 's/^/    /' "$T/probe.out" | head -5
  exit 77
fi

(cd "$U" && systemd-analyze verify --man=no "${units[@]/#/./}") >"$T/verify.out" 2>&1
rc=$?
if [ "$rc" -eq 0 ] && ! grep -q . "$T/verify.out"; then
  ok "systemd-analyze verify: ${units[*]}"
else
  bad "systemd-analyze verify (exit $rc)"
  sed 's/^/    /' "$T/verify.out" | head -20
fi

# A broken unit is caught (the check above is not vacuous).
sed 's/^Type=notify/Type=notif/' "$U/shiplog-receive.service" >"$U/broken.service"
(cd "$U" && systemd-analyze verify --man=no ./broken.service) >"$T/broken.out" 2>&1
if grep -q "Type\|type" "$T/broken.out"; then ok "a bad Type= is reported"; else bad "a bad Type= went unnoticed"; fi

has() { # has UNIT LINE
  if grep -qxF -- "$2" "$U/$1"; then ok "$1: $2"; else bad "$1 lacks '$2'"; fi
}
for u in shiplog-receive.service shiplog-ship@.service shiplog-serve@.service; do
  has "$u" "Type=notify"
  has "$u" "Restart=on-failure"
  has "$u" "User=shiplog"
  has "$u" "ProtectSystem=strict"
  has "$u" "NoNewPrivileges=yes"
done
has shiplog-receive.service "ReadWritePaths=/var/lib/shiplog/receiver"
has shiplog-ship@.service "ReadWritePaths=/var/lib/shiplog/stores/%i"
has shiplog-serve@.service "ReadWritePaths=/var/lib/shiplog/stores/%i"
has shiplog-dump@.service "User=shiplog"
has shiplog-dump@.service "ProtectSystem=strict"
has shiplog-dump@.timer "OnCalendar=daily"

# The install target.
if cmake --install "$BUILD" --prefix "$T/inst" >"$T/install.out" 2>&1; then
  missing=0
  for f in lib/systemd/system/shiplog-receive.service lib/systemd/system/shiplog-ship@.service \
    lib/systemd/system/shiplog-serve@.service lib/systemd/system/shiplog-dump@.service lib/systemd/system/shiplog-dump@.timer \
    lib/sysusers.d/shiplog.conf lib/tmpfiles.d/shiplog.conf bin/shiplog; do
    [ -f "$T/inst/$f" ] || { missing=1; echo "    missing $f"; }
  done
  if [ "$missing" -eq 0 ] && grep -q '^ExecStart=/.*/shiplog receive ' "$T/inst/lib/systemd/system/shiplog-receive.service" &&
    ! grep -q '@SHIPLOG_BIN@' "$T"/inst/lib/systemd/system/*; then
    ok "cmake --install: units, sysusers.d, tmpfiles.d"
  else
    bad "cmake --install: files missing or ExecStart not configured"
  fi
else
  bad "cmake --install failed"
  sed 's/^/    /' "$T/install.out" | tail -5
fi

echo "e2e_systemd: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
