/**
 * The engine's public entry point for transports (carrier media streams, browser sockets): build the
 * agent's configuration, hand over a Transport, resolved providers and a Clock, and get a running
 * Conversation that emits transcript, tool, metrics, error and ended events.
 */
import { Pacer } from './audio/pacer.js';
import { Conversation, type ConversationOptions } from './conversation.js';

export type StartOptions = Omit<ConversationOptions, 'pacer'> & {
  /** Audio sent ahead of real time; small, so a barge-in stops the caller's audio quickly. */
  leadMs?: number;
  /** An agent frame went out this late past its play-out time although it was ready: the caller heard a gap. */
  onAudioLate?: (lateMs: number) => void;
};

export async function startConversation(opts: StartOptions): Promise<Conversation> {
  const { leadMs, onAudioLate, ...rest } = opts;
  const conversation = new Conversation({
    ...rest,
    pacer: (send) => new Pacer({ clock: opts.clock, sampleRate: opts.transport.sampleRate, send, leadMs, onLate: onAudioLate }),
  });
  await conversation.start();
  return conversation;
}

export { Conversation, ENGINE_AGENT_DEFAULTS } from './conversation.js';
export type { ConversationEvent, EndReason, EngineAgent, ToolOutcome, TurnMetrics } from './conversation.js';
export { engineAgentFromStored, type StoredAgent } from './agentConfig.js';
export { RealClock, VirtualClock, type Clock } from './clock.js';
export type * from './types.js';
export { ProviderError } from './types.js';
