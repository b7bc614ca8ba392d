/**
 * Which carrier account a number or a call goes through: the user's own (account_connection_twilio,
 * account_connection_telnyx) or the platform's (account_connection_fluents_twilio, or no connection at all
 * when buying), whose credentials come from the environment. One place, so numbers, outbound calls and
 * webhook signature checks always agree.
 */
import type { Config } from '../config.js';
import { ValidationError } from '../domain/errors.js';
import { TwilioRest, type TwilioAccount } from './twilio/rest.js';
import type { TelephonyProvider } from './types.js';

type Json = Record<string, unknown>;

/** An account connection with its credentials in clear (Store.connectionLookup / ResourceRepo.reveal). */
export interface RevealedConnection {
  id: string;
  type: string;
  credentials?: Json | null;
  config?: Json | null;
  steering_pool?: string[];
  account_supports_any_caller_id?: boolean;
}

export interface TwilioCarrierAccount {
  provider: 'twilio';
  account: TwilioAccount;
  rest: TwilioRest;
  /** The account connection behind it; null for the platform account. */
  connectionId: string | null;
  anyCallerId: boolean;
  /** The platform's own account (shared by every user): numbers in it are only ever the ones bought through us. */
  platform: boolean;
}

export interface TelnyxCarrierAccount {
  provider: 'telnyx';
  apiKey: string;
  publicKey: string | null;
  /** The Call Control application numbers and calls use (ours, created on first need, or the one given). */
  connectionId: string | null;
  baseUrl: string;
  accountConnectionId: string | null;
  anyCallerId: boolean;
  platform: boolean;
}

export type CarrierAccount = TwilioCarrierAccount | TelnyxCarrierAccount;

export const PROVIDER_OF_CONNECTION: Record<string, TelephonyProvider> = {
  account_connection_twilio: 'twilio', account_connection_fluents_twilio: 'twilio', account_connection_telnyx: 'telnyx',
};

const str = (v: unknown): string | undefined => (typeof v === 'string' && v.trim() ? v.trim() : undefined);

/** A carrier account is missing or unusable: the API answers 422 naming the field that chose it. */
export class CarrierAccountError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CarrierAccountError';
  }
}

export function platformTwilio(config: Config): TwilioCarrierAccount {
  const accountSid = str(config.TWILIO_ACCOUNT_SID);
  const authToken = str(config.TWILIO_AUTH_TOKEN);
  if (!accountSid || !authToken) {
    throw new CarrierAccountError('the platform Twilio account is not configured on this server (TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN); use an account_connection_twilio with your own Twilio credentials');
  }
  const account = { accountSid, authToken, baseUrl: config.TWILIO_API_BASE_URL };
  return { provider: 'twilio', account, rest: new TwilioRest(account), connectionId: null, anyCallerId: false, platform: true };
}

export function platformTelnyx(config: Config): TelnyxCarrierAccount {
  const apiKey = str(config.TELNYX_API_KEY);
  if (!apiKey) throw new CarrierAccountError('the platform Telnyx account is not configured on this server (TELNYX_API_KEY); use an account_connection_telnyx with your own Telnyx API key');
  return {
    provider: 'telnyx', apiKey, publicKey: str(config.TELNYX_PUBLIC_KEY) ?? null, connectionId: str(config.TELNYX_CONNECTION_ID) ?? null,
    baseUrl: config.TELNYX_API_BASE_URL, accountConnectionId: null, anyCallerId: false, platform: true,
  };
}

/** The carrier account of a telephony account connection (or the platform's, for fluents_twilio). */
export function carrierAccountOf(conn: RevealedConnection, config: Config): CarrierAccount {
  const c = { ...(conn.config ?? {}), ...(conn.credentials ?? {}) };
  const anyCallerId = conn.account_supports_any_caller_id === true;
  switch (conn.type) {
    case 'account_connection_fluents_twilio':
      // The platform account is shared: any caller id there would let a user call out as another user's number.
      return { ...platformTwilio(config), connectionId: conn.id };
    case 'account_connection_twilio': {
      const accountSid = str(c.twilio_account_sid);
      const authToken = str(c.twilio_auth_token);
      if (!accountSid || !authToken) throw new CarrierAccountError(`account connection ${conn.id} has no twilio_account_sid or twilio_auth_token`);
      const account = { accountSid, authToken, baseUrl: config.TWILIO_API_BASE_URL };
      return { provider: 'twilio', account, rest: new TwilioRest(account), connectionId: conn.id, anyCallerId, platform: false };
    }
    case 'account_connection_telnyx': {
      const apiKey = str(c.telnyx_api_key);
      if (!apiKey) throw new CarrierAccountError(`account connection ${conn.id} has no telnyx_api_key`);
      return {
        // Telnyx signs webhooks per account: the platform's key cannot verify a user's own account.
        provider: 'telnyx', apiKey, publicKey: str(c.telnyx_public_key) ?? null,
        connectionId: str(c.telnyx_connection_id) ?? null, baseUrl: config.TELNYX_API_BASE_URL, accountConnectionId: conn.id, anyCallerId, platform: false,
      };
    }
    default:
      throw new CarrierAccountError(`account connection ${conn.id} is an ${conn.type}, not a telephony connection (${Object.keys(PROVIDER_OF_CONNECTION).join(', ')})`);
  }
}

/**
 * Calls through an account need its webhooks verified: a Telnyx account without its public key could
 * place and take calls whose events we would have to refuse. Refused as a 422 naming `loc`, the field that
 * chose the account.
 */
export function requireWebhookKey(account: CarrierAccount, loc: (string | number)[]): void {
  if (account.provider === 'telnyx' && !account.publicKey) {
    throw ValidationError.one(loc, account.platform
      ? 'TELNYX_PUBLIC_KEY is not set on this server: Telnyx webhooks could not be verified'
      : 'the account connection has no credentials.telnyx_public_key (Mission Control → Keys & Credentials → Public Key): Telnyx webhooks could not be verified');
  }
}
