// Concurrent phone calls through the whole stack: how many calls one process carries in real time.
//   npm run bench:calls -- [--steps 10,25,50,100] [--seconds 60] [--db pglite|postgres] [--vad silero|energy] [--vad-thread worker|inline]
//                          [--speech tone|fixture] [--warmup 5] [--ramp 20] [--no-stop]
//                          [--late-after 10] [--late-tolerance 0.001]
//   node --cpu-prof --cpu-prof-dir /tmp/prof bin/run-ts.mjs bench/calls/run.ts --steps 25 --seconds 30
//     then: node bin/run-ts.mjs bench/calls/profile.ts /tmp/prof/CPU.*.<step pid>.0.001.cpuprofile --window A,B
//     (each step's process writes its own profile; the step's detail line prints its pid and --window)
//   BENCH_CALLS_DEBUG=1 prints GC pauses > 5 ms and event-loop stalls > 25 ms in the window to stderr.
//
// Each step N runs in a fresh process (so its CPU and RSS are the calls' alone) holding everything: the
// Switchboard server (startServer, PGlite in memory or a fresh PostgreSQL database dropped afterwards), the
// local carrier emulator (Twilio's REST API, signed webhooks, TwiML, real-time Media Streams) and the vendor
// fakes (Deepgram live STT and Aura TTS, OpenAI chat) — the fakes' and the emulator's share of CPU and
// memory is included in every figure. N inbound calls arrive at --ramp calls/s; each goes carrier webhook
// (HTTP) → call record → <Connect><Stream> → media WebSocket → engine (VAD on every 20 ms frame) → Deepgram
// STT adapter → endpointing → OpenAI adapter → Deepgram TTS adapter → pacer → μ-law media back to the
// emulator, which plays it in real time. Every caller loops: ~1 s of speech, then silence until the agent's
// answer has played (400 ms without agent audio), a 0.3–1.2 s pause, again. The STT fake hears "hello"
// in every utterance and the chat fake answers "Hello there." (their defaults: no per-call scripting).
// After the ramp and --warmup seconds, --seconds are measured:
//  - response latency: end of the caller's audio → first agent audio heard, from the emulator's
//    call.metrics() (what a caller would hear, incl. the STT fake's 300 ms endpointing);
//  - CPU: process.cpuUsage() (all threads, onnxruntime's included) over the window, as % of one core;
//    event-loop utilisation of the main thread (everything but ORT runs on it);
//  - memory: RSS after a full GC with the calls up minus the same before them (after 2 warm-up calls), / N;
//    also the window's mean RSS (garbage included) and JS heap + external after GC, per call. RSS moves
//    by ±20 MB on its own (V8 and PGlite release pages late), so below ~25 calls the RSS figure is noise;
//  - with --db postgres, the PostgreSQL server's own CPU is not in the figures (it shows under "other
//    processes", the machine's busy time outside this process, from /proc/stat, reported per step);
//  - late frames, carrier side: the emulator's shared media ticker handing a 20 ms caller frame to the
//    app more than 10 ms after its slot (emu.stats().ticker; max lag reported too);
//  - late frames, app side: the engine's Pacer has no late counter, so its pump/pause/clear are wrapped
//    here (src/engine/audio/pacer.ts is not changed): a frame that was queued and due, sent more than 20 ms
//    after its play-out time (the carrier had nothing to play: an audible gap). Max send lag is the
//    worst delay past a due send, the headroom being the pacer's 120 ms lead minus one frame.
// Step rule: a step passes if every call stays up, every caller utterance in the window is answered within
// 10 s, late frames on each side are ≤ 0.1 % of that side's frames (one event-loop stall > 10 ms makes a
// frame of every call late at once: 0.033 % of a 60 s window, so ≈ 3 short stalls a minute are tolerated),
// and response p99 ≤ 2 × the first step's p99. Stepping stops at the first failing step; max_calls is the
// last passing N (0 if the first step fails).
// Last line: one JSON object {max_calls, calls_per_core, cpu_pct_per_call, mem_mb_per_call,
// response_p99_ms, late_frames, …} (per-call figures and p99 from the max_calls step).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { monitorEventLoopDelay, performance, PerformanceObserver, constants as perfConstants } from 'node:perf_hooks';
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import pg from 'pg';
import { loadConfig } from '../../src/config.js';
import type { Clock } from '../../src/engine/clock.js';
import { Pacer } from '../../src/engine/audio/pacer.js';
import { loadSileroRuntime } from '../../src/engine/vad/index.js';
import { createLogger } from '../../src/log.js';
import { startServer } from '../../src/server.js';
import { startEmulator, type CallHandle, type Emulator } from '../../src/telephony/emulator/index.js';
import { startDeepgramFake } from '../../test/fakes/deepgram.js';
import { startOpenAIChatFake } from '../../test/fakes/openai.js';
import { speechAudio } from '../../test/fakes/speech.js';
import { activeSpan, fixture } from '../../test/engine/vad/audio.js';

const args = process.argv.slice(2);
const arg = (name: string, dflt: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1] : dflt;
};
const STEPS = arg('steps', '10,25,50,100').split(',').map(Number).filter((n) => n > 0);
const SECONDS = Number(arg('seconds', '60'));
const WARMUP = Number(arg('warmup', '5'));
const RAMP = Number(arg('ramp', '20'));
const DB = arg('db', 'pglite');
const VAD = arg('vad', 'silero');
const VAD_THREAD = arg('vad-thread', 'worker');
const SPEECH = arg('speech', 'tone');
/** Run every step even after one fails (for the table; max_calls still stops at the first failure). */
const NO_STOP = args.includes('--no-stop');
const PG_ADMIN = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
if (DB !== 'pglite' && DB !== 'postgres') throw new Error(`--db pglite|postgres, not ${DB}`);
if (VAD !== 'silero' && VAD !== 'energy') throw new Error(`--vad silero|energy, not ${VAD}`);
if (VAD_THREAD !== 'worker' && VAD_THREAD !== 'inline') throw new Error(`--vad-thread worker|inline, not ${VAD_THREAD}`);
if (SPEECH !== 'tone' && SPEECH !== 'fixture') throw new Error(`--speech tone|fixture, not ${SPEECH}`);

/**
 * Late frames tolerated per side, as a fraction of that side's frames: 0.1 %. One stall of the event loop
 * (a GC pause) longer than 10 ms makes one frame of every call late at once, i.e. 1/(50·S) of the frames
 * (0.033 % for S = 60), so this tolerates about three such stalls a minute and nothing steadier.
 */
const LATE_TOLERANCE = Number(arg('late-tolerance', '0.001'));
/** The emulator's lateness bound for a caller frame (its default: 10 ms). */
const LATE_AFTER_MS = Number(arg('late-after', '10'));
/** Response p99 may grow to this multiple of the first step's. */
const P99_GROWTH = 2;
const ANSWER_TIMEOUT_MS = 10_000;
/** The event-loop delay histogram's timer; its samples include it, so it is subtracted. */
const LOOP_RESOLUTION_MS = 10;
const AGENT_DONE_SILENCE_MS = 400;

const DG_KEY = 'dg-bench-calls';
const OPENAI_KEY = 'sk-bench-calls';
const LINE = '+14155550100';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const pct = (xs: number[], p: number) => {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
};
const r1 = (x: number) => Math.round(x * 10) / 10;
const r2 = (x: number) => Math.round(x * 100) / 100;
const r3 = (x: number) => Math.round(x * 1000) / 1000;
const stats = (xs: number[]) => ({ n: xs.length, p50: r1(pct(xs, 50)), p90: r1(pct(xs, 90)), p99: r1(pct(xs, 99)), max: r1(xs.length ? Math.max(...xs) : NaN) });

interface StepResult {
  calls: number;
  seconds: number;
  /** Calls with an open media stream at the start and at the end of the window. */
  upAtStart: number;
  upAtEnd: number;
  turns: number;
  unanswered: number;
  response: ReturnType<typeof stats>;
  cpuPctTotal: number;
  cpuPctPerCall: number;
  elu: number;
  loopDelayP99Ms: number;
  loopDelayMaxMs: number;
  /** Garbage-collection pauses in the window: count, total and longest (ms), and how many were major (mark-compact). */
  gc: { n: number; totalMs: number; maxMs: number; major: number; majorMaxMs: number };
  /** RSS after a full GC with the calls up, minus the same before them, / N. */
  rssMbPerCall: number;
  /** Mean RSS over the window (garbage included) minus the pre-call RSS, / N. */
  rssMeanMbPerCall: number;
  heapMbPerCall: number;
  rssMbBase: number;
  /** JS heap + external (ArrayBuffers, Buffers) after a full GC with the calls still up, above the same before them, / N. */
  liveMbPerCall: number;
  emu: { frames: number; late: number; maxLagMs: number; meanLagMs: number };
  app: { frames: number; late: number; maxSendLagMs: number; maxPlayoutLateMs: number };
  protocolViolations: number;
  setupS: number;
  loadAvg: number;
  /** CPU other processes took on this machine during the window, % of one core (Linux /proc/stat; null elsewhere). */
  othersCpuPct: number | null;
  /** The window on the monotonic clock V8's CPU profiles use (µs), and this process's pid: for profile.ts --window. */
  profileWindow: { pid: number; fromUs: number; toUs: number };
}

// ---------------------------------------------------------------------------------------------------
// App-side late frames: the engine's Pacer, observed from outside.

interface PacerInternals {
  clock: Clock;
  queued: number;
  paused: boolean;
  frameSamples: number;
  frameMs: number;
  leadMs: number;
  playEnd(): number;
  pump(): void;
  pause(): void;
  clear(): number;
  sendFrame(): void;
  /** Set by this bench: a full frame was waiting when pump last returned, due to go at this time. */
  benchDue?: number;
  benchPlayAt?: number;
}

const appFrames = { frames: 0, late: 0, maxSendLagMs: 0, maxPlayoutLateMs: 0 };

function observePacers(): void {
  const proto = Pacer.prototype as unknown as PacerInternals;
  const { pump, pause, clear, sendFrame } = proto;
  proto.pump = function (this: PacerInternals) {
    if (this.benchDue !== undefined) {
      // A full frame was queued and waiting for its send time: how far past it are we, and past its play-out?
      const now = this.clock.now();
      const lag = now - this.benchDue;
      if (lag > appFrames.maxSendLagMs) appFrames.maxSendLagMs = lag;
      const late = now - this.benchPlayAt!;
      if (late > appFrames.maxPlayoutLateMs) appFrames.maxPlayoutLateMs = late;
      if (late > 20) appFrames.late++;
      this.benchDue = undefined;
    }
    pump.call(this);
    if (this.queued >= this.frameSamples && !this.paused) {
      const playAt = this.playEnd();
      this.benchPlayAt = playAt;
      this.benchDue = playAt + this.frameMs - this.leadMs;
    }
  };
  proto.pause = function (this: PacerInternals) { this.benchDue = undefined; pause.call(this); };
  proto.clear = function (this: PacerInternals) { this.benchDue = undefined; return clear.call(this); };
  proto.sendFrame = function (this: PacerInternals) { appFrames.frames++; sendFrame.call(this); };
}

// ---------------------------------------------------------------------------------------------------
// One step, in its own process.

/** Busy CPU time of the whole machine so far (ms, all cores), from /proc/stat; null where there is none. */
function machineBusyMs(): number | null {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const [user, nice, system, , , irq, softirq, steal] = f;
    return ((user + nice + system + irq + softirq + steal) * 1000) / 100; // USER_HZ = 100
  } catch {
    return null;
  }
}

async function freshPostgres(): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `sb_bench_calls_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
  const c = new pg.Client({ connectionString: PG_ADMIN });
  await c.connect();
  await c.query(`CREATE DATABASE ${name}`);
  await c.end();
  const u = new URL(PG_ADMIN);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    drop: async () => {
      const d = new pg.Client({ connectionString: PG_ADMIN });
      await d.connect();
      await d.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await d.end();
    },
  };
}

/** What every caller says: the brief's speech-like tone (Silero hears no speech in it), or a recorded utterance. */
function callerSpeech(): Int16Array {
  if (SPEECH === 'tone') return speechAudio(1000, 8000);
  const u = fixture('utterance-8k.wav');
  const span = activeSpan(u);
  return u.samples.slice((span.startMs * 8000) / 1000, (span.endMs * 8000) / 1000);
}

interface Caller {
  call: CallHandle;
  done: Promise<void>;
  windowStartMs: number;
  windowEndMs: number;
}

async function runStep(n: number): Promise<StepResult> {
  setFlagsFromString('--expose_gc');
  const gc = runInNewContext('gc') as () => void;
  const tSetup = performance.now();
  observePacers();
  if (VAD === 'silero') await loadSileroRuntime(undefined, { thread: VAD_THREAD as 'worker' | 'inline' }); // once per process, before anything is measured

  const [emu, deepgram, openai] = await Promise.all([
    startEmulator({ keepAgentAudio: false, controlApi: false, lateAfterMs: LATE_AFTER_MS }),
    startDeepgramFake(DG_KEY),
    startOpenAIChatFake({ validKey: OPENAI_KEY, prefix: '/v1' }),
  ]);
  deepgram.stt.idleTimeoutMs = 600_000;
  const pgdb = DB === 'postgres' ? await freshPostgres() : null;
  const key = `sb_bench_${randomBytes(16).toString('hex')}`;
  const running = await startServer(loadConfig({
    PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'silent', DATA_DIR: 'memory://',
    ...(pgdb ? { DATABASE_URL: pgdb.url } : {}),
    SWITCHBOARD_SECRET_KEY: randomBytes(32).toString('hex'), SWITCHBOARD_BOOTSTRAP_API_KEY: key,
    TWILIO_API_BASE_URL: emu.url, DEEPGRAM_API_KEY: DG_KEY, DEEPGRAM_BASE_URL: deepgram.url,
    OPENAI_API_KEY: OPENAI_KEY, OPENAI_BASE_URL: `${openai.url}/v1`, SWITCHBOARD_VAD: VAD, SWITCHBOARD_VAD_THREAD: VAD_THREAD,
  }), { log: createLogger('silent'), print: () => {} });
  const api = async (path: string, body: unknown) => {
    const res = await fetch(running.url + path, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const json = await res.json() as Record<string, unknown>;
    if (res.status !== 201) throw new Error(`${path}: HTTP ${res.status} ${JSON.stringify(json)}`);
    return json;
  };
  const conn = await api('/v1/account_connections/create', {
    type: 'account_connection_twilio', credentials: { twilio_account_sid: emu.accountSid, twilio_auth_token: emu.authToken },
  });
  emu.addNumber(LINE);
  await api('/v1/numbers/link', {
    phone_number: LINE, telephony_account_connection: conn.id,
    inbound_agent: {
      prompt: { content: 'You are the front desk. Be brief.' }, voice: { type: 'voice_deepgram', model: 'aura-2-thalia-en' },
      initial_message: 'Hello, front desk.',
    },
  });

  const speech = callerSpeech();
  let stopAt = Infinity;
  let measuring = false;
  let turns = 0;
  let unanswered = 0;

  const startCaller = async (i: number): Promise<Caller> => {
    const call = await emu.placeInboundCall({ from: `+1555${String(i).padStart(7, '0')}`, to: LINE });
    const c: Caller = { call, done: Promise.resolve(), windowStartMs: NaN, windowEndMs: NaN };
    c.done = (async () => {
      await call.waitForStream(30_000);
      await call.waitForAgentAudio({ afterMs: 0, timeoutMs: 30_000 }); // the greeting
      await call.waitForAgentSilence(AGENT_DONE_SILENCE_MS, { timeoutMs: 30_000 });
      while (performance.now() < stopAt && (call.status === 'in-progress' || call.status === 'ringing')) {
        await call.sendAudio(speech);
        const end = call.now();
        const counted = measuring;
        try {
          await call.waitForAgentAudio({ afterMs: end, timeoutMs: ANSWER_TIMEOUT_MS });
          if (counted && measuring) turns++;
          await call.waitForAgentSilence(AGENT_DONE_SILENCE_MS, { timeoutMs: 30_000 });
        } catch {
          if (counted && measuring) unanswered++;
        }
        await sleep(300 + Math.random() * 900);
      }
    })().catch((err: unknown) => { if (performance.now() < stopAt) process.emitWarning(`caller ${i}: ${(err as Error).message}`); });
    return c;
  };

  // Warm-up (JIT, lazily loaded code, pools): two calls, one exchange each, then gone.
  const warm = await Promise.all([startCaller(900_001), startCaller(900_002)]);
  stopAt = performance.now() + 3000;
  await Promise.all(warm.map((w) => w.done));
  await Promise.all(warm.map(async (w) => { await w.call.hangup(); await w.call.waitForEnd(10_000).catch(() => {}); }));
  stopAt = Infinity;
  await sleep(500);
  gc();
  await sleep(200);
  gc();
  await sleep(300);
  const live = () => { const m = process.memoryUsage(); return m.heapUsed + m.external; };
  const rss0 = process.memoryUsage().rss;
  const heap0 = process.memoryUsage().heapUsed;
  const live0 = live();
  if (process.env.BENCH_CALLS_DEBUG) console.error(`before calls: rss ${(rss0 / 2 ** 20).toFixed(0)} MB, heap ${(heap0 / 2 ** 20).toFixed(0)} MB, external ${(process.memoryUsage().external / 2 ** 20).toFixed(0)} MB`);
  const setupS = (performance.now() - tSetup) / 1000;

  // The calls arrive, RAMP a second.
  const callers: Caller[] = [];
  for (let i = 0; i < n; i++) {
    callers.push(await startCaller(i + 1));
    await sleep(1000 / RAMP);
  }
  await sleep(WARMUP * 1000);

  // The measured window.
  const ticker = (emu as Emulator & { ticker?: { resetStats(): void } }).ticker;
  ticker?.resetStats();
  const emu0 = emu.stats().ticker;
  Object.assign(appFrames, { frames: 0, late: 0, maxSendLagMs: 0, maxPlayoutLateMs: 0 });
  const up = () => callers.filter((c) => c.call.streams.some((s) => s.isOpen)).length;
  const upAtStart = up();
  let t0 = performance.now();
  const gcs = { n: 0, totalMs: 0, maxMs: 0, major: 0, majorMaxMs: 0 };
  const gcObserver = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const major = (e as { detail?: { kind?: number } }).detail?.kind === perfConstants.NODE_PERFORMANCE_GC_MAJOR;
      gcs.n++;
      gcs.totalMs += e.duration;
      gcs.maxMs = Math.max(gcs.maxMs, e.duration);
      if (major) { gcs.major++; gcs.majorMaxMs = Math.max(gcs.majorMaxMs, e.duration); }
      if (process.env.BENCH_CALLS_DEBUG && e.duration > 5) console.error(`gc ${major ? 'major' : 'minor'} ${e.duration.toFixed(1)} ms at ${(performance.now() - t0).toFixed(0)}`);
    }
  });
  gcObserver.observe({ entryTypes: ['gc'] });
  let lastTick = performance.now();
  const stallTimer = process.env.BENCH_CALLS_DEBUG ? setInterval(() => { const t = performance.now(); if (t - lastTick > 25) console.error(`stall ${(t - lastTick).toFixed(1)} ms at ${(t - t0).toFixed(0)}`); lastTick = t; }, 5) : undefined;
  const loop = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
  loop.enable();
  for (const c of callers) c.windowStartMs = c.call.now();
  measuring = true;
  const rss: number[] = [];
  const heap: number[] = [];
  const elu0 = performance.eventLoopUtilization();
  const cpu0 = process.cpuUsage();
  const busy0 = machineBusyMs();
  t0 = performance.now();
  const hr0 = process.hrtime.bigint();
  while (performance.now() - t0 < SECONDS * 1000) {
    await sleep(500);
    const m = process.memoryUsage();
    rss.push(m.rss);
    heap.push(m.heapUsed);
  }
  const cpu = process.cpuUsage(cpu0);
  const busy1 = machineBusyMs();
  const wall = performance.now() - t0;
  const hr1 = process.hrtime.bigint();
  const elu = performance.eventLoopUtilization(elu0);
  loop.disable();
  gcObserver.disconnect();
  clearInterval(stallTimer);
  measuring = false;
  for (const c of callers) c.windowEndMs = c.call.now();
  const emu1 = emu.stats().ticker;
  const app = { ...appFrames };
  const upAtEnd = up();
  gc(); // the calls are still up: what stays after a full GC is theirs (measured as before them)
  await sleep(200);
  gc();
  await sleep(300);
  const live1 = live();
  const rss1 = process.memoryUsage().rss;

  const latencies: number[] = [];
  for (const c of callers) {
    for (const l of c.call.metrics().responseLatencies) {
      if (l.callerEndMs >= c.windowStartMs && l.callerEndMs < c.windowEndMs) latencies.push(l.latencyMs);
    }
  }
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const emuFrames = emu1.frames - (ticker ? 0 : emu0.frames);
  const result: StepResult = {
    calls: n, seconds: r1(wall / 1000), upAtStart, upAtEnd, turns, unanswered, response: stats(latencies),
    cpuPctTotal: r1(((cpu.user + cpu.system) / 1000 / wall) * 100),
    cpuPctPerCall: r3(((cpu.user + cpu.system) / 1000 / wall) * 100 / n),
    elu: r3(elu.utilization),
    loopDelayP99Ms: r1(loop.percentile(99) / 1e6 - LOOP_RESOLUTION_MS), loopDelayMaxMs: r1(loop.max / 1e6 - LOOP_RESOLUTION_MS),
    gc: { n: gcs.n, totalMs: r1(gcs.totalMs), maxMs: r1(gcs.maxMs), major: gcs.major, majorMaxMs: r1(gcs.majorMaxMs) },
    rssMbPerCall: r2((rss1 - rss0) / 2 ** 20 / n),
    rssMeanMbPerCall: r2((mean(rss) - rss0) / 2 ** 20 / n),
    heapMbPerCall: r2((mean(heap) - heap0) / 2 ** 20 / n),
    rssMbBase: r1(rss0 / 2 ** 20),
    liveMbPerCall: r2((live1 - live0) / 2 ** 20 / n),
    emu: {
      frames: emuFrames, late: emu1.lateFrames - (ticker ? 0 : emu0.lateFrames),
      maxLagMs: r1(emu1.maxLagMs), meanLagMs: r2((emu1.totalLagMs - (ticker ? 0 : emu0.totalLagMs)) / Math.max(1, emuFrames)),
    },
    app: { frames: app.frames, late: app.late, maxSendLagMs: r1(app.maxSendLagMs), maxPlayoutLateMs: r1(app.maxPlayoutLateMs) },
    protocolViolations: emu.protocolViolations.length,
    setupS: r1(setupS),
    loadAvg: r2(os.loadavg()[0]),
    othersCpuPct: busy0 === null || busy1 === null ? null : r1(Math.max(0, ((busy1 - busy0 - (cpu.user + cpu.system) / 1000) / wall) * 100)),
    profileWindow: { pid: process.pid, fromUs: Number(hr0 / 1000n), toUs: Number(hr1 / 1000n) },
  };

  // Tear down: callers stop, hang up; then the server (which records the calls as ended), the carrier and the fakes.
  stopAt = 0;
  await Promise.all(callers.map((c) => c.call.hangup()));
  await Promise.race([Promise.allSettled(callers.map((c) => c.call.waitForEnd(10_000))), sleep(10_000)]);
  await running.close();
  await Promise.all([emu.close(), deepgram.close(), openai.close()]);
  await pgdb?.drop();
  return result;
}

if (args.includes('--child-step')) {
  const r = await runStep(Number(arg('child-step', '10')));
  console.log(`STEP ${JSON.stringify(r)}`);
  process.exit(0);
}

// ---------------------------------------------------------------------------------------------------
// The driver: one fresh process per step, stepping up until a step fails.

function stepInChild(n: number): Promise<StepResult> {
  return new Promise((resolve, reject) => {
    // execArgv goes along, so `node --cpu-prof bin/run-ts.mjs bench/calls/run.ts …` profiles each step's process.
    const child = spawn(process.execPath, [...process.execArgv, process.argv[1], process.argv[2], ...args, '--child-step', String(n)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.on('error', reject);
    child.on('close', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('STEP '));
      if (code !== 0 || !line) reject(new Error(`step N=${n} exited ${code}: ${out.slice(-2000)}`));
      else resolve(JSON.parse(line.slice(5)) as StepResult);
    });
  });
}

const cores = os.availableParallelism();
const log = (s = '') => console.log(s);
const T0 = performance.now();
log(`calls bench — node ${process.version}, ${cores} cores (${os.cpus()[0]?.model ?? '?'}), load average ${os.loadavg().map(r2).join(' ')}`);
log(`db ${DB}, vad ${VAD}${VAD === 'silero' ? ` (${VAD_THREAD})` : ''}, caller speech ${SPEECH === 'tone' ? '1 s speech-like tone' : 'recorded 2.8 s utterance'}, steps ${STEPS.join(',')}, ${SECONDS} s measured per step after a ${RAMP}/s ramp and ${WARMUP} s warm-up`);
log('one process per step holds server + carrier emulator + vendor fakes: CPU and memory include the emulator\'s and the fakes\' share');
log(`pass: all calls up, every utterance answered, late frames (caller frames > ${LATE_AFTER_MS} ms late; agent frames > 20 ms past play-out) ≤ ${LATE_TOLERANCE * 100} % per side, response p99 ≤ ${P99_GROWTH} × the first step's\n`);

const HEAD = [
  'calls', 'turns', 'unans', 'resp p50', 'p90', 'p99', 'max', 'cpu %', '%/call', 'ELU', 'MB/call',
  'emu late/frames', 'emu lag', 'app late/frames', 'app lag', 'loop p99', 'ok',
];
const W = [5, 6, 5, 8, 6, 6, 6, 6, 7, 5, 7, 16, 7, 16, 7, 8, 4];
const row = (cells: (string | number)[]) => cells.map((c, i) => String(c).padStart(W[i])).join(' ');
log(row(HEAD));
log(row(W.map((w) => '-'.repeat(w))));

const results: (StepResult & { pass: boolean; why: string[] })[] = [];
let maxCalls = 0;
let failed = false;
for (const n of STEPS) {
  let r: StepResult;
  try {
    r = await stepInChild(n);
  } catch (err) {
    log(`N=${n}: ${(err as Error).message}`);
    break;
  }
  const why: string[] = [];
  if (r.upAtStart < n || r.upAtEnd < n) why.push(`calls up ${Math.min(r.upAtStart, r.upAtEnd)}/${n}`);
  if (r.unanswered > 0) why.push(`${r.unanswered} unanswered`);
  if (r.response.n === 0) why.push('no answers');
  if (r.emu.late > LATE_TOLERANCE * r.emu.frames) why.push(`emulator late frames ${r.emu.late}`);
  if (r.app.late > LATE_TOLERANCE * r.app.frames) why.push(`app late frames ${r.app.late}`);
  const base = results[0]?.response.p99 ?? r.response.p99;
  // (the first step's p99 is the baseline even when it failed on another count)
  if (r.response.p99 > P99_GROWTH * base) why.push(`p99 ${r.response.p99} > ${P99_GROWTH} × ${base} ms`);
  const pass = why.length === 0;
  results.push({ ...r, pass, why });
  log(row([
    n, r.turns, r.unanswered, r.response.p50, r.response.p90, r.response.p99, r.response.max, r.cpuPctTotal, r.cpuPctPerCall, r.elu,
    r.rssMbPerCall, `${r.emu.late}/${r.emu.frames}`, r.emu.maxLagMs, `${r.app.late}/${r.app.frames}`, r.app.maxSendLagMs, r.loopDelayP99Ms,
    pass ? 'yes' : 'NO',
  ]));
  if (!pass) log(`      N=${n} fails: ${why.join('; ')}`);
  if (pass && !failed) maxCalls = n;
  failed ||= !pass;
  if (failed && !NO_STOP) break;
}

log('\ncolumns: resp = end of caller speech → first agent audio heard (ms); cpu % = process CPU over the window (100 = one core);');
log('ELU = main-thread event-loop utilisation; MB/call = RSS (after GC) above the pre-call level; emu late = caller frames handed to the app');
log(`> ${LATE_AFTER_MS} ms after their slot, lag = worst (ms); app late = agent frames sent > 20 ms after their play-out time, lag = worst`);
log('delay past a due send (headroom 100 ms); loop p99 = event-loop delay p99 (ms).');
const profiling = process.execArgv.some((a) => a.startsWith('--cpu-prof'));
for (const r of results) log(`N=${r.calls}: setup ${r.setupS} s, base RSS ${r.rssMbBase} MB, window-mean RSS ${r.rssMeanMbPerCall} MB/call, heap ${r.heapMbPerCall} MB/call, live after GC ${r.liveMbPerCall} MB/call, emu mean lag ${r.emu.meanLagMs} ms, app worst play-out lateness ${r.app.maxPlayoutLateMs} ms, loop max ${r.loopDelayMaxMs} ms, protocol violations ${r.protocolViolations}, load avg ${r.loadAvg}, other processes ${r.othersCpuPct ?? '?'} % of a core, gc ${r.gc.n} pauses ${r.gc.totalMs} ms (max ${r.gc.maxMs}, ${r.gc.major} major max ${r.gc.majorMaxMs})${profiling ? `, profile of pid ${r.profileWindow.pid}: --window ${r.profileWindow.fromUs},${r.profileWindow.toUs}` : ''}`);

const best = results.find((r) => r.calls === maxCalls) ?? results[0];
const last = results.at(-1);
const summary = {
  max_calls: maxCalls,
  calls_per_core: r2(maxCalls / cores),
  cpu_pct_per_call: best?.cpuPctPerCall ?? null,
  mem_mb_per_call: best?.rssMbPerCall ?? null,
  response_p99_ms: best?.response.p99 ?? null,
  late_frames: best ? best.emu.late + best.app.late : null,
  emulator_late_frames: best?.emu.late ?? null,
  emulator_max_lag_ms: best?.emu.maxLagMs ?? null,
  app_late_frames: best?.app.late ?? null,
  live_mb_per_call: best?.liveMbPerCall ?? null,
  cores,
  // Projections from the largest step measured: where all cores would be busy, and where the one event loop
  // (everything but onnxruntime's own threads runs on it) would be.
  cpu_bound_calls_est: last ? Math.floor((cores * 100) / last.cpuPctPerCall) : null,
  event_loop_bound_calls_est: last && last.elu > 0 ? Math.floor(last.calls / last.elu) : null,
  db: DB, vad: VAD, vad_thread: VAD_THREAD, speech: SPEECH, seconds: SECONDS, late_after_ms: LATE_AFTER_MS, late_tolerance: LATE_TOLERANCE,
  stopped: results.find((r) => !r.pass) ? { calls: results.find((r) => !r.pass)!.calls, why: results.find((r) => !r.pass)!.why } : null,
  steps: results.map((r) => ({
    calls: r.calls, pass: r.pass, turns: r.turns, unanswered: r.unanswered, response: r.response, cpu_pct: r.cpuPctTotal,
    cpu_pct_per_call: r.cpuPctPerCall, elu: r.elu, mem_mb_per_call: r.rssMbPerCall, emu_late: r.emu.late, emu_frames: r.emu.frames,
    emu_max_lag_ms: r.emu.maxLagMs, app_late: r.app.late, app_frames: r.app.frames, app_max_send_lag_ms: r.app.maxSendLagMs,
    loop_delay_p99_ms: r.loopDelayP99Ms, gc_max_ms: r.gc.maxMs, others_cpu_pct: r.othersCpuPct,
  })),
  wall_s: r1((performance.now() - T0) / 1000),
};
log(`\nwall ${summary.wall_s} s`);
console.log(JSON.stringify(summary));
process.exit(0);
