/**
 * Azure AI Speech text-to-speech over REST: one SSML request per sentence, raw PCM16 streamed back.
 *
 * Followed: "Text to speech REST API" (learn.microsoft.com/azure/ai-services/speech-service/
 * rest-text-to-speech: POST {host}/cognitiveservices/v1 with Ocp-Apim-Subscription-Key,
 * Content-Type: application/ssml+xml, X-Microsoft-OutputFormat and User-Agent; raw-*-16bit-mono-pcm
 * formats; 400/401/415/429/502 answers) and "Speech Synthesis Markup Language" (speech-synthesis-markup-
 * voice: <speak version xml:lang>, <voice name>, <prosody rate pitch> with relative percentages).
 *
 * Where it posts: `access.extra.ttsUrl` when given; otherwise from `access.baseUrl`: the default regional
 * form https://{region}.api.cognitive.microsoft.com becomes https://{region}.tts.speech.microsoft.com,
 * any other URL (a Speech container, a proxy, a test fake) is used as is.
 *
 * The stored voice is Vocode's voice_azure: `voice_name`, `pitch` (percent, -100..100, default 0) and
 * `rate` (percent, -100..200, default 15); null means the default.
 */
import type { TtsSession } from '../../engine/types.js';
import { streamBytes } from '../http.js';
import type { TtsProvider, VendorAccess } from '../types.js';
import { trimSlash } from '../vendors.js';
import { SentenceTtsSession, type SentenceSynthesizer } from './sentenceSession.js';

const PROVIDER = 'azure';
const DEFAULT_VOICE = 'en-US-SteffanNeural';
const DEFAULT_RATE = 15;
const DEFAULT_PITCH = 0;
/** Raw PCM rates the service streams; anything else is resampled from the next one up. */
const RATES: Record<number, string> = {
  8000: 'raw-8khz-16bit-mono-pcm',
  16000: 'raw-16khz-16bit-mono-pcm',
  24000: 'raw-24khz-16bit-mono-pcm',
  48000: 'raw-48khz-16bit-mono-pcm',
};

export function azureTtsBase(access: VendorAccess): string {
  if (access.extra?.ttsUrl) return trimSlash(access.extra.ttsUrl);
  const base = trimSlash(access.baseUrl);
  const regional = /^https:\/\/([a-z0-9-]+)\.api\.cognitive\.microsoft\.com$/i.exec(base);
  return regional ? `https://${regional[1]}.tts.speech.microsoft.com` : base;
}

export function xmlEscape(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);
}

const percent = (n: number) => `${n >= 0 ? '+' : ''}${Math.round(n)}%`;

function intOr(v: unknown, fallback: number, min: number, max: number): number {
  return typeof v === 'number' && Number.isFinite(v) ? Math.min(max, Math.max(min, v)) : fallback;
}

export function azureSsml(text: string, voice: Record<string, unknown>): string {
  const name = typeof voice.voice_name === 'string' && voice.voice_name ? voice.voice_name : DEFAULT_VOICE;
  // The voice name starts with its locale (en-US-AvaNeural); the service wants it on <speak> too.
  const lang = /^[a-z]{2,3}-[A-Z]{2,4}/i.exec(name)?.[0] ?? 'en-US';
  const rate = intOr(voice.rate, DEFAULT_RATE, -100, 200);
  const pitch = intOr(voice.pitch, DEFAULT_PITCH, -100, 100);
  return `<speak version="1.0" xmlns="http://www.w3.org/2001/10/synthesis" xml:lang="${xmlEscape(lang)}">`
    + `<voice name="${xmlEscape(name)}"><prosody rate="${percent(rate)}" pitch="${percent(pitch)}">${xmlEscape(text)}</prosody></voice></speak>`;
}

/** The smallest raw rate at or above what the call plays, so resampling only ever goes down. */
export function vendorRateFor(sampleRate: number): number {
  return Object.keys(RATES).map(Number).find((r) => r >= sampleRate) ?? 48000;
}

class AzureTts implements TtsProvider {
  readonly name = PROVIDER;
  private readonly url: string;

  constructor(private readonly access: VendorAccess, private readonly voice: Record<string, unknown>) {
    this.url = `${azureTtsBase(access)}/cognitiveservices/v1`;
  }

  async open(opts: { sampleRate: number }, signal: AbortSignal): Promise<TtsSession> {
    if (signal.aborted) throw signal.reason;
    const vendorRate = vendorRateFor(opts.sampleRate);
    const synth: SentenceSynthesizer = {
      provider: PROVIDER,
      vendorRate,
      synthesize: (text, sig) => streamBytes({
        provider: PROVIDER,
        url: this.url,
        headers: {
          'Ocp-Apim-Subscription-Key': this.access.apiKey,
          'Content-Type': 'application/ssml+xml',
          'X-Microsoft-OutputFormat': RATES[vendorRate],
          'User-Agent': 'switchboard',
        },
        body: azureSsml(text, this.voice),
        signal: sig,
      }),
    };
    return new SentenceTtsSession(synth, opts.sampleRate, signal);
  }
}

export function createAzureTts(access: VendorAccess, voice: Record<string, unknown>): TtsProvider {
  return new AzureTts(access, voice);
}
