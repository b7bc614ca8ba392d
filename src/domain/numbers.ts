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

export const TelephonyProviderName = z.enum(['twilio', 'telnyx', 'vonage']).openapi('TelephonyProvider');

/** Vocode's BuyPhoneNumberRequest plus Fluents' `phone_number` (a number from numbers/available). */
export const BuyPhoneNumberRequest = z.object({
  area_code: z.string().regex(/^\d{2,5}$/, { message: 'must be 2 to 5 digits, e.g. "415"' }).nullable().optional(),
  phone_number: PhoneNumberString.nullable().optional(),
  telephony_provider: TelephonyProviderName.optional(),
  telephony_account_connection: Uuid.nullable().optional(),
  outbound_only: z.boolean().optional(),
  inbound_agent: InboundAgentCreate,
  example_context: StringMap.nullable().optional(),
  ...numberExtras,
}).openapi('BuyPhoneNumberRequest');

const boolParam = z.union([z.boolean(), z.enum(['true', 'false', '1', '0'])]).transform((v) => v === true || v === 'true' || v === '1');

/** GET /v1/numbers/available: Fluents' query (limit, provider, connection, filters JSON) with the filters also accepted flat. */
export const AvailableNumbersQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(10),
  telephony_provider: TelephonyProviderName.optional(),
  telephony_account_connection: Uuid.optional(),
  filters: z.string().max(2000).optional(),
  area_code: z.string().regex(/^\d{2,5}$/, { message: 'must be 2 to 5 digits' }).optional(),
  contains: z.string().regex(/^[\d*]{1,15}$/, { message: 'must be digits (and * wildcards)' }).optional(),
  toll_free: boolParam.optional(),
  country_code: z.string().regex(/^[A-Za-z]{2}$/, { message: 'must be a two-letter country code' }).optional(),
});

/** The keys `filters` may carry on numbers/available. */
export const AvailableNumbersFilters = z.object({
  area_code: z.union([z.string(), z.number()]).transform(String).pipe(z.string().regex(/^\d{2,5}$/, { message: 'must be 2 to 5 digits' })).optional(),
  contains: z.union([z.string(), z.number()]).transform(String).pipe(z.string().regex(/^[\d*]{1,15}$/, { message: 'must be digits' })).optional(),
  toll_free: z.boolean().optional(),
  country_code: z.string().regex(/^[A-Za-z]{2}$/, { message: 'must be a two-letter country code' }).optional(),
}).strict();

export const UpdateNumberRequest = z.object({
  outbound_only: z.boolean().optional(),
  example_context: StringMap.nullable().optional(),
  inbound_agent: z.union([Uuid, AgentUpdateParams]).nullable().optional(),
  ...numberExtras,
}).openapi('UpdateNumberRequest');


export const NUMBER_DATA_DEFAULTS = { example_context: null, config: {}, tags: [], sms_enabled: false, is_routing_number: false };
