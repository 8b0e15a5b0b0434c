// How long the `codebay` command takes to start: `codebay --version` and `codebay --help`
// against the floor of starting node itself (`node -e 0`), measured in the same run. With
// --compare=DIR, the same commands of another checkout too (say, an older commit's, for a
// before/after). Prints a table and one JSON line. No assertions.
//
//   node_modules/.bin/tsx bench/cli-start.ts [--runs=20] [--compare=/path/to/other/checkout]
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];
const runs = Number(arg('runs') ?? 20);
const compare = arg('compare');

/** Wall-clock seconds of `node args…`, each run a fresh process; medians and p90 over `runs`. */
function time(args: string[]): { median: number; p90: number } {
  const samples: number[] = [];
  for (let i = 0; i < runs + 1; i++) {
    const t0 = process.hrtime.bigint();
    execFileSync(process.execPath, args, { stdio: 'ignore' });
    if (i > 0) samples.push(Number(process.hrtime.bigint() - t0) / 1e9); // the first run warms the file cache
  }
  samples.sort((a, b) => a - b);
  return { median: samples[Math.floor(samples.length / 2)]!, p90: samples[Math.floor(samples.length * 0.9)]! };
}

type Row = { what: string; median_s: number; p90_s: number; vs_node: number };
const rows: Row[] = [];
const floor = time(['-e', '0']);
rows.push({ what: 'node -e 0 (floor)', median_s: floor.median, p90_s: floor.p90, vs_node: 1 });
const checkouts: [string, string][] = [['this checkout', ROOT], ...(compare ? ([['compared', compare]] as [string, string][]) : [])];
for (const [label, dir] of checkouts) {
  for (const cmd of ['--version', '--help']) {
    process.stderr.write(`[cli-start] ${label}: codebay ${cmd} × ${runs}\n`);
    const t = time([`${dir}/packages/cli/bin/codebay.mjs`, cmd]);
    rows.push({ what: `${label}: codebay ${cmd}`, median_s: t.median, p90_s: t.p90, vs_node: t.median / floor.median });
  }
}
console.log('what                                   median s    p90 s   × node');
for (const r of rows) {
  console.log(`${r.what.padEnd(38)} ${r.median_s.toFixed(3).padStart(8)} ${r.p90_s.toFixed(3).padStart(8)} ${r.vs_node.toFixed(2).padStart(8)}`);
}
console.log(JSON.stringify({ bench: 'cli-start', at: new Date().toISOString(), runs, rows }));
