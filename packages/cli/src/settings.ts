import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { UsageError } from './errors.ts';

/** What the CLI needs to talk to codebay. */
export interface Settings {
  url: string;
  token?: string;
  insecure: boolean;
}

interface ConfigFile {
  url?: string;
  token?: string;
  insecure?: boolean;
}

/** `$XDG_CONFIG_HOME/codebay/config.json`, else `~/.config/codebay/config.json`. */
function configPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'codebay', 'config.json');
}

function readConfigFile(path: string): ConfigFile {
  let mode: number;
  try {
    mode = statSync(path).mode;
  } catch {
    return {};
  }
  // A token file others can read is a leaked token: refuse it, as ssh refuses such keys.
  if ((mode & 0o077) !== 0) {
    throw new UsageError(`${path} is readable by other users (mode ${(mode & 0o777).toString(8)}); run: chmod 600 ${path}`);
  }
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as ConfigFile;
  } catch (err) {
    throw new UsageError(`${path} is not valid JSON: ${(err as Error).message}`);
  }
}

/** Flags first, then CODEBAY_URL / CODEBAY_TOKEN / CODEBAY_INSECURE, then the config file, then defaults. */
export function resolveSettings(flags: { url?: string; insecure?: boolean }, env: NodeJS.ProcessEnv = process.env): Settings {
  const file = readConfigFile(configPath(env));
  const url = flags.url || env.CODEBAY_URL || file.url || 'https://vscode.local';
  if (!/^https?:\/\//.test(url)) throw new UsageError(`--url must start with http:// or https:// (got ${url})`);
  const insecure = flags.insecure || env.CODEBAY_INSECURE === '1' || env.CODEBAY_INSECURE === 'true' || file.insecure === true;
  const token = env.CODEBAY_TOKEN || file.token || undefined;
  return { url, token, insecure };
}

/** Writes the config file with mode 0600 (its folder 0700), keeping what is not given. */
export function writeSettings(update: ConfigFile, env: NodeJS.ProcessEnv = process.env): string {
  const path = configPath(env);
  const current = readConfigFile(path);
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const next = { ...current, ...Object.fromEntries(Object.entries(update).filter(([, v]) => v !== undefined)) };
  writeFileSync(path, `${JSON.stringify(next, null, 2)}\n`, { mode: 0o600 });
  chmodSync(path, 0o600);
  return path;
}
