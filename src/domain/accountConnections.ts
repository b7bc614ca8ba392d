import { z, labelled, PhoneNumberString } from './common.js';

interface CredentialField { name: string; secret: boolean; required: boolean; note?: string }
const f = (name: string, secret: boolean, required = true, note?: string): CredentialField => ({ name, secret, required, note });

/**
 * The credential fields of each account-connection type. Secret fields are sealed at rest and masked in
 * responses. Twilio's and OpenAI's are Vocode's; the rest follow each vendor's own naming.
 */
export const CREDENTIAL_FIELDS = {
  account_connection_fluents_twilio: [] as CredentialField[],
  account_connection_twilio: [f('twilio_account_sid', false), f('twilio_auth_token', true)],
  account_connection_openai: [f('openai_api_key', true), f('openai_organization', false, false), f('base_url', false, false)],
  account_connection_google: [f('google_api_key', true, false), f('service_account_json', true, false), f('project_id', false, false)],
  account_connection_azure_llm: [f('azure_openai_api_key', true), f('azure_openai_endpoint', false), f('api_version', false, false), f('deployment_name', false, false)],
  account_connection_elevenlabs: [f('elevenlabs_api_key', true)],
  account_connection_deepgram: [f('deepgram_api_key', true)],
  account_connection_cartesia: [f('cartesia_api_key', true)],
  account_connection_playht: [f('playht_api_key', true), f('playht_user_id', false)],
  account_connection_rime: [f('rime_api_key', true)],
  account_connection_azure_speech: [f('azure_speech_key', true), f('azure_speech_region', false)],
  account_connection_assemblyai: [f('assemblyai_api_key', true)],
  account_connection_deepseek: [f('deepseek_api_key', true)],
  account_connection_togetherai: [f('togetherai_api_key', true)],
  account_connection_gladia: [f('gladia_api_key', true)],
  account_connection_anthropic: [f('anthropic_api_key', true)],
  account_connection_groq: [f('groq_api_key', true)],
  account_connection_telnyx: [f('telnyx_api_key', true), f('telnyx_public_key', false, false), f('telnyx_connection_id', false, false)],
  account_connection_un_pw_oauth: [f('username', false), f('password', true), f('token_url', false, false), f('client_id', false, false), f('client_secret', true, false)],
  account_connection_login_key_oauth: [f('login', false), f('key', true), f('token_url', false, false)],
  account_connection_external_api_key: [f('api_key', true), f('header_name', false, false), f('base_url', false, false)],
  account_connection_sip: [f('sip_uri', false), f('username', false, false), f('password', true, false)],
} satisfies Record<string, CredentialField[]>;

export type AccountConnectionType = keyof typeof CREDENTIAL_FIELDS;
export const ACCOUNT_CONNECTION_TYPES = Object.keys(CREDENTIAL_FIELDS) as AccountConnectionType[];

/** Types that carry phone numbers: steering pool and any-caller-id apply to them. */
export const TELEPHONY_TYPES: ReadonlySet<string> = new Set([
  'account_connection_twilio', 'account_connection_fluents_twilio', 'account_connection_telnyx',
]);

/** Types where at least one of the listed optional fields must be present. */
const ONE_OF: Partial<Record<AccountConnectionType, string[]>> = {
  account_connection_google: ['google_api_key', 'service_account_json'],
};

function credentialsSchema(type: AccountConnectionType, update: boolean) {
  const shape: Record<string, z.ZodType> = {};
  for (const field of CREDENTIAL_FIELDS[type]) {
    const s = z.string().min(1, 'must not be empty').max(field.name === 'service_account_json' ? 20_000 : 2000);
    shape[field.name] = field.required && !update ? s : s.nullable().optional();
  }
  let schema = z.object(shape).strict();
  const oneOf = ONE_OF[type];
  if (oneOf && !update) {
    schema = schema.refine((c) => oneOf.some((k) => typeof c[k] === 'string'), {
      message: `one of ${oneOf.join(', ')} is required`,
    }) as never;
  }
  return schema;
}

function variant(type: AccountConnectionType, update: boolean) {
  const creds = credentialsSchema(type, update);
  // On create, credentials are required when the type has a required field (or needs one of several).
  const required = !update && (CREDENTIAL_FIELDS[type].some((x) => x.required) || ONE_OF[type] !== undefined);
  return z.object({
    type: z.literal(type),
    credentials: required ? creds : creds.optional(),
    ...(TELEPHONY_TYPES.has(type) ? {
      steering_pool: z.array(PhoneNumberString).max(100).optional(),
      account_supports_any_caller_id: z.boolean().optional(),
    } : {}),
    config: z.record(z.string(), z.unknown()).optional(),
    ...labelled,
  });
}

type V = ReturnType<typeof variant>;
export const AccountConnectionParams = z.discriminatedUnion('type',
  ACCOUNT_CONNECTION_TYPES.map((t) => variant(t, false)) as [V, ...V[]]).openapi('AccountConnectionParamsRequest');
export const AccountConnectionUpdateParams = z.discriminatedUnion('type',
  ACCOUNT_CONNECTION_TYPES.map((t) => variant(t, true)) as [V, ...V[]]).openapi('AccountConnectionUpdateParamsRequest');

export function accountConnectionDefaults(type: string): Record<string, unknown> {
  const base: Record<string, unknown> = { credentials: {}, config: {}, label: null, description: null };
  if (TELEPHONY_TYPES.has(type)) Object.assign(base, { steering_pool: [], account_supports_any_caller_id: false });
  return base;
}

export const AccountConnectionSecrets: Record<string, string[][]> = Object.fromEntries(
  ACCOUNT_CONNECTION_TYPES.map((t) => [t, CREDENTIAL_FIELDS[t].filter((x) => x.secret).map((x) => ['credentials', x.name])]),
);

export const AddToSteeringPoolRequest = z.object({
  phone_number: PhoneNumberString.nullable().optional(),
  // Without a phone_number a number is bought for the pool, in this area code when given.
  area_code: z.string().regex(/^\d{2,5}$/, { message: 'must be 2 to 5 digits, e.g. "415"' }).nullable().optional(),
})
  .openapi('AddToSteeringPoolRequest');
export const RemoveFromSteeringPoolRequest = z.object({ phone_number: PhoneNumberString })
  .openapi('RemoveFromSteeringPoolRequest');
