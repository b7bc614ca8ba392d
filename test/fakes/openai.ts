/**
 * A fake of OpenAI's Chat Completions endpoint as documented (API reference "Create chat completion",
 * "The chat completion chunk object", "Error codes"), configurable to stand in for the vendors that
 * speak the same protocol under another path and auth: DeepSeek (no /v1), Groq (/openai/v1), a keyless
 * local server, and Azure OpenAI (/openai/deployments/{id}/chat/completions?api-version=…, `api-key`).
 *
 * It validates what a client sends the way the vendor does — key, JSON body, model, message roles and
 * tool-call/tool-result pairing, tools schema, tool_choice without tools, temperature range,
 * stream_options without stream — and answers with the vendor's error bodies.
 */
import type http from 'node:http';
import type { FakeLlmControls } from '../providers/contract/harness.js';
import { json, sleep, startFakeServer, type FailureMode, type FakeServer } from './server.js';

export interface OpenAIChatFakeOptions {
  validKey: string;
  /** `bearer`: OpenAI and compatibles; `api-key`: Azure; `none`: a local server that takes no key. */
  auth?: 'bearer' | 'api-key' | 'none';
  /** What precedes /chat/completions: '/v1' (OpenAI, Together), '' (DeepSeek), '/openai/v1' (Groq). */
  prefix?: string;
  /** Serve Azure's deployment path; these api-versions are accepted. */
  azure?: { apiVersions: string[] };
}

type Reply = Parameters<FakeLlmControls['reply']>[0];
type Json = Record<string, unknown>;

class BadRequest extends Error {
  constructor(message: string, readonly param: string | null = null, readonly code: string | null = null) { super(message); }
}

/** The chat route alone, so a fake serving other OpenAI endpoints can mount it on its own server. */
export class OpenAIChatRoute {
  private replies: Reply[] = [];
  private failure?: FailureMode;
  private delayMs = 0;
  private drop = false;
  private hang = false;
  private endEarly = false;
  private errorMid = false;
  requests = 0;
  lastClientCloseAt: number | undefined;
  lastRequest: FakeLlmControls['lastRequest'];

  constructor(readonly opts: OpenAIChatFakeOptions) {}

  reply(r: Reply): void { this.replies.push(r); }
  failNext(mode: FailureMode): void { this.failure = mode; }
  delayNextFirstByte(ms: number): void { this.delayMs = ms; }
  dropNextMidStream(): void { this.drop = true; }
  hangNextAfterFirstChunk(): void { this.hang = true; }
  /** The next reply sends its first text delta, then ends the body cleanly: no finish_reason, no [DONE]. */
  endNextEarly(): void { this.endEarly = true; }
  /** The next reply sends its first text delta, then an error object in the stream (a server error mid-generation). */
  errorNextMidStream(): void { this.errorMid = true; }

  /** The credential as this vendor's auth style carries it. */
  keyOf(headers: http.IncomingHttpHeaders): string | undefined {
    if (this.opts.auth === 'api-key') return headers['api-key'] as string | undefined;
    return /^Bearer (.+)$/.exec(headers.authorization ?? '')?.[1];
  }

  /** Answers the request if it is for this route; false otherwise. */
  async handle(req: http.IncomingMessage, res: http.ServerResponse, raw: Buffer): Promise<boolean> {
    const url = new URL(req.url ?? '/', 'http://fake');
    const azure = this.opts.azure;
    const deployment = azure ? /^\/openai\/deployments\/([^/]+)\/chat\/completions$/.exec(url.pathname)?.[1] : undefined;
    if (azure ? !deployment : url.pathname !== `${this.opts.prefix ?? '/v1'}/chat/completions`) return false;
    this.requests++;
    let body: unknown;
    try { body = JSON.parse(raw.toString('utf8')); } catch { body = raw.toString('utf8'); }
    this.lastRequest = { path: `${url.pathname}${url.search}`, headers: req.headers, body };
    if (req.method !== 'POST') { this.error(res, 405, 'Method not allowed', 'invalid_request_error'); return true; }
    if (azure && !azure.apiVersions.includes(url.searchParams.get('api-version') ?? '')) {
      // Azure answers an unknown or missing api-version like an unknown path.
      json(res, 404, { error: { code: '404', message: 'Resource not found' } });
      return true;
    }
    if (!this.authorized(req, res)) return true;
    const failure = this.failure;
    this.failure = undefined;
    if (failure) { this.fail(res, failure); return true; }
    let params: Json;
    try {
      params = this.validate(body, req.headers['content-type']);
    } catch (err) {
      if (!(err instanceof BadRequest)) throw err;
      this.error(res, 400, err.message, 'invalid_request_error', err.param, err.code);
      return true;
    }
    await this.stream(req, res, params);
    return true;
  }

  private authorized(req: http.IncomingMessage, res: http.ServerResponse): boolean {
    if (this.opts.auth === 'none') return true;
    const key = this.keyOf(req.headers);
    if (key === this.opts.validKey) return true;
    if (this.opts.auth === 'api-key') {
      json(res, 401, { error: { code: '401', message: 'Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.' } });
    } else if (!key) {
      this.error(res, 401, "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).", 'invalid_request_error');
    } else {
      this.error(res, 401, `Incorrect API key provided: ${mask(key)}. You can find your API key at https://platform.openai.com/account/api-keys.`, 'invalid_request_error', null, 'invalid_api_key');
    }
    return false;
  }

  private fail(res: http.ServerResponse, mode: FailureMode): void {
    const azure = !!this.opts.azure;
    if (mode === 'auth') {
      if (azure) json(res, 401, { error: { code: '401', message: 'Access denied due to invalid subscription key or wrong API endpoint.' } });
      else this.error(res, 401, 'Incorrect API key provided: sk-revo*****ked. You can find your API key at https://platform.openai.com/account/api-keys.', 'invalid_request_error', null, 'invalid_api_key');
    } else if (mode === 'quota') {
      if (azure) json(res, 429, { error: { code: '429', message: 'Requests to the ChatCompletions_Create Operation under Azure OpenAI API have exceeded token rate limit of your current pricing tier. Please retry after 1 second.' } }, { 'retry-after': '1' });
      else this.error(res, 429, 'Rate limit reached for requests. Limit: 3, Used: 3, Requested: 1.', 'requests', null, 'rate_limit_exceeded', { 'retry-after': '1' });
    } else {
      if (azure) json(res, 500, { error: { code: 'InternalServerError', message: 'The service is temporarily unable to process your request. Please try again later.' } });
      else this.error(res, 500, 'The server had an error while processing your request. Sorry about that!', 'server_error');
    }
  }

  private error(res: http.ServerResponse, status: number, message: string, type: string, param: string | null = null, code: string | null = null, headers: Record<string, string> = {}): void {
    json(res, status, { error: { message, type, param, code } }, headers);
  }

  private validate(body: unknown, contentType: string | undefined): Json {
    if (!contentType?.startsWith('application/json') || !isObj(body)) {
      throw new BadRequest('We could not parse the JSON body of your request. (HINT: This likely means you aren\'t using your HTTP library correctly. The OpenAI API expects a JSON payload.)');
    }
    if (!this.opts.azure && (typeof body.model !== 'string' || !body.model)) throw new BadRequest('you must provide a model parameter', 'model');
    const messages = body.messages;
    if (!Array.isArray(messages) || messages.length === 0) throw new BadRequest(`${JSON.stringify(messages ?? null)} is too short - 'messages'`, 'messages', 'empty_array');
    validateMessages(messages);
    if (body.temperature !== undefined && (typeof body.temperature !== 'number' || body.temperature < 0 || body.temperature > 2)) {
      throw new BadRequest(`${JSON.stringify(body.temperature)} is greater than the maximum of 2 - 'temperature'`, 'temperature', 'decimal_above_max_value');
    }
    if (body.stream_options !== undefined && body.stream !== true) {
      throw new BadRequest("The 'stream_options' parameter is only allowed when 'stream' is enabled.", 'stream_options', 'invalid_value');
    }
    // Non-streaming answers are outside this fake: every adapter here streams.
    if (body.stream !== true) throw new BadRequest('this fake serves stream: true only', 'stream');
    if (body.tools !== undefined) validateTools(body.tools);
    if (body.tool_choice !== undefined && !(Array.isArray(body.tools) && body.tools.length)) {
      throw new BadRequest("Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.", 'tool_choice');
    }
    return body;
  }

  private async stream(req: http.IncomingMessage, res: http.ServerResponse, params: Json): Promise<void> {
    const reply = this.replies.shift() ?? { text: ['Hello there.'] };
    const delay = this.delayMs, drop = this.drop, hang = this.hang, endEarly = this.endEarly, errorMid = this.errorMid;
    this.delayMs = 0; this.drop = false; this.hang = false; this.endEarly = false; this.errorMid = false;
    let closedByClient = false;
    let droppedByUs = false;
    const gone = new Promise<void>((resolve) => res.on('close', () => {
      if (!res.writableFinished && !droppedByUs) { closedByClient = true; this.lastClientCloseAt = performance.now(); }
      resolve();
    }));
    if (delay) await Promise.race([sleep(delay), gone]);
    if (closedByClient) return;

    const includeUsage = isObj(params.stream_options) && params.stream_options.include_usage === true;
    const id = `chatcmpl-${Math.random().toString(36).slice(2, 14)}`;
    const model = this.opts.azure ? 'gpt-4o-mini-2024-07-18' : String(params.model);
    const created = Math.floor(Date.now() / 1000);
    const chunk = (delta: Json, finish: string | null = null): Json => ({
      id, object: 'chat.completion.chunk', created, model, system_fingerprint: 'fp_fake',
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
      ...(includeUsage ? { usage: null } : {}),
    });
    const send = async (data: unknown) => {
      if (closedByClient) return;
      res.write(`data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`);
      await sleep(2);
    };

    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-request-id': `req_${id}` });
    if (this.opts.azure) await send({ choices: [], created: 0, id: '', model: '', object: '', prompt_filter_results: [{ prompt_index: 0, content_filter_results: {} }] });
    await send(chunk({ role: 'assistant', content: '', refusal: null }));
    const texts = reply.text ?? [];
    for (let i = 0; i < texts.length; i++) {
      await send(chunk({ content: texts[i] }));
      if (i > 0) continue;
      if (drop) { droppedByUs = true; res.socket?.destroy(); return; }
      if (hang) { await gone; return; }
      if (endEarly) { res.end(); return; }
      if (errorMid) {
        await send({ error: { message: 'The server had an error while processing your request. Sorry about that!', type: 'server_error', param: null, code: null } });
        res.end();
        return;
      }
    }
    const calls = reply.toolCalls ?? [];
    for (const [index, call] of calls.entries()) {
      await send(chunk({ tool_calls: [{ index, id: call.id, type: 'function', function: { name: call.name, arguments: '' } }] }));
      for (const piece of call.arguments) await send(chunk({ tool_calls: [{ index, function: { arguments: piece } }] }));
    }
    await send(chunk({}, calls.length ? 'tool_calls' : 'stop'));
    if (includeUsage) {
      const usage = reply.usage ?? { input: 12, output: texts.length + calls.length };
      await send({
        id, object: 'chat.completion.chunk', created, model, system_fingerprint: 'fp_fake', choices: [],
        usage: { prompt_tokens: usage.input, completion_tokens: usage.output, total_tokens: usage.input + usage.output },
      });
    }
    await send('[DONE]');
    if (!closedByClient) res.end();
  }
}

function validateMessages(messages: unknown[]): void {
  let awaiting: string[] = [];
  for (const [i, m] of messages.entries()) {
    if (!isObj(m)) throw new BadRequest(`Invalid type for 'messages[${i}]': expected an object.`, `messages[${i}]`);
    const role = m.role;
    if (awaiting.length && role !== 'tool') {
      throw new BadRequest(`An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: ${awaiting.join(', ')}`, 'messages', 'invalid_value');
    }
    switch (role) {
      case 'system': case 'developer': case 'user':
        if (typeof m.content !== 'string' && !Array.isArray(m.content)) throw new BadRequest(`Invalid type for 'messages[${i}].content'.`, `messages[${i}].content`);
        break;
      case 'assistant': {
        const calls = m.tool_calls;
        if (calls !== undefined) {
          if (!Array.isArray(calls) || !calls.length) throw new BadRequest(`Invalid 'messages[${i}].tool_calls': empty array.`, `messages[${i}].tool_calls`);
          for (const c of calls) {
            if (!isObj(c) || typeof c.id !== 'string' || c.type !== 'function' || !isObj(c.function)
              || typeof c.function.name !== 'string' || typeof c.function.arguments !== 'string') {
              throw new BadRequest(`Invalid 'messages[${i}].tool_calls': each needs id, type "function" and function {name, arguments}.`, `messages[${i}].tool_calls`);
            }
            awaiting.push(c.id);
          }
        }
        const content = m.content;
        if (!(typeof content === 'string' || Array.isArray(content) || (content === null && calls !== undefined) || (content === undefined && calls !== undefined))) {
          throw new BadRequest(`Invalid value for 'messages[${i}].content': expected a string or, with tool_calls, null.`, `messages[${i}].content`);
        }
        break;
      }
      case 'tool':
        if (typeof m.tool_call_id !== 'string' || !awaiting.includes(m.tool_call_id)) {
          throw new BadRequest("Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.", `messages.[${i}].role`);
        }
        if (typeof m.content !== 'string' && !Array.isArray(m.content)) throw new BadRequest(`Invalid type for 'messages[${i}].content'.`, `messages[${i}].content`);
        awaiting = awaiting.filter((id) => id !== m.tool_call_id);
        break;
      default:
        throw new BadRequest(`Invalid value: '${String(role)}'. Supported values are: 'system', 'assistant', 'user', 'tool', 'function', and 'developer'.`, `messages[${i}].role`, 'invalid_value');
    }
  }
  if (awaiting.length) {
    throw new BadRequest(`An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: ${awaiting.join(', ')}`, 'messages', 'invalid_value');
  }
}

function validateTools(tools: unknown): void {
  if (!Array.isArray(tools) || !tools.length) throw new BadRequest("[] is too short - 'tools'", 'tools', 'empty_array');
  for (const [i, t] of tools.entries()) {
    if (!isObj(t) || t.type !== 'function' || !isObj(t.function)) throw new BadRequest(`Missing required parameter: 'tools[${i}].function'.`, `tools[${i}].function`, 'missing_required_parameter');
    const fn = t.function;
    if (typeof fn.name !== 'string' || !/^[a-zA-Z0-9_-]{1,64}$/.test(fn.name)) {
      throw new BadRequest(`Invalid 'tools[${i}].function.name': string does not match pattern. Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'.`, `tools[${i}].function.name`, 'invalid_value');
    }
    if (fn.parameters !== undefined && (!isObj(fn.parameters) || fn.parameters.type !== 'object')) {
      throw new BadRequest(`Invalid schema for function '${fn.name}': schema must be a JSON Schema of 'type: "object"'.`, `tools[${i}].function.parameters`, 'invalid_function_parameters');
    }
  }
}

function isObj(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** OpenAI echoes a masked key in its 401 message. */
function mask(key: string): string {
  return key.length <= 8 ? '****' : `${key.slice(0, 3)}${'*'.repeat(key.length - 7)}${key.slice(-4)}`;
}

export interface OpenAIChatFake extends FakeLlmControls {
  url: string;
  route: OpenAIChatRoute;
  /** Requests the chat endpoint received. */
  readonly requests: number;
}

export async function startOpenAIChatFake(opts: OpenAIChatFakeOptions): Promise<OpenAIChatFake> {
  const route = new OpenAIChatRoute(opts);
  const server: FakeServer = await startFakeServer({
    http: async (req, res, body) => {
      if (!(await route.handle(req, res, body))) json(res, 404, { error: { message: `Invalid URL (${req.method} ${req.url})`, type: 'invalid_request_error', param: null, code: null } });
    },
  });
  return {
    url: server.url,
    route,
    reply: (r) => route.reply(r),
    failNext: (m) => route.failNext(m),
    delayNextFirstByte: (ms) => route.delayNextFirstByte(ms),
    dropNextMidStream: () => route.dropNextMidStream(),
    hangNextAfterFirstChunk: () => route.hangNextAfterFirstChunk(),
    get lastClientCloseAt() { return route.lastClientCloseAt; },
    get lastRequest() { return route.lastRequest; },
    get requests() { return route.requests; },
    close: () => server.close(),
  };
}
