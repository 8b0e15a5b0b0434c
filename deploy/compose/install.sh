#!/usr/bin/env bash
# Builds the Docker Compose v2 CLI plugin (github.com/docker/compose/v5) from Go modules into
#
#   ${CODEBAY_CACHE:-/var/cache/codebay}/compose-<version>/docker-compose
#
# and installs it as a docker CLI plugin (a symlink in ${DOCKER_CONFIG:-~/.docker}/cli-plugins/).
# The last line of stdout is the binary's path; everything else goes to stderr. Idempotent: a
# warm run builds nothing. The version is v5.6.0, not the newer v5.7.x: those import
# github.com/docker/secrets-engine, which the Go module proxy refuses to serve (403 "not
# available"), so they cannot be built from the proxy. A release that needs a newer Go than the
# local one fetches that toolchain as a Go module (golang.org/toolchain) from the proxy. A cold build
# takes a few minutes on 2 cores; the Go module and build caches live under $CODEBAY_CACHE/go
# (shared with test/k8s/build.sh).
#
#   install.sh           build if needed, install the plugin, print the binary
#   install.sh --path    print the binary's path, build nothing
#
# Env: COMPOSE_VERSION (default v5.6.0), CODEBAY_CACHE, GO, DOCKER_CONFIG.
set -euo pipefail

CACHE=${CODEBAY_CACHE:-/var/cache/codebay}
VERSION=${COMPOSE_VERSION:-v5.6.0}
MODULE=github.com/docker/compose/v5
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
DEST=$CACHE/compose-${VERSION#v}
BIN=$DEST/docker-compose

# plugin: links the binary into the docker CLI's plugin folder (docker compose ...).
plugin() {
  local dir=${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins
  mkdir -p "$dir"
  if [[ $(readlink "$dir/docker-compose" 2>/dev/null) != "$BIN" ]]; then
    ln -sfn "$BIN" "$dir/docker-compose"
    echo "install.sh: docker compose plugin -> $BIN ($dir)" >&2
  fi
  echo "$BIN"
}

if [[ ${1:-} == --path ]]; then
  echo "$BIN"
  exit 0
fi
if [[ -x $BIN ]]; then
  plugin
  exit 0
fi

mkdir -p "$CACHE"
# One build at a time (two concurrent runs must not build twice).
exec 9>"$CACHE/.compose-build.lock"
if ! flock -n 9; then
  echo "install.sh: another build is running; waiting for it" >&2
  flock 9
fi
if [[ -x $BIN ]]; then
  plugin
  exit 0
fi

[[ -x $GO ]] || {
  echo "install.sh: no go toolchain ($GO)" >&2
  exit 1
}
# The module says which Go it needs; a newer toolchain comes from the module proxy.
export GOPATH="$CACHE/go" GOMODCACHE="$CACHE/go/pkg/mod" GOCACHE="$CACHE/go/cache" \
  CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false" GOTOOLCHAIN=local
# (`go mod download` fetches go.mod even when it then refuses the local Go: that error is expected.)
gomod=$("$GO" mod download -json "$MODULE@$VERSION" 2>/dev/null | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p' || true)
[[ -f $gomod ]] || {
  echo "install.sh: cannot download $MODULE@$VERSION's go.mod (Go module proxy: $("$GO" env GOPROXY))" >&2
  exit 1
}
need=$(awk '$1 == "go" { print $2; exit }' "$gomod")
have=$("$GO" env GOVERSION)
have=${have#go}
if [[ -n $need && $(printf '%s\n%s\n' "$need" "$have" | sort -V | head -n 1) != "$need" ]]; then
  echo "install.sh: $MODULE@$VERSION needs go $need (local go $have): using toolchain go$need" >&2
  export GOTOOLCHAIN=go$need
fi

tmp=$(mktemp -d "$CACHE/.compose-${VERSION#v}.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
chmod 755 "$tmp"
start=$SECONDS
echo "install.sh: building $MODULE@$VERSION -> $DEST" >&2
# Built as the main module, as released (its go.mod has exclude directives, which
# `go install pkg@version` refuses): from the module cache's read-only copy, with its go.sum.
src=$("$GO" mod download -json "$MODULE@$VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[[ -d $src/cmd ]] || {
  echo "install.sh: no $MODULE@$VERSION source in the module cache ($src)" >&2
  exit 1
}
(cd "$src" && nice -n 10 "$GO" build -p 2 -trimpath \
  -ldflags "-s -w -X $MODULE/internal.Version=$VERSION" -o "$tmp/docker-compose" ./cmd >&2)
"$tmp/docker-compose" version >&2
# Atomic: the folder appears complete or not at all (rename(2) on one filesystem).
rm -rf "$DEST"
mv -T "$tmp" "$DEST"
trap - EXIT
echo "install.sh: built in $((SECONDS - start))s" >&2
plugin
