/**
 * Gemini (Gemini Developer API) as a streaming LanguageModel, through the official @google/genai SDK.
 *
 * Followed:
 *  - "Gemini API reference: Generating content", models.streamGenerateContent (POST
 *    /v1beta/models/{model}:streamGenerateContent?alt=sse, x-goog-api-key) — https://ai.google.dev/api/generate-content
 *  - "Function calling with the Gemini API" (functionDeclarations, functionCall / functionResponse parts) —
 *    https://ai.google.dev/gemini-api/docs/function-calling
 *  - "Thought signatures" (signatures on functionCall parts must be sent back; the documented
 *    `skip_thought_signature_validator` placeholder when one is unknown) — https://ai.google.dev/gemini-api/docs/thought-signatures
 *  - "Troubleshooting guide" (error statuses: 400 INVALID_ARGUMENT incl. API_KEY_INVALID, 403 PERMISSION_DENIED,
 *    429 RESOURCE_EXHAUSTED, 500 INTERNAL, 503 UNAVAILABLE) — https://ai.google.dev/gemini-api/docs/troubleshooting
 *
 * The SDK's own retries and "automatic continuation" (silent re-requests after a dropped stream) are
 * turned off: the engine decides on retries and fallback.
 */
import { randomUUID } from 'node:crypto';
import { GoogleGenAI, type Content, type Part, type GenerateContentResponse } from '@google/genai';
import { ProviderError, type ChatMessage, type LlmChunk, type LlmRequest, type ProviderErrorKind } from '../../engine/types.js';
import { kindOfStatus } from '../errors.js';
import type { LlmProvider, VendorAccess } from '../types.js';
import { DEFAULT_FIRST_TOKEN_TIMEOUT_MS, UpstreamRequest } from './sdkStream.js';

const PROVIDER = 'gemini';
/** Documented stand-in for a function call whose real signature we no longer have. */
const SKIP_SIGNATURE = 'skip_thought_signature_validator';
/** Ids we made up (Gemini often sends none); never sent back as if Gemini had issued them. */
const LOCAL_ID = 'gcall_';
const MAX_SIGNATURES = 500;

export interface GeminiLlmConfig { model: string; firstTokenTimeoutMs?: number }

export function createGeminiLlm(access: VendorAccess, cfg: GeminiLlmConfig): LlmProvider {
  return new GeminiLlm(access, cfg);
}

class GeminiLlm implements LlmProvider {
  readonly name = PROVIDER;
  private readonly client: GoogleGenAI;
  /** Thought signatures of the calls this model made, so the next request can return them. */
  private readonly signatures = new Map<string, string>();
  private readonly apiKey: string;

  constructor(access: VendorAccess, private readonly cfg: GeminiLlmConfig) {
    this.apiKey = access.apiKey;
    this.client = new GoogleGenAI({
      apiKey: access.apiKey,
      vertexai: false,
      apiVersion: access.extra?.api_version || 'v1beta',
      httpOptions: { baseUrl: access.baseUrl },
    });
  }

  async *stream(request: LlmRequest, signal: AbortSignal): AsyncIterable<LlmChunk> {
    signal.throwIfAborted();
    const { systemInstruction, contents } = toContents(request.messages, this.signatures);
    const up = new UpstreamRequest(signal, PROVIDER, this.apiKey, this.cfg.firstTokenTimeoutMs ?? DEFAULT_FIRST_TOKEN_TIMEOUT_MS, (_p, err) => toProviderError(err));
    try {
      let usage: LlmChunk | undefined;
      let finished = false;
      try {
        const stream = await this.client.models.generateContentStream({
          model: request.model || this.cfg.model,
          contents,
          config: {
            systemInstruction,
            temperature: request.temperature,
            tools: request.tools.length
              ? [{ functionDeclarations: request.tools.map((t) => ({ name: t.name, description: t.description, parametersJsonSchema: t.parameters })) }]
              : undefined,
            abortSignal: up.signal,
            automaticContinuation: false,
          },
        });
        for await (const chunk of stream) {
          if (chunk.candidates?.length || chunk.promptFeedback) up.firstContent();
          const blocked = chunk.promptFeedback?.blockReason;
          if (blocked) throw new ProviderError('protocol', `prompt blocked (${blocked})`, PROVIDER);
          for (const out of this.read(chunk)) yield out;
          if (chunk.candidates?.[0]?.finishReason) finished = true;
          const u = chunk.usageMetadata;
          if (u) usage = { type: 'usage', inputTokens: u.promptTokenCount ?? 0, outputTokens: (u.candidatesTokenCount ?? 0) + (u.thoughtsTokenCount ?? 0) };
        }
      } catch (err) {
        throw up.failure(err);
      }
      // Gemini's last chunk always carries a finishReason; a stream ending without one was cut short.
      if (!finished || signal.aborted) throw up.failure();
      if (usage) yield usage;
    } finally {
      up.close(); // a consumer that stops early must not leave the request open
    }
  }

  private *read(chunk: GenerateContentResponse): Iterable<LlmChunk> {
    for (const part of chunk.candidates?.[0]?.content?.parts ?? []) {
      if (part.thought) continue;
      if (part.text) yield { type: 'text', text: part.text };
      const fc = part.functionCall;
      if (fc?.name) {
        const id = fc.id || `${LOCAL_ID}${randomUUID()}`;
        if (part.thoughtSignature) this.remember(id, part.thoughtSignature);
        yield { type: 'tool_call', call: { id, name: fc.name, arguments: JSON.stringify(fc.args ?? {}) } };
      }
    }
  }

  private remember(id: string, signature: string): void {
    this.signatures.set(id, signature);
    if (this.signatures.size > MAX_SIGNATURES) this.signatures.delete(this.signatures.keys().next().value!);
  }
}

/** The engine's conversation in Gemini's shape: system text apart, `model` for the assistant, tool results as functionResponse parts. */
export function toContents(messages: ChatMessage[], signatures: ReadonlyMap<string, string> = new Map()): { systemInstruction?: Content; contents: Content[] } {
  const system: string[] = [];
  const contents: Content[] = [];
  const callNames = new Map<string, string>();
  for (const m of messages) {
    switch (m.role) {
      case 'system':
        system.push(m.content);
        break;
      case 'user':
        contents.push({ role: 'user', parts: [{ text: m.content }] });
        break;
      case 'assistant': {
        const parts: Part[] = m.content ? [{ text: m.content }] : [];
        (m.toolCalls ?? []).forEach((c, i) => {
          callNames.set(c.id, c.name);
          const part: Part = { functionCall: { ...(vendorId(c.id) ? { id: c.id } : {}), name: c.name, args: parseArgs(c.arguments) } };
          // Gemini 3 rejects a call turn whose first call has no signature.
          const sig = signatures.get(c.id) ?? (i === 0 ? SKIP_SIGNATURE : undefined);
          if (sig) part.thoughtSignature = sig;
          parts.push(part);
        });
        if (parts.length) contents.push({ role: 'model', parts });
        break;
      }
      case 'tool': {
        const part: Part = {
          functionResponse: { ...(vendorId(m.toolCallId) ? { id: m.toolCallId } : {}), name: callNames.get(m.toolCallId) ?? 'unknown_function', response: toolResponse(m.content) },
        };
        // Answers to parallel calls go back together, in one turn.
        const last = contents.at(-1);
        if (last?.role === 'user' && last.parts?.every((p) => p.functionResponse)) last.parts.push(part);
        else contents.push({ role: 'user', parts: [part] });
        break;
      }
    }
  }
  return { systemInstruction: system.length ? { parts: [{ text: system.join('\n\n') }] } : undefined, contents };
}

const vendorId = (id: string) => Boolean(id) && !id.startsWith(LOCAL_ID);

function parseArgs(json: string): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(json || '{}');
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : { value: v };
  } catch {
    return { raw: json };
  }
}

/** functionResponse.response must be an object; the docs use `output` for a plain result. */
function toolResponse(content: string): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(content);
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
    return { output: v };
  } catch {
    return { output: content };
  }
}

interface GoogleErrorBody { error?: { code?: number; message?: string; status?: string; details?: { reason?: string }[] } }

/** The SDK's ApiError carries the HTTP status and Google's JSON error body as its message. */
function toProviderError(err: unknown): ProviderError {
  if (err instanceof ProviderError) return err;
  const e = err as { name?: string; status?: number; message?: string };
  if (e?.name === 'ApiError' && typeof e.status === 'number') {
    let body: GoogleErrorBody = {};
    try {
      body = JSON.parse((e.message ?? '').replace(/^got status: [A-Z_]+\. /, '')) as GoogleErrorBody;
    } catch { /* not JSON: keep the status alone */ }
    const g = body.error ?? {};
    const reasons = (g.details ?? []).map((d) => d.reason);
    let kind: ProviderErrorKind = kindOfStatus(e.status);
    // Google answers a bad key with 400 INVALID_ARGUMENT, not 401.
    if (reasons.includes('API_KEY_INVALID') || g.status === 'UNAUTHENTICATED' || g.status === 'PERMISSION_DENIED') kind = 'auth';
    else if (g.status === 'RESOURCE_EXHAUSTED') kind = 'quota';
    const detail = `${g.status ?? ''}${g.message ? `: ${g.message.slice(0, 300)}` : ''}`;
    return new ProviderError(kind, `HTTP ${e.status}${detail ? ` ${detail}` : ''}`, PROVIDER, e.status === 429 || e.status >= 500);
  }
  const msg = e?.message ?? String(err);
  // The SDK could not parse an SSE event: the vendor sent something malformed.
  const kind: ProviderErrorKind = e?.name === 'SyntaxError' || /^exception parsing stream chunk/.test(msg) ? 'protocol' : 'network';
  return new ProviderError(kind, msg.slice(0, 300), PROVIDER);
}
