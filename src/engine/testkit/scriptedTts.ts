import type { Clock } from '../clock.js';
import type { TextToSpeech, TtsEvent, TtsSession, WordTiming } from '../types.js';
import { ProviderError } from '../types.js';

export interface ScriptedTtsOptions {
  /** Delay before the first audio of a session. */
  firstAudioMs?: number;
  /** Spoken length of each word. */
  msPerWord?: number;
  /** Whether to report word timings (vendors like ElevenLabs and Cartesia do; others do not). */
  wordTimings?: boolean;
  /** Drop the "socket" after this many words of a session. */
  failAfterWords?: number;
  /** Only the first this-many sessions fail (a reconnect then succeeds). Default: every session. */
  failSessions?: number;
}

/**
 * Text to speech on the clock: each word becomes `msPerWord` of a quiet tone, delivered in 20 ms
 * chunks as fast as generated (like a streaming vendor), with optional word timings.
 */
export class ScriptedTts implements TextToSpeech {
  sessions = 0;
  constructor(private readonly clock: Clock, private readonly opts: ScriptedTtsOptions = {}) {}

  async open(o: { sampleRate: number }, signal: AbortSignal): Promise<TtsSession> {
    const sessionNo = ++this.sessions;
    const fails = this.opts.failAfterWords !== undefined && sessionNo <= (this.opts.failSessions ?? Infinity);
    const clock = this.clock;
    const opts = this.opts;
    const queue: TtsEvent[] = [];
    let wake: (() => void) | undefined;
    let text = '';
    let flushed = false;
    let cancelled = false;
    let spokenWords = 0;
    let audioMs = 0;
    const push = (e: TtsEvent) => { queue.push(e); wake?.(); };

    const synth = async () => {
      await clock.sleep(opts.firstAudioMs ?? 0, signal).catch(() => {});
      for (;;) {
        if (cancelled || signal.aborted) return;
        const m = /^\s*(\S+)\s/.exec(text) ?? (flushed ? /^\s*(\S+)\s*$/.exec(text) : null);
        if (!m) {
          if (flushed) { push({ type: 'done' }); return; }
          await new Promise<void>((r) => { wakeSynth = r; });
          continue;
        }
        text = text.slice(m[0].length);
        if (fails && spokenWords >= opts.failAfterWords!) {
          throw new ProviderError('network', 'socket closed mid-stream', 'scripted-tts');
        }
        const ms = opts.msPerWord ?? 300;
        const samples = new Int16Array(Math.round((o.sampleRate * ms) / 1000));
        for (let i = 0; i < samples.length; i++) samples[i] = Math.round(3000 * Math.sin((2 * Math.PI * 220 * i) / o.sampleRate));
        if (opts.wordTimings !== false) push({ type: 'words', words: [{ word: m[1], startMs: audioMs, endMs: audioMs + ms } satisfies WordTiming] });
        const chunk = Math.round(o.sampleRate / 50);
        for (let i = 0; i < samples.length; i += chunk) push({ type: 'audio', samples: samples.subarray(i, i + chunk) });
        audioMs += ms;
        spokenWords++;
      }
    };
    let wakeSynth: (() => void) | undefined;
    let failure: unknown;
    const done = synth().catch((e) => { failure = e; wake?.(); });

    return {
      pushText(t: string) { text += t; wakeSynth?.(); },
      flush() { flushed = true; wakeSynth?.(); },
      cancel() { cancelled = true; wakeSynth?.(); wake?.(); },
      async *events() {
        for (;;) {
          while (queue.length) {
            const e = queue.shift()!;
            yield e;
            if (e.type === 'done') { await done; if (failure) throw failure; return; }
          }
          if (cancelled || signal.aborted) return;
          if (failure) throw failure;
          await new Promise<void>((r) => { wake = r; });
        }
      },
    };
  }
}
