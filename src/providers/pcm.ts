/** Byte-level PCM helpers for vendor wire formats (little-endian 16-bit, base64 JSON fields, μ-law). */
import { createResampler, type Resampler } from '../engine/audio/resampler.js';

/** Little-endian PCM16 bytes of `samples` (a view when the platform is little-endian, as Node's are). */
export function pcmBytes(samples: Int16Array): Buffer {
  return Buffer.from(samples.buffer, samples.byteOffset, samples.byteLength);
}

/**
 * Samples from little-endian PCM16 bytes. Vendors may split a sample across two messages, so an odd
 * trailing byte is returned for the caller to prepend to the next chunk.
 */
export function pcmSamples(bytes: Uint8Array, carry?: Uint8Array): { samples: Int16Array; rest: Uint8Array } {
  const all = carry && carry.length ? Buffer.concat([carry, bytes]) : bytes;
  const even = all.length - (all.length % 2);
  const copy = new Int16Array(even / 2);
  new Uint8Array(copy.buffer).set(all.subarray(0, even));
  return { samples: copy, rest: all.subarray(even) };
}

/** A PCM16 byte stream cut anywhere, turned into whole samples. */
export class PcmAssembler {
  private carry: Uint8Array = new Uint8Array(0);
  push(bytes: Uint8Array): Int16Array {
    const { samples, rest } = pcmSamples(bytes, this.carry);
    this.carry = rest;
    return samples;
  }
}

/**
 * Streaming rate conversion that is free when the rates match: vendors that synthesize at any rate are
 * asked for the caller's rate, the others (OpenAI speech is 24 kHz only) are resampled here.
 */
export class RateConverter {
  private resampler?: Promise<Resampler>;
  private destroyed = false;
  constructor(readonly fromRate: number, readonly toRate: number) {}
  async process(samples: Int16Array): Promise<Int16Array> {
    if (this.fromRate === this.toRate) return samples;
    // Audio still arriving for a cancelled reply must not allocate a resampler nobody destroys.
    if (this.destroyed) return new Int16Array(0);
    this.resampler ??= createResampler(this.fromRate, this.toRate);
    return (await this.resampler).process(samples);
  }
  /** The tail still inside the filter; call at the end of an utterance. */
  async flush(): Promise<Int16Array> {
    if (!this.resampler) return new Int16Array(0);
    return (await this.resampler).flush();
  }
  destroy(): void {
    this.destroyed = true;
    void this.resampler?.then((r) => r.destroy(), () => {});
    this.resampler = undefined;
  }
}
