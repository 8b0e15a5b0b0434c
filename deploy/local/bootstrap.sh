#!/usr/bin/env bash
# Makes sure the Node side is ready: pnpm (the version package.json pins) and the
# workspace's dependencies from the committed lockfile. Quick when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/../.."

want=$(node -p "require('./package.json').packageManager.split('@')[1]")
have=$(pnpm --version 2>/dev/null || true)
if [ "$have" != "$want" ]; then
  echo "codebay: installing pnpm $want (found: ${have:-none})" >&2
  npm install --global --no-fund --no-audit "pnpm@$want" >&2
fi

# pnpm skips work when node_modules matches the lockfile.
CI=true pnpm install --frozen-lockfile --prefer-offline --reporter=append-only >&2
# The services and the CLI run compiled (dist/); tsc -b only rebuilds what changed.
pnpm build >&2
