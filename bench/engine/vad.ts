// VAD cost per call: CPU time per second of audio, and % of one core per call at real time (target ≤ 1 %).
//   node bin/run-ts.mjs bench/engine/vad.ts [--seconds 60] [--calls 1,32]
// CPU is process.cpuUsage() (user + system, every thread, so onnxruntime's own threads count too) around
// pushing the audio as fast as possible; per-call figures divide by the number of concurrent calls.
import type { AudioFrame } from '../../src/engine/audio/frame.js';
import { createEnergyVad, createSileroVad, loadSileroRuntime, type VadKind, type VoiceActivityDetector } from '../../src/engine/vad/index.js';
import { addNoise, concat, fixture, pinkNoise, silence, toFrames, whiteNoise } from '../../test/engine/vad/audio.js';
import { argReader } from '../lib/cli.js';

const args = process.argv.slice(2);
const arg = argReader(args);
const seconds = Number(arg('seconds', '60'));
const callCounts = arg('calls', '1,32').split(',').map(Number);

/** A call's worth of audio: speech, pauses, a "yes", noisy speech, background noise — repeated to `seconds`. */
function callAudio(rate: number): AudioFrame[] {
  const k = `${rate / 1000}k`;
  const utt = fixture(`utterance-${k}.wav`).samples;
  const yes = fixture(`yes-${k}.wav`).samples;
  const block = concat(utt, silence(500, rate), yes, addNoise(utt, pinkNoise(5000, rate, -30, 3), 15, rate), whiteNoise(3000, rate, -45, 4));
  const reps = Math.ceil((seconds * rate) / block.length);
  const all = concat(...Array.from({ length: reps }, () => block)).subarray(0, seconds * rate);
  return toFrames(all, rate);
}

async function make(kind: VadKind): Promise<VoiceActivityDetector> {
  return kind === 'silero' ? createSileroVad() : createEnergyVad();
}

interface Row { kind: VadKind; rate: number; calls: number; cpuMsPerAudioS: number; corePctPerCall: number; wallMsPerAudioS: number; speechEvents: number }

async function measure(kind: VadKind, rate: number, calls: number, frames: AudioFrame[]): Promise<Row> {
  const vads = await Promise.all(Array.from({ length: calls }, () => make(kind)));
  let events = 0;
  // warm-up: 2 s on each call, then reset
  for (const f of frames.slice(0, 100)) await Promise.all(vads.map((v) => v.push(f)));
  await Promise.all(vads.map((v) => v.reset()));
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (const f of frames) {
    // one 20 ms tick: every call gets its frame, concurrently (they share the one ONNX session)
    const out = await Promise.all(vads.map((v) => v.push(f)));
    for (const ev of out) events += ev.length;
  }
  for (const v of vads) events += (await v.flush()).length;
  const wall = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  const audioS = (frames.length * 20) / 1000;
  const perCall = cpuMs / calls / audioS;
  vads.forEach((v) => v.close());
  return { kind, rate, calls, cpuMsPerAudioS: perCall, corePctPerCall: perCall / 10, wallMsPerAudioS: wall / calls / audioS, speechEvents: events / calls };
}

const rss0 = process.memoryUsage().rss;
const t0 = performance.now();
const rt = await loadSileroRuntime();
const loadMs = performance.now() - t0;
const rssMb = (process.memoryUsage().rss - rss0) / 2 ** 20;
console.log(`Silero v5 session: loaded once in ${loadMs.toFixed(1)} ms (${rt.modelPath.replace(/.*node_modules\//, '')}), RSS +${rssMb.toFixed(1)} MB`);
console.log(`audio per call: ${seconds} s; CPU = user+system of the whole process; node ${process.version}\n`);

// JIT warm-up over every path (not reported)
for (const rate of [16000, 8000]) for (const kind of ['silero', 'energy'] as const) await measure(kind, rate, 4, callAudio(rate).slice(0, 500));

const rows: Row[] = [];
for (const rate of [16000, 8000]) {
  const frames = callAudio(rate);
  for (const kind of ['silero', 'energy'] as const) {
    for (const calls of callCounts) rows.push(await measure(kind, rate, calls, frames));
  }
}

const pad = (s: string | number, n: number) => String(s).padStart(n);
console.log(`${'detector'.padEnd(8)} ${pad('rate', 6)} ${pad('calls', 5)} ${pad('CPU ms / audio s / call', 24)} ${pad('% core / call', 14)} ${pad('wall ms / audio s / call', 25)} ${pad('events / call', 14)}`);
for (const r of rows) {
  console.log(
    `${r.kind.padEnd(8)} ${pad(r.rate, 6)} ${pad(r.calls, 5)} ${pad(r.cpuMsPerAudioS.toFixed(3), 24)} ${pad(r.corePctPerCall.toFixed(3) + ' %', 14)} ${pad(r.wallMsPerAudioS.toFixed(3), 25)} ${pad(r.speechEvents, 14)}`,
  );
}
const worst = Math.max(...rows.filter((r) => r.kind === 'silero').map((r) => r.corePctPerCall));
console.log(`\nSilero worst case: ${worst.toFixed(3)} % of one core per call at real time (target ≤ 1 %): ${worst <= 1 ? 'OK' : 'OVER'}`);
console.log(JSON.stringify({ loadMs: Math.round(loadMs), rssMb: Math.round(rssMb), rows }));
