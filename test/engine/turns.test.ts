import { describe, expect, it } from 'vitest';
import { engineAgentFromStored, initialDelayMs, minVolumeDbfs } from '../../src/engine/agentConfig.js';
import { fillTemplate } from '../../src/engine/templating.js';
import { estimateWordTimings, SpokenUtterance, Transcript } from '../../src/engine/transcript.js';
import { endpointDelayMs } from '../../src/engine/turns/endpointing.js';
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


describe('endpointing', () => {
  it('sensitivity sets the wait and conversation speed scales it', () => {
    expect(endpointDelayMs('ok.', { sensitivity: 'sensitive', conversationSpeed: 1 })).toBe(0);
    expect(endpointDelayMs('ok.', { sensitivity: 'relaxed', conversationSpeed: 1 })).toBe(600);
    expect(endpointDelayMs('ok.', { sensitivity: 'relaxed', conversationSpeed: 2 })).toBe(300);
    expect(endpointDelayMs('ok.', { sensitivity: 'auto', conversationSpeed: 0.5 })).toBe(400);
  });

  it('dynamic turns wait longer after a trailing word than after a full sentence', () => {
    const dynamic = { minWaitMs: 200, maxSilenceMs: 3000 };
    const cfg = { sensitivity: 'auto' as const, conversationSpeed: 1, dynamic };
    expect(endpointDelayMs('I want to book a table.', cfg)).toBe(200);
    expect(endpointDelayMs('I want to book a table and', cfg)).toBe(3000);
    expect(endpointDelayMs('um', cfg)).toBe(3000);
    const mid = endpointDelayMs('I want to book a table', cfg);
    expect(mid).toBeGreaterThan(200);
    expect(mid).toBeLessThan(3000);
  });
});

describe('agent configuration from the stored agent', () => {
  it('maps Vocode and Fluents fields with the documented defaults', () => {
    const a = engineAgentFromStored({ prompt: { content: 'Be brief.' }, initial_message: 'Hi', initial_message_delay: 1.5, openai_model_name_override: 'gpt-4o-mini', llm_temperature: 0.3 });
    expect(a).toMatchObject({ prompt: 'Be brief.', initialMessage: 'Hi', initialMessageDelayMs: 1500, model: 'gpt-4o-mini', temperature: 0.3, idleTimeSeconds: 30, interruptSensitivity: 'low', dynamicTurns: null });
    expect(engineAgentFromStored({ ivr_navigation_mode: 'default' }).idleTimeSeconds).toBe(600);
    expect(engineAgentFromStored({ idle_time_seconds: 12, ivr_navigation_mode: 'default' }).idleTimeSeconds).toBe(12);
    expect(engineAgentFromStored({ enable_dynamic_turns: true, dynamic_min_wait_secs: 0.2, dynamic_max_silence_secs: 3 }).dynamicTurns).toEqual({ minWaitMs: 200, maxSilenceMs: 3000 });
  });

  it('reads a Fluents-style millisecond initial delay as milliseconds', () => {
    expect(initialDelayMs(1000)).toBe(1000);
    expect(initialDelayMs(2)).toBe(2000);
    expect(initialDelayMs(undefined)).toBe(0);
  });
});

describe('min_volume', () => {
  it('reads dBFS, linear amplitude and 16-bit RMS levels', () => {
    expect(minVolumeDbfs(-40)).toBe(-40);
    expect(minVolumeDbfs(0.01)).toBeCloseTo(-40);
    expect(minVolumeDbfs(328)).toBeCloseTo(-40, 0);
    expect(minVolumeDbfs(0)).toBeNull();
    expect(minVolumeDbfs(null)).toBeNull();
  });
});
