import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeWav, encodeWav, readWavFile, WavFormatError, writeWavFile } from '../../../src/engine/audio/wav.js';

const ramp = Int16Array.from({ length: 999 }, (_, i) => ((i * 131) % 65536) - 32768);

/** Builds a WAV by hand from chunks, to test the reader against files we did not write ourselves. */
function riff(chunks: [string, Uint8Array][]): Uint8Array {
  const parts: number[] = [...Buffer.from('WAVE')];
  for (const [id, body] of chunks) {
    const head = Buffer.alloc(8);
    head.write(id, 0, 'ascii');
    head.writeUInt32LE(body.length, 4);
    parts.push(...head, ...body);
    if (body.length & 1) parts.push(0);
  }
  const h = Buffer.alloc(8);
  h.write('RIFF', 0, 'ascii');
  h.writeUInt32LE(parts.length, 4);
  return Uint8Array.from([...h, ...parts]);
}

function fmt(format: number, channels: number, rate: number, bits: number, extra?: Buffer): Uint8Array {
  const b = Buffer.alloc(16);
  b.writeUInt16LE(format, 0);
  b.writeUInt16LE(channels, 2);
  b.writeUInt32LE(rate, 4);
  b.writeUInt32LE((rate * channels * bits) / 8, 8);
  b.writeUInt16LE((channels * bits) / 8, 12);
  b.writeUInt16LE(bits, 14);
  return extra ? Buffer.concat([b, extra]) : b;
}

const pcmBytes = (s: Int16Array) => {
  const b = Buffer.alloc(s.length * 2);
  s.forEach((v, i) => b.writeInt16LE(v, i * 2));
  return b;
};

describe('WAV', () => {
  it('writes a canonical 44-byte PCM16 mono header', () => {
    const w = Buffer.from(encodeWav(Int16Array.of(1, -2, 32767), 8000));
    expect(w.length).toBe(44 + 6);
    expect(w.toString('ascii', 0, 4)).toBe('RIFF');
    expect(w.readUInt32LE(4)).toBe(36 + 6);
    expect(w.toString('ascii', 8, 16)).toBe('WAVEfmt ');
    expect([w.readUInt32LE(16), w.readUInt16LE(20), w.readUInt16LE(22), w.readUInt32LE(24), w.readUInt32LE(28), w.readUInt16LE(32), w.readUInt16LE(34)])
      .toEqual([16, 1, 1, 8000, 16000, 2, 16]);
    expect(w.toString('ascii', 36, 40)).toBe('data');
    expect(w.readUInt32LE(40)).toBe(6);
    expect([w.readInt16LE(44), w.readInt16LE(46), w.readInt16LE(48)]).toEqual([1, -2, 32767]);
  });

  it('round-trips samples and rate', () => {
    const { samples, sampleRate } = decodeWav(encodeWav(ramp, 16000));
    expect(sampleRate).toBe(16000);
    expect(Array.from(samples)).toEqual(Array.from(ramp));
  });

  it('reads through extra chunks (LIST, odd-sized padding) and WAVE_FORMAT_EXTENSIBLE PCM', () => {
    const list = Buffer.from('INFOISFT\x05\x00\x00\x00abcde', 'binary'); // odd size: padded
    const ext = Buffer.alloc(24);
    ext.writeUInt16LE(22, 0); // cbSize
    ext.writeUInt16LE(16, 2); // valid bits
    ext.writeUInt32LE(4, 4); // channel mask
    ext.writeUInt16LE(1, 8); // sub-format GUID starts with 0x0001 = PCM
    const file = riff([['fmt ', fmt(0xfffe, 1, 24000, 16, ext)], ['LIST', list.subarray(0, 13)], ['data', pcmBytes(ramp)]]);
    const { samples, sampleRate } = decodeWav(file);
    expect(sampleRate).toBe(24000);
    expect(Array.from(samples)).toEqual(Array.from(ramp));
  });

  it('reads a data chunk whose size runs past the end (streamed recording)', () => {
    const file = Buffer.from(riff([['fmt ', fmt(1, 1, 8000, 16)], ['data', pcmBytes(Int16Array.of(5, 6, 7))]]));
    file.writeUInt32LE(0xffffffff, 40);
    expect(Array.from(decodeWav(file).samples)).toEqual([5, 6, 7]);
  });

  it('reads from a Buffer slice that does not start at offset 0', () => {
    const inner = encodeWav(Int16Array.of(9, -9), 8000);
    const outer = new Uint8Array(inner.length + 3);
    outer.set(inner, 3);
    expect(Array.from(decodeWav(outer.subarray(3)).samples)).toEqual([9, -9]);
  });

  it('rejects anything but PCM16 mono with a clear error', () => {
    const data: [string, Uint8Array] = ['data', new Uint8Array(8)];
    expect(() => decodeWav(riff([['fmt ', fmt(1, 2, 8000, 16)], data]))).toThrow(/format PCM, 16-bit, 2 channel.*only 16-bit PCM mono/);
    expect(() => decodeWav(riff([['fmt ', fmt(1, 1, 8000, 8)], data]))).toThrow(/PCM, 8-bit/);
    expect(() => decodeWav(riff([['fmt ', fmt(3, 1, 8000, 32)], data]))).toThrow(/IEEE float/);
    expect(() => decodeWav(riff([['fmt ', fmt(7, 1, 8000, 8)], data]))).toThrow(/μ-law/);
    expect(() => decodeWav(riff([['fmt ', fmt(1, 1, 8000, 24)], data]))).toThrow(WavFormatError);
    expect(() => decodeWav(Buffer.from('not a wav file at all'))).toThrow(/not a WAV/);
    expect(() => decodeWav(riff([['fmt ', fmt(1, 1, 8000, 16)]]))).toThrow(/no data chunk/);
    expect(() => decodeWav(riff([data]))).toThrow(/data chunk before fmt/);
  });

  it('reads and writes files', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sb-wav-'));
    try {
      const path = join(dir, 'x.wav');
      await writeWavFile(path, ramp, 48000);
      const back = await readWavFile(path);
      expect(back.sampleRate).toBe(48000);
      expect(Array.from(back.samples)).toEqual(Array.from(ramp));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
