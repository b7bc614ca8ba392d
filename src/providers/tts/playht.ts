/**
 * PlayHT streaming text-to-speech.
 *
 * Follows PlayHT's API reference "Text to speech HTTP streaming" (POST /api/v2/tts/stream,
 * https://docs.play.ht/reference/api-generate-tts-audio-stream) and the guide "HTTP Streaming
 * Endpoints" (https://docs.play.ht/docs/http-streaming-endpoints): the secret key in the AUTHORIZATION
 * header, the user id in X-USER-ID, a JSON body {text, voice, output_format, sample_rate, speed,
 * quality, voice_engine, temperature, top_p, text_guidance, voice_guidance}, audio bytes streamed back
 * (a JSON `accept` would return a URL instead). The streaming formats are mp3, wav, ogg, flac and mulaw;
 * `wav` is the only lossless PCM one, so we ask for it at the call's rate and drop its RIFF header.
 * Errors carry PlayHT's {error_message, error_id} body.
 *
 * Note: PlayHT announced the shutdown of its API at the end of 2025; the adapter stays for accounts and
 * self-hosted gateways that still speak this protocol.
 */
import { ProviderError, type TtsSession } from '../../engine/types.js';
import { streamBytes } from '../http.js';
import type { TtsProvider, VendorAccess } from '../types.js';
import { SentenceTtsSession, type SentenceSynthesizer } from './sentenceSession.js';

const PROVIDER = 'playht';
export const DEFAULT_PLAYHT_VOICE = 's3://voice-cloning-zero-shot/d9ff78ba-d016-47f6-b0ef-dd630f59414e/female-cs/manifest.json';

export interface PlayHTOptions {
  voice: string;
  voiceEngine: string;
  speed?: number;
  quality?: string;
  temperature?: number;
  topP?: number;
  textGuidance?: number;
  voiceGuidance?: number;
  /** Trim the quiet lead-in PlayHT puts before each sentence (Vocode's experimental_remove_silence). */
  removeSilence?: boolean;
}

/**
 * Vocode stored `version: '2'` for PlayHT 2.0 voices, spoken fastest by PlayHT2.0-turbo; version 1 was
 * PlayHT's retired v1 API, so it (and no version) goes to Play3.0-mini, PlayHT's current low-latency engine.
 */
export function voiceEngineFor(version: unknown): string {
  return version === '2' || version === 2 ? 'PlayHT2.0-turbo' : 'Play3.0-mini';
}

class PlayHTSynthesizer implements SentenceSynthesizer {
  readonly provider = PROVIDER;
  constructor(private readonly access: VendorAccess, private readonly userId: string, private readonly o: PlayHTOptions, readonly vendorRate: number) {}

  async *synthesize(text: string, signal: AbortSignal): AsyncIterable<Uint8Array> {
    const body: Record<string, unknown> = {
      text, voice: this.o.voice, output_format: 'wav', sample_rate: this.vendorRate, voice_engine: this.o.voiceEngine,
    };
    const optional = { speed: this.o.speed, quality: this.o.quality, temperature: this.o.temperature, top_p: this.o.topP, text_guidance: this.o.textGuidance, voice_guidance: this.o.voiceGuidance };
    for (const [k, v] of Object.entries(optional)) if (v !== undefined) body[k] = v;
    const wav = new WavStreamReader(this.vendorRate);
    let leading = this.o.removeSilence ?? false;
    let carry = new Uint8Array(0);
    for await (const chunk of streamBytes({
      provider: PROVIDER,
      url: `${this.access.baseUrl}/api/v2/tts/stream`,
      headers: { AUTHORIZATION: this.access.apiKey, 'X-USER-ID': this.userId, accept: 'audio/wav', 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal,
    })) {
      let pcm = wav.push(chunk);
      if (leading && pcm.length) {
        // Whole samples only: an odd byte waits for its other half.
        const buf = carry.length ? Buffer.concat([carry, pcm]) : pcm;
        const even = buf.length - (buf.length % 2);
        const start = firstLoudByte(buf.subarray(0, even));
        if (start < even) { leading = false; pcm = buf.subarray(start); } else { carry = buf.slice(even); pcm = new Uint8Array(0); }
      }
      if (pcm.length) yield pcm;
    }
    if (!wav.started) throw new ProviderError('protocol', 'the audio stream had no WAV data', PROVIDER);
  }
}

/** The byte offset of the first sample above the silence level (-50 dBFS), or the length. */
function firstLoudByte(pcm: Uint8Array): number {
  const view = new DataView(pcm.buffer, pcm.byteOffset, pcm.byteLength);
  for (let i = 0; i + 1 < pcm.length; i += 2) if (Math.abs(view.getInt16(i, true)) > 100) return i;
  return pcm.length;
}

/**
 * Strips the RIFF header from a streamed WAV: the sizes in a streamed header are placeholders, so the
 * data chunk runs to the end of the stream. The header may arrive split across reads.
 */
export class WavStreamReader {
  private head = new Uint8Array(0);
  started = false;
  constructor(private readonly expectedRate: number) {}

  push(bytes: Uint8Array): Uint8Array {
    if (this.started) return bytes;
    const all = new Uint8Array(this.head.length + bytes.length);
    all.set(this.head);
    all.set(bytes, this.head.length);
    this.head = all;
    if (all.length < 12) return new Uint8Array(0);
    const tag = (at: number) => String.fromCharCode(all[at], all[at + 1], all[at + 2], all[at + 3]);
    if (tag(0) !== 'RIFF' || tag(8) !== 'WAVE') throw new ProviderError('protocol', 'expected a WAV stream', PROVIDER);
    const view = new DataView(all.buffer, all.byteOffset, all.byteLength);
    let at = 12;
    while (at + 8 <= all.length) {
      const id = tag(at);
      const size = view.getUint32(at + 4, true);
      if (id === 'data') {
        this.started = true;
        this.head = new Uint8Array(0);
        return all.subarray(at + 8);
      }
      if (at + 8 + size > all.length) return new Uint8Array(0); // the rest of this chunk has not arrived
      if (id === 'fmt ') {
        const format = view.getUint16(at + 8, true), channels = view.getUint16(at + 10, true);
        const rate = view.getUint32(at + 12, true), bits = view.getUint16(at + 22, true);
        if (format !== 1 || channels !== 1 || bits !== 16 || rate !== this.expectedRate) {
          throw new ProviderError('protocol', `unexpected WAV format (${format}, ${channels} ch, ${bits} bit, ${rate} Hz)`, PROVIDER);
        }
      }
      at += 8 + size + (size & 1);
    }
    return new Uint8Array(0);
  }
}

export class PlayHTTts implements TtsProvider {
  readonly name = PROVIDER;
  constructor(private readonly access: VendorAccess, private readonly userId: string | undefined, private readonly o: PlayHTOptions) {}

  async open(opts: { sampleRate: number }, signal: AbortSignal): Promise<TtsSession> {
    if (signal.aborted) throw signal.reason;
    if (!this.userId) throw new ProviderError('auth', 'no PlayHT user id (X-USER-ID) on the connection', PROVIDER);
    // PlayHT renders any rate from 8 to 48 kHz, so it is asked for the call's rate: no resampling.
    return new SentenceTtsSession(new PlayHTSynthesizer(this.access, this.userId, this.o, opts.sampleRate), opts.sampleRate, signal);
  }
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v.trim() ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/** Stored `{type:'voice_play_ht', voice_id, api_user_id, version, speed, quality, temperature, top_p, …}`. */
export function createPlayHTTts(access: VendorAccess, voice: Record<string, unknown>): TtsProvider {
  return new PlayHTTts(access, access.extra?.user_id ?? str(voice.api_user_id), {
    voice: str(voice.voice_id) ?? DEFAULT_PLAYHT_VOICE,
    voiceEngine: voiceEngineFor(voice.version),
    speed: num(voice.speed),
    quality: str(voice.quality),
    temperature: num(voice.temperature),
    topP: num(voice.top_p),
    textGuidance: num(voice.text_guidance),
    voiceGuidance: num(voice.voice_guidance),
    removeSilence: voice.experimental_remove_silence === true,
  });
}
