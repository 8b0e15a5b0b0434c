#!/usr/bin/env bash
# Builds the editor image for the Kubernetes runtime and pushes it: the editor bundle
# at /opt/codebay/editor and the launcher at /opt/codebay/launcher, on debian:bookworm
# (the bundle's Node needs glibc for the init container's copy). Instances' init
# container copies /opt/codebay into an emptyDir; the instance image never holds the editor.
#
#   REGISTRY=localhost:32000 DOCKER_HOST=unix:///run/codebay-docker/docker.sock \
#     bash packages/editor/scripts/build-image.sh      # prints the pushed image
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
docker=${DOCKER_CLI:-/usr/bin/docker}

bundle=$(bash "$here/build-bundle.sh" | tail -n 1)
version=$(node -p "require('$bundle/bundle.json').vscode")
repo=${CODEBAY_EDITOR_IMAGE_REPO:-${REGISTRY:-localhost:32000}/codebay-editor}
image=$repo:$version

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
# Hard links where the cache and the temp folder share a file system, copies otherwise.
cp -al "$bundle" "$ctx/editor" 2>/dev/null || cp -a "$bundle" "$ctx/editor"
cp -a "$here/../launcher" "$ctx/launcher"
rm -f "$ctx/launcher/"*.test.ts
cat > "$ctx/Dockerfile" <<'DOCKERFILE'
FROM debian:bookworm
COPY editor /opt/codebay/editor
COPY launcher /opt/codebay/launcher
USER 1000:1000
DOCKERFILE

echo "build-image: building $image" >&2
"$docker" build --quiet --label "codebay.vscode=$version" -t "$image" "$ctx" >&2
echo "build-image: pushing $image" >&2
"$docker" push "$image" >&2
echo "$image"
