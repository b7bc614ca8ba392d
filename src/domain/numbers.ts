import { z, labelled, StringMap, Uuid, PhoneNumberString } from './common.js';
import { AgentParams, AgentUpdateParams } from './agents.js';

const numberExtras = {
  ...labelled,
  label: z.string().max(500).nullable().optional(),
  config: z.record(z.string(), z.unknown()).optional(),
  tags: z.array(z.string().max(100)).max(50).optional(),
  sms_enabled: z.boolean().optional(),
  is_routing_number: z.boolean().optional(),
};

/** `inbound_agent` on link/buy: an agent inline, an id, or "default" (a starter agent is created). */
export const InboundAgentCreate = z.union([z.literal('default'), Uuid, AgentParams]).nullable().optional();

export const LinkPhoneNumberRequest = z.object({
  phone_number: PhoneNumberString,
  telephony_account_connection: Uuid,
  outbound_only: z.boolean().optional(),
  inbound_agent: InboundAgentCreate,
  example_context: StringMap.nullable().optional(),
  ...numberExtras,
}).openapi('LinkPhoneNumberRequest');

export const UpdateNumberRequest = z.object({
  outbound_only: z.boolean().optional(),
  example_context: StringMap.nullable().optional(),
  inbound_agent: z.union([Uuid, AgentUpdateParams]).nullable().optional(),
  ...numberExtras,
}).openapi('UpdateNumberRequest');


export const NUMBER_DATA_DEFAULTS = { example_context: null, config: {}, tags: [], sms_enabled: false, is_routing_number: false };
