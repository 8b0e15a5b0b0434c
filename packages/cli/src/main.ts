import type { CodebayClient, CreateFields, Instance } from '@codebay/api-client';
import { ApiError } from '@codebay/api-client/errors';
import { Command, CommanderError, Option } from 'commander';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { EXIT, OutcomeError, UsageError, errorCodeOf, exitCodeOf } from './errors.ts';
import type { packWorkspace } from './pack.ts';
import type { Progress } from './progress.ts';
import { resolveSettings, writeSettings } from './settings.ts';
import { statusText } from './status.ts';

interface Globals {
  url?: string;
  insecure?: boolean;
  json?: boolean;
  debug?: boolean;
  quiet?: boolean;
}

const TERMINAL_OK = 'Running';
const CLI_VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
const POLL_MS = 1_000;

function out(text: string): void {
  process.stdout.write(`${text}\n`);
}

function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/** Human output of one instance: the fields people look at, one per line. */
function describe(i: Instance): string {
  const rows: [string, string | null | undefined][] = [
    ['instance_id', i.instance_id],
    ['user_id', i.user_id],
    ['status', i.status],
    ['url', i.url],
    ['base_image', i.base_image],
    ['devcontainer_image', i.devcontainer_image],
    ['build', i.build ? `${i.build.key} (${i.build.cache})` : null],
    ['error', i.error],
    ['workspace_folder', i.workspace_folder !== '/workspace' ? i.workspace_folder : null],
    // Each forwarded port at its own origin (the url carries the token, like the instance's).
    ...(i.ports ?? []).map((p): [string, string] => [`port ${p.port}`, `${p.url}${p.label ? `  (${p.label})` : ''}`]),
    ...(i.warnings ?? []).map((w): [string, string] => ['warning', w.message]),
    ['created_at', i.created_at],
  ];
  return rows
    .filter(([, v]) => v !== null && v !== undefined && v !== '')
    .map(([k, v]) => `${k.padEnd(19)} ${v}`)
    .join('\n');
}

/** The program, with its commands; `run` parses argv and returns the exit code. */
function buildProgram(): Command {
  const program = new Command('codebay')
    .description('Create and use codebay instances: VS Code in the browser, built from devcontainer.json')
    .version(CLI_VERSION, '--version', 'print the CLI version')
    .option('--url <url>', 'codebay address (or CODEBAY_URL, or the config file); default https://vscode.local')
    .addOption(new Option('--api-url <url>', 'the seed client’s name for --url (a trailing /api is fine)').hideHelp())
    .option('--insecure', 'accept a self-signed TLS certificate (like curl -k)')
    .option('--json', 'print results as JSON, for scripts')
    .option('--quiet', 'no progress output on stderr')
    .option('--debug', 'print stack traces of unexpected errors')
    .showHelpAfterError()
    .exitOverride();

  const globals = (): Globals => {
    const g = program.opts<Globals & { apiUrl?: string }>();
    return { ...g, url: g.url ?? g.apiUrl };
  };
  // The HTTP client, the progress display and the packer load when a command needs them: `--version` and `--help` stay fast.
  const client = async () => {
    const g = globals();
    const s = resolveSettings({ url: g.url, insecure: g.insecure });
    const { CodebayClient } = await import('@codebay/api-client');
    return new CodebayClient({ url: s.url, token: s.token, insecure: s.insecure, userAgent: `codebay-cli/${CLI_VERSION}` });
  };
  const show = (instance: Instance, human = describe(instance)) => out(globals().json ? JSON.stringify(instance, null, 2) : human);

  const createOptions = (cmd: Command) =>
    cmd
      .option('--user-id <user>', 'owner of the instance (implied by a user token; required with the admin token)')
      .option('--storage <size>', 'workspace volume size (default 2Gi)')
      .option('--shared-storage <size>', 'the user’s /shared volume size, when first made (default 5Gi)')
      .option('--memory-request <q>', 'default 512Mi')
      .option('--memory-limit <q>', 'default 2Gi')
      .option('--cpu-request <q>', 'default 200m')
      .option('--cpu-limit <q>', 'default 1000m')
      .option('--vscode-version <v>', 'VS Code version to run (see editor-versions; default: the deployment’s default, 1.139.1 as set up)')
      .option('--idempotency-key <key>', 'a retry with the same key returns the same instance')
      .option('--wait', 'wait until the instance is Running, showing the build live (the default)')
      .option('--no-wait', 'return as soon as the instance is queued')
      .option('--timeout <seconds>', 'give up waiting after this long (exit 6)', (v) => Number(v));

  type CreateOpts = {
    userId?: string;
    storage?: string;
    sharedStorage?: string;
    memoryRequest?: string;
    memoryLimit?: string;
    cpuRequest?: string;
    cpuLimit?: string;
    vscodeVersion?: string;
    idempotencyKey?: string;
    /** Undefined unless --wait or --no-wait was given: waiting is the default, as in the seed's client. */
    wait?: boolean;
    timeout?: number;
  };
  const fieldsOf = (o: CreateOpts): CreateFields => ({
    user_id: o.userId,
    storage_size: o.storage,
    shared_storage_size: o.sharedStorage,
    memory_request: o.memoryRequest,
    memory_limit: o.memoryLimit,
    cpu_request: o.cpuRequest,
    cpu_limit: o.cpuLimit,
    vscode_version: o.vscodeVersion,
  });

  /** Runs a command's work with a progress display that is always taken down, however the work ends. */
  const withProgress = async (work: (progress: Progress) => Promise<void>) => {
    const { createProgress } = await import('./progress.ts');
    const progress = createProgress({ quiet: globals().quiet });
    try {
      await work(progress);
    } finally {
      progress.stop();
    }
  };

  /** After a create: either print it (--no-wait) or follow it to Running and print the URL. */
  const finish = async (c: CodebayClient, created: Instance, o: CreateOpts, progress: Progress) => {
    if (o.wait === false) {
      progress.stop();
      show(created, `${describe(created)}\n\nnot waiting: codebay wait --instance-id ${created.instance_id}`);
      return;
    }
    const running = await waitFor(c, created, progress, o.timeout);
    show(running, running.url);
  };

  createOptions(program.command('create-simple').description('an instance from a base image, no build'))
    .option('--base-image <image>', 'default ubuntu:22.04')
    .action(async (o: CreateOpts & { baseImage?: string }) => {
      const c = await client();
      await withProgress(async (progress) => {
        progress.step('creating');
        const created = await c.createSimple({ ...fieldsOf(o), base_image: o.baseImage }, o.idempotencyKey);
        await finish(c, created, o, progress);
      });
    });

  createOptions(program.command('create-devcontainer').description('an instance built from a devcontainer.json'))
    .requiredOption('--devcontainer-json <file>', 'the devcontainer.json to build')
    .action(async (o: CreateOpts & { devcontainerJson: string }) => {
      if (!existsSync(o.devcontainerJson)) throw new UsageError(`--devcontainer-json ${o.devcontainerJson}: no such file`);
      const c = await client();
      await withProgress(async (progress) => {
        progress.step(`uploading ${o.devcontainerJson}`);
        const created = await c.createDevcontainer(fieldsOf(o), o.devcontainerJson);
        await finish(c, created, o, progress);
      });
    });

  createOptions(
    program
      .command('create-workspace')
      .description('an instance built from a folder with .devcontainer/ (packed as tar.gz, .gitignore/.dockerignore honoured)'),
  )
    .requiredOption('--workspace-dir <dir>', 'the folder to upload')
    .action(async (o: CreateOpts & { workspaceDir: string }) => {
      const c = await client();
      let packed: Awaited<ReturnType<typeof packWorkspace>> | undefined;
      await withProgress(async (progress) => {
        progress.step(`packing ${o.workspaceDir}`);
        const pack = await import('./pack.ts');
        packed = await pack.packWorkspace(o.workspaceDir);
        progress.line(
          `packed ${packed.entries} entries, ${mib(packed.bytes)}${packed.excludedBy.length ? ` (excluding what ${packed.excludedBy.join(' and ')} list)` : ''}`,
        );
        let shown = -1;
        const created = await c.createWorkspace(fieldsOf(o), packed.file, (sent, total) => {
          const pct = Number.isFinite(total) && total > 0 ? Math.floor((sent / total) * 100) : 0;
          if (pct !== shown && (pct % 10 === 0 || process.stderr.isTTY)) {
            shown = pct;
            progress.step(`uploading ${mib(sent)} of ${mib(total)} (${pct}%)`);
          }
        });
        await finish(c, created, o, progress);
      }).finally(() => {
        if (packed) rmSync(dirname(packed.file), { recursive: true, force: true });
      });
    });

  program
    .command('get')
    .description('show an instance')
    .requiredOption('--instance-id <id>')
    .action(async (o: { instanceId: string }) => show(await (await client()).get(o.instanceId)));

  program
    .command('list')
    .description('your instances (the admin token: everyone’s, or one user’s with --user-id)')
    .option('--user-id <user>')
    .action(async (o: { userId?: string }) => {
      const { instances } = await (await client()).list(o.userId);
      if (globals().json) return out(JSON.stringify({ instances }, null, 2));
      if (instances.length === 0) return out('no instances');
      out(['INSTANCE', 'STATUS', 'CREATED', 'URL'].join('\t'));
      for (const i of instances) out([i.instance_id, i.status, i.created_at ?? '', i.url].join('\t'));
    });

  program
    .command('editor-versions')
    .description('the editor (VS Code) versions instances can run, for --vscode-version; the default first')
    .action(async () => {
      const list = await (await client()).editorVersions();
      if (globals().json) return out(JSON.stringify(list, null, 2));
      out(['VSCODE', 'CODE-SERVER', 'DEFAULT'].join('\t'));
      for (const v of list.versions) out([v.vscode_version, v.code_server_version ?? '-', v.default ? 'yes' : 'no'].join('\t'));
    });

  program
    .command('build-status')
    .description('the status of an instance’s build')
    .requiredOption('--instance-id <id>')
    .action(async (o: { instanceId: string }) => {
      const s = await (await client()).buildStatus(o.instanceId);
      out(globals().json ? JSON.stringify(s, null, 2) : `${s.status}${s.error ? `: ${s.error}` : ''}`);
    });

  program
    .command('build-logs')
    .description('an instance’s build log (--follow: live, until the build ends)')
    .requiredOption('--instance-id <id>')
    .option('--follow', 'stream the log as it is written (reconnects without losing lines)')
    .action(async (o: { instanceId: string; follow?: boolean }) => {
      const c = await client();
      if (!o.follow) {
        const logs = await c.buildLogs(o.instanceId);
        return out(globals().json ? JSON.stringify(logs, null, 2) : (logs.logs ?? ''));
      }
      const json = globals().json;
      const end = await c.followLogs(o.instanceId, {
        onLine: (l) => out(json ? JSON.stringify({ id: l.id, line: l.text }) : l.text),
        onReconnect: (after) => process.stderr.write(`codebay: log stream dropped; resuming after ${after ?? 'the start'}\n`),
      });
      if (json) out(JSON.stringify({ end }));
      else process.stderr.write(`codebay: build ${end.outcome}${end.reason ? `: ${end.reason}` : ''}\n`);
      if (end.outcome === 'failure') throw new OutcomeError(`build failed${end.reason ? `: ${end.reason}` : ''}`, EXIT.failed, 'build_failed');
    });

  program
    .command('logs')
    .description('an instance’s own log: the launcher, its lifecycle commands (postCreateCommand …) and the editor (--follow: live)')
    .requiredOption('--instance-id <id>')
    .option('--follow', 'stream the log as it is written, until the instance is deleted or fails (reconnects without losing lines)')
    .action(async (o: { instanceId: string; follow?: boolean }) => {
      const c = await client();
      if (!o.follow) {
        const logs = await c.instanceLogs(o.instanceId);
        return out(globals().json ? JSON.stringify(logs, null, 2) : (logs.logs ?? ''));
      }
      const json = globals().json;
      const end = await c.followLogs(
        o.instanceId,
        {
          onLine: (l) => out(json ? JSON.stringify({ id: l.id, line: l.text }) : l.text),
          onReconnect: (after) => process.stderr.write(`codebay: log stream dropped; resuming after ${after ?? 'the start'}\n`),
        },
        { log: 'instance' },
      );
      if (json) out(JSON.stringify({ end }));
      else process.stderr.write(`codebay: instance log ended (${end.outcome}${end.reason ? `: ${end.reason}` : ''})\n`);
    });

  program
    .command('wait')
    .description('wait until an instance is Running (exit 0) or Failed (exit 5)')
    .requiredOption('--instance-id <id>')
    .option('--timeout <seconds>', 'give up after this long (exit 6)', (v) => Number(v))
    .action(async (o: { instanceId: string; timeout?: number }) => {
      const c = await client();
      await withProgress(async (progress) => {
        const running = await waitFor(c, await c.get(o.instanceId), progress, o.timeout);
        show(running, running.url);
      });
    });

  program
    .command('open')
    .description('open the instance in a browser (prints the URL when none can be started)')
    .requiredOption('--instance-id <id>')
    .option('--print', 'only print the URL')
    .action(async (o: { instanceId: string; print?: boolean }) => {
      const i = await (await client()).get(o.instanceId);
      if (i.status !== TERMINAL_OK) process.stderr.write(`codebay: ${i.instance_id} is ${i.status}; the page will say so until it is Running\n`);
      if (globals().json) return out(JSON.stringify({ url: i.url }));
      if (o.print || !process.stdout.isTTY || !(await openBrowser(i.url))) out(i.url);
    });

  program
    .command('delete')
    .description('delete an instance (its /workspace too; never the user’s /shared)')
    .requiredOption('--instance-id <id>')
    .action(async (o: { instanceId: string }) => {
      const i = await (await client()).delete(o.instanceId);
      show(i, `${i.instance_id}: ${i.status}`);
    });

  const config = program.command('config').description('the CLI’s settings file (~/.config/codebay/config.json, mode 0600)');
  config
    .command('set')
    .description('store the address, a token (read from CODEBAY_TOKEN or stdin, never from the command line) or --insecure')
    .option('--url <url>')
    .option('--token-from-env', 'store the token in CODEBAY_TOKEN')
    .option('--token-stdin', 'store the token read from standard input')
    .option('--insecure', 'accept self-signed certificates from now on')
    .action(async (o: { url?: string; tokenFromEnv?: boolean; tokenStdin?: boolean; insecure?: boolean }) => {
      let token: string | undefined;
      if (o.tokenFromEnv) token = process.env.CODEBAY_TOKEN || undefined;
      if (o.tokenStdin) {
        const chunks: Buffer[] = [];
        for await (const c of process.stdin) chunks.push(c as Buffer);
        token = Buffer.concat(chunks).toString('utf8').trim() || undefined;
      }
      if ((o.tokenFromEnv || o.tokenStdin) && !token) throw new UsageError('no token given');
      const url = o.url ?? globals().url;
      const path = writeSettings({ url, token, insecure: o.insecure ? true : undefined });
      out(globals().json ? JSON.stringify({ path }) : `wrote ${path}`);
    });

  return program;
}

/** Polls the instance and follows its build log until Running (returns it), Failed or the timeout (throw). */
async function waitFor(c: CodebayClient, start: Instance, progress: Progress, timeoutSeconds?: number): Promise<Instance> {
  const deadline = timeoutSeconds ? Date.now() + timeoutSeconds * 1000 : Infinity;
  const id = start.instance_id;
  const stopLogs = new AbortController();
  let current = start;
  progress.step(`${id}: ${statusText(current)}`);
  // The build log, live, beside the status (simple instances have none; the stream says so at once).
  const logs = c
    .followLogs(id, { onLine: (l) => progress.line(l.text) }, { signal: stopLogs.signal })
    .then((end) => {
      if (end.outcome === 'cached') progress.line('image already built (build key found in the registry)');
    })
    .catch(() => undefined);
  try {
    for (;;) {
      if (current.status === TERMINAL_OK) {
        await Promise.race([logs, new Promise((r) => setTimeout(r, 500))]);
        progress.succeed(`${id} is Running`);
        return current;
      }
      if (current.status === 'Failed') {
        await Promise.race([logs, new Promise((r) => setTimeout(r, 500))]);
        progress.fail(`${id} failed${current.phase ? ` (${current.phase})` : ''}: ${current.error ?? 'no reason given'}`);
        throw new OutcomeError(
          `${id} failed${current.phase ? ` in ${current.phase}` : ''}: ${current.error ?? 'no reason given'}`,
          EXIT.failed,
          'instance_failed',
        );
      }
      if (current.status === 'Deleting' || current.status === 'Deleted') {
        progress.fail(`${id} was deleted`);
        throw new OutcomeError(`${id} was deleted`, EXIT.failed, 'instance_deleted');
      }
      if (Date.now() >= deadline) {
        progress.fail(`${id} is still ${current.status} after ${timeoutSeconds} s`);
        throw new OutcomeError(`timed out after ${timeoutSeconds} s waiting for ${id} (still ${current.status})`, EXIT.timeout, 'timeout');
      }
      await new Promise((r) => setTimeout(r, Math.min(POLL_MS, Math.max(0, deadline - Date.now()))));
      current = await c.get(id);
      progress.step(`${id}: ${statusText(current)}`);
    }
  } finally {
    stopLogs.abort();
  }
}

function openBrowser(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const child = spawn('xdg-open', [url], { stdio: 'ignore', detached: true });
    child.on('error', () => resolve(false));
    child.on('spawn', () => {
      child.unref();
      resolve(true);
    });
  });
}

/** Runs the CLI; returns the exit code (never throws, prints no stack trace unless --debug). */
export async function run(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return EXIT.ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    const g = program.opts<Globals>();
    const code = exitCodeOf(err);
    const message = (err as Error).message;
    if (g.json) {
      out(JSON.stringify({ error: { code: errorCodeOf(err), message, ...(err instanceof ApiError ? { status: err.status, details: err.details } : {}) } }));
    }
    const hint = err instanceof ApiError && (err.status === 401 || err.status === 403) ? ' (set CODEBAY_TOKEN or run `codebay config set`)' : '';
    process.stderr.write(`codebay: ${message}${err instanceof ApiError ? ` [${err.code}]` : ''}${hint}\n`);
    if (g.debug && !(err instanceof OutcomeError) && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
    return code;
  }
}
