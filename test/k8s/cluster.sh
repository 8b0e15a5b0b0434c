#!/usr/bin/env bash
# A real Kubernetes control plane for tests: kube-apiserver, etcd,
# kube-controller-manager and kube-scheduler as local processes (kwokctl's
# binary runtime), with nodes, pods and volumes faked by kwok. Everything
# listens on 127.0.0.1.
#
# Beside it, the same commands manage the real single-node cluster of
# test/k8s/node/node.sh (pods really run; its own control plane on 10.245.255.1).
#
#   test/k8s/cluster.sh up       build if needed (test/k8s/build.sh), start the
#                                cluster, wait until it answers and has nodes;
#                                then `node.sh up`. If only the real node fails,
#                                the kwok cluster stays up and `up` exits 3
#   test/k8s/cluster.sh env      print `export KUBECONFIG=...` and PATH lines,
#                                and the real node's (CODEBAY_NODE_KUBECONFIG, ...)
#                                (use: eval "$(test/k8s/cluster.sh env)")
#   test/k8s/cluster.sh status   exit 0 if the cluster answers /readyz (and
#                                print the real node's status)
#   test/k8s/cluster.sh down     delete the cluster and tear the real node down
#
# Environment:
#   CODEBAY_CACHE        cache root (default /var/cache/codebay)
#   CODEBAY_K8S_CLUSTER  cluster name (default codebay-test)
#   CODEBAY_K8S_WORKDIR  kwokctl's workdir (default $CODEBAY_CACHE/k8s/kwok);
#                        the cluster lives in $CODEBAY_K8S_WORKDIR/clusters/NAME
#   CODEBAY_K8S_NODES    fake nodes (default 2)
#   CODEBAY_K8S_FRESH=1  `up` deletes and recreates an existing cluster
#   CODEBAY_K8S_NODE=0   leave the real node alone (up, down); the default for
#                        a CODEBAY_K8S_CLUSTER other than codebay-test
#
# `up` on a cluster that answers does nothing but re-apply the StorageClass
# and node count. A cluster whose processes were killed (CI ends everything
# between runs), or one made from other binaries or another kwokctl.yaml, is
# deleted and created afresh (about 6 s).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${CODEBAY_CACHE:-/var/cache/codebay}
NAME=${CODEBAY_K8S_CLUSTER:-codebay-test}
NODES=${CODEBAY_K8S_NODES:-2}
export KWOK_WORKDIR=${CODEBAY_K8S_WORKDIR:-$CACHE/k8s/kwok}
CLUSTER_DIR=$KWOK_WORKDIR/clusters/$NAME
KUBECONFIG_PATH=$CLUSTER_DIR/kubeconfig.yaml
STAMP=$CLUSTER_DIR/codebay.stamp
CONFIG=$HERE/kwok/kwokctl.yaml
# The real node is one per machine: only the default cluster's up/down manage it (a
# cluster of another name, made for a private check, must not take it down).
if [[ $NAME == codebay-test ]]; then WITH_NODE=${CODEBAY_K8S_NODE:-1}; else WITH_NODE=${CODEBAY_K8S_NODE:-0}; fi

log() { echo "cluster.sh: $*" >&2; }

# kwokctl starts the cluster's daemons, which inherit every open fd that is not
# close-on-exec: the lock's fd 8 (they would hold the lock for as long as they
# run) and any pipe of the caller's (a caller reading it to EOF would hang).
# Give kwokctl stdin, stdout and stderr only.
kwokctl() {
  (
    for fd in "/proc/$BASHPID/fd"/*; do
      fd=${fd##*/}
      if ((fd > 2)); then eval "exec $fd>&-" 2>/dev/null || true; fi
    done
    exec kwokctl "$@"
  )
}

lock() {
  mkdir -p "$KWOK_WORKDIR"
  exec 8>"$KWOK_WORKDIR/.$NAME.lock"
  flock -w 600 8 || { log "timed out waiting for $KWOK_WORKDIR/.$NAME.lock"; exit 1; }
}

bin_dir() { "$HERE/build.sh" --dir; }

use_bin() {
  BIN=$1
  export PATH="$BIN:$PATH"
}

kube() { kubectl --kubeconfig "$KUBECONFIG_PATH" "$@"; }

ready() {
  [[ -f $KUBECONFIG_PATH ]] && command -v kubectl >/dev/null &&
    kube get --raw /readyz --request-timeout=5s >/dev/null 2>&1
}

wait_ready() { # seconds
  local deadline=$((SECONDS + $1))
  until ready; do
    ((SECONDS < deadline)) || return 1
    sleep 1
  done
}

# What the cluster was made from: if it changes, the cluster is recreated.
stamp() {
  echo "bin=$BIN"
  sha256sum "$CONFIG" | cut -d' ' -f1
}

create() {
  log "creating cluster $NAME (workdir $KWOK_WORKDIR)"
  # --kubeconfig "": do not add a context to ~/.kube/config; the cluster's
  # own kubeconfig is $CLUSTER_DIR/kubeconfig.yaml.
  kwokctl --name "$NAME" --config "$CONFIG" create cluster \
    --runtime binary \
    --kubeconfig "" \
    --kube-apiserver-binary "$BIN/kube-apiserver" \
    --kube-controller-manager-binary "$BIN/kube-controller-manager" \
    --kube-scheduler-binary "$BIN/kube-scheduler" \
    --kwok-controller-binary "$BIN/kwok" \
    --etcd-binary "$BIN/etcd" \
    --wait 2m >&2
  stamp >"$STAMP"
}

delete() {
  if [[ -d $CLUSTER_DIR ]]; then
    log "deleting cluster $NAME"
    kwokctl --name "$NAME" delete cluster >&2 || true
    # kwokctl leaves the dir behind if a process could not be stopped.
    rm -rf "$CLUSTER_DIR"
  fi
}

# kwokctl trusts its pid files: `stop`/`delete` kill whatever process has that
# pid now, and `start` skips a component whose pid is alive. After the
# processes were killed, and the pids reused by others, drop every pid file
# that does not name this cluster's own process (argv[0] is
# $CLUSTER_DIR/bin/<component>).
forget_stale_pids() {
  local f pid argv0
  for f in "$CLUSTER_DIR"/pids/*.pid; do
    [[ -f $f ]] || continue
    pid=$(<"$f")
    argv0=
    if [[ $pid =~ ^[0-9]+$ && -r /proc/$pid/cmdline ]]; then
      argv0=$(tr '\0' '\n' <"/proc/$pid/cmdline" | head -n 1)
    fi
    if [[ $argv0 != "$CLUSTER_DIR/bin/$(basename "$f" .pid)" ]]; then
      rm -f "$f"
    fi
  done
}

# Objects that kwokctl does not create: the StorageClass the volume stages
# serve, and the fake nodes.
provision() {
  kube apply -f "$HERE/kwok/storageclass.yaml" >&2
  local have
  have=$(kube get nodes -l type=kwok -o name | wc -l)
  if ((have < NODES)); then
    kwokctl --name "$NAME" scale node --replicas "$NODES" >&2
  fi
  kube wait --for=condition=Ready node --all --timeout=60s >&2
}

up() {
  local start=$SECONDS
  use_bin "$("$HERE/build.sh" | tail -n 1)"
  # Two `up`s at once (parallel test workers) must not both create.
  lock
  forget_stale_pids
  if [[ ${CODEBAY_K8S_FRESH:-} == 1 ]]; then
    delete
  elif [[ -d $CLUSTER_DIR ]] && ! cmp -s <(stamp) "$STAMP"; then
    log "cluster $NAME was made from other binaries or config; recreating"
    delete
  elif [[ -d $CLUSTER_DIR ]] && ! ready; then
    # Its processes were killed (CI ends everything between runs) or died:
    # start clean rather than from an etcd that was killed mid-write.
    log "cluster $NAME exists but does not answer; recreating"
    delete
  fi
  if [[ -d $CLUSTER_DIR ]]; then
    log "cluster $NAME is up"
  else
    create
  fi
  wait_ready 120 || { log "cluster $NAME did not become ready"; exit 1; }
  provision
  log "cluster $NAME ready in $((SECONDS - start))s; KUBECONFIG=$KUBECONFIG_PATH"
}

# The real node, after the kwok cluster: its failure leaves the kwok cluster
# up and is reported with exit status 3.
node_up() {
  [[ $WITH_NODE == 1 ]] || return 0
  exec 8>&- # the kwok lock
  if ! "$HERE/node/node.sh" up; then
    log "ERROR: the real node (test/k8s/node/node.sh up) failed: see the lines above and its logs in" \
      "${CODEBAY_NODE_DIR:-/var/lib/codebay-k8s-node}/logs; the kwok cluster $NAME is up"
    exit 3
  fi
}

env_cmd() {
  echo "export KUBECONFIG=$KUBECONFIG_PATH"
  echo "export PATH=$(bin_dir):\$PATH"
  "$HERE/node/node.sh" env
}

status() {
  use_bin "$(bin_dir)"
  if [[ ! -d $CLUSTER_DIR ]]; then
    echo "cluster $NAME: absent"
    return 1
  fi
  if ready; then
    echo "cluster $NAME: up (KUBECONFIG=$KUBECONFIG_PATH)"
    kube get nodes
    return 0
  fi
  echo "cluster $NAME: not answering (KUBECONFIG=$KUBECONFIG_PATH)"
  return 1
}

node_status() {
  [[ $WITH_NODE == 1 ]] || return 0
  "$HERE/node/node.sh" status | head -n 1 || true
}

down() {
  lock
  forget_stale_pids
  if [[ -x $(bin_dir)/kwokctl ]]; then
    use_bin "$(bin_dir)"
    delete
  else
    rm -rf "$CLUSTER_DIR"
  fi
}

node_down() {
  [[ $WITH_NODE == 1 ]] || return 0
  exec 8>&-
  "$HERE/node/node.sh" down
}

case ${1:-} in
up)
  up
  node_up
  ;;
down)
  rc=0
  down || rc=$?
  node_down || rc=$?
  exit $rc
  ;;
env) env_cmd ;;
status)
  rc=0
  status || rc=$?
  node_status
  exit $rc
  ;;
*)
  echo "usage: $0 up|down|env|status" >&2
  exit 2
  ;;
esac
