# shellcheck shell=bash
# Shared by test/k8s/node/{build,node,smoke}.sh: where each piece of the real
# node is cached. Each piece lives in $CACHE/k8s/node/<piece>-<version>/bin/,
# so a version bump of one piece rebuilds that piece only.

NODE_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${CODEBAY_CACHE:-/var/cache/codebay}
NODE_CACHE=$CACHE/k8s/node

# modversion GO.MOD MODULE: the version a go.mod requires.
modversion() {
  awk -v m="$2" '($1 == m || ($1 == "require" && $2 == m)) { for (i = 1; i <= NF; i++) if ($i ~ /^v[0-9]/) { print $i; exit } }' "$1"
}

# piece_version NAME: the version that keys NAME's cache dir.
piece_version() {
  case $1 in
  kube-node) modversion "$NODE_HERE/../kube/go.mod" k8s.io/kubernetes ;;
  containerd) modversion "$NODE_HERE/mod/containerd/go.mod" github.com/containerd/containerd/v2 ;;
  runc) modversion "$NODE_HERE/mod/runc/go.mod" github.com/opencontainers/runc ;;
  coredns) modversion "$NODE_HERE/mod/coredns/go.mod" github.com/coredns/coredns ;;
  kube-router) modversion "$NODE_HERE/mod/kube-router/go.mod" github.com/cloudnativelabs/kube-router/v2 ;;
  traefik) modversion "$NODE_HERE/mod/traefik/go.mod" github.com/traefik/traefik/v3 ;;
  keda) modversion "$NODE_HERE/mod/keda/go.mod" github.com/kedacore/keda/v2 ;;
  prometheus) modversion "$NODE_HERE/mod/prometheus/go.mod" github.com/prometheus/prometheus ;;
  # Our own code: keyed by the hash of its sources.
  tools) (cd "$NODE_HERE/tools" && find . -type f \( -name '*.go' -o -name 'go.mod' -o -name 'go.sum' \) -print0 |
    LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-12) ;;
  *) return 1 ;;
  esac
}

# piece_bins NAME: the binaries a piece must contain.
piece_bins() {
  case $1 in
  kube-node) echo kubelet kube-proxy ;;
  containerd) echo containerd containerd-shim-runc-v2 ctr ;;
  runc) echo runc ;;
  coredns) echo coredns ;;
  kube-router) echo kube-router ;;
  traefik) echo traefik ;;
  keda) echo keda-operator keda-adapter ;;
  prometheus) echo prometheus ;;
  tools) echo pause hostpath-provisioner ;;
  esac
}

# shellcheck disable=SC2034 # used by build.sh
NODE_PIECES=(kube-node containerd runc coredns kube-router traefik keda prometheus tools)

piece_dir() { echo "$NODE_CACHE/$1-$(piece_version "$1")"; }

piece_complete() { # NAME [DIR]
  local d=${2:-$(piece_dir "$1")} b
  for b in $(piece_bins "$1"); do [[ -x $d/bin/$b ]] || return 1; done
  # KEDA's own manifests come with its binaries (node.sh applies them).
  [[ $1 != keda || -f $d/config/minimal/kustomization.yaml ]]
}

# Debian packages the node needs at run time (and libseccomp-dev to build runc).
NODE_PACKAGES=(containernetworking-plugins iptables ipset conntrack openssl busybox-static libseccomp-dev gcc libc6-dev pkg-config)

ensure_packages() {
  local missing=() p
  for p in "${NODE_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
  done
  ((${#missing[@]} == 0)) && return 0
  echo "node: installing Debian packages: ${missing[*]}" >&2
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2; then
    apt-get update -qq >&2 &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  fi
}
