/**
 * Carrier-neutral contracts of the telephony layer: what a carrier's REST API does for us (numbers,
 * calls), what its media WebSocket says (parsed into MediaInbound by a per-carrier MediaCodec), and the
 * typed error every carrier failure becomes. Twilio and Telnyx implement them in their own folders.
 */
import type { HandOff } from '../engine/types.js';

export type TelephonyProvider = 'twilio' | 'telnyx';

/** A number the carrier offers for purchase (GET /v1/numbers/available items). */
export interface AvailableNumber {
  /** E.164. */
  phone_number: string;
  friendly_name: string | null;
  locality: string | null;
  region: string | null;
  /** ISO 3166-1 alpha-2. */
  country_code: string;
  capabilities: { voice: boolean; sms: boolean; mms: boolean };
}

export interface NumberSearch {
  /** ISO 3166-1 alpha-2, default US. */
  country: string;
  areaCode?: string;
  /** Digits the number must contain (Twilio `Contains`, Telnyx `filter[phone_number][contains]`). */
  contains?: string;
  tollFree?: boolean;
  limit: number;
}

/** The URLs a carrier calls us on; all absolute, under PUBLIC_URL. */
export interface WebhookUrls {
  /** Where a call asks what to do (Twilio VoiceUrl / call Url; Telnyx Call Control webhook). */
  voice: string;
  /** Call progress (Twilio StatusCallback; Telnyx uses the same event webhook as `voice`). */
  status: string;
}

/** A number in the carrier account, as we configured it. */
export interface ClaimedNumber {
  /** The carrier's own id of the number (Twilio PN… sid, Telnyx phone number id). */
  carrierNumberId: string;
  number: string;
  /** What our configuration replaced, so `detach` can put it back; stored in the number's data. */
  previous: Record<string, unknown>;
}

export type CarrierErrorKind =
  /** Credentials refused (HTTP 401/403). */
  | 'auth'
  /** The number, call or account does not exist there (404, Twilio 20404, 21452 "no numbers found"). */
  | 'not_found'
  /** The carrier refuses the request as given (a number not available, a bad To, an unverified From). */
  | 'invalid'
  /** Rate limited or out of funds (429, Twilio 20429, 21215 geo-permissions…). */
  | 'quota'
  /** The carrier is down or did not answer (5xx, network, timeout). */
  | 'unavailable';

/**
 * A carrier said no, or could not be reached. `code` is the carrier's own error code when it gave one
 * (Twilio 21211, Telnyx 10015…); `message` is the carrier's human-readable reason, never a credential.
 */
export class CarrierError extends Error {
  constructor(
    readonly kind: CarrierErrorKind,
    readonly provider: TelephonyProvider,
    message: string,
    readonly status?: number,
    readonly code?: string | number,
  ) {
    super(`${provider}: ${message}`);
    this.name = 'CarrierError';
  }
}

// ---- media streams ----

/** Audio encodings carriers put on a media WebSocket (8 kHz G.711 on the PSTN, L16 on some Telnyx streams). */
export type MediaEncoding = 'mulaw' | 'alaw' | 'l16';

/** One message from a carrier's media WebSocket, in carrier-neutral terms. */
export type MediaInbound =
  | {
      type: 'start';
      /** Twilio streamSid / Telnyx stream_id: every message we send carries it. */
      streamId: string;
      /** The carrier's id of the call (Twilio CallSid, Telnyx call_control_id). */
      carrierCallId: string;
      /** Twilio <Parameter>s; Telnyx custom parameters / client_state, when present. */
      customParameters: Record<string, string>;
      encoding: MediaEncoding;
      sampleRate: number;
    }
  /**
   * Caller audio, still encoded (`encoding` of the start message). Outbound-track echoes are not passed on.
   * `timestampMs`: the carrier's presentation time, ms from the stream's start (both carriers send it).
   */
  | { type: 'media'; payload: Buffer; timestampMs?: number }
  /** A mark we sent has come back: the audio before it finished playing, or it was cleared (see MediaStreamTransport). */
  | { type: 'mark'; name: string }
  | { type: 'dtmf'; digit: string }
  | { type: 'stop' }
  /** `connected`, errors the carrier reports on the socket, anything this build does not act on. */
  | { type: 'other'; event: string; detail?: string };

/** A media message's `timestamp` (both carriers send ms as a string); anything else is left out, not guessed. */
export function mediaTimestamp(v: unknown): number | undefined {
  const n = typeof v === 'string' && v !== '' ? Number(v) : typeof v === 'number' ? v : NaN;
  return Number.isFinite(n) && n >= 0 ? n : undefined;
}

/** A carrier's media WebSocket message format, both ways. Pure: no I/O. */
export interface MediaCodec {
  readonly provider: TelephonyProvider;
  /** Parses one text frame; throws on JSON that is not the carrier's message shape. */
  parse(text: string): MediaInbound;
  /** Audio to play to the caller, encoded as the stream's `encoding`, as one text frame. */
  media(streamId: string, payload: Buffer): string;
  mark(streamId: string, name: string): string;
  clear(streamId: string): string;
}

/**
 * Controls of a live call that go through the carrier's REST API rather than the media socket.
 * `sendDtmf` is optional: without it, digits are played in-band as tones on the media stream.
 */
export interface CallControl {
  hangup(): Promise<void>;
  transfer(to: string): Promise<HandOff>;
  sendDtmf?(digits: string): Promise<void>;
  setHold(on: boolean): Promise<HandOff>;
  addToConference(to: string, opts: { placePrimaryOnHold: boolean }): Promise<HandOff>;
}

/** (Twilio's hold is a conference a media stream cannot join: it hands the caller off, as a transfer does.) */
export type { HandOff };
