import { z, HttpUrl, labelled, optionalShape, Uuid, withOptionalId } from './common.js';
import { ActionParams, ActionUpdateParams } from './actions.js';
import { PromptParams, PromptUpdateParams } from './prompts.js';
import { VoiceParams, VoiceUpdateParams } from './voices.js';
import { WebhookParams, WebhookUpdateParams } from './webhooks.js';
import { PineconeVectorDatabaseParams, PineconeVectorDatabaseUpdateParams } from './vectorDatabases.js';

export const Language = z.enum(['en', 'es', 'de', 'hi', 'pt', 'fr', 'nl', 'id', 'it', 'ja', 'ko']).openapi('Language');
export const InterruptSensitivity = z.enum(['low', 'high']).openapi('InterruptSensitivity');
export const LlmProvider = z.enum(['openai', 'azure', 'anthropic', 'google', 'deepseek', 'togetherai', 'groq', 'openai_compatible']);

export const InternalLLMFallback = z.object({
  provider: LlmProvider,
  model_name: z.string().min(1).max(200),
}).openapi('InternalLLMFallback');

const ProviderConfig = z.object({ destination_id: z.string().max(500).nullable().optional() }).passthrough();

export const PostCallEmail = z.object({
  provider_config: ProviderConfig.optional(),
  from_email: z.email().optional(),
  to_email: z.email(),
  subject: z.string().max(1000).optional(),
  body: z.string().max(100_000).optional(),
}).openapi('PostCallEmail');

export const PostCallSms = z.object({
  provider_config: ProviderConfig.optional(),
  from_phone: z.string().max(30).optional(),
  to_phone: z.string().min(1).max(30),
  body: z.string().max(2000).optional(),
}).openapi('PostCallSms');

export const PostCallAction = z.object({
  id: z.string().max(100).optional(),
  provider_config: ProviderConfig.optional(),
  config: z.record(z.string(), z.unknown()).optional(),
  label: z.string().max(500).optional(),
}).passthrough().openapi('PostCallAction');

/** Fluents' transcriber object; its vendor types follow vocode-core's transcriber configs. */
export const Transcriber = z.object({
  type: z.enum([
    'transcriber_deepgram', 'transcriber_assembly_ai', 'transcriber_gladia', 'transcriber_azure',
    'transcriber_google', 'transcriber_openai',
  ]).optional(),
  model: z.string().max(200).optional(),
  language: z.string().max(20).optional(),
  account_connection: Uuid.nullable().optional(),
}).passthrough().openapi('Transcriber');

/** deepgram_keywords: keyword → boost; Fluents' docs send boosts as numeric strings. */
const KeywordBoosts = z.record(z.string().min(1).max(100), z.union([
  z.number(),
  z.string().regex(/^-?\d{1,6}(\.\d{1,6})?$/, { message: 'must be a number or a numeric string' }).transform(Number),
]).pipe(z.number().min(-1000).max(1000)));

const scalarFields = {
  name: z.string().max(500).nullable(),
  language: Language,
  initial_message: z.string().max(10_000).nullable(),
  interrupt_sensitivity: InterruptSensitivity,
  context_endpoint: HttpUrl.nullable(),
  noise_suppression: z.boolean(),
  endpointing_sensitivity: z.enum(['auto', 'relaxed', 'sensitive']),
  ivr_navigation_mode: z.enum(['default', 'off']),
  conversation_speed: z.number().min(0.1).max(4),
  initial_message_delay: z.number().min(0).max(60_000),
  openai_model_name_override: z.string().max(200).nullable(),
  ask_if_human_present_on_idle: z.boolean(),
  run_do_not_call_detection: z.boolean(),
  llm_fallback: InternalLLMFallback.nullable(),
  deepgram_keywords: KeywordBoosts.nullable(),
  idle_time_seconds: z.number().int().min(1).max(86_400).nullable(),
  llm_temperature: z.number().min(0).max(2),
  // Fluents additions
  ...labelled,
  enable_recording: z.boolean(),
  combine_last_call_context: z.boolean(),
  provider: LlmProvider.nullable(),
  model: z.string().max(200).nullable(),
  transcriber: Transcriber.nullable(),
  call_duration_sec: z.number().positive().max(86_400).nullable(),
  max_idle_check_count: z.number().int().min(0).max(1000).nullable(),
  max_aggregate_idle_check_count: z.number().int().min(0).max(10_000).nullable(),
  idle_after_interaction_seconds: z.number().min(0).max(86_400).nullable(),
  voicemail_message: z.string().max(10_000).nullable(),
  skills: z.array(z.record(z.string(), z.unknown())).max(100),
  min_volume: z.number().min(0).nullable(),
  post_call_prompt: z.string().max(100_000).nullable(),
  post_call_email: PostCallEmail.nullable(),
  post_call_sms: PostCallSms.nullable(),
  post_call_actions: z.array(PostCallAction).max(50),
  post_call_insights: z.array(z.record(z.string(), z.unknown())).max(50),
  activity_actions: z.array(z.record(z.string(), z.unknown())).max(50),
  enable_dynamic_turns: z.boolean(),
  enable_preload_prompt: z.boolean(),
  transfer_on_end: z.boolean(),
  dynamic_max_silence_secs: z.number().min(0).max(60).nullable(),
  dynamic_min_wait_secs: z.number().min(0).max(60).nullable(),
  enable_dynamic_vm_detection: z.boolean(),
  llm_vm_detection_only: z.boolean(),
  noise_suppression_level: z.number().min(0).max(100).nullable(),
};

export const AGENT_SCALAR_FIELDS = Object.keys(scalarFields);

/** Defaults as the Vocode spec states them; Fluents' additions default to off/empty. */
export const AgentDefaults: Record<string, unknown> = {
  name: null, language: 'en', initial_message: null, interrupt_sensitivity: 'low', context_endpoint: null,
  noise_suppression: false, endpointing_sensitivity: 'auto', ivr_navigation_mode: 'off', conversation_speed: 1.0,
  initial_message_delay: 0.0, openai_model_name_override: null, ask_if_human_present_on_idle: false,
  run_do_not_call_detection: false, llm_fallback: null, deepgram_keywords: null, idle_time_seconds: null,
  llm_temperature: 0.0, label: null, description: null, enable_recording: false, combine_last_call_context: false,
  provider: null, model: null, transcriber: null, call_duration_sec: null, max_idle_check_count: null,
  max_aggregate_idle_check_count: null, idle_after_interaction_seconds: null, voicemail_message: null, skills: [],
  min_volume: null, post_call_prompt: null, post_call_email: null, post_call_sms: null, post_call_actions: [],
  post_call_insights: [], activity_actions: [], enable_dynamic_turns: false, enable_preload_prompt: false,
  transfer_on_end: false, dynamic_max_silence_secs: null, dynamic_min_wait_secs: null,
  enable_dynamic_vm_detection: false, llm_vm_detection_only: false, noise_suppression_level: null,
};

/** An OpenAI connection inline: a full connection (with id) is a reference, one without id is created. */
const OpenAIConnectionInline = z.object({
  id: Uuid.optional(),
  type: z.literal('account_connection_openai'),
  credentials: z.object({ openai_api_key: z.string().min(1).max(2000) }).passthrough().optional(),
  label: labelled.label,
  description: labelled.description,
});

const refFieldsCreate = {
  prompt: z.union([Uuid, PromptParams]),
  voice: z.union([Uuid, withOptionalId(VoiceParams)]),
  actions: z.array(z.union([Uuid, withOptionalId(ActionParams)])).max(100).optional(),
  webhook: z.union([Uuid, withOptionalId(WebhookParams)]).nullable().optional(),
  vector_database: z.union([Uuid, withOptionalId(PineconeVectorDatabaseParams)]).nullable().optional(),
  openai_account_connection: z.union([Uuid, OpenAIConnectionInline]).nullable().optional(),
};

export const AgentParams = z.object({ ...optionalShape(scalarFields), ...refFieldsCreate }).openapi('AgentParams');

export const AgentUpdateParams = z.object({
  ...optionalShape(scalarFields),
  prompt: z.union([Uuid, PromptUpdateParams]).optional(),
  voice: z.union([Uuid, withOptionalId(VoiceUpdateParams)]).optional(),
  actions: z.array(z.union([Uuid, withOptionalId(ActionUpdateParams)])).max(100).optional(),
  webhook: z.union([Uuid, withOptionalId(WebhookUpdateParams)]).nullable().optional(),
  vector_database: z.union([Uuid, withOptionalId(PineconeVectorDatabaseUpdateParams)]).nullable().optional(),
  openai_account_connection: z.union([Uuid, OpenAIConnectionInline]).nullable().optional(),
}).openapi('AgentUpdateParams');

