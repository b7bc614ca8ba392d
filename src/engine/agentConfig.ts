import { ENGINE_AGENT_DEFAULTS, type EngineAgent } from './conversation.js';

/**
 * The stored agent as the API returns it (Vocode / Fluents field names). Typed loosely on purpose: the
 * engine depends on field names, not on the API's modules.
 */
export interface StoredAgent {
  prompt?: { content?: string | null } | null;
  language?: string;
  initial_message?: string | null;
  initial_message_delay?: number;
  interrupt_sensitivity?: 'low' | 'high';
  endpointing_sensitivity?: 'auto' | 'relaxed' | 'sensitive';
  ivr_navigation_mode?: 'default' | 'off';
  conversation_speed?: number;
  llm_temperature?: number;
  openai_model_name_override?: string | null;
  model?: string | null;
  idle_time_seconds?: number | null;
  ask_if_human_present_on_idle?: boolean;
  max_idle_check_count?: number | null;
  max_aggregate_idle_check_count?: number | null;
  idle_after_interaction_seconds?: number | null;
  call_duration_sec?: number | null;
  enable_dynamic_turns?: boolean;
  min_volume?: number | null;
  dynamic_min_wait_secs?: number | null;
  dynamic_max_silence_secs?: number | null;
}

/** Vocode's idle defaults: 30 s, or 10 minutes while navigating an IVR (hold music, menus). */
const IDLE_SECONDS = { off: 30, default: 600 } as const;

/**
 * Vocode documents `initial_message_delay` in seconds; Fluents' examples use milliseconds (1000). A
 * value above 60 cannot sensibly be seconds before a greeting, so it is read as milliseconds.
 */
export function initialDelayMs(v: number | undefined): number {
  if (!v || v < 0) return 0;
  return v > 60 ? v : v * 1000;
}

export function engineAgentFromStored(a: StoredAgent, extra: Partial<EngineAgent> = {}): EngineAgent {
  const dynamic = a.enable_dynamic_turns
    ? { minWaitMs: (a.dynamic_min_wait_secs ?? 0.2) * 1000, maxSilenceMs: (a.dynamic_max_silence_secs ?? 3) * 1000 }
    : null;
  return {
    ...ENGINE_AGENT_DEFAULTS,
    prompt: a.prompt?.content ?? '',
    language: a.language ?? 'en',
    initialMessage: a.initial_message ?? null,
    initialMessageDelayMs: initialDelayMs(a.initial_message_delay),
    interruptSensitivity: a.interrupt_sensitivity ?? 'low',
    endpointingSensitivity: a.endpointing_sensitivity ?? 'auto',
    conversationSpeed: a.conversation_speed ?? 1,
    dynamicTurns: dynamic,
    temperature: a.llm_temperature ?? 0,
    model: a.openai_model_name_override ?? a.model ?? undefined,
    idleTimeSeconds: a.idle_time_seconds ?? IDLE_SECONDS[a.ivr_navigation_mode ?? 'off'],
    askIfHumanPresentOnIdle: a.ask_if_human_present_on_idle ?? false,
    maxIdleChecks: a.max_idle_check_count ?? 1,
    maxAggregateIdleChecks: a.max_aggregate_idle_check_count ?? null,
    idleAfterInteractionSeconds: a.idle_after_interaction_seconds ?? null,
    callDurationSec: a.call_duration_sec ?? null,
    minVolumeDbfs: minVolumeDbfs(a.min_volume),
    ...extra,
  };
}

/**
 * Fluents' `min_volume` carries no documented unit. Read it the way its values show up: a negative
 * number is dBFS, a fraction in (0, 1] is linear amplitude, anything larger is an RMS level in 16-bit
 * sample units (e.g. 123); 0 or absent turns the gate off.
 */
export function minVolumeDbfs(v: number | null | undefined): number | null {
  if (v === null || v === undefined || v === 0 || !Number.isFinite(v)) return null;
  if (v < 0) return v;
  if (v <= 1) return 20 * Math.log10(v);
  return 20 * Math.log10(v / 32768);
}
