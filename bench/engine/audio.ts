// Audio edge costs per 20 ms frame: G.711 μ-law at 8 kHz, and speex resampling 8k↔16k (and the 24k/48k
// TTS paths for reference), vs alawmulaw for the codec.
//   node bin/run-ts.mjs bench/engine/audio.ts [--ms 1000] [--quality 7]
// Each case runs on 1 s of pre-generated speech-like audio in 20 ms frames, warmed up, then timed for
// --ms wall time; the figure is the median of 5 rounds. Last line: one JSON object.
import alawmulaw from 'alawmulaw';
import { decodeMuLaw, encodeMuLaw } from '../../src/engine/audio/g711.js';
import { createResampler, DEFAULT_QUALITY } from '../../src/engine/audio/resampler.js';
import { argReader } from '../lib/cli.js';

const args = process.argv.slice(2);
const arg = argReader(args);
const budgetMs = Number(arg('ms', '1000'));
const quality = Number(arg('quality', String(DEFAULT_QUALITY)));

/** A few harmonics with a wobbling envelope: not speech, but not a pure tone either. */
function frames(rate: number, seconds = 1): Int16Array[] {
  const n = rate / 50;
  const all = Int16Array.from({ length: rate * seconds }, (_, i) => {
    const t = i / rate;
    const env = 0.5 + 0.5 * Math.sin(2 * Math.PI * 3 * t);
    return Math.round(9000 * env * (Math.sin(2 * Math.PI * 180 * t) + 0.5 * Math.sin(2 * Math.PI * 720 * t) + 0.25 * Math.sin(2 * Math.PI * 2100 * t)));
  });
  return Array.from({ length: all.length / n }, (_, k) => all.subarray(k * n, (k + 1) * n));
}

let sink = 0; // keeps results alive so nothing is optimised away

function bench(run: (i: number) => void, count: number): number {
  for (let i = 0; i < 2000; i++) run(i % count); // warm-up (JIT)
  const rounds: number[] = [];
  for (let r = 0; r < 5; r++) {
    let ops = 0;
    const start = process.hrtime.bigint();
    const end = start + BigInt(Math.round((budgetMs / 5) * 1e6));
    let now = start;
    while (now < end) {
      for (let k = 0; k < 256; k++) run((ops + k) % count);
      ops += 256;
      now = process.hrtime.bigint();
    }
    rounds.push(Number(now - start) / ops);
  }
  rounds.sort((a, b) => a - b);
  return rounds[2];
}

const rows: { case: string; nsPerFrame: number }[] = [];
const add = (name: string, ns: number) => rows.push({ case: name, nsPerFrame: Math.round(ns) });

// ---- G.711 μ-law, 160 samples per frame ----
const pcm8 = frames(8000);
const enc8 = pcm8.map((f) => encodeMuLaw(f));
const outBytes = new Uint8Array(160);
const outPcm = new Int16Array(160);
add('μ-law encode 8k (out buffer reused)', bench((i) => { sink += encodeMuLaw(pcm8[i], outBytes)[7]; }, pcm8.length));
add('μ-law encode 8k (new array)', bench((i) => { sink += encodeMuLaw(pcm8[i])[7]; }, pcm8.length));
add('μ-law decode 8k (out buffer reused)', bench((i) => { sink += decodeMuLaw(enc8[i], outPcm)[7]; }, enc8.length));
add('μ-law decode 8k (new array)', bench((i) => { sink += decodeMuLaw(enc8[i])[7]; }, enc8.length));
add('  alawmulaw mulaw.encode 8k', bench((i) => { sink += alawmulaw.mulaw.encode(pcm8[i])[7]; }, pcm8.length));
add('  alawmulaw mulaw.decode 8k', bench((i) => { sink += alawmulaw.mulaw.decode(enc8[i])[7]; }, enc8.length));

// ---- resampling, one streaming resampler per case (state carries over frame to frame) ----
for (const [from, to] of [[8000, 16000], [16000, 8000], [24000, 8000], [48000, 8000], [8000, 48000]] as const) {
  const input = frames(from);
  const r = await createResampler(from, to, quality);
  add(`resample ${from / 1000}k→${to / 1000}k q${quality}`, bench((i) => { sink += r.process(input[i]).length; }, input.length));
  r.destroy();
}

const width = Math.max(...rows.map((r) => r.case.length));
console.log(`ns per 20 ms frame (median of 5 × ${budgetMs / 5} ms); node ${process.version}\n`);
for (const r of rows) {
  const pctCore = (r.nsPerFrame / 20e6) * 100; // share of one core at real time for one stream
  console.log(`${r.case.padEnd(width)}  ${String(r.nsPerFrame).padStart(7)} ns   ${pctCore.toFixed(4)} % core/stream`);
}
if (sink === 0.5) console.log(''); // never true; reads sink
console.log(JSON.stringify({ quality, rows }));
