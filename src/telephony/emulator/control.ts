/**
 * The emulator's own control API under /_emulator/ — NOT part of Twilio's surface. It lets another
 * process (the `switchboard emulate call` command, a benchmark driver) do over HTTP what tests do in
 * process: add numbers, script destinations, place inbound calls, talk, press keys, hang up, wait, and
 * fetch what the agent said. JSON in and out; audio as base64 WAV.
 *
 *   GET    /_emulator                          account SID, numbers, stats
 *   GET    /_emulator/stats                    media clock and call counts
 *   POST   /_emulator/numbers                  {phoneNumber, voiceUrl?, voiceMethod?, statusCallback?, statusCallbackMethod?, friendlyName?}
 *   PUT    /_emulator/destinations/{number|default}   a Destination (audio as `wav`: base64)
 *   DELETE /_emulator/destinations/{number}
 *   POST   /_emulator/calls                    {from, to, wav?, hangupAfterMs?} → 201 {sid}
 *   GET    /_emulator/calls                    summaries of all calls
 *   GET    /_emulator/calls/{sid}              summary: status, events (without media), callbacks, metrics
 *   POST   /_emulator/calls/{sid}/audio        {wav, label?} (queued; answers at once)
 *   POST   /_emulator/calls/{sid}/dtmf         {digits}
 *   POST   /_emulator/calls/{sid}/hangup       {afterQueued?}
 *   GET    /_emulator/calls/{sid}/wait?for=end|stream|agent-audio|agent-silence[&ms=N][&timeoutMs=N]
 *   GET    /_emulator/calls/{sid}/agent.wav    what the agent said, as heard (8 kHz PCM16 WAV)
 *   GET    /_emulator/conferences              every conference: status, participants, what waiting callers heard
 *   GET    /_emulator/conferences/{sid|name}   one of them
 *
 * No Twilio document applies; it follows the same loopback-only, no-secrets stance as the test fakes
 * (the Auth Token is never returned here).
 */
import { toPcm8k, type CallerAudio } from './audio.js';
import type { CallHandle, Destination, EmulatedCall } from './call.js';
import type { EmulatorCore } from './emulator.js';

export interface ControlReply {
  status: number;
  body?: unknown;
  binary?: Uint8Array;
  contentType?: string;
}

class ControlError extends Error {
  constructor(readonly status: number, message: string) { super(message); }
}

const obj = (v: unknown): Record<string, unknown> => {
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new ControlError(400, 'body must be a JSON object');
  return v as Record<string, unknown>;
};
const str = (v: unknown, name: string, required = false): string | undefined => {
  if (v === undefined || v === null) { if (required) throw new ControlError(400, `${name} is required`); return undefined; }
  if (typeof v !== 'string') throw new ControlError(400, `${name} must be a string`);
  return v;
};
const num = (v: unknown, name: string): number | undefined => {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new ControlError(400, `${name} must be a non-negative number`);
  return v;
};
const wav = (v: unknown, name = 'wav'): CallerAudio | undefined => {
  const s = str(v, name);
  return s === undefined ? undefined : new Uint8Array(Buffer.from(s, 'base64'));
};

export function callSummary(c: CallHandle): Record<string, unknown> {
  return {
    sid: c.sid, direction: c.direction, from: c.from, to: c.to, status: c.status, answeredBy: c.answeredBy ?? null,
    events: c.events.filter((e) => !(e.type === 'stream-message' && e.event === 'media')),
    statusCallbacks: c.statusCallbacks, streams: c.streams.map((s) => ({ streamSid: s.streamSid, url: s.noun.url, state: s.state, stats: s.stats })),
    marks: c.marks, clears: c.clears, transfers: c.transfers, protocolViolations: c.protocolViolations, metrics: c.metrics(),
  };
}

export async function handleControl(core: EmulatorCore, method: string, path: string, query: URLSearchParams, bodyText: string): Promise<ControlReply> {
  try {
    const body = (): Record<string, unknown> => {
      if (!bodyText) return {};
      try { return obj(JSON.parse(bodyText)); } catch (e) { if (e instanceof ControlError) throw e; throw new ControlError(400, 'body is not JSON'); }
    };
    const parts = path.replace(/^\/_emulator\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
    if (parts.length === 0 && method === 'GET') {
      return { status: 200, body: { accountSid: core.accountSid, url: core.url, numbers: core.numberList(), stats: core.stats() } };
    }
    if (parts[0] === 'stats' && parts.length === 1 && method === 'GET') return { status: 200, body: core.stats() };

    if (parts[0] === 'numbers' && parts.length === 1 && method === 'POST') {
      const b = body();
      const n = core.addNumber(str(b.phoneNumber, 'phoneNumber', true)!, {
        voiceUrl: str(b.voiceUrl, 'voiceUrl'), voiceMethod: str(b.voiceMethod, 'voiceMethod') === 'GET' ? 'GET' : 'POST',
        statusCallback: str(b.statusCallback, 'statusCallback'), statusCallbackMethod: str(b.statusCallbackMethod, 'statusCallbackMethod') === 'GET' ? 'GET' : 'POST',
        friendlyName: str(b.friendlyName, 'friendlyName'),
      });
      return { status: 201, body: n };
    }

    if (parts[0] === 'destinations' && parts.length === 2) {
      const number = parts[1];
      if (method === 'DELETE') { core.setDestination(number, undefined); return { status: 204 }; }
      if (method !== 'PUT' && method !== 'POST') throw new ControlError(405, 'use PUT or DELETE');
      const b = body();
      const answer = str(b.answer, 'answer', true) as Destination['answer'];
      if (!['human', 'machine', 'fax', 'busy', 'no-answer', 'failed'].includes(answer)) throw new ControlError(400, `unknown answer ${answer}`);
      const d: Destination = {
        answer, ringMs: num(b.ringMs, 'ringMs'), audio: wav(b.wav), greetingMs: num(b.greetingMs, 'greetingMs'),
        beep: typeof b.beep === 'boolean' ? b.beep : undefined, amdMs: num(b.amdMs, 'amdMs'),
        answeredBy: str(b.answeredBy, 'answeredBy') as Destination['answeredBy'], hangupAfterMs: num(b.hangupAfterMs, 'hangupAfterMs'),
        sipCode: num(b.sipCode, 'sipCode'),
      };
      if (number === 'default') core.setDefaultDestination(d);
      else core.setDestination(number, d);
      return { status: 204 };
    }

    if (parts[0] === 'conferences' && method === 'GET') {
      if (parts.length === 1) return { status: 200, body: { conferences: core.conferences() } };
      const c = parts.length === 2 ? core.getConference(parts[1]) : undefined;
      if (!c) throw new ControlError(404, `no conference ${parts.slice(1).join('/')}`);
      return { status: 200, body: c };
    }

    if (parts[0] === 'calls') {
      if (parts.length === 1) {
        if (method === 'GET') return { status: 200, body: { calls: core.callList().map(callSummary) } };
        if (method !== 'POST') throw new ControlError(405, 'use GET or POST');
        const b = body();
        const audio = wav(b.wav);
        const pcm = audio === undefined ? undefined : await toPcm8k(audio).catch((e: Error) => { throw new ControlError(400, `wav: ${e.message}`); });
        let call: CallHandle;
        try {
          call = await core.placeInboundCall({
            from: str(b.from, 'from', true)!, to: str(b.to, 'to', true)!, audio: pcm, hangupAfterMs: num(b.hangupAfterMs, 'hangupAfterMs'),
          });
        } catch (err) {
          throw new ControlError(400, (err as Error).message);
        }
        return { status: 201, body: { sid: call.sid, status: call.status } };
      }
      const call = core.getCall(parts[1]) as EmulatedCall | undefined;
      if (!call) throw new ControlError(404, `no call ${parts[1]}`);
      const action = parts.slice(2).join('/');
      if (!action && method === 'GET') return { status: 200, body: callSummary(call) };
      if (action === 'audio' && method === 'POST') {
        const b = body();
        const audio = wav(b.wav);
        if (!audio) throw new ControlError(400, 'wav is required');
        // Decode now so a bad file is a 400; the audio then plays in real time after this answer.
        const pcm = await toPcm8k(audio).catch((e: Error) => { throw new ControlError(400, e.message); });
        void call.sendAudio(pcm, { label: str(b.label, 'label') });
        return { status: 202, body: { queuedMs: Math.round(pcm.length / 8) } };
      }
      if (action === 'dtmf' && method === 'POST') {
        const digits = str(body().digits, 'digits', true)!;
        if (!/^[0-9A-D*#wW]+$/.test(digits)) throw new ControlError(400, 'digits must be 0-9, A-D, *, #, w, W');
        void call.sendDtmf(digits);
        return { status: 202, body: {} };
      }
      if (action === 'hangup' && method === 'POST') {
        await call.hangup({ afterQueued: body().afterQueued === true });
        return { status: 200, body: { status: call.status } };
      }
      if (action === 'wait' && method === 'GET') {
        const timeoutMs = Math.min(Number(query.get('timeoutMs') ?? 30_000) || 30_000, 600_000);
        const what = query.get('for') ?? 'end';
        try {
          if (what === 'end') return { status: 200, body: { status: await call.waitForEnd(timeoutMs), atMs: call.now() } };
          if (what === 'stream') { await call.waitForStream(timeoutMs); return { status: 200, body: { status: call.status, atMs: call.now() } }; }
          if (what === 'agent-audio') {
            const after = query.has('afterMs') ? Number(query.get('afterMs')) : undefined;
            return { status: 200, body: { status: call.status, atMs: await call.waitForAgentAudio({ afterMs: after, timeoutMs }) } };
          }
          if (what === 'agent-silence') {
            await call.waitForAgentSilence(Number(query.get('ms') ?? 1000) || 1000, { timeoutMs });
            return { status: 200, body: { status: call.status, atMs: call.now() } };
          }
        } catch (err) {
          return { status: 408, body: { error: (err as Error).message, status: call.status } };
        }
        throw new ControlError(400, 'for must be end, stream, agent-audio or agent-silence');
      }
      if (action === 'agent.wav' && method === 'GET') return { status: 200, binary: call.agentWav(), contentType: 'audio/wav' };
    }
    throw new ControlError(404, `no control route ${method} ${path}`);
  } catch (err) {
    if (err instanceof ControlError) return { status: err.status, body: { error: err.message } };
    throw err;
  }
}
