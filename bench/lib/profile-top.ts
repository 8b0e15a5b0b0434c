// Where a V8 CPU profile (.cpuprofile, e.g. from bench/gateway-load.ts --cpu-prof=DIR) spent
// its time: self time by function and by package (node_modules/<name>, node internals,
// codebay's own files), and total time (self and callees) by function.
//
//   node_modules/.bin/tsx bench/lib/profile-top.ts FILE.cpuprofile [--top=30]
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const file = process.argv[2];
if (!file) throw new Error('usage: profile-top.ts FILE.cpuprofile [--top=30]');
const top = Number(process.argv.find((a) => a.startsWith('--top='))?.split('=')[1] ?? 30);
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

const where = (url: string) => {
  const m = /node_modules\/(?:\.pnpm\/[^/]+\/node_modules\/)?((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (m) return m[1]!;
  if (url.startsWith('node:') || url === '') return 'node';
  return url.replace(/^file:\/\/.*?\/(packages|services|bench|test)\//, '$1/');
};
const keyOf = (id: number) => {
  const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
  return `${functionName || '(anonymous)'}  ${where(url)}${url ? `:${lineNumber + 1}` : ''}`;
};
const packageOf = (id: number) => {
  const { functionName, url } = byId.get(id)!.callFrame;
  return url ? where(url).split('/').slice(0, 2).join('/') : functionName;
};
const add = (m: Map<string, number>, k: string, us: number) => m.set(k, (m.get(k) ?? 0) + us);

const selfUs = new Map<number, number>();
profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
const fns = new Map<string, number>();
const pkgs = new Map<string, number>();
const inclusive = new Map<string, number>();
let total = 0;
let idle = 0;
for (const [id, us] of selfUs) {
  total += us;
  if (byId.get(id)!.callFrame.functionName === '(idle)') {
    idle += us;
    continue;
  }
  add(fns, keyOf(id), us);
  add(pkgs, packageOf(id), us);
  // Each sample counts once for every distinct function on its stack.
  const seen = new Set<string>();
  for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) seen.add(keyOf(at));
  for (const k of seen) add(inclusive, k, us);
}
const busy = total - idle;
const pct = (us: number) => `${((us / busy) * 100).toFixed(1).padStart(5)}%`;
const print = (title: string, m: Map<string, number>, n: number) => {
  console.log(`\n${title}`);
  for (const [k, us] of [...m]
    .filter(([k]) => !/^\((root|program)\)/.test(k))
    .sort((a, b) => b[1] - a[1])
    .slice(0, n))
    console.log(`${pct(us)}  ${k}`);
};
console.log(`${file}: ${(total / 1e6).toFixed(1)} s sampled, ${(busy / 1e6).toFixed(1)} s busy (percentages of busy)`);
print('self time by function', fns, top);
print('self time by package', pkgs, 20);
print('total time (self and callees) by function', inclusive, top);
