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
# (shared with test/k8s/build.sh; the build steps are deploy/lib/go-build.sh).
#
#   install.sh           build if needed, install the plugin, print the binary
#   install.sh --path    print the binary's path, build nothing
#
# Env: COMPOSE_VERSION (default v5.6.0), CODEBAY_CACHE, GO, DOCKER_CONFIG.
set -euo pipefail

# shellcheck source=SCRIPTDIR/../lib/go-build.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/go-build.sh"
go_build_init install.sh
VERSION=${COMPOSE_VERSION:-v5.6.0}
MODULE=github.com/docker/compose/v5
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
built() { [[ -x $BIN ]]; }
if built || ! go_build_lock compose built; then
  plugin
  exit 0
fi

go_build_source "$MODULE" "$VERSION"
[[ -d $GO_BUILD_SRC/cmd ]] || {
  echo "install.sh: no $MODULE@$VERSION command in $GO_BUILD_SRC" >&2
  exit 1
}
go_build_tmp "$DEST"
start=$SECONDS
echo "install.sh: building $MODULE@$VERSION -> $DEST" >&2
(cd "$GO_BUILD_SRC" && nice -n 10 "$GO" build -p 2 -trimpath \
  -ldflags "-s -w -X $MODULE/internal.Version=$VERSION" -o "$GO_BUILD_TMP/docker-compose" ./cmd >&2)
"$GO_BUILD_TMP/docker-compose" version >&2
go_build_commit "$DEST"
echo "install.sh: built in $((SECONDS - start))s" >&2
plugin
