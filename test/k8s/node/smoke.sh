#!/usr/bin/env bash
# Checks that the real node (node.sh up) does what the tests rely on. Each
# check prints "ok - ..." or "FAIL - ..."; exit 1 if any failed. Everything
# happens in a namespace of its own, deleted at the end.
#
#   test/k8s/node/smoke.sh
#
# Needs a Docker daemon for the image checks (host push, Docker-in-Docker,
# sudo under hostUsers: false): DOCKER_HOST, default
# unix:///run/codebay-docker/docker.sock if that exists, with debian:bookworm.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=SCRIPTDIR/lib.sh
source "$HERE/lib.sh"
eval "$("$HERE/node.sh" env)"
KUBECTL=$("$HERE/../build.sh" --dir)/kubectl
if [[ -z ${DOCKER_HOST:-} && -S /run/codebay-docker/docker.sock ]]; then
  export DOCKER_HOST=unix:///run/codebay-docker/docker.sock
fi
NODE_IP=10.245.255.1
NS=codebay-smoke-$RANDOM
TAG=t$(date +%s)
BUSYBOX=$("$CACHE/k8s/node/containerd-$(piece_version containerd)/bin/ctr" -a "${CODEBAY_NODE_DIR:-/var/lib/codebay-k8s-node}/containerd/containerd.sock" \
  -n k8s.io images ls -q 2>/dev/null | grep '^codebay.test/node/busybox:' | head -n 1)

# Every request goes to the node address: stop if it is not on lo any more
# (node.sh down ran meanwhile), as traffic to it would then leave the machine.
guard() {
  ip -4 -o addr show dev lo | grep -qw "inet $NODE_IP/32" || {
    echo "FAIL - $NODE_IP is no longer on lo (the node was taken down); stopping"
    exit 1
  }
}
k() {
  guard
  "$KUBECTL" --kubeconfig "$CODEBAY_NODE_KUBECONFIG" -n "$NS" "$@"
}
failed=0
passed=0
ok() {
  echo "ok - $*"
  passed=$((passed + 1))
}
fail() {
  echo "FAIL - $*"
  failed=$((failed + 1))
}
# retry SECONDS CMD...: until CMD succeeds.
retry() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 1
  done
}

cleanup() {
  if ip -4 -o addr show dev lo | grep -qw "inet $NODE_IP/32"; then
    "$KUBECTL" --kubeconfig "$CODEBAY_NODE_KUBECONFIG" delete namespace "$NS" --wait=false >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT

"$HERE/node.sh" status >/dev/null || {
  echo "FAIL - the node is not up (test/k8s/node/node.sh up)"
  exit 1
}
[[ -n $BUSYBOX ]] || {
  echo "FAIL - no busybox image in the node's containerd"
  exit 1
}
k create namespace "$NS" >/dev/null
retry 30 k get serviceaccount default || fail "no default ServiceAccount in $NS"

pod() { # NAME LABELS IMAGE COMMAND...
  local name=$1 labels=$2 image=$3
  shift 3
  k run "$name" --image="$image" --image-pull-policy=IfNotPresent --labels="$labels" --restart=Never --command -- "$@" >/dev/null
}

# 1. A pod runs; kubectl exec works.
pod web app=web "$BUSYBOX" sh -c 'mkdir -p /www && echo hello-from-web >/www/index.html && exec httpd -f -p 8080 -h /www'
pod client role=client "$BUSYBOX" sleep 3600
pod other role=other "$BUSYBOX" sleep 3600
if k wait --for=condition=Ready pod/web pod/client pod/other --timeout=90s >/dev/null &&
  [[ $(k exec client -- echo exec-ok 2>&1) == exec-ok ]]; then
  ok "pods run and kubectl exec works"
else
  fail "pods did not run or exec failed: $(k get pods -o wide 2>&1 | tail -n +2 | tr '\n' ';')"
fi

# http_get POD HOST PORT: web's page, fetched from POD with busybox nc
# (Debian's static busybox wget crashes on glibc's static resolver).
http_get() {
  k exec "$1" -- sh -c "printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 2 $2 $3" 2>/dev/null | grep -q hello-from-web
}

# 2. A Service answers from another pod; 3. DNS resolves a Service name.
k expose pod web --port=80 --target-port=8080 --name=web >/dev/null
svc_ip=$(k get service web -o jsonpath='{.spec.clusterIP}')
if retry 20 http_get client "$svc_ip" 80; then
  ok "Service web ($svc_ip) answers from another pod"
else
  fail "Service web ($svc_ip) does not answer from pod client"
fi
if out=$(k exec client -- nslookup "web.$NS.svc.cluster.local" 2>&1) && grep -q "$svc_ip" <<<"$out"; then
  ok "DNS resolves web.$NS.svc.cluster.local to $svc_ip"
else
  fail "DNS did not resolve web.$NS.svc.cluster.local: $out"
fi
# (busybox nslookup exits 1 when any search candidate fails: read its output)
out=$(k exec client -- nslookup web 2>&1)
if grep -q "$svc_ip" <<<"$out"; then
  ok "DNS resolves the short name web (search path)"
else
  fail "DNS did not resolve the short name web: $out"
fi

# 4. NetworkPolicy: default deny ingress blocks pod->pod; an allow rule re-opens it.
web_ip=$(k get pod web -o jsonpath='{.status.podIP}')
reach() { http_get "$1" "$web_ip" 8080; }
unreachable() { ! reach "$1"; }
retry 10 reach client || fail "client cannot reach web ($web_ip) even before any NetworkPolicy"
k apply -f - >/dev/null <<EOF
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { name: deny-ingress }
spec: { podSelector: {}, policyTypes: [Ingress] }
EOF
if retry 30 unreachable client; then
  ok "NetworkPolicy default-deny blocks client -> web ($web_ip)"
else
  fail "NetworkPolicy default-deny did not block client -> web ($web_ip)"
fi
k apply -f - >/dev/null <<EOF
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { name: allow-client-to-web }
spec:
  podSelector: { matchLabels: { app: web } }
  ingress: [{ from: [{ podSelector: { matchLabels: { role: client } } }] }]
EOF
if retry 30 reach client && unreachable other; then
  ok "NetworkPolicy allow rule re-opens client -> web, other -> web stays blocked"
else
  fail "NetworkPolicy allow rule: client reachable=$(reach client >/dev/null 2>&1 && echo yes || echo no), other reachable=$(reach other >/dev/null 2>&1 && echo yes || echo no)"
fi
k delete networkpolicy --all >/dev/null

# 5. A PVC on the default StorageClass binds and a pod writes to it.
k apply -f - >/dev/null <<EOF
apiVersion: v1
kind: PersistentVolumeClaim
metadata: { name: data }
spec: { accessModes: [ReadWriteOnce], resources: { requests: { storage: 1Gi } } }
---
apiVersion: v1
kind: Pod
metadata: { name: writer }
spec:
  securityContext: { runAsUser: 1000, runAsGroup: 1000 }
  containers:
    - name: c
      image: $BUSYBOX
      imagePullPolicy: IfNotPresent
      command: [sh, -c, "echo written >/data/f && cat /data/f && sleep 3600"]
      volumeMounts: [{ name: data, mountPath: /data }]
  volumes: [{ name: data, persistentVolumeClaim: { claimName: data } }]
EOF
if k wait --for=jsonpath='{.status.phase}'=Bound pvc/data --timeout=30s >/dev/null &&
  k wait --for=condition=Ready pod/writer --timeout=60s >/dev/null &&
  [[ $(k exec writer -- cat /data/f 2>&1) == written ]]; then
  ok "PVC on the default StorageClass ($(k get pvc data -o jsonpath='{.spec.storageClassName}')) is Bound and writable by uid 1000"
else
  fail "PVC/writer: $(k get pvc data --no-headers 2>&1) / $(k get pod writer --no-headers 2>&1)"
fi

# 6. An image pushed to the registry from the host runs on the node.
SMOKE_IMAGE=codebay-smoke/tools:1
if ! command -v docker >/dev/null || ! docker version >/dev/null 2>&1; then
  fail "no Docker daemon (DOCKER_HOST=${DOCKER_HOST:-}): cannot check host push, DinD, sudo"
else
  build_dir=$(mktemp -d)
  cat >"$build_dir/Dockerfile" <<'EOF'
FROM debian:bookworm
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      docker.io iptables procps ca-certificates sudo busybox-static && rm -rf /var/lib/apt/lists/* && \
    useradd -m -u 1000 -s /bin/bash dev && echo 'dev ALL=(ALL) NOPASSWD:ALL' >/etc/sudoers.d/dev
EOF
  if docker build -q -t "$SMOKE_IMAGE" "$build_dir" >/dev/null 2>"$build_dir/err" &&
    docker tag "$SMOKE_IMAGE" "$CODEBAY_NODE_REGISTRY/$SMOKE_IMAGE" &&
    docker push -q "$CODEBAY_NODE_REGISTRY/$SMOKE_IMAGE" >/dev/null 2>>"$build_dir/err"; then
    k run pushed --image="$CODEBAY_NODE_REGISTRY_PULL/$SMOKE_IMAGE" --image-pull-policy=Always --restart=Never \
      --command -- cat /etc/debian_version >/dev/null
    if k wait --for=jsonpath='{.status.phase}'=Succeeded pod/pushed --timeout=120s >/dev/null; then
      ok "image pushed from the host to $CODEBAY_NODE_REGISTRY runs on the node as $CODEBAY_NODE_REGISTRY_PULL/$SMOKE_IMAGE (debian $(k logs pushed))"
    else
      fail "pod of $CODEBAY_NODE_REGISTRY_PULL/$SMOKE_IMAGE: $(k describe pod pushed | tail -n 5 | tr '\n' ';')"
    fi
  else
    fail "docker build/push to $CODEBAY_NODE_REGISTRY failed: $(tail -n 5 "$build_dir/err")"
  fi
  rm -rf "$build_dir"

  # 7. Docker-in-Docker: a privileged pod runs `docker run` and pushes to the
  # in-cluster registry name.
  k apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata: { name: dind }
spec:
  containers:
    - name: dind
      image: $CODEBAY_NODE_REGISTRY_PULL/$SMOKE_IMAGE
      command: [dockerd, --host=unix:///var/run/docker.sock, --insecure-registry=$CODEBAY_NODE_REGISTRY_IN_CLUSTER]
      securityContext: { privileged: true }
      volumeMounts: [{ name: varlibdocker, mountPath: /var/lib/docker }]
  volumes: [{ name: varlibdocker, emptyDir: {} }]
EOF
  dind_script="set -e
    for i in \$(seq 30); do docker info >/dev/null 2>&1 && break; sleep 1; done
    tar -C / -c bin/busybox | docker import -c 'ENTRYPOINT [\"/bin/busybox\"]' - smoke-inner >/dev/null
    docker run --rm --network none smoke-inner echo inner-run-ok
    docker tag smoke-inner $CODEBAY_NODE_REGISTRY_IN_CLUSTER/codebay-smoke/from-dind:$TAG
    docker push -q $CODEBAY_NODE_REGISTRY_IN_CLUSTER/codebay-smoke/from-dind:$TAG >/dev/null
    echo pushed"
  if k wait --for=condition=Ready pod/dind --timeout=120s >/dev/null &&
    out=$(k exec dind -- sh -c "$dind_script" 2>&1) && grep -q inner-run-ok <<<"$out" && grep -q pushed <<<"$out" &&
    guard && curl -sf "http://$NODE_IP:32000/v2/codebay-smoke/from-dind/tags/list" | grep -q "$TAG"; then
    ok "DinD pod runs docker run and pushes to $CODEBAY_NODE_REGISTRY_IN_CLUSTER (tag $TAG in the registry)"
  else
    fail "DinD: ${out:-pod not ready: $(k describe pod dind | tail -n 5 | tr '\n' ';')}"
  fi

  # 9. hostUsers: false (user namespace), and sudo (setuid) as a non-root user in it.
  k apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata: { name: userns }
spec:
  hostUsers: false
  securityContext: { runAsUser: 1000, runAsGroup: 1000 }
  containers:
    - name: c
      image: $CODEBAY_NODE_REGISTRY_PULL/$SMOKE_IMAGE
      command: [sleep, "3600"]
EOF
  if k wait --for=condition=Ready pod/userns --timeout=90s >/dev/null; then
    map=$(k exec userns -- cat /proc/self/uid_map 2>&1 | tr -s ' ' | sed 's/^ //')
    if [[ $map != "0 0 4294967295" && -n $map ]]; then
      ok "hostUsers: false pod runs in a user namespace (uid_map: $map)"
    else
      fail "hostUsers: false pod has no user namespace (uid_map: $map)"
    fi
    if out=$(k exec userns -- sudo -n id -u 2>&1) && [[ $out == 0 ]]; then
      ok "sudo (setuid) as uid 1000 works under hostUsers: false"
    else
      fail "sudo under hostUsers: false: $out"
    fi
  else
    fail "hostUsers: false pod did not run: $(k describe pod userns | tail -n 5 | tr '\n' ';')"
  fi
fi

# 8. Ingress of class public routes a Host header through Traefik.
host=smoke-$RANDOM.codebay.test
k apply -f - >/dev/null <<EOF
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: { name: web }
spec:
  ingressClassName: public
  rules:
    - host: $host
      http:
        paths: [{ path: /, pathType: Prefix, backend: { service: { name: web, port: { number: 80 } } } }]
EOF
ingress_get() { guard && curl -sf -m 3 -H "Host: $host" "$CODEBAY_NODE_INGRESS/" | grep -q hello-from-web; }
if retry 30 ingress_get; then
  ok "Ingress (class public) routes Host $host via Traefik at $CODEBAY_NODE_INGRESS"
else
  fail "Ingress: curl -H 'Host: $host' $CODEBAY_NODE_INGRESS/ -> $(curl -s -m 3 -o /dev/null -w '%{http_code}' -H "Host: $host" "$CODEBAY_NODE_INGRESS/")"
fi

echo "$passed passed, $failed failed"
((failed == 0))
