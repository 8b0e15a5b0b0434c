#!/bin/sh
# The registry image's entrypoint for docker-compose.yml: a registry configured from the
# environment alone, with at most one user.
#   REGISTRY_USER_AUTH  user:password: hashed with bcrypt (htpasswd -B) into a file only this
#                       container reads; without it the registry is anonymous.
# Serves a minimal configuration (filesystem storage at /var/lib/registry-data, HTTP on :5000,
# no auth) that distribution's own REGISTRY_* variables extend or override
# (REGISTRY_STORAGE_DELETE_ENABLED, REGISTRY_STORAGE_MAINTENANCE_READONLY, …). Arguments, if
# any, replace `serve <that file>`.
set -eu
umask 077
dir=$(mktemp -d)
cat >"$dir/config.yml" <<'YAML'
version: 0.1
log:
  fields:
    service: registry
storage:
  filesystem:
    rootdirectory: /var/lib/registry-data
http:
  addr: :5000
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
YAML
if [ -n "${REGISTRY_USER_AUTH:-}" ]; then
  case $REGISTRY_USER_AUTH in
    *:*) ;;
    *)
      echo "registry-entrypoint: REGISTRY_USER_AUTH must be user:password" >&2
      exit 2
      ;;
  esac
  printf '%s\n' "${REGISTRY_USER_AUTH#*:}" | htpasswd -iBn "${REGISTRY_USER_AUTH%%:*}" >"$dir/htpasswd"
  export REGISTRY_AUTH=htpasswd REGISTRY_AUTH_HTPASSWD_PATH="$dir/htpasswd" REGISTRY_AUTH_HTPASSWD_REALM="${REGISTRY_AUTH_HTPASSWD_REALM:-codebay}"
  unset REGISTRY_USER_AUTH
fi
[ $# -gt 0 ] || set -- serve "$dir/config.yml"
exec /usr/bin/docker-registry "$@"
