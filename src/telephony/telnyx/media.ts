/**
 * Telnyx Media Streaming over WebSocket, both ways, as a carrier-neutral MediaCodec.
 *
 * Documents followed:
 * - "Stream call media over WebSocket" (AsyncAPI), https://developers.telnyx.com/api-reference/websockets/stream-call-media-over-websocket
 * - "Media Streaming over Websockets", https://developers.telnyx.com/docs/voice/programmable-voice/media-streaming
 *
 * What Telnyx sends: `connected` (protocol version), `start` (`stream_id` at the top level; `start.call_control_id`,
 * `start.client_state`, `start.custom_parameters`, `start.media_format {encoding, sample_rate, channels}`),
 * `media` (`media.track` inbound/outbound, `media.chunk`, `media.timestamp`, base64 RTP payload without
 * headers), `dtmf` (`dtmf.digit`), `mark` (`mark.name`: the media before it finished playing, or it was
 * cleared), `error` (`payload {code, title, detail}`), `stop`.
 * What we send (bidirectional `rtp` mode only): `media {payload}`, `mark {name}`, `clear`; each carries the
 * stream's `stream_id`. Telnyx takes RTP chunks of 20 ms to 30 s of audio per `media` message; a mark comes
 * back when the audio sent before it has played (at once when nothing is queued), and `clear` stops playback,
 * drops queued audio and sends the queued marks back.
 */
import { mediaTimestamp, type MediaCodec, type MediaEncoding, type MediaInbound } from '../types.js';

/** Shortest and longest audio one outbound `media` message may carry (Telnyx bidirectional RTP mode). */
export const TELNYX_MIN_CHUNK_MS = 20;
export const TELNYX_MAX_CHUNK_MS = 30_000;

/** Telnyx `media_format.encoding` names of the encodings the engine speaks. */
const ENCODINGS: Record<string, MediaEncoding> = { PCMU: 'mulaw', PCMA: 'alaw', L16: 'l16' };

/** The Telnyx codec name to ask for (`stream_codec`, `stream_bidirectional_codec`) for an engine encoding. */
export function telnyxCodecName(encoding: MediaEncoding): 'PCMU' | 'PCMA' | 'L16' {
  return encoding === 'mulaw' ? 'PCMU' : encoding === 'alaw' ? 'PCMA' : 'L16';
}

export class TelnyxMediaFormatError extends Error {
  constructor(message: string) {
    super(`telnyx media stream: ${message}`);
    this.name = 'TelnyxMediaFormatError';
  }
}

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function field(o: Obj, name: string, what: string): Obj {
  const v = o[name];
  if (!isObj(v)) throw new TelnyxMediaFormatError(`${what} message without a "${name}" object`);
  return v;
}

function str(o: Obj, name: string, what: string): string {
  const v = o[name];
  if (typeof v !== 'string' || !v) throw new TelnyxMediaFormatError(`${what} message without "${name}"`);
  return v;
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function parseStart(msg: Obj): MediaInbound {
  const start = field(msg, 'start', 'start');
  // stream_id sits on the envelope; accept it inside `start` too, where some integrations have looked for it.
  const streamId = typeof msg.stream_id === 'string' && msg.stream_id ? msg.stream_id : str(start, 'stream_id', 'start');
  const carrierCallId = str(start, 'call_control_id', 'start');
  const format = field(start, 'media_format', 'start');
  const name = String(format.encoding ?? '').toUpperCase();
  const encoding = ENCODINGS[name];
  if (!encoding) throw new TelnyxMediaFormatError(`unsupported media_format.encoding ${JSON.stringify(format.encoding)} (PCMU, PCMA or L16 expected)`);
  const sampleRate = Number(format.sample_rate ?? 8000);
  if (!Number.isInteger(sampleRate) || sampleRate <= 0) throw new TelnyxMediaFormatError(`bad media_format.sample_rate ${JSON.stringify(format.sample_rate)}`);
  const customParameters: Record<string, string> = {};
  if (isObj(start.custom_parameters)) {
    for (const [k, v] of Object.entries(start.custom_parameters)) if (v !== null && v !== undefined) customParameters[k] = String(v);
  } else if (Array.isArray(start.custom_parameters)) {
    // The Call Control command takes [{name, value}]; tolerate that shape echoed back.
    for (const p of start.custom_parameters) if (isObj(p) && typeof p.name === 'string') customParameters[p.name] = String(p.value ?? '');
  }
  if (typeof start.client_state === 'string' && start.client_state) customParameters.client_state = start.client_state;
  return { type: 'start', streamId, carrierCallId, customParameters, encoding, sampleRate };
}

/** Telnyx's Media Streaming message format as a MediaCodec (pure; no I/O). */
export const telnyxMediaCodec: MediaCodec = {
  provider: 'telnyx',

  parse(text: string): MediaInbound {
    let msg: unknown;
    try {
      msg = JSON.parse(text);
    } catch {
      throw new TelnyxMediaFormatError('frame is not JSON');
    }
    if (!isObj(msg) || typeof msg.event !== 'string') throw new TelnyxMediaFormatError('frame without an "event"');
    switch (msg.event) {
      case 'start':
        return parseStart(msg);
      case 'media': {
        const media = field(msg, 'media', 'media');
        // inbound = the far end's voice; outbound = what the call leg is sent (our own audio): never fed back.
        if (media.track === 'outbound') return { type: 'other', event: 'media', detail: 'outbound track' };
        const payload = media.payload;
        if (typeof payload !== 'string' || !BASE64.test(payload)) throw new TelnyxMediaFormatError('media message without a base64 "payload"');
        return { type: 'media', payload: Buffer.from(payload, 'base64'), timestampMs: mediaTimestamp(media.timestamp) };
      }
      case 'dtmf': {
        const digit = str(field(msg, 'dtmf', 'dtmf'), 'digit', 'dtmf');
        return { type: 'dtmf', digit };
      }
      case 'mark':
        return { type: 'mark', name: str(field(msg, 'mark', 'mark'), 'name', 'mark') };
      case 'stop':
        return { type: 'stop' };
      case 'error': {
        const p = isObj(msg.payload) ? msg.payload : isObj(msg.error) ? msg.error : {};
        const detail = [p.code, p.title, p.detail].filter((v) => v !== undefined && v !== null && v !== '').join(' ');
        return { type: 'other', event: 'error', detail: detail || undefined };
      }
      default:
        return { type: 'other', event: msg.event };
    }
  },

  media(streamId: string, payload: Buffer): string {
    return JSON.stringify({ event: 'media', stream_id: streamId, media: { payload: payload.toString('base64') } });
  },

  mark(streamId: string, name: string): string {
    return JSON.stringify({ event: 'mark', stream_id: streamId, mark: { name } });
  },

  clear(streamId: string): string {
    return JSON.stringify({ event: 'clear', stream_id: streamId });
  },
};
