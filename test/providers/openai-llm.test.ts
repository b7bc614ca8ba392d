/**
 * The OpenAI chat-completions adapter in each of its flavours — OpenAI, Azure OpenAI, DeepSeek,
 * Together, Groq and an OpenAI-compatible server — against the fake at each vendor's path and auth.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProviderError, type LlmChunk, type LlmRequest } from '../../src/engine/types.js';
import { createAzureOpenAILlm, createOpenAILlm } from '../../src/providers/llm/openai.js';
import type { VendorAccess } from '../../src/providers/types.js';
import { startOpenAIChatFake, type OpenAIChatFake, type OpenAIChatFakeOptions } from '../fakes/openai.js';
import { llmContract } from './contract/llm.js';
import type { LlmHarness } from './contract/harness.js';
import { drain, failure, never, textOf } from './helpers.js';

const VALID_KEY = 'sk-test-valid-key-0001';
const API_VERSION = '2024-10-21';

type Json = Record<string, unknown>;

/** Reads an OpenAI chat body back into the suite's neutral terms. */
function inspect(body: unknown): ReturnType<LlmHarness['inspect']> {
  const b = body as { messages: Json[]; tools?: { function: { name: string } }[]; temperature?: number; model?: string };
  const text = (c: unknown) => (typeof c === 'string' ? c : '');
  return {
    system: b.messages.filter((m) => m.role === 'system').map((m) => text(m.content)).join('\n'),
    messages: b.messages.filter((m) => m.role !== 'system').map((m) => ({ role: String(m.role), text: text(m.content) })),
    tools: (b.tools ?? []).map((t) => t.function.name),
    temperature: b.temperature,
    model: b.model,
  };
}

interface Flavour {
  name: string;
  fake: OpenAIChatFakeOptions;
  make: (fake: OpenAIChatFake, key: string, model: string, firstTokenTimeoutMs?: number) => ReturnType<typeof createOpenAILlm>;
}

const plain = (prefix: string) => (fake: OpenAIChatFake, key: string, model: string, firstTokenTimeoutMs?: number) =>
  createOpenAILlm({ apiKey: key, baseUrl: `${fake.url}${prefix}` }, { model, firstTokenTimeoutMs });

const FLAVOURS: Flavour[] = [
  { name: 'openai', fake: { validKey: VALID_KEY, prefix: '/v1' }, make: plain('/v1') },
  {
    name: 'azure_openai',
    fake: { validKey: VALID_KEY, auth: 'api-key', azure: { apiVersions: [API_VERSION] } },
    make: (fake, key, model, firstTokenTimeoutMs) =>
      createAzureOpenAILlm({ apiKey: key, baseUrl: fake.url, extra: { api_version: API_VERSION } }, { model, firstTokenTimeoutMs }),
  },
  { name: 'deepseek', fake: { validKey: VALID_KEY, prefix: '' }, make: plain('') },
  { name: 'togetherai', fake: { validKey: VALID_KEY, prefix: '/v1' }, make: plain('/v1') },
  { name: 'groq', fake: { validKey: VALID_KEY, prefix: '/openai/v1' }, make: plain('/openai/v1') },
  // vLLM started with --api-key checks a Bearer key like OpenAI does.
  { name: 'openai_compatible', fake: { validKey: VALID_KEY, prefix: '/v1' }, make: plain('/v1') },
];

for (const f of FLAVOURS) {
  llmContract(f.name, async () => {
    const fake = await startOpenAIChatFake(f.fake);
    return {
      make: (key = VALID_KEY, opts = {}) => f.make(fake, key, opts.model ?? 'gpt-4o-mini', opts.firstTokenTimeoutMs),
      validKey: VALID_KEY,
      fake,
      lastKey: () => fake.route.keyOf(fake.lastRequest?.headers ?? {}),
      inspect,
    };
  });
}


const conversation: LlmRequest = {
  messages: [
    { role: 'system', content: 'You take bookings.' },
    { role: 'user', content: 'Table for two at eight?' },
    { role: 'assistant', content: 'One moment.', toolCalls: [{ id: 'call_a', name: 'check', arguments: '{"n":2}' }, { id: 'call_b', name: 'hours', arguments: '{}' }] },
    { role: 'tool', content: '{"free":true}', toolCallId: 'call_a' },
    { role: 'tool', content: '{"open":"18-23"}', toolCallId: 'call_b' },
    { role: 'assistant', content: 'Good news, we', interrupted: true },
    { role: 'user', content: 'Great, book it.' },
  ],
  tools: [
    { name: 'check', description: 'Checks a slot', parameters: { type: 'object', properties: { n: { type: 'integer' } } } },
    { name: 'hours', description: 'Opening hours', parameters: { type: 'object', properties: {} } },
  ],
  temperature: 0.4,
};

describe('OpenAI chat adapter: the wire request', () => {
  let fake: OpenAIChatFake;
  beforeAll(async () => { fake = await startOpenAIChatFake({ validKey: VALID_KEY, prefix: '/v1' }); });
  afterAll(async () => { await fake.close(); });

  it('sends the conversation in OpenAI\'s shapes: tool calls on the assistant turn, one tool message per result', async () => {
    fake.reply({ text: ['Booked.'] });
    await drain(createOpenAILlm({ apiKey: VALID_KEY, baseUrl: `${fake.url}/v1` }, { model: 'gpt-4o-mini' }).stream(conversation, never()));
    const body = fake.lastRequest!.body as Json;
    expect(body.messages).toEqual([
      { role: 'system', content: 'You take bookings.' },
      { role: 'user', content: 'Table for two at eight?' },
      {
        role: 'assistant', content: 'One moment.', tool_calls: [
          { id: 'call_a', type: 'function', function: { name: 'check', arguments: '{"n":2}' } },
          { id: 'call_b', type: 'function', function: { name: 'hours', arguments: '{}' } },
        ],
      },
      { role: 'tool', tool_call_id: 'call_a', content: '{"free":true}' },
      { role: 'tool', tool_call_id: 'call_b', content: '{"open":"18-23"}' },
      { role: 'assistant', content: 'Good news, we' },
      { role: 'user', content: 'Great, book it.' },
    ]);
    expect(body.tools).toEqual([
      { type: 'function', function: { name: 'check', description: 'Checks a slot', parameters: { type: 'object', properties: { n: { type: 'integer' } } } } },
      { type: 'function', function: { name: 'hours', description: 'Opening hours', parameters: { type: 'object', properties: {} } } },
    ]);
    expect(body).toMatchObject({ model: 'gpt-4o-mini', stream: true, stream_options: { include_usage: true }, tool_choice: 'auto', temperature: 0.4 });
    expect(fake.lastRequest!.headers.authorization).toBe(`Bearer ${VALID_KEY}`);
  });

  it('sends no tools and no tool_choice when the agent has no tools', async () => {
    fake.reply({ text: ['Hi.'] });
    await drain(createOpenAILlm({ apiKey: VALID_KEY, baseUrl: `${fake.url}/v1` }, { model: 'gpt-4o-mini' })
      .stream({ messages: [{ role: 'user', content: 'Hello?' }], tools: [], temperature: 0 }, never()));
    const body = fake.lastRequest!.body as Json;
    expect(body).not.toHaveProperty('tools');
    expect(body).not.toHaveProperty('tool_choice');
  });

  it('sends the organization from the connection', async () => {
    fake.reply({ text: ['Hi.'] });
    await drain(createOpenAILlm({ apiKey: VALID_KEY, baseUrl: `${fake.url}/v1`, extra: { organization: 'org-123' } }, { model: 'gpt-4o-mini' })
      .stream({ messages: [{ role: 'user', content: 'Hello?' }], tools: [], temperature: 0 }, never()));
    expect(fake.lastRequest!.headers['openai-organization']).toBe('org-123');
  });

  it('emits a tool call that arrives without text, then the usage', async () => {
    fake.reply({ toolCalls: [{ id: 'call_z', name: 'hours', arguments: ['{', '}'] }], usage: { input: 5, output: 3 } });
    const chunks = await drain(createOpenAILlm({ apiKey: VALID_KEY, baseUrl: `${fake.url}/v1` }, { model: 'gpt-4o-mini' }).stream(conversation, never()));
    expect(chunks).toEqual([
      { type: 'tool_call', call: { id: 'call_z', name: 'hours', arguments: '{}' } },
      { type: 'usage', inputTokens: 5, outputTokens: 3 },
    ]);
  });

  it('a body that ends before the finish_reason is a network error, not a finished reply', async () => {
    fake.route.endNextEarly();
    fake.reply({ text: ['We have', ' a table.'] });
    const got: LlmChunk[] = [];
    const err = await failure((async () => { for await (const c of createOpenAILlm({ apiKey: VALID_KEY, baseUrl: `${fake.url}/v1` }, { model: 'gpt-4o-mini' }).stream(conversation, never())) got.push(c); })());
    expect(err).toBeInstanceOf(ProviderError);
    expect(err.kind).toBe('network');
    expect(got).toEqual([{ type: 'text', text: 'We have' }]);
  });

  it('a server error reported inside the stream is unavailable and retryable, after the text already streamed', async () => {
    fake.route.errorNextMidStream();
    fake.reply({ text: ['Let me', ' check.'] });
    const got: LlmChunk[] = [];
    const err = await failure((async () => { for await (const c of createOpenAILlm({ apiKey: VALID_KEY, baseUrl: `${fake.url}/v1` }, { model: 'gpt-4o-mini' }).stream(conversation, never())) got.push(c); })());
    expect(err).toBeInstanceOf(ProviderError);
    expect(err.kind).toBe('unavailable');
    expect(err.retryable).toBe(true);
    expect(got).toEqual([{ type: 'text', text: 'Let me' }]);
  });

  it('a reply that started in time is not cut off by the first-token deadline', async () => {
    fake.hangNextAfterFirstChunk();
    fake.reply({ text: ['Hmm,', ' let me think'] });
    const ac = new AbortController();
    const it = createOpenAILlm({ apiKey: VALID_KEY, baseUrl: `${fake.url}/v1` }, { model: 'gpt-4o-mini', firstTokenTimeoutMs: 50 })
      .stream(conversation, ac.signal)[Symbol.asyncIterator]();
    expect((await it.next()).value).toEqual({ type: 'text', text: 'Hmm,' });
    const next = it.next();
    await new Promise((r) => setTimeout(r, 200));
    const reason = new Error('caller barged in');
    ac.abort(reason);
    await expect(next).rejects.toBe(reason);
  });

  it('a request the vendor rejects as malformed is a protocol error, not retryable', async () => {
    const err = await failure(drain(createOpenAILlm({ apiKey: VALID_KEY, baseUrl: `${fake.url}/v1` }, { model: 'gpt-4o-mini' })
      .stream({ messages: [{ role: 'tool', content: 'orphan', toolCallId: 'call_missing' }], tools: [], temperature: 0 }, never())));
    expect(err).toBeInstanceOf(ProviderError);
    expect(err.kind).toBe('protocol');
    expect(err.retryable).toBe(false);
  });
});

describe('OpenAI-compatible server without a key', () => {
  let fake: OpenAIChatFake;
  beforeAll(async () => { fake = await startOpenAIChatFake({ validKey: '', auth: 'none', prefix: '/v1' }); });
  afterAll(async () => { await fake.close(); });

  it('streams a reply and sends no Authorization header', async () => {
    fake.reply({ text: ['Local', ' model', ' here.'] });
    const access: VendorAccess = { apiKey: '', baseUrl: `${fake.url}/v1` };
    const chunks = await drain(createOpenAILlm(access, { model: 'llama3.1' }).stream({ messages: [{ role: 'user', content: 'Hi' }], tools: [], temperature: 0.2 }, never()));
    expect(textOf(chunks)).toBe('Local model here.');
    expect(fake.lastRequest!.headers.authorization).toBeUndefined();
    expect((fake.lastRequest!.body as Json).model).toBe('llama3.1');
  });
});

describe('Azure OpenAI', () => {
  let fake: OpenAIChatFake;
  beforeAll(async () => { fake = await startOpenAIChatFake({ validKey: VALID_KEY, auth: 'api-key', azure: { apiVersions: [API_VERSION] } }); });
  afterAll(async () => { await fake.close(); });

  it('calls the stored deployment with the api-version query and the api-key header only', async () => {
    fake.reply({ text: ['Hello from Azure.'] });
    const llm = createAzureOpenAILlm({ apiKey: VALID_KEY, baseUrl: `${fake.url}/`, extra: { api_version: API_VERSION, deployment: 'prod-gpt4o' } }, { model: 'gpt-4o' });
    const chunks = await drain(llm.stream({ messages: [{ role: 'user', content: 'Hi' }], tools: [], temperature: 0.5 }, never()));
    expect(chunks[0]).toEqual({ type: 'text', text: 'Hello from Azure.' });
    expect(fake.lastRequest!.path).toBe(`/openai/deployments/prod-gpt4o/chat/completions?api-version=${API_VERSION}`);
    expect(fake.lastRequest!.headers['api-key']).toBe(VALID_KEY);
    expect(fake.lastRequest!.headers.authorization).toBeUndefined();
  });

  it('an api-version the resource does not serve fails as a protocol error', async () => {
    const llm = createAzureOpenAILlm({ apiKey: VALID_KEY, baseUrl: fake.url, extra: { api_version: '2019-01-01' } }, { model: 'gpt-4o' });
    const err = await failure(drain(llm.stream({ messages: [{ role: 'user', content: 'Hi' }], tools: [], temperature: 0.5 }, never())));
    expect(err).toBeInstanceOf(ProviderError);
    expect(err.kind).toBe('protocol');
  });
});
