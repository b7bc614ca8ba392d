/**
 * What STT fakes "hear": energy runs in the caller's audio. Speech-like test audio goes in, the fake
 * finds utterances (onset, progress, end after a silence) and transcribes each one as the next scripted
 * text. Shared by every STT fake so they all behave alike and the contract suite can drive any of them.
 */
export const SPEECH_RMS = 500; // ≈ -36 dBFS; test speech is far above, silence far below
export const END_SILENCE_MS = 300;

/** Speech-like audio: a 220 Hz tone with a 4 Hz syllable envelope, loud enough for any VAD. */
export function speechAudio(ms: number, sampleRate: number, amplitude = 8000): Int16Array {
  const n = Math.round((ms * sampleRate) / 1000);
  const out = new Int16Array(n);
  for (let i = 0; i < n; i++) {
    const t = i / sampleRate;
    const env = 0.6 + 0.4 * Math.sin(2 * Math.PI * 4 * t);
    out[i] = Math.round(amplitude * env * Math.sin(2 * Math.PI * 220 * t));
  }
  return out;
}

export function silenceAudio(ms: number, sampleRate: number): Int16Array {
  return new Int16Array(Math.round((ms * sampleRate) / 1000));
}

/** 20 ms frames of `samples`, in the engine's frame shape. */
export function toFrames(samples: Int16Array, sampleRate: number, startMs = 0): { samples: Int16Array; sampleRate: number; timestampMs: number }[] {
  const per = Math.round(sampleRate / 50);
  const frames = [];
  for (let i = 0; i < samples.length; i += per) {
    frames.push({ samples: samples.slice(i, i + per), sampleRate, timestampMs: startMs + (i * 1000) / sampleRate });
  }
  return frames;
}

export interface UtteranceCallbacks {
  /** Speech began at `atMs` (ms of audio received on this connection). */
  onStart?(atMs: number): void;
  /** Every 100 ms of ongoing speech, with the utterance's start and the current position. */
  onProgress?(startMs: number, nowMs: number): void;
  /** END_SILENCE_MS of silence closed an utterance that ran from startMs to endMs. */
  onEnd?(startMs: number, endMs: number): void;
}

/** Finds utterances in PCM16 fed to it in arbitrary chunks (10 ms analysis windows). */
export class UtteranceTracker {
  private posSamples = 0;
  private window: number[] = [];
  private speechStart: number | null = null;
  private lastVoiced = 0;
  private lastProgress = 0;

  constructor(private readonly sampleRate: number, private readonly cb: UtteranceCallbacks) {}

  get receivedMs(): number { return (this.posSamples * 1000) / this.sampleRate; }

  push(samples: Int16Array): void {
    const win = Math.round(this.sampleRate / 100);
    for (const s of samples) {
      this.window.push(s);
      this.posSamples++;
      if (this.window.length < win) continue;
      const rms = Math.sqrt(this.window.reduce((a, v) => a + v * v, 0) / this.window.length);
      this.window = [];
      const now = this.receivedMs;
      if (rms >= SPEECH_RMS) {
        if (this.speechStart === null) {
          this.speechStart = now - 10;
          this.lastProgress = now;
          this.cb.onStart?.(this.speechStart);
        } else if (now - this.lastProgress >= 100) {
          this.lastProgress = now;
          this.cb.onProgress?.(this.speechStart, now);
        }
        this.lastVoiced = now;
      } else if (this.speechStart !== null && now - this.lastVoiced >= END_SILENCE_MS) {
        const start = this.speechStart;
        this.speechStart = null;
        this.cb.onEnd?.(start, this.lastVoiced);
      }
    }
  }
}

/** Scripted transcripts, one per utterance, shared by a fake's connections. */
export class TranscriptScript {
  private queue: string[] = [];
  add(...texts: string[]): void { this.queue.push(...texts); }
  next(): string { return this.queue.shift() ?? 'hello'; }
  peek(): string { return this.queue[0] ?? 'hello'; }
  /** Puts a text back in front: an utterance cut off by a dropped connection is heard again after the reconnect. */
  unshift(text: string): void { this.queue.unshift(text); }
}

/** Word timings spread evenly over an utterance, as a vendor would report them (seconds or ms by caller). */
export function spreadWords(text: string, startMs: number, endMs: number): { word: string; startMs: number; endMs: number }[] {
  const words = text.split(/\s+/).filter(Boolean);
  const each = (endMs - startMs) / Math.max(1, words.length);
  return words.map((word, i) => ({ word, startMs: startMs + i * each, endMs: startMs + (i + 1) * each }));
}
