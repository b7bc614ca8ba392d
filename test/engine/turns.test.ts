import { describe, expect, it } from 'vitest';
import { fillTemplate } from '../../src/engine/templating.js';
import { estimateWordTimings, SpokenUtterance, Transcript } from '../../src/engine/transcript.js';
import { confirmsInterruption, isBackchannel } from '../../src/engine/turns/interruptPolicy.js';

describe('interruption policy', () => {
  it.each(['uh-huh', 'Yeah.', 'right', 'Mm-hmm!', 'okay', 'got it'])('"%s" is a backchannel: it interrupts at high, not at low', (t) => {
    expect(isBackchannel(t)).toBe(true);
    expect(confirmsInterruption(t, 'low')).toBe(false);
    expect(confirmsInterruption(t, 'high')).toBe(true);
  });

  it.each(['wait', 'no, stop', 'Actually I need to reschedule', 'what?'])('"%s" interrupts at both sensitivities', (t) => {
    expect(confirmsInterruption(t, 'low')).toBe(true);
    expect(confirmsInterruption(t, 'high')).toBe(true);
  });

  it('silence or noise-only transcripts never interrupt', () => {
    expect(confirmsInterruption('', 'high')).toBe(false);
    expect(confirmsInterruption(' ... ', 'high')).toBe(false);
  });
});

describe('templating', () => {
  it('fills ${var} and {{var}}, and leaves unknown placeholders visible', () => {
    expect(fillTemplate('Hi ${name}, this is {{ agent }} from ${company}.', { name: 'Ada', agent: 'Sam' }))
      .toBe('Hi Ada, this is Sam from ${company}.');
    expect(fillTemplate('${n} items', { n: 3 })).toBe('3 items');
  });
});

describe('transcripts that are true', () => {
  it('only words whose audio played count, from vendor word timings', () => {
    const u = new SpokenUtterance();
    u.addTimedWords([{ word: 'Your', startMs: 0, endMs: 200 }, { word: 'order', startMs: 200, endMs: 500 }, { word: 'shipped', startMs: 500, endMs: 900 }]);
    expect(u.playedText(0)).toBe('');
    expect(u.playedText(390)).toBe('Your order');
    expect(u.playedText(600)).toBe('Your order');
    expect(u.playedText(900)).toBe('Your order shipped');
  });

  it('estimates word timings by syllables when the vendor gives none', () => {
    const w = estimateWordTimings('I understand completely', 1000);
    expect(w.map((x) => x.word)).toEqual(['I', 'understand', 'completely']);
    expect(w[0].endMs - w[0].startMs).toBeLessThan(w[1].endMs - w[1].startMs);
    expect(w.at(-1)!.endMs).toBeCloseTo(1000);
  });

  it("renders Vocode's transcript string, marking cut-off agent lines", () => {
    const t = new Transcript();
    t.add({ sender: 'BOT', text: 'Hello, how can I', atMs: 0, interrupted: true });
    t.add({ sender: 'HUMAN', text: 'I need help', atMs: 900 });
    expect(t.toString()).toBe('BOT: Hello, how can I-\nHUMAN: I need help');
  });
});
