/**
 * TwiML (voice) documents as the emulator executes them: the XML parsed by ./xml.ts, then the verbs the
 * emulator knows turned into typed instructions.
 *
 * Followed Twilio's TwiML reference pages:
 *  - <Response> root (https://www.twilio.com/docs/voice/twiml);
 *  - <Say> text, loop (https://www.twilio.com/docs/voice/twiml/say);
 *  - <Pause length> default 1 s (https://www.twilio.com/docs/voice/twiml/pause);
 *  - <Play> url, loop, digits (https://www.twilio.com/docs/voice/twiml/play);
 *  - <Hangup> (https://www.twilio.com/docs/voice/twiml/hangup);
 *  - <Reject reason="rejected|busy"> (https://www.twilio.com/docs/voice/twiml/reject);
 *  - <Redirect method> url (https://www.twilio.com/docs/voice/twiml/redirect);
 *  - <Dial action method timeout callerId timeLimit> with a bare number or <Number> nouns
 *    (https://www.twilio.com/docs/voice/twiml/dial, https://www.twilio.com/docs/voice/twiml/number);
 *  - <Dial><Conference muted beep startConferenceOnEnter (default true) endConferenceOnExit (default
 *    false) waitUrl waitMethod (default POST) maxParticipants (a positive integer up to 250, the default;
 *    here at least 2) participantLabel statusCallback statusCallbackEvent (space separated)
 *    statusCallbackMethod>name</Conference>
 *    (https://www.twilio.com/docs/voice/twiml/conference): a waitUrl left out means Twilio's default hold
 *    music, an empty one silence;
 *  - <Connect action method><Stream url name statusCallback statusCallbackMethod><Parameter name value/>
 *    (https://www.twilio.com/docs/voice/twiml/connect, https://www.twilio.com/docs/voice/twiml/stream).
 * Other verbs (<Gather>, <Record>, <Enqueue>, <Start>, …) parse as `unsupported`: the emulator records and
 * skips them.
 */
import { elementsOf, parseXml, textOf, type XmlElement } from './xml.js';

export interface StreamNoun {
  url: string;
  name?: string;
  track?: string;
  statusCallback?: string;
  statusCallbackMethod: 'GET' | 'POST';
  parameters: Record<string, string>;
}

export interface ConferenceNoun {
  /** The room's name (namespaced to the account). */
  name: string;
  muted: boolean;
  beep: 'true' | 'false' | 'onEnter' | 'onExit';
  startConferenceOnEnter: boolean;
  endConferenceOnExit: boolean;
  /** Undefined: Twilio's default hold music; '': silence. */
  waitUrl?: string;
  waitMethod: 'GET' | 'POST';
  maxParticipants: number;
  participantLabel?: string;
  statusCallback?: string;
  statusCallbackMethod: 'GET' | 'POST';
  statusCallbackEvents: string[];
}

export type TwimlVerb =
  | { verb: 'Say'; text: string; voice?: string; language?: string; loop: number }
  | { verb: 'Pause'; length: number }
  | { verb: 'Play'; url?: string; digits?: string; loop: number }
  | { verb: 'Hangup' }
  | { verb: 'Reject'; reason: 'rejected' | 'busy' }
  | { verb: 'Redirect'; url: string; method: 'GET' | 'POST' }
  | { verb: 'Dial'; numbers: string[]; conference?: ConferenceNoun; callerId?: string; timeout: number; timeLimit?: number; action?: string; method: 'GET' | 'POST' }
  | { verb: 'Connect'; stream?: StreamNoun; other?: string; action?: string; method: 'GET' | 'POST' }
  | { verb: 'unsupported'; name: string };

export class TwimlError extends Error {
  override name = 'TwimlError';
}

/** Twilio's conference capacity: the default and largest <Conference maxParticipants>. */
export const MAX_PARTICIPANTS = 250;

const method = (v: string | undefined): 'GET' | 'POST' => (v?.toUpperCase() === 'GET' ? 'GET' : 'POST');

/** "true" / "false" in any case; anything else (Twilio warns, e.g. 13232) keeps the default. */
function bool(v: string | undefined, dflt: boolean): boolean {
  const x = v?.trim().toLowerCase();
  return x === 'true' ? true : x === 'false' ? false : dflt;
}

function int(v: string | undefined, dflt: number, name: string): number {
  if (v === undefined || v.trim() === '') return dflt;
  const x = Number(v);
  if (!Number.isFinite(x) || x < 0) throw new TwimlError(`${name}="${v}" is not a non-negative number`);
  return x;
}

/** Parses a TwiML voice document. Throws XmlParseError (not XML) or TwimlError (not a <Response>). */
export function parseTwiml(text: string): TwimlVerb[] {
  const root = parseXml(text);
  if (root.name !== 'Response') throw new TwimlError(`root element is <${root.name}>, not <Response>`);
  for (const c of root.children) {
    if (typeof c === 'string' && c.trim()) throw new TwimlError('text directly inside <Response>');
  }
  return elementsOf(root).map(toVerb);
}

function toVerb(el: XmlElement): TwimlVerb {
  const a = el.attrs;
  switch (el.name) {
    case 'Say':
      return { verb: 'Say', text: textOf(el).trim(), voice: a.voice, language: a.language, loop: int(a.loop, 1, 'loop') };
    case 'Pause':
      return { verb: 'Pause', length: int(a.length, 1, 'length') };
    case 'Play': {
      const url = textOf(el).trim();
      return { verb: 'Play', url: url || undefined, digits: a.digits, loop: int(a.loop, 1, 'loop') };
    }
    case 'Hangup':
      return { verb: 'Hangup' };
    case 'Reject':
      return { verb: 'Reject', reason: a.reason === 'busy' ? 'busy' : 'rejected' };
    case 'Redirect': {
      const url = textOf(el).trim();
      if (!url) throw new TwimlError('<Redirect> without a URL');
      return { verb: 'Redirect', url, method: method(a.method) };
    }
    case 'Dial': {
      const numbers: string[] = [];
      let conference: ConferenceNoun | undefined;
      const bare = textOf(el).trim();
      if (bare) numbers.push(bare);
      for (const c of elementsOf(el)) {
        if (c.name === 'Number') numbers.push(textOf(c).trim());
        else if (c.name === 'Conference') conference ??= toConference(c);
        else numbers.push(`${c.name.toLowerCase()}:${textOf(c).trim()}`); // <Client>, <Sip>, <Queue>…: recorded as such
      }
      return {
        verb: 'Dial', numbers, ...(conference ? { conference } : {}), callerId: a.callerId, timeout: int(a.timeout, 30, 'timeout'),
        timeLimit: a.timeLimit !== undefined ? int(a.timeLimit, 14400, 'timeLimit') : undefined,
        action: a.action, method: method(a.method),
      };
    }
    case 'Connect': {
      const nouns = elementsOf(el);
      const s = nouns.find((c) => c.name === 'Stream');
      if (!s) return { verb: 'Connect', other: nouns[0]?.name ?? '(empty)', action: a.action, method: method(a.method) };
      if (!s.attrs.url) throw new TwimlError('<Stream> without a url');
      const parameters: Record<string, string> = {};
      for (const p of elementsOf(s)) {
        if (p.name !== 'Parameter') continue;
        if (p.attrs.name === undefined) throw new TwimlError('<Parameter> without a name');
        parameters[p.attrs.name] = p.attrs.value ?? '';
      }
      return {
        verb: 'Connect', action: a.action, method: method(a.method),
        stream: {
          url: s.attrs.url, name: s.attrs.name, track: s.attrs.track, statusCallback: s.attrs.statusCallback,
          statusCallbackMethod: method(s.attrs.statusCallbackMethod), parameters,
        },
      };
    }
    default:
      return { verb: 'unsupported', name: el.name };
  }
}

function toConference(el: XmlElement): ConferenceNoun {
  const a = el.attrs;
  const name = textOf(el).trim();
  if (!name) throw new TwimlError('<Conference> without a name');
  const beep: ConferenceNoun['beep'] = a.beep === 'onEnter' || a.beep === 'onExit' ? a.beep : bool(a.beep, true) ? 'true' : 'false';
  return {
    name, muted: bool(a.muted, false), beep,
    startConferenceOnEnter: bool(a.startConferenceOnEnter, true), endConferenceOnExit: bool(a.endConferenceOnExit, false),
    waitUrl: a.waitUrl === undefined ? undefined : a.waitUrl.trim(), waitMethod: method(a.waitMethod),
    maxParticipants: Math.min(MAX_PARTICIPANTS, Math.max(2, Math.floor(int(a.maxParticipants, MAX_PARTICIPANTS, 'maxParticipants')))),
    participantLabel: a.participantLabel, statusCallback: a.statusCallback, statusCallbackMethod: method(a.statusCallbackMethod),
    statusCallbackEvents: (a.statusCallbackEvent ?? '').split(/[\s,]+/).filter(Boolean),
  };
}
