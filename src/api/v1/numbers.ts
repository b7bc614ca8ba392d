import { z, PhoneNumberString, Uuid } from '../../domain/common.js';
import { ValidationError } from '../../domain/errors.js';
import { LinkPhoneNumberRequest, UpdateNumberRequest } from '../../domain/numbers.js';
import type { Db } from '../../store/db.js';
import type { Store } from '../../store/store.js';
import { ListQuery, pageOf, type RouteDef } from '../routes.js';

const NumberQuery = z.object({ phone_number: PhoneNumberString });
/** detach/delete: Fluents' clients pass `id`, Vocode-style ones `phone_number`. */
const NumberOrIdQuery = z.object({ phone_number: PhoneNumberString.optional(), id: Uuid.optional() });

export function numberRoutes(store: Store): RouteDef[] {
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

  const remove = (method: 'delete' | 'post', path: string, operationId: string, summary: string): RouteDef<{ phone_number?: string; id?: string }> => ({
    method, path, operationId, summary, tag: 'numbers', query: NumberOrIdQuery, response: one, status: method === 'post' ? 201 : 200,
    handler: ({ userId, query }) => store.tx(async (db) => {
      const number = await resolve(db, userId, query);
      const before = await n.getExpanded(db, userId, number);
      await n.remove(db, userId, number);
      return before;
    }),
  });

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
      method: 'post', path: '/v1/numbers/link', operationId: 'link_number', summary: 'Link a number you own at a carrier', tag: 'numbers',
      body: LinkPhoneNumberRequest, response: one, status: 201,
      handler: ({ userId, body }) => store.tx(async (db) => {
        const row = await n.link(db, userId, body);
        return n.getExpanded(db, userId, row.number);
      }),
    },
    {
      method: 'post', path: '/v1/numbers/cancel', operationId: 'cancel_number', summary: 'Cancel (release) number', tag: 'numbers',
      query: NumberQuery, response: one, status: 201,
      handler: ({ userId, query }) => store.tx(async (db) => {
        await n.setActive(db, userId, query.phone_number, false);
        return n.getExpanded(db, userId, query.phone_number);
      }),
    },
    remove('post', '/v1/numbers/detach', 'detach_number', 'Detach number (unlink it from Switchboard; the carrier keeps it)'),
    remove('delete', '/v1/numbers/delete', 'delete_number', 'Delete number'),
    remove('post', '/v1/numbers/delete', 'delete_number_post', 'Delete number'),
  ];
}
