/**
 * Anthropic Messages API, streamed, through `@anthropic-ai/sdk` (retries off; the engine decides).
 *
 * Documents followed:
 * - Anthropic "Messages" API reference (https://docs.anthropic.com/en/api/messages): POST /v1/messages,
 *   `x-api-key` + `anthropic-version` headers, top-level `system`, required `max_tokens`, user/assistant
 *   turns (consecutive same-role turns are combined), tool_use blocks on the assistant turn answered by
 *   tool_result blocks at the start of the next user turn, tools as {name, description, input_schema}.
 * - "Streaming Messages" (https://docs.anthropic.com/en/docs/build-with-claude/streaming): named SSE
 *   events message_start (input usage) → content_block_start/delta/stop (text_delta, input_json_delta
 *   partial_json for tool input) → message_delta (cumulative output usage) → message_stop; ping and
 *   error events (e.g. overloaded_error) may appear anywhere.
 * - "Errors" (https://docs.anthropic.com/en/api/errors): {type:"error", error:{type, message}};
 *   401 authentication_error, 403 permission_error, 429 rate_limit_error, 500 api_error, 529 overloaded_error.
 */
import Anthropic from '@anthropic-ai/sdk';
import type { ContentBlockParam, MessageCreateParamsStreaming, MessageParam, Tool } from '@anthropic-ai/sdk/resources/messages';
import type { ChatMessage, LlmChunk, LlmRequest, ToolCall } from '../../engine/types.js';
import type { LlmProvider, VendorAccess } from '../types.js';
import { trimSlash } from '../vendors.js';
import { DEFAULT_FIRST_TOKEN_TIMEOUT_MS, UpstreamRequest } from './sdkStream.js';

export interface AnthropicLlmConfig { model: string; firstTokenTimeoutMs?: number; maxTokens?: number }

/** The API version whose wire format this adapter implements (pinned rather than the SDK's default). */
const API_VERSION = '2023-06-01';
const DEFAULT_MAX_TOKENS = 1024;
/** The API wants a user turn first; a call where the agent speaks first has none yet. */
const CALL_STARTED = '(The call has connected.)';

export function createAnthropicLlm(access: VendorAccess, cfg: AnthropicLlmConfig): LlmProvider {
  const client = new Anthropic({
    apiKey: access.apiKey || 'missing-key',
    baseURL: trimSlash(access.baseUrl),
    maxRetries: 0,
    logLevel: 'off',
    // The documented header is x-api-key; this SDK version would send the key as a Bearer token.
    defaultHeaders: { 'x-api-key': access.apiKey, Authorization: null, 'anthropic-version': API_VERSION },
  });
  return new AnthropicLlm(client, cfg, access.apiKey);
}

class AnthropicLlm implements LlmProvider {
  readonly name = 'anthropic';

  constructor(private readonly client: Anthropic, private readonly cfg: AnthropicLlmConfig, private readonly apiKey: string) {}

  async *stream(request: LlmRequest, signal: AbortSignal): AsyncIterable<LlmChunk> {
    if (signal.aborted) throw signal.reason;
    const up = new UpstreamRequest(signal, this.name, this.apiKey, this.cfg.firstTokenTimeoutMs ?? DEFAULT_FIRST_TOKEN_TIMEOUT_MS);
    const toolBlocks = new Map<number, ToolCall>();
    let inputTokens = 0, outputTokens = 0;
    let stopped = false;
    try {
      try {
        const stream = await this.client.messages.create(this.body(request), { signal: up.signal });
        for await (const ev of stream) {
          switch (ev.type) {
            case 'message_start': {
              const u = ev.message.usage;
              inputTokens = u.input_tokens + (u.cache_creation_input_tokens ?? 0) + (u.cache_read_input_tokens ?? 0);
              outputTokens = u.output_tokens;
              break;
            }
            case 'content_block_start':
              if (ev.content_block.type === 'tool_use') {
                up.firstContent();
                toolBlocks.set(ev.index, { id: ev.content_block.id, name: ev.content_block.name, arguments: '' });
              }
              break;
            case 'content_block_delta':
              if (ev.delta.type === 'text_delta' && ev.delta.text) {
                up.firstContent();
                yield { type: 'text', text: ev.delta.text };
              } else if (ev.delta.type === 'input_json_delta') {
                const call = toolBlocks.get(ev.index);
                if (call) call.arguments += ev.delta.partial_json;
              }
              break;
            case 'content_block_stop': {
              const call = toolBlocks.get(ev.index);
              if (!call) break;
              toolBlocks.delete(ev.index);
              // A tool without parameters streams no partial_json at all.
              yield { type: 'tool_call', call: { ...call, arguments: call.arguments || '{}' } };
              break;
            }
            case 'message_delta':
              // Cumulative counts, so the last one wins.
              if (ev.usage.output_tokens != null) outputTokens = ev.usage.output_tokens;
              break;
            case 'message_stop':
              stopped = true;
              break;
          }
        }
      } catch (err) {
        throw up.failure(err);
      }
      if (!stopped || signal.aborted) throw up.failure();
      yield { type: 'usage', inputTokens, outputTokens };
    } finally {
      up.close();
    }
  }

  // `temperature` is part of the pinned API version; the SDK's types follow its own newer default version, which dropped it.
  private body(request: LlmRequest): MessageCreateParamsStreaming & { temperature: number } {
    const system = request.messages.filter((m) => m.role === 'system').map((m) => m.content).join('\n\n');
    const tools: Tool[] = request.tools.map((t) => ({ name: t.name, description: t.description, input_schema: t.parameters as Tool['input_schema'] }));
    return {
      model: request.model || this.cfg.model,
      max_tokens: this.cfg.maxTokens ?? DEFAULT_MAX_TOKENS,
      // Anthropic's range is 0–1 where OpenAI's is 0–2; agents store one number for both.
      temperature: Math.min(1, Math.max(0, request.temperature)),
      messages: toMessages(request.messages),
      stream: true,
      ...(system ? { system } : {}),
      ...(tools.length ? { tools, tool_choice: { type: 'auto' as const } } : {}),
    };
  }
}

/** Turns into Anthropic turns: user/assistant only, same-role neighbours merged, user first. */
export function toMessages(messages: ChatMessage[]): MessageParam[] {
  const turns: { role: 'user' | 'assistant'; content: ContentBlockParam[] }[] = [];
  const add = (role: 'user' | 'assistant', blocks: ContentBlockParam[]) => {
    if (!blocks.length) return;
    const last = turns.at(-1);
    if (last?.role === role) last.content.push(...blocks);
    else turns.push({ role, content: blocks });
  };
  for (const m of messages) {
    switch (m.role) {
      case 'system':
        break;
      case 'user':
        // Empty text blocks are rejected by the API.
        add('user', m.content ? [{ type: 'text', text: m.content }] : []);
        break;
      case 'assistant': {
        // An interrupted line keeps only what the caller heard, which is what `content` already holds.
        const blocks: ContentBlockParam[] = m.content ? [{ type: 'text', text: m.content }] : [];
        for (const c of m.toolCalls ?? []) blocks.push({ type: 'tool_use', id: c.id, name: c.name, input: parseInput(c.arguments) });
        add('assistant', blocks);
        break;
      }
      case 'tool':
        add('user', [{ type: 'tool_result', tool_use_id: m.toolCallId, content: m.content }]);
        break;
    }
  }
  for (const t of turns) {
    // tool_result blocks must open the user turn that answers the tool_use.
    if (t.role === 'user') t.content.sort((a, b) => Number(b.type === 'tool_result') - Number(a.type === 'tool_result'));
  }
  if (turns[0]?.role !== 'user') turns.unshift({ role: 'user', content: [{ type: 'text', text: CALL_STARTED }] });
  return turns;
}

function parseInput(args: string): Record<string, unknown> {
  try {
    const v = JSON.parse(args || '{}') as unknown;
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}
