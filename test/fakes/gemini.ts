/**
 * A loopback Gemini Developer API: POST /v1beta/models/{model}:streamGenerateContent?alt=sse with the
 * key in `x-goog-api-key` (or `?key=`), answered as Gemini does — `data: <GenerateContentResponse>`
 * events separated by CRLF CRLF, the last one carrying finishReason and the final usageMetadata — and
 * Google's error bodies ({error:{code,message,status,details}}). A bad key is 400 INVALID_ARGUMENT with
 * reason API_KEY_INVALID, exactly as Google answers it. The request body is validated the way the API
 * does (roles, part shapes, function responses matching the calls of the turn before, tool
 * declarations, temperature range), so a wrong mapping fails with a 400 like the real service.
 */
import { performance } from 'node:perf_hooks';
import type http from 'node:http';
import { json, sleep, startFakeServer, type FailureMode, type FakeServer } from './server.js';
import type { FakeLlmControls } from '../providers/contract/harness.js';

type Reply = Parameters<FakeLlmControls['reply']>[0];

export interface GeminiFake extends FakeLlmControls {
  url: string;
  validKey: string;
  /** The next request is answered with this HTTP status and Google's matching error body. */
  failNextStatus(status: 400 | 401 | 403 | 429 | 500 | 503): void;
  /** The next reply sends this raw SSE text after its first chunk (to test malformed events). */
  injectNextRaw(text: string): void;
  /** The thought signature the fake put on the first function call of its last reply. */
  readonly lastSignature: string | undefined;
  readonly requests: number;
}

const ERRORS: Record<number, { status: string; message: string; details?: unknown[] }> = {
  400: { status: 'INVALID_ARGUMENT', message: 'API key not valid. Please pass a valid API key.', details: [
    { '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'API_KEY_INVALID', domain: 'googleapis.com', metadata: { service: 'generativelanguage.googleapis.com' } },
  ] },
  401: { status: 'UNAUTHENTICATED', message: 'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.' },
  404: { status: 'NOT_FOUND', message: 'Requested entity was not found.' },
  403: { status: 'PERMISSION_DENIED', message: 'Method doesn\'t allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.' },
  429: { status: 'RESOURCE_EXHAUSTED', message: 'You exceeded your current quota, please check your plan and billing details.', details: [
    { '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: '7s' },
  ] },
  500: { status: 'INTERNAL', message: 'An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting' },
  503: { status: 'UNAVAILABLE', message: 'The model is overloaded. Please try again later.' },
};

function googleError(res: http.ServerResponse, code: number, override?: string): void {
  const e = ERRORS[code] ?? { status: 'UNKNOWN', message: 'error' };
  json(res, code, { error: { code, message: override ?? e.message, status: e.status, ...(e.details ? { details: e.details } : {}) } });
}

const invalid = (res: http.ServerResponse, message: string) => googleError(res, 400, message);

const PART_FIELDS = ['text', 'inlineData', 'functionCall', 'functionResponse', 'fileData', 'executableCode', 'codeExecutionResult'];
const REQUEST_FIELDS = new Set(['contents', 'tools', 'toolConfig', 'safetySettings', 'systemInstruction', 'generationConfig', 'cachedContent']);
const NAME_RE = /^[a-zA-Z_][a-zA-Z0-9_.:-]{0,63}$/;
const isObject = (v: unknown): v is Record<string, unknown> => Boolean(v) && typeof v === 'object' && !Array.isArray(v);

/** What the API rejects with 400 INVALID_ARGUMENT, or undefined when the request is well formed. */
export function validateRequest(body: unknown): string | undefined {
  if (!isObject(body)) return 'Invalid JSON payload received.';
  for (const k of Object.keys(body)) if (!REQUEST_FIELDS.has(k)) return `Invalid JSON payload received. Unknown name "${k}": Cannot find field.`;
  const contents = body.contents;
  if (!Array.isArray(contents) || contents.length === 0) return '* GenerateContentRequest.contents: contents is not specified';
  let previous: Record<string, unknown> | undefined;
  for (const [i, c] of contents.entries()) {
    if (!isObject(c)) return `* GenerateContentRequest.contents[${i}]: invalid content`;
    if (c.role !== 'user' && c.role !== 'model') return `* GenerateContentRequest.contents[${i}].role: Please use a valid role: user, model.`;
    if (!Array.isArray(c.parts) || c.parts.length === 0) return `* GenerateContentRequest.contents[${i}].parts: contents.parts must not be empty.`;
    for (const [j, p] of (c.parts as unknown[]).entries()) {
      if (!isObject(p)) return `* GenerateContentRequest.contents[${i}].parts[${j}]: invalid part`;
      const data = PART_FIELDS.filter((f) => f in p);
      if (data.length !== 1) return `* GenerateContentRequest.contents[${i}].parts[${j}].data: required oneof field 'data' must have one initialized field`;
      if ('text' in p && typeof p.text !== 'string') return `* GenerateContentRequest.contents[${i}].parts[${j}].text: must be a string`;
      if ('functionCall' in p) {
        const fc = p.functionCall;
        if (c.role !== 'model') return `* GenerateContentRequest.contents[${i}].parts[${j}]: function call parts are only allowed in model turns`;
        if (!isObject(fc) || typeof fc.name !== 'string' || !NAME_RE.test(fc.name)) return `* GenerateContentRequest.contents[${i}].parts[${j}].function_call.name: Invalid function name.`;
        if (fc.args !== undefined && !isObject(fc.args)) return `* GenerateContentRequest.contents[${i}].parts[${j}].function_call.args: must be an object`;
      }
      if ('functionResponse' in p) {
        const fr = p.functionResponse;
        if (!isObject(fr) || typeof fr.name !== 'string' || !NAME_RE.test(fr.name)) return `* GenerateContentRequest.contents[${i}].parts[${j}].function_response.name: Invalid function name.`;
        if (!isObject(fr.response)) return `* GenerateContentRequest.contents[${i}].parts[${j}].function_response.response: must be an object`;
      }
    }
    const responses = (c.parts as Record<string, unknown>[]).filter((p) => 'functionResponse' in p);
    if (responses.length) {
      const calls = previous?.role === 'model' ? (previous.parts as Record<string, unknown>[]).filter((p) => 'functionCall' in p) : [];
      if (calls.length !== responses.length) {
        return 'Please ensure that the number of function response parts is equal to the number of function call parts of the function call turn.';
      }
      const names = calls.map((p) => (p.functionCall as { name: string }).name).sort();
      const answered = responses.map((p) => (p.functionResponse as { name: string }).name).sort();
      if (names.join() !== answered.join()) return 'Please ensure that function response turn comes immediately after a function call turn, with matching names.';
    }
    previous = c;
  }
  const si = body.systemInstruction;
  if (si !== undefined && (!isObject(si) || !Array.isArray(si.parts) || !si.parts.every((p) => isObject(p) && typeof p.text === 'string'))) {
    return '* GenerateContentRequest.system_instruction: only text parts are supported';
  }
  const gc = body.generationConfig;
  if (gc !== undefined) {
    if (!isObject(gc)) return 'Invalid JSON payload received. generationConfig';
    if (gc.temperature !== undefined && (typeof gc.temperature !== 'number' || gc.temperature < 0 || gc.temperature > 2)) {
      return '* GenerateContentRequest.generation_config.temperature: must be in [0, 2]';
    }
  }
  if (body.tools !== undefined) {
    if (!Array.isArray(body.tools)) return 'Invalid JSON payload received. tools';
    for (const t of body.tools) {
      if (!isObject(t) || !Array.isArray(t.functionDeclarations)) return '* GenerateContentRequest.tools: unsupported tool';
      for (const [k, d] of (t.functionDeclarations as unknown[]).entries()) {
        if (!isObject(d) || typeof d.name !== 'string' || !NAME_RE.test(d.name)) return `* GenerateContentRequest.tools[0].function_declarations[${k}].name: Invalid function name.`;
        if (d.parameters !== undefined && d.parametersJsonSchema !== undefined) {
          return `* GenerateContentRequest.tools[0].function_declarations[${k}]: parameters and parameters_json_schema are mutually exclusive`;
        }
        const schema = d.parametersJsonSchema ?? d.parameters;
        if (schema !== undefined && (!isObject(schema) || schema.type === undefined)) return `* GenerateContentRequest.tools[0].function_declarations[${k}].parameters: schema needs a type`;
      }
    }
  }
  return undefined;
}

export async function startGeminiFake(validKey = 'gemini-test-key'): Promise<GeminiFake> {
  const replies: Reply[] = [];
  let failNext: number | undefined;
  let delayNext = 0;
  let dropNext = false;
  let hangNext = false;
  let rawNext: string | undefined;
  let lastClientCloseAt: number | undefined;
  let lastRequest: FakeLlmControls['lastRequest'];
  let lastSignature: string | undefined;
  let requests = 0;
  let seq = 0;

  const server: FakeServer = await startFakeServer({
    http: async (req, res, raw) => {
      const url = new URL(req.url ?? '/', 'http://fake');
      const m = /^\/v1beta\/models\/([^/:]+):streamGenerateContent$/.exec(url.pathname);
      if (!m || req.method !== 'POST') return googleError(res, 404);
      let body: unknown;
      try {
        body = JSON.parse(raw.toString('utf8'));
      } catch {
        return invalid(res, 'Invalid JSON payload received.');
      }
      requests++;
      lastRequest = { path: `${url.pathname}${url.search}`, headers: req.headers, body };
      res.on('close', () => { if (!res.writableFinished) lastClientCloseAt = performance.now(); });

      const key = (req.headers['x-goog-api-key'] as string | undefined) ?? url.searchParams.get('key') ?? undefined;
      if (!key) return googleError(res, 403);
      if (key !== validKey) return googleError(res, 400);
      if (failNext) { const code = failNext; failNext = undefined; return googleError(res, code); }
      if (url.searchParams.get('alt') !== 'sse') return invalid(res, 'This fake answers streamGenerateContent with alt=sse only.');
      if (!/application\/json/.test(req.headers['content-type'] ?? '')) return invalid(res, 'Invalid JSON payload received.');
      const problem = validateRequest(body);
      if (problem) return invalid(res, problem);

      const reply = replies.shift() ?? { text: ['OK.'] };
      const delay = delayNext; delayNext = 0;
      const drop = dropNext; dropNext = false;
      const hang = hangNext; hangNext = false;
      const rawExtra = rawNext; rawNext = undefined;
      if (delay) await sleep(delay);
      if (res.destroyed) return;

      const model = m[1];
      const responseId = `resp-${++seq}`;
      const prompt = reply.usage?.input ?? 12;
      const output = reply.usage?.output ?? 5;
      const chunks: Record<string, unknown>[] = [];
      const candidate = (parts: unknown[], last: boolean) => ({
        candidates: [{ content: { parts, role: 'model' }, ...(last ? { finishReason: 'STOP' } : {}), index: 0 }],
        usageMetadata: last
          ? { promptTokenCount: prompt, candidatesTokenCount: output, totalTokenCount: prompt + output }
          : { promptTokenCount: prompt, totalTokenCount: prompt },
        modelVersion: model,
        responseId,
      });
      const texts = reply.text ?? [];
      const calls = reply.toolCalls ?? [];
      // Gemini returns each function call whole; the first call of a turn carries a thought signature.
      lastSignature = calls.length ? Buffer.from(`sig-${responseId}`).toString('base64') : undefined;
      const callParts = calls.map((c, i) => ({
        functionCall: { name: c.name, args: JSON.parse(c.arguments.join('')) as unknown },
        ...(i === 0 ? { thoughtSignature: lastSignature } : {}),
      }));
      texts.forEach((t, i) => chunks.push(candidate([{ text: t }], i === texts.length - 1 && !callParts.length)));
      if (callParts.length) chunks.push(candidate(callParts, true));
      if (!chunks.length) chunks.push(candidate([{ text: '' }], true));

      res.writeHead(200, { 'content-type': 'text/event-stream', 'x-content-type-options': 'nosniff' });
      for (const [i, c] of chunks.entries()) {
        res.write(`data: ${JSON.stringify(c)}\r\n\r\n`);
        if (i === 0) {
          if (rawExtra !== undefined) res.write(rawExtra);
          if (drop) { await sleep(20); res.socket?.destroy(); return; }
          if (hang) { await new Promise<void>((r) => res.once('close', () => r())); return; }
        }
        await sleep(5);
      }
      res.end();
    },
  });

  return {
    url: server.url,
    validKey,
    reply: (r) => { replies.push(r); },
    failNext: (mode: FailureMode) => { failNext = mode === 'auth' ? 403 : mode === 'quota' ? 429 : 503; },
    failNextStatus: (status) => { failNext = status; },
    delayNextFirstByte: (ms) => { delayNext = ms; },
    dropNextMidStream: () => { dropNext = true; },
    hangNextAfterFirstChunk: () => { hangNext = true; },
    injectNextRaw: (text) => { rawNext = text; },
    get lastClientCloseAt() { return lastClientCloseAt; },
    get lastRequest() { return lastRequest; },
    get lastSignature() { return lastSignature; },
    get requests() { return requests; },
    close: () => server.close(),
  };
}
