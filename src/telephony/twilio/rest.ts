/**
 * The part of Twilio's REST API (2010-04-01) Switchboard uses, over fetch with a configurable base URL
 * (TWILIO_API_BASE_URL: api.twilio.com, a proxy, or the local carrier emulator).
 *
 * Followed:
 *  - "Calls resource" (https://www.twilio.com/docs/voice/api/call-resource): create with To/From/Url/
 *    StatusCallback/StatusCallbackEvent (repeated)/MachineDetection/AsyncAmd/Timeout; update with
 *    Status=completed|canceled or Twiml.
 *  - "Conference Participant resource" (https://www.twilio.com/docs/voice/api/conference-participant-resource):
 *    create in a conference named by SID or FriendlyName (created when absent) with From, To, Timeout,
 *    StartConferenceOnEnter, EndConferenceOnExit, Beep, StatusCallback + StatusCallbackEvent (space separated).
 *  - "IncomingPhoneNumber resource" (https://www.twilio.com/docs/phone-numbers/api/incomingphonenumber-resource):
 *    buy (PhoneNumber or AreaCode), read filtered by PhoneNumber, update VoiceUrl/StatusCallback/
 *    VoiceApplicationSid, delete (release).
 *  - "AvailablePhoneNumber Local / TollFree" (https://www.twilio.com/docs/phone-numbers/api/availablephonenumberlocal-resource).
 *  - "Twilio API responses and errors": JSON bodies `{code, message, more_info, status}`; HTTP Basic auth
 *    with the Account SID and Auth Token; form-encoded request bodies.
 */
import { CarrierError, type AvailableNumber, type CarrierErrorKind, type ClaimedNumber, type NumberSearch, type WebhookUrls } from '../types.js';

export const DEFAULT_TWILIO_API_BASE_URL = 'https://api.twilio.com';
const TIMEOUT_MS = 15_000;

export interface TwilioAccount {
  accountSid: string;
  authToken: string;
  baseUrl: string;
}

export interface TwilioCall {
  sid: string;
  status: string;
  to: string;
  from: string;
  direction: string;
  [k: string]: unknown;
}

interface IncomingNumber {
  sid: string;
  phone_number: string;
  voice_url: string | null;
  voice_method: string | null;
  status_callback: string | null;
  status_callback_method: string | null;
  voice_application_sid: string | null;
  [k: string]: unknown;
}

/** Fields we overwrite when a number is pointed at Switchboard, and put back on detach. */
const NUMBER_FIELDS = [
  ['voice_url', 'VoiceUrl'], ['voice_method', 'VoiceMethod'], ['status_callback', 'StatusCallback'],
  ['status_callback_method', 'StatusCallbackMethod'], ['voice_application_sid', 'VoiceApplicationSid'],
] as const;

export interface PlaceCall {
  to: string;
  from: string;
  /** Fetched when the call is answered; answers TwiML. */
  url: string;
  statusCallback: string;
  /** Answering-machine detection, reported asynchronously to `amdCallback`. */
  machineDetection?: boolean;
  amdCallback?: string;
  /** Seconds to let it ring (Twilio's default 60). */
  timeoutSec?: number;
}

type Params = Record<string, string | string[] | undefined>;

function form(params: Params): string {
  const f = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined) continue;
    for (const one of Array.isArray(v) ? v : [v]) f.append(k, one);
  }
  return f.toString();
}

/** Twilio error codes that mean something more specific than their HTTP status. */
const CODE_KIND: Record<number, CarrierErrorKind> = {
  20003: 'auth', 20404: 'not_found', 20429: 'quota', 21452: 'not_found', 21422: 'invalid',
  21211: 'invalid', 21210: 'invalid', 21212: 'invalid', 21215: 'quota', 21217: 'invalid',
};

function kindOf(status: number, code: number | undefined): CarrierErrorKind {
  if (code !== undefined && CODE_KIND[code]) return CODE_KIND[code];
  if (status === 401 || status === 403) return 'auth';
  if (status === 404) return 'not_found';
  if (status === 429) return 'quota';
  if (status >= 500) return 'unavailable';
  return 'invalid';
}

export class TwilioRest {
  private readonly root: string;
  private readonly auth: string;

  constructor(private readonly account: TwilioAccount) {
    this.root = `${account.baseUrl.replace(/\/+$/, '')}/2010-04-01/Accounts/${encodeURIComponent(account.accountSid)}`;
    this.auth = `Basic ${Buffer.from(`${account.accountSid}:${account.authToken}`).toString('base64')}`;
  }

  get accountSid(): string { return this.account.accountSid; }

  private async request<T>(method: string, path: string, params?: Params): Promise<T> {
    const url = `${this.root}${path}`;
    const body = method === 'GET' || method === 'DELETE' || !params ? undefined : form(params);
    const full = method === 'GET' && params ? `${url}?${form(params)}` : url;
    let res: Response;
    try {
      res = await fetch(full, {
        method,
        headers: { authorization: this.auth, accept: 'application/json', ...(body !== undefined ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) },
        body,
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
    } catch (err) {
      const e = err as Error;
      throw new CarrierError('unavailable', 'twilio', e.name === 'TimeoutError' ? 'no answer from Twilio in time' : `cannot reach Twilio: ${e.message}`);
    }
    const text = await res.text();
    if (!res.ok) {
      let code: number | undefined;
      let message = `HTTP ${res.status}`;
      try {
        const j = JSON.parse(text) as { code?: number; message?: string };
        code = typeof j.code === 'number' ? j.code : undefined;
        if (j.message) message = j.message;
      } catch { /* not JSON: keep the status */ }
      // Twilio never echoes the token, but a proxy might: never let it into an error.
      message = message.split(this.account.authToken).join('***').slice(0, 500);
      throw new CarrierError(kindOf(res.status, code), 'twilio', code ? `${message} (error ${code})` : message, res.status, code);
    }
    if (res.status === 204 || !text) return undefined as T;
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new CarrierError('unavailable', 'twilio', 'Twilio answered with a body that is not JSON', res.status);
    }
  }

  // ---- numbers ----

  async searchNumbers(q: NumberSearch): Promise<AvailableNumber[]> {
    const kind = q.tollFree ? 'TollFree' : 'Local';
    const res = await this.request<{ available_phone_numbers?: Record<string, unknown>[] }>('GET',
      `/AvailablePhoneNumbers/${encodeURIComponent(q.country)}/${kind}.json`,
      { AreaCode: q.tollFree ? undefined : q.areaCode, Contains: q.contains, PageSize: String(q.limit) });
    return (res.available_phone_numbers ?? []).slice(0, q.limit).map((n) => {
      const caps = (n.capabilities ?? {}) as Record<string, unknown>;
      return {
        phone_number: String(n.phone_number), friendly_name: (n.friendly_name as string | null) ?? null,
        locality: (n.locality as string | null) ?? null, region: (n.region as string | null) ?? null,
        country_code: String(n.iso_country ?? q.country),
        capabilities: { voice: caps.voice === true, sms: (caps.SMS ?? caps.sms) === true, mms: (caps.MMS ?? caps.mms) === true },
      };
    });
  }

  private hookParams(hooks: WebhookUrls): Params {
    return { VoiceUrl: hooks.voice, VoiceMethod: 'POST', StatusCallback: hooks.status, StatusCallbackMethod: 'POST', VoiceApplicationSid: '' };
  }

  /** Buys `phoneNumber`, or any number in `areaCode`, with its voice webhooks pointing at us. */
  async buyNumber(o: { phoneNumber?: string; areaCode?: string }, hooks: WebhookUrls): Promise<ClaimedNumber> {
    const { VoiceApplicationSid: _, ...params } = this.hookParams(hooks);
    const n = await this.request<IncomingNumber>('POST', '/IncomingPhoneNumbers.json', {
      ...params, PhoneNumber: o.phoneNumber, AreaCode: o.phoneNumber ? undefined : o.areaCode, FriendlyName: 'Switchboard',
    });
    return { carrierNumberId: n.sid, number: n.phone_number, previous: {} };
  }

  async findNumber(number: string): Promise<IncomingNumber | undefined> {
    const res = await this.request<{ incoming_phone_numbers?: IncomingNumber[] }>('GET', '/IncomingPhoneNumbers.json', { PhoneNumber: number });
    return (res.incoming_phone_numbers ?? []).find((n) => n.phone_number === number);
  }

  /** Checks the number is in the account and points its voice webhooks at us; `previous` is what it had. */
  async claimNumber(number: string, hooks: WebhookUrls): Promise<ClaimedNumber> {
    const n = await this.findNumber(number);
    if (!n) throw new CarrierError('not_found', 'twilio', `${number} is not a number of Twilio account ${this.account.accountSid}`, 404);
    const previous = Object.fromEntries(NUMBER_FIELDS.map(([field]) => [field, n[field] ?? null]));
    await this.request('POST', `/IncomingPhoneNumbers/${encodeURIComponent(n.sid)}.json`, this.hookParams(hooks));
    return { carrierNumberId: n.sid, number, previous };
  }

  /**
   * Puts back what claimNumber replaced, but only if the number still points at us (`ourPrefix`): a
   * configuration someone changed since is theirs, and stays.
   */
  async restoreNumber(claimed: ClaimedNumber, ourPrefix: string): Promise<boolean> {
    const n = await this.findNumber(claimed.number);
    if (!n || !n.voice_url?.startsWith(ourPrefix)) return false;
    const params: Params = {};
    for (const [field, param] of NUMBER_FIELDS) {
      const v = claimed.previous[field];
      params[param] = typeof v === 'string' ? v : '';
    }
    // An empty method is not a method: Twilio's default is POST.
    if (!params.VoiceMethod) params.VoiceMethod = 'POST';
    if (!params.StatusCallbackMethod) params.StatusCallbackMethod = 'POST';
    await this.request('POST', `/IncomingPhoneNumbers/${encodeURIComponent(n.sid)}.json`, params);
    return true;
  }

  async releaseNumber(carrierNumberId: string): Promise<void> {
    await this.request('DELETE', `/IncomingPhoneNumbers/${encodeURIComponent(carrierNumberId)}.json`);
  }

  // ---- calls ----

  async placeCall(c: PlaceCall): Promise<TwilioCall> {
    return this.request<TwilioCall>('POST', '/Calls.json', {
      To: c.to, From: c.from, Url: c.url, Method: 'POST',
      StatusCallback: c.statusCallback, StatusCallbackMethod: 'POST',
      StatusCallbackEvent: ['initiated', 'ringing', 'answered', 'completed'],
      Timeout: c.timeoutSec !== undefined ? String(c.timeoutSec) : undefined,
      ...(c.machineDetection ? {
        MachineDetection: 'DetectMessageEnd', AsyncAmd: 'true',
        AsyncAmdStatusCallback: c.amdCallback, AsyncAmdStatusCallbackMethod: 'POST',
      } : {}),
    });
  }

  async getCall(sid: string): Promise<TwilioCall> {
    return this.request<TwilioCall>('GET', `/Calls/${encodeURIComponent(sid)}.json`);
  }

  /** Ends the call: `completed` hangs up an answered call, `canceled` one that is still ringing. */
  async endCall(sid: string, status: 'completed' | 'canceled' = 'completed'): Promise<TwilioCall> {
    return this.request<TwilioCall>('POST', `/Calls/${encodeURIComponent(sid)}.json`, { Status: status });
  }

  /**
   * Dials `to` into a conference (by SID or by friendly name: Twilio creates it if it does not exist yet).
   * Answers the participant's call SID; the call's progress goes to `statusCallback`.
   */
  async addParticipant(conference: string, p: { from: string; to: string; statusCallback: string; timeoutSec?: number }): Promise<{ callSid: string }> {
    const res = await this.request<{ call_sid?: string }>('POST', `/Conferences/${encodeURIComponent(conference)}/Participants.json`, {
      From: p.from, To: p.to, StartConferenceOnEnter: 'true', EndConferenceOnExit: 'true', Beep: 'false',
      StatusCallback: p.statusCallback, StatusCallbackMethod: 'POST', StatusCallbackEvent: 'initiated ringing answered completed',
      Timeout: p.timeoutSec !== undefined ? String(p.timeoutSec) : undefined,
    });
    if (typeof res.call_sid !== 'string') throw new CarrierError('unavailable', 'twilio', 'conference participant answer without call_sid');
    return { callSid: res.call_sid };
  }

  /** Replaces what the call is doing with new TwiML (the media stream, if any, stops). */
  async redirect(sid: string, twiml: string): Promise<TwilioCall> {
    return this.request<TwilioCall>('POST', `/Calls/${encodeURIComponent(sid)}.json`, { Twiml: twiml });
  }
}
