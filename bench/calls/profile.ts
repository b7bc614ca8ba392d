// Where the time goes in a V8 CPU profile: self time by function and by module, optionally only between two
// monotonic timestamps (bench:calls prints its measured window when run under --cpu-prof).
//   node --cpu-prof --cpu-prof-dir /tmp/prof bin/run-ts.mjs bench/calls/run.ts --steps 50 --seconds 20
//   node bin/run-ts.mjs bench/calls/profile.ts /tmp/prof/CPU.….cpuprofile [--window FROM_US,TO_US] [--top 25]
import { readFileSync } from 'node:fs';
import { frameName, moduleOf, type CallFrame } from '../lib/callFrames.js';
import { argReader } from '../lib/cli.js';

interface ProfileNode { id: number; callFrame: CallFrame; children?: number[] }
interface Profile { nodes: ProfileNode[]; startTime: number; endTime: number; samples: number[]; timeDeltas: number[] }

const args = process.argv.slice(2);
const arg = argReader(args);
const file = args.find((a) => !a.startsWith('--') && a.endsWith('.cpuprofile'));
if (!file) throw new Error('usage: profile.ts FILE.cpuprofile [--window FROM_US,TO_US] [--top N]');
const TOP = Number(arg('top', '25'));
const [from, to] = arg('window', '-Infinity,Infinity').split(',').map(Number);

const prof = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(prof.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

/**
 * The benchmark's harness (carrier emulator, vendor fakes, the bench itself) or the product: a sample counts
 * as harness when any frame on its stack is harness code. An approximation: work a callback does before
 * reaching harness code (e.g. `ws` parsing a frame the emulator then handles) counts as the product's.
 */
const HARNESS = /\/(src\/telephony\/emulator|test\/fakes|bench)\//;
const harnessMemo = new Map<number, boolean>();
function isHarness(id: number): boolean {
  const known = harnessMemo.get(id);
  if (known !== undefined) return known;
  const node = byId.get(id);
  const p = parent.get(id);
  const v = !!node && (HARNESS.test(node.callFrame.url) || (p !== undefined && isHarness(p)));
  harnessMemo.set(id, v);
  return v;
}

const selfByFn = new Map<string, number>();
const selfByModule = new Map<string, number>();
let t = prof.startTime;
let total = 0;
let harness = 0;
for (let i = 0; i < prof.samples.length; i++) {
  t += prof.timeDeltas[i];
  if (t < from || t > to) continue;
  // A sample's time is the gap to the next one (V8's own attribution).
  const dt = (prof.timeDeltas[i + 1] ?? 0) / 1000;
  const node = byId.get(prof.samples[i]);
  if (!node) continue;
  const cf = node.callFrame;
  const mod = moduleOf(cf);
  const fn = frameName(cf);
  selfByFn.set(fn, (selfByFn.get(fn) ?? 0) + dt);
  selfByModule.set(mod, (selfByModule.get(mod) ?? 0) + dt);
  total += dt;
  if (isHarness(node.id)) harness += dt;
}

const busy = total - (selfByModule.get('(idle)') ?? 0);
const show = (title: string, m: Map<string, number>) => {
  console.log(`\n${title} (ms, % of non-idle ${busy.toFixed(0)} ms):`);
  for (const [k, v] of [...m].sort((a, b) => b[1] - a[1]).slice(0, TOP)) {
    if (k === '(idle)' || k.startsWith('(idle) ')) continue;
    console.log(`${v.toFixed(0).padStart(8)} ${((v / busy) * 100).toFixed(1).padStart(5)} %  ${k}`);
  }
};
console.log(`${file}: ${(total / 1000).toFixed(1)} s sampled, idle ${(((selfByModule.get('(idle)') ?? 0) / total) * 100).toFixed(1)} %`);
console.log(`harness (emulator, fakes, bench) ≈ ${((harness / busy) * 100).toFixed(1)} % of non-idle time, the rest (server, engine, adapters, GC, natives) ≈ ${(((busy - harness) / busy) * 100).toFixed(1)} %`);
show('self time by module', selfByModule);
show('self time by function', selfByFn);
