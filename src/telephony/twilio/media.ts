/**
 * Twilio Media Streams messages, both ways, for a bidirectional stream (<Connect><Stream>).
 *
 * Followed "Media Streams - WebSocket Messages" (https://www.twilio.com/docs/voice/media-streams/websocket-messages):
 * from Twilio `connected`, `start` (streamSid, start.callSid, start.customParameters, start.mediaFormat
 * {encoding "audio/x-mulaw", sampleRate 8000, channels 1}), `media` (media.track, chunk, timestamp,
 * payload base64), `dtmf` (dtmf.digit), `mark` (mark.name), `stop`; to Twilio `media` {streamSid,
 * media: {payload}} (base64 audio/x-mulaw 8 kHz, no header), `mark` {streamSid, mark: {name}}, `clear`
 * {streamSid}. Twilio sends a mark back when the audio queued before it has played, and on `clear` it
 * sends back the marks still pending.
 */
import { mediaTimestamp, type MediaCodec, type MediaEncoding, type MediaInbound } from '../types.js';

type Json = Record<string, any>;

const ENCODINGS: Record<string, MediaEncoding> = { 'audio/x-mulaw': 'mulaw', 'audio/x-alaw': 'alaw', 'audio/x-l16': 'l16' };

export const twilioMediaCodec: MediaCodec = {
  provider: 'twilio',

  parse(text: string): MediaInbound {
    const m = JSON.parse(text) as Json;
    if (!m || typeof m !== 'object' || typeof m.event !== 'string') throw new Error('not a Twilio media stream message');
    switch (m.event) {
      case 'start': {
        const s = (m.start ?? {}) as Json;
        const fmt = (s.mediaFormat ?? {}) as Json;
        const streamId = String(m.streamSid ?? s.streamSid ?? '');
        if (!streamId) throw new Error('start without a streamSid');
        const params = (s.customParameters ?? {}) as Json;
        return {
          type: 'start', streamId, carrierCallId: String(s.callSid ?? ''),
          customParameters: Object.fromEntries(Object.entries(params).map(([k, v]) => [k, String(v)])),
          encoding: ENCODINGS[String(fmt.encoding ?? 'audio/x-mulaw')] ?? 'mulaw',
          sampleRate: Number(fmt.sampleRate ?? 8000),
        };
      }
      case 'media': {
        const media = (m.media ?? {}) as Json;
        // A bidirectional stream carries the caller only; anything else is not for the agent's ears.
        if (media.track && media.track !== 'inbound') return { type: 'other', event: 'media', detail: `track ${media.track}` };
        if (typeof media.payload !== 'string') throw new Error('media without a payload');
        return { type: 'media', payload: Buffer.from(media.payload, 'base64'), timestampMs: mediaTimestamp(media.timestamp) };
      }
      case 'mark':
        return { type: 'mark', name: String((m.mark ?? {}).name ?? '') };
      case 'dtmf':
        return { type: 'dtmf', digit: String((m.dtmf ?? {}).digit ?? '') };
      case 'stop':
        return { type: 'stop' };
      default:
        return { type: 'other', event: m.event };
    }
  },

  media: (streamSid, payload) => JSON.stringify({ event: 'media', streamSid, media: { payload: payload.toString('base64') } }),
  mark: (streamSid, name) => JSON.stringify({ event: 'mark', streamSid, mark: { name } }),
  clear: (streamSid) => JSON.stringify({ event: 'clear', streamSid }),
};
