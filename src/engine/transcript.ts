import type { WordTiming } from './types.js';

export type Sender = 'HUMAN' | 'BOT' | 'ACTION_WORKER';

export interface TranscriptLine {
  sender: Sender;
  text: string;
  /** Call-timeline time the line began. */
  atMs: number;
  /** The caller cut this agent line off; `text` holds only what was played. */
  interrupted?: boolean;
}

/** Rough syllable count: vowel groups, at least one per word. */
export function syllables(word: string): number {
  const groups = word.toLowerCase().replace(/[^a-z]/g, '').replace(/e$/, '').match(/[aeiouy]+/g);
  return Math.max(1, groups?.length ?? 1);
}

/**
 * Spreads an utterance's audio length over its words by syllables, for TTS vendors that give no
 * word timings.
 */
export function estimateWordTimings(text: string, audioMs: number, offsetMs = 0): WordTiming[] {
  const words = text.split(/\s+/).filter(Boolean);
  const total = words.reduce((n, w) => n + syllables(w), 0);
  let t = offsetMs;
  return words.map((word) => {
    const d = (audioMs * syllables(word)) / Math.max(1, total);
    const w = { word, startMs: t, endMs: t + d };
    t += d;
    return w;
  });
}

/**
 * What the agent said in one reply, word by word against its audio timeline, so that only words
 * whose audio was played count. Words arrive with timings (from the TTS) or get estimated.
 */
export class SpokenUtterance {
  private words: WordTiming[] = [];
  /** Milliseconds of this reply's audio produced so far. */
  audioMs = 0;

  addTimedWords(words: WordTiming[]): void {
    this.words.push(...words);
  }

  /** Text whose audio has been produced but whose word timings must be estimated. */
  addUntimedText(text: string, audioMsForText: number): void {
    this.words.push(...estimateWordTimings(text, audioMsForText, this.audioMs - audioMsForText));
  }

  /** The words completely played when `playedMs` of this reply's audio has played. */
  playedText(playedMs: number): string {
    // A word counts once most of it was heard: cutting a word's last syllable does not unsay it.
    return this.words.filter((w) => w.startMs + 0.6 * (w.endMs - w.startMs) <= playedMs).map((w) => w.word).join(' ');
  }

  fullText(): string {
    return this.words.map((w) => w.word).join(' ');
  }
}

export class Transcript {
  readonly lines: TranscriptLine[] = [];

  add(line: TranscriptLine): void {
    if (line.text.trim() === '' && !line.interrupted) return;
    this.lines.push(line);
  }

  /** Vocode's transcript string: one "SENDER: text" line per message; a cut-off agent line ends with "-". */
  toString(): string {
    return this.lines.map((l) => `${l.sender}: ${l.text}${l.interrupted ? '-' : ''}`).join('\n');
  }
}
