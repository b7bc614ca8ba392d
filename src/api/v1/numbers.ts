import { z, PhoneNumberString, Uuid } from '../../domain/common.js';
import { ValidationError } from '../../domain/errors.js';
import { AvailableNumbersFilters, AvailableNumbersQuery, BuyPhoneNumberRequest, LinkPhoneNumberRequest, NUMBER_DATA_DEFAULTS, UpdateNumberRequest } from '../../domain/numbers.js';
import { parseOrThrow } from '../../domain/validation.js';
import type { Db } from '../../store/db.js';
import type { Store } from '../../store/store.js';
import type { TelephonyContext } from '../../telephony/context.js';
import { buyNumber, letGo, linkNumber, searchAvailable } from '../../telephony/numbers.js';
import { ListQuery, pageOf, type RouteDef } from '../routes.js';

const NumberQuery = z.object({ phone_number: PhoneNumberString });
/** detach/delete: Fluents' clients pass `id`, Vocode-style ones `phone_number`. */
const NumberOrIdQuery = z.object({ phone_number: PhoneNumberString.optional(), id: Uuid.optional() });

export function numberRoutes(store: Store, telephony: TelephonyContext): RouteDef[] {
  const n = store.numbers;
  const one = LinkPhoneNumberRequest.omit({ phone_number: true, telephony_account_connection: true, inbound_agent: true }).extend({
    id: z.uuid(), user_id: z.uuid(), number: z.string(), active: z.boolean(), telephony_provider: z.string(),
    inbound_agent: z.record(z.string(), z.unknown()).nullable(), telephony_account_connection: z.record(z.string(), z.unknown()).nullable(),
  }).openapi('PhoneNumber');
  const item = one.extend({ inbound_agent: z.uuid().nullable(), telephony_account_connection: z.uuid().nullable() }).openapi('NormalizedPhoneNumber');

  async function resolve(db: Db, userId: string, q: { phone_number?: string; id?: string }): Promise<string> {
    if (q.phone_number) return q.phone_number;
    if (!q.id) throw ValidationError.one(['query', 'phone_number'], 'Field required (or pass id)', 'missing');
    return (await n.getById(db, userId, q.id)).number;
  }

  /**
   * detach: the number leaves Switchboard and its previous voice configuration comes back; delete also
   * gives back a number Switchboard bought (a linked number stays in the user's carrier account).
   */
  const remove = (method: 'delete' | 'post', path: string, operationId: string, summary: string, mode: 'release' | 'restore'): RouteDef<{ phone_number?: string; id?: string }> => ({
    method, path, operationId, summary, tag: 'numbers', query: NumberOrIdQuery, response: one, status: method === 'post' ? 201 : 200,
    handler: async ({ userId, query }) => {
      const number = await resolve(store.db, userId, query);
      const row = await n.get(store.db, userId, number);
      const before = await n.getExpanded(store.db, userId, number);
      await letGo(telephony, row, mode);
      await n.remove(store.db, userId, row.id);
      return before;
    },
  });

  const AvailableNumber = z.object({
    phone_number: z.string(), number: z.string(), friendly_name: z.string().nullable(), locality: z.string().nullable(),
    region: z.string().nullable(), country_code: z.string(), telephony_provider: z.string(),
    capabilities: z.object({ voice: z.boolean(), sms: z.boolean(), mms: z.boolean() }),
  }).openapi('AvailablePhoneNumber');

  return [
    {
      method: 'get', path: '/v1/numbers', operationId: 'get_number', summary: 'Get number', tag: 'numbers',
      query: NumberQuery, response: one, status: 200,
      handler: ({ userId, query }) => n.getExpanded(store.db, userId, query.phone_number),
    },
    {
      method: 'get', path: '/v1/numbers/list', operationId: 'list_numbers', summary: 'List numbers', tag: 'numbers',
      query: ListQuery, response: pageOf(item, 'PhoneNumberPage'), status: 200,
      handler: ({ userId, query }) => n.list(store.db, userId, query),
    },
    {
      method: 'post', path: '/v1/numbers/update', operationId: 'update_number', summary: 'Update number', tag: 'numbers',
      query: NumberQuery, body: UpdateNumberRequest, response: one, status: 201,
      handler: ({ userId, query, body }) => store.tx(async (db) => {
        await n.update(db, userId, query.phone_number, body);
        return n.getExpanded(db, userId, query.phone_number);
      }),
    },
    {
      method: 'get', path: '/v1/numbers/available', operationId: 'available_numbers', summary: 'Search numbers you can buy', tag: 'numbers',
      query: AvailableNumbersQuery, response: z.object({ items: z.array(AvailableNumber), total: z.number().int() }).openapi('AvailablePhoneNumbers'), status: 200,
      handler: async ({ userId, query }) => {
        let f: z.infer<typeof AvailableNumbersFilters> = {};
        if (query.filters) {
          let parsed: unknown;
          try { parsed = JSON.parse(query.filters); } catch { throw ValidationError.one(['query', 'filters'], 'must be a JSON object, e.g. {"area_code":"415"}'); }
          f = parseOrThrow(AvailableNumbersFilters, parsed, ['query', 'filters']);
        }
        return searchAvailable(telephony, userId, {
          limit: query.limit, provider: query.telephony_provider, connectionId: query.telephony_account_connection,
          areaCode: query.area_code ?? f.area_code, contains: query.contains ?? f.contains,
          tollFree: query.toll_free ?? f.toll_free, country: query.country_code ?? f.country_code,
        });
      },
    },
    {
      method: 'post', path: '/v1/numbers/buy', operationId: 'buy_number', summary: 'Buy a number (specific, or any in an area code)', tag: 'numbers',
      body: BuyPhoneNumberRequest, bodyRequired: false, response: one, status: 201,
      handler: ({ userId, body }) => buyNumber(telephony, userId, body, (claimed, account, state) => store.tx(async (db) => {
        const row = await n.insertClaimed(db, userId, body, { number: claimed.number, provider: account.provider, connectionId: body.telephony_account_connection ?? null, carrierState: { ...state } });
        return n.getExpanded(db, userId, row.number);
      })),
    },
    {
      method: 'post', path: '/v1/numbers/link', operationId: 'link_number', summary: 'Link a number you own at a carrier', tag: 'numbers',
      body: LinkPhoneNumberRequest, response: one, status: 201,
      handler: ({ userId, body }) => linkNumber(telephony, userId, body, (_claimed, _account, state) => store.tx(async (db) => {
        const row = await n.link(db, userId, body, { ...state });
        return n.getExpanded(db, userId, row.number);
      })),
    },
    {
      method: 'post', path: '/v1/numbers/cancel', operationId: 'cancel_number', summary: 'Cancel a number (a bought number is released at the carrier)', tag: 'numbers',
      query: NumberQuery, response: one, status: 201,
      handler: async ({ userId, query }) => {
        const row = await n.get(store.db, userId, query.phone_number);
        if (row.active) {
          await letGo(telephony, row, 'release');
          await n.setActiveById(store.db, row.id, false);
        }
        return n.getExpanded(store.db, userId, query.phone_number);
      },
    },
    remove('post', '/v1/numbers/detach', 'detach_number', 'Detach number (unlink it from Switchboard; the carrier keeps it)', 'restore'),
    remove('delete', '/v1/numbers/delete', 'delete_number', 'Delete number', 'release'),
    remove('post', '/v1/numbers/delete', 'delete_number_post', 'Delete number', 'release'),
  ];
}
