/**
 * llm_fallback against real fakes: OpenAI as the primary, Anthropic as the fallback. What a caller
 * notices: an answer despite a failing or hung primary, no repeated wait while the primary stays down,
 * and no second voice once the first has started speaking.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ProviderError, type LlmChunk, type LlmRequest } from '../../src/engine/types.js';
import { createAnthropicLlm } from '../../src/providers/llm/anthropic.js';
import { withFallback, type FallbackOptions } from '../../src/providers/llm/fallback.js';
import { createOpenAILlm } from '../../src/providers/llm/openai.js';
import { startAnthropicFake, type AnthropicFake } from '../fakes/anthropic.js';
import { startOpenAIChatFake, type OpenAIChatFake } from '../fakes/openai.js';
import { drain, failure, never, textOf as text } from './helpers.js';

const OPENAI_KEY = 'sk-openai-primary-0001';
const ANTHROPIC_KEY = 'sk-ant-fallback-0001';

const request: LlmRequest = {
  messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Are you open tonight?' }],
  tools: [],
  temperature: 0.3,
  model: 'gpt-4o-mini',
};


describe('LLM fallback', () => {
  let openai: OpenAIChatFake;
  let anthropic: AnthropicFake;
  let clock = 0;
  const make = (opts: FallbackOptions = {}, openaiKey = OPENAI_KEY) => withFallback(
    createOpenAILlm({ apiKey: openaiKey, baseUrl: `${openai.url}/v1` }, { model: 'gpt-4o-mini' }),
    createAnthropicLlm({ apiKey: ANTHROPIC_KEY, baseUrl: anthropic.url }, { model: 'claude-3-5-haiku-latest' }),
    { now: () => clock, ...opts },
  );

  beforeAll(async () => {
    openai = await startOpenAIChatFake({ validKey: OPENAI_KEY, prefix: '/v1' });
    anthropic = await startAnthropicFake(ANTHROPIC_KEY);
  });
  afterAll(async () => { await openai.close(); await anthropic.close(); });
  beforeEach(() => { clock += 1_000_000; });

  it('answers from the primary while it works, without touching the fallback', async () => {
    const before = anthropic.requests;
    openai.reply({ text: ['Yes,', ' until eleven.'] });
    expect(text(await drain(make().stream(request, never())))).toBe('Yes, until eleven.');
    expect(anthropic.requests).toBe(before);
  });

  it('a primary server error before any word is answered by the fallback in the same stream, with its own model', async () => {
    openai.failNext('unavailable');
    anthropic.reply({ text: ['Yes,', ' we are open.'], usage: { input: 20, output: 6 } });
    const chunks = await drain(make().stream(request, never()));
    expect(text(chunks)).toBe('Yes, we are open.');
    expect(chunks.at(-1)).toEqual({ type: 'usage', inputTokens: 20, outputTokens: 6 });
    expect((anthropic.lastRequest!.body as { model: string }).model).toBe('claude-3-5-haiku-latest');
  });

  it('a primary with a wrong key is covered by the fallback', async () => {
    anthropic.reply({ text: ['Covered.'] });
    expect(text(await drain(make({}, 'sk-revoked').stream(request, never())))).toBe('Covered.');
  });

  it('a primary that sends no first token in time is abandoned (its request closed) for the fallback', async () => {
    openai.delayNextFirstByte(2_000);
    openai.reply({ text: ['Too late.'] });
    anthropic.reply({ text: ['Fallback', ' speaking.'] });
    const closedBefore = openai.lastClientCloseAt;
    const chunks = await drain(make({ firstTokenTimeoutMs: 150 }).stream(request, never()));
    expect(text(chunks)).toBe('Fallback speaking.');
    expect(openai.lastClientCloseAt).not.toBe(closedBefore);
  });

  it('after a primary failure the next turns go straight to the fallback, and the primary is tried again later', async () => {
    const llm = make({ stickyMs: 60_000 });
    openai.failNext('quota');
    anthropic.reply({ text: ['First.'] });
    expect(text(await drain(llm.stream(request, never())))).toBe('First.');

    const primaryCalls = openai.requests;
    clock += 30_000;
    anthropic.reply({ text: ['Second.'] });
    expect(text(await drain(llm.stream(request, never())))).toBe('Second.');
    expect(openai.requests).toBe(primaryCalls);

    clock += 31_000;
    openai.reply({ text: ['Primary again.'] });
    expect(text(await drain(llm.stream(request, never())))).toBe('Primary again.');
    expect(openai.requests).toBe(primaryCalls + 1);
  });

  it('while the fallback leads, a fallback failure still gets an answer from the primary', async () => {
    const llm = make();
    openai.failNext('unavailable');
    anthropic.reply({ text: ['One.'] });
    await drain(llm.stream(request, never()));
    anthropic.failNext('unavailable');
    openai.reply({ text: ['Primary recovered.'] });
    expect(text(await drain(llm.stream(request, never())))).toBe('Primary recovered.');
  });

  it('a primary failing after it started speaking is rethrown, not continued by another voice', async () => {
    const before = anthropic.requests;
    openai.dropNextMidStream();
    openai.reply({ text: ['We are open', ' until eleven.'] });
    const got: LlmChunk[] = [];
    const err = await failure((async () => { for await (const c of make().stream(request, never())) got.push(c); })());
    expect(err).toBeInstanceOf(ProviderError);
    expect(text(got)).toBe('We are open');
    expect(anthropic.requests).toBe(before);
  });

  it('when both fail, the error is the fallback\'s', async () => {
    openai.failNext('unavailable');
    anthropic.failNext('quota');
    const err = await failure(drain(make().stream(request, never())));
    expect(err).toBeInstanceOf(ProviderError);
    expect(err.kind).toBe('quota');
  });

  it('an abort while waiting on the primary closes its request within 50 ms and never calls the fallback', async () => {
    const before = anthropic.requests;
    openai.hangNextAfterFirstChunk();
    openai.reply({ text: ['Well,', ' never mind'] });
    const ac = new AbortController();
    const it = make().stream(request, ac.signal)[Symbol.asyncIterator]();
    expect((await it.next()).value).toEqual({ type: 'text', text: 'Well,' });
    const reason = new Error('caller barged in');
    const abortedAt = performance.now();
    ac.abort(reason);
    await expect(it.next()).rejects.toBe(reason);
    const deadline = Date.now() + 1000;
    while ((openai.lastClientCloseAt ?? 0) < abortedAt && Date.now() < deadline) await new Promise((r) => setTimeout(r, 2));
    expect(openai.lastClientCloseAt! - abortedAt).toBeLessThan(50);
    expect(anthropic.requests).toBe(before);
  });

  it('an abort during the first-byte wait rejects with the abort, without falling back', async () => {
    const before = anthropic.requests;
    openai.delayNextFirstByte(2_000);
    const ac = new AbortController();
    const reason = new Error('hung up');
    const pending = drain(make({ firstTokenTimeoutMs: 5_000 }).stream(request, ac.signal));
    setTimeout(() => ac.abort(reason), 50);
    await expect(pending).rejects.toBe(reason);
    expect(anthropic.requests).toBe(before);
  });
});
