#!/usr/bin/env bash
# What builds with BuildKit need on a Docker 20.10 engine, built from Go modules into
#
#   ${CODEBAY_CACHE:-/var/cache/codebay}/buildx-<version>/docker-buildx
#       the buildx CLI plugin (github.com/docker/buildx): the Dev Containers CLI's
#       `--buildkit auto` builds with `docker buildx build`
#   ${CODEBAY_CACHE:-/var/cache/codebay}/dockerfile-frontend-<version>/dockerfile-frontend
#       BuildKit's Dockerfile frontend (github.com/moby/buildkit, frontend/dockerfile): the image
#       `docker/dockerfile:1.4` that `# syntax=docker/dockerfile:1.4` (written by the CLI into
#       feature builds) makes the daemon pull; deploy/buildkit/frontend-image.sh packages it
#
# and installs buildx as a docker CLI plugin for every user of this machine
# (/usr/local/lib/docker/cli-plugins/docker-buildx, a copy; the builder runs the docker CLI
# with a HOME of its own, so ~/.docker/cli-plugins would not be seen). Idempotent: a warm run
# builds nothing. Cold, modules downloaded: 3.7 min of CPU for both on 2 cores (the frontend
# reuses most of buildx's compiled packages) (deploy/lib/go-build.sh: lock, the module's Go,
# atomic rename).
#
#   install.sh               build what is missing, install the plugin, print the paths
#   install.sh --no-plugin   build what is missing, print the paths (no root needed for a
#                            cache you own; deploy/images/build.sh uses this)
#   install.sh --path        print the paths, build nothing
#
# stdout (everything else goes to stderr):
#   BUILDX=<the buildx binary>
#   DOCKERFILE_FRONTEND=<the frontend binary>
#   DOCKERFILE_FRONTEND_VERSION=<the buildkit release it comes from, e.g. v0.33.1>
#
# Env: BUILDX_VERSION (v0.38.2), BUILDKIT_VERSION (v0.33.1), CODEBAY_CACHE, GO,
# CODEBAY_CLI_PLUGINS_DIR (/usr/local/lib/docker/cli-plugins).
set -euo pipefail

# shellcheck source=SCRIPTDIR/../lib/go-build.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/go-build.sh"
go_build_init buildkit/install.sh
BUILDX_VERSION=${BUILDX_VERSION:-v0.38.2}
BUILDKIT_VERSION=${BUILDKIT_VERSION:-v0.33.1}
BUILDX_MODULE=github.com/docker/buildx
BUILDKIT_MODULE=github.com/moby/buildkit
BUILDX_DEST=$CACHE/buildx-${BUILDX_VERSION#v}
FRONTEND_DEST=$CACHE/dockerfile-frontend-${BUILDKIT_VERSION#v}
BUILDX=$BUILDX_DEST/docker-buildx
FRONTEND=$FRONTEND_DEST/dockerfile-frontend
PLUGINS=${CODEBAY_CLI_PLUGINS_DIR:-/usr/local/lib/docker/cli-plugins}

paths() {
  echo "BUILDX=$BUILDX"
  echo "DOCKERFILE_FRONTEND=$FRONTEND"
  echo "DOCKERFILE_FRONTEND_VERSION=$BUILDKIT_VERSION"
}

mode=${1:-}
case $mode in
  '' | --no-plugin) ;;
  --path)
    paths
    exit 0
    ;;
  *)
    echo "usage: $0 [--no-plugin | --path]" >&2
    exit 2
    ;;
esac

buildx_built() { [[ -x $BUILDX ]]; }
frontend_built() { [[ -x $FRONTEND ]]; }

if ! buildx_built && go_build_lock buildx buildx_built; then
  go_build_source "$BUILDX_MODULE" "$BUILDX_VERSION"
  go_build_tmp "$BUILDX_DEST"
  start=$SECONDS
  go_build_log "building $BUILDX_MODULE@$BUILDX_VERSION -> $BUILDX_DEST"
  (cd "$GO_BUILD_SRC" && nice -n 10 "$GO" build -p 2 -trimpath \
    -ldflags "-s -w -X $BUILDX_MODULE/version.Version=$BUILDX_VERSION" -o "$GO_BUILD_TMP/docker-buildx" ./cmd/buildx >&2)
  "$GO_BUILD_TMP/docker-buildx" version >&2
  go_build_commit "$BUILDX_DEST"
  go_build_log "built buildx in $((SECONDS - start))s"
fi

if ! frontend_built && go_build_lock dockerfile-frontend frontend_built; then
  go_build_source "$BUILDKIT_MODULE" "$BUILDKIT_VERSION"
  go_build_tmp "$FRONTEND_DEST"
  start=$SECONDS
  go_build_log "building $BUILDKIT_MODULE@$BUILDKIT_VERSION frontend/dockerfile -> $FRONTEND_DEST"
  # As upstream's frontend/dockerfile/cmd/dockerfile-frontend/Dockerfile, without git: the
  # version says which buildkit release it is.
  (cd "$GO_BUILD_SRC" && nice -n 10 "$GO" build -p 2 -trimpath -tags "netgo static_build osusergo" \
    -ldflags "-s -w -X main.Version=buildkit-$BUILDKIT_VERSION" \
    -o "$GO_BUILD_TMP/dockerfile-frontend" ./frontend/dockerfile/cmd/dockerfile-frontend >&2)
  go_build_commit "$FRONTEND_DEST"
  go_build_log "built the Dockerfile frontend in $((SECONDS - start))s"
fi
exec 9>&-

# The plugin: a copy (the cache may be cleaned; the CLI must keep working), replaced atomically.
if [[ $mode != --no-plugin ]] && ! cmp -s "$BUILDX" "$PLUGINS/docker-buildx"; then
  mkdir -p "$PLUGINS"
  install -m 755 "$BUILDX" "$PLUGINS/.docker-buildx.tmp"
  mv -f "$PLUGINS/.docker-buildx.tmp" "$PLUGINS/docker-buildx"
  go_build_log "docker buildx plugin $BUILDX_VERSION -> $PLUGINS/docker-buildx"
fi
paths
