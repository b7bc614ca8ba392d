import {
  AccountConnectionParams, AccountConnectionUpdateParams, AddToSteeringPoolRequest, RemoveFromSteeringPoolRequest, TELEPHONY_TYPES,
} from '../../domain/accountConnections.js';
import { ValidationError } from '../../domain/errors.js';
import type { TelephonyContext } from '../../telephony/context.js';
import { buyPoolNumber } from '../../telephony/numbers.js';
import type { Db } from '../../store/db.js';
import type { Store } from '../../store/store.js';
import { IdQuery, type RouteDef } from '../routes.js';
import { crudRoutes, withIds } from './crud.js';
import { flatOps } from './resources.js';

export function accountConnectionRoutes(store: Store, telephony: TelephonyContext): RouteDef[] {
  const repo = store.connections;
  const one = withIds(AccountConnectionParams, 'AccountConnectionResponseModel');

  async function pool(db: Db, userId: string, id: string) {
    const row = await repo.get(db, userId, id, true);
    if (!TELEPHONY_TYPES.has(row.type ?? '')) {
      throw ValidationError.one(['query', 'id'], `steering pools belong to telephony connections; ${id} is ${row.type}`);
    }
    return { row, pool: (row.data.steering_pool as string[] | undefined) ?? [] };
  }

  return [
    ...crudRoutes(store, {
      resource: 'account_connections', singular: 'account_connection', create: AccountConnectionParams,
      update: AccountConnectionUpdateParams, one, item: one, pageName: 'AccountConnectionPage', ops: flatOps(repo),
    }),
    {
      method: 'post', path: '/v1/account_connections/add_to_steering_pool', operationId: 'add_to_steering_pool',
      summary: 'Add a number to the warm-transfer steering pool', tag: 'account_connections',
      query: IdQuery, body: AddToSteeringPoolRequest, bodyRequired: false, response: one, status: 201,
      handler: async ({ userId, query, body }) => {
        await pool(store.db, userId, query.id); // a telephony connection of the user's, before anything is bought
        // No number given: buy one through the connection's carrier (outside the transaction: it is a carrier call).
        const bought = body.phone_number ? null : await buyPoolNumber(telephony, userId, query.id, body.area_code ?? undefined);
        const number = body.phone_number ?? bought!.number;
        try {
          return await store.tx(async (db) => {
            const { row, pool: current } = await pool(db, userId, query.id);
            const next = current.includes(number) ? current : [...current, number];
            return repo.serialize(await repo.patchData(db, userId, row.id, { ...row.data, steering_pool: next }));
          });
        } catch (err) {
          if (bought) await bought.release().catch(() => {});
          throw err;
        }
      },
    },
    {
      method: 'post', path: '/v1/account_connections/remove_from_steering_pool', operationId: 'remove_from_steering_pool',
      summary: 'Remove a number from the steering pool', tag: 'account_connections',
      query: IdQuery, body: RemoveFromSteeringPoolRequest, response: one, status: 201,
      handler: ({ userId, query, body }) => store.tx(async (db) => {
        const { row, pool: current } = await pool(db, userId, query.id);
        if (!current.includes(body.phone_number)) {
          throw ValidationError.one(['body', 'phone_number'], `${body.phone_number} is not in this connection's steering pool`);
        }
        return repo.serialize(await repo.patchData(db, userId, row.id, { ...row.data, steering_pool: current.filter((n) => n !== body.phone_number) }));
      }),
    },
  ];
}
