#!/usr/bin/env bash
# Builds a real Kubernetes control plane (kube-apiserver, kube-controller-manager,
# kube-scheduler, kubectl), etcd, and kwok/kwokctl from Go modules, into
#
#   ${CODEBAY_CACHE:-/var/cache/codebay}/k8s/<k8s-version>-kwok-<kwok-version>/bin/
#
# and prints that directory as the last line of stdout (everything else goes to
# stderr). Versions come from the committed wrapper modules test/k8s/kube and
# test/k8s/kwok (regenerate them with test/k8s/gen-modules.sh). Idempotent: if
# the bin dir exists it is printed at once. A cold build takes 20-45 minutes
# on 2 cores; the Go module and build caches live under $CODEBAY_CACHE/go, so a
# rebuild after a version bump reuses most of the work.
#
#   build.sh          build if needed; print the bin dir
#   build.sh --dir    print the bin dir it would use, build nothing
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${CODEBAY_CACHE:-/var/cache/codebay}
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kubectl etcd kwok kwokctl)

modversion() { awk -v m="$2" '$1 == m && $2 ~ /^v/ { print $2; exit }' "$HERE/$1/go.mod"; }
K8S_VERSION=$(modversion kube k8s.io/kubernetes)
ETCD_VERSION=$(modversion kube go.etcd.io/etcd/server/v3)
KWOK_VERSION=$(modversion kwok sigs.k8s.io/kwok)
[[ -n $K8S_VERSION && -n $ETCD_VERSION && -n $KWOK_VERSION ]] || {
  echo "build.sh: cannot read versions from $HERE/{kube,kwok}/go.mod" >&2
  exit 1
}

DEST="$CACHE/k8s/$K8S_VERSION-kwok-$KWOK_VERSION"
if [[ ${1:-} == --dir ]]; then
  echo "$DEST/bin"
  exit 0
fi

complete() {
  local b
  for b in "${BINARIES[@]}"; do [[ -x $1/bin/$b ]] || return 1; done
}
if complete "$DEST"; then
  echo "$DEST/bin"
  exit 0
fi

mkdir -p "$CACHE/k8s"
# One build at a time (two concurrent `cluster.sh up` must not build twice).
exec 9>"$CACHE/k8s/.build.lock"
if ! flock -n 9; then
  echo "build.sh: another build is running; waiting for it" >&2
  flock 9
fi
if complete "$DEST"; then
  echo "$DEST/bin"
  exit 0
fi

export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false" \
  GOPATH="$CACHE/go" GOMODCACHE="$CACHE/go/pkg/mod" GOCACHE="$CACHE/go/cache"
[[ -x $GO ]] || { echo "build.sh: no go toolchain ($GO)" >&2; exit 1; }

tmp=$(mktemp -d "$CACHE/k8s/.build-$K8S_VERSION-kwok-$KWOK_VERSION.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
chmod 755 "$tmp" # mktemp makes it 0700
mkdir -p "$tmp/bin"

start=$(date +%s)
log() { echo "build.sh: [$(($(date +%s) - start))s] $*" >&2; }
gobuild() { nice -n 10 "$GO" build -p 2 -trimpath "$@" >&2; }

log "Kubernetes $K8S_VERSION, etcd $ETCD_VERSION, kwok $KWOK_VERSION -> $DEST (go: $("$GO" env GOVERSION))"

# Same -X flags as kubernetes' hack/lib/version.sh: kwokctl reads each
# component's --version to choose its flags, so they must say the real version.
minor=${K8S_VERSION#v1.}
minor=${minor%%.*}
kube_ldflags="-s -w"
for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
  kube_ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  kube_ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done

cd "$HERE/kube"
log "building kube-apiserver kube-controller-manager kube-scheduler kubectl"
gobuild -tags notest,grpcnotrace -ldflags "$kube_ldflags" -o "$tmp/bin/" \
  k8s.io/kubernetes/cmd/kube-apiserver \
  k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler \
  k8s.io/kubernetes/cmd/kubectl
log "building etcd"
gobuild -ldflags "-s -w" -o "$tmp/bin/etcd" go.etcd.io/etcd/server/v3

cd "$HERE/kwok"
log "building kwok kwokctl"
kwok_ldflags="-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION"
kwok_ldflags+=" -X sigs.k8s.io/kwok/pkg/consts.KubeVersion=${K8S_VERSION#v}"
gobuild -ldflags "$kwok_ldflags" -o "$tmp/bin/" \
  sigs.k8s.io/kwok/cmd/kwok sigs.k8s.io/kwok/cmd/kwokctl

for b in "${BINARIES[@]}"; do
  [[ -x $tmp/bin/$b ]] || { echo "build.sh: $b was not built" >&2; exit 1; }
done
"$tmp/bin/kube-apiserver" --version >&2
"$tmp/bin/etcd" --version >&2
"$tmp/bin/kwokctl" --version >&2
cat >"$tmp/VERSIONS" <<EOF
kubernetes=$K8S_VERSION
etcd=$ETCD_VERSION
kwok=$KWOK_VERSION
go=$("$GO" env GOVERSION)
EOF

# Atomic: the dir appears complete or not at all (rename(2) on one filesystem).
rm -rf "$DEST"
mv -T "$tmp" "$DEST"
trap - EXIT
log "done"
echo "$DEST/bin"
