# Sourced (not run) by the scripts that build a Go program from the Go module proxy into
# codebay's cache (deploy/compose/install.sh, deploy/buildkit/install.sh): one build at a time
# per artefact (a lock), the module's own Go or the toolchain it names, and an atomic rename so
# that the artefact's folder appears complete or not at all.
#
#   go_build_init PREFIX          CACHE (CODEBAY_CACHE, else /var/cache/codebay, else for a user
#                                 who cannot write there ~/.cache/codebay), GO, the Go environment;
#                                 PREFIX starts every log line
#   go_build_lock NAME DEST TEST  returns 0 with the lock held if TEST (a command) still fails
#                                 once it holds $CACHE/.NAME-build.lock; 1 if another run built it
#   go_build_source MODULE VER    sets GO_BUILD_SRC (the module's read-only source, its go.sum)
#                                 and, if the module needs a newer Go, GOTOOLCHAIN
#   go_build_tmp DEST             sets GO_BUILD_TMP: an empty folder beside DEST (removed on exit)
#   go_build_commit DEST          renames GO_BUILD_TMP to DEST
#
# The Go module and build caches live under $CACHE/go (shared with test/k8s/build.sh). Builds
# run with -mod=readonly, CGO off, GOTOOLCHAIN=local unless the module asks for more.
# shellcheck shell=bash

go_build_log() { echo "$GO_BUILD_PREFIX: $*" >&2; }

go_build_init() {
  GO_BUILD_PREFIX=$1
  CACHE=${CODEBAY_CACHE:-/var/cache/codebay}
  if [[ -z ${CODEBAY_CACHE:-} && $(id -u) != 0 ]] && ! { mkdir -p "$CACHE" && [[ -w $CACHE ]]; } 2>/dev/null; then
    CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/codebay
  fi
  GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
  export GOPATH="$CACHE/go" GOMODCACHE="$CACHE/go/pkg/mod" GOCACHE="$CACHE/go/cache" \
    CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false" GOTOOLCHAIN=local
}

# go_build_lock NAME TEST...: one build of NAME at a time (two concurrent runs must not build
# twice). The lock (fd 9) is held until the script exits.
go_build_lock() {
  local name=$1
  shift
  mkdir -p "$CACHE"
  exec 9>"$CACHE/.$name-build.lock"
  if ! flock -n 9; then
    go_build_log "another build of $name is running; waiting for it"
    flock 9
  fi
  ! "$@"
}

go_build_source() {
  local module=$1 version=$2 gomod need have
  [[ -x $GO ]] || {
    go_build_log "no go toolchain ($GO): install Go >= 1.21 (e.g. /usr/local/go from go.dev) or set GO"
    exit 1
  }
  # (`go mod download` fetches go.mod even when it then refuses the local Go: that error is expected.)
  gomod=$("$GO" mod download -json "$module@$version" 2>/dev/null | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p' || true)
  [[ -f $gomod ]] || {
    go_build_log "cannot download $module@$version's go.mod (Go module proxy: $("$GO" env GOPROXY))"
    exit 1
  }
  # The module says which Go it needs; a newer toolchain comes from the module proxy.
  need=$(awk '$1 == "go" { print $2; exit }' "$gomod")
  have=$("$GO" env GOVERSION)
  have=${have#go}
  if [[ -n $need && $(printf '%s\n%s\n' "$need" "$have" | sort -V | head -n 1) != "$need" ]]; then
    go_build_log "$module@$version needs go $need (local go $have): using toolchain go$need"
    export GOTOOLCHAIN=go$need
  fi
  # Built as the main module, as released (go.mod exclude/replace directives, which
  # `go install pkg@version` refuses): from the module cache's read-only copy, with its go.sum.
  GO_BUILD_SRC=$("$GO" mod download -json "$module@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [[ -n $GO_BUILD_SRC && -d $GO_BUILD_SRC ]] || {
    go_build_log "no $module@$version source in the module cache ($GO_BUILD_SRC)"
    exit 1
  }
}

go_build_tmp() {
  local dest=$1
  GO_BUILD_TMP=$(mktemp -d "$(dirname "$dest")/.$(basename "$dest").XXXXXX")
  # shellcheck disable=SC2064 # the folder is known now
  trap "rm -rf '$GO_BUILD_TMP'" EXIT
  chmod 755 "$GO_BUILD_TMP"
}

# Atomic: the folder appears complete or not at all (rename(2) on one filesystem).
go_build_commit() {
  local dest=$1
  rm -rf "$dest"
  mv -T "$GO_BUILD_TMP" "$dest"
  trap - EXIT
}
