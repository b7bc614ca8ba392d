/**
 * Telnyx REST API v2 for what Switchboard needs: number search, ordering and configuration, the Call Control
 * application our webhooks come from, and call commands (dial, answer with a media stream, hangup, reject,
 * transfer, DTMF, streaming, conferences for hold). Node's fetch, JSON in and out, a timeout on every request;
 * every failure is a CarrierError whose message carries Telnyx's error code and detail, never the API key.
 *
 * Documents followed (developers.telnyx.com):
 * - API errors and codes: /development/api-fundamentals/api-errors (body `{errors: [{code, title, detail, source: {pointer}}]}`)
 * - Number search: /api-reference/phone-number-search/list-available-phone-numbers and /docs/numbers/phone-numbers/number-search
 * - Number orders: /docs/numbers/phone-numbers/number-orders, /api-reference/phone-number-orders/create-a-number-order,
 *   /api-reference/phone-number-orders/retrieve-a-number-order (orders are asynchronous: `status` pending → success | failure)
 * - Phone numbers: list (`filter[phone_number]`), update (`connection_id`), delete — /api-reference/phone-numbers/*
 * - Call Control applications: /api-reference/call-control-applications/* (create/update need `application_name` and
 *   `webhook_event_url`; list filter `filter[application_name][contains]`, at least 3 characters)
 * - Call commands: /api-reference/call-commands/dial, answer-call, hangup-call, reject-a-call, transfer-call, send-dtmf,
 *   streaming-start, streaming-stop (stream_url, stream_track, stream_codec, stream_bidirectional_mode/_codec)
 * - Media streaming: /docs/voice/programmable-voice/media-streaming
 * - Conferences: /api-reference/conference-commands/create-conference, join-a-conference, hold-conference-participants,
 *   unhold-conference-participants; dial's `conference_config`
 * - Answering machine detection: /docs/voice/programmable-voice/answering-machine-detection
 */
import { randomUUID } from 'node:crypto';
import {
  CarrierError, type AvailableNumber, type CallControl, type CarrierErrorKind, type ClaimedNumber, type MediaEncoding, type NumberSearch,
} from '../types.js';
import { telnyxCodecName } from './media.js';

export const TELNYX_DEFAULT_BASE_URL = 'https://api.telnyx.com';

export interface TelnyxClientOptions {
  apiKey: string;
  /** Default https://api.telnyx.com (the lead passes TELNYX_API_BASE_URL); `/v2` is added to it. */
  baseUrl?: string;
  /** Per request; no answer in time is `unavailable`. Default 10 s. */
  timeoutMs?: number;
  /** How long buyNumber waits for an asynchronous number order to complete. Default 30 s. */
  orderTimeoutMs?: number;
  /** Poll interval while waiting for an order. Default 500 ms. */
  orderPollMs?: number;
}

/** Telnyx `answering_machine_detection` modes. */
export type TelnyxAmdMode = 'detect' | 'detect_beep' | 'detect_words' | 'greeting_end' | 'premium';

export interface TelnyxStreamOptions {
  /** ws:// or wss:// URL Telnyx opens the media WebSocket to. */
  streamUrl: string;
  /** Codec of both directions; default μ-law (PCMU), what the PSTN carries. */
  encoding?: MediaEncoding;
  /** Default `inbound_track`: the far end's voice only (our own audio is never echoed back to us). */
  track?: 'inbound_track' | 'outbound_track' | 'both_tracks';
  /** Sent to the socket as `x-telnyx-streaming-auth-token` and in `connected` (streaming_start only). */
  authToken?: string;
}

export interface TelnyxDialOptions {
  to: string;
  from: string;
  /** The Call Control application id (ensureCallControlApp). */
  connectionId: string;
  /** Where this call's webhooks go (overrides the application's webhook_event_url). */
  webhookUrl?: string;
  /** Base64 (see encodeClientState); echoed on every webhook of the call. */
  clientState?: string;
  /** Answering machine detection: true = `detect` (human / machine / not_sure), or a Telnyx mode. */
  amd?: boolean | TelnyxAmdMode;
  /** Start the bidirectional media stream as soon as the call is answered. */
  streamUrl?: string;
  encoding?: MediaEncoding;
  /** Ring time before Telnyx gives up (`call.hangup` with hangup_cause `timeout`); Telnyx default 30 s. */
  timeoutSecs?: number;
  /** Join the answered call straight into this conference (id), instead of streaming. */
  conferenceId?: string;
}

export interface TelnyxAnswerOptions {
  streamUrl?: string;
  encoding?: MediaEncoding;
  clientState?: string;
  webhookUrl?: string;
}

export interface TelnyxDialResult {
  callControlId: string;
  callLegId: string;
  callSessionId: string;
}

/** A number in the account (GET /v2/phone_numbers item), the fields we use. */
export interface TelnyxPhoneNumber {
  id: string;
  phone_number: string;
  status: string;
  connection_id: string | null;
  connection_name?: string | null;
  [k: string]: unknown;
}

export interface TelnyxOrderedNumber extends ClaimedNumber {
  orderId: string;
}

type Query = Record<string, string | number | boolean | undefined | string[]>;
type Json = Record<string, unknown>;

const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

export function kindOfTelnyxStatus(status: number): CarrierErrorKind {
  if (status === 401 || status === 403) return 'auth';
  if (status === 404) return 'not_found';
  if (status === 402 || status === 429) return 'quota';
  if (status >= 500 || status === 408) return 'unavailable';
  return 'invalid';
}

/** Telnyx codes for a command on a call that is over: hangup treats these as done. */
const CALL_ENDED_CODES = new Set(['90018']);

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function streamParams(o: TelnyxStreamOptions): Json {
  const codec = telnyxCodecName(o.encoding ?? 'mulaw');
  return {
    stream_url: o.streamUrl,
    stream_track: o.track ?? 'inbound_track',
    // Without stream_bidirectional_mode Telnyx drops what we send on the socket: the caller would hear nothing.
    stream_bidirectional_mode: 'rtp',
    stream_bidirectional_codec: codec,
    // Transcoding is only between PCMU and PCMA; L16 streams carry the call's own rate.
    stream_codec: codec === 'L16' ? 'default' : codec,
    ...(o.authToken ? { stream_auth_token: o.authToken } : {}),
  };
}

export class TelnyxClient {
  private readonly apiKey: string;
  private readonly base: string;
  private readonly timeoutMs: number;
  private readonly orderTimeoutMs: number;
  private readonly orderPollMs: number;

  constructor(opts: TelnyxClientOptions) {
    if (!opts.apiKey) throw new CarrierError('auth', 'telnyx', 'no API key configured');
    this.apiKey = opts.apiKey;
    this.base = `${(opts.baseUrl || TELNYX_DEFAULT_BASE_URL).replace(/\/+$/, '').replace(/\/v2$/, '')}/v2`;
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.orderTimeoutMs = opts.orderTimeoutMs ?? 30_000;
    this.orderPollMs = opts.orderPollMs ?? 500;
  }

  // ---------------- transport ----------------

  private scrub(text: string): string {
    return text.split(this.apiKey).join('***');
  }

  /** One request; resolves with the parsed body of a 2xx answer, throws CarrierError otherwise. */
  async request<T = Json>(method: string, path: string, opts: { query?: Query; body?: unknown } = {}): Promise<T> {
    const url = new URL(`${this.base}${path}`);
    for (const [k, v] of Object.entries(opts.query ?? {})) {
      if (v === undefined) continue;
      if (Array.isArray(v)) for (const item of v) url.searchParams.append(k, item);
      else url.searchParams.set(k, String(v));
    }
    const headers: Record<string, string> = { authorization: `Bearer ${this.apiKey}`, accept: 'application/json' };
    if (opts.body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    let text: string;
    try {
      res = await fetch(url, {
        method,
        headers,
        body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      text = await res.text();
    } catch (err) {
      const e = err as { name?: string; message?: string; cause?: { code?: string } };
      if (e.name === 'TimeoutError' || e.name === 'AbortError') {
        throw new CarrierError('unavailable', 'telnyx', `${method} ${path}: no answer within ${this.timeoutMs} ms`);
      }
      const code = e.cause?.code ? ` (${e.cause.code})` : '';
      throw new CarrierError('unavailable', 'telnyx', this.scrub(`${method} ${path}: ${e.message ?? String(err)}${code}`));
    }
    let body: unknown = undefined;
    if (text) {
      try {
        body = JSON.parse(text);
      } catch {
        body = undefined;
      }
    }
    if (!res.ok) throw this.httpError(method, path, res.status, body, text);
    if (text && body === undefined) throw new CarrierError('unavailable', 'telnyx', `${method} ${path}: answer is not JSON`, res.status);
    return (body ?? {}) as T;
  }

  private httpError(method: string, path: string, status: number, body: unknown, text: string): CarrierError {
    const errors = isObj(body) && Array.isArray(body.errors) ? body.errors.filter(isObj) : [];
    const first = errors[0];
    const code = first?.code !== undefined && first.code !== null ? String(first.code) : undefined;
    let reason: string;
    if (errors.length) {
      reason = errors.map((e) => {
        const pointer = isObj(e.source) && typeof e.source.pointer === 'string' ? ` (${e.source.pointer})` : '';
        const parts = [e.code !== undefined ? String(e.code) : '', String(e.title ?? ''), e.detail ? `- ${String(e.detail)}` : ''].filter(Boolean);
        return `${parts.join(' ')}${pointer}`;
      }).join('; ');
    } else {
      reason = text.slice(0, 200) || 'no details';
    }
    return new CarrierError(kindOfTelnyxStatus(status), 'telnyx', this.scrub(`${method} ${path}: HTTP ${status}: ${reason}`.slice(0, 600)), status, code);
  }

  private async command(callControlId: string, action: string, body: Json = {}): Promise<void> {
    await this.request('POST', `/calls/${encodeURIComponent(callControlId)}/actions/${action}`, { body });
  }

  // ---------------- numbers ----------------

  /** GET /v2/available_phone_numbers: numbers with voice that can be ordered now. */
  async searchNumbers(q: NumberSearch): Promise<AvailableNumber[]> {
    const country = (q.country || 'US').toUpperCase();
    const res = await this.request<{ data?: unknown[] }>('GET', '/available_phone_numbers', {
      query: {
        'filter[country_code]': country,
        'filter[national_destination_code]': q.areaCode,
        'filter[phone_number][contains]': q.contains,
        'filter[phone_number_type]': q.tollFree ? 'toll_free' : undefined,
        'filter[features][]': ['voice'],
        'filter[limit]': Math.max(1, Math.min(q.limit || 10, 100)),
      },
    });
    return (res.data ?? []).filter(isObj).map((n) => {
      const regions = Array.isArray(n.region_information) ? n.region_information.filter(isObj) : [];
      const region = (type: string) => {
        const r = regions.find((x) => x.region_type === type);
        return typeof r?.region_name === 'string' && r.region_name ? r.region_name : null;
      };
      const features = new Set((Array.isArray(n.features) ? n.features : []).map((f) => (isObj(f) ? String(f.name) : String(f))));
      return {
        phone_number: String(n.phone_number),
        friendly_name: typeof n.vanity_format === 'string' && n.vanity_format ? n.vanity_format : null,
        locality: region('location') ?? region('rate_center'),
        region: region('state'),
        country_code: region('country_code') ?? country,
        capabilities: { voice: features.has('voice'), sms: features.has('sms'), mms: features.has('mms') },
      };
    });
  }

  /** The account's number record, or null if the number is not in this account. */
  async findNumber(number: string): Promise<TelnyxPhoneNumber | null> {
    const e164 = number.startsWith('+') ? number : `+${number}`;
    const res = await this.request<{ data?: unknown[] }>('GET', '/phone_numbers', { query: { 'filter[phone_number]': e164, 'page[size]': 20 } });
    const found = (res.data ?? []).filter(isObj).find((n) => n.phone_number === e164);
    return found ? (found as unknown as TelnyxPhoneNumber) : null;
  }

  /**
   * Buys a number (given, or the first available in an area code) and points it at `connectionId`. Telnyx
   * orders complete asynchronously (`pending` → `success`); we poll the order, then read the number's id. An
   * order held for regulatory requirements (non-US numbers) does not complete in time and fails as `invalid`.
   */
  async buyNumber(want: { phoneNumber?: string; areaCode?: string; country?: string }, connectionId: string): Promise<TelnyxOrderedNumber> {
    let number = want.phoneNumber;
    if (!number) {
      if (!want.areaCode) throw new CarrierError('invalid', 'telnyx', 'buyNumber needs a phone number or an area code');
      const found = await this.searchNumbers({ country: want.country ?? 'US', areaCode: want.areaCode, limit: 1 });
      if (!found.length) throw new CarrierError('not_found', 'telnyx', `no numbers available in area code ${want.areaCode}`);
      number = found[0].phone_number;
    }
    const created = await this.request<{ data?: Json }>('POST', '/number_orders', {
      body: { phone_numbers: [{ phone_number: number }], connection_id: connectionId },
    });
    let order = created.data ?? {};
    const orderId = String(order.id ?? '');
    const deadline = Date.now() + this.orderTimeoutMs;
    while (order.status !== 'success') {
      if (order.status === 'failure') throw new CarrierError('invalid', 'telnyx', `number order ${orderId} for ${number} failed`);
      if (Date.now() > deadline) {
        const unmet = order.requirements_met === false ? ' (regulatory requirements not met)' : '';
        throw new CarrierError('invalid', 'telnyx', `number order ${orderId} for ${number} still ${String(order.status ?? 'pending')} after ${this.orderTimeoutMs} ms${unmet}`);
      }
      await sleep(this.orderPollMs);
      order = (await this.request<{ data?: Json }>('GET', `/number_orders/${encodeURIComponent(orderId)}`)).data ?? {};
    }
    // The number record can trail the order by a moment.
    for (;;) {
      const pn = await this.findNumber(number);
      if (pn) {
        if (pn.connection_id !== connectionId) await this.setConnection(pn.id, connectionId);
        return { carrierNumberId: pn.id, number: pn.phone_number, previous: {}, orderId };
      }
      if (Date.now() > deadline) throw new CarrierError('not_found', 'telnyx', `number order ${orderId} completed but ${number} is not in the account`);
      await sleep(this.orderPollMs);
    }
  }

  private async setConnection(id: string, connectionId: string | null): Promise<void> {
    await this.request('PATCH', `/phone_numbers/${encodeURIComponent(id)}`, { body: { connection_id: connectionId } });
  }

  /**
   * Takes over a number already in the account: points it at our Call Control application. `previous`
   * keeps the connection it had, for restoreNumber.
   */
  async claimNumber(number: string, connectionId: string): Promise<ClaimedNumber> {
    const pn = await this.findNumber(number);
    if (!pn) throw new CarrierError('not_found', 'telnyx', `${number} is not a number of this Telnyx account`, 404);
    const previous = { connection_id: pn.connection_id ?? null };
    if (pn.connection_id !== connectionId) await this.setConnection(pn.id, connectionId);
    return { carrierNumberId: pn.id, number: pn.phone_number, previous };
  }

  /** Puts back the connection a claimed number had before (none → unassigned). */
  async restoreNumber(claimed: ClaimedNumber): Promise<void> {
    const prev = claimed.previous.connection_id;
    await this.setConnection(claimed.carrierNumberId, typeof prev === 'string' && prev ? prev : null);
  }

  /** Deletes (releases) a number from the account. */
  async releaseNumber(carrierNumberId: string): Promise<void> {
    await this.request('DELETE', `/phone_numbers/${encodeURIComponent(carrierNumberId)}`);
  }

  // ---------------- Call Control application ----------------

  /**
   * The id (= connection_id) of our Call Control application named `name`, created if missing, its
   * webhook_event_url (and API v2 webhooks) set to `webhookUrl` if different.
   */
  async ensureCallControlApp(webhookUrl: string, name: string): Promise<string> {
    const query: Query = { 'page[size]': 250 };
    if (name.length >= 3) query['filter[application_name][contains]'] = name;
    let found: Json | undefined;
    for (let page = 1; page <= 20 && !found; page++) {
      const res = await this.request<{ data?: unknown[]; meta?: Json }>('GET', '/call_control_applications', { query: { ...query, 'page[number]': page } });
      found = (res.data ?? []).filter(isObj).find((a) => a.application_name === name);
      const total = Number(res.meta?.total_pages ?? 1);
      if (!(page < total)) break;
    }
    const wanted = { application_name: name, webhook_event_url: webhookUrl, webhook_api_version: '2' };
    if (!found) {
      const created = await this.request<{ data?: Json }>('POST', '/call_control_applications', { body: { ...wanted, active: true } });
      return String(created.data?.id ?? '');
    }
    const id = String(found.id);
    if (found.webhook_event_url !== webhookUrl || (found.webhook_api_version !== undefined && String(found.webhook_api_version) !== '2')) {
      await this.request('PATCH', `/call_control_applications/${encodeURIComponent(id)}`, { body: wanted });
    }
    return id;
  }

  // ---------------- calls ----------------

  /** POST /v2/calls. Dialing is asynchronous: progress arrives as call.initiated / answered / hangup webhooks. */
  async dial(o: TelnyxDialOptions): Promise<TelnyxDialResult> {
    const amd = o.amd === true ? 'detect' : o.amd || undefined;
    const body: Json = {
      connection_id: o.connectionId,
      to: o.to,
      from: o.from,
      ...(o.webhookUrl ? { webhook_url: o.webhookUrl } : {}),
      ...(o.clientState ? { client_state: o.clientState } : {}),
      ...(amd ? { answering_machine_detection: amd } : {}),
      ...(o.timeoutSecs ? { timeout_secs: o.timeoutSecs } : {}),
      ...(o.streamUrl ? streamParams({ streamUrl: o.streamUrl, encoding: o.encoding }) : {}),
      ...(o.conferenceId ? { conference_config: { id: o.conferenceId } } : {}),
    };
    const res = await this.request<{ data?: Json }>('POST', '/calls', { body });
    const d = res.data ?? {};
    if (typeof d.call_control_id !== 'string') throw new CarrierError('unavailable', 'telnyx', 'dial answer without call_control_id');
    return { callControlId: d.call_control_id, callLegId: String(d.call_leg_id ?? ''), callSessionId: String(d.call_session_id ?? '') };
  }

  /**
   * Answers an incoming call; with `streamUrl` the bidirectional media stream starts with the answer (one
   * command, no separate streaming_start). Expect call.answered then streaming.started (or streaming.failed).
   */
  async answer(callControlId: string, o: TelnyxAnswerOptions = {}): Promise<void> {
    await this.command(callControlId, 'answer', {
      ...(o.clientState ? { client_state: o.clientState } : {}),
      ...(o.webhookUrl ? { webhook_url: o.webhookUrl } : {}),
      ...(o.streamUrl ? streamParams({ streamUrl: o.streamUrl, encoding: o.encoding }) : {}),
      command_id: randomUUID(),
    });
  }

  /** Ends the call. A call that is already over counts as hung up (Telnyx 90018 "Call has already ended"). */
  async hangup(callControlId: string): Promise<void> {
    try {
      await this.command(callControlId, 'hangup', { command_id: randomUUID() });
    } catch (err) {
      if (err instanceof CarrierError && err.code !== undefined && CALL_ENDED_CODES.has(String(err.code))) return;
      throw err;
    }
  }

  /** Refuses an unanswered incoming call (`CALL_REJECTED` or `USER_BUSY`). */
  async reject(callControlId: string, cause: 'CALL_REJECTED' | 'USER_BUSY' = 'CALL_REJECTED'): Promise<void> {
    await this.command(callControlId, 'reject', { cause, command_id: randomUUID() });
  }

  /**
   * Blind transfer: Telnyx dials `to` and bridges the caller to it. `from` is the caller id shown to the
   * destination (Telnyx default: the original call's `to`). If the destination fails, the original call stays up.
   */
  async transfer(callControlId: string, to: string, from?: string, opts: { clientState?: string; timeoutSecs?: number } = {}): Promise<void> {
    await this.command(callControlId, 'transfer', {
      to,
      ...(from ? { from } : {}),
      ...(opts.clientState ? { client_state: opts.clientState } : {}),
      ...(opts.timeoutSecs ? { timeout_secs: opts.timeoutSecs } : {}),
      command_id: randomUUID(),
    });
  }

  /** Plays DTMF digits (0-9 A-D * #, `w` = 0.5 s pause, `W` = 1 s) to the other party. */
  async sendDtmf(callControlId: string, digits: string, durationMillis?: number): Promise<void> {
    await this.command(callControlId, 'send_dtmf', { digits, ...(durationMillis ? { duration_millis: durationMillis } : {}) });
  }

  /** Starts a media stream on an answered call (when it was not started with answer/dial). */
  async streamingStart(callControlId: string, o: TelnyxStreamOptions & { clientState?: string }): Promise<void> {
    await this.command(callControlId, 'streaming_start', { ...streamParams(o), ...(o.clientState ? { client_state: o.clientState } : {}) });
  }

  /** Stops one stream, or every stream of the call without `streamId`. */
  async streamingStop(callControlId: string, streamId?: string): Promise<void> {
    await this.command(callControlId, 'streaming_stop', streamId ? { stream_id: streamId } : {});
  }

  // ---------------- conferences (Telnyx's only hold) ----------------

  /** Creates a conference around an existing, answered call leg; returns the conference id. */
  async createConference(callControlId: string, name: string, opts: { holdAudioUrl?: string; beep?: boolean } = {}): Promise<string> {
    const res = await this.request<{ data?: Json }>('POST', '/conferences', {
      body: {
        call_control_id: callControlId,
        name,
        beep_enabled: opts.beep ? 'always' : 'never',
        ...(opts.holdAudioUrl ? { hold_audio_url: opts.holdAudioUrl } : {}),
      },
    });
    const id = res.data?.id;
    if (typeof id !== 'string') throw new CarrierError('unavailable', 'telnyx', 'create conference answer without id');
    return id;
  }

  async joinConference(conferenceId: string, callControlId: string, opts: { hold?: boolean } = {}): Promise<void> {
    await this.request('POST', `/conferences/${encodeURIComponent(conferenceId)}/actions/join`, {
      body: { call_control_id: callControlId, ...(opts.hold ? { hold: true } : {}) },
    });
  }

  async holdParticipants(conferenceId: string, callControlIds: string[], audioUrl?: string): Promise<void> {
    await this.request('POST', `/conferences/${encodeURIComponent(conferenceId)}/actions/hold`, {
      body: { call_control_ids: callControlIds, ...(audioUrl ? { audio_url: audioUrl } : {}) },
    });
  }

  async unholdParticipants(conferenceId: string, callControlIds: string[]): Promise<void> {
    await this.request('POST', `/conferences/${encodeURIComponent(conferenceId)}/actions/unhold`, { body: { call_control_ids: callControlIds } });
  }
}

export interface TelnyxCallControlOptions {
  /** Our number on the call: caller id for transfers and for the party added to a conference. */
  from: string;
  /** Our Call Control application id (needed to dial a conference participant). */
  connectionId: string;
  /** Webhook URL for legs we dial (conference participants). */
  webhookUrl?: string;
  /** Played to a held call (Telnyx plays its default hold audio otherwise). */
  holdAudioUrl?: string;
  /**
   * client_state for a leg dialled into the conference, given the conference id: its events then find
   * their way back to the call (the caller is taken off hold when the human answers).
   */
  participantState?: (conferenceId: string) => string;
}

/**
 * CallControl for one Telnyx call. Telnyx has no hold command for a plain call: hold exists for conference
 * participants. So setHold and addToConference first move the call into a conference of its own (created
 * once, named after the call), then hold/unhold it there, and dial the added party straight into it; a
 * caller held for them is taken off hold when they answer (the events of their leg, see carrier.ts).
 */
export function telnyxCallControl(client: TelnyxClient, callControlId: string, opts: TelnyxCallControlOptions): CallControl {
  let conferenceId: Promise<string> | undefined;
  const conference = () => {
    conferenceId ??= client.createConference(callControlId, `switchboard-${callControlId.replace(/[^A-Za-z0-9_-]/g, '').slice(-40)}`, { holdAudioUrl: opts.holdAudioUrl });
    conferenceId.catch(() => { conferenceId = undefined; });
    return conferenceId;
  };
  return {
    hangup: () => client.hangup(callControlId),
    async transfer(to) {
      await client.transfer(callControlId, to, opts.from);
      return 'handed_off'; // the caller is bridged to the dialled number, away from the stream
    },
    sendDtmf: (digits) => client.sendDtmf(callControlId, digits),
    async setHold(on) {
      const id = await conference();
      if (on) await client.holdParticipants(id, [callControlId], opts.holdAudioUrl);
      else await client.unholdParticipants(id, [callControlId]);
      return 'stays';
    },
    async addToConference(to, { placePrimaryOnHold }) {
      const id = await conference();
      if (placePrimaryOnHold) await client.holdParticipants(id, [callControlId], opts.holdAudioUrl);
      await client.dial({
        to, from: opts.from, connectionId: opts.connectionId, webhookUrl: opts.webhookUrl, conferenceId: id,
        ...(opts.participantState ? { clientState: opts.participantState(id) } : {}),
      });
      // A held caller is the human's once they answer (a warm transfer): the agent leaves now, so it never
      // talks over them. Without hold, the agent stays on the three-way line.
      return placePrimaryOnHold ? 'handed_off' : 'stays';
    },
  };
}
