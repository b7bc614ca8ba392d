/**
 * A fake ElevenLabs multi-context TTS WebSocket (`/v1/text-to-speech/{voice_id}/multi-stream-input`),
 * faithful to the vendor's AsyncAPI spec: `xi-api-key` header, query parameters, contexts opened with
 * `text: " "`, voice settings and generation config only in the socket's first message (later changes
 * are a 1008), text buffered per chunk_length_schedule until flush, `close_context` after a flush
 * finishing the context and before one stopping it, audio as base64 PCM16 with per-message character
 * alignment when sync_alignment=true, `isFinal` per context, at most 5 open contexts, and errors as
 * `{message, error, code}` followed by a 1008 close. Each word is WORD_MS of tone at the requested rate.
 */
import type { IncomingMessage } from 'node:http';
import type { WebSocket } from 'ws';
import { WORD_MS, type FakeTtsControls } from '../providers/contract/harness.js';
import { rejectUpgrade, startFakeServer, sleep, type FailureMode } from './server.js';
import { pcmBytes, tone } from './tts.js';

type Json = Record<string, unknown>;

const PATH = /^\/v1\/text-to-speech\/([^/]+)\/multi-stream-input$/;
const PCM_RATES = [8000, 16000, 22050, 24000, 44100];
const DEFAULT_SCHEDULE = [120, 160, 250, 290];
/** Audio messages cover this much audio each, so words straddle messages the way real chunks do. */
const MESSAGE_MS = 250;
/** Time between audio messages: ten times faster than real time, slow enough to cancel mid-reply. */
const PACE_MS = 10;
const MAX_CONTEXTS = 5;

export interface ElevenLabsConnection {
  voiceId: string;
  query: URLSearchParams;
  /** Every message the client sent, parsed. */
  messages: Json[];
  closedAt?: number;
}

export interface ElevenLabsFake extends FakeTtsControls {
  url: string;
  readonly log: ElevenLabsConnection[];
  /** Why the fake refused or closed something, newest last (a client bug shows up here). */
  readonly violations: string[];
}

interface Context {
  id: string;
  buffer: string;
  scheduleIndex: number;
  flushed: boolean;
  closing: boolean;
  stopped: boolean;
  final: boolean;
  /** Failure controls armed when this context was opened, so a stray older stream cannot take them. */
  delayMs: number;
  drop: boolean;
  /** Generation is serialized per context; audio follows text order. */
  chain: Promise<void>;
}

export async function startElevenLabsFake(validKey: string): Promise<ElevenLabsFake> {
  const log: ElevenLabsConnection[] = [];
  const violations: string[] = [];
  let failNext: FailureMode | undefined;
  let delayNext = 0;
  let dropNext = false;
  let receivedText = '';
  let lastCancelAt: number | undefined;
  let lastKey: string | undefined;

  const server = await startFakeServer({
    // The vendor accepts the upgrade and judges the key and settings on the socket.
    upgrade: (req, socket) => PATH.test(new URL(req.url ?? '/', 'http://x').pathname) || rejectUpgrade(socket, 404, { detail: 'Not Found' }),
    connection: (ws, req) => serve(ws, req),
  });

  function refuse(ws: WebSocket, error: string, message: string, code = 1008): void {
    violations.push(message);
    ws.send(JSON.stringify({ message, error, code }));
    ws.close(code, message.slice(0, 120));
  }

  function serve(ws: WebSocket, req: IncomingMessage): void {
    const url = new URL(req.url ?? '/', 'http://x');
    const conn: ElevenLabsConnection = { voiceId: decodeURIComponent(PATH.exec(url.pathname)![1]), query: url.searchParams, messages: [] };
    log.push(conn);
    const key = req.headers['xi-api-key'];
    lastKey = typeof key === 'string' ? key : undefined;
    if (lastKey !== validKey) return refuse(ws, 'invalid_api_key', 'Invalid API key');
    const q = url.searchParams;
    const format = q.get('output_format') ?? 'mp3_44100';
    const rate = Number(/^pcm_(\d+)$/.exec(format)?.[1]);
    if (!PCM_RATES.includes(rate)) return refuse(ws, 'invalid_output_format', `This fake only speaks raw PCM, got output_format=${format}`);
    const inactivity = q.get('inactivity_timeout');
    if (inactivity !== null && !(Number.isInteger(Number(inactivity)) && Number(inactivity) > 0 && Number(inactivity) <= 180)) {
      return refuse(ws, 'invalid_request', 'inactivity_timeout must be an integer up to 180 seconds');
    }
    const alignment = q.get('sync_alignment') === 'true';

    const contexts = new Map<string, Context>();
    let firstSettings: string | undefined;
    let firstConfig: string | undefined;
    let schedule = DEFAULT_SCHEDULE;
    let sent = false;
    let open = true;
    let samplesSent = 0;
    ws.on('close', () => {
      open = false;
      conn.closedAt = performance.now();
      if ([...contexts.values()].some((c) => !c.final && !c.stopped)) lastCancelAt = conn.closedAt;
    });

    const send = (m: Json) => { if (open) ws.send(JSON.stringify(m)); };

    /** Voices `text` (complete words) as paced audio messages with character alignment. */
    async function generate(ctx: Context, text: string): Promise<void> {
      const words = text.split(/\s+/).filter(Boolean);
      if (!words.length) return;
      if (ctx.delayMs) {
        const d = ctx.delayMs;
        ctx.delayMs = 0;
        await sleep(d);
      }
      const chars = charTimeline(text);
      const totalMs = words.length * WORD_MS;
      const audio = tone(totalMs, rate, { phase: samplesSent });
      for (let fromMs = 0; fromMs < totalMs; fromMs += MESSAGE_MS) {
        if (!open || ctx.stopped) return;
        const toMs = Math.min(totalMs, fromMs + MESSAGE_MS);
        const slice = audio.subarray(Math.round((fromMs * rate) / 1000), Math.round((toMs * rate) / 1000));
        samplesSent += slice.length;
        const mine = chars.filter((c) => c.startMs >= fromMs && (c.startMs < toMs || (toMs === totalMs && c.startMs <= toMs)));
        const msg: Json = { audio: pcmBytes(slice).toString('base64'), isFinal: false, contextId: ctx.id };
        if (alignment) {
          msg.alignment = {
            chars: mine.map((c) => c.ch),
            charStartTimesMs: mine.map((c) => Math.round(c.startMs - fromMs)),
            charsDurationsMs: mine.map((c) => Math.round(c.durMs)),
          };
          msg.normalizedAlignment = msg.alignment;
        }
        send(msg);
        if (ctx.drop) {
          ws.terminate();
          return;
        }
        await sleep(PACE_MS);
      }
    }

    /** Queues generation of what the buffer holds: complete words, or everything on flush. */
    function drain(ctx: Context, all: boolean): void {
      const cut = all ? ctx.buffer.length : ctx.buffer.search(/\s\S*$/) + 1;
      if (cut <= 0) return;
      const text = ctx.buffer.slice(0, cut);
      ctx.buffer = ctx.buffer.slice(cut);
      ctx.chain = ctx.chain.then(() => generate(ctx, text));
    }

    function finish(ctx: Context): void {
      ctx.chain = ctx.chain.then(() => {
        if (ctx.final) return;
        ctx.final = true;
        contexts.delete(ctx.id);
        send({ isFinal: true, contextId: ctx.id });
      });
    }

    ws.on('message', (data) => {
      let m: Json;
      try {
        m = JSON.parse(String(data)) as Json;
      } catch {
        return refuse(ws, 'invalid_message', 'Messages must be JSON');
      }
      conn.messages.push(m);
      if (m.close_socket === true) {
        for (const c of contexts.values()) if (c.flushed) finish(c);
        void Promise.all([...contexts.values()].map((c) => c.chain)).then(() => ws.close(1000));
        return;
      }
      const id = typeof m.context_id === 'string' ? m.context_id : '';
      let ctx = contexts.get(id);
      if (m.close_context === true) {
        if (!ctx) return;
        if (!ctx.flushed) {
          ctx.stopped = true;
          lastCancelAt = performance.now();
        }
        ctx.closing = true;
        finish(ctx);
        return;
      }
      if (!sent) {
        sent = true;
        firstSettings = JSON.stringify(m.voice_settings ?? null);
        firstConfig = JSON.stringify(m.generation_config ?? null);
        const problem = checkSettings(m.voice_settings) ?? checkConfig(m.generation_config);
        if (problem) return refuse(ws, 'invalid_request', problem);
        const given = (m.generation_config as Json | undefined)?.chunk_length_schedule;
        if (Array.isArray(given)) schedule = given as number[];
      } else if ((m.voice_settings !== undefined && JSON.stringify(m.voice_settings) !== firstSettings)
        || (m.generation_config !== undefined && JSON.stringify(m.generation_config) !== firstConfig)) {
        return refuse(ws, 'invalid_request', 'voice_settings field must be provided in the first message and then either be not provided or not change.');
      }
      if (typeof m.text !== 'string') return refuse(ws, 'invalid_request', 'text is required');
      if (!ctx) {
        if (m.text !== ' ') return refuse(ws, 'invalid_request', 'The first message of a context must be a single space');
        if (contexts.size >= MAX_CONTEXTS) {
          return refuse(ws, 'max_active_conversations', `Maximum simultaneous contexts per WebSocket connection exceeded (${MAX_CONTEXTS}).`);
        }
        if (failNext) {
          const mode = failNext;
          failNext = undefined;
          if (mode === 'auth') return refuse(ws, 'invalid_api_key', 'Invalid API key');
          if (mode === 'quota') return refuse(ws, 'quota_exceeded', 'This request exceeds your quota. You have 0 credits remaining.');
          violations.push('unavailable');
          ws.close(1011, 'Internal server error');
          return;
        }
        receivedText = '';
        ctx = { id, buffer: '', scheduleIndex: 0, flushed: false, closing: false, stopped: false, final: false, delayMs: delayNext, drop: dropNext, chain: Promise.resolve() };
        delayNext = 0;
        dropNext = false;
        contexts.set(id, ctx);
        return;
      }
      if (ctx.closing) return refuse(ws, 'invalid_request', `Context ${id} is closed`);
      if (m.text) {
        receivedText += m.text;
        ctx.buffer += m.text;
      }
      if (m.flush === true) {
        ctx.flushed = true;
        drain(ctx, true);
        return;
      }
      const need = schedule[Math.min(ctx.scheduleIndex, schedule.length - 1)];
      if (ctx.buffer.length >= need) {
        ctx.scheduleIndex++;
        drain(ctx, false);
      }
    });
  }

  return {
    url: server.url,
    log,
    violations,
    failNext: (mode) => { failNext = mode; },
    delayNextFirstByte: (ms) => { delayNext = ms; },
    dropNextMidStream: () => { dropNext = true; },
    get receivedText() { return receivedText; },
    get lastCancelAt() { return lastCancelAt; },
    get lastKey() { return lastKey; },
    get connections() { return log.length; },
    close: () => server.close(),
  };
}

function checkSettings(v: unknown): string | undefined {
  if (v === undefined) return undefined;
  const s = v as Json;
  if (typeof s !== 'object' || s === null) return 'voice_settings must be an object';
  const unit = (k: string) => s[k] === undefined || (typeof s[k] === 'number' && (s[k] as number) >= 0 && (s[k] as number) <= 1);
  if (typeof s.stability !== 'number' || typeof s.similarity_boost !== 'number') return 'voice_settings needs stability and similarity_boost';
  if (!unit('stability') || !unit('similarity_boost') || !unit('style')) return 'voice_settings values must be between 0 and 1';
  if (s.use_speaker_boost !== undefined && typeof s.use_speaker_boost !== 'boolean') return 'use_speaker_boost must be a boolean';
  if (s.speed !== undefined && !(typeof s.speed === 'number' && s.speed >= 0.7 && s.speed <= 1.2)) return 'speed must be between 0.7 and 1.2';
  return undefined;
}

function checkConfig(v: unknown): string | undefined {
  if (v === undefined) return undefined;
  const sched = (v as Json | null)?.chunk_length_schedule;
  if (sched === undefined) return undefined;
  if (!Array.isArray(sched) || !sched.every((n) => typeof n === 'number' && n >= 50 && n <= 500)) return 'chunk_length_schedule items must be in the range 50-500';
  return undefined;
}

/** Each word lasts WORD_MS, split evenly over its characters; the whitespace after it takes no time. */
function charTimeline(text: string): { ch: string; startMs: number; durMs: number }[] {
  const out: { ch: string; startMs: number; durMs: number }[] = [];
  let at = 0;
  for (const part of text.match(/\S+|\s+/g) ?? []) {
    if (/^\s/.test(part)) {
      if (out.length) for (const ch of part) out.push({ ch, startMs: at, durMs: 0 });
      continue;
    }
    const each = WORD_MS / part.length;
    [...part].forEach((ch, i) => out.push({ ch, startMs: at + i * each, durMs: each }));
    at += WORD_MS;
  }
  return out;
}
