/**
 * How TTS fakes "speak": each word is WORD_MS of a sine tone at the requested rate, so a test can tell
 * from the audio's length how many words were voiced. Shared by every TTS fake.
 */
import { WORD_MS } from '../providers/contract/harness.js';

/** `ms` of a sine tone at `rate`; `phase` (in samples) continues a tone already sent, so chunks join smoothly. */
export function tone(ms: number, rate: number, { hz = 440, phase = 0 }: { hz?: number; phase?: number } = {}): Int16Array {
  const n = Math.round((ms * rate) / 1000);
  const out = new Int16Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.round(6000 * Math.sin((2 * Math.PI * hz * (phase + i)) / rate));
  return out;
}

/** PCM16 samples as little-endian bytes, the way vendors send raw PCM. */
export const pcmBytes = (samples: Int16Array) => Buffer.from(samples.buffer, samples.byteOffset, samples.byteLength);

export const countWords = (text: string) => text.split(/\s+/).filter(Boolean).length;

/** `words` words of tone as raw PCM16 bytes. */
export const toneBytes = (words: number, rate: number) => pcmBytes(tone(words * WORD_MS, rate));
