#!/usr/bin/env bash
# Builds codebay's images from deploy/docker/Dockerfile (and the editor image with
# packages/editor/scripts/build-image.sh) and, with --push, pushes them.
#
# Usage: deploy/images/build.sh [--push REGISTRY] [--dry-run] [--only LIST] [--env-file FILE]
#   --push REGISTRY  tag the images REGISTRY/<name>:<tag> and push them (e.g. localhost:32000);
#                    without it the images stay on the daemon as codebay/<name>:<tag>
#   --dry-run        print every step (and the tag) without building or pushing anything
#   --only LIST      comma-separated subset of: codebay,builder,dind,builder-dind,redis,registry,editor
#                    (default: all but builder-dind, which only docker-compose.yml uses)
#   --env-file FILE  also write the image references there (KEY=VALUE lines, see below)
#
# Tag: <version of package.json>-<first 12 hex digits of a sha256 over the build context>
# (every file the Dockerfile copies, by path and content, and the buildx plugin below): same
# sources, same tag; any change, a new tag.
#
# The builder images carry the buildx CLI plugin (BuildKit builds): deploy/buildkit/install.sh
# builds it from Go modules once (cached under /var/cache/codebay; needs `go` and the Go module
# proxy, ~1 min), and this script puts it into the build context as
# deploy/docker/cli-plugins/docker-buildx. CODEBAY_BUILDX=FILE uses a docker-buildx binary of
# your own instead (e.g. a release downloaded from github.com/docker/buildx). The editor image keeps its own tag, the VS Code version it serves (the
# provisioner asks for <repo>/codebay-editor:<vscode version>), and is only built with --push.
#
# On stdout (last lines), one per image: IMAGE_CODEBAY=<ref>, IMAGE_BUILDER=…, IMAGE_DIND=…,
# IMAGE_BUILDER_DIND=… (docker-compose.yml's builder), IMAGE_REDIS=…, IMAGE_REGISTRY=…, IMAGE_EDITOR_REPO=<repo>,
# IMAGE_EDITOR_VSCODE_VERSIONS=<the editor images' VS Code versions, comma-separated, the default first> and IMAGE_TAG=<tag>.
#
# Env:
#   DOCKER_HOST            the daemon that builds (it must have DEBIAN_IMAGE, default debian:bookworm)
#   DOCKER                 docker client (default /usr/bin/docker when present, else docker)
#   CODEBAY_EDITOR_VERSIONS code-server releases to make editor images of (default "4.139.1 4.100.3",
#                          the first the default)
#   DEBIAN_IMAGE           base of every stage (default debian:bookworm; never pulled from the internet)
#   CODEBAY_BUILDX         a docker-buildx binary for the builder images (default: deploy/buildkit/install.sh's)
#   REGISTRY_AUTH          user:password for --push (a temporary docker login; else the client's own)
#   CODEBAY_BUILD_CA_FILE  PEM file of a TLS-intercepting proxy's CA for the npm downloads during the
#                          build (a build secret, never in an image). Default: the CAs this machine
#                          added itself (/usr/local/share/ca-certificates/*.crt), if any; empty: none.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DOCKERFILE=deploy/docker/Dockerfile
ALL=(codebay builder dind builder-dind redis registry editor)
# What a run without --only builds: the Kubernetes images (builder-dind is docker-compose.yml's).
DEFAULT=(codebay builder dind redis registry editor)

log() { printf '[build %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() {
  log "ERROR: $*"
  exit 1
}
usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
  exit 2
}

PUSH=
DRY_RUN=0
ONLY=
ENV_FILE=
while (($#)); do
  case $1 in
    --push)
      [[ -n ${2:-} ]] || die "--push needs a registry (e.g. localhost:32000)"
      PUSH=${2%/}
      shift 2
      ;;
    --push=*)
      PUSH=${1#--push=}
      PUSH=${PUSH%/}
      shift
      ;;
    --dry-run)
      DRY_RUN=1
      shift
      ;;
    --only)
      ONLY=${2:-}
      shift 2
      ;;
    --env-file)
      ENV_FILE=${2:-}
      shift 2
      ;;
    -h | --help) usage ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done

WANT=("${DEFAULT[@]}")
if [[ -n $ONLY ]]; then
  IFS=, read -ra WANT <<<"$ONLY"
  for w in "${WANT[@]}"; do [[ " ${ALL[*]} " == *" $w "* ]] || die "--only: unknown image '$w' (one of: ${ALL[*]})"; done
fi
want() { [[ " ${WANT[*]} " == *" $1 "* ]]; }

if [[ -z ${DOCKER:-} ]]; then
  if [[ -x /usr/bin/docker ]]; then DOCKER=/usr/bin/docker; else DOCKER=docker; fi
fi
DEBIAN_IMAGE=${DEBIAN_IMAGE:-debian:bookworm}

# run CMD...: runs it, or prints it under --dry-run.
run() {
  if ((DRY_RUN)); then
    printf '[dry-run]' >&2
    printf ' %q' "$@" >&2
    printf '\n' >&2
  else
    "$@"
  fi
}

# --- the build context: files the Dockerfile copies, as git sees them (tracked and new, not ignored)
cd "$ROOT"
command -v git >/dev/null || die "git is needed to list the build context"
ctx_list=$(mktemp)
work=$(mktemp -d)
trap 'rm -rf "$ctx_list" "$work"' EXIT
git ls-files -z --cached --others --exclude-standard -- \
  package.json pnpm-lock.yaml pnpm-workspace.yaml 'tsconfig*.json' packages services deploy/docker \
  test/package.json bench/package.json |
  while IFS= read -r -d '' f; do [[ -f $f ]] && printf '%s\0' "$f"; done | sort -z >"$ctx_list"
[[ -s $ctx_list ]] || die "no build context found under $ROOT (is it a git checkout?)"
# The buildx plugin (not in git): built once from Go modules, cached; part of the context and the tag.
BUILDX_CTX=deploy/docker/cli-plugins/docker-buildx
if [[ -n ${CODEBAY_BUILDX:-} ]]; then
  buildx=$CODEBAY_BUILDX
  [[ -x $buildx ]] || die "CODEBAY_BUILDX=$buildx is not an executable file"
else
  buildx=$(bash deploy/buildkit/install.sh --path | sed -n 's/^BUILDX=//p')
  if [[ ! -x $buildx ]]; then
    if ((DRY_RUN)); then
      run bash deploy/buildkit/install.sh --no-plugin
      log "(the buildx plugin is not built yet: the tag below leaves it out, a real run's includes it)"
    else
      log "building the buildx plugin once (deploy/buildkit/install.sh: Go modules, ~1 min)"
      bash deploy/buildkit/install.sh --no-plugin >/dev/null || die "deploy/buildkit/install.sh failed"
    fi
  fi
fi
hash=$({
  xargs -0 sha256sum -- <"$ctx_list"
  if [[ -f $buildx ]]; then printf '%s  %s\n' "$(sha256sum <"$buildx" | cut -c1-64)" "$BUILDX_CTX"; fi
} | sha256sum | cut -c1-12)
version=$(node -p 'require("./package.json").version' 2>/dev/null || sed -n 's/^  "version": "\(.*\)",$/\1/p' package.json)
[[ -n $version ]] || die "cannot read the version from package.json"
TAG=$version-$hash
log "context: $(tr -cd '\0' <"$ctx_list" | wc -c) files, tag $TAG"

repo_of() { if [[ -n $PUSH ]]; then echo "$PUSH/$1"; else echo "codebay/$1"; fi; }
declare -A IMAGE_NAME=([codebay]=codebay [builder]=codebay-builder [dind]=codebay-dind [builder-dind]=codebay-builder-dind [redis]=codebay-redis [registry]=codebay-registry)

if ((!DRY_RUN)); then
  "$DOCKER" version >/dev/null 2>&1 || die "the Docker daemon at ${DOCKER_HOST:-the default socket} does not answer ($DOCKER version); set DOCKER_HOST"
  "$DOCKER" image inspect "$DEBIAN_IMAGE" >/dev/null 2>&1 ||
    die "the daemon has no $DEBIAN_IMAGE image (every stage starts from it; nothing is pulled from the internet): import one first, e.g. deploy/local/components.sh up"
fi

# The CA for the npm downloads inside the build, if any.
ca_args=()
if [[ -z ${CODEBAY_BUILD_CA_FILE+set} ]]; then
  shopt -s nullglob
  local_cas=(/usr/local/share/ca-certificates/*.crt /usr/local/share/ca-certificates/*/*.crt)
  shopt -u nullglob
  if ((${#local_cas[@]})); then
    cat "${local_cas[@]}" >"$work/build-ca.pem"
    CODEBAY_BUILD_CA_FILE=$work/build-ca.pem
    log "build secret build-ca: this machine's own CAs (${local_cas[*]})"
  fi
fi
if [[ -n ${CODEBAY_BUILD_CA_FILE:-} ]]; then
  [[ -r $CODEBAY_BUILD_CA_FILE ]] || die "CODEBAY_BUILD_CA_FILE=$CODEBAY_BUILD_CA_FILE is not readable"
  ca_args=(--secret "id=build-ca,src=$CODEBAY_BUILD_CA_FILE")
fi

# A temporary docker login for the push, when credentials are given.
if [[ -n $PUSH && -n ${REGISTRY_AUTH:-} ]]; then
  [[ $REGISTRY_AUTH == *:* ]] || die "REGISTRY_AUTH must be user:password"
  export DOCKER_CONFIG=$work/docker-config
  mkdir -p "$DOCKER_CONFIG"
  log "docker login $PUSH as ${REGISTRY_AUTH%%:*} (temporary config)"
  if ((!DRY_RUN)); then
    printf '%s' "${REGISTRY_AUTH#*:}" | "$DOCKER" login "$PUSH" --username "${REGISTRY_AUTH%%:*}" --password-stdin >"$work/login.log" 2>&1 || {
      cat "$work/login.log" >&2
      die "docker login $PUSH failed"
    }
  fi
fi

# A folder of exactly those files is the context (a tar of bare file entries sent to a daemon
# with user namespaces remapped gives the implied folders an owner the build cannot write as).
if ((!DRY_RUN)); then
  mkdir "$work/context"
  tar -C "$ROOT" --null -T "$ctx_list" -cf - | tar -C "$work/context" -xf -
  install -D -m 755 "$buildx" "$work/context/$BUILDX_CTX"
fi

declare -A REF=()
for target in codebay builder dind builder-dind redis registry; do
  want "$target" || continue
  ref=$(repo_of "${IMAGE_NAME[$target]}"):$TAG
  REF[$target]=$ref
  log "building $ref (target $target)"
  t0=$SECONDS
  if ((DRY_RUN)); then
    run env DOCKER_BUILDKIT=1 "$DOCKER" build --progress=plain -f "$DOCKERFILE" --target "$target" \
      --build-arg "DEBIAN_IMAGE=$DEBIAN_IMAGE" "${ca_args[@]}" \
      --label "org.opencontainers.image.version=$TAG" -t "$ref" "<context: the files above>"
  elif ! DOCKER_BUILDKIT=1 "$DOCKER" build --progress=plain -f "$DOCKERFILE" --target "$target" \
    --build-arg "DEBIAN_IMAGE=$DEBIAN_IMAGE" "${ca_args[@]}" \
    --label "org.opencontainers.image.version=$TAG" --label "org.opencontainers.image.title=${IMAGE_NAME[$target]}" \
    -t "$ref" "$work/context" >"$work/$target.log" 2>&1; then
    grep -m 15 -E 'error|ERROR|failed' "$work/$target.log" >&2 || true
    log "..."
    tail -n 25 "$work/$target.log" >&2
    die "docker build of target $target failed (above: its first errors and the end of its log)"
  fi
  ((DRY_RUN)) || log "built $ref in $((SECONDS - t0))s ($("$DOCKER" image inspect -f '{{.Size}}' "$ref" | awk '{ printf "%.0f MB", $1 / 1e6 }'))"
  if [[ -n $PUSH ]]; then
    log "pushing $ref"
    if ((DRY_RUN)); then run "$DOCKER" push "$ref"; else
      "$DOCKER" push "$ref" >"$work/$target.push.log" 2>&1 || {
        tail -n 20 "$work/$target.push.log" >&2
        die "docker push $ref failed (is $PUSH reachable from this machine and are you logged in? REGISTRY_AUTH=user:password)"
      }
    fi
  fi
done

EDITOR_REPO=
EDITOR_VSCODE_VERSIONS=
if want editor; then
  if [[ -z $PUSH ]]; then
    log "editor image skipped: packages/editor/scripts/build-image.sh builds and pushes it, so it needs --push"
  else
    EDITOR_REPO=$PUSH/codebay-editor
    # One image per code-server release (tag: its VS Code version), the first the default.
    for cs_version in ${CODEBAY_EDITOR_VERSIONS:-4.139.1 4.100.3}; do
      log "editor image of code-server $cs_version: packages/editor/scripts/build-image.sh (bundle cached by build-bundle.sh; the first build takes minutes)"
      if ((DRY_RUN)); then
        run env "CODE_SERVER_VERSION=$cs_version" "CODEBAY_EDITOR_IMAGE_REPO=$EDITOR_REPO" "DOCKER_CLI=$DOCKER" bash packages/editor/scripts/build-image.sh
      else
        t0=$SECONDS
        editor_ref=$(CODE_SERVER_VERSION=$cs_version CODEBAY_EDITOR_IMAGE_REPO=$EDITOR_REPO DOCKER_CLI=$DOCKER bash packages/editor/scripts/build-image.sh | tail -n 1) ||
          die "packages/editor/scripts/build-image.sh failed for code-server $cs_version"
        log "editor image $editor_ref in $((SECONDS - t0))s"
        EDITOR_VSCODE_VERSIONS+=${EDITOR_VSCODE_VERSIONS:+,}${editor_ref##*:}
      fi
    done
  fi
fi

{
  for target in codebay builder dind builder-dind redis registry; do
    [[ -n ${REF[$target]:-} ]] || continue
    t=${target^^}
    printf 'IMAGE_%s=%s\n' "${t//-/_}" "${REF[$target]}"
  done
  [[ -z $EDITOR_REPO ]] || printf 'IMAGE_EDITOR_REPO=%s\n' "$EDITOR_REPO"
  [[ -z $EDITOR_VSCODE_VERSIONS ]] || printf 'IMAGE_EDITOR_VSCODE_VERSIONS=%s\n' "$EDITOR_VSCODE_VERSIONS"
  printf 'IMAGE_TAG=%s\n' "$TAG"
} >"$work/images.env"
if [[ -n $ENV_FILE ]]; then cp "$work/images.env" "$ENV_FILE"; fi
cat "$work/images.env"
