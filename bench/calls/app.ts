// bench:calls — the process under test: the Switchboard server alone (API, carrier webhooks, media
// WebSockets, engine, VAD, database), as a deployment runs it. The harness process (run.ts --child-step)
// starts it, points it at the emulator and the vendor fakes, and reads its figures over the IPC channel:
//   → {type: 'start', config}         ← {type: 'ready', url, key, pid}
//   → {type: 'window-begin'}          ← {type: 'window-begun'}      (figures from here…)
//   → {type: 'window-end'}            ← {type: 'window', window}    (…to here)
//   → {type: 'settle'}                ← {type: 'settled', rss, heap, live} (after two full GCs)
//   → {type: 'close'}                 ← {type: 'closed'}, then exits
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { monitorEventLoopDelay, performance, PerformanceObserver, constants as perfConstants } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { loadConfig } from '../../src/config.js';
import { closeSileroRuntimes, loadSileroRuntime } from '../../src/engine/vad/index.js';
import { createLogger } from '../../src/log.js';
import { startServer, type Running } from '../../src/server.js';
import type { MediaTotals } from '../../src/telephony/mediaStream.js';
import { freshPostgres } from '../../test/helpers/server.js';

export interface AppStart {
  db: 'pglite' | 'postgres';
  pgAdmin: string;
  vad: 'silero' | 'energy';
  vadThread: 'worker' | 'inline';
  env: Record<string, string>;
}

/** What the app process measured over the window. */
export interface AppWindow {
  wallMs: number;
  /** process.cpuUsage over the window (all threads: the VAD worker's and onnxruntime's included), ms. */
  cpuMs: number;
  elu: number;
  loopDelayP99Ms: number;
  loopDelayMaxMs: number;
  gc: { n: number; totalMs: number; maxMs: number; major: number; majorMaxMs: number };
  rssMean: number;
  heapMean: number;
  /** Media frames in the window, from the server's own counters (/metrics' switchboard_media_frames_*). */
  media: MediaTotals;
  profileWindow: { pid: number; fromUs: number; toUs: number };
}

export type ToApp = { type: 'start'; config: AppStart } | { type: 'window-begin' } | { type: 'window-end' } | { type: 'settle' } | { type: 'close' };
export type FromApp =
  | { type: 'ready'; url: string; key: string; pid: number }
  | { type: 'window-begun' }
  | { type: 'window'; window: AppWindow }
  | { type: 'settled'; rss: number; heap: number; live: number }
  | { type: 'closed' };

/** The event-loop delay histogram's timer; its samples include it, so it is subtracted. */
const LOOP_RESOLUTION_MS = 10;

setFlagsFromString('--expose_gc');
const gc = runInNewContext('gc') as () => void;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const reply = (m: FromApp) => process.send!(m);

let running: Running | undefined;
let drop: (() => Promise<void>) | undefined;
let window: {
  t0: number; hr0: bigint; cpu0: NodeJS.CpuUsage; elu0: ReturnType<typeof performance.eventLoopUtilization>;
  loop: ReturnType<typeof monitorEventLoopDelay>; gcObserver: PerformanceObserver; sampler: NodeJS.Timeout;
  gc: AppWindow['gc']; rss: number[]; heap: number[]; media0: MediaTotals;
} | undefined;

const media = (): MediaTotals => ({ ...running!.telephony.deps.metrics!.media });

/** BENCH_CALLS_SQL: statements the embedded database ran in the window, by text: count and time, printed at its end. */
const sqlStats = new Map<string, { n: number; ms: number }>();
async function countSql(): Promise<void> {
  const { PGlite } = await import('@electric-sql/pglite');
  const query = PGlite.prototype.query;
  PGlite.prototype.query = async function (this: InstanceType<typeof PGlite>, ...a: Parameters<typeof query>) {
    const t0 = performance.now();
    try { return await query.apply(this, a); } finally {
      if (window) {
        const k = String(a[0]).replace(/\s+/g, ' ').slice(0, 140);
        const e = sqlStats.get(k) ?? { n: 0, ms: 0 };
        e.n++; e.ms += performance.now() - t0;
        sqlStats.set(k, e);
      }
    }
  } as typeof query;
}

async function start(c: AppStart): Promise<void> {
  if (process.env.BENCH_CALLS_SQL) await countSql();
  if (c.vad === 'silero') await loadSileroRuntime(undefined, { thread: c.vadThread }); // before anything is measured
  const pgdb = c.db === 'postgres' ? await freshPostgres(c.pgAdmin, 'sb_bench_calls') : null;
  drop = pgdb?.drop;
  const key = `sb_bench_${randomBytes(16).toString('hex')}`;
  running = await startServer(loadConfig({
    PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'silent', DATA_DIR: 'memory://',
    ...(pgdb ? { DATABASE_URL: pgdb.url } : {}),
    SWITCHBOARD_SECRET_KEY: randomBytes(32).toString('hex'), SWITCHBOARD_BOOTSTRAP_API_KEY: key,
    SWITCHBOARD_VAD: c.vad, SWITCHBOARD_VAD_THREAD: c.vadThread,
    ...c.env,
  }), { log: createLogger('silent'), print: () => {} });
  reply({ type: 'ready', url: running.url, key, pid: process.pid });
}

/**
 * BENCH_CALLS_HEAP_PROFILE=FILE: a sampling heap profile of the window that keeps what GC collected too, so
 * it shows where the allocation rate (and so the GC pauses) comes from: bench/calls/heap.ts reads it. With
 * BENCH_CALLS_HEAP_OLD=1 it keeps only what outlived a young-generation GC (what full GCs then collect).
 */
const HEAP_PROFILE = process.env.BENCH_CALLS_HEAP_PROFILE;
let inspector: Session | undefined;

async function beginWindow(): Promise<void> {
  if (HEAP_PROFILE) {
    inspector = new Session();
    inspector.connect();
    await inspector.post('HeapProfiler.startSampling', { samplingInterval: 16_384, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: !process.env.BENCH_CALLS_HEAP_OLD });
  }
  const gcs = { n: 0, totalMs: 0, maxMs: 0, major: 0, majorMaxMs: 0 };
  const gcObserver = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const major = (e as { detail?: { kind?: number } }).detail?.kind === perfConstants.NODE_PERFORMANCE_GC_MAJOR;
      gcs.n++;
      gcs.totalMs += e.duration;
      gcs.maxMs = Math.max(gcs.maxMs, e.duration);
      if (major) { gcs.major++; gcs.majorMaxMs = Math.max(gcs.majorMaxMs, e.duration); }
      if (process.env.BENCH_CALLS_DEBUG && e.duration > 5) console.error(`app gc ${major ? 'major' : 'minor'} ${e.duration.toFixed(1)} ms at ${(performance.now() - window!.t0).toFixed(0)}`);
    }
  });
  gcObserver.observe({ entryTypes: ['gc'] });
  const loop = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
  loop.enable();
  const rss: number[] = [];
  const heap: number[] = [];
  const sampler = setInterval(() => { const m = process.memoryUsage(); rss.push(m.rss); heap.push(m.heapUsed); }, 500);
  if (process.env.BENCH_CALLS_DEBUG) debugLateIn();
  window = {
    t0: performance.now(), hr0: process.hrtime.bigint(), cpu0: process.cpuUsage(), elu0: performance.eventLoopUtilization(),
    loop, gcObserver, sampler, gc: gcs, rss, heap, media0: media(),
  };
  reply({ type: 'window-begun' });
}

/** BENCH_CALLS_DEBUG: when caller frames reach the app late, and the app's own loop stalls > 25 ms, to lay beside the GC lines. */
function debugLateIn(): void {
  let last = media().lateIn;
  let tick = performance.now();
  // Every 5 ms, so only the CPU figure is read each time; a thread's name once.
  const names = new Map<string, string>();
  const threadCpu = () => {
    const m = new Map<string, number>();
    for (const tid of readdirSync('/proc/self/task')) {
      try {
        m.set(tid, Number(readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8').split(' ')[0]));
        if (!names.has(tid)) names.set(tid, readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim());
      } catch { /* the thread ended */ }
    }
    return m;
  };
  let prevCpu = threadCpu();
  const timer = setInterval(() => {
    if (!window) { clearInterval(timer); return; }
    const now = performance.now();
    const at = () => `${(now - window!.t0).toFixed(0)} (hr µs ${process.hrtime.bigint() / 1000n})`;
    const cpu = threadCpu();
    if (now - tick > 25) {
      const who = [...cpu].map(([tid, ns]) => [tid, (ns - (prevCpu.get(tid) ?? ns)) / 1e6] as const).filter(([, ms]) => ms > 0.5)
        .map(([tid, ms]) => `${names.get(tid)}/${tid} ${ms.toFixed(1)}`).join(', ');
      console.error(`app stall ${(now - tick).toFixed(1)} ms at ${at()}: cpu ms ${who}`);
    }
    prevCpu = cpu;
    tick = now;
    const late = media().lateIn;
    if (late > last) console.error(`app late-in +${late - last} at ${at()}`);
    last = late;
  }, 5);
}

async function endWindow(): Promise<void> {
  const w = window!;
  const cpu = process.cpuUsage(w.cpu0);
  const wallMs = performance.now() - w.t0;
  const hr1 = process.hrtime.bigint();
  const elu = performance.eventLoopUtilization(w.elu0);
  w.loop.disable();
  w.gcObserver.disconnect();
  clearInterval(w.sampler);
  const m = media();
  const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : process.memoryUsage().rss);
  reply({
    type: 'window',
    window: {
      wallMs, cpuMs: (cpu.user + cpu.system) / 1000, elu: elu.utilization,
      loopDelayP99Ms: w.loop.percentile(99) / 1e6 - LOOP_RESOLUTION_MS, loopDelayMaxMs: w.loop.max / 1e6 - LOOP_RESOLUTION_MS,
      gc: w.gc, rssMean: mean(w.rss), heapMean: mean(w.heap),
      media: { framesIn: m.framesIn - w.media0.framesIn, lateIn: m.lateIn - w.media0.lateIn, framesOut: m.framesOut - w.media0.framesOut, lateOut: m.lateOut - w.media0.lateOut },
      profileWindow: { pid: process.pid, fromUs: Number(w.hr0 / 1000n), toUs: Number(hr1 / 1000n) },
    },
  });
  window = undefined;
  if (process.env.BENCH_CALLS_SQL) {
    for (const [k, e] of [...sqlStats].sort((a, b) => b[1].ms - a[1].ms).slice(0, 15)) console.error(`app sql ${e.n} × ${(e.ms / e.n).toFixed(2)} ms = ${e.ms.toFixed(0)} ms: ${k}`);
  }
  if (inspector) {
    const { profile } = await inspector.post('HeapProfiler.stopSampling');
    writeFileSync(HEAP_PROFILE!, JSON.stringify(profile));
    inspector.disconnect();
  }
}

async function settle(): Promise<void> {
  gc();
  await sleep(200);
  gc();
  await sleep(300);
  const m = process.memoryUsage();
  reply({ type: 'settled', rss: m.rss, heap: m.heapUsed, live: m.heapUsed + m.external });
}

process.on('message', (msg: ToApp) => {
  const run = async () => {
    switch (msg.type) {
      case 'start': return start(msg.config);
      case 'window-begin': return beginWindow();
      case 'window-end': return endWindow();
      case 'settle': return settle();
      case 'close':
        // The server records the calls still up as ended before it goes.
        await running?.close();
        await closeSileroRuntimes();
        await drop?.();
        reply({ type: 'closed' });
        process.disconnect();
        return;
    }
  };
  run().catch((err: unknown) => {
    console.error(`bench app: ${(err as Error).stack ?? err}`);
    process.exit(1);
  });
});
// The harness is gone (it crashed or was killed): nothing to serve.
process.on('disconnect', () => setTimeout(() => process.exit(0), 100).unref());
