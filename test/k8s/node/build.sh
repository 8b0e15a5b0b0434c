#!/usr/bin/env bash
# Builds the pieces of the real Kubernetes node (test/k8s/node/node.sh) from Go
# modules, each into its own cache dir keyed by version:
#
#   $CODEBAY_CACHE/k8s/node/<piece>-<version>/bin/     (default cache /var/cache/codebay)
#
#   kube-node    kubelet, kube-proxy   (k8s.io/kubernetes, the module of ../kube)
#   containerd   containerd, containerd-shim-runc-v2, ctr   (v2, CRI built in)
#   runc         runc (cgo, libseccomp; >= 1.2 for idmapped mounts: hostUsers: false)
#   coredns      coredns
#   kube-router  kube-router (run as NetworkPolicy firewall only)
#   traefik      traefik (ingress controller, IngressClass `public`)
#   keda         keda-operator, keda-adapter (KEDA: builders that scale with the queue)
#   prometheus   prometheus (v0.3xx module = Prometheus 3.x; Kubernetes service discovery,
#                which Debian's package leaves out; no web UI assets: the API only)
#   tools        pause, hostpath-provisioner (our own Go code in tools/)
#
# Versions come from mod/*/go.mod (regenerate with gen-modules.sh) and
# ../kube/go.mod. A piece whose dir exists is not rebuilt; a build goes to a
# temporary dir renamed into place (atomic), one build at a time (flock).
# Installs the Debian packages it needs (libseccomp-dev, ...) if missing.
#
#   build.sh              build what is missing
#   build.sh PIECE...     only these
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=SCRIPTDIR/lib.sh
source "$HERE/lib.sh"
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}

pieces=("$@")
((${#pieces[@]})) || pieces=("${NODE_PIECES[@]}")
todo=()
for p in "${pieces[@]}"; do
  piece_version "$p" >/dev/null || { echo "build.sh: unknown piece $p" >&2; exit 2; }
  piece_complete "$p" || todo+=("$p")
done
((${#todo[@]} == 0)) && exit 0

mkdir -p "$NODE_CACHE"
exec 9>"$NODE_CACHE/.build.lock"
if ! flock -n 9; then
  echo "node/build.sh: another build is running; waiting for it" >&2
  flock 9
fi

ensure_packages
export GOTOOLCHAIN=local GOFLAGS="-mod=readonly -buildvcs=false" \
  GOPATH="$CACHE/go" GOMODCACHE="$CACHE/go/pkg/mod" GOCACHE="$CACHE/go/cache"
[[ -x $GO ]] || { echo "node/build.sh: no go toolchain ($GO)" >&2; exit 1; }

start=$(date +%s)
log() { echo "node/build.sh: [$(($(date +%s) - start))s] $*" >&2; }
gobuild() { nice -n 10 "$GO" build -p 2 -trimpath "$@" >&2; }

build_piece() { # NAME TMPDIR
  local name=$1 out=$2/bin ver
  ver=$(piece_version "$name")
  case $name in
  kube-node)
    # Same -X flags as build.sh (kubernetes' hack/lib/version.sh).
    local minor=${ver#v1.} flags="-s -w" pkg
    minor=${minor%%.*}
    for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
      flags+=" -X $pkg.gitVersion=$ver -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
      flags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
    done
    (cd "$HERE/../kube" && CGO_ENABLED=0 gobuild -tags notest,grpcnotrace -ldflags "$flags" -o "$out/" \
      k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy)
    ;;
  containerd)
    (cd "$HERE/mod/containerd" && CGO_ENABLED=0 gobuild -tags "no_btrfs no_devmapper no_zfs no_aufs" \
      -ldflags "-s -w -X github.com/containerd/containerd/v2/version.Version=$ver" -o "$out/" \
      github.com/containerd/containerd/v2/cmd/containerd \
      github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2 \
      github.com/containerd/containerd/v2/cmd/ctr)
    ;;
  runc)
    (cd "$HERE/mod/runc" && CGO_ENABLED=1 gobuild -tags seccomp \
      -ldflags "-s -w -X main.version=${ver#v}" -o "$out/runc" github.com/opencontainers/runc)
    ;;
  coredns)
    (cd "$HERE/mod/coredns" && CGO_ENABLED=0 gobuild -ldflags "-s -w" -o "$out/coredns" github.com/coredns/coredns)
    ;;
  kube-router)
    (cd "$HERE/mod/kube-router" && CGO_ENABLED=0 gobuild \
      -ldflags "-s -w -X github.com/cloudnativelabs/kube-router/v2/pkg/version.Version=$ver" \
      -o "$out/kube-router" github.com/cloudnativelabs/kube-router/v2/cmd/kube-router)
    ;;
  traefik)
    (cd "$HERE/mod/traefik" && CGO_ENABLED=0 gobuild \
      -ldflags "-s -w -X github.com/traefik/traefik/v3/pkg/version.Version=$ver" \
      -o "$out/traefik" github.com/traefik/traefik/v3/cmd/traefik)
    ;;
  keda)
    # As KEDA's Makefile builds them (its version package, no cgo); -s -w: 430 MB unstripped.
    local kf="-s -w -X github.com/kedacore/keda/v2/version.Version=${ver#v}"
    (cd "$HERE/mod/keda" && CGO_ENABLED=0 gobuild -ldflags "$kf" -o "$out/keda-operator" github.com/kedacore/keda/v2/cmd/operator)
    (cd "$HERE/mod/keda" && CGO_ENABLED=0 gobuild -ldflags "$kf" -o "$out/keda-adapter" github.com/kedacore/keda/v2/cmd/adapter)
    # KEDA's own manifests (node.sh applies config/minimal with these images).
    cp -r "$GOMODCACHE/github.com/kedacore/keda/v2@$ver/config" "$2/config"
    chmod -R u+w "$2/config"
    ;;
  prometheus)
    # Prometheus 3.x is module v0.3xx.y: v0.316.0 is 3.16.0.
    local pv=${ver#v0.} pf
    pf="-s -w -X github.com/prometheus/common/version.Version=3.$((${pv%%.*} - 300)).${pv#*.}"
    (cd "$HERE/mod/prometheus" && CGO_ENABLED=0 gobuild -tags netgo -ldflags "$pf" -o "$out/prometheus" \
      github.com/prometheus/prometheus/cmd/prometheus)
    ;;
  tools)
    (cd "$HERE/tools" && CGO_ENABLED=0 gobuild -ldflags "-s -w" -o "$out/" ./cmd/pause ./cmd/hostpath-provisioner)
    ;;
  esac
}

for p in "${todo[@]}"; do
  piece_complete "$p" && continue # built by the holder of the lock
  dest=$(piece_dir "$p")
  tmp=$(mktemp -d "$NODE_CACHE/.build-$p.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  chmod 755 "$tmp"
  mkdir -p "$tmp/bin"
  t0=$(date +%s)
  log "building $p $(piece_version "$p") -> $dest"
  build_piece "$p" "$tmp"
  piece_complete "$p" "$tmp" || { echo "node/build.sh: $p: not all of $(piece_bins "$p") were built" >&2; exit 1; }
  echo "$p=$(piece_version "$p") go=$("$GO" env GOVERSION) seconds=$(($(date +%s) - t0))" >"$tmp/VERSION"
  rm -rf "$dest"
  mv -T "$tmp" "$dest"
  trap - EXIT
  log "built $p in $(($(date +%s) - t0))s"
done
log "done"
