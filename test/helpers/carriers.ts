/**
 * A telephony account connection of a test server's user to one of the local carriers: the Twilio emulator's
 * account, or a Telnyx fake's (with the public key its webhooks are signed with). Answers its id.
 */
import { expect } from 'vitest';
import type { Emulator } from '../../src/telephony/emulator/index.js';
import type { TelnyxFake } from '../fakes/telnyx.js';
import type { TestServer } from './server.js';

export type LocalCarrier = { twilio: Emulator } | { telnyx: TelnyxFake; apiKey: string };

export async function carrierConnection(s: TestServer, carrier: LocalCarrier): Promise<string> {
  const body = 'twilio' in carrier
    ? { type: 'account_connection_twilio', credentials: { twilio_account_sid: carrier.twilio.accountSid, twilio_auth_token: carrier.twilio.authToken } }
    : { type: 'account_connection_telnyx', credentials: { telnyx_api_key: carrier.apiKey, telnyx_public_key: carrier.telnyx.publicKeyBase64 } };
  const r = await s.api('/v1/account_connections/create', { body });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body.id as string;
}
