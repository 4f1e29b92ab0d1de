#!/usr/bin/env bash
# npm-pinned.sh LOCKDIR NPM_DIR PKG: installs the npm packages that
# LOCKDIR/package-lock.json pins into NPM_DIR (npm ci), once: a later call
# with the same lock file does nothing. Tests that run in parallel share
# NPM_DIR, so the install holds NPM_DIR.lock (two `npm ci` in one folder
# fail with ENOTEMPTY).
# Exit 0: PKG is installed; 77 (skip), with a "skip: ..." line: npm is
# missing or the registry cannot be reached; 1: any other failure.
LOCK=$1 NPM_DIR=$2 PKG=$3
mkdir -p "$NPM_DIR" || exit 1
exec 9>"$NPM_DIR.lock"
flock 9 || exit 1
[ -f "$NPM_DIR/node_modules/$PKG/package.json" ] && cmp -s "$LOCK/package-lock.json" "$NPM_DIR/installed-lock.json" && exit 0
command -v npm >/dev/null || { echo "skip: npm is not installed, so $PKG cannot be installed (scripts/deps.sh --tests installs npm)"; exit 77; }
echo "installing $PKG as pinned by ${LOCK#"${SRC:-}"/}/package-lock.json into $NPM_DIR (npm ci)"
rm -f "$NPM_DIR/installed-lock.json"
cp "$LOCK/package.json" "$LOCK/package-lock.json" "$NPM_DIR/" || exit 1
log=$NPM_DIR/npm.log
if ! (cd "$NPM_DIR" && timeout 600 npm ci --cache "$NPM_DIR/cache" --no-audit --no-fund --loglevel=error) >"$log" 2>&1; then
  # one line, for scripts/test.sh's summary: npm's error code and reason
  why=$(grep -m1 -E '^npm (ERR!|error) (request|network|code) ' "$log" || grep -m1 -E '^npm (ERR!|error) ' "$log")
  why=$(sed -E 's/^npm (ERR!|error) //' <<<"$why")
  case $why in
  *CERT* | *certificate*) why="$why (this system does not trust the certificate its connection to the registry presents)" ;;
  esac
  if grep -q -E 'ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|EHOSTUNREACH|CERT|certificate|request to https?://' "$log"; then
    echo "skip: npm ci could not install $PKG from the npm registry: ${why:-$(tail -1 "$log")}"
    sed 's/^/    /' "$log" | tail -5
    exit 77
  fi
  echo "FAIL npm ci of $PKG into $NPM_DIR: ${why:-$(tail -1 "$log")}"
  sed 's/^/    /' "$log" | tail -5
  exit 1
fi
[ -f "$NPM_DIR/node_modules/$PKG/package.json" ] || { echo "FAIL npm ci left no $NPM_DIR/node_modules/$PKG"; exit 1; }
cp "$LOCK/package-lock.json" "$NPM_DIR/installed-lock.json"
