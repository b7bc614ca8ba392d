// The conversation engine under real time: what the platform itself adds to a call.
//   node bin/run-ts.mjs bench/engine/run.ts [--turns 1000] [--parallel 10] [--barges 200] [--calls 50,100] [--seconds 20]
//
// (a) Response latency: STT final (endOfTurn) → first agent frame handed to the transport, from the
//     Conversation's `metrics` events, with zero-latency scripted providers, endpointing 'sensitive' (no
//     endpoint wait), RealClock and real 20 ms frames; several conversations in parallel. The scripted
//     providers' 0 ms sleeps are made synchronous (they would otherwise each cost one Node timer tick,
//     ≥ 1 ms, that a real streaming vendor does not add); a second, shorter run keeps them as timers.
// (b) Barge-in: the caller's speech onset (the STT's speech_started) → the engine pausing its output
//     (pacer.pause) or clearing the carrier buffer (transport.clear), whichever comes first; and the same
//     from the caller's audio onset through Silero VAD alone (STT silent until its final).
// (c) Load: N concurrent calls (50, 100) in one process at real time, each with Silero VAD, a μ-law
//     carrier edge in both directions (inbound: Twilio-style JSON media message → base64 → μ-law → PCM16
//     8 kHz every 20 ms; outbound: PCM16 → μ-law → base64 → JSON), callers speaking, backchanneling and
//     barging in over the agent. CPU is process.cpuUsage() (all threads, onnxruntime's included) over the
//     measured window; memory is RSS above the process's level before the calls were created; a late frame
//     is one the pacer hands over more than 20 ms after its play-out time on the call's timeline.
// Targets (reported, not asserted): response p99 ≤ 15 ms, barge-in ≤ 250 ms, ≤ 2 % of a core and ≤ 5 MB per call.
// Last line: one JSON object with the headline figures (load figures for the largest N).
import { spawn } from 'node:child_process';
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import type { AudioFrame } from '../../src/engine/audio/frame.js';
import { decodeMuLaw, encodeMuLaw } from '../../src/engine/audio/g711.js';
import { Pacer } from '../../src/engine/audio/pacer.js';
import { RealClock } from '../../src/engine/clock.js';
import { Conversation, ENGINE_AGENT_DEFAULTS, type EngineAgent, type TurnMetrics } from '../../src/engine/conversation.js';
import { ScriptedLlm } from '../../src/engine/testkit/scriptedLlm.js';
import { ScriptedStt } from '../../src/engine/testkit/scriptedStt.js';
import { ScriptedTts } from '../../src/engine/testkit/scriptedTts.js';
import type { SpeechToText, SttEvent, SttSession, Transport, TransportEvent } from '../../src/engine/types.js';
import { createVad, loadSileroRuntime, type VadEvent, type VoiceActivityDetector } from '../../src/engine/vad/index.js';
import { activeSpan, fixture, pinkNoise, toInt16 } from '../../test/engine/vad/audio.js';
import { pct, r2, summary as stats } from '../lib/stats.js';
import { argReader } from '../lib/cli.js';

const args = process.argv.slice(2);
const arg = argReader(args);
const TURNS = Number(arg('turns', '1000'));
const PARALLEL = Number(arg('parallel', '10'));
const BARGES = Number(arg('barges', '200'));
const CALLS = arg('calls', '50,100').split(',').map(Number);
const SECONDS = Number(arg('seconds', '20'));

setFlagsFromString('--expose_gc');
const gc = runInNewContext('gc') as () => void;

const RATE = 8000;
const FRAME = RATE / 50;
const LONG = 'Your order left our warehouse on Monday and should arrive by Thursday afternoon at the latest.';
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** RealClock whose 0 ms sleeps resolve at once: zero-latency scripted providers then cost no timer tick. */
class ZeroSleepClock extends RealClock {
  override sleep(ms: number, signal?: AbortSignal): Promise<void> {
    if (ms > 0) return super.sleep(ms, signal);
    return signal?.aborted ? Promise.reject(signal.reason) : Promise.resolve();
  }
}

// ---------------------------------------------------------------------------------------------------
// The carrier edge: one shared 20 ms ticker delivers caller audio and "played" marks for every call.

interface Tickable { tick(now: number): void }

class Ticker {
  readonly members = new Set<Tickable>();
  maxLagMs = 0;
  private running = false;
  private t0 = 0;
  private k = 0;

  start(): void {
    if (this.running) return;
    this.running = true;
    this.t0 = performance.now();
    this.k = 1;
    const loop = () => {
      if (!this.running) return;
      const now = performance.now();
      this.maxLagMs = Math.max(this.maxLagMs, now - (this.t0 + this.k * 20));
      for (const m of this.members) m.tick(now);
      // Drift-free: the next tick is the next slot of the 20 ms grid, counted (a timer may fire up to 1 ms
      // early, so the slot is not recomputed from the time), skipping slots only when a whole one was missed.
      this.k = Math.max(this.k + 1, Math.floor((now - this.t0) / 20));
      setTimeout(loop, Math.max(0, this.t0 + this.k * 20 - performance.now()));
    };
    setTimeout(loop, 20);
  }

  stop(): void { this.running = false; }
}

/**
 * A carrier media stream as the engine sees it: frames go out μ-law-encoded in a JSON media message and
 * play at real rate in the carrier's buffer; marks come back once played; clear() empties the buffer.
 * Inbound, `feed` hands it Twilio-style JSON messages to decode into PCM16 frames.
 */
class EdgeTransport implements Transport, Tickable {
  readonly sampleRate = RATE;
  private listeners = new Set<(e: TransportEvent) => void>();
  private marks: { at: number; id: string }[] = [];
  private playEnd = 0;
  private closed = false;
  private readonly ulaw = new Uint8Array(FRAME);
  bytesOut = 0;
  framesOut = 0;
  clears: number[] = [];
  onTick?: (now: number) => void;

  constructor(private readonly encode: boolean) {}

  on(l: (e: TransportEvent) => void): () => void { this.listeners.add(l); return () => this.listeners.delete(l); }
  private emit(e: TransportEvent): void { for (const l of [...this.listeners]) l(e); }

  sendAudio(frame: AudioFrame, markId?: string): void {
    if (this.closed) return;
    const now = performance.now();
    if (frame.samples.length > 0) {
      this.framesOut++;
      if (this.encode) {
        const payload = Buffer.from(encodeMuLaw(frame.samples, this.ulaw).subarray(0, frame.samples.length)).toString('base64');
        this.bytesOut += JSON.stringify({ event: 'media', streamSid: 'MZ0', media: { payload } }).length;
      }
      this.playEnd = Math.max(now, this.playEnd) + (frame.samples.length * 1000) / RATE;
    }
    if (markId) this.marks.push({ at: Math.max(now, this.playEnd), id: markId });
  }

  /** Audio already at the carrier and not yet played: what the caller still hears after a pause. */
  bufferedMs(): number { return Math.max(0, this.playEnd - performance.now()); }

  clear(): void {
    this.clears.push(performance.now());
    this.marks = [];
    this.playEnd = 0;
  }

  tick(now: number): void {
    this.onTick?.(now);
    let n = 0;
    while (n < this.marks.length && this.marks[n].at <= now) n++;
    if (n) for (const m of this.marks.splice(0, n)) this.emit({ type: 'played', markId: m.id });
  }

  /** One inbound media message (the caller's 20 ms of μ-law audio). */
  feed(message: string, timestampMs: number): void {
    if (this.closed) return;
    const msg = JSON.parse(message) as { media: { payload: string } };
    const samples = decodeMuLaw(Buffer.from(msg.media.payload, 'base64'));
    this.emit({ type: 'audio', frame: { samples, sampleRate: RATE, timestampMs } });
  }

  callerAudio(samples: Int16Array, timestampMs: number): void {
    if (!this.closed) this.emit({ type: 'audio', frame: { samples, sampleRate: RATE, timestampMs } });
  }

  sendDtmf(): Promise<void> { return Promise.resolve(); }
  transfer(): Promise<void> { return Promise.resolve(); }
  setHold(): Promise<void> { return Promise.resolve(); }
  addToConference(): Promise<void> { return Promise.resolve(); }
  hangup(): Promise<void> { this.closed = true; this.marks = []; return Promise.resolve(); }
}

/** The scripted STT, with a tap that sees every event just before the conversation does. */
class TappedStt implements SpeechToText {
  readonly inner: ScriptedStt;
  constructor(clock: RealClock, private readonly tap: (e: SttEvent) => void) { this.inner = new ScriptedStt(clock); }
  async open(): Promise<SttSession> {
    const s = await this.inner.open();
    return { push: (f) => s.push(f), close: () => s.close(), on: (l) => s.on((e) => { this.tap(e); l(e); }) };
  }
}

/** Pacer that reports pauses and checks each frame's send time against its play-out time. */
class MeasuredPacer extends Pacer {
  onPause?: () => void;
  override pause(): void { this.onPause?.(); super.pause(); }
}

interface Late { frames: number; late: number; lateness: number[] }

interface CallOptions {
  clock: RealClock;
  agent?: Partial<EngineAgent>;
  llm?: { firstTokenMs: number; perWordMs: number };
  tts?: { firstAudioMs: number; msPerWord: number };
  vad?: VoiceActivityDetector;
  encode?: boolean;
  late?: Late;
}

function makeCall(o: CallOptions) {
  const transport = new EdgeTransport(o.encode ?? false);
  const taps: ((e: SttEvent) => void)[] = [];
  const stt = new TappedStt(o.clock, (e) => { for (const t of taps) t(e); });
  const llm = new ScriptedLlm(o.clock, {
    rules: [{ when: 'order', reply: LONG }, { when: 'stop', reply: 'Sure.' }], fallback: 'Okay.', ...(o.llm ?? { firstTokenMs: 0, perWordMs: 0 }),
  });
  const tts = new ScriptedTts(o.clock, o.tts ?? { firstAudioMs: 0, msPerWord: 40 });
  let pacer!: MeasuredPacer;
  const origin = o.clock.now();
  const late = o.late;
  const conv = new Conversation({
    agent: { ...ENGINE_AGENT_DEFAULTS, prompt: 'You are a helpful agent.', idleTimeSeconds: null, endpointingSensitivity: 'sensitive', ...o.agent },
    transport, stt, llm, tts, clock: o.clock, vad: o.vad,
    pacer: (send) => (pacer = new MeasuredPacer({
      clock: o.clock, sampleRate: RATE, originMs: origin,
      send: late
        ? (frame, markId) => {
          if (frame.samples.length > 0) {
            const l = performance.now() - (origin + frame.timestampMs);
            late.frames++;
            late.lateness.push(l);
            if (l > 20) late.late++;
          }
          send(frame, markId);
        }
        : send,
    })),
  });
  return { conv, transport, stt: stt.inner, taps, pacer: () => pacer };
}

// ---------------------------------------------------------------------------------------------------
// (a) response latency

interface ResponseRun { total: number[]; endpoint: number[]; llm: number[]; tts: number[]; pacer: number[] }

async function responseLatency(clock: RealClock, turns: number, parallel: number): Promise<ResponseRun> {
  const ticker = new Ticker();
  ticker.start();
  const out: ResponseRun = { total: [], endpoint: [], llm: [], tts: [], pacer: [] };
  const perCall = Math.ceil(turns / parallel);
  await Promise.all(Array.from({ length: parallel }, async (_, c) => {
    const call = makeCall({ clock });
    ticker.members.add(call.transport);
    await call.conv.start();
    await sleep(c * 7); // stagger the calls
    for (let i = 0; i < perCall; i++) {
      const metrics = new Promise<TurnMetrics>((resolve) => {
        const off = call.conv.on((e) => { if (e.type === 'metrics') { off(); resolve(e.metrics); } });
      });
      void call.stt.say({ text: 'hello there', durationMs: 40, finalDelayMs: 0, endOfTurn: true });
      const m = await metrics;
      if (m.sttFinalMs === undefined || m.firstFrameSentMs === undefined) continue;
      out.total.push(m.firstFrameSentMs - m.sttFinalMs);
      if (m.endpointMs !== undefined) out.endpoint.push(m.endpointMs - m.sttFinalMs);
      if (m.endpointMs !== undefined && m.llmFirstTokenMs !== undefined) out.llm.push(m.llmFirstTokenMs - m.endpointMs);
      if (m.llmFirstTokenMs !== undefined && m.ttsFirstAudioMs !== undefined) out.tts.push(m.ttsFirstAudioMs - m.llmFirstTokenMs);
      if (m.ttsFirstAudioMs !== undefined) out.pacer.push(m.firstFrameSentMs - m.ttsFirstAudioMs);
      await sleep(Math.random() * 10);
    }
    ticker.members.delete(call.transport);
    await call.conv.end();
  }));
  ticker.stop();
  return out;
}

// ---------------------------------------------------------------------------------------------------
// (b) barge-in

interface BargeRun { firstStop: number[]; pause: number[]; clear: number[]; heardAfterPause: number[]; vadDetect: number[]; vadToPause: number[]; audioToPause: number[]; vadKind: string }

/** Speech for the caller: the fixture utterance trimmed to its voiced span, over a quiet line. */
const speechClip = (() => {
  const u = fixture('utterance-8k.wav');
  const span = activeSpan(u);
  return u.samples.slice((span.startMs * RATE) / 1000, (span.endMs * RATE) / 1000);
})();
/** The first second of it: enough to barge in (the STT's final comes when it ends). */
const bargeClip = speechClip.subarray(0, RATE);
const lineNoise = toInt16(pinkNoise(1000, RATE, -62, 9));

async function bargeIn(clock: RealClock, barges: number, parallel: number, useVad: boolean): Promise<BargeRun> {
  const ticker = new Ticker();
  ticker.start();
  const out: BargeRun = { firstStop: [], pause: [], clear: [], heardAfterPause: [], vadDetect: [], vadToPause: [], audioToPause: [], vadKind: 'none' };
  const perCall = Math.ceil(barges / parallel);
  await Promise.all(Array.from({ length: parallel }, async (_, c) => {
    let vad: VoiceActivityDetector | undefined;
    let vadStartAt = NaN;
    if (useVad) {
      const inner = await createVad({ kind: 'silero', sampleRate: RATE });
      out.vadKind = inner.kind;
      // Tap the detector: note when it reports an onset, just before the conversation hears of it.
      vad = Object.assign(Object.create(inner) as VoiceActivityDetector, {
        push: (f: AudioFrame) => inner.push(f).then((ev: VadEvent[]) => {
          if (ev.some((e) => e.type === 'speech_start')) vadStartAt = performance.now();
          return ev;
        }),
        close: () => inner.close(),
      });
    }
    const call = makeCall({ clock, vad, tts: { firstAudioMs: 0, msPerWord: 100 }, agent: { interruptSensitivity: 'high' } });
    let onsetAt = NaN;
    let pauseAt = NaN;
    let bufferedAtPause = NaN;
    call.taps.push((e) => { if (e.type === 'speech_started') onsetAt = performance.now(); });
    // Caller audio: line noise, or the speech clip while `speaking` is set.
    let t = 0;
    let speechPos = -1;
    let audioOnsetAt = NaN;
    call.transport.onTick = () => {
      let samples: Int16Array;
      if (speechPos >= 0 && speechPos + FRAME <= bargeClip.length) {
        if (speechPos === 0) audioOnsetAt = performance.now();
        samples = bargeClip.subarray(speechPos, speechPos + FRAME);
        speechPos += FRAME;
      } else {
        speechPos = -1;
        const o = (t / 20 * FRAME) % (lineNoise.length - FRAME);
        samples = lineNoise.subarray(o, o + FRAME);
      }
      if (useVad) call.transport.callerAudio(samples, t);
      t += 20;
    };
    ticker.members.add(call.transport);
    await call.conv.start();
    call.pacer().onPause = () => { if (Number.isNaN(pauseAt)) { pauseAt = performance.now(); bufferedAtPause = call.transport.bufferedMs(); } };
    await sleep(c * 37);
    for (let i = 0; i < perCall; i++) {
      // A question, whose long answer starts playing...
      void call.stt.say({ text: 'where is my order', durationMs: 300, finalOnly: useVad });
      const sent0 = call.transport.framesOut;
      while (call.transport.framesOut < sent0 + 5) await sleep(5);
      await sleep(150 + Math.random() * 400);
      // ...and the caller talks over it.
      onsetAt = NaN; pauseAt = NaN; bufferedAtPause = NaN; audioOnsetAt = NaN; vadStartAt = NaN;
      const clears0 = call.transport.clears.length;
      if (useVad) {
        speechPos = 0;
        void call.stt.say({ text: 'no stop that is wrong', durationMs: (bargeClip.length / RATE) * 1000, finalOnly: true });
      } else {
        void call.stt.say({ text: 'no stop that is wrong', durationMs: 900, interimEveryMs: 100 });
      }
      const deadline = performance.now() + 6000;
      while (call.transport.clears.length === clears0 && performance.now() < deadline) await sleep(5);
      const clearAt = call.transport.clears[clears0] ?? NaN;
      const onset = useVad ? audioOnsetAt : onsetAt;
      out.heardAfterPause.push(bufferedAtPause);
      if (!useVad) {
        out.firstStop.push(Math.min(pauseAt, clearAt) - onset);
        out.pause.push(pauseAt - onset);
        out.clear.push(clearAt - onset);
      } else {
        out.vadDetect.push(vadStartAt - audioOnsetAt);
        out.vadToPause.push(pauseAt - vadStartAt);
        out.audioToPause.push(pauseAt - audioOnsetAt);
        out.clear.push(clearAt - audioOnsetAt);
      }
      // The answer to the interruption plays out before the next round.
      const lines = call.conv.transcript.lines.length;
      const until = performance.now() + 8000;
      while (performance.now() < until && !call.conv.transcript.lines.slice(lines).some((l) => l.sender === 'BOT')) await sleep(10);
      await sleep(50 + Math.random() * 100);
    }
    ticker.members.delete(call.transport);
    await call.conv.end();
  }));
  ticker.stop();
  for (const k of ['firstStop', 'pause', 'clear', 'heardAfterPause', 'vadDetect', 'vadToPause', 'audioToPause'] as const) out[k] = out[k].filter(Number.isFinite);
  return out;
}

// ---------------------------------------------------------------------------------------------------
// (c) load

/**
 * The callers' side, shared by every call (each starts at its own offset): a ~16 s loop — a question, a
 * backchannel while the agent answers, a second question that barges into the answer, line noise in
 * between — so the agent talks ~40 % of the time. Pre-encoded as the JSON media messages a carrier sends,
 * so each call only parses and decodes.
 */
function callerTrack() {
  const quiet = (ms: number, seed: number) => toInt16(pinkNoise(ms, RATE, -62, seed));
  const yesPcm = fixture('yes-8k.wav');
  const yesSpan = activeSpan(yesPcm);
  const yes = yesPcm.samples.slice((yesSpan.startMs * RATE) / 1000, (yesSpan.endMs * RATE) / 1000);
  const ms = (x: ArrayLike<number>) => (x.length * 1000) / RATE;
  const parts: { pcm: Int16Array; say?: { text: string; ms: number } }[] = [
    { pcm: quiet(500, 1) },
    { pcm: speechClip, say: { text: 'where is my order', ms: ms(speechClip) } },
    { pcm: quiet(2000, 2) }, // the answer starts (endpoint + LLM + TTS ≈ 0.7 s), 4 s long
    { pcm: yes, say: { text: 'yeah', ms: ms(yes) } }, // a backchannel over it: pause, then carry on
    { pcm: quiet(900, 3) },
    { pcm: speechClip, say: { text: 'no stop, where is my order', ms: ms(speechClip) } }, // barges in
    { pcm: quiet(5000, 4) }, // the second answer plays out
  ];
  const events = new Map<number, { text: string; ms: number }>();
  let frames = 0;
  for (const p of parts) {
    if (p.say) events.set(frames, p.say);
    frames += Math.floor(p.pcm.length / FRAME);
  }
  const pcm = new Int16Array(frames * FRAME);
  let o = 0;
  for (const p of parts) { const n = Math.floor(p.pcm.length / FRAME) * FRAME; pcm.set(p.pcm.subarray(0, n), o); o += n; }
  const ulaw = encodeMuLaw(pcm);
  const messages = Array.from({ length: frames }, (_, k) => JSON.stringify({
    event: 'media', streamSid: 'MZ0', media: { track: 'inbound', chunk: String(k + 1), timestamp: String(k * 20), payload: Buffer.from(ulaw.subarray(k * FRAME, (k + 1) * FRAME)).toString('base64') },
  }));
  return { messages, events, seconds: (frames * 20) / 1000 };
}

interface LoadResult {
  calls: number; vadKind: string; seconds: number; cpuPctPerCall: number; rssMbPerCall: number; heapMbPerCall: number; liveMbPerCall: number;
  lateFrames: number; framesSent: number; lateness: ReturnType<typeof stats>; tickerMaxLagMs: number; turns: number; bargeIns: number;
}

async function load(n: number, seconds: number, vadKind: 'silero' | 'energy' | 'none', warmupS = 3): Promise<LoadResult> {
  const clock = new RealClock();
  const track = callerTrack();
  const ticker = new Ticker();
  const late: Late = { frames: 0, late: 0, lateness: [] };
  const live = () => { const m = process.memoryUsage(); return m.heapUsed + m.external; };
  gc();
  await sleep(200);
  gc();
  const rss0 = process.memoryUsage().rss;
  const heap0 = process.memoryUsage().heapUsed;
  const live0 = live();
  const calls: ReturnType<typeof makeCall>[] = [];
  let kind = 'none';
  let turns = 0;
  let bargeIns = 0;
  let measuring = false;
  ticker.start();
  for (let c = 0; c < n; c++) {
    const vad = vadKind === 'none' ? undefined : await createVad(vadKind === 'silero' ? { kind: 'silero', sampleRate: RATE } : { kind: 'energy', sampleRate: RATE });
    kind = vad?.kind ?? 'none';
    const call = makeCall({ clock, vad, encode: true, late, llm: { firstTokenMs: 300, perWordMs: 30 }, tts: { firstAudioMs: 150, msPerWord: 250 } });
    const start = performance.now();
    const offset = Math.floor(Math.random() * track.messages.length);
    let k = 0;
    call.transport.onTick = (now) => {
      // Every 20 ms of the caller's line that has come due (a late tick catches up, as a socket would).
      while (start + k * 20 <= now) {
        const j = (offset + k) % track.messages.length;
        const say = track.events.get(j);
        if (say) void call.stt.say({ text: say.text, durationMs: say.ms, interimEveryMs: 200, finalDelayMs: 100 });
        call.transport.feed(track.messages[j], k * 20);
        k++;
      }
    };
    call.conv.on((e) => {
      if (!measuring) return;
      if (e.type === 'metrics') turns++;
      if (e.type === 'transcript' && e.line.interrupted) bargeIns++;
    });
    await call.conv.start();
    ticker.members.add(call.transport);
    calls.push(call);
    await sleep(1000 / n); // calls arrive over ~1 s
  }
  await sleep(warmupS * 1000);
  late.frames = 0; late.late = 0; late.lateness = []; ticker.maxLagMs = 0;
  measuring = true;
  const rss: number[] = [];
  const heap: number[] = [];
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  while (performance.now() - t0 < seconds * 1000) {
    await sleep(500);
    const m = process.memoryUsage();
    rss.push(m.rss);
    heap.push(m.heapUsed);
  }
  const cpu = process.cpuUsage(cpu0);
  const wall = performance.now() - t0;
  measuring = false;
  gc(); // the calls are still up: what stays after a full GC is theirs
  const live1 = live();
  const result: LoadResult = {
    calls: n, vadKind: kind, seconds: r2(wall / 1000),
    cpuPctPerCall: r2(((cpu.user + cpu.system) / 1000 / wall) * 100 / n),
    rssMbPerCall: r2((rss.reduce((a, b) => a + b, 0) / rss.length - rss0) / 2 ** 20 / n),
    heapMbPerCall: r2((heap.reduce((a, b) => a + b, 0) / heap.length - heap0) / 2 ** 20 / n),
    liveMbPerCall: r2((live1 - live0) / 2 ** 20 / n),
    lateFrames: late.late, framesSent: late.frames, lateness: stats(late.lateness), tickerMaxLagMs: r2(ticker.maxLagMs), turns, bargeIns,
  };
  ticker.stop();
  await Promise.all(calls.map((c) => c.conv.end()));
  await sleep(300);
  return result;
}

// ---------------------------------------------------------------------------------------------------

/** Each load level runs in a fresh process, so its RSS and CPU are the calls' alone. */
function loadInChild(n: number, seconds: number, vad: 'silero' | 'energy' | 'none', warmupS: number): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [process.argv[1], process.argv[2], '--child-load', String(n), '--seconds', String(seconds), '--vad', vad, '--warmup', String(warmupS)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.on('error', reject);
    child.on('close', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('CHILD '));
      if (code !== 0 || !line) reject(new Error(`load child (N=${n}, ${vad}) exited ${code}: ${out.slice(-2000)}`));
      else resolve(JSON.parse(line.slice(6)) as LoadResult);
    });
  });
}

if (args.includes('--child-load')) {
  await loadSileroRuntime().catch(() => undefined);
  const r = await load(Number(arg('child-load', '50')), SECONDS, arg('vad', 'silero') as 'silero' | 'energy' | 'none', Number(arg('warmup', '3')));
  console.log(`CHILD ${JSON.stringify(r)}`);
  process.exit(0);
}

const T0 = performance.now();
const log = (s: string) => console.log(s);
log(`engine bench — node ${process.version}, ${(await import('node:os')).cpus().length} cores`);

await loadSileroRuntime().catch(() => undefined); // loaded once per process, before anything is measured
// JIT warm-up, not reported
await responseLatency(new ZeroSleepClock(), 100, 5);

const resp = await responseLatency(new ZeroSleepClock(), TURNS, PARALLEL);
log(`\n(a) response latency, STT final → first frame to the transport (${resp.total.length} turns, ${PARALLEL} calls in parallel, endpointing 'sensitive'):`);
log(`    total            ${JSON.stringify(stats(resp.total))} ms`);
log(`    ├ endpoint wait  ${JSON.stringify(stats(resp.endpoint))} ms   (final → endpoint timer fired: a 0 ms clock timer)`);
log(`    ├ → LLM token    ${JSON.stringify(stats(resp.llm))} ms   (turn → first LLM token: history, request, stream start)`);
log(`    ├ → TTS audio    ${JSON.stringify(stats(resp.tts))} ms   (first token → first TTS audio)`);
log(`    └ → pacer send   ${JSON.stringify(stats(resp.pacer))} ms   (first TTS audio → first frame handed to the transport)`);
const respTimers = await responseLatency(new RealClock(), Math.min(300, TURNS), PARALLEL);
log(`    with the scripted providers' 0 ms sleeps left as real timers: ${JSON.stringify(stats(respTimers.total))} ms`);

const barge = await bargeIn(new ZeroSleepClock(), BARGES, 2 * PARALLEL, false);
log(`\n(b) barge-in, STT speech_started → output stopped (${barge.firstStop.length} barge-ins, ${2 * PARALLEL} calls):`);
log(`    first of pause/clear ${JSON.stringify(stats(barge.firstStop))} ms`);
log(`    pacer.pause()        ${JSON.stringify(stats(barge.pause))} ms`);
log(`    transport.clear()    ${JSON.stringify(stats(barge.clear))} ms   (needs words: the first interim, every 100 ms here)`);
log(`    still heard after the pause ${JSON.stringify(stats(barge.heardAfterPause))} ms   (audio already at the carrier: at most the pacer's lead, 120 ms)`);
const bargeVad = await bargeIn(new ZeroSleepClock(), Math.max(20, Math.round(BARGES / 4)), PARALLEL, true);
log(`    via ${bargeVad.vadKind} VAD alone (no STT events until the final), from the caller's audio onset (${bargeVad.audioToPause.length} barge-ins):`);
log(`    audio onset → VAD speech_start ${JSON.stringify(stats(bargeVad.vadDetect))} ms   (minSpeechMs 80 + 32 ms windows + 20 ms frames)`);
log(`    VAD speech_start → pause       ${JSON.stringify(stats(bargeVad.vadToPause))} ms`);
log(`    audio onset → pause            ${JSON.stringify(stats(bargeVad.audioToPause))} ms`);

log(`\n(c) load: concurrent calls at real time, Silero VAD, μ-law edge both ways, ${SECONDS} s measured after 3 s warm-up, each level in a fresh process:`);
const loads: LoadResult[] = [];
for (const n of CALLS) {
  const r = await loadInChild(n, SECONDS, 'silero', 3);
  loads.push(r);
  log(`    N=${n} (${r.vadKind}): ${r.cpuPctPerCall} % of a core per call, ${r.rssMbPerCall} MB RSS per call (live heap+external after GC ${r.liveMbPerCall} MB), late frames ${r.lateFrames}/${r.framesSent}, lateness ${JSON.stringify(r.lateness)} ms, ticker max lag ${r.tickerMaxLagMs} ms, ${r.turns} turns, ${r.bargeIns} barge-ins`);
}
// Where the CPU goes: the largest N again, briefly, with the energy VAD and with no VAD.
const nMax = Math.max(...CALLS);
const attribution: LoadResult[] = [];
for (const v of ['energy', 'none'] as const) {
  const r = await loadInChild(nMax, Math.max(5, SECONDS / 2), v, 2);
  attribution.push(r);
  log(`    N=${nMax} with ${v === 'none' ? 'no' : 'the energy'} VAD: ${r.cpuPctPerCall} % of a core per call, ${r.rssMbPerCall} MB RSS per call, late frames ${r.lateFrames}/${r.framesSent}`);
}

const main = loads.find((l) => l.calls === nMax)!;
const targets = {
  response_p99: pct(resp.total, 99) <= 15, bargein: pct(barge.firstStop, 50) <= 250, cpu: main.cpuPctPerCall <= 2, mem: main.rssMbPerCall <= 5,
};
log(`\ntargets: response p99 ≤ 15 ms ${targets.response_p99 ? 'OK' : 'MISSED'}; barge-in ≤ 250 ms ${targets.bargein ? 'OK' : 'MISSED'}; ≤ 2 % core/call ${targets.cpu ? 'OK' : 'MISSED'}; ≤ 5 MB/call ${targets.mem ? 'OK' : 'MISSED'}`);
log(JSON.stringify({ response: { ...stats(resp.total), endpoint: stats(resp.endpoint), withProviderTimers: stats(respTimers.total) }, bargein: stats(barge.firstStop), bargeinClear: stats(barge.clear), bargeinVad: { detect: stats(bargeVad.vadDetect), audioToPause: stats(bargeVad.audioToPause), kind: bargeVad.vadKind }, load: loads, attribution, wallS: r2((performance.now() - T0) / 1000) }));
console.log(JSON.stringify({
  response_p50_ms: r2(pct(resp.total, 50)),
  response_p99_ms: r2(pct(resp.total, 99)),
  bargein_p50_ms: r2(pct(barge.firstStop, 50)),
  cpu_pct_per_call: main.cpuPctPerCall,
  mem_mb_per_call: main.rssMbPerCall,
  late_frames: main.lateFrames,
  calls: main.calls,
}));
process.exit(0);
