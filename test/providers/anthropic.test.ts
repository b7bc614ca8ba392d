/** The Anthropic Messages adapter against the Anthropic fake: the shared contract plus the API's own rules. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProviderError, type LlmChunk, type LlmRequest } from '../../src/engine/types.js';
import { createAnthropicLlm } from '../../src/providers/llm/anthropic.js';
import { startAnthropicFake, type AnthropicFake } from '../fakes/anthropic.js';
import { llmContract } from './contract/llm.js';
import type { LlmHarness } from './contract/harness.js';
import { drain, failure, never } from './helpers.js';

const VALID_KEY = 'sk-ant-test-valid-0001';
type Json = Record<string, unknown>;

function inspect(body: unknown): ReturnType<LlmHarness['inspect']> {
  const b = body as { system?: string; messages: { role: string; content: Json[] | string }[]; tools?: { name: string }[]; temperature?: number; model?: string };
  const text = (content: Json[] | string) => (typeof content === 'string' ? content
    : content.map((c) => (c.type === 'text' ? c.text : c.type === 'tool_result' ? c.content : '')).join('\n'));
  return {
    system: b.system,
    messages: b.messages.map((m) => ({ role: m.role, text: text(m.content) })),
    tools: (b.tools ?? []).map((t) => t.name),
    temperature: b.temperature,
    model: b.model,
  };
}

llmContract('anthropic', async () => {
  const fake = await startAnthropicFake(VALID_KEY);
  return {
    make: (key = VALID_KEY, opts = {}) => createAnthropicLlm({ apiKey: key, baseUrl: fake.url }, { model: opts.model ?? 'claude-3-5-haiku-latest', firstTokenTimeoutMs: opts.firstTokenTimeoutMs }),
    validKey: VALID_KEY,
    fake,
    lastKey: () => fake.lastRequest?.headers['x-api-key'] as string | undefined,
    inspect,
  };
});


describe('Anthropic adapter: the wire request', () => {
  let fake: AnthropicFake;
  const llm = (cfg: { maxTokens?: number } = {}) => createAnthropicLlm({ apiKey: VALID_KEY, baseUrl: `${fake.url}/` }, { model: 'claude-3-5-haiku-latest', ...cfg });
  beforeAll(async () => { fake = await startAnthropicFake(VALID_KEY); });
  afterAll(async () => { await fake.close(); });

  it('puts the system prompt top-level and all results of one tool turn in a single user message', async () => {
    fake.reply({ text: ['Booked.'] });
    const request: LlmRequest = {
      messages: [
        { role: 'system', content: 'You take bookings.' },
        { role: 'user', content: 'Table for two?' },
        { role: 'assistant', content: 'One moment.', toolCalls: [{ id: 'toolu_a', name: 'check', arguments: '{"n":2}' }, { id: 'toolu_b', name: 'hours', arguments: '' }] },
        { role: 'tool', content: '{"free":true}', toolCallId: 'toolu_a' },
        { role: 'tool', content: '{"open":"18-23"}', toolCallId: 'toolu_b' },
        { role: 'user', content: 'Great.' },
      ],
      tools: [{ name: 'check', description: 'Checks a slot', parameters: { type: 'object', properties: { n: { type: 'integer' } } } }],
      temperature: 0.3,
    };
    await drain(llm().stream(request, never()));
    const body = fake.lastRequest!.body as Json;
    expect(body.system).toBe('You take bookings.');
    expect(body.messages).toEqual([
      { role: 'user', content: [{ type: 'text', text: 'Table for two?' }] },
      {
        role: 'assistant', content: [
          { type: 'text', text: 'One moment.' },
          { type: 'tool_use', id: 'toolu_a', name: 'check', input: { n: 2 } },
          { type: 'tool_use', id: 'toolu_b', name: 'hours', input: {} },
        ],
      },
      {
        role: 'user', content: [
          { type: 'tool_result', tool_use_id: 'toolu_a', content: '{"free":true}' },
          { type: 'tool_result', tool_use_id: 'toolu_b', content: '{"open":"18-23"}' },
          { type: 'text', text: 'Great.' },
        ],
      },
    ]);
    expect(body.tools).toEqual([{ name: 'check', description: 'Checks a slot', input_schema: { type: 'object', properties: { n: { type: 'integer' } } } }]);
    expect(body).toMatchObject({ max_tokens: 1024, stream: true, tool_choice: { type: 'auto' } });
    const headers = fake.lastRequest!.headers;
    expect(headers['x-api-key']).toBe(VALID_KEY);
    expect(headers['anthropic-version']).toBe('2023-06-01');
    expect(headers.authorization).toBeUndefined();
  });

  it('answers a call where the agent spoke first, with max_tokens as configured', async () => {
    fake.reply({ text: ['Sure.'] });
    const chunks = await drain(llm({ maxTokens: 300 }).stream({
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'assistant', content: 'Hi, Luigi\'s, how can I help?' },
        { role: 'assistant', content: '' },
        { role: 'user', content: 'A table please.' },
      ],
      tools: [],
      temperature: 0.5,
    }, never()));
    expect(chunks[0]).toEqual({ type: 'text', text: 'Sure.' });
    const body = fake.lastRequest!.body as { messages: { role: string }[]; max_tokens: number };
    expect(body.messages.map((m) => m.role)).toEqual(['user', 'assistant', 'user']);
    expect(body.max_tokens).toBe(300);
    expect(body).not.toHaveProperty('tools');
    expect(body).not.toHaveProperty('tool_choice');
  });

  it('keeps an agent temperature above Anthropic\'s maximum within range', async () => {
    fake.reply({ text: ['Ok.'] });
    await drain(llm().stream({ messages: [{ role: 'user', content: 'Hi' }], tools: [], temperature: 1.4 }, never()));
    expect((fake.lastRequest!.body as Json).temperature).toBe(1);
  });

  it('a tool without parameters arrives with "{}" arguments', async () => {
    fake.reply({ toolCalls: [{ id: 'toolu_h', name: 'hours', arguments: [] }], usage: { input: 7, output: 2 } });
    const chunks = await drain(llm().stream({ messages: [{ role: 'user', content: 'When are you open?' }], tools: [], temperature: 0 }, never()));
    expect(chunks).toEqual([
      { type: 'tool_call', call: { id: 'toolu_h', name: 'hours', arguments: '{}' } },
      { type: 'usage', inputTokens: 7, outputTokens: 2 },
    ]);
  });

  it('a reply that started in time is not cut off by the first-token deadline', async () => {
    fake.hangNextAfterFirstChunk();
    fake.reply({ text: ['Hmm,', ' let me think'] });
    const ac = new AbortController();
    const it = createAnthropicLlm({ apiKey: VALID_KEY, baseUrl: fake.url }, { model: 'claude-3-5-haiku-latest', firstTokenTimeoutMs: 50 })
      .stream({ messages: [{ role: 'user', content: 'Hi' }], tools: [], temperature: 0 }, ac.signal)[Symbol.asyncIterator]();
    expect((await it.next()).value).toEqual({ type: 'text', text: 'Hmm,' });
    const next = it.next();
    await new Promise((r) => setTimeout(r, 200));
    const reason = new Error('caller barged in');
    ac.abort(reason);
    await expect(next).rejects.toBe(reason);
  });

  it('an overloaded_error event mid-stream is unavailable and retryable, after the text already streamed', async () => {
    fake.overloadNextMidStream();
    fake.reply({ text: ['Let me', ' see.'] });
    const got: LlmChunk[] = [];
    const err = await failure((async () => { for await (const c of llm().stream({ messages: [{ role: 'user', content: 'Hi' }], tools: [], temperature: 0 }, never())) got.push(c); })());
    expect(err).toBeInstanceOf(ProviderError);
    expect(err.kind).toBe('unavailable');
    expect(err.retryable).toBe(true);
    expect(got).toEqual([{ type: 'text', text: 'Let me' }]);
  });
});
