#!/usr/bin/env bash
# Start the real components codebay needs on a single machine:
#   Redis (password required), codebay's image registry (pulls at localhost:32000 with
#   pull-only credentials, read-only; pushes at localhost:32001 with the builders'
#   credentials), a base-image mirror standing in for Docker Hub (localhost:5000,
#   anonymous), a private dockerd (user namespaces remapped, inter-container traffic off,
#   the mirror as its Docker Hub mirror), host isolation rules for containers, a locally
#   built debian:bookworm base image, BuildKit's pieces for Docker 20.10 (the buildx CLI plugin,
#   and the Dockerfile frontend in the mirror as docker/dockerfile:1.4 and :1; both built from Go
#   modules by deploy/buildkit/install.sh, cached), and (if the editor package provides one) the
#   editor bundles: one per code-server release in CODEBAY_EDITOR_VERSIONS, the first the default.
#
# Usage: components.sh up | env | status | down
#   up      install missing apt packages, start everything, write $STATE/local.env
#   env     print `export KEY=VALUE` lines:  eval "$(bash deploy/local/components.sh env)"
#   status  one line per component (exit 1 if any is down)
#   down    stop what `up` started (pidfiles; SIGTERM, then SIGKILL)
#
# Non-interactive, idempotent, safe to re-run while everything is up, and robust
# to stale pidfiles/sockets left behind when processes were killed (CI kills all
# processes between runs while /var/lib and /var/cache persist).
#
# Environment:
#   CODEBAY_STATE       state dir (default /var/lib/codebay)
#   CODEBAY_CACHE       cache dir (default /var/cache/codebay)
#   CODEBAY_REDIS_PORT  port of the managed Redis (default 6380)
#   REDIS_URL           if set (to anything but the managed URL), use that Redis instead
#   REGISTRY            if set to anything but localhost:32000, use that registry instead (then
#                       REGISTRY_PUSH, REGISTRY_PULL_AUTH, REGISTRY_PUSH_AUTH are yours to set)
#   DOCKER_HOST         if set (to anything but the managed socket), use that daemon instead
#   CODEBAY_DEBIAN_MIRROR  override the Debian mirror (default: read from apt sources)
#   CODEBAY_EDITOR_VERSIONS  code-server releases to build editor bundles of, space-separated
#                       (default "4.139.1 4.100.3": the current one, the default, and the
#                       newest for Node 20, for instances asking for vscode_version 1.100)
#   CODEBAY_SECOND_DOCKERD=1  also run a second daemon (unix:///run/codebay-docker-2/docker.sock,
#                       own bridge, no NAT) for a second builder; the test suites use it
set -euo pipefail

# CI shells may lack the sbin dirs (dockerd, debootstrap, ip, iptables live there).
case ":$PATH:" in *:/usr/sbin:*) ;; *) PATH=$PATH:/usr/sbin:/sbin ;; esac
export PATH

STATE=${CODEBAY_STATE:-/var/lib/codebay}
CACHE=${CODEBAY_CACHE:-/var/cache/codebay}
REDIS_PORT=${CODEBAY_REDIS_PORT:-6380}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

RUN_DIR=$STATE/run # pidfiles of redis/registry (stale ones are detected, see pid_of)
LOG_DIR=$STATE/log

# Redis requires a password (generated once, mode 0600).
REDIS_PASSWORD_FILE=$STATE/redis.password
if [[ ! -s $REDIS_PASSWORD_FILE ]] && mkdir -p "$STATE" 2>/dev/null; then
  (umask 077 && head -c 24 /dev/urandom | base64 | tr -d '/+=\n' >"$REDIS_PASSWORD_FILE")
fi
REDIS_PASSWORD=$(cat "$REDIS_PASSWORD_FILE" 2>/dev/null || true)
MANAGED_REDIS_URL=redis://default:$REDIS_PASSWORD@127.0.0.1:$REDIS_PORT
# codebay's registry: one storage, two endpoints. Instances, the gateway and cache-from pulls
# read at the pull endpoint (read-only, pull-only user); only builders write, at the push
# endpoint (push user). Always "localhost": the Dev Containers CLI only speaks plain HTTP to
# exactly `localhost`.
MANAGED_REGISTRY=localhost:32000
REGISTRY_ADDR=127.0.0.1:32000
MANAGED_REGISTRY_PUSH=localhost:32001
REGISTRY_PUSH_ADDR=127.0.0.1:32001
AUTH_DIR=$STATE/registry-auth
# The base-image mirror: public images (debian:bookworm) under their public names, anonymous,
# as Docker Hub would serve them; the daemons use it as their registry mirror.
MIRROR=localhost:5000
MIRROR_ADDR=127.0.0.1:5000
DOCKER_RUN=/run/codebay-docker
DOCKER_SOCK=$DOCKER_RUN/docker.sock
DOCKER_PIDFILE=$DOCKER_RUN/docker.pid
MANAGED_DOCKER_HOST=unix://$DOCKER_SOCK
DOCKER_BIN=/usr/bin/docker # the Debian client; a newer one may sit earlier on PATH
# The second daemon (one per builder process) gets a bridge of its own: docker0 is the
# first daemon's, and `--bridge=none` would delete docker0 (dockerd removes the default
# bridge when it is disabled). No iptables rules of its own, so its containers reach the
# host and each other, not the internet.
DOCKER2_RUN=/run/codebay-docker-2
DOCKER2_BRIDGE=codebay-br2
DOCKER2_BRIDGE_CIDR=172.31.254.1/24
DOCKER2_PIDFILE=$DOCKER2_RUN/docker.pid
DOCKER_HOST_2=unix://$DOCKER2_RUN/docker.sock
WANT_DOCKER2=${CODEBAY_SECOND_DOCKERD:-0}

BASE_TAR=$CACHE/base/debian-bookworm-minbase-v1.tar
# prometheus: its server and promtool, for deploy/monitoring (`prometheus
# --config.file=deploy/monitoring/prometheus/prometheus.yml`) and the suites that check it.
APT_PACKAGES=(docker.io redis-server docker-registry debootstrap chromium ripgrep tmux curl
  libkrb5-dev libx11-dev libxkbfile-dev libsecret-1-dev pkg-config iptables apache2-utils uidmap prometheus)

# --- which components are ours ------------------------------------------------
# A pre-set variable means "use that one instead". A value equal to what we would
# manage anyway (e.g. after `eval "$(components.sh env)"`) still counts as ours,
# so `up` restarts it after CI killed it.
EFF_REDIS_URL=${REDIS_URL:-$MANAGED_REDIS_URL}
EFF_REGISTRY=${REGISTRY:-$MANAGED_REGISTRY}
EFF_DOCKER_HOST=${DOCKER_HOST:-$MANAGED_DOCKER_HOST}
manage_redis() { [[ $EFF_REDIS_URL == "$MANAGED_REDIS_URL" ]]; }
manage_registry() { [[ $EFF_REGISTRY == "$MANAGED_REGISTRY" ]]; }
manage_docker() { [[ $EFF_DOCKER_HOST == "$MANAGED_DOCKER_HOST" ]]; }

# --- helpers --------------------------------------------------------------------
now_ms() { local t=${EPOCHREALTIME/[.,]/}; echo $((t / 1000)); } # bash 5 clock, no forks
T0=$(now_ms)
secs_since() { local d=$(($(now_ms) - $1)); printf '%d.%d' $((d / 1000)) $((d % 1000 / 100)); }
log() { printf '[components %6ss] %s\n' "$(secs_since "$T0")" "$*" >&2; }
die() {
  log "ERROR: $*"
  exit 1
}
STEP_T0=
step() {
  STEP_T0=$(now_ms)
  log "$1 ..."
}
step_done() { log "$1 ($(secs_since "$STEP_T0")s)"; }
log_tail() {
  if [[ -f $1 ]]; then
    echo "---- last lines of $1 ----"
    tail -n "${2:-30}" "$1"
  fi >&2
}

# docker CLI against the daemon in use (never the newer client on PATH)
dk() { DOCKER_HOST=$EFF_DOCKER_HOST "$DOCKER_BIN" "$@"; }
docker_ok() { timeout 20 "$DOCKER_BIN" -H "$EFF_DOCKER_HOST" info >/dev/null 2>&1; }
# Our daemon owns docker0; it has been seen to vanish, after which builds fail
# with "could not find bridge docker0" until the daemon restarts.
docker_bridge_ok() {
  timeout 20 "$DOCKER_BIN" -H "$EFF_DOCKER_HOST" network inspect bridge >/dev/null 2>&1 || return 1
  ! manage_docker || [[ -e /sys/class/net/docker0 ]]
}
http_code() { curl --noproxy '*' -sS --max-time 5 -o /dev/null -w '%{http_code}' "$@" 2>/dev/null; }
cred() { cat "$AUTH_DIR/$1.cred" 2>/dev/null; }
# An endpoint of ours is right when it refuses anonymous calls and answers its own user.
endpoint_ok() { [[ $(http_code "http://$1/v2/") == 401 && $(http_code -u "$(cred "$2")" "http://$1/v2/") == 200 ]]; }
registry_ok() {
  if manage_registry; then endpoint_ok "$REGISTRY_ADDR" pull && endpoint_ok "$REGISTRY_PUSH_ADDR" push; else
    [[ $(http_code ${REGISTRY_PULL_AUTH:+-u "$REGISTRY_PULL_AUTH"} "http://$EFF_REGISTRY/v2/") == 200 ]]
  fi
}
mirror_ok() { [[ $(http_code "http://$MIRROR_ADDR/v2/") == 200 ]]; }
# Ours must also refuse a client without the password (one started before passwords does not).
redis_ok() {
  [[ $(timeout 5 redis-cli -u "$EFF_REDIS_URL" ping 2>/dev/null) == PONG ]] || return 1
  ! manage_redis || [[ $(timeout 5 redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>&1) == *NOAUTH* ]]
}
base_image_ok() {
  curl --noproxy '*' -fsS --max-time 10 -o /dev/null \
    -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    "http://$MIRROR_ADDR/v2/library/debian/manifests/bookworm" 2>/dev/null
}
# BuildKit builds (`devcontainer build --buildkit auto`): the buildx plugin where every user's
# docker CLI finds it (the builder runs the CLI with a HOME of its own), and the Dockerfile
# frontend the CLI's `# syntax=docker/dockerfile:1.4` makes the daemons pull from Docker Hub,
# i.e. from the mirror.
BUILDX_PLUGIN=/usr/local/lib/docker/cli-plugins/docker-buildx
buildx_ok() { HOME=/nonexistent DOCKER_CONFIG=/nonexistent "$DOCKER_BIN" buildx version >/dev/null 2>&1; }
frontend_image_ok() { bash "$ROOT/deploy/buildkit/frontend-image.sh" --check "$MIRROR" </dev/null 9>&-; }

# alive PID: running and not a zombie (PID 1 on these machines does not always
# reap orphans, so a killed daemon can linger as a zombie that `kill -0` accepts).
alive() {
  local st
  st=$(awk '{ print $3 }' 2>/dev/null </proc/"$1"/stat) || return 1
  [[ -n $st && $st != Z && $st != X ]]
}

# pid_of PIDFILE NAME: print the pid only if that process is alive AND its
# command line mentions NAME (a stale pidfile's pid may belong to anything now).
pid_of() {
  local pid cmd
  pid=$(cat "$1" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || return 1
  [[ $cmd == *"$2"* ]] || return 1
  echo "$pid"
}

# stop_pidfile PIDFILE NAME [GRACE_SECONDS]: SIGTERM, wait, SIGKILL; remove the pidfile.
stop_pidfile() {
  local pid i grace=${3:-15}
  if pid=$(pid_of "$1" "$2"); then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < grace * 5; i++)); do
      alive "$pid" || break
      sleep 0.2
    done
    if alive "$pid"; then
      log "$2 (pid $pid) ignored SIGTERM for ${grace}s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.5
    fi
  fi
  rm -f "$1"
}

# wait_for SECONDS PID-OR-EMPTY CHECK...: poll CHECK until it succeeds;
# fail early if process PID has exited.
wait_for() {
  local deadline=$(($(date +%s) + $1)) pid=$2
  shift 2
  until "$@"; do
    [[ -z $pid ]] || alive "$pid" || return 1
    (($(date +%s) < deadline)) || return 1
    sleep 0.3
  done
}

# Debian mirror for debootstrap, read at run time from the apt sources (the
# entry serving the plain `bookworm` suite). Never hard-code a host name here.
debian_mirror() {
  if [[ -n ${CODEBAY_DEBIAN_MIRROR:-} ]]; then
    echo "$CODEBAY_DEBIAN_MIRROR"
    return
  fi
  local f uri=
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f $f ]] || continue
    # deb822: paragraphs separated by blank lines; want Types ∋ deb, Suites ∋ bookworm.
    uri=$(awk 'BEGIN { RS = ""; FS = "\n" }
      {
        types = ""; suites = ""; uris = ""; enabled = "yes"
        for (i = 1; i <= NF; i++) {
          line = $i
          if (line ~ /^[ \t]*#/) continue
          if (match(line, /^[A-Za-z-]+:/)) {
            key = tolower(substr(line, 1, RLENGTH - 1)); val = substr(line, RLENGTH + 1)
            if (key == "types") types = " " val " "
            else if (key == "suites") suites = " " val " "
            else if (key == "uris") uris = val
            else if (key == "enabled") enabled = val
          }
        }
        gsub(/[ \t]+/, " ", types); gsub(/[ \t]+/, " ", suites)
        if (enabled ~ /no/ || types !~ / deb / || suites !~ / bookworm /) next
        split(uris, u, /[ \t]+/)
        for (j in u) if (u[j] ~ /^(https?|ftp|file):/) { print u[j]; exit }
      }' "$f")
    [[ -n $uri ]] && break
  done
  if [[ -z $uri ]]; then
    # one-line format: deb [options] URI bookworm components...
    uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
      sed -E 's/#.*//; s/\[[^]]*\]//' |
      awk '$1 == "deb" && $3 == "bookworm" && $2 ~ /^(https?|ftp|file):/ { print $2; exit }') || true
  fi
  [[ -n $uri ]] || die "no Debian bookworm mirror found in /etc/apt/sources.list{,.d/*.sources}; set CODEBAY_DEBIAN_MIRROR"
  echo "$uri"
}

# --- up: steps ----------------------------------------------------------------------
up_apt() {
  step "apt packages"
  local p missing=()
  for p in "${APT_PACKAGES[@]}"; do
    [[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) == "install ok installed" ]] || missing+=("$p")
  done
  if ((${#missing[@]})); then
    log "installing: ${missing[*]}"
    # Keep package maintainer scripts from starting the system docker/redis
    # services: the system dockerd would take docker0 from ours.
    local policy=/usr/sbin/policy-rc.d created_policy=
    if [[ ! -e $policy ]]; then
      printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && created_policy=1
    fi
    local rc=0
    {
      export DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=l
      apt-get update -q &&
        apt-get install -y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
          "${missing[@]}"
    } </dev/null >&2 || rc=$?
    [[ -z $created_policy ]] || rm -f "$policy"
    ((rc == 0)) || die "apt-get failed installing: ${missing[*]}"
  fi
  step_done "apt packages: ok${missing[*]:+ (installed ${missing[*]})}"
}

up_redis() {
  step "redis"
  if ! manage_redis; then
    redis_ok || die "REDIS_URL is set (to an external Redis) but it does not answer PING"
    step_done "redis: using external REDIS_URL"
    return
  fi
  if redis_ok; then
    step_done "redis: already up at redis://127.0.0.1:$REDIS_PORT"
    return
  fi
  mkdir -p "$STATE/redis" "$RUN_DIR" "$LOG_DIR"
  # Ours but not answering with the password (started before passwords, or wedged): replace it.
  stop_pidfile "$RUN_DIR/redis.pid" redis-server 15
  local cfg=$STATE/redis.conf
  (
    umask 077
    cat >"$cfg" <<EOF
# generated by deploy/local/components.sh (holds the password: mode 0600)
bind 127.0.0.1
port $REDIS_PORT
requirepass $REDIS_PASSWORD
save ""
appendonly yes
dir $STATE/redis
maxmemory-policy noeviction
daemonize yes
pidfile $RUN_DIR/redis.pid
logfile $LOG_DIR/redis.log
EOF
  )
  redis-server "$cfg" </dev/null 9>&- ||
    {
      log_tail "$LOG_DIR/redis.log"
      die "redis-server failed to start"
    }
  wait_for 30 "" redis_ok || {
    log_tail "$LOG_DIR/redis.log"
    die "redis did not answer PING on 127.0.0.1:$REDIS_PORT within 30s"
  }
  step_done "redis: started at redis://127.0.0.1:$REDIS_PORT (password in $REDIS_PASSWORD_FILE)"
}

# start_registry NAME ADDR STORAGE readonly|readwrite HTPASSWD CHECK...: one docker-registry process of ours.
start_registry() {
  local name=$1 addr=$2 storage=$3 mode=$4 htpasswd=$5
  shift 5
  local pidfile=$RUN_DIR/$name.pid cfg=$STATE/$name.yml
  mkdir -p "$storage" "$RUN_DIR" "$LOG_DIR"
  # Still running but not right (wedged, half-started, or from before authentication): replace it.
  stop_pidfile "$pidfile" docker-registry 10
  {
    cat <<EOF
# generated by deploy/local/components.sh
version: 0.1
log:
  level: info
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $storage
  delete:
    enabled: true
EOF
    if [[ $mode == readonly ]]; then printf '  maintenance:\n    readonly:\n      enabled: true\n'; fi
    if [[ -n $htpasswd ]]; then printf 'auth:\n  htpasswd:\n    realm: codebay\n    path: %s\n' "$htpasswd"; fi
    printf 'http:\n  addr: %s\n' "$addr"
  } >"$cfg"
  # setsid: own session, survives the caller's terminal/process group (-w keeps
  # $! alive exactly as long as the program, even if setsid had to fork); the
  # inner shell writes its own pid, then becomes the registry via exec.
  # shellcheck disable=SC2016 # $$, $1, $2 are for the inner shell
  setsid -w bash -c 'echo $$ >"$1"; exec docker-registry serve "$2"' _ "$pidfile" "$cfg" \
    </dev/null >>"$LOG_DIR/$name.log" 2>&1 9>&- &
  wait_for 30 $! "$@" || {
    log_tail "$LOG_DIR/$name.log"
    die "$name did not answer on http://$addr/v2/ within 30s"
  }
}

# The registry users (user:password, mode 0600) and their htpasswd files (bcrypt).
registry_users() {
  mkdir -p "$AUTH_DIR" && chmod 700 "$AUTH_DIR"
  local role c
  for role in pull push; do
    if [[ ! -s $AUTH_DIR/$role.cred ]]; then
      (umask 077 && printf 'codebay-%s:%s' "$role" "$(head -c 24 /dev/urandom | base64 | tr -d '/+=\n')" >"$AUTH_DIR/$role.cred")
    fi
    if [[ ! -s $AUTH_DIR/$role.htpasswd || $AUTH_DIR/$role.cred -nt $AUTH_DIR/$role.htpasswd ]]; then
      c=$(cred "$role")
      (umask 077 && htpasswd -Bbn "${c%%:*}" "${c#*:}" >"$AUTH_DIR/$role.htpasswd.tmp") || die "htpasswd failed"
      mv -f "$AUTH_DIR/$role.htpasswd.tmp" "$AUTH_DIR/$role.htpasswd"
    fi
  done
}

up_registry() {
  step "registry"
  # One registry served everything before the pull/push split and the mirror: it goes.
  stop_pidfile "$RUN_DIR/registry.pid" docker-registry 10
  if ! manage_registry; then
    registry_ok || die "REGISTRY=$EFF_REGISTRY is set but http://$EFF_REGISTRY/v2/ does not answer (with REGISTRY_PULL_AUTH)"
    step_done "registry: using external $EFF_REGISTRY"
    return
  fi
  registry_users
  local how=()
  if endpoint_ok "$REGISTRY_ADDR" pull; then how+=("pull already up"); else
    start_registry registry-pull "$REGISTRY_ADDR" "$STATE/registry" readonly "$AUTH_DIR/pull.htpasswd" endpoint_ok "$REGISTRY_ADDR" pull
    how+=("pull started")
  fi
  if endpoint_ok "$REGISTRY_PUSH_ADDR" push; then how+=("push already up"); else
    start_registry registry-push "$REGISTRY_PUSH_ADDR" "$STATE/registry" readwrite "$AUTH_DIR/push.htpasswd" endpoint_ok "$REGISTRY_PUSH_ADDR" push
    how+=("push started")
  fi
  step_done "registry: $MANAGED_REGISTRY (read-only, pull user) and $MANAGED_REGISTRY_PUSH (push user): ${how[*]} (storage $STATE/registry, users in $AUTH_DIR)"
}

up_mirror() {
  step "base-image mirror"
  if mirror_ok; then
    step_done "mirror: already up at $MIRROR"
    return
  fi
  start_registry mirror "$MIRROR_ADDR" "$STATE/mirror" readwrite "" mirror_ok
  step_done "mirror: started at $MIRROR (storage $STATE/mirror)"
}

# The daemons' registry flags: the base-image mirror is their Docker Hub mirror.
registry_args() {
  echo "--registry-mirror=http://$MIRROR"
  # localhost/127.0.0.0/8 registries are plain HTTP by default; others need this.
  manage_registry || echo "--insecure-registry=$EFF_REGISTRY"
  # Container root is an unprivileged host user (the `dockremap` range of /etc/subuid).
  echo "--userns-remap=default"
}

# Each daemon of ours runs in a cgroup of its own (cgroup v2 path codebay-<NAME>): its own
# connections (ADD <url>, FROM of a registry, pulls, pushes) are told apart from everyone
# else's by the host's iptables (CODEBAY-DAEMON-OUT, see up_isolation).
CGROUP2_ROOT=$(findmnt -t cgroup2 -n -o TARGET 2>/dev/null | head -n 1 || true)
daemon_cgroup() { echo "codebay-$1"; }
# in_daemon_cgroup NAME PIDFILE: that daemon runs in its cgroup.
in_daemon_cgroup() {
  local pid
  pid=$(pid_of "$2" dockerd) || return 1
  [[ -n $CGROUP2_ROOT ]] || return 0
  grep -qx "0::/$(daemon_cgroup "$1")" "/proc/$pid/cgroup"
}

# launch_dockerd NAME DATA_ROOT EXEC_ROOT HOST PIDFILE CHECK [FLAGS...]: starts one daemon of
# ours in its own session and cgroup (log $LOG_DIR/NAME.log) and waits until CHECK says it answers.
launch_dockerd() {
  local name=$1 data_root=$2 exec_root=$3 host=$4 pidfile=$5 check=$6
  shift 6
  local cg=
  if [[ -n $CGROUP2_ROOT ]]; then
    cg=$CGROUP2_ROOT/$(daemon_cgroup "$name")
    mkdir -p "$cg"
  fi
  mkdir -p "$exec_root" "$data_root" "$LOG_DIR"
  # Stale state from a killed daemon: dockerd refuses to start if its pidfile
  # names a live process (pids get reused), and its managed containerd is
  # assumed running if containerd.pid names a live process.
  pid_of "$pidfile" dockerd >/dev/null || rm -f "$pidfile"
  local cpid=$exec_root/containerd/containerd.pid
  pid_of "$cpid" containerd >/dev/null || rm -f "$cpid"
  echo "---- $(date -Is) starting $name" >>"$LOG_DIR/$name.log"
  # System dirs first: dockerd looks up containerd, runc, iptables, docker-proxy on PATH.
  PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH \
    NO_PROXY="localhost,127.0.0.1${NO_PROXY:+,$NO_PROXY}" no_proxy="localhost,127.0.0.1${no_proxy:+,$no_proxy}" \
    setsid -w bash -c 'if [[ -n $1 ]]; then echo $$ >"$1/cgroup.procs"; fi; shift; exec "$@"' _ "$cg" dockerd \
    --data-root "$data_root" \
    --exec-root "$exec_root" \
    -H "$host" \
    --pidfile "$pidfile" \
    "$@" \
    </dev/null >>"$LOG_DIR/$name.log" 2>&1 9>&- &
  wait_for 90 $! "$check" || {
    log_tail "$LOG_DIR/$name.log" 40
    die "$name did not answer on $host within 90s (log: $LOG_DIR/$name.log)"
  }
}

# The first daemon's flags (builds on its default bridge, instances on networks of their own
# from a pool of /26s); a daemon started with other flags is restarted with these.
mapfile -t DOCKER_FLAGS < <(registry_args)
# No userland proxy: published ports go through iptables DNAT, so no process of the daemon's
# ever opens a connection to a container (CODEBAY-DAEMON-OUT refuses those). Live restore:
# containers (instances) outlive a daemon that is killed, upgraded or restarted, and their
# published ports keep answering meanwhile.
DOCKER_FLAGS+=(--icc=false --userland-proxy=false --default-address-pool base=10.213.0.0/16,size=26 --live-restore)

start_dockerd() {
  launch_dockerd dockerd "$STATE/docker" "$DOCKER_RUN/exec" "$MANAGED_DOCKER_HOST" "$DOCKER_PIDFILE" docker_ok "${DOCKER_FLAGS[@]}"
  echo "${DOCKER_FLAGS[*]}" >"$STATE/docker.flags"
}

up_docker() {
  step "dockerd"
  if ! manage_docker; then
    docker_ok || die "DOCKER_HOST=$EFF_DOCKER_HOST is set but \`docker info\` fails there"
    step_done "dockerd: using external $EFF_DOCKER_HOST"
    return
  fi
  if docker_ok; then
    if manage_docker && { [[ $(cat "$STATE/docker.flags" 2>/dev/null) != "${DOCKER_FLAGS[*]}" ]] || ! in_daemon_cgroup dockerd "$DOCKER_PIDFILE"; }; then
      log "dockerd runs with other flags or outside its cgroup: restarting it"
      stop_pidfile "$DOCKER_PIDFILE" dockerd 30
    elif docker_bridge_ok; then
      step_done "dockerd: already up at $EFF_DOCKER_HOST"
      return
    else
      log "dockerd answers but its bridge network/docker0 is gone: restarting it"
      stop_pidfile "$DOCKER_PIDFILE" dockerd 30
    fi
  elif pid_of "$DOCKER_PIDFILE" dockerd >/dev/null; then
    # Alive but not answering: maybe still starting (e.g. a concurrent run). Give it a moment.
    if ! wait_for 20 "" docker_ok; then
      log "dockerd is running but not answering: restarting it"
      stop_pidfile "$DOCKER_PIDFILE" dockerd 30
    fi
  fi
  docker_ok || start_dockerd
  docker_bridge_ok || {
    log_tail "$LOG_DIR/dockerd.log" 40
    die "dockerd is up but has no usable default bridge (docker network inspect bridge / /sys/class/net/docker0)"
  }
  step_done "dockerd: up at $EFF_DOCKER_HOST (storage driver $(dk info -f '{{.Driver}}' 2>/dev/null))"
}

docker2_ok() { timeout 20 "$DOCKER_BIN" -H "$DOCKER_HOST_2" info >/dev/null 2>&1; }

# The second daemon's flags; a daemon started with other flags is restarted with these.
mapfile -t DOCKER2_FLAGS < <(registry_args)
DOCKER2_FLAGS=(--bridge="$DOCKER2_BRIDGE" --iptables=false "${DOCKER2_FLAGS[@]}" --live-restore)

up_docker2() {
  [[ $WANT_DOCKER2 == 1 ]] || return 0
  step "dockerd-2"
  local flags_file=$STATE/docker-2.flags
  if docker2_ok && [[ $(cat "$flags_file" 2>/dev/null) == "${DOCKER2_FLAGS[*]}" ]] && in_daemon_cgroup dockerd-2 "$DOCKER2_PIDFILE"; then
    step_done "dockerd-2: already up at $DOCKER_HOST_2"
    return
  fi
  docker2_ok && log "dockerd-2 runs with other flags: restarting it"
  stop_pidfile "$DOCKER2_PIDFILE" dockerd 30
  if ! ip link show "$DOCKER2_BRIDGE" >/dev/null 2>&1; then
    ip link add "$DOCKER2_BRIDGE" type bridge && ip addr add "$DOCKER2_BRIDGE_CIDR" dev "$DOCKER2_BRIDGE" ||
      die "cannot create the bridge $DOCKER2_BRIDGE for dockerd-2"
  fi
  ip link set "$DOCKER2_BRIDGE" up
  launch_dockerd dockerd-2 "$STATE/docker-2" "$DOCKER2_RUN/exec" "$DOCKER_HOST_2" "$DOCKER2_PIDFILE" docker2_ok "${DOCKER2_FLAGS[@]}"
  echo "${DOCKER2_FLAGS[*]}" >"$flags_file"
  step_done "dockerd-2: up at $DOCKER_HOST_2"
}

# Remove a debootstrap work dir, first unmounting anything an interrupted run
# left mounted inside it (debootstrap mounts proc/sys in the target).
remove_rootfs() {
  local dir=$1 m
  [[ -e $dir ]] || return 0
  # deepest mounts first
  while read -r m; do
    umount -l "$m" 2>/dev/null || true
  done < <(awk -v d="$dir" '$2 == d || index($2, d "/") == 1 { print $2 }' /proc/mounts | sort -r)
  rm -rf --one-file-system "$dir"
}

build_base_tar() {
  local mirror work=$CACHE/base/work-debian-bookworm
  mirror=$(debian_mirror)
  mkdir -p "$CACHE/base"
  remove_rootfs "$work" # left over from an interrupted run
  rm -f "$BASE_TAR.partial"
  log "debootstrap --variant=minbase bookworm from $mirror (~35-55 s)"
  local keyring=()
  [[ -f /usr/share/keyrings/debian-archive-keyring.gpg ]] &&
    keyring=(--keyring=/usr/share/keyrings/debian-archive-keyring.gpg)
  if ! debootstrap --variant=minbase "${keyring[@]}" bookworm "$work/rootfs" "$mirror" \
    </dev/null >"$LOG_DIR/debootstrap.log" 2>&1; then
    log_tail "$LOG_DIR/debootstrap.log"
    log_tail "$work/rootfs/debootstrap/debootstrap.log"
    remove_rootfs "$work"
    die "debootstrap failed (log: $LOG_DIR/debootstrap.log)"
  fi
  # Docker bind-mounts these at run time; don't bake the host's copies in.
  : >"$work/rootfs/etc/resolv.conf"
  echo localhost >"$work/rootfs/etc/hostname"
  rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb "$work/rootfs/var/lib/apt/lists/"* 2>/dev/null || true
  tar --numeric-owner -C "$work/rootfs" -cf "$BASE_TAR.partial" .
  mv -f "$BASE_TAR.partial" "$BASE_TAR" # atomic: never a half-written cache file
  remove_rootfs "$work"
}

up_base_image() {
  step "base image debian:bookworm"
  local ref=$MIRROR/library/debian:bookworm how
  if base_image_ok; then
    how="already in $MIRROR"
  else
    if [[ -s $BASE_TAR ]]; then
      how="imported from cached $BASE_TAR"
    else
      build_base_tar
      how="built with debootstrap, cached at $BASE_TAR"
    fi
    log "docker import + push $ref"
    dk import \
      --change 'CMD ["bash"]' \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      - "$ref" <"$BASE_TAR" >/dev/null || die "docker import of $BASE_TAR failed"
    dk push "$ref" >/dev/null || die "docker push $ref failed"
    base_image_ok || die "pushed $ref but the registry does not serve its manifest"
  fi
  # Samples use the public name; it must resolve through the registry mirror.
  local pulled="docker pull debian:bookworm ok"
  if ! dk pull -q debian:bookworm >/dev/null 2>"$LOG_DIR/pull-debian.log"; then
    log_tail "$LOG_DIR/pull-debian.log" 10
    if manage_docker; then
      die "\`docker pull debian:bookworm\` does not resolve through the mirror http://$MIRROR"
    fi
    log "WARNING: external daemon $EFF_DOCKER_HOST cannot pull debian:bookworm (is its registry mirror http://$MIRROR?)"
    pulled="docker pull debian:bookworm FAILED on the external daemon"
  fi
  step_done "base image: $how; $pulled"
}

up_buildkit() {
  step "BuildKit: buildx plugin, Dockerfile frontend in the mirror"
  local out
  # Built once from Go modules (minutes, cold), cached under $CACHE; a warm run builds nothing.
  out=$(bash "$ROOT/deploy/buildkit/install.sh" </dev/null 9>&-) || die "deploy/buildkit/install.sh failed"
  buildx_ok || die "\`docker buildx version\` fails after deploy/buildkit/install.sh installed $BUILDX_PLUGIN"
  DOCKER_HOST=$EFF_DOCKER_HOST DOCKER=$DOCKER_BIN bash "$ROOT/deploy/buildkit/frontend-image.sh" "$MIRROR" </dev/null 9>&- ||
    die "deploy/buildkit/frontend-image.sh $MIRROR failed"
  # What the daemons resolve under BuildKit; also leaves the image on the daemon for the suites.
  local tag pulled="docker pull docker/dockerfile:1.4 and :1 ok"
  for tag in 1.4 1; do
    if ! dk pull -q "docker/dockerfile:$tag" >/dev/null 2>"$LOG_DIR/pull-dockerfile.log"; then
      log_tail "$LOG_DIR/pull-dockerfile.log" 10
      manage_docker || {
        log "WARNING: external daemon $EFF_DOCKER_HOST cannot pull docker/dockerfile:$tag (is its registry mirror http://$MIRROR?)"
        pulled="docker pull docker/dockerfile:$tag FAILED on the external daemon"
        break
      }
      die "\`docker pull docker/dockerfile:$tag\` does not resolve through the mirror http://$MIRROR"
    fi
  done
  step_done "BuildKit: $(HOME=/nonexistent "$DOCKER_BIN" buildx version 2>/dev/null | awk '{ print "buildx", $2 }') at $BUILDX_PLUGIN; frontend $(sed -n 's/^DOCKERFILE_FRONTEND_VERSION=//p' <<<"$out") in $MIRROR; $pulled"
}

EDITOR_BUNDLE=
EDITOR_VERSIONS=${CODEBAY_EDITOR_VERSIONS:-4.139.1 4.100.3}
up_editor_bundle() {
  local script=$ROOT/packages/editor/scripts/build-bundle.sh out version built=()
  step "editor bundles ($EDITOR_VERSIONS)"
  if [[ ! -f $script ]]; then
    step_done "editor bundle: skipped ($script not present)"
    return
  fi
  # One bundle per release (the script caches each under $CACHE/editor and prints its path
  # on stdout); the provisioner offers every bundle it finds there. The first is the default.
  for version in $EDITOR_VERSIONS; do
    out=$(CODE_SERVER_VERSION=$version bash "$script" </dev/null 9>&-) || die "$script failed for code-server $version"
    out=$(printf '%s\n' "$out" | awk 'NF { last = $0 } END { print last }')
    [[ -n $out && -e $out ]] || die "$script printed no bundle path for code-server $version"
    [[ -n $EDITOR_BUNDLE ]] || EDITOR_BUNDLE=$out
    built+=("$out")
  done
  step_done "editor bundles: ${built[*]}"
}

# Host isolation for containers of our daemons (builds on docker0 and codebay-br2, instances
# on their own br-* networks): nothing they send may reach this machine itself (Redis, the
# registries, the gateway, metrics, the Docker socket's TCP forms, anything on any of its
# addresses) except replies to connections the host opened (the gateway's proxying);
# nothing reaches link-local addresses (cloud metadata). Ordinary outbound traffic (package
# installs) is untouched. REJECT, not DROP: a refused attempt fails at once.
ISOLATION_IFACES=(docker0 "$DOCKER2_BRIDGE" br-+)
# The daemons themselves fetch too (`ADD <url>`, `FROM` of a registry, `--cache-from`, pulls)
# from the host's network, where the bridge rules do not apply: CODEBAY-DAEMON-OUT lets their
# connections reach the registries and the mirror on loopback and the outside world, and
# refuses the rest of this machine, every container, and link-local addresses.
# The mirror (5000) and registry ports (32000-32009: codebay's pull and push endpoints, and
# room for a registry a test runs of its own).
DAEMON_PORTS=5000,32000:32009
isolation_ok() {
  iptables -C INPUT -j CODEBAY-INPUT 2>/dev/null && iptables -C DOCKER-USER -j CODEBAY-FORWARD 2>/dev/null &&
    [[ $(iptables -S CODEBAY-INPUT 2>/dev/null | grep -c tcp-reset) -ge ${#ISOLATION_IFACES[@]} ]] &&
    { [[ -z $CGROUP2_ROOT ]] || iptables -S OUTPUT 2>/dev/null | grep -q CODEBAY-DAEMON-OUT; }
}
# reject IPTABLES CHAIN MATCH...: appends a refusal for MATCH — a TCP reset for TCP (immediate
# and unambiguous: ICMP errors are rate-limited by the kernel), port-unreachable for the rest.
reject() {
  local ipt=$1 chain=$2
  shift 2
  $ipt -A "$chain" "$@" -p tcp -j REJECT --reject-with tcp-reset
  $ipt -A "$chain" "$@" -j REJECT
}

# daemon_egress_rules IPTABLES LINK_LOCAL: the CODEBAY-DAEMON-OUT chain for one address family.
daemon_egress_rules() {
  local ipt=$1 link_local=$2 d i
  $ipt -N CODEBAY-DAEMON-OUT 2>/dev/null || $ipt -F CODEBAY-DAEMON-OUT
  $ipt -A CODEBAY-DAEMON-OUT -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN
  $ipt -A CODEBAY-DAEMON-OUT -o lo -p tcp -m multiport --dports "$DAEMON_PORTS" -j RETURN
  reject "$ipt" CODEBAY-DAEMON-OUT -m addrtype --dst-type LOCAL
  reject "$ipt" CODEBAY-DAEMON-OUT -d "$link_local"
  for i in "${ISOLATION_IFACES[@]}"; do reject "$ipt" CODEBAY-DAEMON-OUT -o "$i"; done
  for d in dockerd dockerd-2; do
    # The rule names the cgroup by path, resolved when it is inserted: it must exist by then.
    mkdir -p "$CGROUP2_ROOT/$(daemon_cgroup "$d")"
    $ipt -C OUTPUT -m cgroup --path "$(daemon_cgroup "$d")" -j CODEBAY-DAEMON-OUT 2>/dev/null ||
      $ipt -I OUTPUT 1 -m cgroup --path "$(daemon_cgroup "$d")" -j CODEBAY-DAEMON-OUT
  done
}
up_isolation() {
  manage_docker || return 0
  step "host isolation rules"
  iptables -N CODEBAY-INPUT 2>/dev/null || iptables -F CODEBAY-INPUT
  iptables -A CODEBAY-INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN
  local i
  for i in "${ISOLATION_IFACES[@]}"; do reject iptables CODEBAY-INPUT -i "$i"; done
  iptables -C INPUT -j CODEBAY-INPUT 2>/dev/null || iptables -I INPUT 1 -j CODEBAY-INPUT
  # DOCKER-USER: dockerd makes it and never flushes it; FORWARD jumps there first.
  iptables -N CODEBAY-FORWARD 2>/dev/null || iptables -F CODEBAY-FORWARD
  for i in "${ISOLATION_IFACES[@]}"; do reject iptables CODEBAY-FORWARD -i "$i" -d 169.254.0.0/16; done
  # codebay-br2's daemon runs without iptables: no isolation of its own between it and the others.
  for i in docker0 br-+; do
    reject iptables CODEBAY-FORWARD -i "$DOCKER2_BRIDGE" -o "$i"
    reject iptables CODEBAY-FORWARD -i "$i" -o "$DOCKER2_BRIDGE"
  done
  iptables -N DOCKER-USER 2>/dev/null || true
  iptables -C DOCKER-USER -j CODEBAY-FORWARD 2>/dev/null || iptables -I DOCKER-USER 1 -j CODEBAY-FORWARD
  if [[ -n $CGROUP2_ROOT ]]; then
    daemon_egress_rules iptables 169.254.0.0/16
    if ip6tables -L OUTPUT -n >/dev/null 2>&1; then daemon_egress_rules ip6tables fe80::/10; fi
  else
    log "WARNING: no cgroup v2 hierarchy: the daemons' own fetches (ADD <url>, FROM) are not confined (docs/security.md)"
  fi
  isolation_ok || die "the host isolation rules did not take (iptables -S CODEBAY-INPUT)"
  step_done "host isolation rules: containers and the daemons' own fetches cannot open connections to this machine, other containers or link-local addresses"
}
down_isolation() {
  local ipt d
  for ipt in iptables ip6tables; do
    for d in dockerd dockerd-2; do $ipt -D OUTPUT -m cgroup --path "$(daemon_cgroup "$d")" -j CODEBAY-DAEMON-OUT 2>/dev/null || true; done
    $ipt -F CODEBAY-DAEMON-OUT 2>/dev/null && $ipt -X CODEBAY-DAEMON-OUT 2>/dev/null || true
  done
  iptables -D INPUT -j CODEBAY-INPUT 2>/dev/null || true
  iptables -D DOCKER-USER -j CODEBAY-FORWARD 2>/dev/null || true
  iptables -F CODEBAY-INPUT 2>/dev/null && iptables -X CODEBAY-INPUT 2>/dev/null || true
  iptables -F CODEBAY-FORWARD 2>/dev/null && iptables -X CODEBAY-FORWARD 2>/dev/null || true
}

# KEY=VALUE lines for the services: where each component is and its credentials.
env_lines() {
  echo "REDIS_URL=$EFF_REDIS_URL"
  echo "DOCKER_HOST=$EFF_DOCKER_HOST"
  echo "REGISTRY=$EFF_REGISTRY"
  if manage_registry; then
    echo "REGISTRY_PUSH=$MANAGED_REGISTRY_PUSH"
    echo "REGISTRY_PULL_AUTH=$(cred pull)"
    echo "REGISTRY_PUSH_AUTH=$(cred push)"
  fi
  echo "CODEBAY_MIRROR=$MIRROR"
}

write_env() {
  local f=$STATE/local.env
  mkdir -p "$STATE"
  {
    env_lines
    [[ -z $EDITOR_BUNDLE ]] || echo "CODEBAY_EDITOR_BUNDLE=$EDITOR_BUNDLE"
    # Also when this run did not ask for it but it is up (an `up` without the flag must not hide it).
    if [[ $WANT_DOCKER2 == 1 ]] || docker2_ok; then echo "DOCKER_HOST_2=$DOCKER_HOST_2"; fi
  } >"$f.tmp"
  chmod 600 "$f.tmp" # it holds the Redis password and the registry users
  mv -f "$f.tmp" "$f"
  log "wrote $f"
}

cmd_up() {
  [[ $(id -u) == 0 ]] || die "must run as root"
  mkdir -p "$STATE" "$LOG_DIR" "$RUN_DIR"
  # One `up` at a time (parallel CI jobs on one machine would race otherwise).
  # Daemons started below get `9>&-` so they do not inherit (and keep) the lock.
  exec 9>"$STATE/.components.lock"
  flock -w 900 9 || die "another components.sh up holds $STATE/.components.lock"
  up_apt
  up_redis
  up_registry
  up_mirror
  up_docker
  up_docker2
  up_isolation
  up_base_image
  up_buildkit
  up_editor_bundle
  write_env
  log "all components up"
}

cmd_env() {
  local line
  while IFS= read -r line; do printf 'export %s=%q\n' "${line%%=*}" "${line#*=}"; done < <(env_lines)
  local bundle
  bundle=$(sed -n 's/^CODEBAY_EDITOR_BUNDLE=//p' "$STATE/local.env" 2>/dev/null || true)
  [[ -z $bundle ]] || printf 'export CODEBAY_EDITOR_BUNDLE=%q\n' "$bundle"
  if [[ $WANT_DOCKER2 == 1 ]] || docker2_ok; then printf 'export DOCKER_HOST_2=%q\n' "$DOCKER_HOST_2"; fi
}

cmd_status() {
  local bad=0 line
  st() { # name check detail
    if "$2"; then line=up; else
      line=down
      bad=1
    fi
    printf '%-12s %-5s %s\n' "$1" "$line" "$3"
  }
  st redis redis_ok "redis://127.0.0.1:$REDIS_PORT"
  st registry registry_ok "$EFF_REGISTRY${MANAGED_REGISTRY_PUSH:+ (push $MANAGED_REGISTRY_PUSH)}"
  st mirror mirror_ok "$MIRROR"
  st dockerd docker_ok "$EFF_DOCKER_HOST"
  st isolation isolation_ok "iptables CODEBAY-INPUT, CODEBAY-FORWARD, CODEBAY-DAEMON-OUT"
  st base-image base_image_ok "$MIRROR/library/debian:bookworm"
  st buildx buildx_ok "$BUILDX_PLUGIN"
  st dockerfile frontend_image_ok "$MIRROR/docker/dockerfile:1.4 and :1 (BuildKit's Dockerfile frontend)"
  [[ $WANT_DOCKER2 != 1 ]] || st dockerd-2 docker2_ok "$DOCKER_HOST_2"
  return $bad
}

cmd_down() {
  # Live restore keeps containers running without their daemon; `down` stops everything, so
  # it stops them first: none may run without the isolation rules down_isolation removes.
  local host ids
  for host in "$DOCKER_SOCK" "$DOCKER2_RUN/docker.sock"; do
    if [[ -S $host ]] && ids=$(timeout 20 "$DOCKER_BIN" -H "unix://$host" ps -q 2>/dev/null) && [[ -n $ids ]]; then
      log "stopping $(wc -w <<<"$ids") container(s) of unix://$host"
      # shellcheck disable=SC2086 # one id per word
      timeout 120 "$DOCKER_BIN" -H "unix://$host" stop -t 10 $ids >/dev/null || log "some containers of unix://$host did not stop"
    fi
  done
  # Only what we started: our pidfiles, and only if the pid still is that program.
  stop_pidfile "$DOCKER_PIDFILE" dockerd 30
  stop_pidfile "$DOCKER2_PIDFILE" dockerd 30
  # dockerd normally stops its containerd; after a SIGKILL it may linger.
  stop_pidfile "$DOCKER_RUN/exec/containerd/containerd.pid" containerd 10
  stop_pidfile "$DOCKER2_RUN/exec/containerd/containerd.pid" containerd 10
  stop_pidfile "$RUN_DIR/registry.pid" docker-registry 10
  stop_pidfile "$RUN_DIR/registry-pull.pid" docker-registry 10
  stop_pidfile "$RUN_DIR/registry-push.pid" docker-registry 10
  stop_pidfile "$RUN_DIR/mirror.pid" docker-registry 10
  stop_pidfile "$RUN_DIR/redis.pid" redis-server 15
  down_isolation
  log "stopped"
}

case ${1:-} in
  up) cmd_up ;;
  env) cmd_env ;;
  status) cmd_status ;;
  down) cmd_down ;;
  *)
    echo "usage: $0 up|env|status|down" >&2
    exit 2
    ;;
esac
