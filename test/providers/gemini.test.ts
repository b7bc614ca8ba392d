import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProviderError, type LlmChunk, type LlmRequest } from '../../src/engine/types.js';
import { createGeminiLlm, toContents } from '../../src/providers/llm/gemini.js';
import { startGeminiFake, validateRequest, type GeminiFake } from '../fakes/gemini.js';
import { llmContract } from './contract/llm.js';
import { drain, failure, never, textOf } from './helpers.js';

type Body = {
  contents: { role: string; parts: Record<string, any>[] }[];
  systemInstruction?: { parts: { text: string }[] };
  generationConfig?: { temperature?: number };
  tools?: { functionDeclarations: { name: string; description?: string; parametersJsonSchema?: unknown; parameters?: unknown }[] }[];
};

llmContract('gemini', async () => {
  const fake = await startGeminiFake();
  return {
    make: (key, opts) => createGeminiLlm({ apiKey: key ?? fake.validKey, baseUrl: fake.url }, { model: opts?.model ?? 'gemini-2.5-flash', firstTokenTimeoutMs: opts?.firstTokenTimeoutMs }),
    validKey: fake.validKey,
    fake,
    lastKey: () => fake.lastRequest?.headers['x-goog-api-key'] as string | undefined,
    inspect: (raw) => {
      const body = raw as Body;
      const partText = (p: Record<string, any>) => p.text ?? (p.functionResponse ? JSON.stringify(p.functionResponse.response) : p.functionCall ? `${p.functionCall.name}(${JSON.stringify(p.functionCall.args)})` : '');
      return {
        system: body.systemInstruction?.parts.map((p) => p.text).join('\n'),
        messages: body.contents.map((c) => ({ role: c.role, text: c.parts.map(partText).join('\n') })),
        tools: (body.tools ?? []).flatMap((t) => t.functionDeclarations.map((d) => d.name)),
        temperature: body.generationConfig?.temperature,
      };
    },
  };
});

const ask = (over: Partial<LlmRequest> = {}): LlmRequest => ({
  messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Table for two?' }],
  tools: [],
  temperature: 0.4,
  ...over,
});

const bookTool = { name: 'book_table', description: 'Books a table', parameters: { type: 'object', properties: { n: { type: 'integer' } }, required: ['n'], additionalProperties: false } };

describe('Gemini adapter', () => {
  let fake: GeminiFake;
  const make = (key?: string) => createGeminiLlm({ apiKey: key ?? fake.validKey, baseUrl: fake.url }, { model: 'gemini-2.5-flash' });
  beforeAll(async () => { fake = await startGeminiFake(); });
  afterAll(async () => { await fake.close(); });

  it('calls streamGenerateContent over SSE for the configured model with the key in x-goog-api-key', async () => {
    fake.reply({ text: ['Yes.'] });
    await drain(make().stream(ask(), never()));
    expect(fake.lastRequest!.path).toBe('/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse');
    expect(fake.lastRequest!.headers['x-goog-api-key']).toBe(fake.validKey);
    const body = fake.lastRequest!.body as Body;
    expect(body.systemInstruction).toEqual({ parts: [{ text: 'Be brief.' }] });
    expect(body.contents).toEqual([{ role: 'user', parts: [{ text: 'Table for two?' }] }]);
    expect(body.generationConfig?.temperature).toBeCloseTo(0.4);
  });

  it('declares tools with their JSON schema as parametersJsonSchema', async () => {
    fake.reply({ text: ['ok'] });
    await drain(make().stream(ask({ tools: [bookTool] }), never()));
    const decl = (fake.lastRequest!.body as Body).tools![0].functionDeclarations[0];
    expect(decl).toEqual({ name: 'book_table', description: 'Books a table', parametersJsonSchema: bookTool.parameters });
  });

  it('a whole tool-call round trip is accepted: the call goes back as functionCall with its thought signature, the result as functionResponse', async () => {
    const llm = make();
    fake.reply({ toolCalls: [{ id: 'x', name: 'book_table', arguments: ['{"n":', '2}'] }] });
    const first = await drain(llm.stream(ask({ tools: [bookTool] }), never()));
    const call = first.find((c) => c.type === 'tool_call') as Extract<LlmChunk, { type: 'tool_call' }>;
    expect(call.call).toMatchObject({ name: 'book_table' });
    expect(JSON.parse(call.call.arguments)).toEqual({ n: 2 });
    const signature = fake.lastSignature;

    fake.reply({ text: ['Booked.'] });
    const second = await drain(llm.stream(ask({
      tools: [bookTool],
      messages: [
        ...ask().messages,
        { role: 'assistant', content: '', toolCalls: [call.call] },
        { role: 'tool', content: 'table 7', toolCallId: call.call.id },
      ],
    }), never()));
    expect(textOf(second)).toBe('Booked.');
    const body = fake.lastRequest!.body as Body;
    expect(body.contents[1]).toEqual({ role: 'model', parts: [{ functionCall: { name: 'book_table', args: { n: 2 } }, thoughtSignature: signature }] });
    expect(body.contents[2]).toEqual({ role: 'user', parts: [{ functionResponse: { name: 'book_table', response: { output: 'table 7' } } }] });
  });

  it('answers to parallel calls go back in one turn; a call from elsewhere gets the documented placeholder signature', () => {
    const { contents } = toContents([
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: 'Checking.', toolCalls: [{ id: 'a', name: 'one', arguments: '{}' }, { id: 'b', name: 'two', arguments: '{"x":1}' }] },
      { role: 'tool', content: '{"ok":true}', toolCallId: 'a' },
      { role: 'tool', content: '3', toolCallId: 'b' },
    ]);
    expect(contents[1].parts).toEqual([
      { text: 'Checking.' },
      { functionCall: { id: 'a', name: 'one', args: {} }, thoughtSignature: 'skip_thought_signature_validator' },
      { functionCall: { id: 'b', name: 'two', args: { x: 1 } } },
    ]);
    expect(contents[2]).toEqual({ role: 'user', parts: [
      { functionResponse: { id: 'a', name: 'one', response: { ok: true } } },
      { functionResponse: { id: 'b', name: 'two', response: { output: 3 } } },
    ] });
    expect(validateRequest({ contents })).toBeUndefined();
  });

  it('the fake rejects what Gemini rejects (so the mapping tests can fail)', () => {
    expect(validateRequest({ contents: [{ role: 'assistant', parts: [{ text: 'x' }] }] })).toMatch(/valid role/);
    expect(validateRequest({ contents: [{ role: 'user', parts: [{ functionResponse: { name: 'f', response: {} } }] }] })).toMatch(/number of function response parts/);
    expect(validateRequest({ contents: [{ role: 'user', parts: [{ text: 'x' }] }], generationConfig: { temperature: 3 } })).toMatch(/temperature/);
    expect(validateRequest({ contents: [{ role: 'user', parts: [{ text: 'x' }] }], model: 'm' })).toMatch(/Unknown name "model"/);
  });

  it('a key Google calls invalid (400 API_KEY_INVALID) is auth; 401 is auth; 500 is unavailable', async () => {
    const bad = await failure(drain(make('not-the-key').stream(ask(), never())));
    expect(bad.kind).toBe('auth');
    expect(bad.message).toContain('API key not valid');
    fake.failNextStatus(401);
    expect((await failure(drain(make().stream(ask(), never())))).kind).toBe('auth');
    fake.failNextStatus(500);
    const down = await failure(drain(make().stream(ask(), never())));
    expect(down.kind).toBe('unavailable');
    expect(down.retryable).toBe(true);
  });

  it('a malformed SSE event is a protocol error', async () => {
    fake.reply({ text: ['Fine.', ' Really.'] });
    fake.injectNextRaw('data: {not json\r\n\r\n');
    const err = await failure(drain(make().stream(ask(), never())));
    expect(err).toBeInstanceOf(ProviderError);
    expect(err.kind).toBe('protocol');
  });

  it('a consumer that stops reading early closes the upstream request', async () => {
    fake.hangNextAfterFirstChunk();
    fake.reply({ text: ['One.', ' Two.'] });
    const before = performance.now();
    for await (const c of make().stream(ask(), never())) {
      expect(c).toEqual({ type: 'text', text: 'One.' });
      break;
    }
    const deadline = Date.now() + 1000;
    while ((fake.lastClientCloseAt ?? 0) < before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    expect(fake.lastClientCloseAt).toBeGreaterThan(before);
  });
});
