import { z, PhoneNumberString, StringMap, Uuid } from './common.js';
import { AgentParams } from './agents.js';

/** Vocode's CreateCallAgentParams: AgentParams with the voice optional (a default voice is used). */
export const CreateCallAgentParams = AgentParams.extend({ voice: AgentParams.shape.voice.optional() }).openapi('CreateCallAgentParams');

export const CreateCallRequest = z.object({
  from_number: PhoneNumberString,
  to_number: PhoneNumberString,
  agent: z.union([Uuid, CreateCallAgentParams]),
  on_no_human_answer: z.enum(['continue', 'hangup']).optional(),
  run_do_not_call_detection: z.boolean().nullable().optional(),
  hipaa_compliant: z.boolean().optional(),
  context: StringMap.nullable().optional(),
  telephony_params: StringMap.nullable().optional(),
  // Fluents: pick the carrier account when from_number is not one of your numbers (any caller id).
  telephony_account_connection: Uuid.nullable().optional(),
  label: z.string().max(500).nullable().optional(),
  description: z.string().max(5000).nullable().optional(),
}).openapi('CreateCallRequest');

/** The voice a call's inline agent gets when it names none: the platform's default agent's. */
export const DEFAULT_CALL_VOICE = { type: 'voice_azure', voice_name: 'en-US-AriaNeural' } as const;
