/**
 * The subset of Twilio's REST API (2010-04-01) the emulator answers, with Twilio's request and response
 * conventions: HTTP Basic auth with AccountSid:AuthToken, form-encoded bodies (a list is the same name
 * repeated), JSON bodies with snake_case fields under `.json` paths, and errors as
 * `{code, message, more_info, status}`.
 *
 * Followed:
 *  - "Twilio API requests" / "Twilio API responses" (https://www.twilio.com/docs/usage/requests-to-twilio,
 *    https://www.twilio.com/docs/usage/twilios-response): Basic auth, x-www-form-urlencoded, JSON with
 *    `.json`, error body {code, message, more_info, status}, list pages {first_page_uri, end,
 *    previous_page_uri, uri, page_size, start, next_page_uri, page}.
 *  - "Call resource" (https://www.twilio.com/docs/voice/api/call-resource): create (To, From, Url,
 *    Method, Twiml — "If both twiml and url are provided then twiml parameter will be ignored" —,
 *    StatusCallback, StatusCallbackMethod, StatusCallbackEvent, MachineDetection, MachineDetectionTimeout,
 *    AsyncAmd, AsyncAmdStatusCallback(Method), Timeout 1–600 default 60, SendDigits "If both SendDigits and
 *    MachineDetection parameters are provided, then MachineDetection will be ignored"), fetch, list,
 *    update (Status, Url, Method, Twiml).
 *  - "Conference resource" (https://www.twilio.com/docs/voice/api/conference-resource): read filtered by
 *    FriendlyName / Status (newest first), fetch, update Status=completed.
 *  - "Conference Participant resource" (https://www.twilio.com/docs/voice/api/conference-participant-resource):
 *    create under a conference SID or FriendlyName — "if the conference does not exist, it is created" —
 *    with From, To (required; the From rules of a call), Timeout (5–600, default 60), Label,
 *    StartConferenceOnEnter (default true), EndConferenceOnExit, Muted, Beep, WaitUrl, WaitMethod,
 *    StatusCallback, StatusCallbackMethod, StatusCallbackEvent (initiated ringing answered completed,
 *    space separated or repeated; default completed), ConferenceStatusCallback(Method, Event); 201 with
 *    status queued; read (Muted, Hold filters), fetch and update (Muted, Hold, HoldUrl, HoldMethod,
 *    EndConferenceOnExit) by CallSid or Label, delete (kick, 204).
 *  - "IncomingPhoneNumber resource" (https://www.twilio.com/docs/phone-numbers/api/incomingphonenumber-resource):
 *    create with PhoneNumber or AreaCode, read filtered by PhoneNumber / FriendlyName, fetch, update, delete (204).
 *  - "AvailablePhoneNumber Local / TollFree" (https://www.twilio.com/docs/phone-numbers/api/availablephonenumberlocal-resource).
 *  - Error codes (https://www.twilio.com/docs/api/errors): 20003 authentication, 20404 not found, 20004
 *    method not allowed, 21201 no To, 21211 invalid To, 21213 no From, 21212 invalid From, 21210 From not a
 *    verified or purchased number, 21205 Url, 21220 invalid call state, 21402 invalid VoiceUrl, 21421
 *    PhoneNumber invalid, 21422 PhoneNumber not available, 21451 invalid area code, 21452 no phone numbers
 *    found in area code.
 *
 * Chosen where Twilio's documentation says nothing: a request for another account's SID with valid
 * credentials answers 404 20404 (as for any resource the caller cannot see); only `.json` paths are
 * served (Twilio would answer XML without the suffix); only IsoCountry US has an inventory; a conference is
 * fetched, updated and its participants read by SID only (the FriendlyName works for creating a
 * participant); a participant's missing To / From answer 21201 / 21213 as for a call.
 */
import type http from 'node:http';
import { TERMINAL_STATUSES, type EmulatedCall } from './call.js';
import { conferenceJson, participantJson, type Conference, type ConferenceHub, type Participant, type ParticipantOptions } from './conference.js';
import { incomingNumberJson, type IncomingNumber, type NumberInventory } from './numbers.js';
import { formatNumber, isE164, rfc2822 } from './util.js';

export interface RestCore {
  accountSid: string;
  authToken: string;
  dateCreated: number;
  inventory: NumberInventory;
  callMap: Map<string, EmulatedCall>;
  createOutboundCall(p: OutboundCallParams): EmulatedCall;
  conferenceHub: ConferenceHub;
  addParticipant(conference: Conference, p: ParticipantParams): Participant;
}

export interface ParticipantParams {
  from: string;
  to: string;
  phoneNumberSid: string;
  timeoutSec: number;
  statusCallback?: string;
  statusCallbackMethod: 'GET' | 'POST';
  statusCallbackEvents: Set<string>;
  options: ParticipantOptions;
}

export interface OutboundCallParams {
  to: string;
  from: string;
  url?: string;
  method: 'GET' | 'POST';
  twiml?: string;
  statusCallback?: string;
  statusCallbackMethod: 'GET' | 'POST';
  statusCallbackEvents: Set<string>;
  machineDetection?: 'Enable' | 'DetectMessageEnd';
  machineDetectionTimeoutSec: number;
  asyncAmd: boolean;
  asyncAmdStatusCallback?: string;
  asyncAmdStatusCallbackMethod: 'GET' | 'POST';
  timeoutSec: number;
  phoneNumberSid?: string;
}

export class HttpError extends Error {
  constructor(readonly status: number, readonly code: number, message: string) { super(message); }
}

export function errorBody(status: number, code: number, message: string): Record<string, unknown> {
  return { code, message, more_info: `https://www.twilio.com/docs/errors/${code}`, status };
}

export interface RestReply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

const notFound = (path: string) => new HttpError(404, 20404, `The requested resource ${path} was not found`);
const bad = (code: number, message: string) => new HttpError(400, code, message);
const method = (v: string | null | undefined, dflt: 'GET' | 'POST' = 'POST'): 'GET' | 'POST' => {
  if (v === null || v === undefined || v === '') return dflt;
  const m = v.toUpperCase();
  if (m !== 'GET' && m !== 'POST') throw bad(21403, `Method ${v} is not valid (GET or POST)`);
  return m;
};
const isHttpUrl = (u: string) => /^https?:\/\/[^/\s]+/i.test(u);

/** Checks HTTP Basic auth: AccountSid:AuthToken. */
export function authenticate(core: RestCore, header: string | undefined): HttpError | undefined {
  const m = /^Basic\s+(.+)$/i.exec(header ?? '');
  if (!m) return new HttpError(401, 20003, 'Authentication Error - No credentials provided');
  const decoded = Buffer.from(m[1], 'base64').toString('utf8');
  const i = decoded.indexOf(':');
  const user = i < 0 ? decoded : decoded.slice(0, i);
  const pass = i < 0 ? '' : decoded.slice(i + 1);
  if (user !== core.accountSid || pass !== core.authToken) return new HttpError(401, 20003, 'Authentication Error - invalid username');
  return undefined;
}

/** Answers one REST request. `path` excludes the query string; `params` merges the query and the form body. */
export function handleRest(core: RestCore, req: { method: string; path: string; query: URLSearchParams; form: URLSearchParams; authorization?: string }): RestReply {
  try {
    const authError = authenticate(core, req.authorization);
    if (authError) throw authError;
    const m = /^\/2010-04-01\/Accounts\/([^/]+?)(\.json|\/(.*))?$/.exec(req.path);
    if (!m) throw notFound(req.path);
    if (m[1] !== core.accountSid) throw notFound(req.path);
    const rest = m[3];
    const p = req.method === 'GET' || req.method === 'DELETE' ? req.query : mergeParams(req.query, req.form);
    if (m[2] === '.json') return only(req.method, ['GET'], () => ({ status: 200, body: accountJson(core) }));
    if (!rest) throw notFound(req.path);
    let r: RegExpExecArray | null;
    if ((r = /^AvailablePhoneNumbers\/([A-Za-z]{2})\/(Local|TollFree)\.json$/.exec(rest))) {
      return only(req.method, ['GET'], () => availableNumbers(core, r![1].toUpperCase(), r![2] as 'Local' | 'TollFree', p, req.path));
    }
    if (rest === 'IncomingPhoneNumbers.json') {
      if (req.method === 'GET') return listIncoming(core, p, req.path);
      return only(req.method, ['GET', 'POST'], () => buyNumber(core, p));
    }
    if ((r = /^IncomingPhoneNumbers\/([^/]+)\.json$/.exec(rest))) {
      const n = core.inventory.owned.get(r[1]);
      if (!n || n.accountSid !== core.accountSid) throw notFound(req.path);
      if (req.method === 'GET') return { status: 200, body: incomingNumberJson(n) };
      if (req.method === 'POST') return { status: 200, body: incomingNumberJson(updateNumber(n, p)) };
      if (req.method === 'DELETE') { core.inventory.release(n.sid); return { status: 204 }; }
      throw methodNotAllowed(req.method);
    }
    if (rest === 'Calls.json') {
      if (req.method === 'GET') return listCalls(core, p, req.path);
      return only(req.method, ['GET', 'POST'], () => createCall(core, p));
    }
    if (rest === 'Conferences.json') return only(req.method, ['GET'], () => listConferences(core, p, req.path));
    if ((r = /^Conferences\/([^/]+)\.json$/.exec(rest))) {
      const conf = conferenceBySid(core, r[1], req.path);
      if (req.method === 'GET') return { status: 200, body: conferenceJson(conf) };
      if (req.method === 'POST') return { status: 200, body: conferenceJson(updateConference(core, conf, p)) };
      throw methodNotAllowed(req.method);
    }
    if ((r = /^Conferences\/([^/]+)\/Participants\.json$/.exec(rest))) {
      if (req.method === 'POST') return createParticipant(core, decode(r[1]), p, req.path);
      const conf = conferenceBySid(core, r[1], req.path);
      if (req.method === 'GET') return listParticipants(conf, p, req.path);
      throw methodNotAllowed(req.method);
    }
    if ((r = /^Conferences\/([^/]+)\/Participants\/([^/]+)\.json$/.exec(rest))) {
      const conf = conferenceBySid(core, r[1], req.path);
      const key = decode(r[2]);
      const part = conf.listed.find((x) => x.callSid === key) ?? conf.listed.find((x) => x.label !== undefined && x.label === key);
      if (!part) throw notFound(req.path);
      if (req.method === 'GET') return { status: 200, body: participantJson(part) };
      if (req.method === 'POST') return { status: 200, body: participantJson(updateParticipant(core, part, p)) };
      if (req.method === 'DELETE') { core.conferenceHub.leave(part, 'kicked'); return { status: 204 }; }
      throw methodNotAllowed(req.method);
    }
    if ((r = /^Calls\/([^/]+)\.json$/.exec(rest))) {
      const call = core.callMap.get(r[1]);
      if (!call) throw notFound(req.path);
      if (req.method === 'GET') return { status: 200, body: callJson(call) };
      if (req.method === 'POST') return { status: 200, body: callJson(updateCall(call, p)) };
      if (req.method === 'DELETE') {
        if (!TERMINAL_STATUSES.has(call.status)) throw bad(21220, 'Call is in progress and cannot be deleted');
        core.callMap.delete(call.sid);
        return { status: 204 };
      }
      throw methodNotAllowed(req.method);
    }
    throw notFound(req.path);
  } catch (err) {
    if (err instanceof HttpError) {
      const headers: Record<string, string> = err.status === 401 ? { 'www-authenticate': 'Basic realm="Twilio API"' } : {};
      return { status: err.status, body: errorBody(err.status, err.code, err.message), headers };
    }
    throw err;
  }
}

function methodNotAllowed(m: string): HttpError {
  return new HttpError(405, 20004, `Method ${m} not allowed`);
}

function only(m: string, allowed: string[], fn: () => RestReply): RestReply {
  if (!allowed.includes(m)) throw methodNotAllowed(m);
  return fn();
}

function mergeParams(query: URLSearchParams, form: URLSearchParams): URLSearchParams {
  const out = new URLSearchParams(query);
  for (const k of new Set(form.keys())) {
    out.delete(k);
    for (const v of form.getAll(k)) out.append(k, v);
  }
  return out;
}

function page(p: URLSearchParams): { size: number; page: number } {
  const size = Math.min(1000, Math.max(1, Number(p.get('PageSize') ?? 50) || 50));
  const pg = Math.max(0, Number(p.get('Page') ?? 0) || 0);
  return { size, page: pg };
}

function listBody<T>(key: string, items: T[], p: URLSearchParams, path: string, total?: number): Record<string, unknown> {
  const { size, page: pg } = page(p);
  const q = new URLSearchParams(p);
  q.delete('Page');
  q.delete('PageToken');
  q.set('PageSize', String(size));
  const uri = (n: number) => `${path}?${new URLSearchParams({ ...Object.fromEntries(q), Page: String(n) }).toString()}`;
  const start = pg * size;
  const more = total !== undefined && start + items.length < total;
  return {
    [key]: items, end: Math.max(start, start + items.length - 1), first_page_uri: uri(0), next_page_uri: more ? uri(pg + 1) : null,
    page: pg, page_size: size, previous_page_uri: pg > 0 ? uri(pg - 1) : null, start, uri: uri(pg),
  };
}

function accountJson(core: RestCore): Record<string, unknown> {
  const base = `/2010-04-01/Accounts/${core.accountSid}`;
  return {
    auth_token: core.authToken, date_created: rfc2822(core.dateCreated), date_updated: rfc2822(core.dateCreated),
    friendly_name: 'Switchboard emulator account', owner_account_sid: core.accountSid, sid: core.accountSid, status: 'active',
    subresource_uris: { calls: `${base}/Calls.json`, conferences: `${base}/Conferences.json`, incoming_phone_numbers: `${base}/IncomingPhoneNumbers.json`, available_phone_numbers: `${base}/AvailablePhoneNumbers.json` },
    type: 'Full', uri: `${base}.json`,
  };
}

function availableNumbers(core: RestCore, country: string, kind: 'Local' | 'TollFree', p: URLSearchParams, path: string): RestReply {
  if (country !== 'US') throw notFound(path);
  const areaCode = p.get('AreaCode') ?? undefined;
  if (areaCode !== undefined && !/^\d{3}$/.test(areaCode)) throw bad(21451, 'Invalid area code');
  const { size } = page(p);
  const found = core.inventory.search({
    kind: kind === 'Local' ? 'local' : 'toll-free', areaCode, contains: p.get('Contains') ?? undefined,
    inRegion: p.get('InRegion') ?? undefined, inLocality: p.get('InLocality') ?? undefined, pageSize: size,
  });
  if ('error' in found) throw bad(21421, found.error);
  const q = new URLSearchParams(p);
  return {
    status: 200,
    body: { available_phone_numbers: found, end: found.length ? found.length - 1 : 0, first_page_uri: `${path}?${q}`, next_page_uri: null, page: 0, page_size: size, previous_page_uri: null, start: 0, uri: `${path}?${q}` },
  };
}

function listIncoming(core: RestCore, p: URLSearchParams, path: string): RestReply {
  const want = p.get('PhoneNumber');
  const name = p.get('FriendlyName');
  const all = [...core.inventory.owned.values()].filter((n) => n.accountSid === core.accountSid)
    .filter((n) => !want || n.phoneNumber === want.trim() || n.phoneNumber === `+${want.trim().replace(/^\+/, '')}`)
    .filter((n) => !name || n.friendlyName === name)
    .sort((a, b) => a.dateCreated - b.dateCreated);
  const { size, page: pg } = page(p);
  const items = all.slice(pg * size, pg * size + size).map(incomingNumberJson);
  return { status: 200, body: listBody('incoming_phone_numbers', items, p, path, all.length) };
}

const NUMBER_FIELDS = {
  VoiceUrl: 'voiceUrl', VoiceFallbackUrl: 'voiceFallbackUrl', StatusCallback: 'statusCallback',
} as const;

function numberFields(p: URLSearchParams): Partial<IncomingNumber> {
  const f: Partial<IncomingNumber> = {};
  for (const [param, field] of Object.entries(NUMBER_FIELDS)) {
    const v = p.get(param);
    if (v === null) continue;
    if (v !== '' && !isHttpUrl(v)) throw bad(21402, `${param} is not a valid URL: ${v}`);
    f[field] = v === '' ? null : v;
  }
  if (p.has('VoiceMethod')) f.voiceMethod = method(p.get('VoiceMethod'));
  if (p.has('VoiceFallbackMethod')) f.voiceFallbackMethod = method(p.get('VoiceFallbackMethod'));
  if (p.has('StatusCallbackMethod')) f.statusCallbackMethod = method(p.get('StatusCallbackMethod'));
  if (p.has('VoiceApplicationSid')) f.voiceApplicationSid = p.get('VoiceApplicationSid') || null;
  if (p.has('FriendlyName')) f.friendlyName = p.get('FriendlyName') ?? '';
  return f;
}

function buyNumber(core: RestCore, p: URLSearchParams): RestReply {
  const inv = core.inventory;
  const fields = numberFields(p);
  const wanted = p.get('PhoneNumber');
  let number: string | undefined;
  if (wanted !== null && wanted !== '') {
    const n = wanted.trim().startsWith('+') ? wanted.trim() : `+${wanted.trim()}`;
    if (!isE164(n)) throw bad(21421, `PhoneNumber ${wanted} is invalid`);
    if (!inv.isAvailable(n)) throw bad(21422, `PhoneNumber ${n} is not available`);
    number = n;
  } else {
    const area = p.get('AreaCode');
    if (area === null || area === '') throw bad(21421, 'A PhoneNumber or AreaCode is required');
    if (!/^\d{3}$/.test(area)) throw bad(21451, 'Invalid area code');
    number = inv.firstAvailable('local', area) ?? inv.firstAvailable('toll-free', area);
    if (!number) throw bad(21452, 'No phone numbers found in area code');
  }
  const n = inv.add(core.accountSid, number, { ...fields, friendlyName: fields.friendlyName || formatNumber(number) });
  return { status: 201, body: incomingNumberJson(n) };
}

function updateNumber(n: IncomingNumber, p: URLSearchParams): IncomingNumber {
  Object.assign(n, numberFields(p));
  n.dateUpdated = Date.now();
  return n;
}

const EVENTS = new Set(['initiated', 'ringing', 'answered', 'completed']);

/** To and From of a call Twilio is asked to place (a call, or a conference participant), checked as Twilio does. */
function dialParties(core: RestCore, p: URLSearchParams) {
  const to = p.get('To');
  if (!to) throw bad(21201, "No 'To' number is specified");
  if (!isE164(to.trim())) throw bad(21211, `Invalid 'To' Phone Number: ${to}`);
  const from = p.get('From');
  if (!from) throw bad(21213, "No 'From' number is specified");
  if (!isE164(from.trim())) throw bad(21212, `Invalid 'From' Phone Number: ${from}`);
  const owned = core.inventory.findOwned(from.trim());
  if (!owned) {
    throw bad(21210, `The source phone number provided, ${from}, is not yet verified for your account. You may only make calls from phone numbers that you've verified or purchased from Twilio.`);
  }
  return { to, from, owned };
}

function createCall(core: RestCore, p: URLSearchParams): RestReply {
  const { to, from, owned } = dialParties(core, p);
  const url = p.get('Url') || undefined;
  const twiml = p.get('Twiml') || undefined;
  if (!url && !twiml) throw bad(21205, 'Url or Twiml is required');
  if (url && !isHttpUrl(url)) throw bad(21205, `Url is not a valid URL: ${url}`);
  const statusCallback = p.get('StatusCallback') || undefined;
  if (statusCallback && !isHttpUrl(statusCallback)) throw bad(21609, `StatusCallback is not a valid URL: ${statusCallback}`);
  const events = new Set<string>();
  for (const v of p.getAll('StatusCallbackEvent')) for (const e of v.split(/[\s,]+/)) if (EVENTS.has(e)) events.add(e);
  const md = (p.get('MachineDetection') ?? '').toLowerCase();
  const machineDetection = p.get('SendDigits') ? undefined : md === 'enable' ? 'Enable' : md === 'detectmessageend' ? 'DetectMessageEnd' : undefined;
  const timeout = p.has('Timeout') ? Number(p.get('Timeout')) : 60;
  const amdTimeout = p.has('MachineDetectionTimeout') ? Number(p.get('MachineDetectionTimeout')) : 30;
  const call = core.createOutboundCall({
    to: to.trim(), from: from.trim(), url, twiml, method: method(p.get('Method')),
    statusCallback, statusCallbackMethod: method(p.get('StatusCallbackMethod')), statusCallbackEvents: events,
    machineDetection, machineDetectionTimeoutSec: Number.isFinite(amdTimeout) ? Math.min(Math.max(amdTimeout, 3), 59) : 30,
    asyncAmd: (p.get('AsyncAmd') ?? '').toLowerCase() === 'true',
    asyncAmdStatusCallback: p.get('AsyncAmdStatusCallback') || undefined,
    asyncAmdStatusCallbackMethod: method(p.get('AsyncAmdStatusCallbackMethod')),
    timeoutSec: Number.isFinite(timeout) && timeout > 0 ? Math.min(timeout, 600) : 60,
    phoneNumberSid: owned.sid,
  });
  return { status: 201, body: callJson(call) };
}

function listCalls(core: RestCore, p: URLSearchParams, path: string): RestReply {
  const to = p.get('To');
  const from = p.get('From');
  const status = p.get('Status');
  const all = [...core.callMap.values()].filter((c) => (!to || c.to === to) && (!from || c.from === from) && (!status || c.status === status))
    .sort((a, b) => b.dateCreated - a.dateCreated);
  const { size, page: pg } = page(p);
  return { status: 200, body: listBody('calls', all.slice(pg * size, pg * size + size).map(callJson), p, path, all.length) };
}

function updateCall(call: EmulatedCall, p: URLSearchParams): EmulatedCall {
  const status = p.get('Status');
  const url = p.get('Url') || undefined;
  const twiml = p.get('Twiml') || undefined;
  if (status) {
    if (status !== 'completed' && status !== 'canceled') throw bad(21218, `Status ${status} is not valid (completed or canceled)`);
    call.apiEnd(status);
    return call;
  }
  if (url || twiml) {
    if (call.isEnded) throw bad(21220, 'Call is not in-progress. Cannot redirect.');
    if (url && !isHttpUrl(url)) throw bad(21205, `Url is not a valid URL: ${url}`);
    call.redirect({ url, twiml, method: method(p.get('Method')) });
  }
  return call;
}

// ---- conferences ----

const decode = (s: string): string => { try { return decodeURIComponent(s); } catch { return s; } };

function conferenceBySid(core: RestCore, id: string, path: string): Conference {
  const c = core.conferenceHub.bySid(decode(id));
  if (!c) throw notFound(path);
  return c;
}

/** Absent → `dflt`; otherwise "true" (any case) is true and, as Twilio says of Muted, "any value other than true or false is interpreted as false". */
function flag(p: URLSearchParams, name: string, dflt: boolean): boolean {
  const v = p.get(name);
  if (v === null || v === '') return dflt;
  return v.trim().toLowerCase() === 'true';
}

function optionalFlag(p: URLSearchParams, name: string): boolean | undefined {
  return p.has(name) ? flag(p, name, false) : undefined;
}

function listConferences(core: RestCore, p: URLSearchParams, path: string): RestReply {
  const name = p.get('FriendlyName');
  const status = p.get('Status');
  const all = core.conferenceHub.list().filter((c) => (!name || c.friendlyName === name) && (!status || c.status === status))
    .sort((a, b) => b.dateCreated - a.dateCreated);
  const { size, page: pg } = page(p);
  return { status: 200, body: listBody('conferences', all.slice(pg * size, pg * size + size).map(conferenceJson), p, path, all.length) };
}

function updateConference(core: RestCore, c: Conference, p: URLSearchParams): Conference {
  const status = p.get('Status');
  if (status) {
    if (status !== 'completed') throw bad(21218, `Status ${status} is not valid (completed)`);
    core.conferenceHub.end(c, 'conference-ended-via-api');
  }
  return c;
}

function createParticipant(core: RestCore, id: string, p: URLSearchParams, path: string): RestReply {
  const { to, from, owned } = dialParties(core, p);
  const statusCallback = p.get('StatusCallback') || undefined;
  if (statusCallback && !isHttpUrl(statusCallback)) throw bad(21609, `StatusCallback is not a valid URL: ${statusCallback}`);
  const conferenceCallback = p.get('ConferenceStatusCallback') || undefined;
  if (conferenceCallback && !isHttpUrl(conferenceCallback)) throw bad(21609, `ConferenceStatusCallback is not a valid URL: ${conferenceCallback}`);
  const waitUrl = p.get('WaitUrl');
  if (waitUrl && !isHttpUrl(waitUrl)) throw bad(21205, `WaitUrl is not a valid URL: ${waitUrl}`);
  const timeout = p.has('Timeout') ? Number(p.get('Timeout')) : 60;
  const beep = p.get('Beep') ?? 'true';
  const options: ParticipantOptions = {
    label: p.get('Label') || undefined,
    startConferenceOnEnter: flag(p, 'StartConferenceOnEnter', true), endConferenceOnExit: flag(p, 'EndConferenceOnExit', false),
    muted: flag(p, 'Muted', false), beep: ['true', 'false', 'onEnter', 'onExit'].includes(beep) ? beep : 'true',
    waitUrl: waitUrl === null ? undefined : waitUrl, waitMethod: method(p.get('WaitMethod')),
    conferenceCallback: conferenceCallback
      ? { url: conferenceCallback, method: method(p.get('ConferenceStatusCallbackMethod')), events: events(p, 'ConferenceStatusCallbackEvent') }
      : undefined,
  };
  // A SID names that conference; anything else is a friendly name, and Twilio creates the conference when
  // none of that name is running.
  const hub = core.conferenceHub;
  let conf: Conference;
  if (/^CF[0-9a-fA-F]{32}$/.test(id)) {
    const c = hub.bySid(id);
    if (!c || c.status === 'completed') throw notFound(path);
    conf = c;
  } else conf = hub.open(id);
  const part = core.addParticipant(conf, {
    from: from.trim(), to: to.trim(), phoneNumberSid: owned.sid,
    timeoutSec: Number.isFinite(timeout) && timeout > 0 ? Math.min(Math.max(timeout, 5), 600) : 60,
    statusCallback, statusCallbackMethod: method(p.get('StatusCallbackMethod')),
    statusCallbackEvents: new Set(events(p, 'StatusCallbackEvent').filter((e) => EVENTS.has(e))), options,
  });
  return { status: 201, body: participantJson(part) };
}

function events(p: URLSearchParams, name: string): string[] {
  const out: string[] = [];
  for (const v of p.getAll(name)) for (const e of v.split(/[\s,]+/)) if (e && !out.includes(e)) out.push(e);
  return out;
}

function listParticipants(c: Conference, p: URLSearchParams, path: string): RestReply {
  const muted = optionalFlag(p, 'Muted');
  const hold = optionalFlag(p, 'Hold');
  const all = c.listed.filter((x) => (muted === undefined || x.muted === muted) && (hold === undefined || x.hold === hold));
  const { size, page: pg } = page(p);
  return { status: 200, body: listBody('participants', all.slice(pg * size, pg * size + size).map(participantJson), p, path, all.length) };
}

function updateParticipant(core: RestCore, part: Participant, p: URLSearchParams): Participant {
  const holdUrl = p.get('HoldUrl');
  if (holdUrl && !isHttpUrl(holdUrl)) throw bad(21205, `HoldUrl is not a valid URL: ${holdUrl}`);
  core.conferenceHub.update(part, {
    muted: optionalFlag(p, 'Muted'), hold: optionalFlag(p, 'Hold'), endConferenceOnExit: optionalFlag(p, 'EndConferenceOnExit'),
    holdUrl: holdUrl === null ? undefined : holdUrl, holdMethod: p.has('HoldMethod') ? method(p.get('HoldMethod'), 'GET') : undefined,
  });
  return part;
}

export function callJson(c: EmulatedCall): Record<string, unknown> {
  const uri = `/2010-04-01/Accounts/${c.accountSid}/Calls/${c.sid}.json`;
  const sub = (name: string) => uri.replace(/\.json$/, `/${name}.json`);
  const ended = TERMINAL_STATUSES.has(c.status);
  return {
    account_sid: c.accountSid, annotation: null, answered_by: c.answeredBy ?? null, api_version: '2010-04-01', caller_name: null,
    date_created: rfc2822(c.dateCreated), date_updated: rfc2822(c.dateUpdated), direction: c.direction,
    duration: ended && c.status === 'completed' ? String(c.durationSec ?? 0) : null,
    end_time: ended && c.endTime ? rfc2822(c.endTime) : null, forwarded_from: null, from: c.from, from_formatted: formatNumber(c.from),
    group_sid: null, parent_call_sid: null, phone_number_sid: c.init.phoneNumberSid ?? null, price: null, price_unit: 'USD',
    queue_time: '0', sid: c.sid, start_time: c.startTime ? rfc2822(c.startTime) : null, status: c.status,
    subresource_uris: {
      notifications: sub('Notifications'), recordings: sub('Recordings'), payments: sub('Payments'), events: sub('Events'),
      siprec: sub('Siprec'), streams: sub('Streams'), transcriptions: sub('Transcriptions'), user_defined_message_subscriptions: sub('UserDefinedMessageSubscriptions'),
      user_defined_messages: sub('UserDefinedMessages'),
    },
    to: c.to, to_formatted: formatNumber(c.to), trunk_sid: null, uri,
  };
}

/** Reads a request body to a string (REST bodies are small; 1 MB cap). */
export function readBody(req: http.IncomingMessage, limit = 1 << 20): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) { reject(new HttpError(413, 20001, 'request body too large')); req.destroy(); return; }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
