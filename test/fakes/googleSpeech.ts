/**
 * A loopback Google Cloud Speech-to-Text v1: a real gRPC server (@grpc/grpc-js) serving
 * google.cloud.speech.v1.Speech/StreamingRecognize from the proto files shipped in @google-cloud/speech,
 * behind a TCP relay that counts connections and can cut one mid-stream (what a network drop looks like).
 *
 * Like Google it checks the credential in the call metadata (`x-goog-api-key`, or `authorization: Bearer`
 * with a service account's self-signed RS256 JWT) before reading anything, answering a wrong key with
 * INVALID_ARGUMENT "API key not valid" plus a google.rpc.ErrorInfo API_KEY_INVALID in
 * grpc-status-details-bin; it requires the first request to be a valid streaming_config (LINEAR16,
 * 8000–48000 Hz, a BCP-47 language, a known model, non-negative boosts) and every later one to carry
 * audio_content only; it enforces the per-stream audio limit with OUT_OF_RANGE; and a half-close from the
 * client (the end of audio) is answered with the last final, then OK.
 *
 * What it "hears" comes from test/fakes/speech.ts: voice activity events, interim results while an
 * utterance runs, and a final (punctuated when asked, with word offsets) when it ends. All times are
 * relative to the start of the stream, as Google reports them.
 */
import { createPublicKey, createVerify, type KeyObject } from 'node:crypto';
import { createRequire } from 'node:module';
import net from 'node:net';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { FailureMode } from './server.js';
import { spreadWords, TranscriptScript, UtteranceTracker } from './speech.js';
import type { FakeSttControls } from '../providers/contract/harness.js';

const require = createRequire(import.meta.url);
const speechRoot = path.dirname(require.resolve('@google-cloud/speech/package.json'));
const gaxRoot = path.resolve(path.dirname(createRequire(path.join(speechRoot, 'package.json')).resolve('google-gax')), '../..');

const MODELS = new Set(['latest_long', 'latest_short', 'command_and_search', 'phone_call', 'video', 'default',
  'medical_conversation', 'medical_dictation', 'telephony', 'telephony_short']);
/** Google's per-stream limit, reported as "305 seconds". */
export const GOOGLE_STREAM_LIMIT_MS = 305_000;

export interface GoogleSpeechFake extends FakeSttControls {
  /** http://127.0.0.1:port — plaintext gRPC (the adapter's base URL). */
  url: string;
  validKey: string;
  /** StreamingRecognize calls started (the contract's `connections` counts TCP connections). */
  readonly calls: number;
  /** The streaming_config of the last call, as decoded from the wire. */
  readonly lastConfig: Record<string, any> | undefined;
  /** Ends the calls carrying more than this much audio with OUT_OF_RANGE, like Google at ~5 minutes. */
  setStreamLimit(ms: number): void;
  /** Accept service-account JWTs signed by this key for this account. */
  trustServiceAccount(email: string, publicKeyPem: string): void;
  /** Ends the next call with this gRPC status right after it starts. */
  failNextWith(code: grpc.status, details: string): void;
}

// ---- google.rpc.Status / ErrorInfo in grpc-status-details-bin, encoded by hand (protobuf wire format) ----

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n > 0x7f) { out.push((n & 0x7f) | 0x80); n >>>= 7; }
  out.push(n);
  return Buffer.from(out);
}
const field = (no: number, payload: Buffer) => Buffer.concat([varint((no << 3) | 2), varint(payload.length), payload]);
const str = (no: number, s: string) => field(no, Buffer.from(s, 'utf8'));

function statusDetails(code: number, message: string, reason: string, domain = 'googleapis.com'): Buffer {
  const errorInfo = Buffer.concat([str(1, reason), str(2, domain), field(3, Buffer.concat([str(1, 'service'), str(2, 'speech.googleapis.com')]))]);
  const any = Buffer.concat([str(1, 'type.googleapis.com/google.rpc.ErrorInfo'), field(2, errorInfo)]);
  return Buffer.concat([varint((1 << 3) | 0), varint(code), str(2, message), field(3, any)]);
}

function statusError(code: grpc.status, details: string, reason?: string): grpc.StatusObject {
  const metadata = new grpc.Metadata();
  if (reason) metadata.set('grpc-status-details-bin', statusDetails(code, details, reason));
  return { code, details, metadata };
}

const FAILURES: Record<FailureMode, () => grpc.StatusObject> = {
  auth: () => statusError(grpc.status.PERMISSION_DENIED, 'Cloud Speech-to-Text API has not been used in project 1234 before or it is disabled.', 'SERVICE_DISABLED'),
  quota: () => statusError(grpc.status.RESOURCE_EXHAUSTED, 'Quota exceeded for quota metric \'Streaming requests\' and limit \'Streaming requests per minute\' of service \'speech.googleapis.com\'.', 'RATE_LIMIT_EXCEEDED'),
  unavailable: () => statusError(grpc.status.UNAVAILABLE, 'The service is currently unavailable.'),
};

const duration = (ms: number) => ({ seconds: Math.floor(ms / 1000), nanos: Math.round((ms % 1000) * 1e6) });

function verifyJwt(token: string, email: string, key: KeyObject): boolean {
  const [h, p, sig] = token.split('.');
  if (!h || !p || !sig) return false;
  const v = createVerify('RSA-SHA256');
  v.update(`${h}.${p}`);
  if (!v.verify(key, Buffer.from(sig, 'base64url'))) return false;
  const claims = JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as { iss?: string; exp?: number; scope?: string; aud?: string };
  return claims.iss === email && (claims.exp ?? 0) * 1000 > Date.now() && Boolean(claims.scope || claims.aud);
}

/** The problem Google would report with this streaming_config, or undefined. */
export function configProblem(sc: Record<string, any> | null | undefined): string | undefined {
  const c = sc?.config;
  if (!c) return 'Invalid recognition \'config\': config is required.';
  if (c.encoding !== 'LINEAR16') return `Invalid recognition 'config': bad encoding ${c.encoding}.`;
  if (!(c.sampleRateHertz >= 8000 && c.sampleRateHertz <= 48000)) return 'Invalid recognition \'config\': sample_rate_hertz must be between 8000 and 48000.';
  if (!/^[a-z]{2,3}(-[A-Za-z0-9]{2,8})+$/.test(c.languageCode ?? '')) return `Invalid recognition 'config': bad language code "${c.languageCode}".`;
  if (c.model && !MODELS.has(c.model)) return `Invalid recognition 'config': The requested model "${c.model}" is not supported.`;
  if (c.audioChannelCount > 1) return 'Invalid recognition \'config\': multi-channel audio is not expected here.';
  for (const ctx of c.speechContexts ?? []) {
    if (!Array.isArray(ctx.phrases) || ctx.phrases.some((p: unknown) => typeof p !== 'string' || !p)) return 'Invalid recognition \'config\': bad speech context phrases.';
    if (typeof ctx.boost !== 'number' || ctx.boost < 0) return 'Invalid recognition \'config\': bad speech context boost.';
  }
  return undefined;
}

export async function startGoogleSpeechFake(validKey = 'google-test-key'): Promise<GoogleSpeechFake> {
  const def = protoLoader.loadSync('google/cloud/speech/v1/cloud_speech.proto', {
    keepCase: false, longs: Number, enums: String, defaults: false, oneofs: true,
    includeDirs: [path.join(speechRoot, 'build/protos'), path.join(gaxRoot, 'build/protos')],
  });
  const pkg = grpc.loadPackageDefinition(def) as any;
  const service = pkg.google.cloud.speech.v1.Speech.service as grpc.ServiceDefinition;

  /** An utterance a call was hearing when it died goes back in front: the next call hears it again (the client replays the audio). */
  const script = new TranscriptScript();
  let failNext: grpc.StatusObject | undefined;
  let dropNext = false;
  let connections = 0;
  let calls = 0;
  let audioBytes = 0;
  let gracefulClose = false;
  let lastKey: string | undefined;
  let lastConfig: Record<string, any> | undefined;
  let streamLimitMs = GOOGLE_STREAM_LIMIT_MS;
  const accounts = new Map<string, KeyObject>();
  /** Relay pairs by the relay's upstream local port, which is the peer the gRPC server sees. */
  const relays = new Map<number, { client: net.Socket; upstream: net.Socket }>();

  const streamingRecognize = (call: grpc.ServerDuplexStream<any, any>) => {
    calls++;
    gracefulClose = false;
    const md = call.metadata;
    const apiKey = md.get('x-goog-api-key')[0] as string | undefined;
    const bearer = /^Bearer (.+)$/.exec(String(md.get('authorization')[0] ?? ''))?.[1];
    lastKey = apiKey ?? bearer;
    const end = (s: grpc.StatusObject) => { if (!finished) { finished = true; call.emit('error', s); } };
    let finished = false;

    if (bearer) {
      const ok = [...accounts].some(([email, key]) => verifyJwt(bearer, email, key));
      if (!ok) return end(statusError(grpc.status.UNAUTHENTICATED, 'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.', 'ACCESS_TOKEN_TYPE_UNSUPPORTED'));
    } else if (!apiKey) {
      return end(statusError(grpc.status.PERMISSION_DENIED, 'The request is missing a valid API key.', 'API_KEY_MISSING'));
    } else if (apiKey !== validKey) {
      return end(statusError(grpc.status.INVALID_ARGUMENT, 'API key not valid. Please pass a valid API key.', 'API_KEY_INVALID'));
    }
    if (failNext) { const f = failNext; failNext = undefined; return end(f); }

    let config: Record<string, any> | undefined;
    let tracker: UtteranceTracker | undefined;
    let rate = 16000;
    let finals = 0;
    let open: { start: number; text: string } | undefined;
    const peerPort = Number(call.getPeer().split(':').pop());

    const send = (msg: unknown) => { if (!finished) call.write(msg); };
    const words = (text: string, start: number, endMs: number) => spreadWords(text, start, endMs).map((w) => ({ word: w.word, startTime: duration(w.startMs), endTime: duration(w.endMs) }));
    const punctuate = (t: string) => (config?.config?.enableAutomaticPunctuation ? `${t[0].toUpperCase()}${t.slice(1)}.` : t);
    const finalFor = (u: { start: number; text: string }, endMs: number) => {
      const text = punctuate(u.text);
      // Later results of a stream begin with a space, as Google's do.
      const transcript = finals++ ? ` ${text}` : text;
      send({
        results: [{
          alternatives: [{ transcript, confidence: 0.93, words: config?.config?.enableWordTimeOffsets ? words(text, u.start, endMs) : [] }],
          isFinal: true, resultEndTime: duration(endMs), languageCode: config?.config?.languageCode?.toLowerCase(),
        }],
        speechEventType: 'SPEECH_EVENT_UNSPECIFIED',
      });
    };
    const vad = (type: string, atMs: number) => {
      if (config?.enableVoiceActivityEvents) send({ speechEventType: type, speechEventTime: duration(atMs) });
    };

    call.on('data', (req: { streamingConfig?: Record<string, any>; audioContent?: Buffer; streamingRequest?: string }) => {
      if (finished) return;
      if (!config) {
        if (!req.streamingConfig) return end(statusError(grpc.status.INVALID_ARGUMENT, 'Malordered Data Received. Expected audio but none was set. Send exactly one config, followed by audio data.'));
        const problem = configProblem(req.streamingConfig);
        if (problem) return end(statusError(grpc.status.INVALID_ARGUMENT, problem));
        config = req.streamingConfig;
        lastConfig = config;
        rate = config.config.sampleRateHertz;
        tracker = new UtteranceTracker(rate, {
          onStart: (at) => { open = { start: at, text: script.next() }; vad('SPEECH_ACTIVITY_BEGIN', at); },
          onProgress: (start, now) => {
            if (!open) return;
            if (dropNext && now - start >= 200) {
              dropNext = false;
              script.unshift(open.text);
              open = undefined;
              const relay = relays.get(peerPort);
              relay?.client.destroy();
              relay?.upstream.destroy();
              return;
            }
            if (config?.interimResults) {
              const all = open.text.split(' ');
              const heard = all.slice(0, Math.max(1, Math.min(all.length, Math.round((now - start) / 250)))).join(' ');
              send({ results: [{ alternatives: [{ transcript: heard }], isFinal: false, stability: 0.01, resultEndTime: duration(now) }], speechEventType: 'SPEECH_EVENT_UNSPECIFIED' });
            }
          },
          onEnd: (start, endMs) => {
            vad('SPEECH_ACTIVITY_END', endMs);
            if (open) finalFor(open, endMs);
            open = undefined;
          },
        });
        call.sendMetadata(new grpc.Metadata());
        return;
      }
      if (req.streamingConfig || !req.audioContent) {
        return end(statusError(grpc.status.INVALID_ARGUMENT, 'Malordered Data Received. Send exactly one config, followed by audio data.'));
      }
      audioBytes += req.audioContent.length;
      const samples = new Int16Array(req.audioContent.length >> 1);
      new Uint8Array(samples.buffer).set(req.audioContent.subarray(0, samples.length * 2));
      tracker!.push(samples);
      if (tracker!.receivedMs > streamLimitMs) {
        if (open) script.unshift(open.text);
        open = undefined;
        end(statusError(grpc.status.OUT_OF_RANGE, `Exceeded maximum allowed stream duration of ${Math.round(streamLimitMs / 1000)} seconds.`));
      }
    });
    call.on('end', () => {
      // The client's half-close is the end of audio: finish the utterance in progress, then OK.
      if (finished) return;
      gracefulClose = true;
      if (open && tracker) finalFor(open, tracker.receivedMs);
      finished = true;
      call.end();
    });
    const abandoned = () => {
      if (open) script.unshift(open.text);
      open = undefined;
      finished = true;
    };
    call.on('error', abandoned);
    call.on('cancelled', abandoned);
  };

  const server = new grpc.Server();
  server.addService(service, { streamingRecognize, recognize: unimplemented, longRunningRecognize: unimplemented });
  const grpcPort = await new Promise<number>((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port)));
  });

  const relay = net.createServer((client) => {
    connections++;
    // No Nagle on the relay, as on grpc-js's own socket: otherwise delayed ACKs add ~40 ms to small writes.
    client.setNoDelay(true);
    const upstream = net.connect(grpcPort, '127.0.0.1').setNoDelay(true);
    upstream.once('connect', () => relays.set(upstream.localPort!, { client, upstream }));
    client.pipe(upstream);
    upstream.pipe(client);
    const cleanup = () => { client.destroy(); upstream.destroy(); if (upstream.localPort) relays.delete(upstream.localPort); };
    client.on('error', cleanup).on('close', cleanup);
    upstream.on('error', cleanup).on('close', cleanup);
  });
  await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
  const port = (relay.address() as net.AddressInfo).port;

  return {
    url: `http://127.0.0.1:${port}`,
    validKey,
    script: (...texts) => script.add(...texts),
    failNext: (mode) => { failNext = FAILURES[mode](); },
    failNextWith: (code, details) => { failNext = statusError(code, details); },
    dropDuringNextUtterance: () => { dropNext = true; },
    setStreamLimit: (ms) => { streamLimitMs = ms; },
    trustServiceAccount: (email, pem) => { accounts.set(email, createPublicKey(pem)); },
    get connections() { return connections; },
    get calls() { return calls; },
    get gracefulClose() { return gracefulClose; },
    get audioBytes() { return audioBytes; },
    get lastKey() { return lastKey; },
    get lastConfig() { return lastConfig; },
    close: async () => {
      for (const r of relays.values()) { r.client.destroy(); r.upstream.destroy(); }
      await new Promise<void>((resolve) => relay.close(() => resolve()));
      server.forceShutdown();
    },
  };
}

function unimplemented(_call: unknown, cb: grpc.sendUnaryData<unknown>): void {
  cb({ code: grpc.status.UNIMPLEMENTED, details: 'not in this fake' });
}
