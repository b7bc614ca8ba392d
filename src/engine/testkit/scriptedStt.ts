import { durationMs, type AudioFrame } from '../audio/frame.js';
import type { Clock } from '../clock.js';
import type { SpeechToText, SttEvent, SttSession, WordTiming } from '../types.js';

export interface Utterance {
  text: string;
  /** When the caller starts speaking, from the moment `say` is called. */
  inMs?: number;
  /** How long the caller speaks. Default: 300 ms per word. */
  durationMs?: number;
  /** Interim results every this many ms while speaking (0 = none). */
  interimEveryMs?: number;
  /** How long after speech ends the vendor's final arrives. */
  finalDelayMs?: number;
  /** The vendor's endpointing flag on the final; false leaves the turn decision to the engine. */
  endOfTurn?: boolean;
  /** Emit the final without speech_started/speech_ended (a final that VAD-like events missed). */
  finalOnly?: boolean;
}

/**
 * Speech to text from a script on the clock: the test says what the caller says and when; the
 * session emits speech start, interims, the final (with word timings) and speech end like a vendor.
 */
export class ScriptedStt implements SpeechToText {
  private session?: ScriptedSttSession;
  framesReceived = 0;
  /** Every pace() the engine asked for, with the clock time. */
  readonly paces: { mode: 'live' | 'idle'; atMs: number }[] = [];

  constructor(private readonly clock: Clock) {}

  async open(): Promise<SttSession> {
    this.session = new ScriptedSttSession(this, this.clock);
    return this.session;
  }

  /** The caller says something; returns when the final has been emitted. */
  say(u: Utterance): Promise<void> {
    if (!this.session) throw new Error('no STT session is open');
    return this.session.say(u);
  }
}

class ScriptedSttSession implements SttSession {
  private listeners = new Set<(e: SttEvent) => void>();
  closed = false;
  /** Clock time of this session's audio time 0: its first frame, or its opening if none came. */
  private origin: number;
  private framed = false;

  constructor(private readonly owner: ScriptedStt, private readonly clock: Clock) {
    this.origin = clock.now();
  }

  push(frame: AudioFrame): void {
    this.owner.framesReceived++;
    if (!this.framed) {
      this.framed = true;
      this.origin = this.clock.now() - durationMs(frame);
    }
  }

  /** Like a vendor, times are ms of this session's audio. */
  private audioMs(): number {
    return this.clock.now() - this.origin;
  }

  pace(mode: 'live' | 'idle'): void {
    this.owner.paces.push({ mode, atMs: this.clock.now() });
  }

  on(listener: (e: SttEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async close(): Promise<void> { this.closed = true; }

  private emit(e: SttEvent): void {
    if (!this.closed) for (const l of [...this.listeners]) l(e);
  }

  async say(u: Utterance): Promise<void> {
    const words = u.text.split(/\s+/).filter(Boolean);
    const duration = u.durationMs ?? Math.max(200, words.length * 300);
    await this.clock.sleep(u.inMs ?? 0);
    const start = this.audioMs();
    if (!u.finalOnly) this.emit({ type: 'speech_started', atMs: start });
    const step = u.interimEveryMs ?? 0;
    if (step > 0 && !u.finalOnly) {
      for (let t = step; t < duration; t += step) {
        await this.clock.sleep(step);
        const n = Math.max(1, Math.round((t / duration) * words.length));
        this.emit({ type: 'interim', text: words.slice(0, n).join(' '), atMs: this.audioMs() });
      }
      await this.clock.sleep(duration - Math.floor((duration - 1) / step) * step);
    } else {
      await this.clock.sleep(duration);
    }
    const end = this.audioMs();
    if (!u.finalOnly) this.emit({ type: 'speech_ended', atMs: end });
    await this.clock.sleep(u.finalDelayMs ?? 0);
    const per = duration / Math.max(1, words.length);
    const timings: WordTiming[] = words.map((w, i) => ({ word: w, startMs: start + i * per, endMs: start + (i + 1) * per }));
    this.emit({ type: 'final', text: words.join(' '), startMs: start, endMs: end, endOfTurn: u.endOfTurn ?? true, words: timings });
  }
}
