#!/usr/bin/env bash
# `npm start`: runs the whole system on this machine. Installs pnpm and the
# dependencies if missing, starts Redis, a Docker daemon and a registry unless
# REDIS_URL / DOCKER_HOST / REGISTRY point at existing ones, builds the base
# image and the editor bundle once (cached under /var/cache/codebay), then runs
# the gateway, the builder and the provisioner in the foreground, each restarted
# with backoff when it exits. Ctrl-C stops them.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
state=${CODEBAY_STATE:-/var/lib/codebay}

bash deploy/local/bootstrap.sh
bash deploy/local/components.sh up
eval "$(bash deploy/local/components.sh env)"

export CODEBAY_ARTIFACT_DIR=${CODEBAY_ARTIFACT_DIR:-$state/artifacts}
export CODEBAY_BUILD_DIR=${CODEBAY_BUILD_DIR:-$state/builds}
export CODEBAY_EDITOR_ROOT=${CODEBAY_EDITOR_ROOT:-${CODEBAY_CACHE:-/var/cache/codebay}/editor}
export GATEWAY_PORT=${GATEWAY_PORT:-8080}

# One admin token per machine, kept across restarts (mode 0600), unless one is given.
if [ -z "${CODEBAY_ADMIN_TOKEN:-}" ]; then
  token_file=$state/admin-token
  if [ ! -s "$token_file" ]; then
    (umask 077 && head -c 32 /dev/urandom | base64 | tr -d '/+=\n' > "$token_file")
  fi
  CODEBAY_ADMIN_TOKEN=$(cat "$token_file")
  export CODEBAY_ADMIN_TOKEN
  echo "codebay: admin API token is in $token_file" >&2
fi
# Per-user API tokens (hashed; add one with services/gateway/src/add-token.ts), kept here.
if [ -z "${CODEBAY_TOKENS_FILE:-}" ]; then
  export CODEBAY_TOKENS_FILE=$state/tokens.json
  [ -s "$CODEBAY_TOKENS_FILE" ] || (umask 077 && echo '{"tokens": []}' > "$CODEBAY_TOKENS_FILE")
fi
# The platform key (seals access tokens in Redis, derives each editor's secret), likewise.
if [ -z "${CODEBAY_SECRET_KEY:-}" ]; then
  key_file=$state/secret-key
  if [ ! -s "$key_file" ]; then
    (umask 077 && head -c 32 /dev/urandom | base64 > "$key_file")
  fi
  CODEBAY_SECRET_KEY=$(cat "$key_file")
  export CODEBAY_SECRET_KEY
fi

# Each service runs under a supervisor of its own: a service that exits is started again after
# a backoff (1 s, doubling to 30 s; back to 1 s once it ran a minute), the others keep serving,
# and this says what happened. An invalid configuration (exit code 2) is not retried: it stops
# everything. The running processes' ids are in $CODEBAY_RUN_DIR/<service>.pid ($state/run).
run_dir=${CODEBAY_RUN_DIR:-$state/run}
mkdir -p "$run_dir"
service_env() { # SERVICE: each service holds only its own secrets
  case $1 in
    gateway)
      export METRICS_PORT=${GATEWAY_METRICS_PORT:-9103}
      unset REGISTRY_PUSH_AUTH
      ;;
    builder)
      export METRICS_PORT=${BUILDER_METRICS_PORT:-9101}
      unset CODEBAY_ADMIN_TOKEN CODEBAY_SECRET_KEY
      ;;
    provisioner)
      export METRICS_PORT=${PROVISIONER_METRICS_PORT:-9102}
      unset CODEBAY_ADMIN_TOKEN REGISTRY_PUSH_AUTH
      ;;
  esac
}
supervise() { # SERVICE
  local service=$1 delay=1 started rc how child='' restarts=0
  # (set -e: a killed child's status must not end the trap before it cleans up.)
  trap '{ [ -n "$child" ] && kill -TERM "$child" 2>/dev/null; } || true; wait "$child" 2>/dev/null || true; rm -f "$run_dir/$service.pid"; exit 0' TERM INT
  while :; do
    started=$SECONDS
    (service_env "$service" && exec node --enable-source-maps "$root/services/$service/dist/main.js") \
      > >(sed -u "s/^/[$service] /") 2>&1 &
    child=$!
    echo "$child" >"$run_dir/$service.pid"
    rc=0
    wait "$child" || rc=$?
    if [ "$rc" -eq 2 ]; then
      echo "codebay: $service refused its configuration (exit code 2, above); stopping" >&2
      exit 2
    fi
    if [ $((SECONDS - started)) -ge 60 ]; then delay=1; fi
    restarts=$((restarts + 1))
    if [ "$rc" -gt 128 ]; then how="was killed by signal $(kill -l $((rc - 128)) 2>/dev/null || echo $((rc - 128)))"; else how="exited with code $rc"; fi
    echo "codebay: $service $how after $((SECONDS - started)) s; starting it again in $delay s (restart $restarts)" >&2
    sleep "$delay" &
    child=$!
    wait "$child" || true
    delay=$((delay * 2 > 30 ? 30 : delay * 2))
  done
}

pids=()
# shellcheck disable=SC2317 # called by the trap
stop() {
  local rc=${1:-0}
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait || true
  exit "$rc"
}
trap stop INT TERM EXIT

for service in gateway builder provisioner; do
  supervise "$service" &
  pids+=($!)
done

cat >&2 <<MSG

codebay is starting:
  API        http://127.0.0.1:$GATEWAY_PORT/api   (Authorization: Bearer \$(cat $state/admin-token))
  user tokens  node services/gateway/dist/add-token.js --user NAME --file $CODEBAY_TOKENS_FILE
  editors    http://<instance id>.localhost:$GATEWAY_PORT/   (one origin per instance; the API's url field leads there)
  health     http://127.0.0.1:$GATEWAY_PORT/health
  metrics    http://127.0.0.1:${GATEWAY_METRICS_PORT:-9103}/metrics, :${BUILDER_METRICS_PORT:-9101}/metrics, :${PROVISIONER_METRICS_PORT:-9102}/metrics
Ctrl-C stops the services (\`bash deploy/local/components.sh down\` stops Redis, the daemons and the registries).

MSG
# Supervisors end only on an invalid configuration (or when stopped): then stop the others.
rc=0
wait -n "${pids[@]}" || rc=$?
echo "codebay: a service cannot run; stopping the others" >&2
stop "$rc"
