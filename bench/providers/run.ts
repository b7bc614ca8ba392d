// What the vendor adapters (src/providers) add on top of the vendor itself.
//   node bin/run-ts.mjs bench/providers/run.ts [--iters 200] [--stt-iters 100] [--sessions 100] [--seconds 10] [--only llm,tts,stt,load]
//
// Every adapter runs against its protocol-faithful fake (test/fakes) on loopback, warm (a few unmeasured
// rounds first). The fakes answer at once, but not all of them at zero cost: some pace their stream with
// timers (e.g. OpenAI's chat fake sleeps 2 ms after every SSE event, Anthropic's sends three events before
// the first text delta). So the LLM section also times a bare-protocol client (Node fetch, the adapter's own
// request body, reading until the first text byte) against the same fake: adapter − bare = what the SDK
// and adapter add.
// (a) LLM (openai, anthropic, gemini): stream() called → first text chunk; abort() → the fake sees the
//     upstream connection closed (the fake hangs after the first delta, so the request is still open).
// (b) TTS (elevenlabs, cartesia, deepgram, rime: WebSocket, with preconnect; openai, playht, azure: HTTP per
//     sentence, no preconnect): open() → first audio event, the reply's text pushed and flushed right after
//     open resolves. "cold": a fresh provider, open pays the handshake; "warm": a fresh provider that was
//     preconnect()ed during "call setup" (the socket is up before open). HTTP vendors ride Node fetch's
//     keep-alive pool, so after the first request they are warm either way. Then cancel() → the fake sees
//     the cancel (cancel message or the stream/socket closed).
// (c) STT (deepgram, assemblyai, gladia, azure, google): open() resolved, fresh provider each time, cold vs
//     adopting a preconnected socket (Google: a preconnected gRPC channel). Then end of speech audio →
//     final delivered: sessions in parallel pushing 20 ms frames in real time (speech then silence); the
//     fakes all end an utterance after END_SILENCE_MS = 300 ms of silence, so the figure is "fake
//     endpointing + adapter"; compare vendors with each other, and the residual above 300 ms.
// (d) Load: N concurrent Deepgram STT sessions at 8 kHz, each pushing a 20 ms frame every 20 ms (speech
//     1.2 s / silence 0.8 s, so the fake answers with interims and finals) for S seconds. The fake runs in a
//     child process so its CPU is not counted. CPU is this process's process.cpuUsage() over the measured
//     window; heap and RSS (in a fresh worker process) are measured after a forced GC, before the sessions
//     and once they are running.
//     For scale, the same load from bare `ws` sockets (what any WebSocket client would cost) follows.
// Last line: one JSON object with the headline figures.
import { spawn, type ChildProcess } from 'node:child_process';
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import WebSocket from 'ws';
import type { AudioFrame } from '../../src/engine/audio/frame.js';
import type { LlmRequest, SttEvent, SttSession, TtsEvent, TtsSession } from '../../src/engine/types.js';
import type { LlmProvider, SttProvider, TtsProvider } from '../../src/providers/types.js';
import { createOpenAILlm } from '../../src/providers/llm/openai.js';
import { createAnthropicLlm } from '../../src/providers/llm/anthropic.js';
import { createGeminiLlm } from '../../src/providers/llm/gemini.js';
import { createElevenLabsTts } from '../../src/providers/tts/elevenlabs.js';
import { createCartesiaTts } from '../../src/providers/tts/cartesia.js';
import { createDeepgramTts } from '../../src/providers/tts/deepgram.js';
import { createRimeTts } from '../../src/providers/tts/rime.js';
import { createOpenAITts } from '../../src/providers/tts/openai.js';
import { createPlayHTTts } from '../../src/providers/tts/playht.js';
import { createAzureTts } from '../../src/providers/tts/azure.js';
import { createDeepgramStt } from '../../src/providers/stt/deepgram.js';
import { createAssemblyAIStt } from '../../src/providers/stt/assemblyai.js';
import { createGladiaStt } from '../../src/providers/stt/gladia.js';
import { createAzureStt } from '../../src/providers/stt/azure.js';
import { createGoogleStt } from '../../src/providers/stt/google.js';
const AZURE_KEY = 'azure-test-key-7f3a'; // test/fakes/azure.ts
import { END_SILENCE_MS, silenceAudio, speechAudio } from '../../test/fakes/speech.js';
import type { FakeLlmControls, FakeSttControls, FakeTtsControls } from '../../test/providers/contract/harness.js';
import { pct, r2, summary as stats, type Summary as Stats } from '../lib/stats.js';
import { argReader } from '../lib/cli.js';

const args = process.argv.slice(2);
const arg = argReader(args);

// ---------------------------------------------------------------------------------------------------
// Child mode: the Deepgram fake in its own process, for the load test.
if (args.includes('--serve-deepgram')) {
  const fake = await (await import('../../test/fakes/deepgram.js')).startDeepgramFake('dg-bench-key');
  fake.stt.idleTimeoutMs = 600_000;
  process.on('message', (m) => {
    if (m === 'cpu') process.send!({ cpu: process.cpuUsage() });
  });
  process.send!({ url: fake.url });
  process.on('disconnect', () => { void fake.close().finally(() => process.exit(0)); });
  await new Promise(() => {});
}

const ITERS = Number(arg('iters', '200'));
const STT_ITERS = Number(arg('stt-iters', '100'));
const SESSIONS = Number(arg('sessions', '100'));
const SECONDS = Number(arg('seconds', '10'));
const ONLY = new Set(arg('only', 'llm,tts,stt,load').split(','));
const WARMUP = 15;

setFlagsFromString('--expose_gc');
const gc = runInNewContext('gc') as () => void;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const tick = () => new Promise<void>((r) => setImmediate(r));
const now = () => performance.now();
const fmt = (s: Stats | undefined) => (s && s.n ? `${String(s.p50).padStart(7)} ${String(s.p95).padStart(7)} ${String(s.p99).padStart(7)} ${String(s.max).padStart(7)}  n=${s.n}` : '      —');
const HEAD = `${'p50'.padStart(7)} ${'p95'.padStart(7)} ${'p99'.padStart(7)} ${'max'.padStart(7)}  (ms)`;

/** Polls on the event loop (not a timer) until `probe` holds; the figures come from timestamps, not from here. */
async function until(probe: () => boolean, timeoutMs: number): Promise<boolean> {
  const end = now() + timeoutMs;
  while (!probe()) {
    if (now() > end) return false;
    await tick();
  }
  return true;
}

/** Keeps event-loop starvation visible: an iteration never starts while the loop is still busy. */
const settle = () => sleep(1);

const line = (s = '') => console.log(s);
const t00 = now();

// ---------------------------------------------------------------------------------------------------
// (a) LLM

const REQUEST: LlmRequest = {
  messages: [
    { role: 'system', content: 'You are a friendly receptionist. Keep answers short.' },
    { role: 'user', content: 'Hi, can I book a table for two tonight at eight?' },
  ],
  tools: [],
  temperature: 0.4,
};
const REPLY = { text: ['Of course, a table for two at eight tonight.'] };

interface LlmCase {
  name: string;
  start(): Promise<FakeLlmControls & { url: string }>;
  make(url: string): LlmProvider;
}

const LLMS: LlmCase[] = [
  { name: 'openai', start: async () => (await import('../../test/fakes/openai.js')).startOpenAIChatFake({ validKey: 'sk-bench', prefix: '/v1' }), make: (url) => createOpenAILlm({ apiKey: 'sk-bench', baseUrl: `${url}/v1` }, { model: 'gpt-4o-mini' }) },
  { name: 'anthropic', start: async () => (await import('../../test/fakes/anthropic.js')).startAnthropicFake('sk-ant-bench'), make: (url) => createAnthropicLlm({ apiKey: 'sk-ant-bench', baseUrl: url }, { model: 'claude-3-5-haiku-latest' }) },
  { name: 'gemini', start: async () => (await import('../../test/fakes/gemini.js')).startGeminiFake('gm-bench'), make: (url) => createGeminiLlm({ apiKey: 'gm-bench', baseUrl: url }, { model: 'gemini-2.5-flash' }) },
];

/** The bare protocol: the adapter's own request replayed with fetch, timed to the first byte of the first text delta. */
async function bareFirstText(url: string, req: NonNullable<FakeLlmControls['lastRequest']>, marker: string): Promise<number> {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) {
    if (typeof v === 'string' && !['host', 'content-length', 'connection', 'accept-encoding', 'transfer-encoding'].includes(k)) headers[k] = v;
  }
  const t0 = now();
  const res = await fetch(`${url}${req.path}`, { method: 'POST', headers, body: JSON.stringify(req.body) });
  const reader = res.body!.getReader();
  const dec = new TextDecoder();
  let text = '';
  let t = NaN;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    text += dec.decode(value, { stream: true });
    if (Number.isNaN(t) && text.includes(marker)) t = now() - t0;
  }
  return t;
}

async function benchLlm(c: LlmCase) {
  const fake = await c.start();
  const llm = c.make(fake.url);
  const ttft: number[] = [];
  const bare: number[] = [];
  const abort: number[] = [];
  let missedClose = 0;
  for (let i = 0; i < WARMUP + ITERS; i++) {
    fake.reply(REPLY);
    const t0 = now();
    let first = NaN;
    for await (const ch of llm.stream(REQUEST, new AbortController().signal)) {
      if (ch.type === 'text' && Number.isNaN(first)) first = now() - t0;
    }
    if (i >= WARMUP) ttft.push(first);
    await settle();
  }
  const req = fake.lastRequest!;
  for (let i = 0; i < WARMUP + ITERS; i++) {
    fake.reply(REPLY);
    const t = await bareFirstText(fake.url, req, 'Of course');
    if (i >= WARMUP) bare.push(t);
    await settle();
  }
  for (let i = 0; i < WARMUP + ITERS; i++) {
    fake.reply(REPLY);
    fake.hangNextAfterFirstChunk();
    const ac = new AbortController();
    const it = llm.stream(REQUEST, ac.signal)[Symbol.asyncIterator]();
    for (;;) {
      const r = await it.next();
      if (r.done || r.value.type === 'text') break;
    }
    const tAbort = now();
    ac.abort(new Error('barge-in'));
    const rest = (async () => { try { while (!(await it.next()).done); } catch { /* the abort reason */ } })();
    const seen = await until(() => (fake.lastClientCloseAt ?? 0) >= tAbort, 2000);
    await rest;
    if (!seen) missedClose++;
    else if (i >= WARMUP) abort.push(fake.lastClientCloseAt! - tAbort);
    await settle();
  }
  await fake.close();
  return { ttft: stats(ttft), bare: stats(bare), overhead: r2(pct(ttft, 50) - pct(bare, 50)), abort: stats(abort), missedClose };
}

// ---------------------------------------------------------------------------------------------------
// (b) TTS

const FIRST_SENTENCE = 'Sure, I can help you with that right away. ';
const REST = 'Let me just check what we have available for two people tonight, it should only take a moment, '
  + 'and in the meantime could you tell me whether you would prefer a table inside or out on the terrace? ';

interface TtsCase {
  name: string;
  rate: number;
  start(): Promise<{ fake: FakeTtsControls; make(): TtsProvider }>;
}

const TTSS: TtsCase[] = [
  {
    name: 'elevenlabs', rate: 16000, start: async () => {
      const f = await (await import('../../test/fakes/elevenlabs.js')).startElevenLabsFake('xi-bench');
      const voice = { type: 'voice_eleven_labs', voice_id: 'voice-123', stability: 0.4, similarity_boost: 0.8, optimize_streaming_latency: 3, experimental_input_streaming: true };
      return { fake: f, make: () => createElevenLabsTts({ apiKey: 'xi-bench', baseUrl: f.url }, voice) };
    },
  },
  {
    name: 'cartesia', rate: 16000, start: async () => {
      const f = await (await import('../../test/fakes/cartesia.js')).startCartesiaFake('sk_car_bench');
      const voice = { type: 'voice_cartesia', voice_id: 'a0e99841-438c-4a64-b679-ae501e7d6091' };
      return { fake: f, make: () => createCartesiaTts({ apiKey: 'sk_car_bench', baseUrl: f.url }, voice) };
    },
  },
  {
    name: 'deepgram', rate: 16000, start: async () => {
      const f = await (await import('../../test/fakes/deepgram.js')).startDeepgramFake('dg-bench');
      return { fake: f.tts, make: () => createDeepgramTts({ apiKey: 'dg-bench', baseUrl: f.url }, { type: 'voice_deepgram', model: 'aura-2-thalia-en' }) };
    },
  },
  {
    name: 'rime', rate: 16000, start: async () => {
      const f = await (await import('../../test/fakes/rime.js')).startRimeFake('rime-bench');
      return { fake: f, make: () => createRimeTts({ apiKey: 'rime-bench', baseUrl: f.url }, { type: 'voice_rime', speaker: 'cove', model_id: 'mistv2' }) };
    },
  },
  {
    name: 'openai', rate: 16000, start: async () => {
      const f = await (await import('../../test/fakes/openaiAudio.js')).startOpenAIAudioFake('sk-bench');
      return { fake: f.tts, make: () => createOpenAITts({ apiKey: 'sk-bench', baseUrl: f.url }, { type: 'voice_openai', voice: 'coral' }) };
    },
  },
  {
    name: 'playht', rate: 16000, start: async () => {
      const f = await (await import('../../test/fakes/playht.js')).startPlayHTFake('pht-bench', 'user-bench');
      return { fake: f, make: () => createPlayHTTts({ apiKey: 'pht-bench', baseUrl: f.url, extra: { user_id: 'user-bench' } }, { type: 'voice_play_ht', voice_id: 's3://voice-cloning-zero-shot/test/manifest.json', version: '2' }) };
    },
  },
  {
    name: 'azure', rate: 16000, start: async () => {
      const f = await (await import('../../test/fakes/azure.js')).startAzureFake();
      const voice = { type: 'voice_azure', voice_name: 'en-US-AvaNeural' };
      return { fake: f.tts, make: () => createAzureTts({ apiKey: AZURE_KEY, baseUrl: f.url, extra: { region: 'westus' } }, voice) };
    },
  },
];

interface TtsRound { firstAudio: number; cancel?: number }

/** One reply on `tts`: open → first audio, then cancel → the fake sees it. */
async function ttsReply(tts: TtsProvider, fake: FakeTtsControls, rate: number): Promise<TtsRound> {
  const t0 = now();
  const session: TtsSession = await tts.open({ sampleRate: rate }, new AbortController().signal);
  const it = session.events()[Symbol.asyncIterator]();
  session.pushText(FIRST_SENTENCE);
  session.pushText(REST);
  session.flush();
  let firstAudio = NaN;
  for (;;) {
    const r = await it.next();
    if (r.done) break;
    if ((r.value as TtsEvent).type === 'audio') { firstAudio = now() - t0; break; }
  }
  const tCancel = now();
  session.cancel();
  const rest = (async () => { try { while (!(await it.next()).done); } catch { /* cancelled */ } })();
  const seen = await until(() => (fake.lastCancelAt ?? 0) >= tCancel, 1000);
  await rest;
  return { firstAudio, cancel: seen ? fake.lastCancelAt! - tCancel : undefined };
}

async function benchTts(c: TtsCase) {
  const { fake, make } = await c.start();
  const supportsPreconnect = typeof make().preconnect === 'function';
  const cold: number[] = [], warm: number[] = [], reuse: number[] = [], cancel: number[] = [];
  let missedCancel = 0;
  const record = (r: TtsRound, into: number[], measured: boolean) => {
    if (!measured) return;
    into.push(r.firstAudio);
    if (r.cancel === undefined) missedCancel++;
    else cancel.push(r.cancel);
  };
  // Cold: a fresh provider per call, first reply opens the connection.
  for (let i = 0; i < WARMUP + ITERS; i++) {
    const tts = make();
    record(await ttsReply(tts, fake, c.rate), cold, i >= WARMUP);
    await tts.dispose?.();
    await settle();
  }
  // Warm: preconnected during call setup; the socket is up before the first reply.
  if (supportsPreconnect) {
    for (let i = 0; i < WARMUP + ITERS; i++) {
      const tts = make();
      const before = fake.connections;
      tts.preconnect!({ sampleRate: c.rate });
      await until(() => fake.connections > before, 1000);
      await sleep(3); // the client's side of the upgrade
      record(await ttsReply(tts, fake, c.rate), warm, i >= WARMUP);
      await tts.dispose?.();
      await settle();
    }
  }
  // Later replies of one call (same provider), for reference.
  const tts = make();
  for (let i = 0; i < WARMUP + Math.round(ITERS / 2); i++) {
    const r = await ttsReply(tts, fake, c.rate);
    if (i >= WARMUP) reuse.push(r.firstAudio);
    await sleep(2);
  }
  await tts.dispose?.();
  await fake.close();
  return { preconnect: supportsPreconnect, cold: stats(cold), warm: supportsPreconnect ? stats(warm) : undefined, reuse: stats(reuse), cancel: stats(cancel), missedCancel };
}

// ---------------------------------------------------------------------------------------------------
// (c) STT

interface SttCase {
  name: string;
  start(): Promise<{ fake: FakeSttControls; make(): SttProvider }>;
}

const STTS: SttCase[] = [
  {
    name: 'deepgram', start: async () => {
      const f = await (await import('../../test/fakes/deepgram.js')).startDeepgramFake('dg-bench');
      return { fake: f.stt, make: () => createDeepgramStt({ apiKey: 'dg-bench', baseUrl: f.url }, { language: 'en' }) };
    },
  },
  {
    name: 'assemblyai', start: async () => {
      const f = await (await import('../../test/fakes/assemblyai.js')).startAssemblyAIFake('aai-bench');
      return { fake: f, make: () => createAssemblyAIStt({ apiKey: 'aai-bench', baseUrl: f.url }, { language: 'en' }) };
    },
  },
  {
    name: 'gladia', start: async () => {
      const f = await (await import('../../test/fakes/gladia.js')).startGladiaFake('gl-bench');
      return { fake: f, make: () => createGladiaStt({ apiKey: 'gl-bench', baseUrl: f.url }, { language: 'en' }) };
    },
  },
  {
    name: 'azure', start: async () => {
      const f = await (await import('../../test/fakes/azure.js')).startAzureFake();
      return { fake: f.stt, make: () => createAzureStt({ apiKey: AZURE_KEY, baseUrl: f.url, extra: { region: 'westus' } }, { language: 'en' }) };
    },
  },
  {
    name: 'google', start: async () => {
      const f = await (await import('../../test/fakes/googleSpeech.js')).startGoogleSpeechFake('g-bench');
      return { fake: f, make: () => createGoogleStt({ apiKey: 'g-bench', baseUrl: f.url }, { language: 'en' }) };
    },
  },
];

const RATE = 16000;
const FRAME = RATE / 50;
const frames = (samples: Int16Array): Int16Array[] => {
  const out: Int16Array[] = [];
  for (let i = 0; i < samples.length; i += FRAME) out.push(samples.slice(i, i + FRAME));
  return out;
};

async function sttOpen(stt: SttProvider): Promise<{ ms: number; session: SttSession }> {
  const t0 = now();
  const session = await stt.open({ sampleRate: RATE, language: 'en' });
  return { ms: now() - t0, session };
}

/**
 * `parallel` sessions, each speaking `utterances` times: SPEECH_MS of speech then silence, 20 ms frames
 * every 20 ms on one shared drift-free ticker. Per utterance: last speech frame pushed → the final.
 */
async function sttEndpointing(make: () => SttProvider, parallel: number, utterances: number): Promise<{ final: number[]; missed: number }> {
  const SPEECH = frames(speechAudio(400, RATE));
  const SILENCE = frames(silenceAudio(20, RATE))[0];
  const GAP_FRAMES = 30; // 600 ms of silence after each utterance (the fake needs 300)
  const final: number[] = [];
  let missed = 0;
  const providers = Array.from({ length: parallel }, make);
  const sessions = await Promise.all(providers.map((p) => p.open({ sampleRate: RATE, language: 'en' })));
  const state = sessions.map((s) => {
    const st = { s, k: 0, utter: 0, speechEndAt: NaN, awaiting: false, ts: 0 };
    s.on((e: SttEvent) => {
      if (e.type === 'final' && st.awaiting) {
        st.awaiting = false;
        final.push(now() - st.speechEndAt);
      }
    });
    return st;
  });
  const per = SPEECH.length + GAP_FRAMES;
  const total = per * utterances + 5;
  await new Promise<void>((resolve) => {
    const t0 = now();
    let k = 0;
    const loop = () => {
      const t = now();
      for (const st of state) {
        const pos = k % per;
        const inSpeech = k < per * utterances && pos < SPEECH.length;
        const samples = inSpeech ? SPEECH[pos] : SILENCE;
        if (pos === 0 && st.awaiting) { missed++; st.awaiting = false; }
        st.s.push({ samples, sampleRate: RATE, timestampMs: st.ts } satisfies AudioFrame);
        st.ts += 20;
        if (inSpeech && pos === SPEECH.length - 1) { st.speechEndAt = t; st.awaiting = true; }
      }
      k++;
      if (k >= total) return resolve();
      setTimeout(loop, Math.max(0, t0 + k * 20 - now()));
    };
    loop();
  });
  for (const st of state) if (st.awaiting) missed++;
  await Promise.all(sessions.map((s) => s.close()));
  await Promise.all(providers.map((p) => p.dispose?.()));
  return { final, missed };
}

async function benchStt(c: SttCase) {
  const { fake, make } = await c.start();
  const cold: number[] = [], warm: number[] = [];
  for (let i = 0; i < 5 + STT_ITERS; i++) {
    const stt = make();
    const { ms, session } = await sttOpen(stt);
    if (i >= 5) cold.push(ms);
    await session.close();
    await stt.dispose?.();
    await settle();
  }
  for (let i = 0; i < 5 + STT_ITERS; i++) {
    const stt = make();
    const before = fake.connections;
    stt.preconnect!({ sampleRate: RATE, language: 'en' });
    await until(() => fake.connections > before, 1000);
    await sleep(5); // the client's side of the handshake
    const { ms, session } = await sttOpen(stt);
    if (i >= 5) warm.push(ms);
    await session.close();
    await stt.dispose?.();
    await settle();
  }
  // 20 sessions × 10 utterances = 200 finals.
  const ep = await sttEndpointing(make, 20, Math.ceil(ITERS / 20));
  await fake.close();
  return { cold: stats(cold), warm: stats(warm), final: stats(ep.final), missed: ep.missed };
}

// ---------------------------------------------------------------------------------------------------
// (d) Load: N Deepgram sessions in real time, the fake in a child process.

async function startChildFake(): Promise<{ url: string; child: ChildProcess; cpu(): Promise<NodeJS.CpuUsage> }> {
  const child = spawn(process.execPath, ['bin/run-ts.mjs', 'bench/providers/run.ts', '--serve-deepgram'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const url = await new Promise<string>((resolve, reject) => {
    child.once('message', (m) => resolve((m as { url: string }).url));
    child.once('exit', (code) => reject(new Error(`fake exited ${code}`)));
  });
  const cpu = () => new Promise<NodeJS.CpuUsage>((resolve) => {
    child.once('message', (m) => resolve((m as { cpu: NodeJS.CpuUsage }).cpu));
    child.send('cpu');
  });
  return { url, child, cpu };
}

interface LoadResult { cpuPctPerSession: number; cpuPctTotal: number; heapMbPerSession: number; rssMbPerSession: number; finals: number; maxLagMs: number; fakeCpuPct: number }

const LOAD_RATE = 8000;

/** Drives `push` for n sessions on one drift-free 20 ms ticker; returns the worst lateness of a tick. */
function ticker(n: number, push: (i: number, samples: Int16Array, k: number) => void) {
  const speech = frames8(speechAudio(1200, LOAD_RATE));
  const silence = new Int16Array(LOAD_RATE / 50);
  const per = speech.length + 40; // 1.2 s speech, 0.8 s silence
  let running = true;
  let maxLag = 0;
  const t0 = now();
  let k = 0;
  const loop = () => {
    if (!running) return;
    const t = now();
    if (k > 50) maxLag = Math.max(maxLag, t - (t0 + k * 20));
    for (let i = 0; i < n; i++) {
      const pos = (k + i * 7) % per; // sessions out of phase
      push(i, pos < speech.length ? speech[pos] : silence, k);
    }
    k++;
    setTimeout(loop, Math.max(0, t0 + k * 20 - now()));
  };
  loop();
  return { stop: () => { running = false; }, lag: () => maxLag };
}
function frames8(samples: Int16Array): Int16Array[] {
  const per = LOAD_RATE / 50;
  const out: Int16Array[] = [];
  for (let i = 0; i + per <= samples.length; i += per) out.push(samples.slice(i, i + per));
  return out;
}

async function measureWindow<T>(fake: { cpu(): Promise<NodeJS.CpuUsage> }, seconds: number, body: () => T): Promise<{ cpuMs: number; wallMs: number; fakeCpuMs: number; value: T }> {
  const f0 = await fake.cpu();
  const c0 = process.cpuUsage();
  const w0 = now();
  await sleep(seconds * 1000);
  const c1 = process.cpuUsage(c0);
  const wallMs = now() - w0;
  const f1 = await fake.cpu();
  return { cpuMs: (c1.user + c1.system) / 1000, wallMs, fakeCpuMs: (f1.user + f1.system - f0.user - f0.system) / 1000, value: body() };
}

async function benchLoad(): Promise<{ adapter: LoadResult; bare: LoadResult }> {
  const fake = await startChildFake();
  try {
    // The adapter.
    gc(); gc();
    const m0 = process.memoryUsage();
    const providers = Array.from({ length: SESSIONS }, () => createDeepgramStt({ apiKey: 'dg-bench-key', baseUrl: fake.url }, { language: 'en' }));
    const sessions = await Promise.all(providers.map((p) => p.open({ sampleRate: LOAD_RATE, language: 'en' })));
    let finals = 0;
    for (const s of sessions) s.on((e) => { if (e.type === 'final') finals++; });
    const ts = new Array<number>(SESSIONS).fill(0);
    const tk = ticker(SESSIONS, (i, samples) => { sessions[i].push({ samples, sampleRate: LOAD_RATE, timestampMs: ts[i] }); ts[i] += 20; });
    await sleep(1500);
    gc(); gc();
    const m1 = process.memoryUsage();
    const f0 = finals;
    const w = await measureWindow(fake, SECONDS, () => finals - f0);
    tk.stop();
    const lag = tk.lag();
    await Promise.all(sessions.map((s) => s.close()));
    await Promise.all(providers.map((p) => p.dispose?.()));
    const adapter: LoadResult = {
      cpuPctTotal: r2((100 * w.cpuMs) / w.wallMs),
      cpuPctPerSession: r2((100 * w.cpuMs) / w.wallMs / SESSIONS),
      heapMbPerSession: Math.round((m1.heapUsed - m0.heapUsed) / 1e3 / SESSIONS) / 1000,
      rssMbPerSession: Math.round((m1.rss - m0.rss) / 1e3 / SESSIONS) / 1000,
      finals: w.value, maxLagMs: r2(lag), fakeCpuPct: r2((100 * w.fakeCpuMs) / w.wallMs),
    };
    await sleep(500);

    // For scale: bare ws sockets carrying the same PCM (no adapter, messages received and dropped).
    gc(); gc();
    const b0 = process.memoryUsage();
    const wsUrl = `${fake.url.replace(/^http/, 'ws')}/v1/listen?model=nova-3&language=en&encoding=linear16&sample_rate=${LOAD_RATE}&channels=1&interim_results=true&endpointing=300&vad_events=true`;
    const sockets = await Promise.all(Array.from({ length: SESSIONS }, () => new Promise<WebSocket>((resolve, reject) => {
      const ws = new WebSocket(wsUrl, { headers: { Authorization: 'Token dg-bench-key' }, perMessageDeflate: false });
      let got = 0;
      ws.on('message', () => { got++; });
      ws.once('open', () => resolve(ws));
      ws.once('error', reject);
    })));
    let bareFinals = 0;
    for (const ws of sockets) ws.on('message', (d: Buffer) => { if (d.includes('"is_final":true')) bareFinals++; });
    const tb = ticker(SESSIONS, (i, samples) => sockets[i].send(Buffer.from(samples.buffer, samples.byteOffset, samples.byteLength)));
    await sleep(1500);
    gc(); gc();
    const b1 = process.memoryUsage();
    const bf0 = bareFinals;
    const wb = await measureWindow(fake, Math.max(3, SECONDS / 2), () => bareFinals - bf0);
    tb.stop();
    for (const ws of sockets) ws.close(1000);
    const bare: LoadResult = {
      cpuPctTotal: r2((100 * wb.cpuMs) / wb.wallMs),
      cpuPctPerSession: r2((100 * wb.cpuMs) / wb.wallMs / SESSIONS),
      heapMbPerSession: Math.round((b1.heapUsed - b0.heapUsed) / 1e3 / SESSIONS) / 1000,
      rssMbPerSession: Math.round((b1.rss - b0.rss) / 1e3 / SESSIONS) / 1000,
      finals: wb.value, maxLagMs: r2(tb.lag()), fakeCpuPct: r2((100 * wb.fakeCpuMs) / wb.wallMs),
    };
    return { adapter, bare };
  } finally {
    fake.child.disconnect();
  }
}

// ---------------------------------------------------------------------------------------------------
// Run and report.

if (args.includes('--load-worker')) {
  process.send!(await benchLoad());
  await new Promise<void>((r) => process.once('disconnect', r));
  process.exit(0);
}

const out: Record<string, number | null> = {};
const noteMs = (x: number) => (Number.isFinite(x) ? r2(x) : null);

if (ONLY.has('llm')) {
  line(`LLM — stream() → first text chunk; bare = plain fetch of the same request to the first text byte; abort → fake sees the connection closed`);
  line(`${''.padEnd(24)}${HEAD}`);
  const res: Record<string, Awaited<ReturnType<typeof benchLlm>>> = {};
  for (const c of LLMS) {
    const r = await benchLlm(c).catch((err: Error) => { line(`${c.name.padEnd(24)}skipped: ${err.message.split('\n')[0]}`); });
    if (!r) continue;
    res[c.name] = r;
    line(`${`${c.name} first token`.padEnd(24)}${fmt(r.ttft)}`);
    line(`${`${c.name} bare protocol`.padEnd(24)}${fmt(r.bare)}   adapter adds ${r.overhead} ms at p50`);
    line(`${`${c.name} abort→close`.padEnd(24)}${fmt(r.abort)}${r.missedClose ? `   (${r.missedClose} closes never seen)` : ''}`);
  }
  const all = Object.values(res);
  out.llm_first_token_p50_ms = noteMs(Math.max(...all.map((r) => r.ttft.p50)));
  out.llm_adapter_overhead_p50_ms = noteMs(Math.max(...all.map((r) => r.overhead)));
  out.abort_to_upstream_close_p99_ms = noteMs(Math.max(...all.map((r) => r.abort.p99)));
  for (const [n, r] of Object.entries(res)) out[`llm_${n}_first_token_p50_ms`] = r.ttft.p50;
  line();
}

if (ONLY.has('tts')) {
  line('TTS — open() → first audio event (reply text pushed + flushed right after open); cancel() → fake sees the cancel');
  line(`${''.padEnd(28)}${HEAD}`);
  const res: Record<string, Awaited<ReturnType<typeof benchTts>>> = {};
  for (const c of TTSS) {
    const r = await benchTts(c).catch((err: Error) => { line(`${c.name.padEnd(28)}skipped: ${err.message.split('\n')[0]}`); });
    if (!r) continue;
    res[c.name] = r;
    line(`${`${c.name} first audio, cold`.padEnd(28)}${fmt(r.cold)}`);
    line(`${`${c.name} first audio, warm`.padEnd(28)}${r.warm ? fmt(r.warm) : '      (no preconnect: HTTP, keep-alive pool)'}`);
    line(`${`${c.name} next reply, same call`.padEnd(28)}${fmt(r.reuse)}`);
    line(`${`${c.name} cancel→vendor`.padEnd(28)}${fmt(r.cancel)}${r.missedCancel ? `   (${r.missedCancel} cancels never seen)` : ''}`);
  }
  const ws = Object.values(res).filter((r) => r.warm);
  out.tts_first_audio_p50_ms_warm = noteMs(Math.max(...ws.map((r) => r.warm!.p50)));
  out.tts_first_audio_p50_ms_cold = noteMs(Math.max(...ws.map((r) => r.cold.p50)));
  out.tts_first_audio_p50_ms_http = noteMs(Math.max(...Object.values(res).filter((r) => !r.warm).map((r) => r.cold.p50)));
  out.tts_cancel_p99_ms = noteMs(Math.max(...Object.values(res).map((r) => r.cancel.p99)));
  for (const [n, r] of Object.entries(res)) out[`tts_${n}_first_audio_p50_ms`] = (r.warm ?? r.cold).p50;
  line();
}

if (ONLY.has('stt')) {
  line(`STT — open() resolved, cold vs adopting a preconnected socket; end of speech audio → final (fake endpointing ${END_SILENCE_MS} ms + adapter, 20 sessions in parallel, real time)`);
  line(`${''.padEnd(28)}${HEAD}`);
  const res: Record<string, Awaited<ReturnType<typeof benchStt>>> = {};
  for (const c of STTS) {
    const r = await benchStt(c).catch((err: Error) => { line(`${c.name.padEnd(28)}skipped: ${err.message.split('\n')[0]}`); });
    if (!r) continue;
    res[c.name] = r;
    line(`${`${c.name} open, cold`.padEnd(28)}${fmt(r.cold)}`);
    line(`${`${c.name} open, preconnected`.padEnd(28)}${fmt(r.warm)}`);
    line(`${`${c.name} speech end→final`.padEnd(28)}${fmt(r.final)}   beyond ${END_SILENCE_MS} ms: ${r2(r.final.p50 - END_SILENCE_MS)} at p50${r.missed ? `; ${r.missed} finals missed` : ''}`);
  }
  for (const [n, r] of Object.entries(res)) {
    out[`stt_${n}_open_cold_p50_ms`] = r.cold.p50;
    out[`stt_${n}_open_warm_p50_ms`] = r.warm.p50;
    out[`stt_${n}_final_p50_ms`] = r.final.p50;
  }
  line();
}

if (ONLY.has('load')) {
  line(`Load — ${SESSIONS} concurrent Deepgram STT sessions, 20 ms frames at ${LOAD_RATE} Hz in real time, ${SECONDS} s measured (fake in a child process)`);
  // In a fresh process, so RSS and heap start from a clean baseline rather than from the sections above.
  const worker = spawn(process.execPath, ['bin/run-ts.mjs', 'bench/providers/run.ts', '--load-worker', '--sessions', String(SESSIONS), '--seconds', String(SECONDS)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const { adapter: a, bare: b } = await new Promise<Awaited<ReturnType<typeof benchLoad>>>((resolve, reject) => {
    worker.once('message', (m) => resolve(m as Awaited<ReturnType<typeof benchLoad>>));
    worker.once('exit', (code) => reject(new Error(`load worker exited ${code}`)));
  });
  worker.disconnect();
  const row = (name: string, r: LoadResult) => line(`${name.padEnd(22)}CPU ${String(r.cpuPctTotal).padStart(6)} % total, ${String(r.cpuPctPerSession).padStart(5)} % per session;  heap ${r.heapMbPerSession} MB, RSS ${r.rssMbPerSession} MB per session;  ${r.finals} finals, worst tick lag ${r.maxLagMs} ms (fake process: ${r.fakeCpuPct} % CPU)`);
  row('adapter sessions', a);
  row('bare ws sockets', b);
  out.stt_session_cpu_pct = a.cpuPctPerSession;
  out.stt_session_mem_mb = a.rssMbPerSession;
  out.stt_session_heap_mb = a.heapMbPerSession;
  out.stt_bare_ws_cpu_pct = b.cpuPctPerSession;
  line();
}

line(`total ${r2((now() - t00) / 1000)} s`);
console.log(JSON.stringify(out));
process.exit(0);
