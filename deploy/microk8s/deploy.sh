#!/usr/bin/env bash
# Installs (or updates) codebay on MicroK8s — or, with --kubeconfig, on any cluster.
#
# Usage: deploy/microk8s/deploy.sh [options]
#   --kubeconfig FILE  install onto the cluster of FILE: no `microk8s` command is run (no addons
#                      enabled, nothing waited for but codebay itself); the cluster must offer an
#                      Ingress class, a default StorageClass and a registry (see docs/deployment.md)
#   --dry-run          print every step (commands included) without changing anything
#   --no-hosts         do not add "<node IP> BASE_DOMAIN" to /etc/hosts
#   --skip-build       do not build images: use the ones the last run pushed ($STATE/images.env)
#   --with-registry    instance images in codebay's own registry (components/registry: pull and push
#                      users, node port 32001) instead of REGISTRY's; codebay's own images stay
#                      where the nodes already pull (IMAGE_REGISTRY; MicroK8s: the registry addon)
#   --autoscaling      builders scale with the build queue (components/autoscaling: a KEDA
#                      ScaledObject on Prometheus' codebay_queue_jobs, 1 to 6 builders; MicroK8s:
#                      enables the observability and keda addons; elsewhere KEDA must be there)
#   -h, --help
#
# Steps: check MicroK8s and enable its addons dns, hostpath-storage, ingress, registry (and wait
# for them); make a TLS certificate for BASE_DOMAIN and *.BASE_DOMAIN (self-signed, openssl);
# build and push the images (deploy/images/build.sh); create the namespaces and the Secrets
# (Redis password, admin token, platform key: generated once, kept in $STATE and in the
# cluster, never printed); apply deploy/kubernetes/overlays/microk8s with the pushed image
# tags; wait for the rollout; add the hosts entry; print the URL. Safe to run again: what
# exists is kept (secrets are never rotated by a re-run), what changed is applied.
#
# Env (defaults in brackets):
#   BASE_DOMAIN [vscode.local]            the API at https://BASE_DOMAIN, editors at https://<id>.BASE_DOMAIN
#   KUBERNETES_NAMESPACE [vscode-system]  instance namespace (fixed in the manifests; informational)
#   REGISTRY [localhost:32000]            where the nodes pull instance images from (--with-registry:
#                                         localhost:32001, codebay's registry's node port)
#   REGISTRY_PUSH [registry.container-registry.svc.cluster.local:5000]  where builder pods push
#   REGISTRY_API_URL [http://$REGISTRY_PUSH]  registry API for the gateway and builders (in-cluster)
#   IMAGE_REGISTRY [$REGISTRY]            where this machine pushes codebay's own images (and the editor's)
#   IMAGE_REGISTRY_PULL [$REGISTRY]       where the nodes pull those (with --with-registry: $IMAGE_REGISTRY)
#   REGISTRY_AUTH                         user:password for that push (deploy/images/build.sh)
#   REGISTRY_PULL_AUTH / REGISTRY_PUSH_AUTH  the services' registry users (user:password), if the
#                                         registry wants them (made for you with --with-registry)
#   STORAGE_CLASS                         instance volumes' StorageClass [the cluster's default]
#   CODEBAY_BUILDX                        a docker-buildx binary for the builder images [built from Go
#                                         modules by deploy/buildkit/install.sh: needs go]
#   DIND_REGISTRY_MIRRORS                 Docker Hub mirrors for the builders' daemons (comma-separated URLs);
#                                         offline, one must hold the base images and docker/dockerfile:1.4
#                                         and :1 (deploy/buildkit/frontend-image.sh; docs/deployment.md)
#   INSTANCE_EGRESS_EXCEPT                more IPv4 CIDRs instances may not reach (comma-separated); the
#                                         nodes' own addresses are always added (re-run after adding nodes)
#   INGRESS_CLASS [public]                the Ingress class (MicroK8s: public)
#   BUILDER_REPLICAS [2]                  builds in parallel (one Docker-in-Docker daemon each;
#                                         with --autoscaling, KEDA decides)
#   PROMETHEUS_URL [http://kube-prom-stack-kube-prome-prometheus.observability.svc.cluster.local:9090]
#                                         the Prometheus KEDA asks for the queue's depth (--autoscaling;
#                                         the default is MicroK8s' observability addon)
#   BUILDER_MAX_REPLICAS [6]              --autoscaling: at most this many builders (at least 1)
#   BUILDER_SCALE_DOWN_SECONDS [120]      --autoscaling (1-3600): builders go once the queue has been short this
#                                         long, one at a time, one a minute at most (or one per this
#                                         many seconds when shorter)
#   GATEWAY_REPLICAS [2]
#   EXTENSION_SOURCE_PVC                  a PersistentVolumeClaim in codebay-system holding the builders'
#                                         extension source (.vsix files, readable by uid 10001): mounted
#                                         read-only into every builder (components/extension-source) and
#                                         baked into images; ReadOnlyMany/ReadWriteMany when builders span
#                                         nodes. Unset: none (instances install extensions at start)
#   JOB_LOCK_SECONDS [60], STALLED_INTERVAL_SECONDS [30]  how soon a job whose worker died (SIGKILL,
#                                         a node lost) runs again: its lock's life and the stalled-job check
#   CODEBAY_DEPLOY_STATE [/var/lib/codebay/deploy, or ~/.local/state/codebay/deploy if not root]
#                                         generated secrets (mode 0600), certificate, image list
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OVERLAY=$ROOT/deploy/kubernetes/overlays/microk8s
PLATFORM_NS=codebay-system
INSTANCE_NS=vscode-system

log() { printf '[deploy %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() {
  log "ERROR: $*"
  exit 1
}
usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
  exit 2
}

KUBECONFIG_FILE=
DRY_RUN=0
HOSTS=1
BUILD=1
WITH_REGISTRY=0
AUTOSCALING=0
while (($#)); do
  case $1 in
    --kubeconfig)
      [[ -n ${2:-} ]] || die "--kubeconfig needs a file"
      KUBECONFIG_FILE=$2
      shift 2
      ;;
    --kubeconfig=*)
      KUBECONFIG_FILE=${1#--kubeconfig=}
      shift
      ;;
    --dry-run)
      DRY_RUN=1
      shift
      ;;
    --no-hosts)
      HOSTS=0
      shift
      ;;
    --skip-build)
      BUILD=0
      shift
      ;;
    --with-registry)
      WITH_REGISTRY=1
      shift
      ;;
    --autoscaling)
      AUTOSCALING=1
      shift
      ;;
    -h | --help) usage ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done

BASE_DOMAIN=${BASE_DOMAIN:-vscode.local}
[[ $BASE_DOMAIN =~ ^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$ ]] || die "BASE_DOMAIN=$BASE_DOMAIN is not a domain name"
if [[ -n ${KUBERNETES_NAMESPACE:-} && $KUBERNETES_NAMESPACE != "$INSTANCE_NS" ]]; then
  die "KUBERNETES_NAMESPACE=$KUBERNETES_NAMESPACE: the manifests use $INSTANCE_NS (change it in an overlay of your own; docs/deployment.md)"
fi
MICROK8S=1
[[ -z $KUBECONFIG_FILE ]] || MICROK8S=0
if ((WITH_REGISTRY)); then
  # Instance images in codebay's own registry; codebay's own images where the nodes already pull.
  REGISTRY=${REGISTRY:-localhost:32001}
  REGISTRY_PUSH=${REGISTRY_PUSH:-codebay-registry-push.$PLATFORM_NS.svc.cluster.local:5000}
  REGISTRY_API_URL=${REGISTRY_API_URL:-http://codebay-registry.$PLATFORM_NS.svc.cluster.local:5000}
  if [[ -z ${IMAGE_REGISTRY:-} ]]; then
    ((MICROK8S)) || die "--with-registry: set IMAGE_REGISTRY to a registry the nodes already pull from (codebay's own images cannot come from the registry they start)"
    IMAGE_REGISTRY=localhost:32000
  fi
  IMAGE_REGISTRY_PULL=${IMAGE_REGISTRY_PULL:-$IMAGE_REGISTRY}
  [[ $IMAGE_REGISTRY_PULL != "$REGISTRY" ]] || die "--with-registry: IMAGE_REGISTRY_PULL and REGISTRY are both $REGISTRY (codebay's own images cannot come from the registry they start)"
else
  REGISTRY=${REGISTRY:-localhost:32000}
  REGISTRY_PUSH=${REGISTRY_PUSH:-registry.container-registry.svc.cluster.local:5000}
  REGISTRY_API_URL=${REGISTRY_API_URL:-http://$REGISTRY_PUSH}
  IMAGE_REGISTRY=${IMAGE_REGISTRY:-$REGISTRY}
  IMAGE_REGISTRY_PULL=${IMAGE_REGISTRY_PULL:-$REGISTRY}
fi
INGRESS_CLASS=${INGRESS_CLASS:-public}
BUILDER_REPLICAS=${BUILDER_REPLICAS:-2}
GATEWAY_REPLICAS=${GATEWAY_REPLICAS:-2}
[[ $BUILDER_REPLICAS =~ ^[0-9]+$ && $GATEWAY_REPLICAS =~ ^[1-9][0-9]*$ ]] || die "BUILDER_REPLICAS and GATEWAY_REPLICAS must be numbers"
BUILDER_MAX_REPLICAS=${BUILDER_MAX_REPLICAS:-6}
EXTENSION_SOURCE_PVC=${EXTENSION_SOURCE_PVC:-}
[[ -z $EXTENSION_SOURCE_PVC || $EXTENSION_SOURCE_PVC =~ ^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$ ]] ||
  die "EXTENSION_SOURCE_PVC=$EXTENSION_SOURCE_PVC is not a PersistentVolumeClaim name"
BUILDER_SCALE_DOWN_SECONDS=${BUILDER_SCALE_DOWN_SECONDS:-120}
[[ $BUILDER_MAX_REPLICAS =~ ^[1-9][0-9]*$ ]] || die "BUILDER_MAX_REPLICAS=$BUILDER_MAX_REPLICAS: must be a whole number of builders (1 or more)"
# The HPA's stabilization window is at most an hour (autoscaling/v2 validation).
if ! [[ $BUILDER_SCALE_DOWN_SECONDS =~ ^[1-9][0-9]*$ ]] || ((BUILDER_SCALE_DOWN_SECONDS > 3600)); then
  die "BUILDER_SCALE_DOWN_SECONDS=$BUILDER_SCALE_DOWN_SECONDS: must be a whole number of seconds from 1 to 3600 (the HPA's limit)"
fi
for v in JOB_LOCK_SECONDS STALLED_INTERVAL_SECONDS; do
  [[ -z ${!v:-} || ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v=${!v}: must be a whole number of seconds (1 or more)"
done
if [[ -z ${CODEBAY_DEPLOY_STATE:-} ]]; then
  if [[ $(id -u) == 0 ]]; then CODEBAY_DEPLOY_STATE=/var/lib/codebay/deploy; else CODEBAY_DEPLOY_STATE=${XDG_STATE_HOME:-$HOME/.local/state}/codebay/deploy; fi
fi
STATE=$CODEBAY_DEPLOY_STATE

# --- helpers ------------------------------------------------------------------------
# run CMD...: does it, or under --dry-run prints it.
run() {
  if ((DRY_RUN)); then
    printf '[dry-run]' >&2
    printf ' %q' "$@" >&2
    printf '\n' >&2
  else
    "$@"
  fi
}
step() { log "== $*"; }

if [[ -n $KUBECONFIG_FILE ]]; then
  [[ -r $KUBECONFIG_FILE ]] || die "--kubeconfig $KUBECONFIG_FILE: no such readable file"
  KUBECONFIG_FILE=$(cd "$(dirname "$KUBECONFIG_FILE")" && pwd)/$(basename "$KUBECONFIG_FILE")
  command -v kubectl >/dev/null || die "kubectl not found on PATH (needed with --kubeconfig)"
  KUBECTL=(kubectl --kubeconfig "$KUBECONFIG_FILE")
  MICROK8S=0
else
  MICROK8S=1
  KUBECTL=(microk8s kubectl)
fi
k() { "${KUBECTL[@]}" "$@"; }
# kr: a kubectl call that changes something (printed under --dry-run).
kr() { run "${KUBECTL[@]}" "$@"; }
# apply_stdin: applies the YAML on stdin (printed under --dry-run).
apply_stdin() {
  if ((DRY_RUN)); then
    printf '[dry-run] %s apply -f - (%s)\n' "${KUBECTL[*]}" "$(awk '/^kind:/ { k = $2 } /^  name:/ && k { printf "%s%s/%s", sep, k, $2; sep = ", "; k = "" }')" >&2
  else
    k apply -f -
  fi
}

# A secret value kept in $STATE (mode 0600) and in the cluster; never printed. A value the
# cluster already holds wins over making a new one (a re-run from another machine rotates nothing).
# secret_value FILE NAMESPACE SECRET KEY GENERATOR...
secret_value() {
  local file=$1 ns=$2 name=$3 key=$4
  shift 4
  if [[ ! -s $file ]]; then
    local v=
    if ((!DRY_RUN)); then v=$(k -n "$ns" get secret "$name" -o "jsonpath={.data.$key}" 2>/dev/null | base64 -d 2>/dev/null || true); fi
    [[ -n $v ]] || v=$("$@")
    ((DRY_RUN)) || (umask 077 && printf '%s' "$v" >"$file")
  fi
  ((DRY_RUN)) && [[ ! -s $file ]] && return 0
  cat "$file"
}
random_token() { head -c 32 /dev/urandom | base64 | tr -d '/+=\n' | cut -c1-40; }
random_key() { head -c 32 /dev/urandom | base64; }

# --- 1. preflight ---------------------------------------------------------------------
step "checks"
command -v openssl >/dev/null || die "openssl not found (apt-get install openssl): it makes the TLS certificate"
if ((MICROK8S)); then
  command -v microk8s >/dev/null || die "microk8s not found: install it (snap install microk8s --classic) or pass --kubeconfig FILE for another cluster"
  if ((!DRY_RUN)); then
    microk8s status --wait-ready --timeout 120 >/dev/null 2>&1 || die "MicroK8s is not running (microk8s start; microk8s inspect tells why)"
  fi
  log "MicroK8s is running"
elif ((!DRY_RUN)); then
  k version --request-timeout=10s >/dev/null 2>&1 || die "the cluster of $KUBECONFIG_FILE does not answer (kubectl --kubeconfig $KUBECONFIG_FILE version)"
  log "cluster of $KUBECONFIG_FILE answers"
  # Without KEDA the ScaledObject cannot even be applied: say so before anything changes.
  if ((AUTOSCALING)); then
    k get crd scaledobjects.keda.sh >/dev/null 2>&1 ||
      die "--autoscaling: KEDA is not installed (no CustomResourceDefinition scaledobjects.keda.sh); install KEDA v2, or deploy without --autoscaling (docs/deployment.md: Autoscaling builders)"
  fi
fi
PROMETHEUS_URL=${PROMETHEUS_URL:-http://kube-prom-stack-kube-prome-prometheus.observability.svc.cluster.local:9090}
if ((BUILD)); then
  docker_bin=${DOCKER:-$(command -v /usr/bin/docker docker 2>/dev/null | head -n 1 || true)}
  [[ -n $docker_bin ]] || die "docker not found: it builds the images (apt-get install docker.io), or pass --skip-build to reuse the last ones"
fi
run mkdir -p "$STATE/secrets" "$STATE/tls" "$STATE/kustomize"
run chmod 700 "$STATE/secrets"

# --- 2. MicroK8s addons ---------------------------------------------------------------------
if ((MICROK8S)); then
  addons=(dns hostpath-storage ingress registry)
  # keda lives in MicroK8s' community repository.
  ((AUTOSCALING == 0)) || addons+=(observability community keda)
  step "MicroK8s addons: ${addons[*]}"
  for addon in "${addons[@]}"; do
    if ((!DRY_RUN)) && microk8s status -a "$addon" 2>/dev/null | grep -qx enabled; then
      log "addon $addon: enabled"
    else
      run microk8s enable "$addon" || die "microk8s enable $addon failed"
    fi
  done
  log "waiting for the addons"
  kr -n kube-system rollout status deployment/coredns --timeout=300s || die "the dns addon (kube-system/coredns) did not become ready"
  kr -n kube-system rollout status deployment/hostpath-provisioner --timeout=300s || die "the hostpath-storage addon (kube-system/hostpath-provisioner) did not become ready"
  kr -n container-registry rollout status deployment/registry --timeout=300s || die "the registry addon (container-registry/registry) did not become ready"
  kr -n ingress wait --for=condition=Ready pod --all --timeout=300s || die "the ingress addon's pods (namespace ingress) did not become ready"
  if ((!DRY_RUN)); then
    for _ in $(seq 60); do
      curl -fsS --max-time 3 -o /dev/null "http://$IMAGE_REGISTRY/v2/" 2>/dev/null && break
      sleep 2
    done
    curl -fsS --max-time 3 -o /dev/null "http://$IMAGE_REGISTRY/v2/" 2>/dev/null || die "the registry does not answer at http://$IMAGE_REGISTRY/v2/"
  fi
  if ((WITH_REGISTRY)); then
    # MicroK8s' containerd speaks plain HTTP to localhost:32000 only; codebay's registry too.
    certs_d=${SNAP_DATA:-/var/snap/microk8s/current}/args/certs.d/$REGISTRY
    if ((DRY_RUN)); then
      log "[dry-run] write $certs_d/hosts.toml: server = \"http://$REGISTRY\" (pull, resolve)"
    elif [[ ! -s $certs_d/hosts.toml ]]; then
      { mkdir -p "$certs_d" && printf 'server = "http://%s"\n\n[host."http://%s"]\n  capabilities = ["pull", "resolve"]\n' "$REGISTRY" "$REGISTRY" >"$certs_d/hosts.toml"; } 2>/dev/null ||
        die "cannot write $certs_d/hosts.toml (run as root once, or write it yourself: server = \"http://$REGISTRY\")"
      log "containerd: plain HTTP to $REGISTRY ($certs_d/hosts.toml)"
    fi
  fi
fi

# --- 3. TLS certificate -----------------------------------------------------------------------
step "TLS certificate for $BASE_DOMAIN and *.$BASE_DOMAIN"
crt=$STATE/tls/tls.crt key=$STATE/tls/tls.key
cert_ok() {
  [[ -s $crt && -s $key ]] &&
    openssl x509 -in "$crt" -noout -checkend 2592000 >/dev/null 2>&1 &&
    openssl x509 -in "$crt" -noout -ext subjectAltName 2>/dev/null | grep -q "DNS:\*\.$BASE_DOMAIN\b"
}
if ((!DRY_RUN)) && cert_ok; then
  log "kept $crt (valid for 30 days or more)"
else
  run openssl req -x509 -newkey rsa:2048 -nodes -days 825 -sha256 \
    -subj "/CN=$BASE_DOMAIN" -addext "subjectAltName=DNS:$BASE_DOMAIN,DNS:*.$BASE_DOMAIN" \
    -keyout "$key" -out "$crt"
  run chmod 600 "$key"
  log "made a self-signed certificate: $crt (browsers warn until you trust it or replace Secret codebay-tls)"
fi

# --- 4. images ------------------------------------------------------------------------------
step "images"
images_env=$STATE/images.env
if ((BUILD)); then
  build_args=(--push "$IMAGE_REGISTRY" --env-file "$images_env")
  ((DRY_RUN)) && build_args=(--push "$IMAGE_REGISTRY" --dry-run)
  if ((DRY_RUN)); then
    tag_line=$(bash "$ROOT/deploy/images/build.sh" "${build_args[@]}" | grep '^IMAGE_TAG=')
  else
    bash "$ROOT/deploy/images/build.sh" "${build_args[@]}" >/dev/null || die "building or pushing the images failed (deploy/images/build.sh)"
    tag_line=$(grep '^IMAGE_TAG=' "$images_env")
  fi
else
  [[ -s $images_env ]] || die "--skip-build: no $images_env from an earlier run"
  tag_line=$(grep '^IMAGE_TAG=' "$images_env")
fi
TAG=${tag_line#IMAGE_TAG=}
# The editor images' VS Code versions (the default first): what the gateway offers as vscode_version.
editor_versions=$(sed -n 's/^IMAGE_EDITOR_VSCODE_VERSIONS=//p' "$images_env" 2>/dev/null || true)
[[ -n $TAG ]] || die "no image tag (deploy/images/build.sh printed none)"
# The nodes pull what this machine pushed, at the address they use.
PULL_PREFIX=$IMAGE_REGISTRY_PULL
log "images: $PULL_PREFIX/{codebay,codebay-builder,codebay-dind,codebay-redis}:$TAG, editor $PULL_PREFIX/codebay-editor"

# --- 5. namespaces and secrets ------------------------------------------------------------------
step "namespaces and secrets"
k kustomize "$OVERLAY" >/dev/null 2>&1 || ((DRY_RUN)) || die "kubectl kustomize $OVERLAY fails: $(k kustomize "$OVERLAY" 2>&1 | tail -n 3)"
{
  cat "$ROOT/deploy/kubernetes/base/namespace.yaml"
  echo ---
  cat "$ROOT/deploy/kubernetes/base/platform-namespace.yaml"
} | apply_stdin >&2

s=$STATE/secrets
redis_password=$(secret_value "$s/redis-password" "$PLATFORM_NS" codebay-redis password random_token)
admin_token=$(secret_value "$s/admin-token" "$PLATFORM_NS" codebay-admin token random_token)
platform_key=$(secret_value "$s/platform-key" "$PLATFORM_NS" codebay-platform-key key random_key)
# secret NAME ARGS...: creates or updates a generic Secret in the platform namespace (values never on a command line).
secret_from_files() {
  local name=$1
  shift
  if ((DRY_RUN)); then
    log "[dry-run] Secret $PLATFORM_NS/$name ($*)"
    return
  fi
  k -n "$PLATFORM_NS" create secret generic "$name" "$@" --dry-run=client -o yaml |
    k label --local -f - app.kubernetes.io/part-of=codebay -o yaml | k apply -f - >/dev/null
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(umask 077 && printf '%s' "$redis_password" >"$tmp/password" && printf '%s' "$admin_token" >"$tmp/token" && printf '%s' "$platform_key" >"$tmp/key")
secret_from_files codebay-redis --from-file=password="$tmp/password"
secret_from_files codebay-admin --from-file=token="$tmp/token"
secret_from_files codebay-platform-key --from-file=key="$tmp/key"
if ((DRY_RUN)); then
  log "[dry-run] Secret $PLATFORM_NS/codebay-tls (type kubernetes.io/tls, from $crt)"
else
  k -n "$PLATFORM_NS" create secret tls codebay-tls --cert="$crt" --key="$key" --dry-run=client -o yaml | k apply -f - >/dev/null
fi
# Per-user API tokens: made empty once; yours to fill (services/gateway/src/add-token.ts).
if ((DRY_RUN)) || ! k -n "$PLATFORM_NS" get secret codebay-tokens >/dev/null 2>&1; then
  echo '{"tokens": []}' >"$tmp/tokens.json"
  secret_from_files codebay-tokens --from-file=tokens.json="$tmp/tokens.json"
fi
# Registry users: codebay's own registry makes them; another registry may want them.
if ((WITH_REGISTRY)); then
  command -v htpasswd >/dev/null || die "htpasswd not found (apt-get install apache2-utils): --with-registry needs it for the registry users"
  REGISTRY_PULL_AUTH=codebay-pull:$(secret_value "$s/registry-pull" "$PLATFORM_NS" codebay-registry-pull auth random_token | sed 's/^codebay-pull://')
  REGISTRY_PUSH_AUTH=codebay-push:$(secret_value "$s/registry-push" "$PLATFORM_NS" codebay-registry-push auth random_token | sed 's/^codebay-push://')
  if ((!DRY_RUN)); then
    (umask 077 && htpasswd -Bbn codebay-pull "${REGISTRY_PULL_AUTH#*:}" >"$tmp/pull.htpasswd" && htpasswd -Bbn codebay-push "${REGISTRY_PUSH_AUTH#*:}" >"$tmp/push.htpasswd")
  fi
  secret_from_files codebay-registry-htpasswd --from-file=pull.htpasswd="$tmp/pull.htpasswd" --from-file=push.htpasswd="$tmp/push.htpasswd"
fi
if [[ -n ${REGISTRY_PULL_AUTH:-} ]]; then
  (umask 077 && printf '%s' "$REGISTRY_PULL_AUTH" >"$tmp/pull-auth")
  secret_from_files codebay-registry-pull --from-file=auth="$tmp/pull-auth"
  # The kubelet's copy for instances (IMAGE_PULL_SECRET), in the instance namespace.
  if ((DRY_RUN)); then log "[dry-run] Secret $INSTANCE_NS/codebay-registry-pull (dockerconfigjson)"; else
    (umask 077 && printf '{"auths":{"%s":{"auth":"%s"}}}' "$REGISTRY" "$(printf '%s' "$REGISTRY_PULL_AUTH" | base64 -w0)" >"$tmp/dockerconfig.json")
    k -n "$INSTANCE_NS" create secret generic codebay-registry-pull --type=kubernetes.io/dockerconfigjson \
      --from-file=.dockerconfigjson="$tmp/dockerconfig.json" --dry-run=client -o yaml | k apply -f - >/dev/null
  fi
fi
if [[ -n ${REGISTRY_PUSH_AUTH:-} ]]; then
  (umask 077 && printf '%s' "$REGISTRY_PUSH_AUTH" >"$tmp/push-auth")
  secret_from_files codebay-registry-push --from-file=auth="$tmp/push-auth"
fi
log "secrets in $PLATFORM_NS: codebay-redis, codebay-admin, codebay-platform-key, codebay-tls, codebay-tokens (kept in $s, mode 0600)"

# --- 6. manifests ---------------------------------------------------------------------------------
step "manifests (overlay microk8s, tag $TAG)"
kdir=$STATE/kustomize
overlay_rel=$(realpath --relative-to="$kdir" "$OVERLAY" 2>/dev/null || python3 -c 'import os,sys; print(os.path.relpath(sys.argv[1], sys.argv[2]))' "$OVERLAY" "$kdir")
relative() { realpath --relative-to="$kdir" "$1" 2>/dev/null || echo "$1"; }
components=()
((WITH_REGISTRY == 0)) || components+=("$(relative "$ROOT/deploy/kubernetes/components/registry")")
((AUTOSCALING == 0)) || components+=("$(relative "$ROOT/deploy/kubernetes/components/autoscaling")")
if [[ -n $EXTENSION_SOURCE_PVC ]]; then
  components+=("$(relative "$ROOT/deploy/kubernetes/components/extension-source")")
  # A claim that does not exist would leave every builder Pending.
  ((DRY_RUN)) || k -n "$PLATFORM_NS" get pvc "$EXTENSION_SOURCE_PVC" >/dev/null 2>"$tmp/pvc.err" ||
    die "EXTENSION_SOURCE_PVC=$EXTENSION_SOURCE_PVC: no such PersistentVolumeClaim in $PLATFORM_NS ($(tail -n 1 "$tmp/pvc.err")); create it first"
  log "builders bake extensions from PersistentVolumeClaim $PLATFORM_NS/$EXTENSION_SOURCE_PVC (read-only at /var/lib/codebay/extension-source)"
fi
if ((AUTOSCALING)); then
  log "builders scale with the queue: KEDA asks $PROMETHEUS_URL"
elif ((!DRY_RUN)) && k get crd scaledobjects.keda.sh >/dev/null 2>&1; then
  # An earlier --autoscaling run's ScaledObject would fight BUILDER_REPLICAS.
  k -n "$PLATFORM_NS" delete scaledobject codebay-builder --ignore-not-found >&2 || die "cannot delete the ScaledObject of an earlier --autoscaling run"
fi
# Instances reach no private address, but a node's public one would lead to its host ports.
egress_except=${INSTANCE_EGRESS_EXCEPT:-}
node_addresses=$(k get nodes -o jsonpath='{range .items[*].status.addresses[?(@.type=="InternalIP")]}{.address}{"\n"}{end}{range .items[*].status.addresses[?(@.type=="ExternalIP")]}{.address}{"\n"}{end}' 2>"$tmp/nodes.err") ||
  ((DRY_RUN)) || die "cannot list the nodes' addresses (instances must not reach them): $(tail -n 3 "$tmp/nodes.err")"
for a in $node_addresses; do
  [[ $a == *:* ]] || egress_except+=${egress_except:+,}$a/32
done
log "instances may not reach (beside private ranges): ${egress_except:-nothing more}"
kustomization=$(
  cat <<EOF
# generated by deploy/microk8s/deploy.sh — overwritten on every run
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - $overlay_rel
$( ((${#components[@]})) && printf 'components:\n' && printf '  - %s\n' "${components[@]}")
# Matched by the names the overlay gives them (localhost:32000/…; the registry component's is bare).
images:
  - {name: localhost:32000/codebay, newName: $PULL_PREFIX/codebay, newTag: "$TAG"}
  - {name: localhost:32000/codebay-builder, newName: $PULL_PREFIX/codebay-builder, newTag: "$TAG"}
  - {name: localhost:32000/codebay-dind, newName: $PULL_PREFIX/codebay-dind, newTag: "$TAG"}
  - {name: localhost:32000/codebay-redis, newName: $PULL_PREFIX/codebay-redis, newTag: "$TAG"}
  - {name: codebay-registry, newName: $PULL_PREFIX/codebay-registry, newTag: "$TAG"}
replicas:
$( ((AUTOSCALING)) || echo "  - {name: codebay-builder, count: $BUILDER_REPLICAS}")
  - {name: codebay-gateway, count: $GATEWAY_REPLICAS}
configMapGenerator:
  - name: codebay-config
    namespace: $PLATFORM_NS
    behavior: merge
    literals:
      - BASE_DOMAIN=$BASE_DOMAIN
      - REGISTRY=$REGISTRY
      - REGISTRY_PUSH=$REGISTRY_PUSH
      - REGISTRY_API_URL=$REGISTRY_API_URL
      - STORAGE_CLASS=${STORAGE_CLASS:-}
      - DIND_REGISTRY_MIRRORS=${DIND_REGISTRY_MIRRORS:-}
      - INSTANCE_EGRESS_EXCEPT=$egress_except
      - CODEBAY_EDITOR_IMAGE_REPO=$PULL_PREFIX/codebay-editor
$( [[ -n $editor_versions ]] && echo "      - CODEBAY_VSCODE_VERSIONS=$editor_versions")
$( [[ -n ${JOB_LOCK_SECONDS:-} ]] && echo "      - JOB_LOCK_SECONDS=$JOB_LOCK_SECONDS")
$( [[ -n ${STALLED_INTERVAL_SECONDS:-} ]] && echo "      - STALLED_INTERVAL_SECONDS=$STALLED_INTERVAL_SECONDS")
$( [[ -n ${REGISTRY_PULL_AUTH:-} ]] && echo "      - IMAGE_PULL_SECRET=codebay-registry-pull")
patches:
  - target: {kind: Ingress, name: codebay}
    patch: |-
      - op: replace
        path: /spec/ingressClassName
        value: $INGRESS_CLASS
      - {op: replace, path: /spec/rules/0/host, value: "$BASE_DOMAIN"}
      - {op: replace, path: /spec/rules/1/host, value: "*.$BASE_DOMAIN"}
      - {op: replace, path: /spec/tls/0/hosts, value: ["$BASE_DOMAIN", "*.$BASE_DOMAIN"]}
$( [[ -n $EXTENSION_SOURCE_PVC ]] && printf '%s\n' "  - target: {kind: Deployment, name: codebay-builder}" "    patch: |-" \
  "      {apiVersion: apps/v1, kind: Deployment, metadata: {name: codebay-builder, namespace: $PLATFORM_NS}," \
  "       spec: {template: {spec: {volumes: [{name: extension-source, persistentVolumeClaim: {claimName: $EXTENSION_SOURCE_PVC, readOnly: true}}]}}}}")
$( ((AUTOSCALING)) && printf '%s\n' "  - target: {kind: ScaledObject, name: codebay-builder}" "    patch: |-" \
  "      - {op: replace, path: /spec/triggers/0/metadata/serverAddress, value: \"$PROMETHEUS_URL\"}" \
  "      - {op: replace, path: /spec/maxReplicaCount, value: $BUILDER_MAX_REPLICAS}" \
  "      - {op: replace, path: /spec/advanced/horizontalPodAutoscalerConfig/behavior/scaleDown/stabilizationWindowSeconds, value: $BUILDER_SCALE_DOWN_SECONDS}" \
  "      - {op: replace, path: /spec/advanced/horizontalPodAutoscalerConfig/behavior/scaleDown/policies/0/periodSeconds, value: $((BUILDER_SCALE_DOWN_SECONDS < 60 ? BUILDER_SCALE_DOWN_SECONDS : 60))}")
EOF
)
if ((DRY_RUN)); then
  log "[dry-run] would write $kdir/kustomization.yaml:"
  printf '%s\n' "$kustomization" | sed 's/^/    /' >&2
  log "[dry-run] ${KUBECTL[*]} apply -k $kdir"
else
  printf '%s\n' "$kustomization" >"$kdir/kustomization.yaml"
  k kustomize "$kdir" >"$kdir/rendered.yaml" 2>"$tmp/kustomize.err" || die "kustomize of $kdir failed: $(tail -n 5 "$tmp/kustomize.err")"
  k apply -f "$kdir/rendered.yaml" >&2 || die "kubectl apply of $kdir/rendered.yaml failed (above)"
fi

if ((AUTOSCALING)); then
  # KEDA reads the queue's depth from Prometheus: it must scrape the gateways.
  step "queue metrics for KEDA: deploy/monitoring/kubernetes (PodMonitor, PrometheusRule)"
  if ((DRY_RUN)) || k get crd podmonitors.monitoring.coreos.com >/dev/null 2>&1; then
    kr apply -k "$ROOT/deploy/monitoring/kubernetes" >&2 || die "kubectl apply -k deploy/monitoring/kubernetes failed (above)"
    if ((MICROK8S)); then
      kr label namespace observability codebay.dev/metrics=true --overwrite >&2 || die "cannot label namespace observability (its Prometheus scrapes codebay's metrics ports)"
    else
      log "label the namespace your Prometheus runs in with codebay.dev/metrics=true (codebay's NetworkPolicies admit scrapes from there)"
    fi
  else
    log "WARNING: no Prometheus Operator here (no CRD podmonitors.monitoring.coreos.com): make the Prometheus at $PROMETHEUS_URL scrape codebay (deploy/monitoring/README.md), or KEDA sees an empty queue"
  fi
fi

# --- 7. rollout ----------------------------------------------------------------------------------
step "waiting for the rollout"
rollout_failed() {
  log "$1 did not become ready; its pods and recent events:"
  k -n "$PLATFORM_NS" get pods -o wide >&2 || true
  k -n "$PLATFORM_NS" get events --sort-by=.lastTimestamp 2>/dev/null | tail -n 15 >&2 || true
  die "$1 is not ready (kubectl -n $PLATFORM_NS describe $1)"
}
waits=(statefulset/codebay-redis deployment/codebay-provisioner deployment/codebay-gateway)
((BUILDER_REPLICAS == 0)) || waits+=(deployment/codebay-builder)
((WITH_REGISTRY == 0)) || waits=(deployment/codebay-registry "${waits[@]}")
for w in "${waits[@]}"; do
  kr -n "$PLATFORM_NS" rollout status "$w" --timeout=600s >&2 || rollout_failed "$w"
done

# --- 8. hosts entry -----------------------------------------------------------------------------------
node_ip=
if ((HOSTS)); then
  step "hosts entry"
  if ((!DRY_RUN)); then
    node_ip=$(k get nodes -o jsonpath='{.items[0].status.addresses[?(@.type=="InternalIP")].address}' 2>/dev/null || true)
  fi
  node_ip=${node_ip:-<node IP>}
  line="$node_ip $BASE_DOMAIN # codebay"
  if ((!DRY_RUN)) && grep -qxF "$line" /etc/hosts; then
    log "/etc/hosts already has: $line"
  elif ((DRY_RUN)); then
    log "[dry-run] replace the line ending in '$BASE_DOMAIN # codebay' in /etc/hosts with: $line"
  else
    [[ -w /etc/hosts ]] || die "cannot write /etc/hosts (run as root, or pass --no-hosts and add '$node_ip $BASE_DOMAIN' yourself)"
    { grep -vE "[[:space:]]${BASE_DOMAIN//./\\.} # codebay\$" /etc/hosts || true; echo "$line"; } >"$tmp/hosts"
    cat "$tmp/hosts" >/etc/hosts # in place: /etc/hosts may be a bind mount
    log "/etc/hosts: $line"
  fi
  log "editors live at https://<id>.$BASE_DOMAIN: /etc/hosts has no wildcards; point *.$BASE_DOMAIN at $node_ip in your DNS (e.g. dnsmasq: address=/$BASE_DOMAIN/$node_ip)"
fi

# --- 9. done -------------------------------------------------------------------------------------------
step "done"
((DRY_RUN)) && log "dry run: nothing was changed; a real run would end with:"
cat >&2 <<EOF

codebay is deployed.
  API          https://$BASE_DOMAIN/api   (health: https://$BASE_DOMAIN/health)
  editors      https://<instance id>.$BASE_DOMAIN/
  admin token  in $s/admin-token (and Secret $PLATFORM_NS/codebay-admin); not printed
  try          curl -k -X POST -H "Authorization: Bearer \$(cat $s/admin-token)" -H 'content-type: application/json' \\
                 -d '{"user_id": "alice"}' https://$BASE_DOMAIN/api/instances/simple
  status       ${KUBECTL[*]} -n $PLATFORM_NS get pods
EOF
