#!/usr/bin/env bash
# Makes a test PKI with the openssl command, the way README "Security" shows:
#   tests/make_certs.sh DIR [CLIENT...]
# DIR/ca.{crt,key}              the CA
# DIR/receiver.{crt,key}        CN=receiver, DNS:localhost, IP:127.0.0.1 (serverAuth)
# DIR/CLIENT.{crt,key}          CN=CLIENT, DNS:CLIENT.shippers.test (clientAuth), per CLIENT
# DIR/rogue-ca.{crt,key}, DIR/rogue.{crt,key}
#                               a CA nobody trusts and a client it signed (CN=rogue)
# Keys are EC P-256 and mode 0600. Quiet unless openssl fails.
set -euo pipefail
D=${1:?usage: make_certs.sh DIR [CLIENT...]}
shift
mkdir -p "$D"
cd "$D"
umask 077
ossl() { openssl "$@" 2>/dev/null || { echo "make_certs: openssl $1 failed" >&2; openssl "$@"; }; }

ca() { # ca NAME SUBJECT
  ossl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
    -subj "$2" -keyout "$1.key" -out "$1.crt"
}
# cert NAME CA SUBJECT EXTENSIONS
cert() {
  ossl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "$3" \
    -keyout "$1.key" -out "$1.csr"
  printf '%s\n' "$4" >"$1.ext"
  ossl x509 -req -in "$1.csr" -CA "$2.crt" -CAkey "$2.key" -CAcreateserial -days 825 \
    -extfile "$1.ext" -out "$1.crt"
  rm -f "$1.csr" "$1.ext"
}

ca ca "/CN=shiplog test CA"
cert receiver ca "/CN=receiver" \
  "subjectAltName=DNS:localhost,IP:127.0.0.1
extendedKeyUsage=serverAuth"
for c in "$@"; do
  cert "$c" ca "/CN=$c" \
    "subjectAltName=DNS:$c.shippers.test
extendedKeyUsage=clientAuth"
done
ca rogue-ca "/CN=rogue CA"
cert rogue rogue-ca "/CN=rogue" \
  "subjectAltName=DNS:rogue.shippers.test
extendedKeyUsage=clientAuth"
rm -f ./*.srl
