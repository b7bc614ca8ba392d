import type { Clock } from '../clock.js';
import type { ChatMessage, LanguageModel, LlmChunk, LlmRequest, ToolCall } from '../types.js';
import { ProviderError } from '../types.js';

export interface LlmRule {
  /** Matches the last user message: a substring (case-insensitive), a RegExp, or a predicate on the request. */
  when: string | RegExp | ((req: LlmRequest) => boolean);
  /** Text to stream, word by word. */
  reply?: string;
  toolCalls?: Omit<ToolCall, 'id'>[];
  /** Fails after streaming `afterWords` words (0 = before the first token). */
  error?: { kind: ProviderError['kind']; afterWords?: number };
}

export interface ScriptedLlmOptions {
  rules: LlmRule[];
  /** Said when no rule matches. */
  fallback?: string;
  firstTokenMs?: number;
  perWordMs?: number;
}

function lastUser(messages: ChatMessage[]): string {
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i];
    if (m.role === 'user') return m.content;
  }
  return '';
}

/**
 * A language model that answers from keyword rules on the clock: timed first token, word-by-word
 * streaming, tool calls and failures on demand. It is the test kit's LLM and the offline demo agent.
 */
export class ScriptedLlm implements LanguageModel {
  readonly requests: LlmRequest[] = [];
  private calls = 0;

  constructor(private readonly clock: Clock, private readonly opts: ScriptedLlmOptions) {}

  private rule(req: LlmRequest): LlmRule | undefined {
    const text = lastUser(req.messages).toLowerCase();
    return this.opts.rules.find((r) =>
      typeof r.when === 'string' ? text.includes(r.when.toLowerCase()) : r.when instanceof RegExp ? r.when.test(text) : r.when(req));
  }

  async *stream(request: LlmRequest, signal: AbortSignal): AsyncIterable<LlmChunk> {
    this.requests.push(structuredClone(request));
    // After a tool result, the model speaks the rule's reply without calling the tool again.
    const afterTool = request.messages.at(-1)?.role === 'tool';
    const rule = this.rule(request);
    const reply = rule?.reply ?? (rule ? '' : this.opts.fallback ?? "Sorry, I didn't catch that.");
    await this.clock.sleep(this.opts.firstTokenMs ?? 0, signal);
    const words = reply.split(/(?<=\s)/).filter(Boolean);
    for (const [i, w] of words.entries()) {
      if (rule?.error && (rule.error.afterWords ?? 0) === i) throw new ProviderError(rule.error.kind, 'scripted failure', 'scripted-llm');
      if (i > 0) await this.clock.sleep(this.opts.perWordMs ?? 0, signal);
      signal.throwIfAborted();
      yield { type: 'text', text: w };
    }
    if (rule?.error && (rule.error.afterWords ?? 0) >= words.length) throw new ProviderError(rule.error.kind, 'scripted failure', 'scripted-llm');
    if (!afterTool) {
      for (const call of rule?.toolCalls ?? []) yield { type: 'tool_call', call: { ...call, id: `call_${++this.calls}` } };
    }
    yield { type: 'usage', inputTokens: request.messages.length * 10, outputTokens: words.length };
  }
}
