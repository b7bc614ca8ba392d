/**
 * A fake of Anthropic's Messages API as documented ("Messages", "Streaming Messages", "Errors"):
 * POST /v1/messages with `x-api-key` and `anthropic-version`, answered with named SSE events
 * (message_start, ping, content_block_start/delta/stop, message_delta, message_stop, error).
 *
 * It validates the request the way the API does: key and version headers, model, max_tokens,
 * user/assistant roles only (system is top-level), a user turn first, non-empty text blocks, every
 * tool_use answered by tool_result blocks in the next turn (consecutive same-role turns are combined
 * first, as the API does), tools with an object input_schema, temperature within 0–1.
 */
import type http from 'node:http';
import type { FakeLlmControls } from '../providers/contract/harness.js';
import { json, sleep, startFakeServer, type FailureMode } from './server.js';

type Reply = Parameters<FakeLlmControls['reply']>[0];
type Json = Record<string, unknown>;

export const ANTHROPIC_VERSIONS = ['2023-01-01', '2023-06-01'];

export interface AnthropicFake extends FakeLlmControls {
  url: string;
  readonly requests: number;
  /** The next reply sends its first text delta, then an `error` event with overloaded_error. */
  overloadNextMidStream(): void;
}

class Invalid extends Error {}

export async function startAnthropicFake(validKey: string): Promise<AnthropicFake> {
  const replies: Reply[] = [];
  let failure: FailureMode | undefined;
  let delayMs = 0, drop = false, hang = false, overload = false;
  let requests = 0;
  let lastClientCloseAt: number | undefined;
  let lastRequest: FakeLlmControls['lastRequest'];

  const error = (res: http.ServerResponse, status: number, type: string, message: string, headers: Record<string, string> = {}) =>
    json(res, status, { type: 'error', error: { type, message }, request_id: `req_${Math.random().toString(36).slice(2, 12)}` }, headers);

  const server = await startFakeServer({
    http: async (req, res, raw) => {
      const url = new URL(req.url ?? '/', 'http://fake');
      if (url.pathname !== '/v1/messages' || req.method !== 'POST') return error(res, 404, 'not_found_error', 'Not found');
      requests++;
      let body: unknown;
      try { body = JSON.parse(raw.toString('utf8')); } catch { body = raw.toString('utf8'); }
      lastRequest = { path: url.pathname, headers: req.headers, body };

      const key = req.headers['x-api-key'];
      if (!key) return error(res, 401, 'authentication_error', 'x-api-key header is required');
      if (key !== validKey) return error(res, 401, 'authentication_error', 'invalid x-api-key');
      const version = req.headers['anthropic-version'];
      if (!version) return error(res, 400, 'invalid_request_error', 'anthropic-version: header is required');
      if (!ANTHROPIC_VERSIONS.includes(String(version))) return error(res, 400, 'invalid_request_error', `anthropic-version: "${String(version)}" is not a valid version`);

      const mode = failure;
      failure = undefined;
      if (mode === 'auth') return error(res, 401, 'authentication_error', 'invalid x-api-key');
      if (mode === 'quota') return error(res, 429, 'rate_limit_error', 'Number of request tokens has exceeded your per-minute rate limit', { 'retry-after': '1' });
      if (mode === 'unavailable') return error(res, 529, 'overloaded_error', 'Overloaded');

      try {
        validate(body, req.headers['content-type']);
      } catch (err) {
        if (err instanceof Invalid) return error(res, 400, 'invalid_request_error', err.message);
        throw err;
      }
      const reply = replies.shift() ?? { text: ['Hello there.'] };
      const opts = { delay: delayMs, drop, hang, overload };
      delayMs = 0; drop = false; hang = false; overload = false;
      await stream(res, (body as Json).model as string, reply, opts, () => { lastClientCloseAt = performance.now(); });
    },
  });

  return {
    url: server.url,
    reply: (r) => { replies.push(r); },
    failNext: (m) => { failure = m; },
    delayNextFirstByte: (ms) => { delayMs = ms; },
    dropNextMidStream: () => { drop = true; },
    hangNextAfterFirstChunk: () => { hang = true; },
    overloadNextMidStream: () => { overload = true; },
    get lastClientCloseAt() { return lastClientCloseAt; },
    get lastRequest() { return lastRequest; },
    get requests() { return requests; },
    close: () => server.close(),
  };
}

async function stream(res: http.ServerResponse, model: string, reply: Reply, o: { delay: number; drop: boolean; hang: boolean; overload: boolean }, onClientClose: () => void): Promise<void> {
  let closedByClient = false, droppedByUs = false;
  const gone = new Promise<void>((resolve) => res.on('close', () => {
    if (!res.writableFinished && !droppedByUs) { closedByClient = true; onClientClose(); }
    resolve();
  }));
  if (o.delay) await Promise.race([sleep(o.delay), gone]);
  if (closedByClient) return;

  const send = async (event: string, data: Json) => {
    if (closedByClient) return;
    res.write(`event: ${event}\ndata: ${JSON.stringify({ type: event, ...data })}\n\n`);
    await sleep(2);
  };
  const usage = reply.usage ?? { input: 12, output: 5 };
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', 'request-id': `req_${Date.now()}` });
  await send('message_start', {
    message: {
      id: `msg_${Math.random().toString(36).slice(2, 14)}`, type: 'message', role: 'assistant', content: [], model,
      stop_reason: null, stop_sequence: null, usage: { input_tokens: usage.input, output_tokens: 1 },
    },
  });
  await send('ping', {});
  let index = 0;
  const texts = reply.text ?? [];
  if (texts.length) {
    await send('content_block_start', { index, content_block: { type: 'text', text: '' } });
    for (let i = 0; i < texts.length; i++) {
      await send('content_block_delta', { index, delta: { type: 'text_delta', text: texts[i] } });
      if (i > 0) continue;
      if (o.drop) { droppedByUs = true; res.socket?.destroy(); return; }
      if (o.hang) { await gone; return; }
      if (o.overload) {
        await send('error', { error: { type: 'overloaded_error', message: 'Overloaded' } });
        res.end();
        return;
      }
    }
    await send('content_block_stop', { index });
    index++;
  }
  for (const call of reply.toolCalls ?? []) {
    await send('content_block_start', { index, content_block: { type: 'tool_use', id: call.id, name: call.name, input: {} } });
    for (const piece of ['', ...call.arguments]) await send('content_block_delta', { index, delta: { type: 'input_json_delta', partial_json: piece } });
    await send('content_block_stop', { index });
    index++;
  }
  await send('message_delta', { delta: { stop_reason: reply.toolCalls?.length ? 'tool_use' : 'end_turn', stop_sequence: null }, usage: { output_tokens: usage.output } });
  await send('message_stop', {});
  if (!closedByClient) res.end();
}

function validate(body: unknown, contentType: string | undefined): void {
  if (!contentType?.startsWith('application/json') || !isObj(body)) throw new Invalid('Request body must be valid JSON');
  if (typeof body.model !== 'string' || !body.model) throw new Invalid('model: Field required');
  if (!Number.isInteger(body.max_tokens) || (body.max_tokens as number) < 1) throw new Invalid('max_tokens: Field required');
  if (body.stream !== true) throw new Invalid('this fake serves stream: true only');
  if (body.temperature !== undefined && (typeof body.temperature !== 'number' || body.temperature < 0 || body.temperature > 1)) {
    throw new Invalid('temperature: Input should be less than or equal to 1');
  }
  if (body.system !== undefined && typeof body.system !== 'string' && !Array.isArray(body.system)) throw new Invalid('system: Input should be a valid string');
  if (!Array.isArray(body.messages) || !body.messages.length) throw new Invalid('messages: at least one message is required');
  const turns = combine(body.messages);
  if (turns[0].role !== 'user') throw new Invalid('messages: first message must use the "user" role');
  let pending: string[] = [];
  for (const [i, t] of turns.entries()) {
    const toolResults = t.blocks.filter((b) => b.type === 'tool_result').map((b) => String(b.tool_use_id));
    if (pending.length) {
      const missing = pending.filter((id) => !toolResults.includes(id));
      if (t.role !== 'user' || missing.length) {
        throw new Invalid(`messages.${i - 1}: \`tool_use\` ids were found without \`tool_result\` blocks immediately after: ${(missing.length ? missing : pending).join(', ')}. Each \`tool_use\` block must have a corresponding \`tool_result\` block in the next message.`);
      }
    }
    const unexpected = toolResults.filter((id) => !pending.includes(id));
    if (unexpected.length) {
      throw new Invalid(`messages.${i}.content: unexpected \`tool_use_id\` found in \`tool_result\` blocks: ${unexpected.join(', ')}. Each \`tool_result\` block must have a corresponding \`tool_use\` block in the previous message.`);
    }
    for (const b of t.blocks) {
      if (b.type === 'text' && (typeof b.text !== 'string' || !b.text)) throw new Invalid(`messages.${i}: text content blocks must be non-empty`);
      if (b.type === 'tool_use' && t.role !== 'assistant') throw new Invalid(`messages.${i}: tool_use blocks are only allowed in assistant messages`);
      if (b.type === 'tool_use' && (typeof b.id !== 'string' || typeof b.name !== 'string' || !isObj(b.input))) throw new Invalid(`messages.${i}: tool_use blocks need id, name and an object input`);
      if (b.type === 'tool_result' && t.role !== 'user') throw new Invalid(`messages.${i}: tool_result blocks are only allowed in user messages`);
    }
    pending = t.blocks.filter((b) => b.type === 'tool_use').map((b) => String(b.id));
  }
  if (pending.length) throw new Invalid(`messages.${turns.length - 1}: \`tool_use\` ids were found without \`tool_result\` blocks immediately after: ${pending.join(', ')}.`);
  if (body.tools !== undefined) {
    if (!Array.isArray(body.tools)) throw new Invalid('tools: Input should be a valid list');
    for (const [i, t] of body.tools.entries()) {
      if (!isObj(t) || typeof t.name !== 'string' || !/^[a-zA-Z0-9_-]{1,128}$/.test(t.name)) throw new Invalid(`tools.${i}.name: String should match pattern '^[a-zA-Z0-9_-]{1,128}$'`);
      if (!isObj(t.input_schema)) throw new Invalid(`tools.${i}.input_schema: Field required`);
      if (t.input_schema.type !== 'object') throw new Invalid(`tools.${i}.input_schema.type: Input should be 'object'`);
    }
  }
  if (body.tool_choice !== undefined && !(Array.isArray(body.tools) && body.tools.length)) throw new Invalid('tool_choice: may only be specified while providing tools');
}

/** Roles checked, string content turned into a text block, consecutive same-role messages combined (as the API does). */
function combine(messages: unknown[]): { role: string; blocks: Json[] }[] {
  const turns: { role: string; blocks: Json[] }[] = [];
  for (const [i, m] of messages.entries()) {
    if (!isObj(m)) throw new Invalid(`messages.${i}: Input should be a valid dictionary`);
    if (m.role === 'system') throw new Invalid('messages: Unexpected role "system". The Messages API accepts a top-level `system` parameter, not "system" as an input message role.');
    if (m.role !== 'user' && m.role !== 'assistant') throw new Invalid(`messages.${i}.role: Input should be 'user' or 'assistant'`);
    const blocks = typeof m.content === 'string' ? [{ type: 'text', text: m.content }] : m.content;
    if (!Array.isArray(blocks) || !blocks.every(isObj)) throw new Invalid(`messages.${i}.content: Input should be a valid list`);
    const last = turns.at(-1);
    if (last?.role === m.role) last.blocks.push(...blocks);
    else turns.push({ role: m.role, blocks: [...blocks] });
  }
  return turns;
}

function isObj(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
