/**
 * OpenAI Chat Completions, streamed, through the `openai` SDK — and every server that speaks the same
 * protocol: DeepSeek, Together, Groq, Ollama/vLLM/LM Studio, and Azure OpenAI (deployment path,
 * `api-version` query, `api-key` header, via the SDK's AzureOpenAI client).
 *
 * Documents followed:
 * - OpenAI API reference, "Create chat completion" and "The chat completion chunk object"
 *   (https://platform.openai.com/docs/api-reference/chat/create, …/chat/streaming): SSE `data:` chunks,
 *   choices[].delta content / tool_calls by index with arguments split across chunks, finish_reason,
 *   `stream_options.include_usage` → a last chunk with empty choices and `usage`, then `data: [DONE]`.
 * - OpenAI "Error codes" guide (https://platform.openai.com/docs/guides/error-codes): 401 invalid key,
 *   429 rate limit / insufficient_quota, 500/503 server errors; error body {error:{message,type,param,code}}.
 * - Azure OpenAI "REST API reference", data plane inference
 *   (https://learn.microsoft.com/azure/ai-services/openai/reference):
 *   POST {endpoint}/openai/deployments/{deployment-id}/chat/completions?api-version=…, header `api-key`.
 */
import OpenAI, { AzureOpenAI } from 'openai';
import type { ChatCompletionChunk, ChatCompletionCreateParamsStreaming, ChatCompletionMessageParam, ChatCompletionTool } from 'openai/resources/chat/completions';
import { ProviderError, type ChatMessage, type LlmChunk, type LlmRequest, type ToolCall, type ToolSpec } from '../../engine/types.js';
import type { LlmProvider, VendorAccess } from '../types.js';
import { trimSlash } from '../vendors.js';
import { DEFAULT_FIRST_TOKEN_TIMEOUT_MS, UpstreamRequest } from './sdkStream.js';

export interface OpenAILlmConfig { model: string; firstTokenTimeoutMs?: number }

/** Local servers take any key; the SDK insists on one, so keyless requests drop the header instead. */
const NO_KEY = 'no-key';

// The SDK reads OPENAI_* env vars for every option left undefined; adapters take credentials only from VendorAccess.
const NO_ENV = { organization: null, project: null, adminAPIKey: null, webhookSecret: null, logLevel: 'off' as const, maxRetries: 0 };

export function createOpenAILlm(access: VendorAccess, cfg: OpenAILlmConfig, name = vendorName(access.baseUrl)): LlmProvider {
  const keyless = !access.apiKey;
  const client = new OpenAI({
    ...NO_ENV,
    apiKey: access.apiKey || NO_KEY,
    baseURL: trimSlash(access.baseUrl),
    organization: access.extra?.organization || null,
    ...(keyless ? { defaultHeaders: { Authorization: null } } : {}),
  });
  return new OpenAIChatLlm(name, client, cfg, access.apiKey);
}

export function createAzureOpenAILlm(access: VendorAccess, cfg: OpenAILlmConfig): LlmProvider {
  const client = new AzureOpenAI({
    ...NO_ENV,
    apiKey: access.apiKey || NO_KEY,
    // baseURL rather than `endpoint`: the SDK would otherwise also consult OPENAI_BASE_URL.
    baseURL: `${trimSlash(access.baseUrl)}/openai`,
    apiVersion: access.extra?.api_version || '2024-10-21',
    // Without a stored deployment the request's model names it (the SDK puts body.model in the path).
    deployment: access.extra?.deployment || undefined,
  });
  return new OpenAIChatLlm('azure_openai', client, cfg, access.apiKey);
}

class OpenAIChatLlm implements LlmProvider {
  constructor(readonly name: string, private readonly client: OpenAI, private readonly cfg: OpenAILlmConfig, private readonly apiKey: string) {}

  async *stream(request: LlmRequest, signal: AbortSignal): AsyncIterable<LlmChunk> {
    if (signal.aborted) throw signal.reason;
    const up = new UpstreamRequest(signal, this.name, this.apiKey, this.cfg.firstTokenTimeoutMs ?? DEFAULT_FIRST_TOKEN_TIMEOUT_MS);
    const calls = new ToolCallAssembler(this.name);
    let usage: LlmChunk | undefined;
    let finished = false;
    try {
      try {
        const stream = await this.client.chat.completions.create(this.body(request), { signal: up.signal });
        for await (const chunk of stream) {
          if (chunk.usage) usage = { type: 'usage', inputTokens: chunk.usage.prompt_tokens, outputTokens: chunk.usage.completion_tokens };
          // Azure opens with a prompt_filter_results chunk, and the usage chunk has no choices.
          const choice = chunk.choices?.[0];
          if (!choice) continue;
          const delta: Partial<ChatCompletionChunk.Choice.Delta> = choice.delta ?? {};
          if (delta.content) {
            up.firstContent();
            yield { type: 'text', text: delta.content };
          }
          for (const piece of delta.tool_calls ?? []) {
            up.firstContent();
            yield* calls.add(piece);
          }
          if (choice.finish_reason) {
            finished = true;
            yield* calls.flush();
          }
        }
      } catch (err) {
        throw up.failure(err);
      }
      // The SDK ends quietly on abort and on a body that stops without a finish_reason.
      if (!finished || signal.aborted) throw up.failure();
      if (usage) yield usage;
    } finally {
      up.close();
    }
  }

  private body(request: LlmRequest): ChatCompletionCreateParamsStreaming {
    const tools = request.tools.map(toTool);
    return {
      model: request.model || this.cfg.model,
      messages: toMessages(request.messages),
      temperature: request.temperature,
      stream: true,
      stream_options: { include_usage: true },
      ...(tools.length ? { tools, tool_choice: 'auto' as const } : {}),
    };
  }
}

export function toMessages(messages: ChatMessage[]): ChatCompletionMessageParam[] {
  const out: ChatCompletionMessageParam[] = [];
  for (const m of messages) {
    switch (m.role) {
      case 'system':
      case 'user':
        out.push({ role: m.role, content: m.content });
        break;
      case 'assistant': {
        // An interrupted line keeps only what the caller heard, which is what `content` already holds.
        const toolCalls = m.toolCalls?.map((c) => ({ id: c.id, type: 'function' as const, function: { name: c.name, arguments: c.arguments } }));
        if (!m.content && !toolCalls?.length) break;
        out.push({ role: 'assistant', content: m.content || null, ...(toolCalls?.length ? { tool_calls: toolCalls } : {}) });
        break;
      }
      case 'tool':
        out.push({ role: 'tool', tool_call_id: m.toolCallId, content: m.content });
        break;
    }
  }
  return out;
}

function toTool(t: ToolSpec): ChatCompletionTool {
  return { type: 'function', function: { name: t.name, description: t.description, parameters: t.parameters } };
}

type ToolCallDelta = ChatCompletionChunk.Choice.Delta.ToolCall;

/**
 * Tool calls stream by index: the first piece carries id and name, later ones only argument text.
 * A call is complete when a later index starts or the choice finishes; each is emitted once.
 */
class ToolCallAssembler {
  private pending = new Map<number, ToolCall>();

  constructor(private readonly provider: string) {}

  *add(piece: ToolCallDelta): Iterable<LlmChunk> {
    for (const index of [...this.pending.keys()].sort((a, b) => a - b)) {
      if (index < piece.index) yield this.emit(index);
    }
    let call = this.pending.get(piece.index);
    if (!call) {
      call = { id: piece.id || `call_${piece.index}`, name: '', arguments: '' };
      this.pending.set(piece.index, call);
    }
    // Some compatible servers repeat the name on every piece; it is never split.
    if (piece.function?.name && !call.name) call.name = piece.function.name;
    if (piece.function?.arguments) call.arguments += piece.function.arguments;
  }

  *flush(): Iterable<LlmChunk> {
    for (const index of [...this.pending.keys()].sort((a, b) => a - b)) yield this.emit(index);
  }

  private emit(index: number): LlmChunk {
    const call = this.pending.get(index)!;
    this.pending.delete(index);
    if (!call.name) throw new ProviderError('protocol', `tool call ${index} arrived without a function name`, this.provider);
    return { type: 'tool_call', call: { ...call, arguments: call.arguments || '{}' } };
  }
}

/** For error messages and metrics: which OpenAI-protocol vendor a base URL points at. */
function vendorName(baseUrl: string): string {
  const host = /^[a-z]+:\/\/([^/:]+)/i.exec(baseUrl)?.[1] ?? '';
  if (host.endsWith('openai.com')) return 'openai';
  if (host.endsWith('deepseek.com')) return 'deepseek';
  if (host.endsWith('together.xyz') || host.endsWith('together.ai')) return 'togetherai';
  if (host.endsWith('groq.com')) return 'groq';
  return 'openai_compatible';
}
