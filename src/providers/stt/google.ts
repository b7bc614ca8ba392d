/**
 * Google Cloud Speech-to-Text v1 streaming recognition (gRPC StreamingRecognize) through the official
 * @google-cloud/speech client.
 *
 * Followed:
 *  - "Transcribe audio from streaming input" — https://cloud.google.com/speech-to-text/docs/transcribe-streaming-audio
 *  - google/cloud/speech/v1/cloud_speech.proto as shipped in @google-cloud/speech (StreamingRecognizeRequest:
 *    first message streaming_config, then audio_content only; StreamingRecognitionConfig interim_results,
 *    single_utterance, enable_voice_activity_events; StreamingRecognizeResponse speech_event_type /
 *    speech_event_time, results with is_final, result_end_time and WordInfo offsets, all relative to the
 *    start of the stream; SpeechContext phrases + boost)
 *  - "Quotas and limits" (streaming audio is limited to about 5 minutes per stream) —
 *    https://cloud.google.com/speech-to-text/quotas
 *  - "Using API keys" / system parameters (`x-goog-api-key`) — https://cloud.google.com/docs/authentication/api-keys
 *  - gRPC status codes and google.rpc.ErrorInfo reasons (API_KEY_INVALID arrives as INVALID_ARGUMENT) —
 *    https://cloud.google.com/apis/design/errors
 *
 * Credentials go on each call as metadata we build (x-goog-api-key, or a service account's self-signed
 * JWT from the client's own auth object), so nothing is read from the environment and a plaintext
 * loopback endpoint (http:// base URL) works the same as TLS.
 *
 * Streams outlive Google's per-stream audio limit by rotation: after STREAM_SOFT of the limit the next
 * quiet moment (no speech awaiting its final) starts a new stream; at STREAM_HARD it rotates regardless.
 * Rotation and the one automatic reconnect after a drop both replay the audio since the last final, so a
 * turn spanning the switch is still transcribed; event times stay on the session's own audio timeline.
 */
import { credentials as grpcCredentials } from '@grpc/grpc-js';
import { v1 } from '@google-cloud/speech';
import type { AudioFrame } from '../../engine/audio/frame.js';
import { ProviderError, type ProviderErrorKind, type SttEvent, type SttSession, type WordTiming } from '../../engine/types.js';
import { pcmBytes } from '../pcm.js';
import { Listeners } from '../events.js';
import { ReplayBuffer } from './replay.js';
import type { SttConfig as BaseSttConfig, SttOpenOptions, SttProvider, VendorAccess } from '../types.js';

const PROVIDER = 'google_speech';
const DEFAULT_BASE_URL = 'https://speech.googleapis.com';
/** Google's documented streaming limit is about five minutes of audio per stream. */
const DEFAULT_STREAM_LIMIT_MS = 300_000;
const STREAM_SOFT = 0.8;
const STREAM_HARD = 0.97;
/** Without speech awaiting its final, only this much recent audio is worth replaying (a word may be starting). */
const QUIET_REPLAY_MS = 500;
/** Replay of an utterance in progress starts this long before Google heard it begin. */
const SPEECH_LEAD_MS = 300;
const CLOSE_WAIT_MS = 1500;
const RECONNECT_COOLDOWN_MS = 10_000;
/**
 * Google rejects a bad key or an exhausted quota within a round trip of the call starting; a stream that
 * has neither failed nor answered by then is taken as accepted (the server need not send headers early).
 */
const DEFAULT_OPEN_CONFIRM_MS = 400;

const { SpeechClient } = v1;
type Client = InstanceType<typeof SpeechClient>;
type CallStream = ReturnType<Client['_streamingRecognize']>;

export interface SttConfig extends BaseSttConfig {
  /** Per-stream audio limit to rotate under (tests shorten it). */
  streamLimitMs?: number;
  openConfirmMs?: number;
}

export function createGoogleStt(access: VendorAccess, cfg: SttConfig): SttProvider {
  return new GoogleStt(access, cfg);
}

/** BCP-47 tags Google expects for the bare language codes agents are configured with. */
const REGION: Record<string, string> = {
  en: 'en-US', es: 'es-US', fr: 'fr-FR', de: 'de-DE', it: 'it-IT', pt: 'pt-BR', nl: 'nl-NL', ja: 'ja-JP', ko: 'ko-KR',
  zh: 'cmn-Hans-CN', hi: 'hi-IN', ru: 'ru-RU', pl: 'pl-PL', tr: 'tr-TR', sv: 'sv-SE', da: 'da-DK', fi: 'fi-FI',
  no: 'nb-NO', nb: 'nb-NO', uk: 'uk-UA', vi: 'vi-VN', id: 'id-ID', th: 'th-TH', cs: 'cs-CZ', el: 'el-GR',
  he: 'iw-IL', ro: 'ro-RO', hu: 'hu-HU', ar: 'ar-SA', ms: 'ms-MY', fil: 'fil-PH', ta: 'ta-IN', bn: 'bn-IN',
};

export function googleLanguage(language: string): string {
  if (language.includes('-')) return language;
  return REGION[language.toLowerCase()] ?? language;
}

/** Boosts as Google takes them: phrases grouped by boost; Google ignores non-positive boosts. */
export function speechContexts(keywords: Record<string, number> | undefined): { phrases: string[]; boost: number }[] {
  const byBoost = new Map<number, string[]>();
  for (const [phrase, boost] of Object.entries(keywords ?? {})) {
    const b = Math.min(20, Math.max(1, Number.isFinite(boost) ? boost : 1));
    byBoost.set(b, [...(byBoost.get(b) ?? []), phrase]);
  }
  return [...byBoost].map(([boost, phrases]) => ({ phrases, boost }));
}

interface ServiceAccount { client_email: string; private_key: string; private_key_id?: string; project_id?: string }

class GoogleStt implements SttProvider {
  readonly name = PROVIDER;
  private client?: Client;
  private readonly account?: ServiceAccount;
  private readonly accountError?: string;

  constructor(private readonly access: VendorAccess, private readonly cfg: SttConfig) {
    const json = access.extra?.service_account_json;
    if (json) {
      try {
        const sa = JSON.parse(json) as Partial<ServiceAccount>;
        if (!sa.client_email || !sa.private_key) throw new Error('missing client_email or private_key');
        this.account = sa as ServiceAccount;
      } catch (err) {
        this.accountError = `service_account_json is not a usable service-account key (${(err as Error).message})`;
      }
    }
  }

  private getClient(): Client {
    if (this.client) return this.client;
    const url = new URL(this.access.baseUrl || DEFAULT_BASE_URL);
    const plaintext = url.protocol === 'http:';
    this.client = new SpeechClient({
      apiEndpoint: url.hostname,
      port: Number(url.port) || (plaintext ? 80 : 443),
      sslCreds: plaintext ? grpcCredentials.createInsecure() : grpcCredentials.createSsl(),
      // Set explicitly so the client never goes looking for ambient credentials to learn it.
      universeDomain: 'googleapis.com',
      fallback: false,
      // Our own connection rather than grpc-js's process-wide pool: preconnect warms this provider's
      // channel, and a dropped connection takes down only this provider's streams.
      'grpc.use_local_subchannel_pool': 1,
      ...(this.account ? {
        credentials: { client_email: this.account.client_email, private_key: this.account.private_key },
        projectId: this.account.project_id,
      } : {}),
    });
    return this.client;
  }

  /** The credential for one call, as gRPC metadata. */
  async headers(): Promise<Record<string, string>> {
    if (this.accountError) throw new ProviderError('auth', this.accountError, PROVIDER, false);
    if (this.account) {
      try {
        const h = await this.getClient().auth.getRequestHeaders();
        const out: Record<string, string> = {};
        h.forEach((v, k) => { out[k] = v; });
        return out;
      } catch (err) {
        throw new ProviderError('auth', `service-account signing failed: ${(err as Error).message}`, PROVIDER, false);
      }
    }
    if (!this.access.apiKey) throw new ProviderError('auth', 'no API key or service account configured', PROVIDER, false);
    return { 'x-goog-api-key': this.access.apiKey };
  }

  /** Opens the channel (TCP + TLS + HTTP/2) during call setup so the first stream starts at once. */
  preconnect(): void {
    const client = this.getClient();
    void client.initialize().then((stub) => {
      const channel = stub as unknown as { waitForReady(deadline: number, cb: (err?: Error) => void): void };
      channel.waitForReady(Date.now() + 5000, () => {});
    }, () => {});
  }

  async open(opts: SttOpenOptions, signal?: AbortSignal): Promise<SttSession> {
    signal?.throwIfAborted();
    const language = googleLanguage(opts.language || this.cfg.language);
    const keywords = { ...this.cfg.keywords, ...opts.keywords };
    const model = this.cfg.model || (opts.sampleRate <= 8000 ? 'phone_call' : 'latest_long');
    const streamingConfig = {
      config: {
        encoding: 'LINEAR16' as const,
        sampleRateHertz: opts.sampleRate,
        languageCode: language,
        model,
        useEnhanced: model === 'phone_call',
        enableWordTimeOffsets: true,
        enableAutomaticPunctuation: true,
        speechContexts: speechContexts(keywords),
      },
      interimResults: true,
      singleUtterance: false,
      enableVoiceActivityEvents: true,
    };
    const client = this.getClient();
    try {
      await client.initialize();
    } catch (err) {
      throw grpcError(err);
    }
    const session = new GoogleSttSession({
      start: async () => client._streamingRecognize({ otherArgs: { headers: await this.headers() } }),
      streamingConfig,
      limitMs: this.cfg.streamLimitMs ?? DEFAULT_STREAM_LIMIT_MS,
      confirmMs: this.cfg.openConfirmMs ?? DEFAULT_OPEN_CONFIRM_MS,
    });
    await session.begin(signal);
    return session;
  }

  async dispose(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    await client?.close().catch(() => {});
  }
}

interface SessionWiring {
  start(): Promise<CallStream>;
  streamingConfig: unknown;
  limitMs: number;
  confirmMs: number;
}

/** One Google stream: its call and where its audio sits on the session's timeline. */
interface Live { call: CallStream; offsetMs: number; sentMs: number; replayedMs: number; ended: boolean }

type Duration = { seconds?: string | number | null; nanos?: number | null } | null | undefined;
const ms = (d: Duration) => (d ? Number(d.seconds ?? 0) * 1000 + Math.round((d.nanos ?? 0) / 1e6) : 0);

interface RecognizeResponse {
  error?: { code?: number; message?: string } | null;
  results?: {
    alternatives?: { transcript?: string; words?: { word?: string; startTime?: Duration; endTime?: Duration }[] }[];
    isFinal?: boolean;
    resultEndTime?: Duration;
  }[];
  speechEventType?: string | number;
  speechEventTime?: Duration;
}

class GoogleSttSession implements SttSession {
  private live!: Live;
  private readonly listeners = new Listeners<SttEvent>();
  private readonly replay = new ReplayBuffer();
  /** Speech was heard on this stream and its final has not come yet: not a moment to rotate. */
  private awaitingFinal = false;
  /** Session ms where the utterance awaiting its final began, when Google said so. */
  private speechStartMs: number | undefined;
  private lastFinalEndMs = 0;
  private rotating = false;
  /** Until `begin` resolves, a failing stream fails the open itself. */
  private opened = false;
  private closing = false;
  private closed = false;
  private lastReconnectAt = -Infinity;

  constructor(private readonly w: SessionWiring) {}

  /** Starts the first stream and waits until Google accepts it (or rejects key, quota, config). */
  async begin(signal?: AbortSignal): Promise<void> {
    const call = await this.w.start();
    this.live = this.attach(call, 0);
    await new Promise<void>((resolve, reject) => {
      const done = (err?: unknown) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        call.off('metadata', onAccepted);
        call.off('data', onAccepted);
        call.off('error', onError);
        if (err === undefined) { this.opened = true; resolve(); }
        else { this.closed = true; this.live.ended = true; cancel(call); reject(err); }
      };
      const onAccepted = () => done();
      const onError = (err: unknown) => done(grpcError(err));
      const onAbort = () => done(signal!.reason);
      const timer = setTimeout(onAccepted, this.w.confirmMs);
      call.once('metadata', onAccepted);
      call.once('data', onAccepted);
      call.once('error', onError);
      signal?.addEventListener('abort', onAbort, { once: true });
      if (signal?.aborted) onAbort();
    });
  }

  on(listener: (e: SttEvent) => void): () => void {
    return this.listeners.on(listener);
  }

  private emit(e: SttEvent): void {
    this.listeners.emit(e);
  }

  push(frame: AudioFrame): void {
    if (this.closing || this.closed) return;
    this.replay.push(frame);
    if (this.rotating) return; // replayed onto the next stream
    this.send(this.live, frame);
    const { sentMs } = this.live;
    if (sentMs >= this.w.limitMs * STREAM_HARD || (sentMs >= this.w.limitMs * STREAM_SOFT && !this.awaitingFinal)) void this.rotate();
  }

  private send(live: Live, frame: AudioFrame): void {
    if (live.ended) return;
    // A copy: the call serialises later and the engine may reuse the frame's buffer.
    live.call.write({ audioContent: Buffer.from(pcmBytes(frame.samples)) });
    live.sentMs += (frame.samples.length * 1000) / frame.sampleRate;
  }

  private attach(call: CallStream, offsetMs: number): Live {
    const live: Live = { call, offsetMs, sentMs: 0, replayedMs: 0, ended: false };
    call.write({ streamingConfig: this.w.streamingConfig });
    // Responses already buffered when the session failed must not follow its error event.
    call.on('data', (r: RecognizeResponse) => { if (live === this.live && !this.closed) this.onResponse(r); });
    // An error is followed by an end: only the first says what happened.
    const ended = (error: ProviderError, raw: unknown) => {
      if (live.ended) return;
      live.ended = true;
      if (live === this.live) this.onStreamEnd(error, raw);
    };
    call.on('error', (err: unknown) => ended(grpcError(err), err));
    // Google ends a stream only when we half-close it; an end we did not ask for is a drop.
    call.on('end', () => ended(new ProviderError('network', 'stream ended by the server', PROVIDER), undefined));
    return live;
  }

  private onResponse(r: RecognizeResponse): void {
    const off = this.live.offsetMs;
    if (r.error?.code) {
      this.fail(grpcError({ code: r.error.code, details: r.error.message }));
      return;
    }
    const event = r.speechEventType;
    if (event === 'SPEECH_ACTIVITY_BEGIN' || event === 2) {
      this.awaitingFinal = true;
      this.speechStartMs = ms(r.speechEventTime) + off;
      this.emit({ type: 'speech_started', atMs: this.speechStartMs });
    } else if (event === 'SPEECH_ACTIVITY_END' || event === 3) {
      this.emit({ type: 'speech_ended', atMs: ms(r.speechEventTime) + off });
    }
    const results = r.results ?? [];
    const interim = results.filter((x) => !x.isFinal);
    for (const res of results.filter((x) => x.isFinal)) {
      const alt = res.alternatives?.[0];
      const text = (alt?.transcript ?? '').trim();
      const endMs = ms(res.resultEndTime) + off;
      const words: WordTiming[] = (alt?.words ?? []).map((wi) => ({ word: wi.word ?? '', startMs: ms(wi.startTime) + off, endMs: ms(wi.endTime) + off }));
      const startMs = words[0]?.startMs ?? this.lastFinalEndMs;
      this.lastFinalEndMs = endMs;
      this.awaitingFinal = false;
      this.speechStartMs = undefined;
      // Audio up to this final is transcribed; it never needs replaying.
      this.replay.dropUntil(endMs);
      if (text) this.emit({ type: 'final', text, startMs, endMs, endOfTurn: true, words });
    }
    const partial = interim.map((x) => x.alternatives?.[0]?.transcript ?? '').join('').trim();
    if (partial) {
      this.awaitingFinal = true;
      this.emit({ type: 'interim', text: partial, atMs: ms(interim.at(-1)?.resultEndTime) + off });
    }
  }

  private onStreamEnd(error: ProviderError, raw: unknown): void {
    if (!this.opened || this.closing || this.closed) return;
    const code = (raw as { code?: number } | undefined)?.code;
    // The stream reached Google's audio limit before we rotated: carry on in a new one, unless even
    // the replayed audio was too long for a stream (rotating again would only loop).
    if (code === GRPC.OUT_OF_RANGE && this.live.sentMs > this.live.replayedMs) { void this.rotate(); return; }
    const transient = error.kind === 'network' || error.kind === 'unavailable' || error.kind === 'timeout';
    if (!transient || Date.now() - this.lastReconnectAt < RECONNECT_COOLDOWN_MS) { this.fail(error); return; }
    this.lastReconnectAt = Date.now();
    void this.rotate();
  }

  /** Moves to a new stream, replaying the audio not yet finalised. */
  private async rotate(): Promise<void> {
    if (this.rotating || this.closing || this.closed) return;
    this.rotating = true;
    const old = this.live;
    try {
      const call = await this.w.start();
      if (this.closing || this.closed) { cancel(call); return; }
      // Replay only what can still become words: the utterance in progress, or the last moment of quiet.
      const from = !this.awaitingFinal ? this.replay.pushedMs - QUIET_REPLAY_MS
        : this.speechStartMs !== undefined ? this.speechStartMs - SPEECH_LEAD_MS : -Infinity;
      this.replay.dropUntil(from);
      const offset = this.replay.startMs;
      this.live = this.attach(call, offset);
      this.awaitingFinal = false;
      this.speechStartMs = undefined;
      if (!old.ended) { old.ended = true; cancel(old.call); }
      for (const frame of this.replay.frames()) this.send(this.live, frame);
      this.live.replayedMs = this.live.sentMs;
    } catch (err) {
      this.fail(err instanceof ProviderError ? err : grpcError(err));
    } finally {
      this.rotating = false;
    }
  }

  private fail(error: ProviderError): void {
    if (this.closed) return;
    this.closed = true;
    if (!this.live.ended) { this.live.ended = true; cancel(this.live.call); }
    this.emit({ type: 'error', error });
  }

  /** Half-closes the stream (Google's end of audio), waits for the last results, then lets go. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    const live = this.live;
    if (this.closed || live.ended) { this.closed = true; return; }
    await new Promise<void>((resolve) => {
      const finish = () => { clearTimeout(timer); resolve(); };
      const timer = setTimeout(() => { cancel(live.call); finish(); }, CLOSE_WAIT_MS);
      live.call.once('end', finish);
      live.call.once('error', finish);
      live.call.end();
    });
    live.ended = true;
    this.closed = true;
  }
}

/** Cancels a call whose outcome no longer matters (its CANCELLED error must not go unhandled). */
function cancel(call: CallStream): void {
  call.on('error', () => {});
  call.cancel();
}

const GRPC = {
  CANCELLED: 1, UNKNOWN: 2, INVALID_ARGUMENT: 3, DEADLINE_EXCEEDED: 4, PERMISSION_DENIED: 7, RESOURCE_EXHAUSTED: 8,
  OUT_OF_RANGE: 11, INTERNAL: 13, UNAVAILABLE: 14, UNAUTHENTICATED: 16,
} as const;

/** A gRPC failure as the engine's typed error (gax adds `reason` from google.rpc.ErrorInfo). */
export function grpcError(err: unknown): ProviderError {
  if (err instanceof ProviderError) return err;
  const e = err as { code?: number; details?: string; message?: string; reason?: string } | undefined;
  const details = (e?.details || e?.message || 'stream failed').slice(0, 300);
  let kind: ProviderErrorKind;
  switch (e?.code) {
    case GRPC.INVALID_ARGUMENT:
      kind = e.reason === 'API_KEY_INVALID' || /API key not valid/i.test(details) ? 'auth' : 'protocol';
      break;
    case GRPC.UNAUTHENTICATED: case GRPC.PERMISSION_DENIED: kind = 'auth'; break;
    case GRPC.RESOURCE_EXHAUSTED: kind = 'quota'; break;
    case GRPC.DEADLINE_EXCEEDED: kind = 'timeout'; break;
    case GRPC.UNAVAILABLE:
      // grpc-js reports a lost or refused connection as UNAVAILABLE too; those are network failures.
      kind = /connection|ECONN|socket|GOAWAY|RST_STREAM|closed|dropped|No connection/i.test(details) ? 'network' : 'unavailable';
      break;
    case GRPC.INTERNAL: kind = 'unavailable'; break;
    case GRPC.CANCELLED: case GRPC.UNKNOWN: case undefined: kind = 'network'; break;
    default: kind = 'protocol';
  }
  const retryable = kind === 'network' || kind === 'timeout' || kind === 'unavailable' || e?.code === GRPC.RESOURCE_EXHAUSTED;
  return new ProviderError(kind, `gRPC ${e?.code ?? '?'}: ${details}`, PROVIDER, retryable);
}
