#!/usr/bin/env bash
# Smoke test of the test cluster (test/k8s/cluster.sh up must have run):
# PodSecurity admission, Deployment -> ReplicaSet -> Running pods, RBAC with a
# TokenRequest-API token, PVC binding, ResourceQuota, garbage collection,
# server-side apply dry-run. Exits non-zero if any check fails.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
eval "$("$HERE/cluster.sh" env)"
NS=codebay-smoke-$$-$RANDOM
OTHER=$NS-other
TMP=$(mktemp -d)
passed=0
failed=0

cleanup() {
  kubectl delete namespace "$NS" "$OTHER" --wait=false --ignore-not-found >/dev/null 2>&1
  rm -rf "$TMP"
}
trap cleanup EXIT

ok() { passed=$((passed + 1)); echo "ok   - $1"; }
not_ok() {
  failed=$((failed + 1))
  echo "FAIL - $1"
  [[ -z ${2:-} ]] || sed 's/^/       /' <<<"$2"
}
# check "description" command...: passes when the command succeeds
check() {
  local desc=$1 out
  shift
  if out=$("$@" 2>&1); then ok "$desc"; else not_ok "$desc" "$out"; fi
}
# refused "description" "expected error text" command...: passes when the
# command fails and its output contains the expected text
refused() {
  local desc=$1 want=$2 out
  shift 2
  if out=$("$@" 2>&1); then
    not_ok "$desc (was allowed)" "$out"
  elif grep -q -- "$want" <<<"$out"; then
    ok "$desc"
  else
    not_ok "$desc (failed, but not with \"$want\")" "$out"
  fi
}

# warns "description" "expected warning" command...: passes when the command
# succeeds and its output contains the expected text
warns() {
  local desc=$1 want=$2 out
  shift 2
  if ! out=$("$@" 2>&1); then
    not_ok "$desc (failed)" "$out"
  elif grep -q -- "$want" <<<"$out"; then
    ok "$desc"
  else
    not_ok "$desc (no \"$want\")" "$out"
  fi
}

check "apiserver answers /readyz" kubectl get --raw /readyz
check "nodes are Ready" kubectl wait --for=condition=Ready node --all --timeout=30s

# --- PodSecurity -------------------------------------------------------------
check "namespace with enforce=restricted" kubectl apply -f - <<EOF
apiVersion: v1
kind: Namespace
metadata:
  name: $NS
  labels:
    pod-security.kubernetes.io/enforce: restricted
    pod-security.kubernetes.io/enforce-version: latest
    pod-security.kubernetes.io/warn: restricted
---
apiVersion: v1
kind: Namespace
metadata:
  name: $OTHER
---
apiVersion: v1
kind: Secret
metadata:
  name: not-yours
  namespace: $OTHER
stringData:
  password: hunter2
EOF

check "restricted-compliant Deployment is created" kubectl apply -n "$NS" -f - <<'EOF'
apiVersion: apps/v1
kind: Deployment
metadata:
  name: editor
spec:
  replicas: 2
  selector:
    matchLabels: { app: editor }
  template:
    metadata:
      labels: { app: editor }
    spec:
      automountServiceAccountToken: false
      securityContext:
        runAsNonRoot: true
        runAsUser: 1000
        seccompProfile: { type: RuntimeDefault }
      containers:
        - name: editor
          image: codebay.invalid/editor:smoke
          ports: [{ containerPort: 8080 }]
          resources:
            requests: { cpu: 100m, memory: 128Mi }
            limits: { cpu: 500m, memory: 512Mi }
          securityContext:
            allowPrivilegeEscalation: false
            capabilities: { drop: [ALL] }
EOF
check "Deployment becomes Available (pods scheduled onto fake nodes, Running)" \
  kubectl rollout status -n "$NS" deployment/editor --timeout=90s
phases=$(kubectl get pods -n "$NS" -l app=editor -o jsonpath='{range .items[*]}{.status.phase}/{.spec.nodeName} {end}')
if [[ $phases =~ ^(Running/[^[:space:]]+[[:space:]]){2}$ ]]; then
  ok "both pods Running on a node ($phases)"
else
  not_ok "both pods Running on a node" "$phases"
fi

refused "privileged pod is refused by PodSecurity admission" "violates PodSecurity" \
  kubectl apply -n "$NS" -f - <<'EOF'
apiVersion: v1
kind: Pod
metadata:
  name: privileged
spec:
  containers:
    - name: c
      image: codebay.invalid/editor:smoke
      securityContext:
        privileged: true
EOF
refused "root pod without seccomp is refused too" "violates PodSecurity" \
  kubectl run -n "$NS" rooted --image=codebay.invalid/editor:smoke --restart=Never

# --- RBAC + TokenRequest ----------------------------------------------------
check "ServiceAccount with a namespaced Role" kubectl apply -n "$NS" -f - <<EOF
apiVersion: v1
kind: ServiceAccount
metadata:
  name: provisioner
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: provisioner
rules:
  - apiGroups: [""]
    resources: [pods, secrets, configmaps]
    verbs: [get, list, watch, create, delete]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: provisioner
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: provisioner
subjects:
  - kind: ServiceAccount
    name: provisioner
    namespace: $NS
EOF
if token=$(kubectl create token provisioner -n "$NS" --duration=10m 2>&1); then
  ok "TokenRequest API issues a token (kubectl create token)"
else
  not_ok "TokenRequest API issues a token (kubectl create token)" "$token"
  token=invalid
fi
# A kubeconfig with only the token: the admin one carries a client
# certificate, which the apiserver would authenticate first.
server=$(kubectl config view --minify -o jsonpath='{.clusters[0].cluster.server}')
kubectl config view --minify --flatten --raw \
  -o jsonpath='{.clusters[0].cluster.certificate-authority-data}' | base64 -d >"$TMP/ca.crt"
SA_KUBECONFIG=$TMP/sa.kubeconfig
KUBECONFIG=$SA_KUBECONFIG kubectl config set-cluster smoke --server="$server" \
  --certificate-authority="$TMP/ca.crt" --embed-certs >/dev/null
KUBECONFIG=$SA_KUBECONFIG kubectl config set-credentials sa --token="$token" >/dev/null
KUBECONFIG=$SA_KUBECONFIG kubectl config set-context smoke --cluster=smoke --user=sa >/dev/null
KUBECONFIG=$SA_KUBECONFIG kubectl config use-context smoke >/dev/null
sa() { kubectl --kubeconfig "$SA_KUBECONFIG" "$@"; }

who=$(sa auth whoami -o jsonpath='{.status.userInfo.username}' 2>&1)
if [[ $who == "system:serviceaccount:$NS:provisioner" ]]; then
  ok "token authenticates as $who"
else
  not_ok "token authenticates as the ServiceAccount" "$who"
fi
check "ServiceAccount lists pods in its namespace" sa get pods -n "$NS"
check "ServiceAccount lists secrets in its namespace" sa get secrets -n "$NS"
refused "ServiceAccount listing secrets in another namespace is Forbidden" "Forbidden" \
  sa get secrets -n "$OTHER"
refused "ServiceAccount reading a secret in another namespace is Forbidden" "Forbidden" \
  sa get secret not-yours -n "$OTHER"
refused "ServiceAccount listing nodes (cluster scope) is Forbidden" "Forbidden" sa get nodes
check "auth can-i agrees (no secrets in the other namespace)" \
  bash -c "[[ \$(kubectl --kubeconfig '$SA_KUBECONFIG' auth can-i list secrets -n '$OTHER') == no ]]"

# --- Volumes ------------------------------------------------------------------
check "PVC without a storageClassName is created" kubectl apply -n "$NS" -f - <<'EOF'
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: home
spec:
  accessModes: [ReadWriteOnce]
  resources:
    requests: { storage: 1Gi }
EOF
check "PVC becomes Bound (default StorageClass kwok-volume, kwok's volume stages)" \
  kubectl wait -n "$NS" --for=jsonpath='{.status.phase}'=Bound pvc/home --timeout=60s
pv=$(kubectl get pvc home -n "$NS" -o jsonpath='{.spec.volumeName}')
check "its PersistentVolume is Bound too" \
  kubectl wait --for=jsonpath='{.status.phase}'=Bound "pv/$pv" --timeout=30s

# --- ResourceQuota -------------------------------------------------------------
check "ResourceQuota (1 PVC) is created" kubectl apply -n "$NS" -f - <<'EOF'
apiVersion: v1
kind: ResourceQuota
metadata:
  name: quota
spec:
  hard:
    persistentvolumeclaims: "1"
    requests.cpu: "1"
EOF
check "quota usage is computed by the controller" \
  kubectl wait -n "$NS" --for=jsonpath='{.status.used.persistentvolumeclaims}'=1 resourcequota/quota --timeout=60s
refused "a second PVC is refused by ResourceQuota admission" "exceeded quota" \
  kubectl apply -n "$NS" -f - <<'EOF'
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: second
spec:
  accessModes: [ReadWriteOnce]
  resources:
    requests: { storage: 1Gi }
EOF

# --- Garbage collection -------------------------------------------------------
check "owner ConfigMap is created" kubectl create configmap owner -n "$NS" --from-literal=a=b
owner_uid=$(kubectl get configmap owner -n "$NS" -o jsonpath='{.metadata.uid}')
check "owned ConfigMap (ownerReferences) is created" kubectl apply -n "$NS" -f - <<EOF
apiVersion: v1
kind: ConfigMap
metadata:
  name: owned
  ownerReferences:
    - apiVersion: v1
      kind: ConfigMap
      name: owner
      uid: $owner_uid
data:
  c: d
EOF
check "owner is deleted" kubectl delete configmap owner -n "$NS"
check "owned ConfigMap is garbage-collected" \
  kubectl wait -n "$NS" --for=delete configmap/owned --timeout=60s

# --- Server-side apply, dry run --------------------------------------------------
cm_yaml="apiVersion: v1
kind: ConfigMap
metadata:
  name: dry
  namespace: $NS
data:
  k: v"
check "kubectl apply --server-side --dry-run=server" \
  kubectl apply --server-side --field-manager=codebay-smoke --dry-run=server -f - <<<"$cm_yaml"
refused "...and the dry run stored nothing" "NotFound" kubectl get configmap dry -n "$NS"
check "kubectl apply --server-side (for real)" \
  kubectl apply --server-side --field-manager=codebay-smoke -f - <<<"$cm_yaml"
# PodSecurity enforces on pods only; for a workload it warns (warn label).
warns "server-side dry run of a violating Deployment warns (would violate PodSecurity)" \
  "would violate PodSecurity" \
  kubectl apply --server-side --dry-run=server -n "$NS" -f - <<'EOF'
apiVersion: apps/v1
kind: Deployment
metadata:
  name: bad
spec:
  selector:
    matchLabels: { app: bad }
  template:
    metadata:
      labels: { app: bad }
    spec:
      containers:
        - name: c
          image: codebay.invalid/editor:smoke
EOF

refused "...and stored no Deployment" "NotFound" kubectl get deployment bad -n "$NS"

echo "smoke: $passed passed, $failed failed"
((failed == 0))
