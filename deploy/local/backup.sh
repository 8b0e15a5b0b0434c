#!/usr/bin/env bash
# Backs up and restores what a single-machine codebay keeps (`npm start`, deploy/local).
#
# Usage: deploy/local/backup.sh create DIR    while the system runs
#        deploy/local/backup.sh restore DIR   into $CODEBAY_STATE, with Redis and the registry stopped
#
# create writes to DIR (made mode 0700; it holds secrets):
#   redis.rdb       a point-in-time snapshot from the running Redis (`redis-cli --rdb`; every
#                   database: instance records, build cache records, queues, build logs)
#   registry.tar    the registry's storage. Blobs are content-addressed and a manifest is written
#                   only after its blobs, so a copy taken while builders push holds whole images;
#                   uploads in progress (_uploads) are left out
#   artifacts.tar   workspace uploads (an instance not yet started still needs its own)
#   secrets/        redis.password, admin-token, secret-key (the platform key: without it the
#                   access tokens sealed in Redis cannot be read), tokens.json, registry-auth/
#   SHA256SUMS      of every file above (restore checks them)
# restore puts them back in $CODEBAY_STATE (default /var/lib/codebay): Redis loads the snapshot
# and rewrites its append-only file from it (a temporary redis-server on a spare port), so the
# next `deploy/local/components.sh up` (or `npm start`) starts from the backup. It refuses while
# the Redis or the registry of that state run (`bash deploy/local/components.sh down` first) and
# keeps what it replaces in $CODEBAY_STATE/replaced-<time>/.
#
# Kubernetes: docs/operations.md (redis-cli --rdb in the Redis pod, the registry's volume).
set -euo pipefail

STATE=${CODEBAY_STATE:-/var/lib/codebay}
REDIS_PORT=${CODEBAY_REDIS_PORT:-6380}
SECRETS=(redis.password admin-token secret-key tokens.json registry-auth)

log() { printf '[backup %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() {
  log "ERROR: $*"
  exit 1
}
usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
  exit 2
}

# running PIDFILE NAME: the pidfile names a live process whose command line mentions NAME.
running() {
  local pid
  pid=$(cat "$1" 2>/dev/null) || return 1
  [[ -n $pid ]] && grep -qa "$2" "/proc/$pid/cmdline" 2>/dev/null
}

create() {
  local dir=$1
  command -v redis-cli >/dev/null || die "redis-cli not found (apt-get install redis-tools)"
  [[ -s $STATE/redis.password ]] || die "no $STATE/redis.password: is this a deploy/local state dir (CODEBAY_STATE)?"
  mkdir -p "$dir"
  chmod 700 "$dir"
  log "Redis snapshot (127.0.0.1:$REDIS_PORT)"
  REDISCLI_AUTH=$(cat "$STATE/redis.password") redis-cli -h 127.0.0.1 -p "$REDIS_PORT" --no-auth-warning --rdb "$dir/redis.rdb" >/dev/null ||
    die "redis-cli --rdb failed: is Redis running on 127.0.0.1:$REDIS_PORT?"
  log "registry storage ($STATE/registry)"
  # A file that changes while it is read (a push, an upload) is expected: tar says so and exits 1.
  local rc=0
  tar -C "$STATE" --warning=no-file-changed --exclude='*/_uploads/*' -cf "$dir/registry.tar" registry || rc=$?
  ((rc <= 1)) || die "tar of $STATE/registry failed ($rc)"
  log "workspace uploads ($STATE/artifacts)"
  mkdir -p "$STATE/artifacts"
  rc=0
  tar -C "$STATE" --warning=no-file-changed -cf "$dir/artifacts.tar" artifacts || rc=$?
  ((rc <= 1)) || die "tar of $STATE/artifacts failed ($rc)"
  mkdir -p "$dir/secrets"
  local s
  for s in "${SECRETS[@]}"; do
    if [[ -e $STATE/$s ]]; then cp -a "$STATE/$s" "$dir/secrets/"; fi
  done
  (cd "$dir" && find . -type f ! -name SHA256SUMS ! -name .sums -print0 | LC_ALL=C sort -z | xargs -0 sha256sum >"$dir/.sums" && mv "$dir/.sums" SHA256SUMS)
  log "backup in $dir ($(du -sh "$dir" | cut -f1))"
}

restore() {
  local dir=$1
  [[ -s $dir/redis.rdb && -s $dir/SHA256SUMS ]] || die "$dir is not a backup of backup.sh create (no redis.rdb or SHA256SUMS)"
  (cd "$dir" && sha256sum --quiet -c SHA256SUMS) || die "$dir: files do not match SHA256SUMS"
  running "$STATE/run/redis.pid" redis-server && die "Redis of $STATE is running: stop it first (bash deploy/local/components.sh down)"
  local r
  for r in registry-pull registry-push; do
    running "$STATE/run/$r.pid" docker-registry && die "the registry of $STATE is running: stop it first (bash deploy/local/components.sh down)"
  done
  mkdir -p "$STATE"
  local kept
  kept=$STATE/replaced-$(date -u +%Y%m%dT%H%M%SZ)
  mkdir -p "$kept"
  for r in redis registry artifacts "${SECRETS[@]}"; do
    if [[ -e $STATE/$r ]]; then mv "$STATE/$r" "$kept/"; fi
  done
  log "what was there is in $kept"
  tar -C "$STATE" -xf "$dir/registry.tar"
  tar -C "$STATE" -xf "$dir/artifacts.tar"
  cp -a "$dir/secrets/." "$STATE/"
  # Redis loads an RDB only without an append-only file: load it, then have Redis write the
  # append-only file from it (the mode components.sh runs Redis in), then stop.
  mkdir -p "$STATE/redis"
  cp "$dir/redis.rdb" "$STATE/redis/dump.rdb"
  local port pass
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  pass=$(cat "$STATE/redis.password")
  redis-server --bind 127.0.0.1 --port "$port" --dir "$STATE/redis" --dbfilename dump.rdb --appendonly no \
    --save '' --requirepass "$pass" --daemonize yes --pidfile "$STATE/redis/restore.pid" --logfile "$STATE/redis/restore.log" ||
    die "redis-server could not load the snapshot (see $STATE/redis/restore.log)"
  local cli=(redis-cli -h 127.0.0.1 -p "$port" --no-auth-warning)
  export REDISCLI_AUTH=$pass
  for _ in $(seq 100); do [[ $("${cli[@]}" ping 2>/dev/null) == PONG ]] && break; sleep 0.1; done
  [[ $("${cli[@]}" ping 2>/dev/null) == PONG ]] || die "the restored Redis does not answer (see $STATE/redis/restore.log)"
  "${cli[@]}" config set appendonly yes >/dev/null
  # Enabling the append-only file starts a rewrite of the whole dataset into it: done when no
  # rewrite runs or waits, the last one succeeded, and the manifest names a base file.
  local info finished=0
  for _ in $(seq 1200); do
    info=$("${cli[@]}" info persistence | tr -d '\r')
    if grep -qx 'aof_rewrite_in_progress:0' <<<"$info" && grep -qx 'aof_rewrite_scheduled:0' <<<"$info" &&
      grep -qx 'aof_last_bgrewrite_status:ok' <<<"$info" && grep -qsE '^file .* type b' "$STATE"/redis/appendonlydir/*.manifest; then
      finished=1
      break
    fi
    sleep 0.1
  done
  ((finished)) || die "the restored Redis did not finish writing its append-only file (see $STATE/redis/restore.log; the snapshot stays in $STATE/redis/dump.rdb)"
  log "restored $("${cli[@]}" info keyspace | grep -c '^db') database(s): $("${cli[@]}" info keyspace | grep '^db' | tr '\r\n' '  ')"
  "${cli[@]}" shutdown >/dev/null 2>&1 || true
  for _ in $(seq 300); do running "$STATE/redis/restore.pid" redis-server || break; sleep 0.1; done
  running "$STATE/redis/restore.pid" redis-server && die "the restoring redis-server (pid $(cat "$STATE/redis/restore.pid")) did not stop"
  rm -f "$STATE/redis/dump.rdb" "$STATE/redis/restore.pid"
  log "restored into $STATE: start it with bash deploy/local/components.sh up (or npm start)"
}

case ${1:-} in
  create) [[ -n ${2:-} ]] || usage; create "$(realpath -m "$2")" ;;
  restore) [[ -n ${2:-} ]] || usage; restore "$(realpath -m "$2")" ;;
  -h | --help | *) usage ;;
esac
