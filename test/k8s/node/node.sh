#!/usr/bin/env bash
# A real single-node Kubernetes for tests, where pods really run: its own
# control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler
# from test/k8s/build.sh) and a node (kubelet, kube-proxy, containerd v2 + runc,
# Debian's CNI plugins, kube-router as NetworkPolicy firewall), with CoreDNS,
# Traefik (IngressClass `public`), a hostPath storage provisioner (default
# StorageClass `microk8s-hostpath`) and a registry at localhost:32000, as on
# MicroK8s. Everything runs as local processes (CoreDNS, Traefik and the registry as pods)
# under one dir; see test/k8s/README.md for addresses, ports and side effects.
#
#   test/k8s/node/node.sh up       build if needed, start, wait until the node,
#                                  CoreDNS, Traefik and the provisioner are ready
#   test/k8s/node/node.sh env      print export lines (CODEBAY_NODE_KUBECONFIG, ...)
#   test/k8s/node/node.sh status   exit 0 if the node is up and Ready
#   test/k8s/node/node.sh down     stop everything and undo every side effect
#
# Environment:
#   CODEBAY_CACHE      cache root (default /var/cache/codebay)
#   CODEBAY_NODE_DIR   where the node lives (default /var/lib/codebay-k8s-node)
#   CODEBAY_NODE_FRESH=1  `up` tears a running node down first
#
# One node per machine (fixed /kubepods cgroups, the node address): a lock
# (/run/lock/codebay-k8s-node.lock) serialises up/down. `up` on a node that is
# up and healthy only re-applies the add-ons; a node found half up (processes
# killed) is torn down and started afresh.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=SCRIPTDIR/lib.sh
source "$HERE/lib.sh"

NODE_DIR=${CODEBAY_NODE_DIR:-/var/lib/codebay-k8s-node}
NODE_IP=10.245.255.1
NODE_NAME=codebay-node
SERVICE_CIDR=10.152.183.0/24
KUBERNETES_SVC_IP=10.152.183.1
DNS_IP=10.152.183.10
CLUSTER_CIDR=10.1.0.0/16
POD_CIDR=10.1.0.0/24
BRIDGE=cbnode0 # not br-*: deploy/local/components.sh rejects input from br-+
CNI_NET=codebay-node
API_PORT=16443
REGISTRY_PORT=32000
# Host-side push address when another process holds 127.0.0.1:32000: still port
# 32000 (components.sh lets its Docker daemons reach loopback ports 32000-32009
# only, and tests use 32002-32009), on another loopback address (Docker speaks
# plain HTTP to any 127.0.0.0/8 registry).
REGISTRY_FALLBACK_IP=127.0.0.2
LOCK=/run/lock/codebay-k8s-node.lock

P=$NODE_DIR
L=$P/logs
SOCK=$P/containerd/containerd.sock
ADMIN_KUBECONFIG=$P/admin.kubeconfig

log() { echo "node.sh: [$(date +%T)] $*" >&2; }
die() {
  log "ERROR: $*"
  exit 1
}

bins() {
  CP_BIN=$("$HERE/../build.sh" --dir)
  KUBE_NODE_BIN=$(piece_dir kube-node)/bin
  CTRD_BIN=$(piece_dir containerd)/bin
  RUNC_BIN=$(piece_dir runc)/bin
  COREDNS_VERSION=$(piece_version coredns)
  TRAEFIK_VERSION=$(piece_version traefik)
  TOOLS_VERSION=$(piece_version tools)
  COREDNS_BIN=$(piece_dir coredns)/bin
  TRAEFIK_BIN=$(piece_dir traefik)/bin
  KUBE_ROUTER_BIN=$(piece_dir kube-router)/bin
  TOOLS_BIN=$(piece_dir tools)/bin
  KEDA_VERSION=$(piece_version keda)
  KEDA_DIR=$(piece_dir keda)
  PROMETHEUS_VERSION=$(piece_version prometheus)
  PROMETHEUS_BIN=$(piece_dir prometheus)/bin
}

kube() { "$CP_BIN/kubectl" --kubeconfig "$ADMIN_KUBECONFIG" --request-timeout=10s "$@"; }
ctr() { "$CTRD_BIN/ctr" -a "$SOCK" -n k8s.io "$@"; }

lock() {
  mkdir -p "$(dirname "$LOCK")"
  exec 7>"$LOCK"
  flock -w 900 7 || die "timed out waiting for $LOCK (another node.sh up/down?)"
}

# --- processes ---------------------------------------------------------------

# start NAME CMD...: a daemon in its own session, its output in $L/NAME.log,
# without our fds > 2 (the lock's fd, a caller's pipes).
start() {
  local name=$1
  shift
  (
    for fd in "/proc/$BASHPID/fd"/*; do
      fd=${fd##*/}
      if ((fd > 2)); then eval "exec $fd>&-" 2>/dev/null || true; fi
    done
    exec setsid "$@" </dev/null >>"$L/$name.log" 2>&1
  ) &
  echo $! >"$P/pids/$name.pid"
}

# pid_of NAME: the pid of our daemon NAME if it is alive and is what we started.
pid_of() {
  local f=$P/pids/$1.pid pid exe
  [[ -f $f ]] || return 1
  pid=$(<"$f")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
  [[ -f $P/pids/$1.exe && $exe == "$(<"$P/pids/$1.exe")" ]] || return 1
  echo "$pid"
}

# Record what start() ran so pid_of can tell our process from a reused pid.
started() {
  local pid exe
  pid=$(<"$P/pids/$1.pid")
  for _ in $(seq 100); do
    # The subshell execs setsid, which execs the daemon: wait until it has.
    exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || break
    [[ $exe == */bash || $exe == */setsid ]] || { echo "$exe" >"$P/pids/$1.exe"; return 0; }
    sleep 0.02
  done
  readlink "/proc/$pid/exe" >"$P/pids/$1.exe" 2>/dev/null || true
}

run() { # NAME CMD...
  start "$@"
  started "$1"
}

# gone PID: exited (or a zombie its parent has not reaped yet).
gone() { [[ ! -e /proc/$1 ]] || grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; }

# stop [-w SECONDS] NAME...: SIGTERM to all, wait until all are gone (default
# 10 s), then SIGKILL to the rest.
stop() {
  local wait=10 pids=() n pid
  if [[ $1 == -w ]]; then
    wait=$2
    shift 2
  fi
  for n in "$@"; do
    if pid=$(pid_of "$n"); then
      kill "$pid" 2>/dev/null || true
      pids+=("$pid")
    fi
  done
  local deadline=$((SECONDS + wait)) left
  while ((${#pids[@]})); do
    left=()
    for pid in "${pids[@]}"; do gone "$pid" || left+=("$pid"); done
    pids=("${left[@]}")
    ((${#pids[@]} == 0 || SECONDS >= deadline)) && break
    sleep 0.1
  done
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  for n in "$@"; do rm -f "$P/pids/$n.pid" "$P/pids/$n.exe"; done
}

alive() { pid_of "$1" >/dev/null; }

wait_for() { # SECONDS WHAT CMD...
  local deadline=$((SECONDS + $1)) what=$2
  shift 2
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.25
  done
  log "$what"
}

# --- the node address ----------------------------------------------------------

# A connection to a private address that no interface has leaves the machine,
# which is forbidden here: assign NODE_IP to lo, and check it, before anything
# that could talk to it starts.
has_node_ip() { ip -4 -o addr show dev lo | grep -qw "inet $NODE_IP/32"; }
ensure_node_ip() {
  has_node_ip || ip addr add "$NODE_IP/32" dev lo
  has_node_ip || die "$NODE_IP/32 is not on lo after 'ip addr add'; refusing to start (traffic to it would leave the machine)"
}

# --- sysctls -------------------------------------------------------------------

# What kubelet (protectKernelDefaults: false), the bridge CNI plugin and
# kube-proxy may change. Recorded before the first start; `down` restores them.
SYSCTLS=(kernel.panic kernel.panic_on_oops vm.overcommit_memory vm.panic_on_oom
  kernel.keys.root_maxkeys kernel.keys.root_maxbytes net.ipv4.ip_forward
  net.ipv4.conf.all.route_localnet net.bridge.bridge-nf-call-iptables
  net.bridge.bridge-nf-call-ip6tables net.netfilter.nf_conntrack_max
  net.netfilter.nf_conntrack_tcp_timeout_established
  net.netfilter.nf_conntrack_tcp_timeout_close_wait
  net.netfilter.nf_conntrack_tcp_be_liberal)

record_host_state() {
  [[ -f $P/host.before ]] && return 0
  local s v
  {
    for s in "${SYSCTLS[@]}"; do
      v=$(sysctl -n "$s" 2>/dev/null) && echo "sysctl $s=$v"
    done
    for d in /var/log/pods /var/log/containers /var/lib/kubelet /var/lib/cni /run/containerd /var/run/nri; do
      [[ -e $d ]] && echo "existed $d"
    done
    nft list tables 2>/dev/null | sed 's/^/nft /'
  } >"$P/host.before.tmp"
  mv "$P/host.before.tmp" "$P/host.before"
}

restore_host_state() {
  [[ -f $P/host.before ]] || return 0
  local line s v now
  while read -r line; do
    [[ $line == sysctl\ * ]] || continue
    s=${line#sysctl }
    v=${s#*=}
    s=${s%%=*}
    now=$(sysctl -n "$s" 2>/dev/null) || continue
    if [[ $now != "$v" ]]; then
      if sysctl -qw "$s=$v" 2>/dev/null; then log "restored $s=$v (was $now)"; else log "could not restore $s=$v"; fi
    fi
  done <"$P/host.before"
  # Directories kubelet and containerd make outside our dir.
  local d
  for d in /var/log/pods /var/log/containers /var/lib/kubelet /var/lib/cni /var/run/nri; do
    grep -qx "existed $d" "$P/host.before" || rm -rf "$d"
  done
  # /run/containerd is shared with other containerds: only our leftovers.
  grep -qx "existed /run/containerd" "$P/host.before" || rmdir /run/containerd/{s,fifo,runc/k8s.io,runc} /run/containerd 2>/dev/null || true
  # nftables tables that iptables-nft created for our rules (and left empty).
  local t n
  while read -r t; do
    [[ -n $t ]] || continue
    grep -qxF "nft $t" "$P/host.before" && continue
    n=$(nft list "$t" 2>/dev/null | grep -cvE '^\s*(table|chain|type|policy|\}|$)' || true)
    if [[ $n == 0 ]]; then nft delete "$t" 2>/dev/null || true; fi
  done < <(nft list tables 2>/dev/null)
  rm -f "$P/host.before"
}

# --- PKI and kubeconfigs -------------------------------------------------------

pki() {
  local K=$P/pki
  [[ -f $K/done ]] && return 0
  rm -rf "$K"
  mkdir -p "$K"
  (
    cd "$K"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 -subj "/CN=codebay-node-ca" 2>/dev/null
    cert() { # name subject [SANs]
      openssl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "$2" 2>/dev/null
      {
        echo "basicConstraints=CA:FALSE"
        echo "keyUsage=digitalSignature,keyEncipherment"
        echo "extendedKeyUsage=serverAuth,clientAuth"
        [[ -z ${3:-} ]] || echo "subjectAltName=$3"
      } >"$1.ext"
      openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -out "$1.crt" -days 3650 -extfile "$1.ext" 2>/dev/null
      rm -f "$1.csr" "$1.ext"
    }
    cert apiserver "/CN=kube-apiserver" "IP:$NODE_IP,IP:$KUBERNETES_SVC_IP,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
    cert admin "/O=system:masters/CN=codebay-node-admin"
    cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client"
    cert kubelet "/O=system:nodes/CN=system:node:$NODE_NAME" "IP:$NODE_IP,DNS:$NODE_NAME"
    cert kcm "/CN=system:kube-controller-manager"
    cert sched "/CN=system:kube-scheduler"
    cert proxy "/CN=system:kube-proxy"
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
  )
  local kc
  for kc in admin:admin kubelet:kubelet kcm:kcm sched:sched proxy:proxy; do
    cat >"$P/${kc%%:*}.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: codebay-node
    cluster:
      certificate-authority: $K/ca.crt
      server: https://$NODE_IP:$API_PORT
users:
  - name: ${kc#*:}
    user:
      client-certificate: $K/${kc#*:}.crt
      client-key: $K/${kc#*:}.key
contexts:
  - name: codebay-node
    context: { cluster: codebay-node, user: ${kc#*:} }
current-context: codebay-node
EOF
  done
  touch "$K/done"
}
# The aggregation layer (APIServices such as KEDA's external metrics): the API server proxies
# to an extension server with this client certificate, which the extension checks against
# the front-proxy CA the API server publishes (configmap extension-apiserver-authentication).
front_proxy_pki() {
  local K=$P/pki
  [[ -f $K/front-proxy-client.crt ]] && return 0
  (
    cd "$K"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout front-proxy-ca.key -out front-proxy-ca.crt -days 3650 \
      -subj "/CN=codebay-node-front-proxy-ca" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout front-proxy-client.key -out front-proxy-client.csr \
      -subj "/CN=front-proxy-client" 2>/dev/null
    printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n' >front-proxy-client.ext
    openssl x509 -req -in front-proxy-client.csr -CA front-proxy-ca.crt -CAkey front-proxy-ca.key -CAcreateserial \
      -out front-proxy-client.crt.tmp -days 3650 -extfile front-proxy-client.ext 2>/dev/null
    rm -f front-proxy-client.csr front-proxy-client.ext
    mv front-proxy-client.crt.tmp front-proxy-client.crt
  )
}
# The API server's flags, one per line: start_all runs it with them and records them, and a
# node whose API server runs with other flags (an older node.sh) is restarted by `up`.
apiserver_args() {
  local K=$P/pki
  printf '%s\n' --etcd-servers=http://127.0.0.1:12379 \
    --bind-address="$NODE_IP" --advertise-address="$NODE_IP" --secure-port="$API_PORT" \
    --allow-privileged=true --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
    --client-ca-file="$K/ca.crt" --tls-cert-file="$K/apiserver.crt" --tls-private-key-file="$K/apiserver.key" \
    --kubelet-client-certificate="$K/apiserver-kubelet-client.crt" --kubelet-client-key="$K/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority="$K/ca.crt" --kubelet-preferred-address-types=InternalIP \
    --service-account-key-file="$K/sa.pub" --service-account-signing-key-file="$K/sa.key" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-cluster-ip-range="$SERVICE_CIDR" --service-node-port-range=30000-32767 \
    --endpoint-reconciler-type=lease --profiling=false \
    --requestheader-client-ca-file="$K/front-proxy-ca.crt" --requestheader-allowed-names=front-proxy-client \
    --requestheader-username-headers=X-Remote-User --requestheader-group-headers=X-Remote-Group \
    --requestheader-extra-headers-prefix=X-Remote-Extra- \
    --proxy-client-cert-file="$K/front-proxy-client.crt" --proxy-client-key-file="$K/front-proxy-client.key" \
    --enable-aggregator-routing=true
}

# --- configuration files -------------------------------------------------------

configs() {
  mkdir -p "$P/containerd/certs.d/localhost:$REGISTRY_PORT" "$P/cni/net.d" "$P/registry/data" "$P/volumes"
  cat >"$P/containerd/config.toml" <<EOF
version = 3
root = "$P/containerd/root"
state = "$P/containerd/state"
temp = "$P/containerd/tmp"
disabled_plugins = ["io.containerd.nri.v1.nri"]
[grpc]
  address = "$SOCK"
[ttrpc]
  address = ""
[debug]
  address = ""
[metrics]
  address = ""
[plugins]
  [plugins.'io.containerd.cri.v1.runtime']
    enable_unprivileged_ports = true
    enable_unprivileged_icmp = true
    netns_mounts_under_state_dir = true
    # Mandatory here: the VM lacks CAP_SYS_RESOURCE; without it every sandbox
    # fails with "can't get final child's PID from pipe: EOF".
    restrict_oom_score_adj = true
    [plugins.'io.containerd.cri.v1.runtime'.containerd]
      default_runtime_name = 'runc'
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
        runtime_type = 'io.containerd.runc.v2'
        [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
          BinaryName = '$RUNC_BIN/runc'
          SystemdCgroup = false
          Root = '$P/containerd/runc'
    [plugins.'io.containerd.cri.v1.runtime'.cni]
      bin_dirs = ['/usr/lib/cni']
      conf_dir = '$P/cni/net.d'
  [plugins.'io.containerd.cri.v1.images']
    [plugins.'io.containerd.cri.v1.images'.pinned_images]
      sandbox = '$PAUSE_IMAGE'
    [plugins.'io.containerd.cri.v1.images'.registry]
      config_path = '$P/containerd/certs.d'
  [plugins.'io.containerd.internal.v1.opt']
    path = '$P/containerd/opt'
EOF
  # Images named localhost:32000/... come from the node's registry over http
  # (its node port on $NODE_IP: kube-proxy answers node ports there only);
  # localhost:32001 is codebay's own registry's node port (deploy.sh
  # --with-registry). No image can be pulled from Docker Hub here: docker.io/...
  # comes from the node's registry (the tests push the base images they use
  # there as library/<name>), as a site with a Docker Hub mirror configures containerd.
  local port name server
  for name in "localhost:$REGISTRY_PORT" "localhost:$((REGISTRY_PORT + 1))" docker.io; do
    port=${name#localhost:}
    server=http://$name
    if [[ $name == docker.io ]]; then port=$REGISTRY_PORT server=https://registry-1.docker.io; fi
    mkdir -p "$P/containerd/certs.d/$name"
    printf 'server = "%s"\n[host."http://%s:%s"]\n  capabilities = ["pull", "resolve"]\n' "$server" "$NODE_IP" "$port" \
      >"$P/containerd/certs.d/$name/hosts.toml"
  done
  # Docker sets FORWARD's policy to DROP: the firewall plugin lets pod
  # traffic through.
  cat >"$P/cni/net.d/10-codebay-node.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "$CNI_NET",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{ "subnet": "$POD_CIDR" }]],
        "routes": [{ "dst": "0.0.0.0/0" }],
        "dataDir": "$P/cni/ipam"
      }
    },
    { "type": "portmap", "capabilities": { "portMappings": true } },
    { "type": "firewall" },
    { "type": "loopback" }
  ]
}
EOF
  cat >"$P/kubelet-config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# cgroup v1 on these machines (Kubernetes will drop v1 support: upgrade blocker).
failCgroupV1: false
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://$SOCK
address: $NODE_IP
port: 20250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 20248
authentication:
  anonymous: { enabled: false }
  webhook: { enabled: true }
  x509: { clientCAFile: $P/pki/ca.crt }
authorization: { mode: Webhook }
tlsCertFile: $P/pki/kubelet.crt
tlsPrivateKeyFile: $P/pki/kubelet.key
clusterDNS: [$DNS_IP]
clusterDomain: cluster.local
resolvConf: /etc/resolv.conf
podLogsDir: $P/pod-logs
failSwapOn: false
evictionHard: { memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%" }
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
maxPods: 110
serializeImagePulls: false
EOF
  cat >"$P/kube-proxy-config.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection: { kubeconfig: $P/proxy.kubeconfig }
hostnameOverride: $NODE_NAME
clusterCIDR: $CLUSTER_CIDR
bindAddress: $NODE_IP
healthzBindAddress: 127.0.0.1:16450
metricsBindAddress: 127.0.0.1:16449
conntrack: { maxPerCore: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s }
iptables: { localhostNodePorts: false, masqueradeAll: false }
nodePortAddresses: ["$NODE_IP/32"]
EOF
}

registry_config() { # ADDR FILE ROOT
  cat >"$2" <<EOF
# The node's registry (node.sh): the host-side process and the pod share one storage.
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $3
  delete:
    enabled: true
http:
  addr: $1
EOF
}

# --- images (no Docker needed) -------------------------------------------------

# mkimage NAME:TAG ROOTFS ENTRYPOINT-JSON USER: an OCI archive of one layer,
# imported into containerd (namespace k8s.io) unless it has it already.
mkimage() {
  local ref=$1 rootfs=$2 entry=$3 user=$4 w layer cfg man idx
  if ctr images ls -q "name==$ref" 2>/dev/null | grep -qxF "$ref"; then return 0; fi
  w=$(mktemp -d "$P/tmp/img.XXXXXX")
  mkdir -p "$w/blobs/sha256"
  tar -C "$rootfs" --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -cf "$w/layer.tar" .
  layer=$(sha256sum "$w/layer.tar" | cut -d' ' -f1)
  mv "$w/layer.tar" "$w/blobs/sha256/$layer"
  printf '{"architecture":"amd64","os":"linux","config":{"Entrypoint":%s,"User":"%s","Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
    "$entry" "$user" "$layer" >"$w/config.json"
  cfg=$(sha256sum "$w/config.json" | cut -d' ' -f1)
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%d}]}' \
    "$cfg" "$(stat -c %s "$w/config.json")" "$layer" "$(stat -c %s "$w/blobs/sha256/$layer")" >"$w/manifest.json"
  man=$(sha256sum "$w/manifest.json" | cut -d' ' -f1)
  mv "$w/config.json" "$w/blobs/sha256/$cfg"
  idx=$(stat -c %s "$w/manifest.json")
  mv "$w/manifest.json" "$w/blobs/sha256/$man"
  printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%d,"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}]}' \
    "$man" "$idx" "$ref" "${ref##*:}" >"$w/index.json"
  echo '{"imageLayoutVersion":"1.0.0"}' >"$w/oci-layout"
  tar -C "$w" -cf "$w.tar" oci-layout index.json blobs
  ctr images import --all-platforms "$w.tar" >/dev/null 2>>"$L/images.log"
  rm -rf "$w" "$w.tar"
  log "imported image $ref"
}

images() {
  local r=$P/tmp/rootfs
  rm -rf "$r"
  mkdir -p "$r/pause" "$r/coredns" "$r/traefik/tmp" "$r/busybox/bin" "$r/busybox/tmp" "$r/busybox/etc"
  cp "$TOOLS_BIN/pause" "$r/pause/pause"
  mkimage "$PAUSE_IMAGE" "$r/pause" '["/pause"]' 65535:65535
  cp "$COREDNS_BIN/coredns" "$r/coredns/coredns"
  mkimage "$COREDNS_IMAGE" "$r/coredns" '["/coredns"]' 0:0
  cp "$TRAEFIK_BIN/traefik" "$r/traefik/traefik"
  chmod 1777 "$r/traefik/tmp"
  mkimage "$TRAEFIK_IMAGE" "$r/traefik" '["/traefik"]' 65532:65532
  # busybox for probes and tests (Debian's busybox-static).
  cp /bin/busybox "$r/busybox/bin/busybox"
  local a
  for a in $(/bin/busybox --list); do [[ $a == busybox ]] || ln -sf busybox "$r/busybox/bin/$a"; done
  chmod 1777 "$r/busybox/tmp"
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n' >"$r/busybox/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$r/busybox/etc/group"
  mkimage "$BUSYBOX_IMAGE" "$r/busybox" '["/bin/sh"]' 0:0
  # The registry pod: Debian's docker-registry and the libraries it links.
  local lib
  mkdir -p "$r/registry/usr/bin" "$r/registry/tmp"
  cp /usr/bin/docker-registry "$r/registry/usr/bin/"
  for lib in $(ldd /usr/bin/docker-registry | grep -oE '/[^ ]+'); do
    mkdir -p "$r/registry$(dirname "$lib")"
    cp -L "$lib" "$r/registry$lib"
  done
  chmod 1777 "$r/registry/tmp"
  mkimage "$REGISTRY_IMAGE" "$r/registry" '["/usr/bin/docker-registry","serve","/etc/registry/config.yml"]' 0:0
  # KEDA: both binaries where KEDA's manifests run them (/keda, /keda-adapter).
  mkdir -p "$r/keda/tmp"
  cp "$KEDA_DIR/bin/keda-operator" "$r/keda/keda"
  cp "$KEDA_DIR/bin/keda-adapter" "$r/keda/keda-adapter"
  chmod 1777 "$r/keda/tmp"
  mkimage "$KEDA_IMAGE" "$r/keda" '["/keda"]' 65532:65532
  mkdir -p "$r/prometheus/bin" "$r/prometheus/tmp"
  cp "$PROMETHEUS_BIN/prometheus" "$r/prometheus/bin/prometheus"
  chmod 1777 "$r/prometheus/tmp"
  mkimage "$PROMETHEUS_IMAGE" "$r/prometheus" '["/bin/prometheus"]' 65534:65534
  rm -rf "$r"
}

image_names() {
  PAUSE_IMAGE=codebay.test/node/pause:$TOOLS_VERSION
  COREDNS_IMAGE=codebay.test/node/coredns:$COREDNS_VERSION
  TRAEFIK_IMAGE=codebay.test/node/traefik:$TRAEFIK_VERSION
  REGISTRY_IMAGE=codebay.test/node/registry:$(dpkg-query -W -f='${Version}' docker-registry 2>/dev/null | tr -c 'A-Za-z0-9_.\n-' '_')
  KEDA_IMAGE=codebay.test/node/keda:$KEDA_VERSION
  PROMETHEUS_IMAGE=codebay.test/node/prometheus:$PROMETHEUS_VERSION
  BUSYBOX_IMAGE=codebay.test/node/busybox:$(dpkg-query -W -f='${Version}' busybox-static 2>/dev/null | tr -c 'A-Za-z0-9_.\n-' '_')
}

# --- add-ons -------------------------------------------------------------------

addons() {
  sed -e "s#@DNS_IP@#$DNS_IP#g" -e "s#@COREDNS_IMAGE@#$COREDNS_IMAGE#g" \
    -e "s#@TRAEFIK_IMAGE@#$TRAEFIK_IMAGE#g" -e "s#@NODE_IP@#$NODE_IP#g" \
    -e "s#@REGISTRY_IMAGE@#$REGISTRY_IMAGE#g" -e "s#@REGISTRY_DATA@#$P/registry/data#g" \
    "$HERE/addons.yaml" | kube apply -f - >/dev/null
  observability
}
# Prometheus with codebay's in-cluster scrape config for a Prometheus without the Operator
# (every 5 s here, not 15 s: the autoscaling test waits on it) and KEDA from its own manifests
# (config/minimal: no admission webhooks). MicroK8s' addons differ: its observability addon is
# kube-prometheus-stack (the Operator; codebay's PodMonitor), its keda addon KEDA's Helm chart.
observability() {
  local mon=$HERE/../../../deploy/monitoring/prometheus w hash
  w=$(mktemp -d "$P/tmp/prometheus.XXXXXX")
  sed 's/^  scrape_interval: 15s$/  scrape_interval: 5s/' "$mon/kubernetes.yml" >"$w/prometheus.yml"
  grep -qx '  scrape_interval: 5s' "$w/prometheus.yml" || die "$mon/kubernetes.yml has no '  scrape_interval: 15s' line to shorten"
  cp "$mon/rules.yml" "$w/rules.yml"
  hash=$(cat "$w/prometheus.yml" "$w/rules.yml" | sha256sum | cut -c1-12)
  sed -e "s#@PROMETHEUS_IMAGE@#$PROMETHEUS_IMAGE#g" -e "s#@PROMETHEUS_CONFIG_HASH@#$hash#g" \
    "$HERE/observability.yaml" >"$w/observability.yaml"
  # The namespace first, then the ConfigMap, then the Deployment that mounts it.
  kube get namespace observability >/dev/null 2>&1 || kube create namespace observability >/dev/null
  kube -n observability create configmap prometheus-config --from-file="$w/prometheus.yml" \
    --from-file="$w/rules.yml" --dry-run=client -o yaml | kube apply -f - >/dev/null
  kube apply -f "$w/observability.yaml" >/dev/null
  rm -rf "$w"
  # KEDA's images named as imported; its 100m CPU requests would crowd the 2-core test node
  # (whose platform and instance pods already request nearly all of it): 1m.
  kube kustomize "$KEDA_DIR/config/minimal" |
    sed -e "s#ghcr.io/kedacore/keda:[^\"' ]*#$KEDA_IMAGE#" \
      -e "s#ghcr.io/kedacore/keda-metrics-apiserver:[^\"' ]*#$KEDA_IMAGE#" \
      -e 's#imagePullPolicy: Always#imagePullPolicy: IfNotPresent#' -e 's#cpu: 100m#cpu: 1m#' |
    kube apply --server-side --force-conflicts -f - >/dev/null
}

# --- up / down ---------------------------------------------------------------

healthy() {
  local n
  for n in registry-host containerd etcd apiserver kcm sched kubelet kube-proxy kube-router provisioner; do
    alive "$n" || return 1
  done
  has_node_ip || return 1
  [[ -f $P/pki/front-proxy-client.crt && "$(cat "$P/apiserver.args" 2>/dev/null)" == "$(apiserver_args)" ]] || return 1
  kube get --raw /readyz >/dev/null 2>&1 || return 1
  kube get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null | grep -qx True
}

node_ready() { healthy; }
apiserver_ready() { curl -sf --cacert "$P/pki/ca.crt" "https://$NODE_IP:$API_PORT/readyz" >/dev/null; }
default_sa() { kube -n default get serviceaccount default; }

# The node's registry is a pod behind the node port 32000, as MicroK8s' registry
# addon runs it (addons.yaml): the node pulls localhost:32000 (containerd's
# hosts.toml sends that to $NODE_IP:32000, kube-proxy's node port), pods push to
# its Service. Pods reach it only as their NetworkPolicy allows: a node port is
# rewritten to the pod's address before the policy is checked. Host-side pushes
# (tests, deploy.sh) go to a registry process on the same storage at
# 127.0.0.1:32000 or, if another process (deploy/local/components.sh's pull-only
# registry) holds that port, 127.0.0.2:32000.
start_registry() {
  local host_ip=127.0.0.1 host_name=localhost
  if ss -Hltn "sport = :$REGISTRY_PORT" | awk '{print $4}' | grep -qE "^(127\.0\.0\.1|0\.0\.0\.0|\*|\[::\]):$REGISTRY_PORT$"; then
    host_ip=$REGISTRY_FALLBACK_IP
    host_name=$REGISTRY_FALLBACK_IP
    log "127.0.0.1:$REGISTRY_PORT is taken by another process ($(ss -Hltnp "sport = :$REGISTRY_PORT" | grep -o 'users:.*' | head -n 1)); host-side pushes go to $host_name:$REGISTRY_PORT"
  fi
  registry_config "$host_ip:$REGISTRY_PORT" "$P/registry/host.yml" "$P/registry/data"
  run registry-host /usr/bin/docker-registry serve "$P/registry/host.yml"
  echo "$host_name:$REGISTRY_PORT" >"$P/registry/host-address"
  wait_for 20 "registry up at $host_name:$REGISTRY_PORT (host side)" curl -sf "http://$host_ip:$REGISTRY_PORT/v2/" ||
    die "the registry did not answer (see $L/registry-host.log)"
}

start_all() {
  local t0=$SECONDS
  mkdir -p "$L" "$P/pids" "$P/tmp" "$P/containerd/tmp" "$P/pod-logs" "$P/kubelet"
  record_host_state
  ensure_node_ip
  pki
  front_proxy_pki
  configs
  start_registry

  export PATH="$RUNC_BIN:$CTRD_BIN:$PATH"
  run containerd "$CTRD_BIN/containerd" --config "$P/containerd/config.toml"
  wait_for 30 "containerd up" ctr version || die "containerd did not start (see $L/containerd.log)"
  # Containers left by a node that was killed: kubelet starts clean.
  local c
  for c in $(ctr containers ls -q 2>/dev/null); do ctr containers delete "$c" >/dev/null 2>&1 || true; done
  images

  rm -rf "$P/etcd"
  run etcd "$CP_BIN/etcd" --name=codebay-node --data-dir="$P/etcd" \
    --listen-client-urls=http://127.0.0.1:12379 --advertise-client-urls=http://127.0.0.1:12379 \
    --listen-peer-urls=http://127.0.0.1:12380 --initial-advertise-peer-urls=http://127.0.0.1:12380 \
    --initial-cluster=codebay-node=http://127.0.0.1:12380 --listen-metrics-urls=http://127.0.0.1:12381 \
    --quota-backend-bytes=2147483648 --unsafe-no-fsync
  wait_for 30 "etcd up" curl -sf http://127.0.0.1:12379/health || die "etcd did not start (see $L/etcd.log)"

  local K=$P/pki
  local args
  mapfile -t args < <(apiserver_args)
  run apiserver "$CP_BIN/kube-apiserver" "${args[@]}"
  apiserver_args >"$P/apiserver.args"
  wait_for 90 "kube-apiserver up at https://$NODE_IP:$API_PORT" apiserver_ready ||
    die "kube-apiserver did not become ready (see $L/apiserver.log)"
  run kcm "$CP_BIN/kube-controller-manager" --kubeconfig="$P/kcm.kubeconfig" \
    --authentication-kubeconfig="$P/kcm.kubeconfig" --authorization-kubeconfig="$P/kcm.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port=16444 --service-account-private-key-file="$K/sa.key" \
    --root-ca-file="$K/ca.crt" --use-service-account-credentials=true \
    --service-cluster-ip-range="$SERVICE_CIDR" --cluster-cidr="$CLUSTER_CIDR" \
    --allocate-node-cidrs=true --node-cidr-mask-size=24 --leader-elect=false --profiling=false
  run sched "$CP_BIN/kube-scheduler" --kubeconfig="$P/sched.kubeconfig" \
    --authentication-kubeconfig="$P/sched.kubeconfig" --authorization-kubeconfig="$P/sched.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port=16445 --leader-elect=false --profiling=false

  run kubelet "$KUBE_NODE_BIN/kubelet" --config="$P/kubelet-config.yaml" \
    --kubeconfig="$P/kubelet.kubeconfig" --root-dir="$P/kubelet" \
    --hostname-override="$NODE_NAME" --node-ip="$NODE_IP" --v=1
  run kube-proxy "$KUBE_NODE_BIN/kube-proxy" --config="$P/kube-proxy-config.yaml" --v=1
  run provisioner "$TOOLS_BIN/hostpath-provisioner" -kubeconfig="$ADMIN_KUBECONFIG" \
    -root="$P/volumes" -name=microk8s.io/hostpath
  wait_for 60 "node $NODE_NAME registered" kube get node "$NODE_NAME" ||
    die "node $NODE_NAME did not register (see $L/kubelet.log)"
  # NetworkPolicy only (no routing, no service proxy); it needs the Node
  # object. It runs with the admin kubeconfig: a test node.
  run kube-router "$KUBE_ROUTER_BIN/kube-router" --kubeconfig="$ADMIN_KUBECONFIG" \
    --hostname-override="$NODE_NAME" --run-firewall=true --run-router=false \
    --run-service-proxy=false --enable-ipv4=true --enable-ipv6=false \
    --enable-cni=false --health-port=0 --metrics-port=0 \
    --service-cluster-ip-range="$SERVICE_CIDR"

  wait_for 120 "node $NODE_NAME Ready" node_ready || die "node $NODE_NAME did not become Ready (see $L/kubelet.log)"
  wait_for 60 "default ServiceAccount there" default_sa || die "no default ServiceAccount (see $L/kcm.log)"
  log "control plane and node up in $((SECONDS - t0))s"
}

wait_addons() {
  kube -n kube-system rollout status deployment/coredns --timeout=120s >&2 ||
    die "CoreDNS did not become ready (kubectl -n kube-system describe pod -l k8s-app=kube-dns)"
  kube -n ingress rollout status daemonset/traefik --timeout=120s >&2 ||
    die "Traefik did not become ready (kubectl -n ingress describe pod -l app=traefik)"
  alive provisioner || die "the hostpath provisioner is not running (see $L/provisioner.log)"
  kube -n container-registry rollout status deployment/registry --timeout=120s >&2 ||
    die "the registry pod did not become ready (kubectl -n container-registry describe pod -l app=registry)"
  kube -n observability rollout status deployment/prometheus --timeout=120s >&2 ||
    die "Prometheus did not become ready (kubectl -n observability describe pod -l app=prometheus)"
  # KEDA's external metrics API becomes Available once the operator has made its certificates
  # and the kubelet has mounted them (a minute or more): the autoscaling test waits for that.
  wait_for 30 "the registry answers at $NODE_IP:$REGISTRY_PORT (node port)" \
    curl -sf -m 2 "http://$NODE_IP:$REGISTRY_PORT/v2/" || die "the registry does not answer on $NODE_IP:$REGISTRY_PORT"
  wait_for 60 "Traefik answers at http://$NODE_IP:80" \
    curl -s -o /dev/null -m 2 "http://$NODE_IP:80/" || die "Traefik does not answer on $NODE_IP:80"
}

up() {
  local t0=$SECONDS
  ensure_packages
  "$HERE/../build.sh" >/dev/null
  "$HERE/build.sh"
  bins
  image_names
  lock
  if [[ ${CODEBAY_NODE_FRESH:-} == 1 ]] || ! healthy; then
    if [[ -d $P/pids ]] && compgen -G "$P/pids/*.pid" >/dev/null; then
      log "node not healthy (or CODEBAY_NODE_FRESH=1): tearing down before starting"
      teardown
    fi
    start_all
  else
    log "node is up"
    mkdir -p "$P/tmp"
    images
  fi
  addons
  wait_addons
  log "node ready in $((SECONDS - t0))s; KUBECONFIG=$ADMIN_KUBECONFIG; ingress http://$NODE_IP:80; registry $(<"$P/registry/host-address") (host push), localhost:$REGISTRY_PORT (node pull)"
}

# Remove every iptables chain (and jumps to it) whose name starts with one of
# the given prefixes, in every table, IPv4 and IPv6.
drop_chains() { # REGEX
  local ipt t c rule
  for ipt in iptables ip6tables; do
    for t in filter nat mangle raw; do
      "$ipt-save" -t "$t" 2>/dev/null | grep -E "^-A [^ ]+ .*-j ($1)" | grep -vE "^-A ($1)" | sed 's/^-A/-D/' |
        while read -r rule; do eval "$ipt -t $t $rule" 2>/dev/null || true; done || true
      for c in $("$ipt-save" -t "$t" 2>/dev/null | grep -oE "^:($1)[^ ]*" | tr -d :); do "$ipt" -t "$t" -F "$c" 2>/dev/null || true; done
      for c in $("$ipt-save" -t "$t" 2>/dev/null | grep -oE "^:($1)[^ ]*" | tr -d :); do "$ipt" -t "$t" -X "$c" 2>/dev/null || true; done
    done
  done
}

teardown() {
  local t0=$SECONDS
  # 1. let kubelet stop the pods (CNI DEL) while it still runs; without the
  # controller-manager nothing makes them anew.
  stop kcm sched provisioner
  if alive kubelet && alive apiserver && has_node_ip; then
    kube delete pods --all -A --force --grace-period=0 --wait=false >/dev/null 2>&1 || true
    for _ in $(seq 40); do
      ctr tasks ls 2>/dev/null | awk 'NR > 1 && $3 == "RUNNING" { found = 1 } END { exit !found }' || break
      sleep 0.5
    done
  fi
  stop kube-router kube-proxy kubelet
  stop apiserver
  stop etcd
  # 2. whatever still runs in our containerd.
  if alive containerd; then
    local t c s
    for t in $(ctr tasks ls -q 2>/dev/null); do ctr tasks kill -s KILL "$t" >/dev/null 2>&1 || true; done
    sleep 0.5
    for t in $(ctr tasks ls -q 2>/dev/null); do ctr tasks delete -f "$t" >/dev/null 2>&1 || true; done
    for c in $(ctr containers ls -q 2>/dev/null); do ctr containers delete "$c" >/dev/null 2>&1 || true; done
    # Sandboxes' network namespaces: CNI DEL through the CRI.
    for s in $("$CTRD_BIN/ctr" -a "$SOCK" -n k8s.io sandboxes ls -q 2>/dev/null); do
      "$CTRD_BIN/ctr" -a "$SOCK" -n k8s.io sandboxes rm -f "$s" >/dev/null 2>&1 || true
    done
  fi
  stop containerd
  # Shims that outlived containerd (their cmdline names our socket).
  local pid
  for pid in $(pgrep -f "containerd-shim-runc-v2 .*-address $SOCK" || true); do kill -9 "$pid" 2>/dev/null || true; done
  # Sockets of shims that were killed (they remove their own on a clean exit):
  # in the shared /run/containerd/s, only those made while the node ran and
  # that no process listens on.
  if [[ -f $P/host.before && -d /run/containerd/s ]]; then
    local listening sock
    listening=$(ss -Hxl 2>/dev/null | awk '{ print $5 }')
    while read -r sock; do
      grep -qxF "$sock" <<<"$listening" || rm -f "$sock"
    done < <(find /run/containerd/s -maxdepth 1 -type s -newer "$P/host.before" 2>/dev/null)
  fi
  stop registry registry-host # registry: the host process of nodes before the registry pod
  # 3. kube-proxy's and kube-router's rules (kube-router's --cleanup-config
  # panics without IPVS), kubelet's canary chains, CNI's chains and ipsets.
  if [[ -x ${KUBE_NODE_BIN:-}/kube-proxy ]]; then "$KUBE_NODE_BIN/kube-proxy" --cleanup >/dev/null 2>&1 || true; fi
  drop_chains 'KUBE-|CNI-'
  for s in $(ipset list -n 2>/dev/null | grep -E '^(KUBE-|kube-router|inet6:KUBE-)' || true); do ipset destroy "$s" 2>/dev/null || true; done
  # 4. mounts under our dir (deepest first), cgroups, the bridge, the address.
  awk -v d="$P/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
    while read -r m; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
  local h
  for h in /sys/fs/cgroup/*/; do
    if [[ -d $h/kubepods ]]; then find "$h/kubepods" -depth -type d -exec rmdir {} \; 2>/dev/null || true; fi
  done
  ip link del "$BRIDGE" 2>/dev/null || true
  ip addr del "$NODE_IP/32" dev lo 2>/dev/null || true
  rm -f /var/lib/cni/results/"$CNI_NET"-* 2>/dev/null || true
  restore_host_state
  # 5. state (images in containerd's root and the registry's data are kept).
  rm -rf "$P/containerd/state" "$P/containerd/runc" "$P/containerd/tmp" "$P/kubelet" "$P/etcd" \
    "$P/cni/ipam" "$P/pod-logs" "$P/tmp" "$P/volumes" "$P/pids"
  log "down in $((SECONDS - t0))s"
}

down() {
  lock
  if [[ -d $P ]]; then
    # Binaries as far as they exist (down must work without a build).
    CP_BIN=$("$HERE/../build.sh" --dir)
    KUBE_NODE_BIN=$(piece_dir kube-node)/bin
    CTRD_BIN=$(piece_dir containerd)/bin
    teardown
  fi
}

env_cmd() {
  echo "export CODEBAY_NODE_KUBECONFIG=$ADMIN_KUBECONFIG"
  echo "export CODEBAY_NODE_INGRESS=http://$NODE_IP:80"
  echo "export CODEBAY_NODE_REGISTRY=$(cat "$P/registry/host-address" 2>/dev/null || echo "localhost:$REGISTRY_PORT")"
  echo "export CODEBAY_NODE_REGISTRY_PULL=localhost:$REGISTRY_PORT"
  echo "export CODEBAY_NODE_REGISTRY_IN_CLUSTER=registry.container-registry.svc.cluster.local:5000"
}

status() {
  bins
  if healthy; then
    echo "node $NODE_NAME: up (CODEBAY_NODE_KUBECONFIG=$ADMIN_KUBECONFIG)"
    kube get nodes -o wide
    return 0
  fi
  echo "node $NODE_NAME: not up"
  return 1
}

case ${1:-} in
up) up ;;
down) down ;;
env) env_cmd ;;
status) status ;;
*)
  echo "usage: $0 up|down|env|status" >&2
  exit 2
  ;;
esac
