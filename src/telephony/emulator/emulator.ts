/**
 * The local carrier emulator: a process-local stand-in for Twilio that speaks Twilio's wire protocols,
 * so Switchboard's Twilio adapter works against it with only TWILIO_API_BASE_URL changed.
 *
 *   const emu = await startEmulator();                       // http://127.0.0.1:<port>, random AC…/token
 *   emu.addNumber('+14155550100', { voiceUrl: 'http://127.0.0.1:3000/telephony/twilio/voice' });
 *   const call = await emu.placeInboundCall({ from: '+15005550006', to: '+14155550100', audio: 'hello.wav' });
 *   await call.waitForAgentAudio();  await call.waitForAgentSilence(800);
 *   await call.hangup();  await call.waitForEnd();
 *   call.metrics().responseLatencies; call.agentWav(); call.events; call.protocolViolations;
 *   emu.setDestination('+12125550123', { answer: 'machine', greetingMs: 2000 });  // outbound scripting
 *   emu.conferences();  emu.getConference('sb-1');   // rooms, participants, what waiting callers heard
 *   await emu.close();
 *
 * API (see the types for details):
 *  - startEmulator(opts?: EmulatorOptions): Promise<Emulator>
 *  - Emulator: url, accountSid, authToken, calls, protocolViolations; addNumber(number, config?),
 *    numbers(), reserveNumber(number, taken?); setDestination(number, d | undefined),
 *    setDefaultDestination(d); placeInboundCall(opts): Promise<CallHandle>; getCall(sid); onCall(fn);
 *    nextCall(filter?, timeoutMs?); conferences(); getConference(sidOrName); stats(); close().
 *  - CallHandle (./call.ts): sendAudio/sendSilence/sendDtmf/hangup as the far end; waitForStream,
 *    waitForAgentAudio, waitForAgentSilence, waitForStatus, waitForEnd, waitForEvent; events,
 *    webhooks, statusCallbacks, streams, marks, clears, transfers, protocolViolations; agentAudio(),
 *    agentWav(), saveAgentWav(path), metrics().
 *  - Conferences (./conference.ts): <Dial><Conference> and the Conference / Participants resources;
 *    conferences() gives each room's sid, name, status (init → in-progress → completed), end reason and
 *    participants (callSid, label, via twiml|api, number, status, startConferenceOnEnter,
 *    endConferenceOnExit, muted, hold, joinedAt, leftAt, leaveReason, heard: the wait/hold audio), and its
 *    status callbacks. Calls log conference-join / -wait / -start / -hold / -mute / -leave / -end events,
 *    and what a waiting or held caller hears as say / play / pause events with `during: 'wait' | 'hold'`.
 *  - Over HTTP: Twilio's REST subset under /2010-04-01 (./rest.ts) and the emulator's own control API
 *    under /_emulator (./control.ts).
 *
 * Webhook URLs the application gives (VoiceUrl, Url, StatusCallback, <Stream url>, actions) must be
 * absolute, as Twilio requires; `rewriteUrl` can map a public URL (https://example.ngrok.app/…) to a
 * local one while the signature stays over the URL as given.
 *
 * Followed: "Call resource", "IncomingPhoneNumber resource", "AvailablePhoneNumber resources", "Media
 * Streams - WebSocket Messages", "Webhooks security", TwiML <Connect>/<Stream>/<Reject>/<Hangup>/<Dial>/
 * <Conference>/<Say>/<Pause>/<Play>, "Answering Machine Detection", "Conference resource", "Conference
 * Participant resource" (https://www.twilio.com/docs/...; the files below cite each page where it is
 * applied).
 */
import http from 'node:http';
import type { Duplex } from 'node:stream';
import type { CallerAudio } from './audio.js';
import { EmulatedCall, TERMINAL_STATUSES, type CallContext, type CallHandle, type Destination } from './call.js';
import { ConferenceHub, conferenceInfo, type Conference, type ConferenceInfo, type Participant } from './conference.js';
import { handleControl } from './control.js';
import { DEFAULT_AREA_CODES, NumberInventory, incomingNumberJson, type AreaInfo } from './numbers.js';
import { errorBody, handleRest, readBody, type OutboundCallParams, type ParticipantParams, type RestCore } from './rest.js';
import type { ProtocolViolation } from './stream.js';
import { MediaTicker, type TickerStats } from './ticker.js';
import { isE164, newSid } from './util.js';
import { WEBHOOK_TIMEOUT_MS } from './webhook.js';

export interface NumberConfig {
  voiceUrl?: string;
  voiceMethod?: 'GET' | 'POST';
  statusCallback?: string;
  statusCallbackMethod?: 'GET' | 'POST';
  friendlyName?: string;
}

export interface EmulatorOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0: any free port. */
  port?: number;
  /** Default: a random AC… SID. */
  accountSid?: string;
  /** Default: a random 32-hex-digit token. */
  authToken?: string;
  /** Numbers the account owns from the start (E.164), optionally with their webhooks. */
  numbers?: Array<string | ({ phoneNumber: string } & NumberConfig)>;
  /** Area codes with numbers for sale (default: ten large US cities); toll-free always 800, 833 … 888. */
  areaCodes?: Record<string, AreaInfo>;
  /** Numbers for sale per area code, +1 AAA 555 0100 upwards (default 100). */
  numbersPerAreaCode?: number;
  /** How outbound destinations (and <Dial>ed numbers) not scripted with setDestination behave (default: a human answering after 100 ms, silent). */
  defaultDestination?: Destination;
  destinations?: Record<string, Destination>;
  /**
   * Multiplies simulated durations — ringing, Timeout, <Say>, <Pause>, <Play>, AMD decisions, <Dial>ed legs
   * (default 1). Media always flows in real time.
   */
  timeScale?: number;
  /** <Say> takes this long per character (default 60 ms). */
  sayMsPerChar?: number;
  /** How long a <Dial>ed leg stays connected when its destination sets no hangupAfterMs (default 2000 ms). */
  dialLegMs?: number;
  /** How long a <Play>ed URL takes (default 1000 ms; the file is not fetched). */
  playUrlMs?: number;
  /** Default 15 000 ms, as Twilio. */
  webhookTimeoutMs?: number;
  /** Maps a URL the application gave to one this process can reach; signatures stay over the original. */
  rewriteUrl?: (url: string) => string;
  /** Accept self-signed certificates on wss:// and https:// (the latter via NODE_TLS_REJECT_UNAUTHORIZED). */
  tlsInsecure?: boolean;
  /** Log every media message in call events (default false: counts only). */
  logMedia?: boolean;
  /** Keep the agent's audio for agentAudio()/agentWav() (default true; a load run may turn it off). */
  keepAgentAudio?: boolean;
  /** Agent frames louder than this RMS level count as speech (default −45 dBFS). */
  speechDbfs?: number;
  /** A media frame later than this after its slot counts as late (default 10 ms). */
  lateAfterMs?: number;
  /** Serve the /_emulator control API (default true). */
  controlApi?: boolean;
}

export interface InboundCallOptions {
  /** The caller's number (E.164). */
  from: string;
  /** One of the account's numbers. */
  to: string;
  /** What the caller says once the media stream is up. */
  audio?: CallerAudio;
  /** The caller hangs up this long after the call is answered. */
  hangupAfterMs?: number;
}

export interface EmulatorStats {
  calls: number;
  activeCalls: number;
  ticker: TickerStats;
  protocolViolations: number;
}

export interface Emulator {
  /** http://host:port — use as TWILIO_API_BASE_URL. */
  readonly url: string;
  readonly accountSid: string;
  readonly authToken: string;
  readonly calls: readonly CallHandle[];
  readonly protocolViolations: readonly ProtocolViolation[];
  addNumber(phoneNumber: string, config?: NumberConfig): Record<string, unknown>;
  /** The account's numbers as IncomingPhoneNumber JSON. */
  numbers(): Record<string, unknown>[];
  /** Marks a number for sale as bought elsewhere (taken = false puts it back). */
  reserveNumber(phoneNumber: string, taken?: boolean): void;
  setDestination(number: string, d: Destination | undefined): void;
  setDefaultDestination(d: Destination): void;
  placeInboundCall(opts: InboundCallOptions): Promise<CallHandle>;
  getCall(sid: string): CallHandle | undefined;
  /** Calls `fn` with every new call (inbound or outbound); returns an unsubscribe function. */
  onCall(fn: (call: CallHandle) => void): () => void;
  /** The next new call matching `filter`. */
  nextCall(filter?: (call: CallHandle) => boolean, timeoutMs?: number): Promise<CallHandle>;
  /** Every conference so far (oldest first), as a snapshot. */
  conferences(): ConferenceInfo[];
  /** A conference by SID, or the running (else the latest) one with this friendly name. */
  getConference(sidOrName: string): ConferenceInfo | undefined;
  stats(): EmulatorStats;
  /** Starts the media ticker's figures (stats().ticker) afresh, e.g. at a benchmark's measured window. */
  resetStats(): void;
  /** Ends every call (stream `stop`, final callbacks, up to 2 s), then stops listening. */
  close(): Promise<void>;
}

/** What the REST and control layers use. */
export interface EmulatorCore extends RestCore {
  url: string;
  addNumber(phoneNumber: string, config?: NumberConfig): Record<string, unknown>;
  numberList(): Record<string, unknown>[];
  setDestination(number: string, d: Destination | undefined): void;
  setDefaultDestination(d: Destination): void;
  placeInboundCall(opts: InboundCallOptions): Promise<CallHandle>;
  getCall(sid: string): CallHandle | undefined;
  callList(): CallHandle[];
  conferences(): ConferenceInfo[];
  getConference(sidOrName: string): ConferenceInfo | undefined;
  stats(): EmulatorStats;
}

const DEFAULT_DESTINATION: Destination = { answer: 'human' };

class EmulatorImpl implements Emulator, EmulatorCore {
  url = '';
  readonly dateCreated = Date.now();
  readonly callMap = new Map<string, EmulatedCall>();
  readonly inventory: NumberInventory;
  readonly ticker: MediaTicker;
  readonly violations: ProtocolViolation[] = [];
  readonly conferenceHub: ConferenceHub;
  private readonly destinations = new Map<string, Destination>();
  private defaultDestination: Destination;
  private readonly listeners = new Set<(c: CallHandle) => void>();
  private readonly ctx: CallContext;

  constructor(readonly accountSid: string, readonly authToken: string, readonly opts: EmulatorOptions) {
    this.inventory = new NumberInventory(opts.areaCodes ?? DEFAULT_AREA_CODES, opts.numbersPerAreaCode ?? 100);
    this.ticker = new MediaTicker(opts.lateAfterMs ?? 10);
    this.defaultDestination = opts.defaultDestination ?? DEFAULT_DESTINATION;
    for (const [n, d] of Object.entries(opts.destinations ?? {})) this.destinations.set(n, d);
    const webhook = { authToken, rewriteUrl: opts.rewriteUrl, timeoutMs: opts.webhookTimeoutMs ?? WEBHOOK_TIMEOUT_MS };
    this.conferenceHub = new ConferenceHub(accountSid, webhook);
    this.ctx = {
      accountSid, authToken, ticker: this.ticker, conferences: this.conferenceHub, webhook,
      timeScale: opts.timeScale ?? 1, sayMsPerChar: opts.sayMsPerChar ?? 60, dialLegMs: opts.dialLegMs ?? 2000,
      playUrlMs: opts.playUrlMs ?? 1000, logMedia: opts.logMedia ?? false, tlsInsecure: opts.tlsInsecure ?? false,
      speechDbfs: opts.speechDbfs ?? -45, keepAudio: opts.keepAgentAudio ?? true,
      destinationFor: (n) => this.destinations.get(n) ?? this.defaultDestination,
      violation: (v) => this.violations.push(v),
      ended: () => {},
    };
    for (const n of opts.numbers ?? []) {
      if (typeof n === 'string') this.addNumber(n);
      else this.addNumber(n.phoneNumber, n);
    }
  }

  get calls(): CallHandle[] { return [...this.callMap.values()]; }
  get protocolViolations(): readonly ProtocolViolation[] { return this.violations; }

  addNumber(phoneNumber: string, config: NumberConfig = {}): Record<string, unknown> {
    if (!isE164(phoneNumber)) throw new Error(`not an E.164 number: ${phoneNumber}`);
    const existing = this.inventory.findOwned(phoneNumber);
    const fields = {
      voiceUrl: config.voiceUrl ?? null, voiceMethod: config.voiceMethod ?? 'POST',
      statusCallback: config.statusCallback ?? null, statusCallbackMethod: config.statusCallbackMethod ?? 'POST',
      ...(config.friendlyName ? { friendlyName: config.friendlyName } : {}),
    } as const;
    if (existing) { Object.assign(existing, fields, { dateUpdated: Date.now() }); return incomingNumberJson(existing); }
    return incomingNumberJson(this.inventory.add(this.accountSid, phoneNumber, fields));
  }

  numbers(): Record<string, unknown>[] { return this.numberList(); }
  numberList(): Record<string, unknown>[] { return [...this.inventory.owned.values()].map(incomingNumberJson); }
  reserveNumber(phoneNumber: string, taken = true): void { this.inventory.reserve(phoneNumber, taken); }

  setDestination(number: string, d: Destination | undefined): void {
    if (d) this.destinations.set(number, d);
    else this.destinations.delete(number);
  }

  setDefaultDestination(d: Destination): void { this.defaultDestination = d; }

  private register(call: EmulatedCall): void {
    this.callMap.set(call.sid, call);
    for (const l of [...this.listeners]) l(call);
  }

  createOutboundCall(p: OutboundCallParams): EmulatedCall {
    const call = new EmulatedCall(this.ctx, {
      direction: 'outbound-api', from: p.from, to: p.to, phoneNumberSid: p.phoneNumberSid,
      url: p.url, method: p.method, twiml: p.twiml, statusCallback: p.statusCallback, statusCallbackMethod: p.statusCallbackMethod,
      statusCallbackEvents: p.statusCallbackEvents, machineDetection: p.machineDetection,
      machineDetectionTimeoutSec: p.machineDetectionTimeoutSec, asyncAmd: p.asyncAmd,
      asyncAmdStatusCallback: p.asyncAmdStatusCallback, asyncAmdStatusCallbackMethod: p.asyncAmdStatusCallbackMethod,
      timeoutSec: p.timeoutSec,
    });
    this.register(call);
    void call.runOutbound().catch((err) => this.crashed(call, err));
    return call;
  }

  /** The Participants resource: places a call to `p.to` that joins `conference` when answered. */
  addParticipant(conference: Conference, p: ParticipantParams): Participant {
    const call = new EmulatedCall(this.ctx, {
      direction: 'outbound-api', from: p.from, to: p.to, phoneNumberSid: p.phoneNumberSid, method: 'POST',
      statusCallback: p.statusCallback, statusCallbackMethod: p.statusCallbackMethod, statusCallbackEvents: p.statusCallbackEvents,
      machineDetectionTimeoutSec: 30, asyncAmd: false, asyncAmdStatusCallbackMethod: 'POST', timeoutSec: p.timeoutSec,
    });
    const participant = this.conferenceHub.add(conference, call, p.options);
    call.participant = participant;
    this.register(call);
    void call.runOutbound().catch((err) => this.crashed(call, err));
    return participant;
  }

  conferences(): ConferenceInfo[] { return this.conferenceHub.list().map(conferenceInfo); }

  getConference(sidOrName: string): ConferenceInfo | undefined {
    const hub = this.conferenceHub;
    const c = hub.find(sidOrName) ?? hub.list().filter((x) => x.friendlyName === sidOrName).pop();
    return c ? conferenceInfo(c) : undefined;
  }

  async placeInboundCall(o: InboundCallOptions): Promise<CallHandle> {
    if (!isE164(o.from)) throw new Error(`from must be an E.164 number, got ${o.from}`);
    const number = this.inventory.findOwned(o.to);
    if (!number) throw new Error(`${o.to} is not a number of account ${this.accountSid}`);
    const call = new EmulatedCall(this.ctx, {
      direction: 'inbound', from: o.from, to: o.to, phoneNumberSid: number.sid, method: number.voiceMethod,
      url: number.voiceUrl ?? undefined, statusCallback: number.statusCallback ?? undefined,
      statusCallbackMethod: number.statusCallbackMethod, statusCallbackEvents: new Set(['completed']),
      machineDetectionTimeoutSec: 30, asyncAmd: false, asyncAmdStatusCallbackMethod: 'POST', timeoutSec: 60,
    });
    this.register(call);
    if (o.audio !== undefined) void call.sendAudio(o.audio, { label: 'caller' }).catch((err) => this.crashed(call, err));
    if (o.hangupAfterMs !== undefined) {
      const after = o.hangupAfterMs;
      void call.waitForStatus('in-progress', 120_000).then(
        () => new Promise((r) => setTimeout(r, after)).then(() => call.hangup()),
        () => {},
      );
    }
    void call.runInbound(number.voiceUrl, number.voiceMethod).catch((err) => this.crashed(call, err));
    return call;
  }

  private crashed(call: EmulatedCall, err: unknown): void {
    process.emitWarning(`emulator: call ${call.sid} failed: ${(err as Error).stack ?? err}`);
    call.end(call.answered ? 'completed' : 'failed', 'emulator');
  }

  getCall(sid: string): CallHandle | undefined { return this.callMap.get(sid); }
  callList(): CallHandle[] { return this.calls; }

  onCall(fn: (call: CallHandle) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  nextCall(filter: (call: CallHandle) => boolean = () => true, timeoutMs = 10_000): Promise<CallHandle> {
    return new Promise((resolve, reject) => {
      const off = this.onCall((c) => { if (filter(c)) { clearTimeout(t); off(); resolve(c); } });
      const t = setTimeout(() => { off(); reject(new Error(`no new call within ${timeoutMs} ms`)); }, timeoutMs);
    });
  }

  resetStats(): void { this.ticker.resetStats(); }

  stats(): EmulatorStats {
    let active = 0;
    for (const c of this.callMap.values()) if (!TERMINAL_STATUSES.has(c.status)) active++;
    return { calls: this.callMap.size, activeCalls: active, ticker: this.ticker.stats, protocolViolations: this.violations.length };
  }

  close!: () => Promise<void>;
}

/** Starts the emulator's HTTP server. */
export async function startEmulator(opts: EmulatorOptions = {}): Promise<Emulator> {
  const accountSid = opts.accountSid ?? newSid('AC');
  if (!/^AC[0-9a-fA-F]{32}$/.test(accountSid)) throw new Error('accountSid must be AC followed by 32 hex digits');
  const authToken = opts.authToken ?? newSid('AC').slice(2);
  const emu = new EmulatorImpl(accountSid, authToken, opts);
  const core: EmulatorCore = emu;
  const control = opts.controlApi !== false;

  const server = http.createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://emulator');
      const bodyText = await readBody(req);
      if (url.pathname.startsWith('/2010-04-01/')) {
        const r = handleRest(core, {
          method: req.method ?? 'GET', path: url.pathname, query: url.searchParams, form: new URLSearchParams(bodyText),
          authorization: req.headers.authorization,
        });
        if (r.status === 204) { res.writeHead(204, r.headers); res.end(); return; }
        send(res, r.status, r.body, r.headers);
        return;
      }
      if (control && (url.pathname === '/_emulator' || url.pathname.startsWith('/_emulator/'))) {
        const r = await handleControl(core, req.method ?? 'GET', url.pathname, url.searchParams, bodyText);
        if (r.binary) { res.writeHead(r.status, { 'content-type': r.contentType ?? 'application/octet-stream', 'content-length': r.binary.length }); res.end(r.binary); return; }
        if (r.status === 204) { res.writeHead(204); res.end(); return; }
        send(res, r.status, r.body);
        return;
      }
      send(res, 404, errorBody(404, 20404, `The requested resource ${url.pathname} was not found`));
    })().catch((err) => {
      const status = typeof (err as { status?: unknown }).status === 'number' ? (err as { status: number }).status : 500;
      if (!res.headersSent) send(res, status, errorBody(status, status === 413 ? 20001 : 20500, status === 413 ? 'request body too large' : 'Internal Server Error'));
      else res.destroy();
      if (status === 500) process.emitWarning(`emulator: ${(err as Error).stack ?? err}`);
    });
  });
  const sockets = new Set<Duplex>();
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  const host = opts.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => { server.off('error', reject); resolve(); });
  });
  const port = (server.address() as { port: number }).port;
  const shownHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  emu.url = `http://${shownHost}:${port}`;

  let closing: Promise<void> | undefined;
  emu.close = () => {
    closing ??= (async () => {
      const live = [...emu.callMap.values()].filter((c) => !c.isEnded);
      for (const c of live) c.end(c.answered ? 'completed' : 'canceled', 'emulator');
      await Promise.race([Promise.allSettled(live.map((c) => c.waitForEnd(2000))), new Promise((r) => setTimeout(r, 2000))]);
      emu.ticker.stop();
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    })();
    return closing;
  };
  return emu;
}

function send(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}
