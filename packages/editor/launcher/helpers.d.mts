// Types for helpers.mjs (plain JS so that it runs unbuilt inside instance containers).

export type Cmd = string | string[] | Record<string, string | string[]>;
export type Phase = 'onCreate' | 'updateContent' | 'postCreate' | 'postStart' | 'postAttach';
export type WaitFor = 'initializeCommand' | 'onCreateCommand' | 'updateContentCommand' | 'postCreateCommand' | 'postStartCommand';

export interface LaunchConfig {
  workspaceFolder: string;
  /** The instance's workspace volume (where the upload is unpacked and the launcher's state is kept). */
  workspaceVolume: string;
  host: string;
  port: number;
  socket?: string;
  remoteUser?: string;
  containerUser?: string;
  containerEnv: Record<string, string | null>;
  remoteEnv: Record<string, string | null>;
  settings: Record<string, unknown>;
  extensions: string[];
  waitFor: WaitFor;
  devcontainerId?: string;
  commands: Record<Phase, Cmd[]>;
}

export interface ProcessSpec {
  name: string | undefined;
  argv: string[];
  display: string;
}

export interface PasswdUser {
  name: string;
  uid: number;
  gid: number;
  home: string;
  shell?: string;
}

export const CREATE_PHASES: Phase[];
export const ALL_PHASES: Phase[];
export const LAUNCHER_ONLY_ENV: string[];

export function parseLaunchConfig(text: string | undefined): LaunchConfig;
export function normalizeCommand(cmd: unknown, where?: string): ProcessSpec[];
export function shellQuote(s: string): string;
export function substituteVariables(
  value: string,
  containerEnv: Record<string, string | undefined>,
  vars?: { workspaceFolder?: string; workspaceVolume?: string; devcontainerId?: string },
): string;
export function buildEnv(opts: {
  base: Record<string, string | undefined>;
  containerEnv?: Record<string, string | null>;
  remoteEnv?: Record<string, string | null>;
  user?: PasswdUser;
  workspaceFolder?: string;
  workspaceVolume?: string;
  devcontainerId?: string;
}): Record<string, string>;
export function parsePasswd(text: string): PasswdUser[];
export function findUser(users: PasswdUser[], nameOrUid: string): PasswdUser | undefined;
export function isValidUserName(name: string): boolean;
export function parseJsonc(text: string): unknown;
export function mergeSettings(existing: unknown, overrides: Record<string, unknown>): Record<string, unknown>;
export function normalizeExtensions(list: string[]): string[];
export function isVsixPath(ext: string): boolean;
export const BAKED_EXTENSIONS_DIR: string;
export const EXTENSIONS_PROPERTY: string;
export interface BakedIndex {
  files: Map<string, string>;
  missing: string[];
}
export function parseBakedIndex(text: string): BakedIndex | null;
export function extensionInstallPlan(
  list: string[],
  index: BakedIndex | null,
): { installs: Array<{ ext: string; target: string; from: 'file' | 'image' | 'gallery' }>; notInImage: string[] };
export function installFailureReason(lines: string[], exitCode: number): string;
export function extensionsWarning(failed: Array<{ ext: string; reason: string }>, notInSource: string[]): string | null;
export function editorEnv(env: Record<string, string | undefined>, secret?: string): { env: Record<string, string | undefined>; dropped: string[] };
export function editorArgs(opts: {
  host: string;
  port: number;
  socket?: string;
  userDataDir: string;
  extensionsDir: string;
  configFile?: string;
  workspaceFolder: string;
  env?: Record<string, string | undefined>;
  /** `--auth password` (the secret in $HASHED_PASSWORD) instead of `--auth none`. */
  guarded?: boolean;
}): string[];
export function exitCodeOf(code: number | null, signal: string | null, signals?: Record<string, number>): number;
export function createPhasesDone(marker: unknown): boolean;
export function envKeys(obj: Record<string, unknown> | undefined): string[];

export declare const START_PHASES: Phase[];
export declare const WAIT_FOR_PHASES: Record<WaitFor, Phase | null>;
export declare const DEFAULT_WAIT_FOR: WaitFor;
export declare function donePhases(marker: unknown): Set<Phase>;
export declare function startPlan(waitFor: WaitFor, done?: Set<Phase>): { phase: Phase; beforeEditor: boolean }[];
export declare function substituteDeep<T>(
  value: T,
  containerEnv: Record<string, string | undefined>,
  vars?: { workspaceFolder?: string; workspaceVolume?: string; devcontainerId?: string },
): T;
