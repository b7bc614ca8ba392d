import { randomBytes } from 'node:crypto';
import { z, HttpUrl, labelled } from './common.js';

export const FunctionCallActionTrigger = z.object({
  type: z.literal('action_trigger_function_call'),
  config: z.object({}).passthrough().optional(),
}).openapi('FunctionCallActionTrigger');

export const PhraseTrigger = z.object({
  phrase: z.string().min(1).max(500),
  conditions: z.array(z.literal('phrase_condition_type_contains')).min(1),
}).openapi('PhraseTrigger');

export const PhraseBasedActionTrigger = z.object({
  type: z.literal('action_trigger_phrase_based'),
  config: z.object({ phrase_triggers: z.array(PhraseTrigger).min(1).max(50) }),
}).openapi('PhraseBasedActionTrigger');

const AnyTrigger = z.discriminatedUnion('type', [FunctionCallActionTrigger, PhraseBasedActionTrigger]);

/** A phone number, or a `{placeholder}` filled from the call context at run time. */
const TransferTarget = z.string().min(1).max(100).regex(/^(\+?[\d\s().-]{7,20}|\{[A-Za-z0-9_]+\}|sip:.+)$/, {
  message: 'must be a phone number, a sip: URI or a {context_key} placeholder',
});

const EmptyConfig = z.object({}).passthrough();

const configs = {
  action_transfer_call: z.object({ phone_number: TransferTarget }).openapi('TransferCallConfig'),
  action_end_conversation: EmptyConfig,
  action_dtmf: EmptyConfig,
  action_add_to_conference: z.object({
    phone_number: TransferTarget,
    place_primary_on_hold: z.boolean().optional(),
  }).openapi('AddToConferenceConfig'),
  action_set_hold: EmptyConfig,
  action_external: z.object({
    processing_mode: z.literal('muted').optional(),
    name: z.string().min(1).max(64).regex(/^[A-Za-z0-9_-]+$/, { message: 'must be letters, digits, _ or - (it is the tool name the LLM calls)' }),
    description: z.string().min(1).max(2000),
    url: HttpUrl,
    input_schema: z.record(z.string(), z.unknown()),
    speak_on_send: z.boolean(),
    speak_on_receive: z.boolean(),
    signature_secret: z.string().min(16).max(200).optional(),
  }).openapi('ExternalActionConfig'),
  // Fluents: a transfer that briefs the human first (hold, conference, then leave).
  action_warm_transfer: z.object({
    phone_number: TransferTarget,
    place_primary_on_hold: z.boolean().optional(),
    hold_message: z.string().max(2000).nullable().optional(),
    summary_prompt: z.string().max(5000).nullable().optional(),
  }).openapi('WarmTransferConfig'),
} as const;

export type ActionType = keyof typeof configs;
export const ACTION_TYPES = Object.keys(configs) as ActionType[];

/** Vocode allows only function-call triggers on these. */
const FUNCTION_ONLY: ReadonlySet<string> = new Set(['action_dtmf', 'action_external']);

function triggerFor(type: ActionType) {
  return FUNCTION_ONLY.has(type) ? FunctionCallActionTrigger : AnyTrigger;
}

function variant(type: ActionType, update: boolean) {
  const cfg = configs[type];
  return z.object({
    type: z.literal(type),
    // An update's config is merged into the stored one, so any of its fields may be left out.
    config: update ? (cfg as z.ZodObject).partial().optional() : cfg === EmptyConfig ? cfg.optional() : cfg,
    action_trigger: triggerFor(type).optional(),
    ...labelled,
  });
}

export const ActionParams = z.discriminatedUnion('type',
  ACTION_TYPES.map((t) => variant(t, false)) as never as [ReturnType<typeof variant>, ...ReturnType<typeof variant>[]],
).openapi('ActionParamsRequest');

export const ActionUpdateParams = z.discriminatedUnion('type',
  ACTION_TYPES.map((t) => variant(t, true)) as never as [ReturnType<typeof variant>, ...ReturnType<typeof variant>[]],
).openapi('ActionUpdateParamsRequest');

export function actionDefaults(type: string): Record<string, unknown> {
  const base: Record<string, unknown> = {
    config: {}, action_trigger: { type: 'action_trigger_function_call', config: {} }, label: null, description: null,
  };
  if (type === 'action_add_to_conference' || type === 'action_warm_transfer') base.config = { place_primary_on_hold: true };
  return base;
}

/** Fills config defaults that live inside the nested config object, and the external action's secret. */
export function completeActionConfig(type: string, config: Record<string, unknown>): Record<string, unknown> {
  const c = { ...config };
  if (type === 'action_external') {
    c.processing_mode ??= 'muted';
    c.signature_secret ??= randomBytes(32).toString('base64');
  }
  if (type === 'action_add_to_conference' || type === 'action_warm_transfer') c.place_primary_on_hold ??= true;
  return c;
}
