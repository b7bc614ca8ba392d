/**
 * Minimal WAV (RIFF, PCM16, mono) reading and writing, for tests, fixtures and the call emulator. Only
 * the engine's own format is accepted: anything else fails loudly rather than being misread as noise.
 */
import { readFile, writeFile } from 'node:fs/promises';

export interface WavAudio {
  samples: Int16Array;
  sampleRate: number;
}

export class WavFormatError extends Error {
  override name = 'WavFormatError';
}

const WAVE_FORMAT_PCM = 1;
const WAVE_FORMAT_EXTENSIBLE = 0xfffe;

/** A 44-byte canonical header followed by little-endian samples. */
export function encodeWav(samples: Int16Array, sampleRate: number): Uint8Array {
  if (!Number.isInteger(sampleRate) || sampleRate <= 0) throw new RangeError(`bad sample rate ${sampleRate}`);
  const dataBytes = samples.length * 2;
  const buf = new Uint8Array(44 + dataBytes);
  const v = new DataView(buf.buffer);
  const ascii = (at: number, s: string) => { for (let i = 0; i < 4; i++) buf[at + i] = s.charCodeAt(i); };
  ascii(0, 'RIFF');
  v.setUint32(4, 36 + dataBytes, true);
  ascii(8, 'WAVE');
  ascii(12, 'fmt ');
  v.setUint32(16, 16, true); // fmt chunk size
  v.setUint16(20, WAVE_FORMAT_PCM, true);
  v.setUint16(22, 1, true); // channels
  v.setUint32(24, sampleRate, true);
  v.setUint32(28, sampleRate * 2, true); // byte rate
  v.setUint16(32, 2, true); // block align
  v.setUint16(34, 16, true); // bits per sample
  ascii(36, 'data');
  v.setUint32(40, dataBytes, true);
  // DataView, not an Int16Array view, so the file is little-endian whatever the host is.
  for (let i = 0; i < samples.length; i++) v.setInt16(44 + i * 2, samples[i], true);
  return buf;
}

/**
 * Parses a RIFF/WAVE file holding PCM16 mono. Skips chunks it does not need (LIST, fact, …). A data
 * chunk whose size runs past the end (streamed recordings write 0 or 0xFFFFFFFF) is read to the end.
 */
export function decodeWav(bytes: Uint8Array): WavAudio {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const tag = (at: number) => String.fromCharCode(bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]);
  if (bytes.length < 12 || tag(0) !== 'RIFF' || tag(8) !== 'WAVE') throw new WavFormatError('not a WAV file (no RIFF/WAVE header)');

  let fmt: { format: number; channels: number; sampleRate: number; bits: number } | undefined;
  let at = 12;
  while (at + 8 <= bytes.length) {
    const id = tag(at);
    const size = v.getUint32(at + 4, true);
    const body = at + 8;
    if (id === 'fmt ') {
      if (size < 16 || body + 16 > bytes.length) throw new WavFormatError('truncated fmt chunk');
      let format = v.getUint16(body, true);
      // WAVE_FORMAT_EXTENSIBLE carries the real format in the first two bytes of its sub-format GUID.
      if (format === WAVE_FORMAT_EXTENSIBLE && size >= 40 && body + 26 <= bytes.length) format = v.getUint16(body + 24, true);
      fmt = { format, channels: v.getUint16(body + 2, true), sampleRate: v.getUint32(body + 4, true), bits: v.getUint16(body + 14, true) };
    } else if (id === 'data') {
      if (!fmt) throw new WavFormatError('data chunk before fmt chunk');
      checkFormat(fmt);
      const end = Math.min(bytes.length, body + size);
      const n = Math.floor((end - body) / 2);
      const samples = new Int16Array(n);
      for (let i = 0; i < n; i++) samples[i] = v.getInt16(body + i * 2, true);
      return { samples, sampleRate: fmt.sampleRate };
    }
    at = body + size + (size & 1); // chunks are word-aligned
  }
  throw new WavFormatError(fmt ? 'no data chunk' : 'no fmt chunk');
}

function checkFormat(f: { format: number; channels: number; sampleRate: number; bits: number }) {
  const describe = `format ${f.format === WAVE_FORMAT_PCM ? 'PCM' : f.format === 3 ? 'IEEE float' : f.format === 6 ? 'A-law' : f.format === 7 ? 'μ-law' : f.format}, ${f.bits}-bit, ${f.channels} channel(s)`;
  if (f.format !== WAVE_FORMAT_PCM || f.bits !== 16 || f.channels !== 1) {
    throw new WavFormatError(`unsupported WAV: ${describe}; only 16-bit PCM mono is supported`);
  }
  if (f.sampleRate <= 0) throw new WavFormatError('WAV sample rate is 0');
}

export async function readWavFile(path: string): Promise<WavAudio> {
  return decodeWav(await readFile(path));
}

export async function writeWavFile(path: string, samples: Int16Array, sampleRate: number): Promise<void> {
  await writeFile(path, encodeWav(samples, sampleRate));
}
