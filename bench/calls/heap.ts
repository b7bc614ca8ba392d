// Where the allocations come from, in a sampling heap profile (bench:calls' BENCH_CALLS_HEAP_PROFILE=FILE):
// bytes allocated by function and by module over the window, collected garbage included.
//   BENCH_CALLS_HEAP_PROFILE=/tmp/heap.json npm run bench:calls -- --steps 25 --seconds 20
//   node bin/run-ts.mjs bench/calls/heap.ts /tmp/heap.json [--top 30] [--seconds 20]
import { readFileSync } from 'node:fs';
import { frameName, moduleOf, type CallFrame } from '../lib/callFrames.js';
import { argReader } from '../lib/cli.js';

interface Node { callFrame: CallFrame; selfSize: number; children: Node[] }

const args = process.argv.slice(2);
const arg = argReader(args);
const file = args.find((a) => a.endsWith('.json'));
if (!file) throw new Error('usage: heap.ts FILE.json [--top N] [--seconds S]');
const TOP = Number(arg('top', '30'));
const SECONDS = Number(arg('seconds', '0'));
const { head } = JSON.parse(readFileSync(file, 'utf8')) as { head: Node };

const byFn = new Map<string, number>();
const byModule = new Map<string, number>();
/** Bytes by the nearest frame of our own code on the stack (what of ours makes a library allocate). */
const byOwn = new Map<string, number>();
let total = 0;
const walk = (n: Node, own: string | undefined) => {
  const f = n.callFrame;
  const mine = /\/src\//.test(f.url) ? frameName(f) : own;
  if (n.selfSize) {
    total += n.selfSize;
    const key = frameName(f);
    byFn.set(key, (byFn.get(key) ?? 0) + n.selfSize);
    byModule.set(moduleOf(f), (byModule.get(moduleOf(f)) ?? 0) + n.selfSize);
    byOwn.set(mine ?? '(no src frame)', (byOwn.get(mine ?? '(no src frame)') ?? 0) + n.selfSize);
  }
  for (const c of n.children) walk(c, mine);
};
walk(head, undefined);
const mb = (b: number) => (b / 2 ** 20).toFixed(1).padStart(8);
const show = (title: string, m: Map<string, number>) => {
  console.log(`\n${title}`);
  for (const [k, v] of [...m].sort((a, b) => b[1] - a[1]).slice(0, TOP)) console.log(`${mb(v)} MB ${((100 * v) / total).toFixed(1).padStart(5)} %  ${k}`);
};
console.log(`${file}: ${mb(total)} MB allocated (sampled)${SECONDS ? `, ${(total / 2 ** 20 / SECONDS).toFixed(1)} MB/s` : ''}`);
show('by module', byModule);
show('by function', byFn);
show('by the nearest src/ frame on the stack', byOwn);
