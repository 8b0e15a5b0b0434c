#!/bin/sh
# The codebay image's command: the first argument names the service.
#   gateway | builder | provisioner   run that service (node dist/main.js)
#   add-token ARGS...                 the gateway's per-user token tool
#   anything else                     run as given (e.g. `node -e ...`, `sh`)
set -eu
case ${1:-gateway} in
  gateway | builder | provisioner)
    service=${1:-gateway}
    [ $# -gt 0 ] && shift
    exec node --enable-source-maps "/app/services/$service/dist/main.js" "$@"
    ;;
  add-token)
    shift
    exec node --enable-source-maps /app/services/gateway/dist/add-token.js "$@"
    ;;
  *) exec "$@" ;;
esac
