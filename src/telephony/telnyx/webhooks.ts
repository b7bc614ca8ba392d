/**
 * Telnyx Call Control webhooks: signature verification, the typed events we act on, and client_state.
 *
 * Documents followed:
 * - Webhooks (delivery contract, Ed25519 signing), https://developers.telnyx.com/docs/development/api-fundamentals/webhooks
 * - Webhook reference pages, e.g. https://developers.telnyx.com/api-reference/callbacks/call-hangup and
 *   https://developers.telnyx.com/api-reference/callbacks/call-streaming-failed (headers `telnyx-timestamp`,
 *   `telnyx-signature-ed25519`: "Ed25519 signature of timestamp|payload")
 * - Answering Machine Detection, https://developers.telnyx.com/docs/voice/programmable-voice/answering-machine-detection
 * - Dial / answer command references (client_state: "a valid Base-64 encoded string"),
 *   https://developers.telnyx.com/api-reference/call-commands/dial
 *
 * Signature: Telnyx signs `${telnyx-timestamp}|${raw body}` with Ed25519; the account's public key (Mission
 * Control → Keys & Credentials) is base64 of the raw 32-byte key, the signature base64 of 64 bytes. We verify
 * the exact bytes received (never re-serialized JSON) and refuse timestamps more than 5 minutes off (replays).
 * Delivery is at least once and unordered: handlers must be idempotent (use `id`) and order by `occurredAt`.
 */
import crypto from 'node:crypto';

export const TELNYX_SIGNATURE_HEADER = 'telnyx-signature-ed25519';
export const TELNYX_TIMESTAMP_HEADER = 'telnyx-timestamp';
/** How far a webhook's timestamp may be from our clock, either way. */
export const TELNYX_TIMESTAMP_TOLERANCE_S = 300;

// ---- events ----

/** `hangup_cause` values Telnyx documents for call.hangup (others may appear; kept as strings). */
export type TelnyxHangupCause =
  | 'call_rejected' | 'normal_clearing' | 'originator_cancel' | 'timeout' | 'time_limit' | 'user_busy' | 'not_found'
  | 'no_answer' | 'unspecified' | (string & {});

/** Fields every call event carries (payload of `data`). */
export interface TelnyxCallEventBase {
  /** Event id: the same event can be delivered more than once. */
  id: string;
  /** The raw `event_type`. */
  eventType: string;
  occurredAt: string;
  callControlId: string;
  callLegId: string;
  callSessionId: string;
  /** The Call Control application (connection) the call belongs to. */
  connectionId: string;
  from: string;
  to: string;
  /** Raw base64 client_state as Telnyx echoed it (decode with decodeClientState), or null. */
  clientState: string | null;
  /** Delivery attempt (meta.attempt), 1 on the first. */
  attempt: number;
  /** The payload as received, for fields this build does not type. */
  payload: Record<string, unknown>;
}

export type TelnyxEvent =
  | (TelnyxCallEventBase & { type: 'call.initiated'; direction: 'incoming' | 'outgoing'; state: string })
  | (TelnyxCallEventBase & { type: 'call.answered' })
  | (TelnyxCallEventBase & { type: 'call.bridged' })
  | (TelnyxCallEventBase & {
      type: 'call.hangup';
      hangupCause: TelnyxHangupCause;
      /** Who ended the call: `caller`, `callee` or `unknown`. */
      hangupSource: string;
      sipHangupCause: string | null;
    })
  | (TelnyxCallEventBase & { type: 'call.dtmf.received'; digit: string })
  /** Standard AMD: `human`, `machine` or `not_sure`. */
  | (TelnyxCallEventBase & { type: 'call.machine.detection.ended'; result: string })
  /** Standard AMD greeting end: `beep_detected`, `ended` or `not_sure`. */
  | (TelnyxCallEventBase & { type: 'call.machine.greeting.ended'; result: string })
  /** Premium AMD: `human_residence`, `human_business`, `machine`, `silence`, `fax_detected`. */
  | (TelnyxCallEventBase & { type: 'call.machine.premium.detection.ended'; result: string })
  /** Premium AMD beep: `beep_detected` (or `no_beep_detected`). */
  | (TelnyxCallEventBase & { type: 'call.machine.premium.greeting.ended'; result: string })
  | (TelnyxCallEventBase & { type: 'streaming.started'; streamUrl: string | null })
  | (TelnyxCallEventBase & { type: 'streaming.stopped'; streamUrl: string | null })
  | (TelnyxCallEventBase & { type: 'streaming.failed'; failureReason: string; streamId: string | null })
  /** Any other event (conference.*, call.playback.*, …): typed only by its common fields. */
  | (TelnyxCallEventBase & { type: 'other' });

const TYPED = new Set([
  'call.initiated', 'call.answered', 'call.bridged', 'call.hangup', 'call.dtmf.received', 'call.machine.detection.ended',
  'call.machine.greeting.ended', 'call.machine.premium.detection.ended', 'call.machine.premium.greeting.ended',
  'streaming.started', 'streaming.stopped', 'streaming.failed',
]);

export class TelnyxWebhookFormatError extends Error {
  constructor(message: string) {
    super(`telnyx webhook: ${message}`);
    this.name = 'TelnyxWebhookFormatError';
  }
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const s = (v: unknown): string => (typeof v === 'string' ? v : v === undefined || v === null ? '' : String(v));
const sOrNull = (v: unknown): string | null => (typeof v === 'string' && v ? v : null);

/** Parses a webhook body (`{data: {record_type, event_type, id, occurred_at, payload}, meta}`) into a TelnyxEvent. */
export function parseTelnyxEvent(body: unknown): TelnyxEvent {
  if (!isObj(body) || !isObj(body.data)) throw new TelnyxWebhookFormatError('body without a "data" object');
  const data = body.data;
  if (typeof data.event_type !== 'string' || !data.event_type) throw new TelnyxWebhookFormatError('data without "event_type"');
  const p = isObj(data.payload) ? data.payload : {};
  const meta = isObj(body.meta) ? body.meta : {};
  const base: TelnyxCallEventBase = {
    id: s(data.id),
    eventType: data.event_type,
    occurredAt: s(data.occurred_at),
    callControlId: s(p.call_control_id),
    callLegId: s(p.call_leg_id),
    callSessionId: s(p.call_session_id),
    connectionId: s(p.connection_id),
    from: s(p.from),
    to: s(p.to),
    clientState: sOrNull(p.client_state),
    attempt: typeof meta.attempt === 'number' ? meta.attempt : Number(meta.attempt ?? 1) || 1,
    payload: p,
  };
  const type = TYPED.has(data.event_type) ? data.event_type : 'other';
  switch (type) {
    case 'call.initiated':
      return { ...base, type, direction: p.direction === 'outgoing' ? 'outgoing' : 'incoming', state: s(p.state) };
    case 'call.hangup':
      return { ...base, type, hangupCause: s(p.hangup_cause) || 'unspecified', hangupSource: s(p.hangup_source) || 'unknown', sipHangupCause: sOrNull(p.sip_hangup_cause) };
    case 'call.dtmf.received':
      return { ...base, type, digit: s(p.digit) };
    case 'call.machine.detection.ended':
    case 'call.machine.greeting.ended':
    case 'call.machine.premium.detection.ended':
    case 'call.machine.premium.greeting.ended':
      return { ...base, type, result: s(p.result) };
    case 'streaming.started':
    case 'streaming.stopped':
      return { ...base, type, streamUrl: sOrNull(p.stream_url) ?? (isObj(p.stream_params) ? sOrNull(p.stream_params.stream_url) : null) };
    case 'streaming.failed':
      return { ...base, type, failureReason: s(p.failure_reason), streamId: sOrNull(p.stream_id) };
    case 'call.answered':
    case 'call.bridged':
      return { ...base, type };
    default:
      return { ...base, type: 'other' };
  }
}

// ---- signature ----

export type TelnyxWebhookFailureReason =
  /** telnyx-signature-ed25519 or telnyx-timestamp absent. */
  | 'missing_headers'
  /** Not a valid Ed25519 signature of `timestamp|body` under the key. */
  | 'bad_signature'
  /** Timestamp more than the tolerance away from our clock (or not a number). */
  | 'stale_timestamp'
  /** The configured public key is not base64 of a 32-byte Ed25519 key. */
  | 'invalid_public_key'
  /** Signed correctly, but not a Telnyx event body. */
  | 'malformed';

export type TelnyxWebhookResult =
  | { ok: true; event: TelnyxEvent }
  | { ok: false; reason: TelnyxWebhookFailureReason; message: string };

/** Request headers as Node (`IncomingHttpHeaders`) or fetch (`Headers`) give them; names are case-insensitive. */
export type HeaderSource = Headers | Record<string, string | string[] | undefined>;

function header(headers: HeaderSource, name: string): string | undefined {
  if (typeof (headers as Headers).get === 'function') return (headers as Headers).get(name) ?? undefined;
  const rec = headers as Record<string, string | string[] | undefined>;
  const key = Object.keys(rec).find((k) => k.toLowerCase() === name);
  const v = key === undefined ? undefined : rec[key];
  return Array.isArray(v) ? v[0] : v;
}

const keyCache = new Map<string, crypto.KeyObject | null>();

/** A KeyObject for Telnyx's base64 raw Ed25519 public key; null if it is not one. */
function publicKey(publicKeyBase64: string): crypto.KeyObject | null {
  const cached = keyCache.get(publicKeyBase64);
  if (cached !== undefined) return cached;
  let key: crypto.KeyObject | null = null;
  const raw = Buffer.from(publicKeyBase64.trim(), 'base64');
  if (raw.length === 32) {
    try {
      key = crypto.createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') }, format: 'jwk' });
    } catch {
      key = null;
    }
  }
  if (keyCache.size > 100) keyCache.clear();
  keyCache.set(publicKeyBase64, key);
  return key;
}

/**
 * Verifies a Telnyx webhook and parses it. `rawBody` must be the body exactly as received. Fails (never
 * throws) with a typed reason: missing headers, bad signature, stale timestamp (±5 min), bad key, malformed.
 */
export function verifyTelnyxWebhook(
  rawBody: string,
  headers: HeaderSource,
  publicKeyBase64: string,
  nowMs: number = Date.now(),
  toleranceS: number = TELNYX_TIMESTAMP_TOLERANCE_S,
): TelnyxWebhookResult {
  const signature = header(headers, TELNYX_SIGNATURE_HEADER);
  const timestamp = header(headers, TELNYX_TIMESTAMP_HEADER);
  if (!signature || !timestamp) {
    return { ok: false, reason: 'missing_headers', message: `missing ${!signature ? TELNYX_SIGNATURE_HEADER : TELNYX_TIMESTAMP_HEADER} header` };
  }
  const key = publicKey(publicKeyBase64);
  if (!key) return { ok: false, reason: 'invalid_public_key', message: 'the Telnyx public key is not base64 of a 32-byte Ed25519 key' };
  if (!/^\d{1,15}$/.test(timestamp.trim())) return { ok: false, reason: 'stale_timestamp', message: 'telnyx-timestamp is not a Unix time in seconds' };
  const sig = Buffer.from(signature.trim(), 'base64');
  let valid = false;
  if (sig.length === 64) {
    try {
      valid = crypto.verify(null, Buffer.from(`${timestamp.trim()}|${rawBody}`, 'utf8'), key, sig);
    } catch {
      valid = false;
    }
  }
  if (!valid) return { ok: false, reason: 'bad_signature', message: 'signature does not match the body and timestamp' };
  // Checked after the signature so a forged timestamp cannot be told apart from a forged body.
  const skewS = Math.abs(nowMs / 1000 - Number(timestamp));
  if (skewS > toleranceS) return { ok: false, reason: 'stale_timestamp', message: `timestamp is ${Math.round(skewS)} s away from our clock (tolerance ${toleranceS} s)` };
  let body: unknown;
  try {
    body = JSON.parse(rawBody);
  } catch {
    return { ok: false, reason: 'malformed', message: 'body is not JSON' };
  }
  try {
    return { ok: true, event: parseTelnyxEvent(body) };
  } catch (err) {
    return { ok: false, reason: 'malformed', message: (err as Error).message };
  }
}

// ---- client_state ----

/**
 * client_state travels with a call and comes back on every later webhook and on the media stream's `start`.
 * Telnyx requires base64; we put JSON inside. Keep it small (it rides on every event).
 */
export function encodeClientState(state: unknown): string {
  return Buffer.from(JSON.stringify(state), 'utf8').toString('base64');
}

/** The JSON inside a client_state, or null when absent or not base64 JSON (someone else's state). */
export function decodeClientState<T = unknown>(clientState: string | null | undefined): T | null {
  if (!clientState) return null;
  try {
    return JSON.parse(Buffer.from(clientState, 'base64').toString('utf8')) as T;
  } catch {
    return null;
  }
}
