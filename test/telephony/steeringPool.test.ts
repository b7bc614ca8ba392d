/**
 * The warm-transfer steering pool at the carrier: a number Switchboard buys for a pool is refused calls at the
 * carrier (it points at us, but takes none), is given back when it leaves the pool, and holds the connection
 * until then; a number the user put in the pool is never touched. The real server against the Twilio emulator
 * and the Telnyx fake.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type Emulator } from '../../src/telephony/emulator/index.js';
import { startTelnyxFake, type TelnyxFake } from '../fakes/telnyx.js';
import { carrierConnection } from '../helpers/carriers.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const TELNYX_KEY = 'KEYtelnyx-steering-pool-0123456789';

type Json = Record<string, any>;
type Carrier = 'twilio' | 'telnyx';

describe('steering pool numbers at the carrier', () => {
  let emu: Emulator;
  let telnyx: TelnyxFake;
  let s: TestServer;

  beforeAll(async () => {
    [emu, telnyx] = await Promise.all([startEmulator(), startTelnyxFake(TELNYX_KEY)]);
    s = await startTestServer({ TWILIO_API_BASE_URL: emu.url, TELNYX_API_BASE_URL: telnyx.url });
  });
  afterAll(async () => { await s?.close(); await Promise.all([emu?.close(), telnyx?.close()]); });

  const connection = (carrier: Carrier): Promise<string> =>
    carrierConnection(s, carrier === 'twilio' ? { twilio: emu } : { telnyx, apiKey: TELNYX_KEY });

  const atCarrier = (carrier: Carrier, number: string): boolean => (carrier === 'twilio'
    ? emu.numbers().some((n) => n.phone_number === number)
    : [...telnyx.numbers.values()].some((n) => n.phone_number === number));

  /** Rings `number` at the carrier; how the call ended there, and whether Switchboard recorded it. */
  async function ring(carrier: Carrier, number: string): Promise<{ refused: boolean; recorded: boolean }> {
    let telephonyId: string;
    let refused: boolean;
    if (carrier === 'twilio') {
      const call = await emu.placeInboundCall({ from: '+15557650001', to: number });
      await call.waitForEnd();
      telephonyId = call.sid;
      // <Reject/>: the caller hears busy or nothing, not Twilio's application-error message for a failed webhook.
      refused = call.events.some((e) => e.type === 'reject') && call.webhooks.filter((w) => w.kind === 'voice').every((w) => w.status === 200);
    } else {
      const call = telnyx.placeInboundCall({ from: '+15557650001', to: number, answerTimeoutMs: 3000 });
      await call.waitUntil(() => call.state === 'ended', 'the call to end', 5000);
      telephonyId = call.callControlId;
      refused = call.hangupCause === 'call_rejected';
    }
    const list = await s.api(`/v1/calls/list?filters=${encodeURIComponent(JSON.stringify({ telephony_id: telephonyId }))}`);
    return { refused, recorded: list.body.items.length > 0 };
  }

  it.each(['twilio', 'telnyx'] as const)('%s: a number bought for the pool refuses calls, and leaving the pool gives it back to the carrier', async (carrier) => {
    const id = await connection(carrier);
    const area = carrier === 'twilio' ? '617' : '312'; // what each carrier has for sale
    const added = await s.api(`/v1/account_connections/add_to_steering_pool?id=${id}`, { body: { area_code: area } });
    expect(added.status, JSON.stringify(added.body)).toBe(201);
    // The pool is what Vocode says it is: numbers, nothing else about them.
    expect(added.body.steering_pool).toEqual([expect.stringMatching(new RegExp(`^\\+1${area}\\d{7}$`))]);
    const number: string = added.body.steering_pool[0];
    expect(JSON.stringify(added.body)).not.toMatch(/number_id|bought|carrier_state/);
    expect((await s.api(`/v1/account_connections?id=${id}`)).body).toEqual(added.body);
    expect(atCarrier(carrier, number)).toBe(true);

    // It points at us (a bought number always does), but it is not a line: a call to it is refused at the carrier.
    expect(await ring(carrier, number)).toEqual({ refused: true, recorded: false });

    const removed = await s.api(`/v1/account_connections/remove_from_steering_pool?id=${id}`, { body: { phone_number: number } });
    expect(removed.status, JSON.stringify(removed.body)).toBe(201);
    expect(removed.body.steering_pool).toEqual([]);
    expect(atCarrier(carrier, number)).toBe(false);
    expect((await s.api(`/v1/numbers?phone_number=${encodeURIComponent(number)}`)).status).toBe(404);
  });

  it('a number the user put in the pool is theirs: leaving the pool neither releases nor re-points it', async () => {
    const id = await connection('twilio');
    const number = '+14155550381';
    emu.addNumber(number);
    expect((await s.api('/v1/numbers/link', { body: { phone_number: number, telephony_account_connection: id, inbound_agent: 'default' } })).status).toBe(201);
    const before = emu.numbers().find((n) => n.phone_number === number)!;
    expect((await s.api(`/v1/account_connections/add_to_steering_pool?id=${id}`, { body: { phone_number: number } })).status).toBe(201);
    const removed = await s.api(`/v1/account_connections/remove_from_steering_pool?id=${id}`, { body: { phone_number: number } });
    expect(removed.status).toBe(201);
    expect(removed.body.steering_pool).toEqual([]);
    expect(emu.numbers().find((n) => n.phone_number === number)).toEqual(before);
    expect((await s.api(`/v1/numbers?phone_number=${encodeURIComponent(number)}`)).body).toMatchObject({ active: true, outbound_only: false });
    // Removing what is not in the pool is refused, and changes nothing at the carrier.
    const again = await s.api(`/v1/account_connections/remove_from_steering_pool?id=${id}`, { body: { phone_number: number } });
    expect(again.status).toBe(422);
    expect(emu.numbers().find((n) => n.phone_number === number)).toEqual(before);
  });

  it('a connection holding numbers bought for its pool is not deleted until they are given back', async () => {
    const id = await connection('twilio');
    const added = await s.api(`/v1/account_connections/add_to_steering_pool?id=${id}`, { body: { area_code: '303' } });
    expect(added.status).toBe(201);
    const number: string = added.body.steering_pool[0];
    const refused = await s.api(`/v1/account_connections/delete?id=${id}`, { method: 'DELETE' });
    expect(refused.status).toBe(409);
    expect(refused.body.message).toContain(number);
    expect(refused.body.message).toMatch(/remove_from_steering_pool/);
    expect(atCarrier('twilio', number)).toBe(true);
    expect((await s.api(`/v1/account_connections/remove_from_steering_pool?id=${id}`, { body: { phone_number: number } })).status).toBe(201);
    expect(atCarrier('twilio', number)).toBe(false);
    expect((await s.api(`/v1/account_connections/delete?id=${id}`, { method: 'DELETE' })).status).toBe(200);
  });

  it('a bought number an update dropped from the pool list still holds the connection, and can still be given back', async () => {
    const id = await connection('twilio');
    const added = await s.api(`/v1/account_connections/add_to_steering_pool?id=${id}`, { body: { area_code: '303' } });
    expect(added.status).toBe(201);
    const number: string = added.body.steering_pool[0];
    const updated = await s.api(`/v1/account_connections/update?id=${id}`, { body: { type: 'account_connection_twilio', steering_pool: [] } });
    expect(updated.status, JSON.stringify(updated.body)).toBe(201);
    expect(updated.body.steering_pool).toEqual([]);
    const refused = await s.api(`/v1/account_connections/delete?id=${id}`, { method: 'DELETE' });
    expect(refused.status).toBe(409);
    expect(refused.body.message).toContain(number);
    const removed = await s.api(`/v1/account_connections/remove_from_steering_pool?id=${id}`, { body: { phone_number: number } });
    expect(removed.status, JSON.stringify(removed.body)).toBe(201);
    expect(atCarrier('twilio', number)).toBe(false);
    expect((await s.api(`/v1/account_connections/delete?id=${id}`, { method: 'DELETE' })).status).toBe(200);
  });
});
