/**
 * The media-stream transport against a carrier speaking Twilio's Media Streams messages over a real
 * loopback WebSocket: what the engine sees (audio, DTMF, played marks, hang-up) and what the carrier gets
 * (μ-law media, marks, clear, in-band DTMF tones).
 */
import { createServer } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { decodeMuLaw, encodeMuLaw } from '../../src/engine/audio/g711.js';
import { RealClock, VirtualClock, type Clock } from '../../src/engine/clock.js';
import type { TransportEvent } from '../../src/engine/types.js';
import { detectDtmfDigit } from '../../src/telephony/dtmfTones.js';
import { MediaStreamTransport } from '../../src/telephony/mediaStream.js';
import { twilioMediaCodec } from '../../src/telephony/twilio/media.js';
import type { CallControl } from '../../src/telephony/types.js';

type Json = Record<string, any>;

async function pair(clock: Clock = new RealClock()) {
  const http = createServer();
  const wss = new WebSocketServer({ server: http });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  const port = (http.address() as { port: number }).port;
  const serverSide = new Promise<WebSocket>((r) => wss.once('connection', r));
  const carrier = new WebSocket(`ws://127.0.0.1:${port}`);
  await new Promise((r) => carrier.once('open', r));
  const ours = await serverSide;
  const errors: string[] = [];
  const transport = new MediaStreamTransport(ours, twilioMediaCodec, clock, (d) => errors.push(d));
  const received: Json[] = [];
  carrier.on('message', (d) => received.push(JSON.parse(d.toString())));
  const send = (m: Json) => carrier.send(JSON.stringify(m));
  const events: TransportEvent[] = [];
  const start = async (params: Record<string, string> = {}) => {
    send({ event: 'connected', protocol: 'Call', version: '1.0.0' });
    send({ event: 'start', sequenceNumber: '1', streamSid: 'MZ1', start: { streamSid: 'MZ1', accountSid: 'AC1', callSid: 'CA1', tracks: ['inbound'], customParameters: params, mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 } } });
    return transport.started;
  };
  const close = async () => { carrier.terminate(); wss.close(); await new Promise((r) => http.close(r)); };
  cleanups.push(close);
  return { transport, carrier, received, send, events, start, errors };
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => { for (const c of cleanups.splice(0)) await c(); });

const until = async (p: () => boolean, what: string, ms = 2000) => {
  const end = Date.now() + ms;
  while (!p()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
};

const tone = (n: number) => Int16Array.from({ length: n }, (_, i) => Math.round(8000 * Math.sin(i / 3)));

describe('media-stream transport (Twilio messages)', () => {
  it('counts caller frames that reach it later than the carrier\'s timestamps allow, not a burst that comes early', async () => {
    const p = await pair();
    await p.start();
    const payload = Buffer.from(encodeMuLaw(tone(160))).toString('base64');
    const media = (timestamp?: number) => p.send({ event: 'media', streamSid: 'MZ1', media: { track: 'inbound', payload, ...(timestamp === undefined ? {} : { timestamp: String(timestamp) }) } });
    for (const ts of [0, 20, 40, 60]) media(ts); // a burst: all four at once, which is early, not late
    await until(() => p.transport.stats.framesIn === 4, 'the burst');
    expect(p.transport.stats.lateIn).toBe(0);
    await new Promise((r) => setTimeout(r, 200));
    media(80); // due 20 ms after the last, here ~200 ms after it
    media(); // no timestamp: nothing to judge it by
    await until(() => p.transport.stats.framesIn === 6, 'the late frame');
    expect(p.transport.stats.lateIn).toBe(1);
    expect(p.transport.stats.maxLateInMs).toBeGreaterThan(150);
  });

  it('a carrier clock drifting against ours (100 ppm over 10 minutes: 60 ms) is not read as late frames', async () => {
    const clock = new VirtualClock();
    const p = await pair(clock);
    await p.start();
    const payload = Buffer.from(encodeMuLaw(tone(160))).toString('base64');
    // One frame every 200 ms of media is enough to follow the pace; our clock runs 100 ppm fast.
    for (let k = 0; k < 3000; k++) {
      const ts = k * 200;
      await clock.advance(ts * 1.0001 - clock.now());
      p.send({ event: 'media', streamSid: 'MZ1', media: { track: 'inbound', timestamp: String(ts), payload } });
      await until(() => p.transport.stats.framesIn === k + 1, `frame ${k}`);
    }
    expect(p.transport.stats.lateIn).toBe(0);
    expect(p.transport.stats.maxLateInMs).toBeLessThan(5);
  }, 30_000);

  it('starts on the carrier\'s start message and hands the engine caller audio decoded to PCM at 8 kHz, including what came before it listened', async () => {
    const p = await pair();
    const start = await p.start({ call_id: 'abc' });
    expect(start).toMatchObject({ streamId: 'MZ1', carrierCallId: 'CA1', customParameters: { call_id: 'abc' }, encoding: 'mulaw', sampleRate: 8000 });
    const pcm = tone(160);
    const payload = Buffer.from(encodeMuLaw(pcm)).toString('base64');
    p.send({ event: 'media', sequenceNumber: '2', streamSid: 'MZ1', media: { track: 'inbound', chunk: '1', timestamp: '0', payload } });
    await until(() => p.transport.stats.framesIn === 1, 'the first frame');
    // The engine subscribes late: the early frame is still delivered.
    p.transport.on((e) => p.events.push(e));
    const audio = p.events.filter((e) => e.type === 'audio');
    expect(audio).toHaveLength(1);
    const frame = (audio[0] as Extract<TransportEvent, { type: 'audio' }>).frame;
    expect(frame.sampleRate).toBe(8000);
    expect(Array.from(frame.samples)).toEqual(Array.from(decodeMuLaw(encodeMuLaw(pcm))));
    expect(p.errors).toEqual([]);
  });

  it('sends agent audio as μ-law media with marks; a returned mark reports it and every earlier mark as played, in order', async () => {
    const p = await pair();
    await p.start();
    p.transport.on((e) => p.events.push(e));
    for (let i = 0; i < 3; i++) p.transport.sendAudio({ samples: tone(160), sampleRate: 8000, timestampMs: 0 }, `1:${(i + 1) * 20}`);
    await until(() => p.received.length === 6, 'media and marks');
    expect(p.received.map((m) => m.event)).toEqual(['media', 'mark', 'media', 'mark', 'media', 'mark']);
    expect(p.received[0]).toMatchObject({ event: 'media', streamSid: 'MZ1' });
    expect(Buffer.from(p.received[0].media.payload, 'base64')).toHaveLength(160);
    const names = p.received.filter((m) => m.event === 'mark').map((m) => m.mark.name);
    expect(new Set(names).size).toBe(3);
    // The carrier returns only the last mark (the earlier ones were lost): all three have played.
    p.send({ event: 'mark', sequenceNumber: '3', streamSid: 'MZ1', mark: { name: names[2] } });
    await until(() => p.events.filter((e) => e.type === 'played').length === 3, 'played marks');
    expect(p.events.filter((e) => e.type === 'played').map((e) => (e as { markId: string }).markId)).toEqual(['1:20', '1:40', '1:60']);
  });

  it('after clear, marks the carrier sends back for cleared audio are not reported as played', async () => {
    const p = await pair();
    await p.start();
    p.transport.on((e) => p.events.push(e));
    p.transport.sendAudio({ samples: tone(160), sampleRate: 8000, timestampMs: 0 }, '1:20');
    p.transport.sendAudio({ samples: tone(160), sampleRate: 8000, timestampMs: 0 }, '1:40');
    await until(() => p.received.length === 4, 'media and marks');
    const names = p.received.filter((m) => m.event === 'mark').map((m) => m.mark.name);
    p.send({ event: 'mark', streamSid: 'MZ1', mark: { name: names[0] } });
    await until(() => p.events.some((e) => e.type === 'played'), 'the first mark');
    p.transport.clear();
    await until(() => p.received.some((m) => m.event === 'clear'), 'the clear');
    expect(p.received.at(-1)).toEqual({ event: 'clear', streamSid: 'MZ1' });
    // Twilio sends the pending marks back after a clear: they did not play.
    p.send({ event: 'mark', streamSid: 'MZ1', mark: { name: names[1] } });
    await new Promise((r) => setTimeout(r, 50));
    expect(p.events.filter((e) => e.type === 'played').map((e) => (e as { markId: string }).markId)).toEqual(['1:20']);
  });

  it('passes the caller\'s keypresses on as DTMF events', async () => {
    const p = await pair();
    await p.start();
    p.transport.on((e) => p.events.push(e));
    p.send({ event: 'dtmf', streamSid: 'MZ1', sequenceNumber: '5', dtmf: { track: 'inbound_track', digit: '7' } });
    await until(() => p.events.some((e) => e.type === 'dtmf'), 'the digit');
    expect(p.events.find((e) => e.type === 'dtmf')).toEqual({ type: 'dtmf', digits: '7' });
  });

  it('plays outgoing DTMF in-band as tones a detector reads back, and resolves once their mark returns', async () => {
    const p = await pair();
    await p.start();
    const sent = p.transport.sendDtmf('19#');
    await until(() => p.received.some((m) => m.event === 'mark'), 'the tones\' mark');
    const bytes = Buffer.concat(p.received.filter((m) => m.event === 'media').map((m) => Buffer.from(m.media.payload, 'base64')));
    const pcm = decodeMuLaw(bytes);
    // 100 ms tone + 100 ms gap per digit at 8 kHz.
    const digits = [0, 1, 2].map((i) => detectDtmfDigit(pcm.subarray(i * 1600 + 100, i * 1600 + 700), 8000));
    expect(digits).toEqual(['1', '9', '#']);
    expect(detectDtmfDigit(pcm.subarray(900, 1500), 8000)).toBeNull(); // the gap is silent
    let done = false;
    void sent.then(() => { done = true; });
    await new Promise((r) => setTimeout(r, 30));
    expect(done).toBe(false);
    p.send({ event: 'mark', streamSid: 'MZ1', mark: { name: p.received.find((m) => m.event === 'mark')!.mark.name } });
    await sent;
    await expect(p.transport.sendDtmf('12x')).rejects.toThrow(/DTMF/);
  });

  it('uses the carrier\'s own DTMF command when it has one', async () => {
    const p = await pair();
    await p.start();
    const digits: string[] = [];
    p.transport.control = { sendDtmf: async (d) => { digits.push(d); } } as CallControl;
    await p.transport.sendDtmf('42');
    expect(digits).toEqual(['42']);
    expect(p.received.filter((m) => m.event === 'media')).toEqual([]);
  });

  it('a stop message (or a closed socket) is a hang-up, once; sending afterwards is harmless', async () => {
    const p = await pair();
    await p.start();
    p.transport.on((e) => p.events.push(e));
    p.send({ event: 'stop', sequenceNumber: '9', streamSid: 'MZ1', stop: { accountSid: 'AC1', callSid: 'CA1' } });
    await until(() => p.events.some((e) => e.type === 'hangup'), 'the hang-up');
    p.carrier.close();
    await new Promise((r) => setTimeout(r, 30));
    expect(p.events.filter((e) => e.type === 'hangup')).toHaveLength(1);
    expect(p.transport.endedBy).toBe('remote');
    p.transport.sendAudio({ samples: tone(160), sampleRate: 8000, timestampMs: 0 }, '1:20');
    p.transport.clear();
  });

  it('hangup() goes through the carrier\'s REST control and marks the end as ours', async () => {
    const p = await pair();
    await p.start();
    const calls: string[] = [];
    p.transport.control = { hangup: async () => { calls.push('hangup'); p.carrier.close(); } } as CallControl;
    await p.transport.hangup();
    await until(() => p.transport.isClosed, 'the stream to close');
    expect(calls).toEqual(['hangup']);
    expect(p.transport.endedBy).toBe('local');
  });

  it('records malformed messages as protocol errors without breaking the stream', async () => {
    const p = await pair();
    p.carrier.send('not json');
    p.send({ event: 'media', streamSid: 'MZ1', media: { payload: 'AAAA' } }); // before start
    await p.start();
    p.send({ event: 'media', streamSid: 'MZ1', media: { track: 'inbound' } });
    await until(() => p.errors.length === 3, 'three protocol errors');
    p.transport.on((e) => p.events.push(e));
    p.send({ event: 'dtmf', streamSid: 'MZ1', dtmf: { digit: '1' } });
    await until(() => p.events.some((e) => e.type === 'dtmf'), 'the stream to keep working');
  });
});
