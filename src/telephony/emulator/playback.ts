/**
 * What the caller actually heard from the application: every 20 ms of agent audio at the moment it
 * played, cut short where a `clear` interrupted it, grouped into audible stretches ("the agent spoke
 * from t1 to t2") for latency figures and waits.
 *
 * Followed "Media Streams - WebSocket Messages" (https://www.twilio.com/docs/voice/media-streams/websocket-messages):
 * "The media messages are buffered and played in the order received"; a `clear` "empties all buffered
 * audio". The recording keeps μ-law as it arrived (1 byte per sample) to stay small under load.
 */
import { decodeMuLaw } from '../../engine/audio/g711.js';
import { mulawDbfs, msToSamples, samplesToMs } from './audio.js';

export interface AgentSpeech {
  /** Call-timeline ms (since the call was created) of the first audible frame. */
  startMs: number;
  endMs: number;
  /** A `clear` stopped it (audio was discarded or a frame cut mid-play). */
  cut: boolean;
}

interface Segment {
  startMs: number;
  chunks: Uint8Array[];
  bytes: number;
}

export class AgentRecorder {
  readonly speech: AgentSpeech[] = [];
  /** End (call ms) of the last audible frame; −Infinity before any. */
  lastAudibleEndMs = -Infinity;
  /** Total agent audio played, in ms (audible or not). */
  playedMs = 0;
  private segments: Segment[] = [];
  private onAudible?: (startMs: number) => void;

  constructor(
    /** Frames louder than this (RMS dBFS) count as the agent speaking. */
    readonly speechDbfs = -45,
    /** A gap longer than this starts a new stretch of speech. */
    readonly gapMs = 300,
    readonly keepAudio = true,
  ) {}

  /** Called with the start time of each audible frame (waits use it). */
  setListener(fn: (startMs: number) => void): void { this.onAudible = fn; }

  /** `bytes` (μ-law) started playing at `atMs`. */
  play(atMs: number, bytes: Uint8Array): void {
    const ms = samplesToMs(bytes.length);
    this.playedMs += ms;
    if (this.keepAudio) {
      const last = this.segments[this.segments.length - 1];
      if (last && Math.abs(last.startMs + samplesToMs(last.bytes) - atMs) < 0.5) {
        last.chunks.push(bytes);
        last.bytes += bytes.length;
      } else this.segments.push({ startMs: atMs, chunks: [bytes], bytes: bytes.length });
    }
    if (mulawDbfs(bytes) > this.speechDbfs) {
      const cur = this.speech[this.speech.length - 1];
      if (cur && atMs - cur.endMs <= this.gapMs) cur.endMs = atMs + ms;
      else this.speech.push({ startMs: atMs, endMs: atMs + ms, cut: false });
      this.lastAudibleEndMs = atMs + ms;
      this.onAudible?.(atMs);
    }
  }

  /** A clear at `atMs`: whatever was still playing stops there. `discarded` says whether queued audio was dropped. */
  cut(atMs: number, discarded: boolean): void {
    const seg = this.segments[this.segments.length - 1];
    if (seg) {
      const end = seg.startMs + samplesToMs(seg.bytes);
      if (end > atMs) {
        let keep = Math.max(0, msToSamples(atMs - seg.startMs));
        const chunks: Uint8Array[] = [];
        for (const c of seg.chunks) {
          if (keep <= 0) break;
          chunks.push(c.length <= keep ? c : c.subarray(0, keep));
          keep -= c.length;
        }
        const kept = chunks.reduce((s, c) => s + c.length, 0);
        this.playedMs -= samplesToMs(seg.bytes - kept);
        seg.chunks = chunks;
        seg.bytes = kept;
      }
    }
    const cur = this.speech[this.speech.length - 1];
    if (cur && cur.endMs >= atMs - 20) {
      if (cur.endMs > atMs) { cur.endMs = Math.max(cur.startMs, atMs); this.lastAudibleEndMs = Math.min(this.lastAudibleEndMs, atMs); }
      if (discarded || cur.endMs >= atMs) cur.cut = true;
    }
  }

  /** The agent's audio as the caller heard it: PCM16 8 kHz from the first played frame, gaps as silence. */
  pcm(): { samples: Int16Array; startMs: number } {
    if (this.segments.length === 0) return { samples: new Int16Array(0), startMs: 0 };
    const startMs = this.segments[0].startMs;
    const last = this.segments[this.segments.length - 1];
    const total = msToSamples(last.startMs - startMs) + last.bytes;
    const out = new Int16Array(total);
    for (const s of this.segments) {
      let at = msToSamples(s.startMs - startMs);
      for (const c of s.chunks) {
        const n = Math.min(c.length, out.length - at);
        if (n <= 0) break;
        decodeMuLaw(c.subarray(0, n), out.subarray(at, at + n));
        at += n;
      }
    }
    return { samples: out, startMs };
  }
}
