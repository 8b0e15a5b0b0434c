#!/bin/bash
# The builder's own Docker daemon (privileged sidecar of every builder pod).
#
# - listens on a unix socket only (DIND_SOCKET, default /run/codebay-docker/docker.sock, in an
#   emptyDir shared with the builder container; group DIND_SOCKET_GROUP may use it): never TCP;
# - build containers (RUN steps) cannot open connections to this pod (the builder's ports) nor
#   to private or link-local addresses (the cluster's Services and pods: Redis, the registry,
#   the API server; cloud metadata), except DNS to the resolvers in /etc/resolv.conf; the
#   internet stays open for package installs. The daemon's own pulls and pushes are not
#   affected (they are the pod's traffic, which the builder's NetworkPolicy governs);
# - user namespaces remapped (root in a build is an unprivileged user), inter-container
#   traffic off.
#
# Env: DIND_SOCKET, DIND_SOCKET_GROUP (codebay), DIND_DATA_ROOT (/var/lib/docker),
#   DIND_USERNS_REMAP (default; empty: off), DIND_INSECURE_REGISTRIES (comma-separated, plain
#   HTTP registries such as the in-cluster push endpoint: host:port or http://host:port;
#   https://host:port for TLS with a certificate not to be verified), DIND_REGISTRY_MIRRORS
#   (comma-separated URLs; an http:// one is a plain-HTTP registry too), DIND_BIP (docker0 address, default 172.18.0.1/16),
#   DIND_PRIVATE_RANGES (what builds may not reach), DIND_DNS (comma-separated resolvers for
#   build containers, reachable on port 53 even in a private range; default: dockerd's choice,
#   the non-loopback resolvers of /etc/resolv.conf, else public ones), DIND_EXTRA_ARGS (more
#   dockerd flags), DIND_DAEMON_EGRESS (where no NetworkPolicy governs the daemon's own
#   traffic, e.g. docker-compose.yml: comma-separated host:port the daemon may reach in the
#   private ranges — its registries and mirror —; when set, the daemon's own connections
#   (FROM, ADD <url>, push: root's traffic from this container) reach loopback, the resolvers,
#   those and public addresses only, never another private or link-local address).
set -euo pipefail
log() { printf 'dind: %s\n' "$*" >&2; }
die() {
  log "ERROR: $*"
  exit 1
}

SOCKET=${DIND_SOCKET:-/run/codebay-docker/docker.sock}
GROUP=${DIND_SOCKET_GROUP:-codebay}
DATA_ROOT=${DIND_DATA_ROOT:-/var/lib/docker}
BIP=${DIND_BIP:-172.18.0.1/16}
PRIVATE_RANGES=${DIND_PRIVATE_RANGES:-10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,100.64.0.0/10,169.254.0.0/16}

[[ -w /sys/fs/cgroup ]] || [[ -w /proc/sys/net/ipv4/ip_forward ]] || die "not privileged: this container needs securityContext.privileged: true"

# cgroup v2: dockerd needs a cgroup of its own to delegate controllers from (the pod's root
# cgroup cannot hold processes and enable subtree controllers at once).
if [[ -f /sys/fs/cgroup/cgroup.controllers ]]; then
  # Without `privileged` (compose spells it out) Docker may mount cgroupfs read-only.
  [[ -w /sys/fs/cgroup ]] || mount -o remount,rw /sys/fs/cgroup ||
    die "/sys/fs/cgroup is read-only and cannot be remounted: the container needs CAP_SYS_ADMIN and a writable cgroup (privileged)"
  mkdir -p /sys/fs/cgroup/init
  until xargs -rn1 </sys/fs/cgroup/cgroup.procs >/sys/fs/cgroup/init/cgroup.procs 2>/dev/null; do :; done
  sed -e 's/ / +/g' -e 's/^/+/' </sys/fs/cgroup/cgroup.controllers >/sys/fs/cgroup/cgroup.subtree_control || log "some cgroup controllers could not be delegated"
fi

# dockerd and these rules must use the same iptables backend: nftables where the kernel has it.
if ! iptables -nL >/dev/null 2>&1; then
  if iptables-legacy -nL >/dev/null 2>&1; then
    update-alternatives --set iptables /usr/sbin/iptables-legacy >/dev/null
    update-alternatives --set ip6tables /usr/sbin/ip6tables-legacy >/dev/null 2>&1 || true
    log "iptables: using the legacy backend"
  else
    die "iptables does not work here (neither nftables nor legacy)"
  fi
fi

# Isolation of build containers (interface docker0). REJECT: a refused attempt fails at once.
bridge=docker0
reject() {
  local chain=$1
  shift
  iptables -A "$chain" "$@" -p tcp -j REJECT --reject-with tcp-reset
  iptables -A "$chain" "$@" -j REJECT
}
iptables -N CODEBAY-INPUT 2>/dev/null || iptables -F CODEBAY-INPUT
iptables -A CODEBAY-INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN
reject CODEBAY-INPUT -i "$bridge"
iptables -C INPUT -j CODEBAY-INPUT 2>/dev/null || iptables -I INPUT 1 -j CODEBAY-INPUT
iptables -N DOCKER-USER 2>/dev/null || true
iptables -N CODEBAY-FORWARD 2>/dev/null || iptables -F CODEBAY-FORWARD
iptables -A CODEBAY-FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN
IFS=, read -ra dns <<<"${DIND_DNS:-}"
while read -r ns; do
  iptables -A CODEBAY-FORWARD -i "$bridge" -d "$ns" -p udp --dport 53 -j RETURN
  iptables -A CODEBAY-FORWARD -i "$bridge" -d "$ns" -p tcp --dport 53 -j RETURN
done < <(
  awk '$1 == "nameserver" && $2 ~ /^[0-9.]+$/ { print $2 }' /etc/resolv.conf
  for d in "${dns[@]}"; do [[ -z $d ]] || echo "$d"; done
)
for d in "${dns[@]}"; do
  [[ -z $d || $d =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}$ ]] || die "DIND_DNS: '$d' is not an IPv4 address (comma-separated resolver addresses, no spaces)"
done
IFS=, read -ra ranges <<<"$PRIVATE_RANGES"
for r in "${ranges[@]}"; do reject CODEBAY-FORWARD -i "$bridge" -d "$r"; done
iptables -C DOCKER-USER -j CODEBAY-FORWARD 2>/dev/null || iptables -I DOCKER-USER 1 -j CODEBAY-FORWARD
# The daemon's own connections (root's traffic: dockerd fetches FROM images and ADD URLs and
# pushes; the builder and the build containers are not root here). Only where asked: on
# Kubernetes the pod's NetworkPolicy governs them.
if [[ -n ${DIND_DAEMON_EGRESS:-} ]]; then
  iptables -N CODEBAY-DAEMON-OUT 2>/dev/null || iptables -F CODEBAY-DAEMON-OUT
  iptables -A CODEBAY-DAEMON-OUT -o lo -j RETURN
  iptables -A CODEBAY-DAEMON-OUT -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN
  while read -r ns; do
    iptables -A CODEBAY-DAEMON-OUT -d "$ns" -p udp --dport 53 -j RETURN
    iptables -A CODEBAY-DAEMON-OUT -d "$ns" -p tcp --dport 53 -j RETURN
  done < <(awk '$1 == "nameserver" && $2 ~ /^[0-9.]+$/ { print $2 }' /etc/resolv.conf)
  IFS=, read -ra allowed <<<"$DIND_DAEMON_EGRESS"
  for hp in "${allowed[@]}"; do
    [[ $hp =~ ^([A-Za-z0-9.-]+):([0-9]+)$ ]] || die "DIND_DAEMON_EGRESS: '$hp' is not host:port"
    addrs=$(getent ahostsv4 "${BASH_REMATCH[1]}" | awk '{ print $1 }' | sort -u)
    [[ -n $addrs ]] || die "DIND_DAEMON_EGRESS: ${BASH_REMATCH[1]} does not resolve"
    for a in $addrs; do iptables -A CODEBAY-DAEMON-OUT -d "$a" -p tcp --dport "${BASH_REMATCH[2]}" -j RETURN; done
  done
  for r in "${ranges[@]}"; do reject CODEBAY-DAEMON-OUT -d "$r"; done
  iptables -C OUTPUT -m owner --uid-owner 0 -j CODEBAY-DAEMON-OUT 2>/dev/null ||
    iptables -I OUTPUT 1 -m owner --uid-owner 0 -j CODEBAY-DAEMON-OUT
  log "the daemon's own connections: loopback, resolvers, $DIND_DAEMON_EGRESS and public addresses only"
fi
if ip6tables -nL >/dev/null 2>&1; then
  # No IPv6 for builds at all (the bridge has none; this keeps it that way).
  ip6tables -N CODEBAY-INPUT 2>/dev/null || ip6tables -F CODEBAY-INPUT
  ip6tables -A CODEBAY-INPUT -i "$bridge" -j DROP
  ip6tables -C INPUT -j CODEBAY-INPUT 2>/dev/null || ip6tables -I INPUT 1 -j CODEBAY-INPUT
fi

args=(
  --host "unix://$SOCKET"
  --group "$GROUP"
  --data-root "$DATA_ROOT"
  --exec-root /run/codebay-dind
  --pidfile /run/codebay-dind.pid
  --bip "$BIP"
  --icc=false
  --userland-proxy=false
)
[[ -z ${DIND_USERNS_REMAP-default} ]] || args+=(--userns-remap "${DIND_USERNS_REMAP-default}")
# Plain-HTTP registries, for the daemon's own pulls and pushes and for its BuildKit (FROM,
# `# syntax=docker/dockerfile:1.4`, --cache-from): Docker 20.10's BuildKit speaks plain HTTP
# only to a registry given with its http:// scheme (without one it tries HTTPS and fails; the
# daemon itself drops the scheme). A registry mirror given as http://… is one of them.
IFS=, read -ra regs <<<"${DIND_INSECURE_REGISTRIES:-}"
IFS=, read -ra mirrors <<<"${DIND_REGISTRY_MIRRORS:-}"
for m in "${mirrors[@]}"; do [[ $m != http://* ]] || regs+=("$m"); done
declare -A insecure=()
for r in "${regs[@]}"; do
  [[ -n $r ]] || continue
  r=${r%/}
  [[ $r == *://* ]] || r=http://$r
  [[ -z ${insecure[$r]:-} ]] || continue
  insecure[$r]=1
  args+=(--insecure-registry "$r")
done
for d in "${dns[@]}"; do [[ -z $d ]] || args+=(--dns "$d"); done
for m in "${mirrors[@]}"; do [[ -z $m ]] || args+=(--registry-mirror "$m"); done
# shellcheck disable=SC2206 # word splitting of extra flags is the point
[[ -z ${DIND_EXTRA_ARGS:-} ]] || args+=(${DIND_EXTRA_ARGS})

mkdir -p "$(dirname "$SOCKET")" "$DATA_ROOT"
# A restarted container (compose's restart policy) keeps /run: a stale containerd pid file
# could name a live process of the new run.
rm -rf "$SOCKET" /run/codebay-dind.pid /run/codebay-dind
log "dockerd ${args[*]}"
exec dockerd "${args[@]}"
