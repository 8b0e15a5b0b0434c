// Pure helpers of the codebay editor launcher (launcher.mjs). No I/O, no
// dependencies: this file is mounted read-only into instance containers next to
// launcher.mjs and run by the editor bundle's own Node.

/** Lifecycle phases that run once per workspace, in order. */
export const CREATE_PHASES = ['onCreate', 'updateContent', 'postCreate'];
/** Lifecycle phases that run on every start of the container, after the create phases. */
export const START_PHASES = ['postStart'];
/** All lifecycle phases, in order; postAttach runs each time an editor session attaches. */
export const ALL_PHASES = [...CREATE_PHASES, ...START_PHASES, 'postAttach'];
/**
 * The spec's `waitFor` values and the phase each names (containers.dev/implementors/json_reference:
 * "waitFor": the command the tool waits for before connecting; default updateContentCommand).
 * `initializeCommand` runs on the user's machine in the reference tools: nothing to wait for here.
 */
export const WAIT_FOR_PHASES = {
  initializeCommand: null,
  onCreateCommand: 'onCreate',
  updateContentCommand: 'updateContent',
  postCreateCommand: 'postCreate',
  postStartCommand: 'postStart',
};
export const DEFAULT_WAIT_FOR = 'updateContentCommand';

/** Environment keys the launcher never passes on to the editor or commands. */
export const LAUNCHER_ONLY_ENV = [
  'CODEBAY_LAUNCH',
  'CODEBAY_EDITOR_DIR',
  // set by code-server inside its own terminals; would make a new code-server
  // "open in the existing instance" instead of starting
  'VSCODE_IPC_HOOK_CLI',
  'CODE_SERVER_PARENT_PID',
  'CODE_SERVER_SESSION_SOCKET',
];

const isPlainObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * Parse and validate CODEBAY_LAUNCH. Throws an Error with a readable message.
 * Returns a normalised config with defaults applied.
 */
export function parseLaunchConfig(text) {
  if (text === undefined || text === null || String(text).trim() === '') {
    throw new Error('CODEBAY_LAUNCH is not set');
  }
  let raw;
  try {
    raw = JSON.parse(String(text));
  } catch (err) {
    throw new Error(`CODEBAY_LAUNCH is not valid JSON: ${err.message}`);
  }
  if (!isPlainObject(raw)) throw new Error('CODEBAY_LAUNCH must be a JSON object');

  const cfg = {
    workspaceFolder: raw.workspaceFolder ?? '/workspace',
    // The instance's workspace volume (the upload, the launcher's state); default the folder.
    workspaceVolume: raw.workspaceVolume ?? raw.workspaceFolder ?? '/workspace',
    host: raw.host ?? '0.0.0.0',
    port: raw.port ?? 8080,
    socket: raw.socket ?? undefined,
    remoteUser: raw.remoteUser || undefined,
    containerUser: raw.containerUser || undefined,
    containerEnv: raw.containerEnv ?? {},
    remoteEnv: raw.remoteEnv ?? {},
    settings: raw.settings ?? {},
    extensions: raw.extensions ?? [],
    waitFor: raw.waitFor ?? DEFAULT_WAIT_FOR,
    devcontainerId: typeof raw.devcontainerId === 'string' ? raw.devcontainerId : undefined,
    commands: {},
  };
  if (!Object.hasOwn(WAIT_FOR_PHASES, cfg.waitFor)) {
    throw new Error(`waitFor must be one of ${Object.keys(WAIT_FOR_PHASES).join(', ')}`);
  }
  if (typeof cfg.workspaceFolder !== 'string' || !cfg.workspaceFolder.startsWith('/')) {
    throw new Error('workspaceFolder must be an absolute path');
  }
  if (typeof cfg.workspaceVolume !== 'string' || !cfg.workspaceVolume.startsWith('/')) {
    throw new Error('workspaceVolume must be an absolute path');
  }
  if (typeof cfg.host !== 'string' || cfg.host === '') throw new Error('host must be a string');
  if (!Number.isInteger(cfg.port) || cfg.port < 1 || cfg.port > 65535) {
    throw new Error('port must be an integer 1-65535');
  }
  if (cfg.socket !== undefined && (typeof cfg.socket !== 'string' || !cfg.socket.startsWith('/'))) {
    throw new Error('socket must be an absolute path');
  }
  for (const k of ['remoteUser', 'containerUser']) {
    if (cfg[k] !== undefined && typeof cfg[k] !== 'string') throw new Error(`${k} must be a string`);
  }
  for (const k of ['containerEnv', 'remoteEnv']) {
    if (!isPlainObject(cfg[k])) throw new Error(`${k} must be an object`);
    for (const [key, value] of Object.entries(cfg[k])) {
      if (value !== null && typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') {
        throw new Error(`${k}.${key} must be a string`);
      }
    }
  }
  if (!isPlainObject(cfg.settings)) throw new Error('settings must be an object');
  if (!Array.isArray(cfg.extensions) || cfg.extensions.some((e) => typeof e !== 'string')) {
    throw new Error('extensions must be an array of strings');
  }
  for (const phase of ALL_PHASES) {
    const key = `${phase}Commands`;
    const value = raw[key] ?? [];
    if (!Array.isArray(value)) throw new Error(`${key} must be an array`);
    // validates each entry; throws on bad shapes
    value.forEach((cmd, i) => normalizeCommand(cmd, `${key}[${i}]`));
    cfg.commands[phase] = value;
  }
  return cfg;
}

/**
 * A devcontainer lifecycle command → list of processes to run in parallel.
 *   "cmd"                 → [{ name: undefined, argv: ["/bin/sh", "-c", "cmd"], display }]
 *   ["prog", "arg"]       → [{ name: undefined, argv: ["prog", "arg"], display }]
 *   { a: "x", b: ["y"] }  → one entry per key, run in parallel
 * Empty commands are dropped.
 */
export function normalizeCommand(cmd, where = 'command') {
  const one = (value, name) => {
    if (typeof value === 'string') {
      if (value.trim() === '') return [];
      return [{ name, argv: ['/bin/sh', '-c', value], display: value }];
    }
    if (Array.isArray(value)) {
      if (value.some((a) => typeof a !== 'string')) {
        throw new Error(`${where}${name ? `.${name}` : ''}: array commands must contain only strings`);
      }
      if (value.length === 0) return [];
      return [{ name, argv: [...value], display: value.map(shellQuote).join(' ') }];
    }
    if (value === null || value === undefined) return [];
    throw new Error(`${where}${name ? `.${name}` : ''}: a command must be a string or an array of strings`);
  };
  if (isPlainObject(cmd)) {
    return Object.entries(cmd).flatMap(([name, value]) => one(value, name));
  }
  return one(cmd, undefined);
}

/** Quote for display only (never executed). */
export function shellQuote(s) {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * Substitutes the spec's variables (containers.dev/implementors/json_reference, "Variables in
 * devcontainer.json") as they are inside an instance: ${containerEnv:VAR[:default]} from the
 * container's environment; ${localEnv:VAR[:default]} and its alias ${env:…} as their default or ""
 * (an instance has no local machine); ${containerWorkspaceFolder} as the folder the editor opens
 * (workspaceFolder), ${localWorkspaceFolder} as the instance's workspace volume (workspaceVolume,
 * default the folder), each with its Basename form; ${devcontainerId} as the instance's id.
 * Unknown ${...} expressions are left as they are. The provisioner gives the container's own
 * environment the same values (packages/contracts/src/launch.ts substituteInstanceVariables).
 */
export function substituteVariables(value, containerEnv, vars = {}) {
  if (typeof value !== 'string') return value;
  // A linear scan (packages/contracts/src/launch.ts replaceVariables): each ${…} ends at its first }.
  let out = '';
  let pos = 0;
  for (;;) {
    const start = value.indexOf('${', pos);
    if (start < 0) break;
    const end = value.indexOf('}', start + 2);
    if (end < 0) break;
    const [kind = '', name, ...rest] = value.slice(start + 2, end).split(':');
    out += value.slice(pos, start) + variableValue(kind, name, rest.length > 0 ? rest.join(':') : undefined, value.slice(start, end + 1), containerEnv, vars);
    pos = end + 1;
  }
  return out + value.slice(pos);
}

const basename = (p) => p.replace(/\/+$/, '').split('/').pop() || '';

function variableValue(kind, name, dflt, match, containerEnv, vars) {
  switch (kind) {
    case 'containerEnv':
      if (name === undefined) return match;
      return containerEnv[name] ?? dflt ?? '';
    case 'env':
    case 'localEnv':
      if (name === undefined) return match;
      return dflt ?? '';
    case 'containerWorkspaceFolder':
      return name === undefined && vars.workspaceFolder !== undefined ? vars.workspaceFolder : match;
    case 'localWorkspaceFolder': {
      const local = vars.workspaceVolume ?? vars.workspaceFolder;
      return name === undefined && local !== undefined ? local : match;
    }
    case 'containerWorkspaceFolderBasename':
      return name === undefined && vars.workspaceFolder !== undefined ? basename(vars.workspaceFolder) : match;
    case 'localWorkspaceFolderBasename': {
      const local = vars.workspaceVolume ?? vars.workspaceFolder;
      return name === undefined && local !== undefined ? basename(local) : match;
    }
    case 'devcontainerId':
      return name === undefined && vars.devcontainerId !== undefined ? vars.devcontainerId : match;
    default:
      return match;
  }
}

/** `substituteVariables` over every string of a value (lifecycle commands in each form, settings). */
export function substituteDeep(value, containerEnv, vars = {}) {
  if (typeof value === 'string') return substituteVariables(value, containerEnv, vars);
  if (Array.isArray(value)) return value.map((v) => substituteDeep(v, containerEnv, vars));
  if (isPlainObject(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substituteDeep(v, containerEnv, vars)]));
  return value;
}

/**
 * Environment for lifecycle commands and the editor:
 *   base (the launcher's env) + containerEnv + remoteEnv, then HOME/USER/LOGNAME/SHELL
 *   for the user. containerEnv values are substituted against the base env,
 *   remoteEnv values against base + containerEnv. A null remoteEnv value removes
 *   the variable. PATH stays unless containerEnv/remoteEnv set it.
 */
export function buildEnv({ base, containerEnv = {}, remoteEnv = {}, user, workspaceFolder, workspaceVolume, devcontainerId }) {
  const env = { ...base };
  for (const k of LAUNCHER_ONLY_ENV) delete env[k];
  const vars = { workspaceFolder, workspaceVolume, devcontainerId };
  const baseSnapshot = { ...env };
  for (const [k, v] of Object.entries(containerEnv)) {
    if (v === null) continue;
    env[k] = substituteVariables(String(v), baseSnapshot, vars);
  }
  const containerSnapshot = { ...env };
  for (const [k, v] of Object.entries(remoteEnv)) {
    if (v === null) {
      delete env[k];
      continue;
    }
    env[k] = substituteVariables(String(v), containerSnapshot, vars);
  }
  if (user) {
    env.HOME = user.home;
    env.USER = user.name;
    env.LOGNAME = user.name;
    if (user.shell) env.SHELL = user.shell;
  }
  if (!env.PATH) env.PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
  return env;
}

/** Parse /etc/passwd text → [{ name, uid, gid, home, shell }]. */
export function parsePasswd(text) {
  const users = [];
  for (const line of String(text).split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const f = line.split(':');
    if (f.length < 7) continue;
    const uid = Number(f[2]);
    const gid = Number(f[3]);
    if (!Number.isInteger(uid) || !Number.isInteger(gid)) continue;
    users.push({
      name: f[0],
      uid,
      gid,
      home: f[5] || '/',
      shell: f[6] || undefined,
    });
  }
  return users;
}

/** Find a user by name, or by numeric uid when the name is all digits and no user has it as name. */
export function findUser(users, nameOrUid) {
  const byName = users.find((u) => u.name === nameOrUid);
  if (byName) return byName;
  if (/^\d+$/.test(String(nameOrUid))) return users.find((u) => u.uid === Number(nameOrUid));
  return undefined;
}

/** Names useradd accepts (Debian's default NAME_REGEX, a bit relaxed). */
export function isValidUserName(name) {
  return typeof name === 'string' && /^[a-z_][a-z0-9_.-]{0,31}\$?$/i.test(name) && !/^\d+$/.test(name);
}

/**
 * Parse VS Code's settings.json (JSONC: comments and trailing commas allowed).
 * Returns undefined for an empty file; throws on malformed input.
 */
export function parseJsonc(text) {
  const s = String(text);
  let out = '';
  let i = 0;
  while (i < s.length) {
    const c = s[i];
    if (c === '"') {
      let j = i + 1;
      while (j < s.length && s[j] !== '"') j += s[j] === '\\' ? 2 : 1;
      out += s.slice(i, j + 1);
      i = j + 1;
    } else if (c === '/' && s[i + 1] === '/') {
      while (i < s.length && s[i] !== '\n') i++;
    } else if (c === '/' && s[i + 1] === '*') {
      const end = s.indexOf('*/', i + 2);
      i = end === -1 ? s.length : end + 2;
    } else {
      out += c;
      i++;
    }
  }
  // trailing commas: `,` followed by whitespace and } or ] (outside strings)
  let cleaned = '';
  for (let k = 0; k < out.length; k++) {
    const c = out[k];
    if (c === '"') {
      let j = k + 1;
      while (j < out.length && out[j] !== '"') j += out[j] === '\\' ? 2 : 1;
      cleaned += out.slice(k, j + 1);
      k = j;
      continue;
    }
    if (c === ',') {
      let j = k + 1;
      while (j < out.length && /\s/.test(out[j])) j++;
      if (out[j] === '}' || out[j] === ']') continue;
    }
    cleaned += c;
  }
  if (cleaned.trim() === '') return undefined;
  return JSON.parse(cleaned);
}

/**
 * Merge settings: keys already in `existing` are kept, `overrides` win on
 * conflicts; nested plain objects (e.g. "[python]": {...}) are merged the same way.
 */
export function mergeSettings(existing, overrides) {
  const result = isPlainObject(existing) ? { ...existing } : {};
  for (const [k, v] of Object.entries(overrides ?? {})) {
    result[k] = isPlainObject(v) && isPlainObject(result[k]) ? mergeSettings(result[k], v) : v;
  }
  return result;
}

/**
 * Extension list from the merged configuration: drop blanks and duplicates
 * (case-insensitive for IDs), and honour "-publisher.name" entries, which
 * remove an extension contributed earlier (features, base config).
 */
export function normalizeExtensions(list) {
  const out = [];
  const seen = new Set();
  for (const raw of list ?? []) {
    if (typeof raw !== 'string') continue;
    const e = raw.trim();
    if (!e) continue;
    if (e.startsWith('-')) {
      const id = e.slice(1).toLowerCase();
      for (let i = out.length - 1; i >= 0; i--) if (out[i].toLowerCase() === id) out.splice(i, 1);
      seen.delete(id);
      continue;
    }
    const key = isVsixPath(e) ? e : e.toLowerCase();
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(e);
  }
  return out;
}

/** Where a baked image holds its extensions: .vsix files and `index.json` (services/builder/src/extension-source.ts writes them). */
export const BAKED_EXTENSIONS_DIR = '/usr/local/share/codebay/extensions';
/** The property extension warnings are about. */
export const EXTENSIONS_PROPERTY = 'customizations.vscode.extensions';
const BAKED_FILE = /^[A-Za-z0-9][A-Za-z0-9._+-]*\.vsix$/;

/**
 * A baked image's extension index (`index.json`: {"extensions":[{id,version,file}],"missing":[ids]})
 * → { files: Map<lower-case id, file name>, missing: lower-case ids }, or null when the text is not
 * such an index. A file must be a plain name in BAKED_EXTENSIONS_DIR ending in .vsix.
 */
export function parseBakedIndex(text) {
  let raw;
  try {
    raw = JSON.parse(String(text));
  } catch {
    return null;
  }
  if (!isPlainObject(raw) || !Array.isArray(raw.extensions)) return null;
  const files = new Map();
  for (const e of raw.extensions) {
    if (!isPlainObject(e) || typeof e.id !== 'string' || typeof e.file !== 'string' || !BAKED_FILE.test(e.file)) return null;
    files.set(e.id.toLowerCase(), e.file);
  }
  const missing = Array.isArray(raw.missing) ? raw.missing.filter((m) => typeof m === 'string').map((m) => m.toLowerCase()) : [];
  return { files, missing };
}

/**
 * What to install for each extension of the merged list (normalizeExtensions applied):
 * [{ ext, target, from }] where `from` is 'file' (a .vsix path, relative to the workspace folder,
 * `target` as written), 'image' (baked: `target` is its .vsix in BAKED_EXTENSIONS_DIR) or 'gallery'
 * (`target` is the id). With an index (`parseBakedIndex`), an id it lacks is not looked for
 * anywhere: it is in `notInImage` (the build already warned about it).
 */
export function extensionInstallPlan(list, index) {
  const installs = [];
  const notInImage = [];
  for (const ext of normalizeExtensions(list)) {
    if (isVsixPath(ext)) installs.push({ ext, target: ext, from: 'file' });
    else if (!index) installs.push({ ext, target: ext, from: 'gallery' });
    else if (index.files.has(ext.toLowerCase())) installs.push({ ext, target: `${BAKED_EXTENSIONS_DIR}/${index.files.get(ext.toLowerCase())}`, from: 'image' });
    else notInImage.push(ext);
  }
  return { installs, notInImage };
}

/**
 * The one warning about extensions that were not installed (one per property on an instance):
 * `failed` [{ ext, reason }] at this start, `notInSource` the ids the build could not bake.
 * Null when there is nothing to say. At most 20 of each are named.
 */
export function extensionsWarning(failed, notInSource) {
  const list = (items) => items.slice(0, 20).join(', ') + (items.length > 20 ? ` and ${items.length - 20} more` : '');
  const parts = [];
  if (failed.length > 0) parts.push(`${list(failed.map((f) => `${f.ext} (${f.reason})`))}: failed to install at start`);
  if (notInSource.length > 0) parts.push(`${list(notInSource)}: not in this deployment’s extension source`);
  return parts.length > 0 ? `${parts.join('; ')}; not installed` : null;
}

/**
 * Why an extension install failed, from the last lines of its output: code-server's last
 * `Error: …` line without the prefix ("Unable to install extension 'a.b' as it is not compatible
 * with VS Code '1.100.3'."), else its last line, else the exit code. At most 200 characters.
 */
export function installFailureReason(lines, exitCode) {
  const error = [...lines].reverse().find((l) => /^\s*Error: /.test(l));
  const reason = error ? error.trim().slice('Error: '.length) : lines.at(-1)?.trim() || `exit code ${exitCode}`;
  return reason.length > 200 ? `${reason.slice(0, 199)}…` : reason;
}

/** A .vsix file (installed from disk) rather than a marketplace ID. */
export function isVsixPath(ext) {
  return typeof ext === 'string' && /\.vsix$/i.test(ext.trim());
}

/**
 * Variables code-server reads that would move it away from what codebay relies on:
 * CODE_SERVER_COOKIE_SUFFIX (code-server 4.10x+) renames the session cookie the gateway adds,
 * which would leave the editor unreachable. They take precedence over flags, so they go.
 */
const EDITOR_ENV_DROPPED = ['CODE_SERVER_COOKIE_SUFFIX'];

/**
 * The environment code-server starts with: the instance's, without EDITOR_ENV_DROPPED, and with
 * the editor's secret as $HASHED_PASSWORD when there is one. `dropped` names what was left out.
 */
export function editorEnv(env, secret = '') {
  const out = { ...env };
  const dropped = EDITOR_ENV_DROPPED.filter((k) => k in out);
  for (const k of dropped) delete out[k];
  if (secret) out.HASHED_PASSWORD = secret;
  return { env: out, dropped };
}

/**
 * Arguments for code-server (after `<node> <entry.js>`). With `guarded`, code-server runs
 * with `--auth password` and its secret comes in $HASHED_PASSWORD (set by the caller): it
 * then answers only requests carrying that secret as its session cookie, which only the
 * codebay gateway adds.
 */
export function editorArgs({ host, port, socket, userDataDir, extensionsDir, configFile, workspaceFolder, env = {}, guarded = false }) {
  const args = ['--auth', guarded ? 'password' : 'none'];
  if (socket) {
    args.push('--socket', socket);
  } else {
    args.push('--bind-addr', `${formatHost(host)}:${port}`);
    // code-server lets $PORT / $CODE_SERVER_HOST override --bind-addr; a dev
    // container's own PORT (common for web apps) must not move the editor.
    if (env.PORT !== undefined) args.push('--port', String(port));
    if (env.CODE_SERVER_HOST !== undefined) args.push('--host', host);
  }
  if (configFile) args.push('--config', configFile);
  args.push(
    '--disable-telemetry',
    '--disable-update-check',
    '--disable-workspace-trust',
    '--user-data-dir',
    userDataDir,
    '--extensions-dir',
    extensionsDir,
    workspaceFolder,
  );
  return args;
}

function formatHost(host) {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}

/** Exit code for a child that ended with (code, signal), shell style. */
export function exitCodeOf(code, signal, signals = {}) {
  if (typeof code === 'number') return code;
  if (signal) return 128 + (signals[signal] ?? 1);
  return 1;
}

/** Whether the marker says the once-per-workspace phases already ran (all of them, in an older marker). */
export function createPhasesDone(marker) {
  return isPlainObject(marker) && marker.createCompleted === true;
}

/** The create phases an earlier start finished (`phases.<name>.ok` in the marker): a restart does not run them again. */
export function donePhases(marker) {
  const phases = isPlainObject(marker) && isPlainObject(marker.phases) ? marker.phases : {};
  return new Set(CREATE_PHASES.filter((p) => isPlainObject(phases[p]) && phases[p].ok === true));
}

/**
 * The phases of one container start in order, each with whether the editor waits for it:
 * the create phases not in `done` (a Set of phase names), then postStart. `waitFor` (the spec's
 * value, e.g. `updateContentCommand`) names the last phase the editor waits for; every phase
 * after it runs with the editor up. Returns [{ phase, beforeEditor }].
 */
export function startPlan(waitFor, done = new Set()) {
  const phases = [...CREATE_PHASES.filter((p) => !done.has(p)), ...START_PHASES];
  const waitPhase = WAIT_FOR_PHASES[waitFor] ?? null;
  const order = [...CREATE_PHASES, ...START_PHASES];
  const last = waitPhase === null ? -1 : order.indexOf(waitPhase);
  return phases.map((phase) => ({ phase, beforeEditor: order.indexOf(phase) <= last }));
}

/** Keys only, sorted — the launcher never logs env values. */
export function envKeys(obj) {
  return Object.keys(obj ?? {}).sort();
}
