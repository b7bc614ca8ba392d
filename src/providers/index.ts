/**
 * From a stored agent to the three providers a call runs on: the transcriber (`transcriber.type`,
 * Deepgram by default), the language model (`provider` + `model`, with `llm_fallback`) and the voice
 * (`voice.type`). Credentials come from credentials.ts in its one order; anything missing fails here,
 * before the call is answered, with a message naming the account-connection type to add.
 */
import { MissingCredentialError, resolveAccess, type ConnectionLookup, type Env, type Explicit, type StoredConnection } from './credentials.js';
import type { LlmProvider, SttConfig, SttProvider, TtsProvider } from './types.js';
import type { VendorId } from './vendors.js';
import type { SdkVendor } from './sdkVendors.js';
import { createDeepgramStt } from './stt/deepgram.js';
import { createAssemblyAIStt } from './stt/assemblyai.js';
import { createGladiaStt } from './stt/gladia.js';
import { createOpenAIStt } from './stt/openai.js';
import { createOpenAILlm, createAzureOpenAILlm } from './llm/openai.js';
import { withFallback } from './llm/fallback.js';
import { createElevenLabsTts } from './tts/elevenlabs.js';
import { createCartesiaTts } from './tts/cartesia.js';
import { createOpenAITts, createVocodeVoiceTts } from './tts/openai.js';
import { createDeepgramTts } from './tts/deepgram.js';
import { createRimeTts } from './tts/rime.js';
import { createPlayHTTts } from './tts/playht.js';
import { createAzureTts } from './tts/azure.js';

export { MissingCredentialError, type ConnectionLookup, type Env, type StoredConnection } from './credentials.js';
export { VENDORS } from './vendors.js';
export type { LlmProvider, SttProvider, TtsProvider, VendorAccess } from './types.js';

type Json = Record<string, unknown>;

/** An agent names a vendor Switchboard has no adapter for (a value newer than this build). */
export class UnsupportedProviderError extends Error {
  constructor(readonly field: string, readonly value: string) {
    super(`${field} "${value}" is not supported`);
    this.name = 'UnsupportedProviderError';
  }
}

export interface AgentProviders {
  stt: SttProvider;
  llm: LlmProvider;
  tts: TtsProvider;
  /** What was chosen, for logs and the call record: "deepgram nova-3", "openai gpt-4o-mini → anthropic …". */
  summary: { stt: string; llm: string; tts: string };
  /** Opens the vendor sockets now, while the call is being set up, so the first turn pays no handshake. */
  preconnect(opts: { sampleRate: number; language: string }): void;
  /** Releases warm sockets and per-call connections; call once when the call ends. */
  dispose(): Promise<void>;
}

export interface ResolveContext {
  lookup: ConnectionLookup;
  env: Env;
}

// ---- transcribers ----

type Access = Awaited<ReturnType<typeof resolveAccess>>;

/**
 * The adapters built on a vendor SDK (Google's gRPC speech client, Microsoft's Speech SDK, Anthropic's and
 * Google's LLM clients), by vendor. They are imported the first time an agent uses them: together they would
 * add ≈ 25 MB to every node's heap, which each full GC marks again, whether or not any agent uses them. The
 * first import blocks the event loop for 150–300 ms, so a node that serves them can take it at start-up
 * instead (SWITCHBOARD_PRELOAD_SDKS).
 */
const SDK_ADAPTERS = {
  google_speech: () => import('./stt/google.js'),
  azure_speech: () => import('./stt/azure.js'),
  anthropic: () => import('./llm/anthropic.js'),
  google: () => import('./llm/gemini.js'),
} satisfies Record<SdkVendor, () => Promise<unknown>>;

/** Imports these SDK-backed adapters now. */
export async function preloadSdkAdapters(vendors: readonly SdkVendor[]): Promise<void> {
  await Promise.all(vendors.map((v) => SDK_ADAPTERS[v]()));
}

const TRANSCRIBERS: Record<string, { vendor: VendorId; create: (access: Access, cfg: SttConfig) => SttProvider | Promise<SttProvider> }> = {
  transcriber_deepgram: { vendor: 'deepgram', create: createDeepgramStt },
  transcriber_assembly_ai: { vendor: 'assemblyai', create: createAssemblyAIStt },
  transcriber_gladia: { vendor: 'gladia', create: createGladiaStt },
  transcriber_azure: { vendor: 'azure_speech', create: async (a, c) => (await SDK_ADAPTERS.azure_speech()).createAzureStt(a, c) },
  transcriber_google: { vendor: 'google_speech', create: async (a, c) => (await SDK_ADAPTERS.google_speech()).createGoogleStt(a, c) },
  transcriber_openai: { vendor: 'openai', create: createOpenAIStt },
};

async function resolveStt(agent: Json, ctx: ResolveContext): Promise<[SttProvider, string]> {
  const t = (agent.transcriber ?? {}) as Json;
  const type = (t.type as string | undefined) ?? 'transcriber_deepgram';
  const entry = TRANSCRIBERS[type];
  if (!entry) throw new UnsupportedProviderError('transcriber.type', type);
  const explicit: Explicit | undefined = typeof t.account_connection === 'string' ? { connectionId: t.account_connection } : undefined;
  const access = await resolveAccess(entry.vendor, { purpose: type, explicit, ...ctx });
  const { type: _t, account_connection: _a, ...rest } = t;
  const cfg: SttConfig = {
    ...rest,
    model: (t.model as string | undefined) ?? undefined,
    language: (t.language as string | undefined) ?? (agent.language as string | undefined) ?? 'en',
    keywords: (agent.deepgram_keywords as Record<string, number> | null | undefined) ?? undefined,
  };
  return [await entry.create(access, cfg), `${entry.vendor}${cfg.model ? ` ${cfg.model}` : ''}`];
}

// ---- language models ----

const LLM_VENDOR: Record<string, VendorId> = {
  openai: 'openai', azure: 'azure_openai', anthropic: 'anthropic', google: 'google', deepseek: 'deepseek',
  togetherai: 'togetherai', groq: 'groq', openai_compatible: 'openai_compatible',
};

/** Models used when the agent names a provider but no model. */
export const DEFAULT_MODELS: Record<string, string> = {
  openai: 'gpt-4o-mini', azure: 'gpt-4o-mini', anthropic: 'claude-3-5-haiku-latest', google: 'gemini-2.0-flash',
  deepseek: 'deepseek-chat', togetherai: 'meta-llama/Llama-3.3-70B-Instruct-Turbo', groq: 'llama-3.3-70b-versatile',
  openai_compatible: 'llama3.1',
};

/** Time to first token before the fallback model takes over. */
export const FALLBACK_FIRST_TOKEN_MS = 4000;

async function buildLlm(provider: string, model: string, purpose: string, explicit: Explicit | undefined, ctx: ResolveContext, firstTokenTimeoutMs?: number): Promise<LlmProvider> {
  const vendor = LLM_VENDOR[provider];
  if (!vendor) throw new UnsupportedProviderError('provider', provider);
  const access = await resolveAccess(vendor, { purpose, explicit, ...ctx });
  const cfg = { model, firstTokenTimeoutMs };
  switch (provider) {
    case 'azure': return createAzureOpenAILlm(access, cfg);
    case 'anthropic': return (await SDK_ADAPTERS.anthropic()).createAnthropicLlm(access, cfg);
    case 'google': return (await SDK_ADAPTERS.google()).createGeminiLlm(access, cfg);
    default: return createOpenAILlm(access, cfg, provider);
  }
}

async function resolveLlm(agent: Json, ctx: ResolveContext): Promise<[LlmProvider, string]> {
  const provider = (agent.provider as string | null | undefined) ?? 'openai';
  const model = (agent.model as string | null | undefined) ?? (agent.openai_model_name_override as string | null | undefined) ?? DEFAULT_MODELS[provider] ?? DEFAULT_MODELS.openai;
  // Vocode's openai_account_connection is the explicit connection for OpenAI (and Azure when it is one).
  const conn = agent.openai_account_connection as StoredConnection | null | undefined;
  const explicit: Explicit | undefined = conn && typeof conn === 'object' ? { connection: conn } : undefined;
  const usesExplicit = explicit && (provider === 'openai' || provider === 'openai_compatible' || (provider === 'azure' && conn?.type === 'account_connection_azure_llm'));
  const fb = agent.llm_fallback as { provider: string; model_name: string } | null | undefined;
  const primary = await buildLlm(provider, model, `LLM provider "${provider}"`, usesExplicit ? explicit : undefined, ctx, fb ? FALLBACK_FIRST_TOKEN_MS : undefined);
  if (!fb) return [primary, `${provider} ${model}`];
  const fallback = await buildLlm(fb.provider, fb.model_name, `llm_fallback (${fb.provider})`, undefined, ctx);
  return [withFallback(primary, fallback, { firstTokenTimeoutMs: FALLBACK_FIRST_TOKEN_MS }), `${provider} ${model} → ${fb.provider} ${fb.model_name}`];
}

// ---- voices ----

const VOICES: Record<string, { vendor: VendorId; explicit?: (v: Json) => Explicit | undefined; create: (access: Access, voice: Json) => TtsProvider }> = {
  voice_eleven_labs: {
    vendor: 'elevenlabs', create: createElevenLabsTts,
    explicit: (v) => (typeof v.api_key === 'string' ? { fields: { elevenlabs_api_key: v.api_key } } : undefined),
  },
  voice_play_ht: {
    vendor: 'playht', create: createPlayHTTts,
    explicit: (v) => (typeof v.api_key === 'string' ? { fields: { playht_api_key: v.api_key, playht_user_id: v.api_user_id as string | null } } : undefined),
  },
  voice_cartesia: { vendor: 'cartesia', create: createCartesiaTts },
  voice_openai: { vendor: 'openai', create: createOpenAITts },
  voice_vocode: { vendor: 'openai', create: createVocodeVoiceTts },
  voice_deepgram: { vendor: 'deepgram', create: createDeepgramTts },
  voice_rime: { vendor: 'rime', create: createRimeTts },
  voice_azure: { vendor: 'azure_speech', create: createAzureTts },
};

async function resolveTts(agent: Json, ctx: ResolveContext): Promise<[TtsProvider, string]> {
  const voice = (agent.voice ?? null) as Json | null;
  if (!voice) throw new UnsupportedProviderError('voice', 'none (the agent has no voice)');
  const type = voice.type as string;
  const entry = VOICES[type];
  if (!entry) throw new UnsupportedProviderError('voice.type', type);
  const access = await resolveAccess(entry.vendor, { purpose: type, explicit: entry.explicit?.(voice), ...ctx });
  const name = (voice.voice_id ?? voice.voice_name ?? voice.voice ?? voice.model ?? voice.speaker ?? '') as string;
  return [entry.create(access, voice), `${entry.vendor}${name ? ` ${name}` : ''}`];
}

/**
 * Resolves all three providers of `agent` (the expanded agent with secrets in clear, as
 * AgentRepo.getForCall returns it). Throws MissingCredentialError or UnsupportedProviderError.
 */
export async function resolveAgentProviders(agent: Json, ctx: ResolveContext): Promise<AgentProviders> {
  const settled = await Promise.allSettled([resolveStt(agent, ctx), resolveLlm(agent, ctx), resolveTts(agent, ctx)]);
  const failures = settled.flatMap((r) => (r.status === 'rejected' ? [r.reason as Error] : []));
  if (failures.length === 1) throw failures[0];
  if (failures.length > 1) {
    // Everything missing in one message, so a user fixes the agent in one go.
    const first = failures.find((f) => f instanceof MissingCredentialError) as MissingCredentialError | undefined;
    if (!first) throw failures[0];
    throw new MissingCredentialError(first.connectionType, first.purpose, failures.map((f) => f.message).join('; '));
  }
  const value = <T>(r: PromiseSettledResult<T>) => (r as PromiseFulfilledResult<T>).value;
  const [stt, sttName] = value(settled[0]);
  const [llm, llmName] = value(settled[1]);
  const [tts, ttsName] = value(settled[2]);
  return {
    stt, llm, tts, summary: { stt: sttName, llm: llmName, tts: ttsName },
    preconnect: (opts) => {
      stt.preconnect?.(opts);
      tts.preconnect?.({ sampleRate: opts.sampleRate });
    },
    dispose: async () => {
      await Promise.allSettled([stt.dispose?.(), tts.dispose?.()]);
    },
  };
}
