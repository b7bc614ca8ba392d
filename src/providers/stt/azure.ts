/**
 * Azure AI Speech streaming speech-to-text, through Microsoft's Speech SDK (continuous recognition over
 * a push stream of the caller's PCM16).
 *
 * Followed: "Speech Service WebSocket protocol" (docs.microsoft.com/azure/cognitive-services/Speech/
 * api-reference-rest/websocketprotocol), "How to recognize speech" and "Improve recognition accuracy
 * with phrase list" (learn.microsoft.com/azure/ai-services/speech-service/how-to-recognize-speech,
 * improve-accuracy-phrase-list), the SDK reference for SpeechConfig.fromEndpoint, PushAudioInputStream,
 * CancellationErrorCode, and "Troubleshoot the Speech SDK" (401/403/429 on the WebSocket upgrade).
 *
 * Where it connects: `access.extra.sttUrl` when given; otherwise from `access.baseUrl`: the default
 * regional form https://{region}.api.cognitive.microsoft.com becomes wss://{region}.stt.speech.microsoft.com,
 * any other URL (a Speech container, a proxy, a test fake) is used as is with http(s) → ws(s).
 * The recognition path /speech/recognition/conversation/cognitiveservices/v1 is appended to either.
 *
 * Offsets from the service are 100-ns ticks from the start of the stream. Reconnects: the SDK's connect
 * retries are off (a refused connect fails once, typed). After a phrase was recognized on a connection the
 * SDK re-opens a dropped one by itself, replaying the unrecognized audio and keeping its offsets; a drop
 * before that cancels the recognition, and the session then opens one new recognizer itself and replays
 * the audio since the last final (see AzureSttSession).
 */
import * as sdk from 'microsoft-cognitiveservices-speech-sdk';
import type { AudioFrame } from '../../engine/audio/frame.js';
import { ProviderError, type ProviderErrorKind, type SttEvent, type SttSession, type WordTiming } from '../../engine/types.js';
import { kindOfStatus } from '../errors.js';
import { Listeners } from '../events.js';
import { ReplayBuffer } from './replay.js';
import type { SttConfig, SttOpenOptions, SttProvider, VendorAccess } from '../types.js';
import { toWebSocketUrl, trimSlash } from '../vendors.js';

export type { SttConfig };

const PROVIDER = 'azure';
export const RECOGNITION_PATH = '/speech/recognition/conversation/cognitiveservices/v1';
const TICKS_PER_MS = 10_000;
/** How long close() waits for the service to finish the turn after the end of audio. */
const CLOSE_WAIT_MS = 1500;
/**
 * How long close() waits for the SDK to dispose of the recognizer. Its close() waits for the WebSocket's
 * closing handshake (and, were recognition still on, for the service to end the turn) with no limit of its
 * own: a service that stops answering would hold close() until the socket library gives up, if ever.
 */
const DISPOSE_WAIT_MS = 1000;
const CONNECT_TIMEOUT_MS = 5000;

/** The recognition endpoint for `access` (see the header comment for the rule). */
export function azureSttEndpoint(access: VendorAccess): string {
  const explicit = access.extra?.sttUrl;
  if (explicit) return toWebSocketUrl(trimSlash(explicit)).replace(/(\/speech\/recognition\/.*)?$/, RECOGNITION_PATH);
  const base = trimSlash(access.baseUrl);
  const regional = /^https:\/\/([a-z0-9-]+)\.api\.cognitive\.microsoft\.com$/i.exec(base);
  const host = regional ? `wss://${regional[1]}.stt.speech.microsoft.com` : toWebSocketUrl(base);
  return host + RECOGNITION_PATH;
}

/** Azure recognizes locales, not bare languages: 'en' → 'en-US'. */
const DEFAULT_LOCALES: Record<string, string> = {
  en: 'en-US', es: 'es-ES', fr: 'fr-FR', de: 'de-DE', it: 'it-IT', pt: 'pt-BR', nl: 'nl-NL', ja: 'ja-JP', zh: 'zh-CN',
  ko: 'ko-KR', hi: 'hi-IN', ru: 'ru-RU', ar: 'ar-SA', pl: 'pl-PL', sv: 'sv-SE', tr: 'tr-TR', da: 'da-DK', fi: 'fi-FI',
  nb: 'nb-NO', no: 'nb-NO', cs: 'cs-CZ', el: 'el-GR', he: 'he-IL', id: 'id-ID', th: 'th-TH', uk: 'uk-UA', vi: 'vi-VN',
};

export function azureLocale(language: string): string {
  if (language.includes('-')) return language;
  const l = language.toLowerCase();
  return DEFAULT_LOCALES[l] ?? `${l}-${l.toUpperCase()}`;
}

/** The SDK reports a refused upgrade only in text ("Unexpected server response: 401"); recover the status. */
function cancellationError(code: sdk.CancellationErrorCode, details: string): ProviderError {
  const status = /(?:server response|StatusCode): (\d{3})\b/i.exec(details)?.[1];
  let kind: ProviderErrorKind;
  switch (code) {
    case sdk.CancellationErrorCode.AuthenticationFailure: kind = 'auth'; break;
    case sdk.CancellationErrorCode.TooManyRequests: kind = 'quota'; break;
    case sdk.CancellationErrorCode.ServiceTimeout: kind = 'timeout'; break;
    case sdk.CancellationErrorCode.ServiceError: kind = 'unavailable'; break;
    case sdk.CancellationErrorCode.BadRequestParameters: kind = 'protocol'; break;
    case sdk.CancellationErrorCode.ConnectionFailure: kind = status ? kindOfStatus(Number(status)) : 'network'; break;
    default: kind = status ? kindOfStatus(Number(status)) : 'protocol';
  }
  // The SDK puts the whole URL (key included, as a query parameter) into its details; keep only the reason.
  const reason = details.replace(/\s*(wss?|https?):\/\/\S+/g, '').slice(0, 200);
  return new ProviderError(kind, `${sdk.CancellationErrorCode[code]}: ${reason}`, PROVIDER);
}

/** The failure of an openConnection(), which the SDK reports as a bare string. */
function connectError(err: unknown): ProviderError {
  return cancellationError(sdk.CancellationErrorCode.ConnectionFailure, String((err as Error)?.message ?? err));
}

interface DetailedJson {
  Offset?: number;
  NBest?: { Words?: { Word: string; Offset: number; Duration: number }[] }[];
}

/** One recognizer on one connection: a session has one, or two after a reconnect. */
interface Leg {
  key: string;
  recognizer: sdk.SpeechRecognizer;
  stream: sdk.PushAudioInputStream;
  /** Resolves once the socket is open and configured; rejects with a ProviderError. */
  connected: Promise<void>;
}

const discarded = new WeakSet<Leg>();

/** Closes a leg once (the SDK throws on a second close). */
function discard(leg: Leg): void {
  if (discarded.has(leg)) return;
  discarded.add(leg);
  leg.stream.close();
  leg.recognizer.close(undefined, () => {});
}

async function startLeg(leg: Leg, signal?: AbortSignal): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  try {
    await Promise.race([
      leg.connected,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new ProviderError('timeout', 'connect timed out', PROVIDER)), CONNECT_TIMEOUT_MS);
        onAbort = () => reject(signal!.reason);
        signal?.addEventListener('abort', onAbort, { once: true });
      }),
    ]);
    await new Promise<void>((resolve, reject) => leg.recognizer.startContinuousRecognitionAsync(resolve, (e) => reject(connectError(e))));
  } catch (err) {
    discard(leg);
    throw err;
  } finally {
    clearTimeout(timer);
    if (onAbort) signal?.removeEventListener('abort', onAbort);
  }
}

/** A connection that drops again this soon after a reconnect is failing for good. */
const RECONNECT_COOLDOWN_MS = 10_000;

/**
 * A continuous recognition that survives a dropped connection the SDK gives up on (one that drops before
 * any phrase on it was recognized): this session opens a new recognizer, replays the audio since the last
 * final and maps the new stream's offsets back onto the session's timeline. At most once per
 * RECONNECT_COOLDOWN_MS; a refused reconnect or a non-retryable failure ends the session with an error.
 */
class AzureSttSession implements SttSession {
  private readonly listeners = new Listeners<SttEvent>();
  private leg: Leg;
  /** Session ms at which the current leg's audio begins. */
  private offsetMs = 0;
  private readonly replay = new ReplayBuffer();
  /** Whether speech_started was already reported for the phrase being recognized. */
  private inPhrase = false;
  private reconnecting = false;
  private lastReconnectAt = -Infinity;
  private failed = false;
  private closing?: Promise<void>;

  constructor(first: Leg, private readonly nextLeg: () => Leg) {
    this.leg = first;
    this.attach(first);
  }

  private attach(leg: Leg): void {
    const r = leg.recognizer;
    const live = () => leg === this.leg && !this.failed;
    r.speechStartDetected = (_s, e) => { if (live()) this.started(this.offsetMs + e.offset / TICKS_PER_MS); };
    r.recognizing = (_s, e) => {
      if (!live() || e.result.reason !== sdk.ResultReason.RecognizingSpeech || !e.result.text) return;
      const startMs = this.offsetMs + e.result.offset / TICKS_PER_MS;
      this.started(startMs);
      this.emit({ type: 'interim', text: e.result.text, atMs: startMs + e.result.duration / TICKS_PER_MS });
    };
    r.recognized = (_s, e) => {
      if (!live() || e.result.reason !== sdk.ResultReason.RecognizedSpeech || !e.result.text) return;
      const startMs = this.offsetMs + e.result.offset / TICKS_PER_MS;
      const endMs = startMs + e.result.duration / TICKS_PER_MS;
      this.inPhrase = false;
      this.replay.dropUntil(endMs);
      const words = this.words(e.result, startMs);
      // A recognized phrase is Azure's end of utterance (its segmentation silence elapsed).
      this.emit({ type: 'final', text: e.result.text, startMs, endMs, endOfTurn: true, ...(words ? { words } : {}) });
      this.emit({ type: 'speech_ended', atMs: endMs });
    };
    r.canceled = (_s, e) => {
      if (!live() || this.closing || e.reason !== sdk.CancellationReason.Error) return;
      void this.onFailure(cancellationError(e.errorCode, e.errorDetails ?? ''));
    };
  }

  private started(atMs: number): void {
    if (this.inPhrase) return;
    this.inPhrase = true;
    this.emit({ type: 'speech_started', atMs });
  }

  /** Word timings from the detailed JSON, placed on the result's timeline (the JSON's own offsets are relative to it). */
  private words(result: sdk.SpeechRecognitionResult, startMs: number): WordTiming[] | undefined {
    let json: DetailedJson;
    try {
      json = JSON.parse(result.properties.getProperty(sdk.PropertyId.SpeechServiceResponse_JsonResult, '{}')) as DetailedJson;
    } catch {
      return undefined;
    }
    const ws = json.NBest?.[0]?.Words;
    if (!ws?.length) return undefined;
    const base = json.Offset ?? ws[0].Offset;
    return ws.map((w) => {
      const s = startMs + (w.Offset - base) / TICKS_PER_MS;
      return { word: w.Word, startMs: s, endMs: s + w.Duration / TICKS_PER_MS };
    });
  }

  on(listener: (e: SttEvent) => void): () => void {
    return this.listeners.on(listener);
  }

  private emit(e: SttEvent): void {
    this.listeners.emit(e);
  }

  private fail(error: ProviderError): void {
    if (this.failed || this.closing) return;
    this.failed = true;
    discard(this.leg);
    this.emit({ type: 'error', error });
  }

  private async onFailure(cause: ProviderError): Promise<void> {
    if (!cause.retryable || this.reconnecting || Date.now() - this.lastReconnectAt < RECONNECT_COOLDOWN_MS) return this.fail(cause);
    this.reconnecting = true;
    this.lastReconnectAt = Date.now();
    discard(this.leg);
    const leg = this.nextLeg();
    this.leg = leg;
    this.attach(leg);
    try {
      await startLeg(leg);
      if (this.closing) return;
      this.offsetMs = this.replay.startMs;
      for (const frame of this.replay.frames()) this.write(leg, frame);
    } catch (err) {
      this.fail(err instanceof ProviderError ? err : connectError(err));
    } finally {
      this.reconnecting = false;
    }
  }

  private write(leg: Leg, frame: AudioFrame): void {
    const s = frame.samples;
    // The SDK keeps the buffer it is given; hand it a copy the caller cannot reuse.
    leg.stream.write(s.buffer.slice(s.byteOffset, s.byteOffset + s.byteLength) as ArrayBuffer);
  }

  push(frame: AudioFrame): void {
    if (this.failed || this.closing) return;
    this.replay.push(frame);
    if (!this.reconnecting) this.write(this.leg, frame);
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      const leg = this.leg;
      if (discarded.has(leg)) return;
      if (!this.failed) {
        // Stopping sends the end-of-audio message and waits for the service to end the turn.
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          new Promise<void>((resolve) => leg.recognizer.stopContinuousRecognitionAsync(resolve, () => resolve())),
          new Promise<void>((resolve) => { timer = setTimeout(resolve, CLOSE_WAIT_MS); }),
        ]);
        clearTimeout(timer);
      }
      discarded.add(leg);
      leg.stream.close();
      // Past the bound the SDK finishes disposing in the background; the session is over either way.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve) => {
          try {
            leg.recognizer.close(resolve, () => resolve());
          } catch {
            resolve(); // already disposed
          }
        }),
        new Promise<void>((resolve) => { timer = setTimeout(resolve, DISPOSE_WAIT_MS); }),
      ]);
      clearTimeout(timer);
    })();
    return this.closing;
  }
}

class AzureStt implements SttProvider {
  readonly name = PROVIDER;
  private warm?: Leg;

  constructor(private readonly access: VendorAccess, private readonly cfg: SttConfig) {}

  /** A recognizer for these options with its connection being opened (config sent, no audio yet). */
  private prepare(opts: SttOpenOptions): Leg {
    const config = sdk.SpeechConfig.fromEndpoint(new URL(azureSttEndpoint(this.access)), this.access.apiKey);
    config.speechRecognitionLanguage = azureLocale(opts.language || this.cfg.language);
    config.outputFormat = sdk.OutputFormat.Detailed;
    config.requestWordLevelTimestamps();
    // One connection attempt: retrying and falling back is the engine's decision (and this session's, on a drop).
    config.setProperty('SPEECH-Error-MaxRetryCount', '0');
    const stream = sdk.AudioInputStream.createPushStream(sdk.AudioStreamFormat.getWaveFormatPCM(opts.sampleRate, 16, 1));
    const recognizer = new sdk.SpeechRecognizer(config, sdk.AudioConfig.fromStreamInput(stream));
    const connection = sdk.Connection.fromRecognizer(recognizer);
    const connected = new Promise<void>((resolve, reject) => connection.openConnection(resolve, (e) => reject(connectError(e))));
    connected.catch(() => {}); // reported by whoever starts this leg
    return { key: `${opts.sampleRate}/${opts.language}`, recognizer, stream, connected };
  }

  /**
   * The phrase list travels in speech.context, which is sent when recognition starts, so a pre-connected
   * recognizer can still take the call's keywords. Azure has no per-word weights: every phrase is raised alike.
   */
  private withPhrases(leg: Leg, opts: SttOpenOptions): Leg {
    const keywords = Object.keys(opts.keywords ?? this.cfg.keywords ?? {});
    if (keywords.length) {
      const list = sdk.PhraseListGrammar.fromRecognizer(leg.recognizer);
      for (const k of keywords) list.addPhrase(k);
    }
    return leg;
  }

  preconnect(opts: { sampleRate: number; language: string }): void {
    if (this.warm) discard(this.warm);
    this.warm = this.prepare(opts);
  }

  async open(opts: SttOpenOptions, signal?: AbortSignal): Promise<SttSession> {
    if (signal?.aborted) throw signal.reason;
    const warm = this.warm;
    this.warm = undefined;
    const fits = warm?.key === `${opts.sampleRate}/${opts.language}`;
    if (warm && !fits) discard(warm);
    const fresh = () => this.withPhrases(this.prepare(opts), opts);
    let leg = fits ? this.withPhrases(warm!, opts) : fresh();
    try {
      await startLeg(leg, signal);
    } catch (err) {
      if (leg !== warm || signal?.aborted) throw err;
      // The pre-connection went stale or failed: one fresh attempt decides.
      leg = fresh();
      await startLeg(leg, signal);
    }
    return new AzureSttSession(leg, fresh);
  }

  async dispose(): Promise<void> {
    if (this.warm) discard(this.warm);
    this.warm = undefined;
  }
}

export function createAzureStt(access: VendorAccess, cfg: SttConfig): SttProvider {
  return new AzureStt(access, cfg);
}
