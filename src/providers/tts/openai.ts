/**
 * OpenAI speech (and Vocode's built-in voices, which Switchboard voices with OpenAI).
 *
 * Follows OpenAI's API reference "Create speech" (POST /audio/speech,
 * https://platform.openai.com/docs/api-reference/audio/createSpeech) and the "Text to speech" guide
 * (https://platform.openai.com/docs/guides/text-to-speech): JSON body {model, voice, input,
 * response_format, speed, instructions}, Bearer auth, the audio streamed in the response body.
 * `response_format: 'pcm'` is headerless 24 kHz 16-bit little-endian mono, resampled here to the call's
 * rate. `instructions` does not work with tts-1 / tts-1-hd, so it is sent to the gpt-4o models only.
 */
import type { TtsSession } from '../../engine/types.js';
import { streamBytes } from '../http.js';
import { SentenceTtsSession, type SentenceSynthesizer } from './sentenceSession.js';
import type { TtsProvider, VendorAccess } from '../types.js';

const PROVIDER = 'openai';
const PCM_RATE = 24_000;
export const DEFAULT_TTS_MODEL = 'gpt-4o-mini-tts';
export const DEFAULT_TTS_VOICE = 'alloy';

export interface OpenAITtsOptions {
  voice: string;
  model: string;
  speed?: number;
  instructions?: string;
}

class OpenAISynthesizer implements SentenceSynthesizer {
  readonly provider = PROVIDER;
  readonly vendorRate = PCM_RATE;
  constructor(private readonly access: VendorAccess, private readonly o: OpenAITtsOptions) {}

  synthesize(text: string, signal: AbortSignal): AsyncIterable<Uint8Array> {
    const body: Record<string, unknown> = { model: this.o.model, voice: this.o.voice, input: text, response_format: 'pcm' };
    if (this.o.speed !== undefined) body.speed = this.o.speed;
    if (this.o.instructions && this.o.model.startsWith('gpt-')) body.instructions = this.o.instructions;
    return streamBytes({
      provider: PROVIDER,
      url: `${this.access.baseUrl}/audio/speech`,
      headers: { ...openAIHeaders(this.access), 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal,
    });
  }
}

/** Bearer key plus the organization header when the connection names one. */
export function openAIHeaders(access: VendorAccess): Record<string, string> {
  const h: Record<string, string> = { authorization: `Bearer ${access.apiKey}` };
  if (access.extra?.organization) h['openai-organization'] = access.extra.organization;
  return h;
}

export class OpenAITts implements TtsProvider {
  readonly name = PROVIDER;
  private readonly synth: OpenAISynthesizer;
  constructor(access: VendorAccess, options: OpenAITtsOptions) {
    this.synth = new OpenAISynthesizer(access, options);
  }
  async open(opts: { sampleRate: number }, signal: AbortSignal): Promise<TtsSession> {
    if (signal.aborted) throw signal.reason;
    return new SentenceTtsSession(this.synth, opts.sampleRate, signal);
  }
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v.trim() ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/** Stored `{type:'voice_openai', voice, model, speed, instructions}`; nulls take OpenAI's defaults. */
export function createOpenAITts(access: VendorAccess, voice: Record<string, unknown>): TtsProvider {
  return new OpenAITts(access, {
    voice: str(voice.voice) ?? DEFAULT_TTS_VOICE,
    model: str(voice.model) ?? DEFAULT_TTS_MODEL,
    speed: num(voice.speed),
    instructions: str(voice.instructions),
  });
}

/**
 * Vocode's hosted built-in voices have no public synthesis API, so a stored `voice_vocode` is voiced by
 * the nearest OpenAI voice: "joe" (Vocode's default, a male American voice) becomes `ash`, a warm male
 * conversational voice; any id we do not know falls back to OpenAI's default `alloy`.
 */
export const VOCODE_VOICE_MAP: Record<string, string> = { joe: 'ash' };

export function createVocodeVoiceTts(access: VendorAccess, voice: Record<string, unknown>): TtsProvider {
  const id = (str(voice.voice_id) ?? 'joe').toLowerCase();
  return new OpenAITts(access, { voice: VOCODE_VOICE_MAP[id] ?? DEFAULT_TTS_VOICE, model: DEFAULT_TTS_MODEL });
}
