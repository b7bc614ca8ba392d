/**
 * The far end of an emulated call as a script played in real time: audio, silence, key presses and a
 * hang-up, consumed one 20 ms frame per tick of the shared media clock. Also records when each piece
 * of audio started and ended (the caller's speech, on the call's timeline), for latency figures.
 *
 * Followed "Media Streams - WebSocket Messages" (https://www.twilio.com/docs/voice/media-streams/websocket-messages):
 * inbound audio is μ-law 8 kHz in 160-byte frames; a key press reaches the stream as a `dtmf` message
 * (track "inbound_track", one digit per message).
 */
import { encodeMuLaw } from '../../engine/audio/g711.js';
import { FRAME_BYTES, MULAW_SILENCE, samplesToMs } from './audio.js';

/** The stretch of a frame each DTMF digit occupies (tone, then gap), and the w/W pauses. */
const DIGIT_FRAMES = 10; // 100 ms tone + 100 ms gap
const PAUSE_FRAMES: Record<string, number> = { w: 25, W: 50 };

type Item =
  | { kind: 'wait-stream' }
  | { kind: 'audio'; pcm: Int16Array; pos: number; label?: string; startMs?: number; done: () => void }
  | { kind: 'silence'; frames: number; done: () => void }
  | { kind: 'dtmf'; digits: string; index: number; frame: number; done: () => void }
  | { kind: 'hangup'; done: () => void };

export interface SpeechSpan {
  startMs: number;
  endMs: number;
  label?: string;
}

export interface CallerFrame {
  /** A digit pressed at the start of this frame. */
  dtmf?: string;
  /** The script reached its hang-up. */
  hangup?: boolean;
}

export class CallerSource {
  /** What the caller said, on the call's timeline (ms since the call was created). */
  readonly spans: SpeechSpan[] = [];
  private items: Item[] = [];

  get idle(): boolean { return this.items.length === 0; }

  /** Holds what follows until a media stream is open. */
  waitForStream(): void {
    this.items.push({ kind: 'wait-stream' });
  }

  audio(pcm: Int16Array, label?: string): Promise<void> {
    return new Promise((done) => this.items.push({ kind: 'audio', pcm, pos: 0, label, done }));
  }

  silence(ms: number): Promise<void> {
    return new Promise((done) => this.items.push({ kind: 'silence', frames: Math.max(1, Math.round(ms / 20)), done }));
  }

  dtmf(digits: string): Promise<void> {
    return new Promise((done) => this.items.push({ kind: 'dtmf', digits, index: 0, frame: 0, done }));
  }

  hangup(): Promise<void> {
    return new Promise((done) => this.items.push({ kind: 'hangup', done }));
  }

  /** Drops everything still queued (the call ended); pending promises resolve. */
  flush(): void {
    const items = this.items;
    this.items = [];
    for (const it of items) if (it.kind !== 'wait-stream') it.done();
  }

  /** Fills `out` (160 bytes of μ-law) with the caller's next 20 ms, starting at `atMs` on the call's timeline. */
  next(out: Uint8Array, atMs: number, streaming: boolean): CallerFrame {
    for (;;) {
      const head = this.items[0];
      if (!head) { out.fill(MULAW_SILENCE); return {}; }
      switch (head.kind) {
        case 'wait-stream':
          if (!streaming) { out.fill(MULAW_SILENCE); return {}; }
          this.items.shift();
          continue;
        case 'audio': {
          if (head.pos === 0) head.startMs = atMs;
          const n = Math.min(FRAME_BYTES, head.pcm.length - head.pos);
          if (n > 0) {
            const chunk = head.pcm.subarray(head.pos, head.pos + n);
            encodeMuLaw(chunk, out);
            if (n < FRAME_BYTES) out.fill(MULAW_SILENCE, n);
          } else out.fill(MULAW_SILENCE);
          head.pos += n;
          if (head.pos >= head.pcm.length) {
            this.items.shift();
            this.spans.push({ startMs: head.startMs ?? atMs, endMs: atMs + samplesToMs(n), label: head.label });
            head.done();
          }
          return {};
        }
        case 'silence':
          out.fill(MULAW_SILENCE);
          if (--head.frames <= 0) { this.items.shift(); head.done(); }
          return {};
        case 'dtmf': {
          out.fill(MULAW_SILENCE);
          if (head.index >= head.digits.length) { this.items.shift(); head.done(); continue; }
          const digit = head.digits[head.index];
          const frames = PAUSE_FRAMES[digit] ?? DIGIT_FRAMES;
          const first = head.frame === 0;
          if (++head.frame >= frames) { head.frame = 0; head.index++; }
          if (head.index >= head.digits.length && head.frame === 0) { this.items.shift(); head.done(); }
          return first && !PAUSE_FRAMES[digit] ? { dtmf: digit } : {};
        }
        case 'hangup':
          this.items.shift();
          head.done();
          out.fill(MULAW_SILENCE);
          return { hangup: true };
      }
    }
  }
}
