// Concurrent phone calls through the whole stack: how many calls one core of Switchboard carries in real time.
//   npm run bench:calls -- [--steps 10,25,50,75,100] [--seconds 60] [--db pglite|postgres] [--vad silero|energy]
//                          [--vad-thread worker|inline] [--speech tone|fixture] [--warmup 5] [--ramp 20] [--no-stop]
//                          [--app-cpus 0] [--no-pin] [--app-node-flags "…"] [--late-after 10] [--late-tolerance 0.001]
//                          [--in-late-tolerance 0.01] [--repeat 1]
//   node --cpu-prof --cpu-prof-dir /tmp/prof bin/run-ts.mjs bench/calls/run.ts --steps 50 --seconds 30
//     then: node bin/run-ts.mjs bench/calls/profile.ts /tmp/prof/CPU.*.<app pid>.0.001.cpuprofile --window A,B
//     (every process writes its own profile; each step's detail line prints the app's pid and --window)
//   BENCH_CALLS_DEBUG=1 prints GC pauses > 5 ms (both processes) and harness stalls > 25 ms to stderr.
//
// Each step N runs two fresh processes, as a deployment would see it:
//  - the app (bench/calls/app.ts): the Switchboard server alone — API, carrier webhooks, media WebSockets,
//    engine, VAD (its worker thread included), PGlite in memory or a fresh PostgreSQL database dropped
//    afterwards. Pinned with taskset to --app-cpus (default: CPU 0, one core), so `calls_per_core` is what
//    one core carries; --no-pin lets it use the whole machine (calls_per_core then divides by all cores).
//    On one core it runs with node --single-threaded-gc (README: a process given one core should), unless
//    --app-node-flags says otherwise.
//  - the harness (this file, --child-step): the local carrier emulator (Twilio's REST API, signed webhooks,
//    TwiML, real-time Media Streams), the vendor fakes (Deepgram live STT and Aura TTS, OpenAI chat) and the
//    callers, pinned to the other CPUs. Its CPU is reported apart and is not the product's.
// The emulator runs each call on its own media clock (phases spread over the 20 ms frame, as on a real
// carrier), so the app gets the calls' frames spread over time, not all at once. N inbound calls arrive at
// --ramp calls/s; each goes carrier webhook (HTTP) → call record → <Connect><Stream> → media WebSocket
// → engine (VAD on every 20 ms frame) → Deepgram STT adapter → endpointing → OpenAI
// adapter → Deepgram TTS adapter → pacer → μ-law media back to the emulator, which plays it in real time.
// Every caller loops: ~1 s of speech, then silence until the agent's answer has played (400 ms without agent
// audio), a 0.3–1.2 s pause, again. The STT fake hears "hello" in every utterance and the chat fake answers
// "Hello there." (their defaults: no per-call scripting). After the ramp and --warmup seconds, --seconds are
// measured:
//  - response latency: end of the caller's audio → first agent audio heard, from the emulator's
//    call.metrics() (what a caller would hear, incl. the STT fake's 300 ms endpointing);
//  - the app's CPU (process.cpuUsage: all its threads), event-loop utilisation and delay, GC pauses;
//  - the app's memory: RSS after a full GC with the calls up minus the same before them (after 2 warm-up
//    calls), / N; also its window-mean RSS and JS heap + external after GC, per call. RSS moves by ±20 MB
//    on its own (V8 and PGlite release pages late), so below ~25 calls the RSS figure is noise;
//  - late frames, from the server's own counters (the /metrics switchboard_media_frames_late_total):
//    caller frames that reached the app > 20 ms behind the carrier's media timestamps (the app's event loop
//    was busy, or the harness sent late), and agent frames the pacer sent > 20 ms after their play-out time
//    although they were ready (the caller heard a gap);
//  - the harness's health: the emulator's media ticker handing a caller frame over > --late-after ms after
//    its slot. A late harness also shows as late caller frames at the app;
//  - with --db postgres, the PostgreSQL server's CPU shows under "other processes" (the machine's busy time
//    outside both processes, from /proc/stat).
// Step rule: a step passes if every call stays up, every caller utterance in the window is answered within
// 10 s, agent frames sent late (the gaps a caller hears) are ≤ 0.1 % of them (one event-loop stall > 20 ms
// makes a frame of every speaking call late at once), caller frames reaching the app > 20 ms late are ≤ 1 %
// (their p99 within one frame: the caller does not hear these, a late one only delays what the agent hears),
// the harness handed over ≤ 1 % of caller frames late (else its figures are not the app's), and response
// p99 ≤ 2 × the first step's p99. Stepping stops at the first failing step; max_calls is the last passing N
// (0 if the first step fails). With --repeat R each step runs R times and passes when most runs do.
// Last line: one JSON object {max_calls, calls_per_core, cpu_pct_per_call, mem_mb_per_call, response_p99_ms,
// late_frames, …} (per-call figures and p99 from the max_calls step; CPU and memory are the app's).
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { performance, PerformanceObserver, constants as perfConstants } from 'node:perf_hooks';
import { startEmulator, type CallHandle } from '../../src/telephony/emulator/index.js';
import { startDeepgramFake, type DeepgramFake } from '../../test/fakes/deepgram.js';
import { startOpenAIChatFake } from '../../test/fakes/openai.js';
import { speechAudio } from '../../test/fakes/speech.js';
import { activeSpan, fixture } from '../../test/engine/vad/audio.js';
import { r1, r2, r3, summary } from '../lib/stats.js';
import type { AppStart, AppWindow, FromApp, ToApp } from './app.js';
import { argReader } from '../lib/cli.js';

const args = process.argv.slice(2);
const arg = argReader(args);
const STEPS = arg('steps', '10,25,50,75,100').split(',').map(Number).filter((n) => n > 0);
const SECONDS = Number(arg('seconds', '60'));
const WARMUP = Number(arg('warmup', '5'));
const RAMP = Number(arg('ramp', '20'));
const DB = arg('db', 'pglite');
const VAD = arg('vad', 'silero');
const VAD_THREAD = arg('vad-thread', 'worker');
const SPEECH = arg('speech', 'tone');
/** Run every step even after one fails (for the table; max_calls still stops at the first failure). */
const NO_STOP = args.includes('--no-stop');
/**
 * Runs per step (fresh processes each). A shared VM's speed drifts over minutes (the same step has taken 0.76
 * and 1.18 % of the core per call within the hour), and late caller frames follow it: with --repeat 3 a step
 * passes when most of its runs do and reports its median run (by late caller frames).
 */
const REPEAT = Math.max(1, Number(arg('repeat', '1')));
const PG_ADMIN = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
if (DB !== 'pglite' && DB !== 'postgres') throw new Error(`--db pglite|postgres, not ${DB}`);
if (VAD !== 'silero' && VAD !== 'energy') throw new Error(`--vad silero|energy, not ${VAD}`);
if (VAD_THREAD !== 'worker' && VAD_THREAD !== 'inline') throw new Error(`--vad-thread worker|inline, not ${VAD_THREAD}`);
if (SPEECH !== 'tone' && SPEECH !== 'fixture') throw new Error(`--speech tone|fixture, not ${SPEECH}`);

const cores = os.availableParallelism();
/** CPUs of the app and of the harness (taskset lists), or null when not pinned. */
const PIN = (() => {
  if (args.includes('--no-pin') || cores < 2) return null;
  const app = cpuList(arg('app-cpus', '0'));
  const harness = Array.from({ length: cores }, (_, i) => i).filter((c) => !app.includes(c));
  if (!app.length || !harness.length) throw new Error(`--app-cpus must leave the harness at least one of CPUs 0-${cores - 1}`);
  return { app, harness };
})();
/** Cores the app may use: what calls_per_core divides by. */
const APP_CORES = PIN ? PIN.app.length : cores;
/**
 * Node flags for the app process only (`--app-node-flags ""` for none). Default on one core:
 * --single-threaded-gc, as README advises for a process given one core (V8's parallel GC helpers would only
 * take turns with the main thread there).
 */
const APP_NODE_FLAGS = (args.includes('--app-node-flags') ? arg('app-node-flags', '') : APP_CORES === 1 ? '--single-threaded-gc' : '').split(' ').filter(Boolean);

function cpuList(spec: string): number[] {
  const out = new Set<number>();
  for (const part of spec.split(',')) {
    const [a, b] = part.split('-').map(Number);
    for (let c = a; c <= (Number.isFinite(b) ? b : a); c++) if (c >= 0 && c < cores) out.add(c);
  }
  return [...out].sort((x, y) => x - y);
}

/**
 * Late frames tolerated per kind, as a fraction of that kind's frames: 0.1 %. One stall of an event loop (a
 * GC pause) longer than 20 ms makes one frame of every call late at once, i.e. 1/(50·S) of the frames
 * (0.033 % for S = 60), so this tolerates about three such stalls a minute and nothing steadier.
 */
const LATE_TOLERANCE = Number(arg('late-tolerance', '0.001'));
/**
 * Caller frames reaching the app > 20 ms behind the carrier's pace, tolerated: 1 %, i.e. their p99 stays within
 * one frame. A caller never hears these: a late caller frame only delays what the agent hears by as much (the
 * response p99 rule covers that), and the figure includes the harness's own send jitter.
 */
const IN_LATE_TOLERANCE = Number(arg('in-late-tolerance', '0.01'));
/** The harness itself may hand over this share of caller frames late before its figures are not trusted. */
const HARNESS_LATE_TOLERANCE = 0.01;
/** The emulator's lateness bound for handing over a caller frame (its default: 10 ms). */
const LATE_AFTER_MS = Number(arg('late-after', '10'));
/** Response p99 may grow to this multiple of the first step's. */
const P99_GROWTH = 2;
const ANSWER_TIMEOUT_MS = 10_000;
const AGENT_DONE_SILENCE_MS = 400;

const DG_KEY = 'dg-bench-calls';
const OPENAI_KEY = 'sk-bench-calls';
const LINE = '+14155550100';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const stats = (xs: number[]) => summary(xs, r1);

interface StepResult {
  calls: number;
  seconds: number;
  /** Calls with an open media stream at the start and at the end of the window. */
  upAtStart: number;
  upAtEnd: number;
  turns: number;
  unanswered: number;
  response: ReturnType<typeof stats>;
  /** The app's CPU over the window, % of one core, and per call. */
  cpuPctTotal: number;
  cpuPctPerCall: number;
  elu: number;
  loopDelayP99Ms: number;
  loopDelayMaxMs: number;
  /** The app's garbage-collection pauses in the window: count, total and longest (ms), and how many were major (mark-compact). */
  gc: AppWindow['gc'];
  /** The app's RSS after a full GC with the calls up, minus the same before them, / N. */
  rssMbPerCall: number;
  /** Mean RSS over the window (garbage included) minus the pre-call RSS, / N. */
  rssMeanMbPerCall: number;
  heapMbPerCall: number;
  rssMbBase: number;
  /** The app's JS heap after a full GC before the calls (what a major GC has to mark). */
  heapMbBase: number;
  /** JS heap + external (ArrayBuffers, Buffers) after a full GC with the calls still up, above the same before them, / N. */
  liveMbPerCall: number;
  /** Caller frames the app received late / in all; agent frames it sent late / in all. */
  app: { framesIn: number; lateIn: number; framesOut: number; lateOut: number };
  /** The harness's own media ticker: caller frames it handed over late. */
  emu: { frames: number; late: number; maxLagMs: number; meanLagMs: number };
  harnessCpuPct: number;
  protocolViolations: number;
  /** Audio messages the app sent the STT vendor, per call and second (50 = one per 20 ms frame). */
  sttMessagesPerCallS: number;
  setupS: number;
  loadAvg: number;
  /** CPU other processes took on this machine during the window, % of one core (Linux /proc/stat; null elsewhere). */
  othersCpuPct: number | null;
  /** The app's measured window on the monotonic clock V8's CPU profiles use (µs), and its pid: for profile.ts --window. */
  profileWindow: AppWindow['profileWindow'];
}

// ---------------------------------------------------------------------------------------------------
// One step: this process is the harness; the app runs in a child of it.

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

/** What every caller says: the brief's speech-like tone (Silero hears no speech in it), or a recorded utterance. */
function callerSpeech(): Int16Array {
  if (SPEECH === 'tone') return speechAudio(1000, 8000);
  const u = fixture('utterance-8k.wav');
  const span = activeSpan(u);
  return u.samples.slice((span.startMs * 8000) / 1000, (span.endMs * 8000) / 1000);
}

/** `node [execArgv] [flags] bin/run-ts.mjs FILE …`, under taskset when pinned; execArgv goes along (--cpu-prof). */
function nodeCommand(file: string, rest: string[], cpus: number[] | undefined, flags: string[] = []): [string, string[]] {
  const argv = [...process.execArgv, ...flags, process.argv[1], file, ...rest];
  return cpus ? ['taskset', ['-c', cpus.join(','), process.execPath, ...argv]] : [process.execPath, argv];
}

/** The app process and a request/response over its IPC channel (one request at a time). */
async function startApp(config: AppStart) {
  const [cmd, argv] = nodeCommand(fileURLToPath(new URL('./app.ts', import.meta.url)), [], PIN?.app, APP_NODE_FLAGS);
  // (its stdout goes to stderr: this process's stdout carries only the step's result)
  const child: ChildProcess = spawn(cmd, argv, { stdio: ['ignore', 2, 2, 'ipc'] });
  const exited = new Promise<never>((_, reject) => child.on('exit', (code) => reject(new Error(`the app process exited (${code})`))));
  exited.catch(() => {});
  const ask = <T extends FromApp['type']>(msg: ToApp, answer: T): Promise<Extract<FromApp, { type: T }>> =>
    Promise.race([exited, new Promise<Extract<FromApp, { type: T }>>((resolve) => {
      const on = (m: FromApp) => { if (m.type === answer) { child.off('message', on); resolve(m as Extract<FromApp, { type: T }>); } };
      child.on('message', on);
      child.send(msg);
    })]);
  const ready = await ask({ type: 'start', config }, 'ready');
  return { ...ready, ask, kill: () => child.kill('SIGKILL') };
}

interface Caller {
  call: CallHandle;
  done: Promise<void>;
  windowStartMs: number;
  windowEndMs: number;
}

async function runStep(n: number): Promise<StepResult> {
  const tSetup = performance.now();
  const [emu, deepgram, openai] = await Promise.all([
    startEmulator({ keepAgentAudio: false, controlApi: false, lateAfterMs: LATE_AFTER_MS }),
    startDeepgramFake(DG_KEY),
    startOpenAIChatFake({ validKey: OPENAI_KEY, prefix: '/v1' }),
  ]);
  deepgram.stt.idleTimeoutMs = 600_000;
  const app = await startApp({
    db: DB as AppStart['db'], pgAdmin: PG_ADMIN, vad: VAD as AppStart['vad'], vadThread: VAD_THREAD as AppStart['vadThread'],
    env: {
      TWILIO_API_BASE_URL: emu.url, DEEPGRAM_API_KEY: DG_KEY, DEEPGRAM_BASE_URL: deepgram.url,
      OPENAI_API_KEY: OPENAI_KEY, OPENAI_BASE_URL: `${openai.url}/v1`,
    },
  });
  try {
    return await measure(n, app, emu, deepgram, tSetup);
  } finally {
    await app.ask({ type: 'close' }, 'closed').catch(() => app.kill());
    await Promise.all([emu.close(), deepgram.close(), openai.close()]);
  }
}

async function measure(n: number, app: Awaited<ReturnType<typeof startApp>>, emu: Awaited<ReturnType<typeof startEmulator>>, deepgram: DeepgramFake, tSetup: number): Promise<StepResult> {
  const api = async (path: string, body: unknown) => {
    const res = await fetch(app.url + path, { method: 'POST', headers: { authorization: `Bearer ${app.key}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
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
  const before = await app.ask({ type: 'settle' }, 'settled');
  const setupS = (performance.now() - tSetup) / 1000;

  // The calls arrive, RAMP a second.
  const callers: Caller[] = [];
  for (let i = 0; i < n; i++) {
    callers.push(await startCaller(i + 1));
    await sleep(1000 / RAMP);
  }
  await sleep(WARMUP * 1000);

  // The measured window.
  const up = () => callers.filter((c) => c.call.streams.some((s) => s.isOpen)).length;
  const upAtStart = up();
  let t0 = performance.now();
  const debug = process.env.BENCH_CALLS_DEBUG;
  const gcObserver = debug ? new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const major = (e as { detail?: { kind?: number } }).detail?.kind === perfConstants.NODE_PERFORMANCE_GC_MAJOR;
      if (e.duration > 5) console.error(`harness gc ${major ? 'major' : 'minor'} ${e.duration.toFixed(1)} ms at ${(performance.now() - t0).toFixed(0)}`);
    }
  }) : undefined;
  gcObserver?.observe({ entryTypes: ['gc'] });
  let lastTick = performance.now();
  const stallTimer = debug ? setInterval(() => { const t = performance.now(); if (t - lastTick > 25) console.error(`harness stall ${(t - lastTick).toFixed(1)} ms at ${(t - t0).toFixed(0)}`); lastTick = t; }, 5) : undefined;
  await app.ask({ type: 'window-begin' }, 'window-begun');
  emu.resetStats();
  for (const c of callers) c.windowStartMs = c.call.now();
  measuring = true;
  const cpu0 = process.cpuUsage();
  const busy0 = machineBusyMs();
  const sttMessages0 = deepgram.stt.audioMessages;
  t0 = performance.now();
  await sleep(SECONDS * 1000);
  const cpu = process.cpuUsage(cpu0);
  const busy1 = machineBusyMs();
  const sttMessages = deepgram.stt.audioMessages - sttMessages0;
  const wall = performance.now() - t0;
  const { window: w } = await app.ask({ type: 'window-end' }, 'window');
  const emuStats = emu.stats().ticker;
  gcObserver?.disconnect();
  clearInterval(stallTimer);
  measuring = false;
  for (const c of callers) c.windowEndMs = c.call.now();
  const upAtEnd = up();
  const after = await app.ask({ type: 'settle' }, 'settled'); // the calls are still up: what stays after a full GC is theirs

  const latencies: number[] = [];
  for (const c of callers) {
    for (const l of c.call.metrics().responseLatencies) {
      if (l.callerEndMs >= c.windowStartMs && l.callerEndMs < c.windowEndMs) latencies.push(l.latencyMs);
    }
  }
  const harnessCpuMs = (cpu.user + cpu.system) / 1000;
  const result: StepResult = {
    calls: n, seconds: r1(w.wallMs / 1000), upAtStart, upAtEnd, turns, unanswered, response: stats(latencies),
    cpuPctTotal: r1((w.cpuMs / w.wallMs) * 100),
    cpuPctPerCall: r3((w.cpuMs / w.wallMs) * 100 / n),
    elu: r3(w.elu), loopDelayP99Ms: r1(w.loopDelayP99Ms), loopDelayMaxMs: r1(w.loopDelayMaxMs),
    gc: { n: w.gc.n, totalMs: r1(w.gc.totalMs), maxMs: r1(w.gc.maxMs), major: w.gc.major, majorMaxMs: r1(w.gc.majorMaxMs) },
    rssMbPerCall: r2((after.rss - before.rss) / 2 ** 20 / n),
    rssMeanMbPerCall: r2((w.rssMean - before.rss) / 2 ** 20 / n),
    heapMbPerCall: r2((w.heapMean - before.heap) / 2 ** 20 / n),
    rssMbBase: r1(before.rss / 2 ** 20),
    heapMbBase: r1(before.heap / 2 ** 20),
    liveMbPerCall: r2((after.live - before.live) / 2 ** 20 / n),
    app: w.media,
    emu: { frames: emuStats.frames, late: emuStats.lateFrames, maxLagMs: r1(emuStats.maxLagMs), meanLagMs: r2(emuStats.totalLagMs / Math.max(1, emuStats.frames)) },
    harnessCpuPct: r1((harnessCpuMs / wall) * 100),
    protocolViolations: emu.protocolViolations.length,
    sttMessagesPerCallS: r1(sttMessages / n / (wall / 1000)),
    setupS: r1(setupS),
    loadAvg: r2(os.loadavg()[0]),
    othersCpuPct: busy0 === null || busy1 === null ? null : r1(Math.max(0, ((busy1 - busy0 - harnessCpuMs - w.cpuMs) / wall) * 100)),
    profileWindow: w.profileWindow,
  };

  // Callers stop and hang up; closing the app then records any call still up as ended.
  stopAt = 0;
  await Promise.all(callers.map((c) => c.call.hangup()));
  await Promise.race([Promise.allSettled(callers.map((c) => c.call.waitForEnd(10_000))), sleep(10_000)]);
  return result;
}

if (args.includes('--child-step')) {
  const r = await runStep(Number(arg('child-step', '10')));
  console.log(`STEP ${JSON.stringify(r)}`);
  process.exit(0);
}

// ---------------------------------------------------------------------------------------------------
// The driver: one fresh pair of processes per step, stepping up until a step fails.

function stepInChild(n: number): Promise<StepResult> {
  return new Promise((resolve, reject) => {
    const [cmd, argv] = nodeCommand(process.argv[2], [...args, '--child-step', String(n)], PIN?.harness);
    const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'inherit'] });
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

const log = (s = '') => console.log(s);
const T0 = performance.now();
const pct = (part: number, all: number) => (all ? `${r2((100 * part) / all)} %` : '—');
log(`calls bench — node ${process.version}, ${cores} cores (${os.cpus()[0]?.model ?? '?'}), load average ${os.loadavg().map(r2).join(' ')}`);
log(`db ${DB}, vad ${VAD}${VAD === 'silero' ? ` (${VAD_THREAD})` : ''}, caller speech ${SPEECH === 'tone' ? '1 s speech-like tone' : 'recorded 2.8 s utterance'}, steps ${STEPS.join(',')}, ${SECONDS} s measured per step after a ${RAMP}/s ramp and ${WARMUP} s warm-up`);
log(PIN
  ? `the app (Switchboard server${APP_NODE_FLAGS.length ? `, node ${APP_NODE_FLAGS.join(' ')}` : ''}) is pinned to CPU ${PIN.app.join(',')}; the harness (carrier emulator, vendor fakes, callers) to CPU ${PIN.harness.join(',')}`
  : `no pinning: the app and the harness share all ${cores} cores`);
log(`pass: all calls up, every utterance answered, late agent frames (> 20 ms past play-out: a gap the caller hears) ≤ ${LATE_TOLERANCE * 100} %, caller frames reaching the app > 20 ms behind the carrier's timestamps ≤ ${IN_LATE_TOLERANCE * 100} % (their p99 within a frame), the harness late (> ${LATE_AFTER_MS} ms) on ≤ ${HARNESS_LATE_TOLERANCE * 100} %, response p99 ≤ ${P99_GROWTH} × the first step's\n`);

const HEAD = [
  'calls', 'turns', 'unans', 'resp p50', 'p90', 'p99', 'max', 'app cpu%', '%/call', 'ELU', 'loop p99', 'MB/call',
  'in late', 'out late', 'harness late', 'harn cpu%', 'ok',
];
const W = [5, 6, 5, 8, 6, 6, 6, 8, 7, 5, 8, 7, 10, 10, 12, 9, 4];
const row = (cells: (string | number)[]) => cells.map((c, i) => String(c).padStart(W[i])).join(' ');
log(row(HEAD));
log(row(W.map((w) => '-'.repeat(w))));

type Judged = StepResult & { pass: boolean; why: string[]; runsPassed?: number; runs?: number };
const results: Judged[] = [];
let maxCalls = 0;
let failed = false;
steps: for (const n of STEPS) {
  const runs: Judged[] = [];
  for (let i = 0; i < REPEAT; i++) {
    let r: StepResult;
    try {
      r = await stepInChild(n);
    } catch (err) {
      log(`N=${n}: ${(err as Error).message}`);
      break steps;
    }
    const j = judge(r, n);
    runs.push(j);
    log(row([
      n, r.turns, r.unanswered, r.response.p50, r.response.p90, r.response.p99, r.response.max, r.cpuPctTotal, r.cpuPctPerCall, r.elu,
      r.loopDelayP99Ms, r.rssMbPerCall, pct(r.app.lateIn, r.app.framesIn), pct(r.app.lateOut, r.app.framesOut), pct(r.emu.late, r.emu.frames),
      r.harnessCpuPct, j.pass ? 'yes' : 'NO',
    ]));
    if (!j.pass) log(`      N=${n}${REPEAT > 1 ? ` run ${i + 1}` : ''} fails: ${j.why.join('; ')}`);
  }
  // The step stands for its median run (by late caller frames) and passes when most of its runs did.
  const median = [...runs].sort((a, b) => a.app.lateIn / a.app.framesIn - b.app.lateIn / b.app.framesIn)[Math.floor((runs.length - 1) / 2)];
  const runsPassed = runs.filter((x) => x.pass).length;
  const pass = runsPassed * 2 > runs.length;
  if (REPEAT > 1) log(`      N=${n}: ${runsPassed} of ${runs.length} runs pass; the step ${pass ? 'passes' : 'fails'}, with the figures of its median run`);
  results.push({ ...median, pass, why: pass ? [] : median.why.length ? median.why : ['most runs failed'], runs: runs.length, runsPassed });
  if (pass && !failed) maxCalls = n;
  failed ||= !pass;
  if (failed && !NO_STOP) break;
}

function judge(r: StepResult, n: number): Judged {
  const why: string[] = [];
  if (r.upAtStart < n || r.upAtEnd < n) why.push(`calls up ${Math.min(r.upAtStart, r.upAtEnd)}/${n}`);
  if (r.unanswered > 0) why.push(`${r.unanswered} unanswered`);
  if (r.response.n === 0) why.push('no answers');
  if (r.app.lateOut > LATE_TOLERANCE * r.app.framesOut) why.push(`late agent frames ${r.app.lateOut}`);
  if (r.app.lateIn > IN_LATE_TOLERANCE * r.app.framesIn) why.push(`late caller frames at the app ${r.app.lateIn}`);
  if (r.emu.late > HARNESS_LATE_TOLERANCE * r.emu.frames) why.push(`harness late ${r.emu.late} frames (its figures are unreliable)`);
  const base = results[0]?.response.p99 ?? r.response.p99;
  // (the first step's p99 is the baseline even when it failed on another count)
  if (r.response.p99 > P99_GROWTH * base) why.push(`p99 ${r.response.p99} > ${P99_GROWTH} × ${base} ms`);
  return { ...r, pass: why.length === 0, why };
}

log('\ncolumns: resp = end of caller speech → first agent audio heard (ms); app cpu% = the app process\'s CPU over the window');
log('(100 = one core; all its threads); ELU = its main thread\'s event-loop utilisation; loop p99 = its event-loop delay p99 (ms);');
log('MB/call = its RSS (after GC) above the pre-call level; in late = caller frames reaching the app > 20 ms behind the carrier\'s');
log(`timestamps; out late = agent frames sent > 20 ms past play-out; harness late = caller frames the emulator handed over > ${LATE_AFTER_MS} ms late;`);
log('harn cpu% = the harness process (emulator, fakes, callers).');
const profiling = process.execArgv.some((a) => a.startsWith('--cpu-prof'));
for (const r of results) log(`N=${r.calls}: setup ${r.setupS} s, app base RSS ${r.rssMbBase} MB, heap ${r.heapMbBase} MB, window-mean RSS ${r.rssMeanMbPerCall} MB/call, heap ${r.heapMbPerCall} MB/call, live after GC ${r.liveMbPerCall} MB/call, frames in ${r.app.lateIn}/${r.app.framesIn} late, out ${r.app.lateOut}/${r.app.framesOut} late, harness ${r.emu.late}/${r.emu.frames} late (max ${r.emu.maxLagMs} ms, mean ${r.emu.meanLagMs} ms), app loop max ${r.loopDelayMaxMs} ms, STT audio messages ${r.sttMessagesPerCallS}/s a call, protocol violations ${r.protocolViolations}, load avg ${r.loadAvg}, other processes ${r.othersCpuPct ?? '?'} % of a core, app gc ${r.gc.n} pauses ${r.gc.totalMs} ms (max ${r.gc.maxMs}, ${r.gc.major} major max ${r.gc.majorMaxMs})${profiling ? `, app profile pid ${r.profileWindow.pid}: --window ${r.profileWindow.fromUs},${r.profileWindow.toUs}` : ''}`);

const best = results.find((r) => r.calls === maxCalls) ?? results[0];
const last = results.at(-1);
const failure = results.find((r) => !r.pass);
const summaryLine = {
  max_calls: maxCalls,
  calls_per_core: r2(maxCalls / APP_CORES),
  cpu_pct_per_call: best?.cpuPctPerCall ?? null,
  mem_mb_per_call: best?.rssMbPerCall ?? null,
  response_p99_ms: best?.response.p99 ?? null,
  // What the caller hears late: agent frames past their play-out time.
  late_frames: best?.app.lateOut ?? null,
  late_caller_frames: best?.app.lateIn ?? null,
  late_caller_frames_pct: best ? r3((100 * best.app.lateIn) / Math.max(1, best.app.framesIn)) : null,
  harness_late_frames: best?.emu.late ?? null,
  live_mb_per_call: best?.liveMbPerCall ?? null,
  cores, app_cores: APP_CORES, pinned: PIN ? { app: PIN.app, harness: PIN.harness } : null,
  // Projections from the largest step measured: where the app's cores would be busy, and where its one event
  // loop (everything but the VAD worker and onnxruntime's threads runs on it) would be.
  cpu_bound_calls_est: last ? Math.floor((APP_CORES * 100) / last.cpuPctPerCall) : null,
  event_loop_bound_calls_est: last && last.elu > 0 ? Math.floor(last.calls / last.elu) : null,
  db: DB, vad: VAD, vad_thread: VAD_THREAD, speech: SPEECH, seconds: SECONDS, repeat: REPEAT, app_node_flags: APP_NODE_FLAGS.join(' '),
  late_after_ms: LATE_AFTER_MS, late_tolerance: LATE_TOLERANCE, in_late_tolerance: IN_LATE_TOLERANCE,
  stopped: failure ? { calls: failure.calls, why: failure.why } : null,
  steps: results.map((r) => ({
    calls: r.calls, pass: r.pass, runs: r.runs, runs_passed: r.runsPassed, turns: r.turns, unanswered: r.unanswered, response: r.response, cpu_pct: r.cpuPctTotal,
    cpu_pct_per_call: r.cpuPctPerCall, elu: r.elu, loop_delay_p99_ms: r.loopDelayP99Ms, mem_mb_per_call: r.rssMbPerCall,
    frames_in: r.app.framesIn, late_in: r.app.lateIn, frames_out: r.app.framesOut, late_out: r.app.lateOut,
    harness_frames: r.emu.frames, harness_late: r.emu.late, harness_max_lag_ms: r.emu.maxLagMs, harness_cpu_pct: r.harnessCpuPct, stt_messages_per_call_s: r.sttMessagesPerCallS,
    gc_max_ms: r.gc.maxMs, others_cpu_pct: r.othersCpuPct,
  })),
  wall_s: r1((performance.now() - T0) / 1000),
};
log(`\nwall ${summaryLine.wall_s} s`);
console.log(JSON.stringify(summaryLine));
process.exit(0);
