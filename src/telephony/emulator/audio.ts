/**
 * Audio for the emulated far end of a call: caller audio given as PCM16 or WAV (decoded and resampled
 * to the 8 kHz of the phone network with the engine's own helpers), synthetic greetings and beeps for
 * the answering-machine simulation, and a cheap audibility check on μ-law frames.
 *
 * Followed "Media Streams - WebSocket Messages" (https://www.twilio.com/docs/voice/media-streams/websocket-messages):
 * audio on the wire is audio/x-mulaw, 8000 Hz, mono, in 20 ms (160-byte) frames; μ-law silence is 0xFF.
 */
import { readFile } from 'node:fs/promises';
import { decodeMuLaw } from '../../engine/audio/g711.js';
import { createResampler } from '../../engine/audio/resampler.js';
import { decodeWav } from '../../engine/audio/wav.js';

export const RATE = 8000;
export const FRAME_MS = 20;
export const FRAME_BYTES = 160;
export const MULAW_SILENCE = 0xff;

/**
 * What the caller (or the called party) says: PCM16 at 8 kHz, PCM16 at another rate, WAV bytes, or the
 * path of a WAV file (16-bit PCM mono, any rate).
 */
export type CallerAudio = Int16Array | { samples: Int16Array; sampleRate: number } | Uint8Array | string;

/** Any CallerAudio as PCM16 at 8 kHz. */
export async function toPcm8k(audio: CallerAudio): Promise<Int16Array> {
  if (audio instanceof Int16Array) return audio;
  if (typeof audio === 'string') return toPcm8k(new Uint8Array(await readFile(audio)));
  if (audio instanceof Uint8Array) return toPcm8k(decodeWav(audio));
  return resample(audio.samples, audio.sampleRate);
}

async function resample(samples: Int16Array, from: number): Promise<Int16Array> {
  if (from === RATE) return samples;
  const r = await createResampler(from, RATE);
  try {
    const head = r.process(samples);
    const tail = r.flush();
    const all = new Int16Array(head.length + tail.length);
    all.set(head);
    all.set(tail, head.length);
    // The filter delays its output by delaySamples: drop them so the audio starts where it did.
    const start = Math.min(r.delaySamples, all.length);
    const want = Math.round((samples.length * RATE) / from);
    return all.slice(start, start + want);
  } finally {
    r.destroy();
  }
}

export const msToSamples = (ms: number) => Math.max(0, Math.round((ms * RATE) / 1000));
export const samplesToMs = (n: number) => (n * 1000) / RATE;

/** A sine tone at `db` dBFS (peak). */
export function tone(freq: number, ms: number, db = -10): Int16Array {
  const n = msToSamples(ms);
  const amp = 32767 * 10 ** (db / 20);
  const out = new Int16Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.round(amp * Math.sin((2 * Math.PI * freq * i) / RATE));
  return out;
}

/**
 * A speech-like stand-in for a voicemail greeting: a voiced buzz (120 Hz fundamental, a few harmonics)
 * whose loudness follows a 4 Hz syllable rhythm, with short pauses. Energy-based detectors see speech.
 */
export function speechLike(ms: number, db = -14): Int16Array {
  const n = msToSamples(ms);
  const amp = 32767 * 10 ** (db / 20);
  const out = new Int16Array(n);
  for (let i = 0; i < n; i++) {
    const t = i / RATE;
    const syllable = Math.max(0, Math.sin(2 * Math.PI * 4 * t)); // 0 between syllables
    const phrase = (t % 1.6) < 1.4 ? 1 : 0; // a breath every 1.6 s
    let v = 0;
    for (let h = 1; h <= 5; h++) v += Math.sin(2 * Math.PI * 120 * h * t) / h;
    out[i] = Math.round(amp * 0.55 * v * syllable * phrase);
  }
  return out;
}

/** The answering machine's "leave a message" beep: 1 kHz for 400 ms. */
export const beep = () => tone(1000, 400, -8);

const scratch = new Int16Array(FRAME_BYTES);

/** RMS level of a μ-law chunk in dBFS (−Infinity for digital silence). */
export function mulawDbfs(bytes: Uint8Array): number {
  if (bytes.length === 0) return -Infinity;
  const pcm = bytes.length <= scratch.length ? decodeMuLaw(bytes, scratch) : decodeMuLaw(bytes);
  let sum = 0;
  for (let i = 0; i < bytes.length; i++) sum += pcm[i] * pcm[i];
  return sum === 0 ? -Infinity : 10 * Math.log10(sum / bytes.length / (32768 * 32768));
}
