#!/bin/bash
# The builder-dind image's entrypoint: a builder and its own Docker daemon in one container
# (docker-compose.yml's builder; on Kubernetes the daemon is a sidecar instead).
#
# Starts dind-entrypoint (dockerd on DIND_SOCKET, unix socket only, with the build isolation
# rules; see that script) as root, waits for its socket, then runs the builder (`codebay
# builder`, the arguments given) as uid/gid 10001 without any capability. When either one
# exits the other is stopped and the container exits with the first one's status, so the
# restart policy brings both back together. SIGTERM goes to the builder first (it hands back
# or finishes its job within SHUTDOWN_GRACE_SECONDS), then to dockerd.
#
# Env: DIND_SOCKET (/run/codebay-docker/docker.sock), CODEBAY_BUILD_DIR (/var/lib/codebay/builds:
# emptied and given to 10001 at start), DIND_START_SECONDS (60), and every
# variable of dind-entrypoint and of the builder.
set -uo pipefail
log() { printf 'builder-dind: %s\n' "$*" >&2; }

SOCKET=${DIND_SOCKET:-/run/codebay-docker/docker.sock}
export DOCKER_HOST=unix://$SOCKET
BUILD_DIR=${CODEBAY_BUILD_DIR:-/var/lib/codebay/builds}

# The builds folder (a volume: on a daemon that remaps users a new volume belongs to the
# remapped root) is the builder's; what an earlier run of this container left there goes.
mkdir -p "$BUILD_DIR"
find "$BUILD_DIR" -mindepth 1 -maxdepth 1 -exec rm -rf {} +
chown 10001:10001 "$BUILD_DIR"

/usr/local/bin/dind-entrypoint &
dind=$!
builder=

stop() {
  [[ -z $builder ]] || kill -TERM "$builder" 2>/dev/null
  [[ -z $builder ]] || wait "$builder" 2>/dev/null
  kill -TERM "$dind" 2>/dev/null
  wait "$dind" 2>/dev/null
}
trap 'log "SIGTERM: stopping the builder, then dockerd"; stop; exit 143' TERM INT

deadline=$((SECONDS + ${DIND_START_SECONDS:-60}))
until docker version >/dev/null 2>&1; do
  if ! kill -0 "$dind" 2>/dev/null; then
    wait "$dind"
    rc=$?
    log "dockerd exited ($rc) before it answered"
    exit "$rc"
  fi
  if ((SECONDS > deadline)); then
    log "dockerd did not answer on $SOCKET within ${DIND_START_SECONDS:-60}s"
    stop
    exit 1
  fi
  sleep 0.2
done
log "dockerd answers on $SOCKET; starting the builder as 10001"

setpriv --reuid=10001 --regid=10001 --init-groups --inh-caps=-all --bounding-set=-all --no-new-privs \
  env HOME=/home/codebay /usr/local/bin/codebay "${@:-builder}" &
builder=$!

wait -n "$dind" "$builder"
rc=$?
if kill -0 "$builder" 2>/dev/null; then log "dockerd exited ($rc): stopping the builder"; else log "the builder exited ($rc): stopping dockerd"; fi
stop
exit "$rc"
