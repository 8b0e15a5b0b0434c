/**
 * What `waitFor` buys: time-to-editor of a config whose postCreateCommand takes a long time
 * (a big `npm install`, here `sleep`), the editor waiting for updateContentCommand (the spec's
 * default, codebay now) against it waiting for postCreateCommand (codebay before: every
 * create-phase command ran before the editor started), with the same config without the
 * command as the floor, measured in the same run.
 *
 *   node_modules/.bin/tsx bench/wait-for.ts [--post-create=60] [--runs=1]
 *
 * Each config has a containerEnv entry of its own (a new build key: each is built once, then
 * the runs reuse it). Time-to-editor is POST → the editor's workbench page answering through
 * the gateway (the instance URL with its token, redirects followed with the cookie, polled
 * every 100 ms). Real gateway, builder, provisioner, Redis, registry, dockerd, CLI, code-server.
 * Prints a table and one JSON line. No assertions.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fetchWorkbench } from '../test/support/editor.ts';
import { createFromDevcontainer } from '../test/support/instances.ts';
import { startStack, type Stack } from '../test/support/stack.ts';
import { waitFor } from '../test/support/wait.ts';

const args = process.argv.slice(2);
const arg = (name: string, dflt: number) => Number(args.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? dflt);
const postCreateSeconds = arg('post-create', 60);
const runs = arg('runs', 1);
const log = (msg: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 23)}] ${msg}\n`);
const user = `bench-wf-${randomBytes(3).toString('hex')}`;

async function timeToEditor(stack: Stack, config: Record<string, unknown>): Promise<number> {
  const file = join(await mkdtemp(join(tmpdir(), 'codebay-bench-wf-')), 'devcontainer.json');
  await writeFile(file, JSON.stringify(config));
  const t0 = performance.now();
  const inst = await createFromDevcontainer(stack, user, file);
  const jar = new Map<string, string>();
  await waitFor(
    `${inst.instance_id}'s editor`,
    async () => ((await fetchWorkbench(inst.url, jar).catch(() => undefined))?.ok ? true : undefined),
    600_000,
    100,
  );
  const seconds = (performance.now() - t0) / 1000;
  await stack.api(`/api/instances/${inst.instance_id}`, { method: 'DELETE' });
  return seconds;
}

const stack = await startStack({ name: 'bench-waitfor', env: { LOG_LEVEL: 'warn', READY_TIMEOUT_SECONDS: String(postCreateSeconds + 120) } });
const rows: { case: string; seconds: number[] }[] = [];
try {
  const salt = randomBytes(4).toString('hex');
  const base = { image: 'debian:bookworm', containerEnv: { BENCH: salt } };
  const slow = `sleep ${postCreateSeconds}`;
  const cases: [string, Record<string, unknown>][] = [
    ['no postCreateCommand (floor)', base],
    [`postCreateCommand ${postCreateSeconds} s, waitFor default (updateContentCommand)`, { ...base, postCreateCommand: slow }],
    [`postCreateCommand ${postCreateSeconds} s, waitFor postCreateCommand (as before)`, { ...base, postCreateCommand: slow, waitFor: 'postCreateCommand' }],
  ];
  // Build each image once, so the runs measure starting, not building.
  for (const [name, config] of cases) {
    log(`warming: ${name}`);
    await timeToEditor(stack, config);
  }
  for (const [name, config] of cases) {
    const seconds: number[] = [];
    for (let i = 0; i < runs; i++) {
      seconds.push(await timeToEditor(stack, config));
      log(`${name}: ${seconds.at(-1)!.toFixed(2)} s`);
    }
    rows.push({ case: name, seconds });
  }
} finally {
  await stack.stop();
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const floor = median(rows[0]!.seconds);
console.log('case'.padEnd(72), 'time-to-editor (median)', 'vs floor');
for (const r of rows)
  console.log(r.case.padEnd(72), `${median(r.seconds).toFixed(2)} s`.padStart(23), `${(median(r.seconds) / floor).toFixed(2)}×`.padStart(8));
console.log(
  JSON.stringify({
    bench: 'wait-for',
    postCreateSeconds,
    runs,
    rows: rows.map((r) => ({ ...r, median: median(r.seconds), vsFloor: median(r.seconds) / floor })),
  }),
);
