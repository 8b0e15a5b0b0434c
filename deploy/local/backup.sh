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
#   SHA256SUMS      of every file above (the archives hashed as they are written: read once)
# restore checks them (the archives while it extracts them into $CODEBAY_STATE/.restoring: read
# once; a damaged backup is refused before anything is replaced), then puts them back in
# $CODEBAY_STATE (default /var/lib/codebay): Redis loads the snapshot
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

# tar_hashed OUT [TAR-ARGS...]: a tar of $STATE's TAR-ARGS to OUT, its SHA-256 to OUT.sha256,
# in one read. A file that changes while it is read (a push, an upload) is expected: tar says
# so and exits 1.
tar_hashed() {
  local out=$1
  shift
  local st
  set +e
  tar -C "$STATE" --warning=no-file-changed -cf - "$@" | tee "$out" | sha256sum >"$out.sha256"
  st=("${PIPESTATUS[@]}")
  set -e
  ((st[0] <= 1)) || die "tar of $STATE/${*: -1} failed (${st[0]})"
  ((st[1] == 0 && st[2] == 0)) || die "writing $out failed"
  sed -i 's/ .*//' "$out.sha256"
}

# untar_checked TAR SUM DEST: extracts TAR into DEST while hashing it, in one read; dies (DEST
# then holds a partial copy the caller removes) when the hash is not SUM.
untar_checked() {
  local st sum hasher
  [[ -f $1 && -r $1 ]] || die "$1: no such readable file"
  rm -f "$3/.fifo" "$3/.sum"
  mkfifo "$3/.fifo"
  sha256sum <"$3/.fifo" >"$3/.sum" &
  hasher=$!
  set +e
  # (tar stops at the archive's end marker: the padding after it is read too, for the hash.)
  tee "$3/.fifo" <"$1" | (
    tar -C "$3" -xf -
    rc=$?
    cat >/dev/null
    exit "$rc"
  )
  st=("${PIPESTATUS[@]}")
  wait "$hasher"
  st+=($?)
  set -e
  rm -f "$3/.fifo"
  ((st[0] == 0 && st[1] == 0 && st[2] == 0)) || die "$1: could not be read or extracted (tee ${st[0]}, tar ${st[1]}, sha256sum ${st[2]})"
  sum=$(cut -d' ' -f1 "$3/.sum")
  rm -f "$3/.sum"
  [[ $sum == "$2" ]] || die "$1 does not match SHA256SUMS (the backup is damaged): nothing was replaced"
}

# stopped: dies unless the Redis and the registry of $STATE are stopped.
stopped() {
  running "$STATE/run/redis.pid" redis-server && die "Redis of $STATE is running: stop it first (bash deploy/local/components.sh down)"
  local r
  for r in registry-pull registry-push; do
    running "$STATE/run/$r.pid" docker-registry && die "the registry of $STATE is running: stop it first (bash deploy/local/components.sh down)"
  done
  return 0
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
  tar_hashed "$dir/registry.tar" --exclude='*/_uploads/*' registry
  log "workspace uploads ($STATE/artifacts)"
  mkdir -p "$STATE/artifacts"
  tar_hashed "$dir/artifacts.tar" artifacts
  mkdir -p "$dir/secrets"
  local s
  for s in "${SECRETS[@]}"; do
    if [[ -e $STATE/$s ]]; then cp -a "$STATE/$s" "$dir/secrets/"; fi
  done
  # The archives were hashed as they were written (read once); the rest here.
  local others t
  others=$(cd "$dir" && find . -type f ! -name SHA256SUMS ! -name '*.tar' ! -name '*.tar.sha256' -print0 | xargs -0 -r sha256sum) ||
    die "hashing the files of $dir failed"
  {
    printf '%s\n' "$others"
    for t in registry.tar artifacts.tar; do printf '%s  ./%s\n' "$(cat "$dir/$t.sha256")" "$t"; done
  } | grep -v '^$' | LC_ALL=C sort -k2 >"$dir/SHA256SUMS"
  rm -f "$dir"/*.tar.sha256
  log "backup in $dir ($(du -sh "$dir" | cut -f1))"
}

restore() {
  local dir=$1
  [[ -s $dir/redis.rdb && -s $dir/SHA256SUMS ]] || die "$dir is not a backup of backup.sh create (no redis.rdb or SHA256SUMS)"
  # The archives are checked as they are extracted (read once), the rest first.
  grep -v -E '  \./(registry|artifacts)\.tar$' "$dir/SHA256SUMS" | (cd "$dir" && sha256sum --quiet -c -) || die "$dir: files do not match SHA256SUMS"
  local t sums=()
  for t in artifacts registry; do
    sums+=("$(grep -E "  \./$t\.tar$" "$dir/SHA256SUMS" | cut -d' ' -f1 || true)")
    [[ -n ${sums[-1]} ]] || die "$dir/SHA256SUMS names no $t.tar"
  done
  stopped
  mkdir -p "$STATE"
  local stage=$STATE/.restoring
  rm -rf "$stage"
  mkdir -p "$stage"
  # shellcheck disable=SC2064 # the path now: $stage is local
  trap "rm -rf $(printf %q "$stage")" EXIT
  untar_checked "$dir/artifacts.tar" "${sums[0]}" "$stage"
  untar_checked "$dir/registry.tar" "${sums[1]}" "$stage"
  # (Extracting takes a while: nothing may have started meanwhile.)
  stopped
  local r kept
  kept=$STATE/replaced-$(date -u +%Y%m%dT%H%M%SZ)
  mkdir -p "$kept"
  for r in redis registry artifacts "${SECRETS[@]}"; do
    if [[ -e $STATE/$r ]]; then mv "$STATE/$r" "$kept/"; fi
  done
  log "what was there is in $kept"
  mv "$stage/registry" "$stage/artifacts" "$STATE/"
  rm -rf "$stage"
  trap - EXIT
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
