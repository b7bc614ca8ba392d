/**
 * The language-model contract every adapter passes against its vendor's fake: text streams in order,
 * tool calls arrive assembled however the vendor splits them, usage is reported, the conversation is
 * mapped faithfully, an abort closes the upstream request within 50 ms, and failures are typed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProviderError, type LlmChunk, type LlmRequest } from '../../../src/engine/types.js';
import { drain, failure, textOf as text } from '../helpers.js';
import type { LlmHarness } from './harness.js';

const request = (over: Partial<LlmRequest> = {}): LlmRequest => ({
  messages: [
    { role: 'system', content: 'You are a booking assistant for Luigi\'s.' },
    { role: 'user', content: 'Hi, do you have a table tonight?' },
  ],
  tools: [],
  temperature: 0.3,
  ...over,
});

export function llmContract(name: string, makeHarness: () => Promise<LlmHarness>): void {
  describe(`LLM contract: ${name}`, () => {
    let h: LlmHarness;
    beforeAll(async () => { h = await makeHarness(); });
    afterAll(async () => { await h?.fake.close(); });

    it('streams text deltas in order, then reports usage', async () => {
      h.fake.reply({ text: ['We do', ' have', ' a table', ' at eight.'], usage: { input: 31, output: 9 } });
      const chunks = await drain(h.make().stream(request(), new AbortController().signal));
      expect(text(chunks)).toBe('We do have a table at eight.');
      expect(chunks.filter((c) => c.type === 'text').length).toBeGreaterThanOrEqual(2);
      const usage = chunks.filter((c) => c.type === 'usage');
      expect(usage).toEqual([{ type: 'usage', inputTokens: 31, outputTokens: 9 }]);
      expect(chunks.at(-1)?.type).toBe('usage');
      expect(h.lastKey()).toBe(h.validKey);
    });

    it('assembles tool calls whose arguments arrive in pieces, each emitted once', async () => {
      h.fake.reply({
        text: ['Let me check.'],
        toolCalls: [
          { id: 'call_1', name: 'check_availability', arguments: ['{"par', 'ty_size"', ': 2, "time"', ': "20:00"}'] },
          { id: 'call_2', name: 'lookup_customer', arguments: ['{"phone": ', '"+15551234567"}'] },
        ],
        usage: { input: 50, output: 20 },
      });
      const tools = [
        { name: 'check_availability', description: 'Checks a slot', parameters: { type: 'object', properties: { party_size: { type: 'integer' }, time: { type: 'string' } }, required: ['party_size'] } },
        { name: 'lookup_customer', description: 'Finds a customer', parameters: { type: 'object', properties: { phone: { type: 'string' } } } },
      ];
      const chunks = await drain(h.make().stream(request({ tools }), new AbortController().signal));
      const calls = chunks.filter((c) => c.type === 'tool_call').map((c) => (c as { call: { id: string; name: string; arguments: string } }).call);
      expect(calls.map((c) => c.name)).toEqual(['check_availability', 'lookup_customer']);
      expect(JSON.parse(calls[0].arguments)).toEqual({ party_size: 2, time: '20:00' });
      expect(JSON.parse(calls[1].arguments)).toEqual({ phone: '+15551234567' });
      expect(calls[0].id).toBeTruthy();
      expect(calls[0].id).not.toBe(calls[1].id);
      expect(text(chunks)).toBe('Let me check.');
      expect(h.inspect(h.fake.lastRequest!.body).tools).toEqual(['check_availability', 'lookup_customer']);
    });

    it('sends the system prompt, the turns, tool results and the temperature as the vendor expects', async () => {
      h.fake.reply({ text: ['Done.'] });
      await drain(h.make().stream(request({
        messages: [
          { role: 'system', content: 'Be brief.' },
          { role: 'user', content: 'Book me for two.' },
          { role: 'assistant', content: 'Checking.', toolCalls: [{ id: 'call_9', name: 'book', arguments: '{"n":2}' }] },
          { role: 'tool', content: '{"ok":true}', toolCallId: 'call_9' },
          { role: 'assistant', content: 'You are booked for', interrupted: true },
          { role: 'user', content: 'Thanks!' },
        ],
        tools: [{ name: 'book', description: 'Books', parameters: { type: 'object', properties: { n: { type: 'integer' } } } }],
        temperature: 0.7,
      }), new AbortController().signal));
      const seen = h.inspect(h.fake.lastRequest!.body);
      expect(seen.system).toContain('Be brief.');
      expect(seen.temperature).toBeCloseTo(0.7);
      const joined = seen.messages.map((m) => m.text).join('\n');
      for (const part of ['Book me for two.', '{"ok":true}', 'You are booked for', 'Thanks!']) expect(joined).toContain(part);
      expect(seen.messages.at(-1)).toMatchObject({ role: 'user' });
    });

    it('uses the request\'s model over the configured one', async () => {
      h.fake.reply({ text: ['ok'] });
      await drain(h.make(undefined, { model: 'configured-model' }).stream(request({ model: 'override-model' }), new AbortController().signal));
      const seen = h.inspect(h.fake.lastRequest!.body);
      const path = h.fake.lastRequest!.path;
      expect(`${seen.model ?? ''} ${path}`).toContain('override-model');
    });

    it('an abort closes the upstream request within 50 ms and ends the stream with the abort', async () => {
      h.fake.hangNextAfterFirstChunk();
      h.fake.reply({ text: ['Well,', ' this will never finish'] });
      const ac = new AbortController();
      const stream = h.make().stream(request(), ac.signal)[Symbol.asyncIterator]();
      const first = await stream.next();
      expect(first.done).toBe(false);
      const abortedAt = performance.now();
      ac.abort(new Error('caller barged in'));
      await expect(stream.next()).rejects.toThrow();
      const deadline = Date.now() + 1000;
      while (h.fake.lastClientCloseAt === undefined || h.fake.lastClientCloseAt < abortedAt) {
        if (Date.now() > deadline) throw new Error('the upstream request was never closed');
        await new Promise((r) => setTimeout(r, 2));
      }
      expect(h.fake.lastClientCloseAt - abortedAt).toBeLessThan(50);
    });

    it('an already-aborted signal sends nothing and rejects', async () => {
      const ac = new AbortController();
      ac.abort(new Error('gone'));
      const before = h.fake.lastRequest;
      await expect(drain(h.make().stream(request(), ac.signal))).rejects.toThrow();
      expect(h.fake.lastRequest).toBe(before);
    });

    it('a wrong key is an auth error that does not echo the key', async () => {
      const err = await failure(drain(h.make('sk-wrong-key-123').stream(request(), new AbortController().signal)));
      expect(err).toBeInstanceOf(ProviderError);
      expect(err.kind).toBe('auth');
      expect(err.message).not.toContain('sk-wrong-key-123');
    });

    it('a rate limit is a quota error; a server error is unavailable and retryable', async () => {
      h.fake.failNext('quota');
      const q = await failure(drain(h.make().stream(request(), new AbortController().signal)));
      expect(q).toBeInstanceOf(ProviderError);
      expect(q.kind).toBe('quota');
      h.fake.failNext('unavailable');
      const u = await failure(drain(h.make().stream(request(), new AbortController().signal)));
      expect(u).toBeInstanceOf(ProviderError);
      expect(u.kind).toBe('unavailable');
      expect(u.retryable).toBe(true);
    });

    it('a connection cut mid-stream is a network or protocol error after the text already received', async () => {
      h.fake.dropNextMidStream();
      h.fake.reply({ text: ['First part.', ' Second part.'] });
      const got: LlmChunk[] = [];
      const err = await failure((async () => { for await (const c of h.make().stream(request(), new AbortController().signal)) got.push(c); })());
      expect(err).toBeInstanceOf(ProviderError);
      expect(['network', 'protocol']).toContain(err.kind);
      expect(text(got)).toBe('First part.');
    });

    it('no first token within firstTokenTimeoutMs is a timeout error', async () => {
      h.fake.delayNextFirstByte(600);
      h.fake.reply({ text: ['late'] });
      const err = await failure(drain(h.make(undefined, { firstTokenTimeoutMs: 150 }).stream(request(), new AbortController().signal)));
      expect(err).toBeInstanceOf(ProviderError);
      expect(err.kind).toBe('timeout');
    });
  });
}
