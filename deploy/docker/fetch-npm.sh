#!/bin/sh
# fetch-npm URL INTEGRITY DIR: downloads an npm package tarball, checks it against its npm
# integrity (sha512-<base64>), and unpacks it into DIR. A CA for a TLS-intercepting proxy may
# be given as the build secret `build-ca` (/run/secrets/build-ca); it is added to the system
# bundle for this download only.
set -eu
url=$1 integrity=$2 dir=$3
case $integrity in sha512-*) ;; *) echo "fetch-npm: $url: integrity must be sha512-<base64>, got '$integrity'" >&2; exit 1 ;; esac
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cacert=/etc/ssl/certs/ca-certificates.crt
if [ -s /run/secrets/build-ca ]; then
  cat /etc/ssl/certs/ca-certificates.crt /run/secrets/build-ca >"$tmp/ca.pem"
  cacert=$tmp/ca.pem
fi
curl -fsSL --retry 3 --cacert "$cacert" -o "$tmp/pkg.tgz" "$url" || { echo "fetch-npm: download of $url failed" >&2; exit 1; }
want=$(printf '%s' "${integrity#sha512-}" | base64 -d | od -An -v -tx1 | tr -d ' \n')
got=$(sha512sum "$tmp/pkg.tgz" | cut -d' ' -f1)
if [ "$want" != "$got" ]; then
  echo "fetch-npm: $url does not match its integrity $integrity" >&2
  exit 1
fi
mkdir -p "$dir"
tar -xzf "$tmp/pkg.tgz" -C "$dir" --strip-components=1 --no-same-owner
