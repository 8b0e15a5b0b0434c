#!/usr/bin/env bash
# Puts BuildKit's Dockerfile frontend into a registry that a Docker daemon uses as its Docker Hub
# mirror, under Docker Hub's names:
#
#   REGISTRY/docker/dockerfile:1.4   what the Dev Containers CLI writes into feature builds under
#                                    BuildKit (`# syntax=docker/dockerfile:1.4`)
#   REGISTRY/docker/dockerfile:1     what users' Dockerfiles often say
#
# Docker Hub serves these itself; a daemon without internet finds them only in its mirror. The
# image is the frontend binary of deploy/buildkit/install.sh (built from Go modules, cached)
# in an image like upstream's (deploy/buildkit/frontend.Dockerfile), built with the classic
# builder (nothing is pulled) on DOCKER_HOST's daemon and pushed. Idempotent: when the registry
# already serves every tag from this buildkit release (the image's
# org.opencontainers.image.version label), nothing is built or pushed.
#
#   frontend-image.sh REGISTRY           e.g. localhost:5000 (plain HTTP, anonymous pushes, or
#                                        logged in with the docker client's own config)
#   frontend-image.sh --check REGISTRY   exit 0 if it is there, 1 if not; changes nothing
#
# Env: DOCKER_HOST (the daemon that builds and pushes), DOCKER (client; default /usr/bin/docker
# when present), FRONTEND_TAGS (default "1.4 1"), and install.sh's (BUILDKIT_VERSION, …).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TAGS=${FRONTEND_TAGS:-1.4 1}
REPO=docker/dockerfile
log() { echo "frontend-image.sh: $*" >&2; }

check=0
if [[ ${1:-} == --check ]]; then
  check=1
  shift
fi
REGISTRY=${1:-}
REGISTRY=${REGISTRY%/}
[[ -n $REGISTRY && $# == 1 ]] || {
  echo "usage: $0 [--check] REGISTRY" >&2
  exit 2
}
if [[ -z ${DOCKER:-} ]]; then
  if [[ -x /usr/bin/docker ]]; then DOCKER=/usr/bin/docker; else DOCKER=docker; fi
fi
VERSION=$(bash "$HERE/install.sh" --path | sed -n 's/^DOCKERFILE_FRONTEND_VERSION=//p')

# served TAG: the registry has REPO:TAG and its image says it is this buildkit release.
served() {
  local manifest config
  manifest=$(curl --noproxy '*' -fsS --max-time 10 \
    -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    "http://$REGISTRY/v2/$REPO/manifests/$1" 2>/dev/null) || return 1
  # The config comes first in a (single-platform) image manifest.
  config=$(grep -o '"digest": *"sha256:[0-9a-f]*"' <<<"$manifest" | head -n 1 | grep -o 'sha256:[0-9a-f]*') || return 1
  curl --noproxy '*' -fsSL --max-time 10 "http://$REGISTRY/v2/$REPO/blobs/$config" 2>/dev/null |
    grep -qF "\"org.opencontainers.image.version\":\"$VERSION\""
}
all_served() {
  local t
  for t in $TAGS; do served "$t" || return 1; done
}

if all_served; then
  ((check)) || log "$REGISTRY/$REPO ($TAGS) already serves the frontend of buildkit $VERSION"
  exit 0
fi
((!check)) || exit 1

binary=$(bash "$HERE/install.sh" --no-plugin | sed -n 's/^DOCKERFILE_FRONTEND=//p')
[[ -x $binary ]] || {
  log "deploy/buildkit/install.sh printed no frontend binary"
  exit 1
}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$binary" "$work/dockerfile-frontend"
cp "$HERE/frontend.Dockerfile" "$work/Dockerfile"
refs=()
for t in $TAGS; do refs+=("$REGISTRY/$REPO:$t"); done
log "building ${refs[*]} (buildkit $VERSION's Dockerfile frontend)"
# The classic builder: no frontend needed to build the frontend, nothing pulled (FROM scratch).
DOCKER_BUILDKIT=0 "$DOCKER" build -q \
  --label "org.opencontainers.image.version=$VERSION" \
  --label "org.opencontainers.image.source=https://github.com/moby/buildkit" \
  "${refs[@]/#/--tag=}" "$work" >"$work/build.log" 2>&1 || {
  cat "$work/build.log" >&2
  log "docker build failed"
  exit 1
}
for ref in "${refs[@]}"; do
  "$DOCKER" push "$ref" >"$work/push.log" 2>&1 || {
    tail -n 20 "$work/push.log" >&2
    log "docker push $ref failed"
    exit 1
  }
done
# The daemon keeps the image only under the names it is pulled by (docker/dockerfile:1.4).
"$DOCKER" rmi "${refs[@]}" >/dev/null 2>&1 || true
all_served || {
  log "pushed ${refs[*]} but $REGISTRY does not serve them with version $VERSION"
  exit 1
}
log "pushed ${refs[*]}"
