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
 * served (Twilio would answer XML without the suffix); only IsoCountry US has an inventory.
 */
import type http from 'node:http';
import { TERMINAL_STATUSES, type EmulatedCall } from './call.js';
import { incomingNumberJson, type IncomingNumber, type NumberInventory } from './numbers.js';
import { formatNumber, isE164, rfc2822 } from './util.js';

export interface RestCore {
  accountSid: string;
  authToken: string;
  dateCreated: number;
  inventory: NumberInventory;
  callMap: Map<string, EmulatedCall>;
  createOutboundCall(p: OutboundCallParams): EmulatedCall;
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
    subresource_uris: { calls: `${base}/Calls.json`, incoming_phone_numbers: `${base}/IncomingPhoneNumbers.json`, available_phone_numbers: `${base}/AvailablePhoneNumbers.json` },
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

function createCall(core: RestCore, p: URLSearchParams): RestReply {
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
