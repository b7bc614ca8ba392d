/**
 * A carrier in which every account exists and owns every number: the Twilio and Telnyx REST calls that
 * linking, detaching, cancelling and buying a number make (find the number, point it at us, put it back, release
 * it, search and buy), answered in each carrier's shapes for any credentials. For the API suites, whose subject is the
 * `/v1` surface and not the carrier; the carriers themselves are tested against the strict emulator and
 * the Telnyx fake. It records every request, so a suite can still see what reached the carrier.
 */
import { randomUUID } from 'node:crypto';
import { json, startFakeServer } from './server.js';

export interface OpenCarrier {
  url: string;
  requests: { method: string; path: string; body: string }[];
  close(): Promise<void>;
}

export async function startOpenCarrier(): Promise<OpenCarrier> {
  const requests: OpenCarrier['requests'] = [];
  const twilioNumbers = new Map<string, Record<string, unknown>>();
  const telnyxNumbers = new Map<string, Record<string, unknown>>();
  const apps = new Map<string, Record<string, unknown>>();
  let sold = 0;
  const server = await startFakeServer({
    http: (req, res, raw): void => {
      const url = new URL(req.url ?? '/', 'http://carrier');
      const body = raw.toString();
      requests.push({ method: req.method ?? 'GET', path: url.pathname, body });
      // ---- Twilio ----
      const avail = /^\/2010-04-01\/Accounts\/[^/]+\/AvailablePhoneNumbers\/([A-Z]{2})\/(Local|TollFree)\.json$/.exec(url.pathname);
      if (avail && req.method === 'GET') {
        // Always one number for sale, different each time, in the asked area code when there is one.
        const area = url.searchParams.get('AreaCode') ?? (avail[2] === 'TollFree' ? '888' : '415');
        const phone = `+1${area}555${String(++sold).padStart(4, '0')}`;
        json(res, 200, { available_phone_numbers: [{ phone_number: phone, friendly_name: phone, locality: null, region: null, iso_country: avail[1], capabilities: { voice: true, SMS: true, MMS: false } }] });
        return;
      }
      if (/^\/2010-04-01\/Accounts\/[^/]+\/IncomingPhoneNumbers\.json$/.test(url.pathname) && req.method === 'POST') {
        const account = url.pathname.split('/')[3];
        const f = new URLSearchParams(body);
        const n = f.get('PhoneNumber') ?? `+1${f.get('AreaCode') ?? '415'}555${String(++sold).padStart(4, '0')}`;
        const entry = { sid: `PN${randomUUID().replace(/-/g, '')}`, account_sid: account, phone_number: n, voice_url: f.get('VoiceUrl'), voice_method: 'POST', status_callback: f.get('StatusCallback'), status_callback_method: 'POST', voice_application_sid: null };
        twilioNumbers.set(`${account}|${n}`, entry);
        json(res, 201, entry);
        return;
      }
      const tw = /^\/2010-04-01\/Accounts\/([^/]+)\/IncomingPhoneNumbers(?:\/([^/.]+))?\.json$/.exec(url.pathname);
      if (tw) {
        const [, account, sid] = tw;
        if (!sid && req.method === 'GET') {
          const n = url.searchParams.get('PhoneNumber') ?? '';
          const key = `${account}|${n}`;
          if (!twilioNumbers.has(key)) {
            twilioNumbers.set(key, { sid: `PN${randomUUID().replace(/-/g, '')}`, account_sid: account, phone_number: n, voice_url: null, voice_method: 'POST', status_callback: null, status_callback_method: 'POST', voice_application_sid: null });
          }
          { json(res, 200, { incoming_phone_numbers: [twilioNumbers.get(key)], page: 0, page_size: 50 }); return; }
        }
        const entry = [...twilioNumbers.values()].find((n) => n.sid === sid);
        if (!entry) { json(res, 404, { code: 20404, message: 'The requested resource was not found', more_info: 'https://www.twilio.com/docs/errors/20404', status: 404 }); return; }
        if (req.method === 'DELETE') { twilioNumbers.delete(`${account}|${entry.phone_number}`); res.writeHead(204); res.end(); return; }
        const f = new URLSearchParams(body);
        if (f.has('VoiceUrl')) entry.voice_url = f.get('VoiceUrl') || null;
        if (f.has('StatusCallback')) entry.status_callback = f.get('StatusCallback') || null;
        { json(res, 200, entry); return; }
      }
      // ---- Telnyx ----
      if (url.pathname === '/v2/phone_numbers' && req.method === 'GET') {
        const n = url.searchParams.get('filter[phone_number]') ?? '';
        const key = `${req.headers.authorization}|${n}`;
        if (!telnyxNumbers.has(key)) telnyxNumbers.set(key, { id: randomUUID(), phone_number: n, status: 'active', connection_id: null });
        { json(res, 200, { data: [telnyxNumbers.get(key)], meta: { total_results: 1 } }); return; }
      }
      const pn = /^\/v2\/phone_numbers\/([^/]+)$/.exec(url.pathname);
      if (pn) {
        const entry = [...telnyxNumbers.values()].find((n) => n.id === pn[1]);
        if (!entry) { json(res, 404, { errors: [{ code: '10005', title: 'Resource not found' }] }); return; }
        if (req.method === 'DELETE') { for (const [k, v] of telnyxNumbers) if (v === entry) telnyxNumbers.delete(k); return json(res, 200, { data: entry }); }
        Object.assign(entry, JSON.parse(body || '{}'));
        { json(res, 200, { data: entry }); return; }
      }
      if (url.pathname === '/v2/call_control_applications') {
        if (req.method === 'GET') { json(res, 200, { data: [...apps.values()], meta: { total_pages: 1 } }); return; }
        const app = { id: randomUUID(), ...JSON.parse(body || '{}') };
        apps.set(app.id as string, app);
        { json(res, 201, { data: app }); return; }
      }
      const app = /^\/v2\/call_control_applications\/([^/]+)$/.exec(url.pathname);
      if (app && apps.has(app[1])) {
        Object.assign(apps.get(app[1])!, JSON.parse(body || '{}'));
        { json(res, 200, { data: apps.get(app[1]) }); return; }
      }
      { json(res, 404, { message: `the open carrier does not serve ${req.method} ${url.pathname}` }); return; }
    },
  });
  return { url: server.url, requests, close: () => server.close() };
}
