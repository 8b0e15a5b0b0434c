#!/usr/bin/env bash
# `npm test` (all suites), `npm run test:e2e` (end-to-end only), `npm run test:k8s`
# (the Kubernetes runtime against a real control plane only), `npm run test:hostile`
# (the hostile-tenant suite only), `npm run test:compose` (docker-compose.yml only).
# Prepares every real component the suites need (pnpm and dependencies, Redis,
# dockerd, registry, base image, editor bundle, Chromium), runs the checks and
# suites, and ends with one line: "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
mode=${1:-all}
results=.tmp/test-results
rm -rf "$results" && mkdir -p "$results"

step() { printf '\n=== %s\n' "$*"; }

step "preparing dependencies and components"
bash deploy/local/bootstrap.sh || { echo "0 passed, 1 failed"; exit 1; }

# The compose v2 CLI plugin for the compose suite (built once from Go modules, cached; a warm
# run builds nothing): in the background, the suite waits for it (install.sh holds a lock).
if [ "$mode" = all ] || [ "$mode" = compose ]; then
  mkdir -p .tmp
  bash deploy/compose/install.sh > .tmp/compose-install.log 2>&1 &
  compose_install_pid=$!
fi

# A check counts as one test: passed or failed.
check() {
  local name=$1
  shift
  step "$name: $*"
  if "$@"; then echo pass > "$results/check-$name"; else echo fail > "$results/check-$name"; fi
}

# A vitest suite writes its counts as JSON for the summary.
suite() {
  local name=$1
  shift
  step "suite $name"
  node_modules/.bin/vitest run --reporter=default --reporter=json --outputFile.json="$results/suite-$name.json" "$@"
  [ -s "$results/suite-$name.json" ] || echo '{"numPassedTests":0,"numFailedTests":1,"numPendingTests":0}' > "$results/suite-$name.json"
}

# The checks and the unit suite need no component: they run while the components and the
# control plane start, their output kept and printed once they are done.
early_log=.tmp/early-checks.log
early_pid=
e2e_pid=
if [ "$mode" = all ]; then
  (
    check typecheck node_modules/.bin/tsc -p tsconfig.json
    check lint node_modules/.bin/eslint --max-warnings 0 .
    check format node_modules/.bin/prettier --check --log-level warn .
    check circular node_modules/.bin/madge --circular --extensions ts --ts-config tsconfig.json packages services
    suite unit
  ) > "$early_log" 2>&1 &
  early_pid=$!
  # An early exit (a component that does not start, Ctrl-C) takes them along.
  stop_jobs() {
    local p
    for p in $early_pid ${e2e_pid:-} ${compose_install_pid:-}; do
      pkill -P "$p" 2>/dev/null
      kill "$p" 2>/dev/null
    done
  }
  trap stop_jobs EXIT
fi

# The builder suites run two builders, each with a daemon of its own.
export CODEBAY_SECOND_DOCKERD=1
bash deploy/local/components.sh up || { echo "0 passed, 1 failed"; exit 1; }
eval "$(bash deploy/local/components.sh env)"
bash test/support/leftovers.sh

# The Kubernetes suites need the control plane (built from Go modules once, cached).
if [ "$mode" = all ] || [ "$mode" = k8s ]; then
  step "Kubernetes control plane"
  bash test/k8s/cluster.sh up
  rc=$?
  # 3: the kwok cluster is up, the real node is not (its suite then fails: nothing skips).
  if [ $rc -eq 0 ] || [ $rc -eq 3 ]; then eval "$(bash test/k8s/cluster.sh env)"; fi
  if [ $rc -ne 0 ]; then echo fail > "$results/check-k8s-cluster"; fi
fi

if [ -n "$early_pid" ]; then
  wait "$early_pid" || echo fail > "$results/check-early"
  early_pid=
  cat "$early_log"
fi
if [ "$mode" = all ]; then
  suite integration --config test/vitest.config.ts test/integration
  # A hostile tenant's attempts, one test each: every one must end in a refusal, never in access.
  suite hostile --config test/vitest.config.ts test/hostile
fi
if [ "$mode" = hostile ]; then suite hostile --config test/vitest.config.ts test/hostile; fi
if [ "$mode" = all ]; then
  # The end-to-end suite (the local stack) runs beside the Kubernetes suites (the node, whose
  # builds run on its own daemons); its output follows theirs.
  e2e_log=.tmp/e2e-suite.log
  suite e2e --config test/vitest.config.ts test/e2e > "$e2e_log" 2>&1 &
  e2e_pid=$!
  suite k8s --config test/vitest.config.ts test/k8s
  wait "$e2e_pid"
  e2e_pid=
  # A job that died before its suite wrote its counts is a failure, not a suite left out.
  [ -s "$results/suite-e2e.json" ] || echo fail > "$results/check-e2e"
  cat "$e2e_log"
  # The compose suite (its own stack, builders with daemons of their own, Chromium) after the
  # node suites, not beside them: on 2 cores the three at once starved the node's editors.
  suite compose --config test/vitest.config.ts test/compose
fi
if [ "$mode" = e2e ]; then suite e2e --config test/vitest.config.ts test/e2e; fi
if [ "$mode" = compose ]; then suite compose --config test/vitest.config.ts test/compose; fi
if [ "$mode" = k8s ]; then suite k8s --config test/vitest.config.ts test/k8s; fi

node test/summary.mjs "$results"
