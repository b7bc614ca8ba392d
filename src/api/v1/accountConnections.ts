import {
  AccountConnectionParams, AccountConnectionUpdateParams, AddToSteeringPoolRequest, RemoveFromSteeringPoolRequest, TELEPHONY_TYPES,
} from '../../domain/accountConnections.js';
import { AppError, ValidationError } from '../../domain/errors.js';
import type { Db } from '../../store/db.js';
import type { Store } from '../../store/store.js';
import { IdQuery, type RouteDef } from '../routes.js';
import { crudRoutes, withIds } from './crud.js';
import { flatOps } from './resources.js';

export function accountConnectionRoutes(store: Store): RouteDef[] {
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
      handler: ({ userId, query, body }) => store.tx(async (db) => {
        const { row, pool: current } = await pool(db, userId, query.id);
        if (!body.phone_number) {
          throw new AppError(501, 'buying a pool number needs a carrier; pass an explicit phone_number you own');
        }
        const next = current.includes(body.phone_number) ? current : [...current, body.phone_number];
        return repo.serialize(await repo.patchData(db, userId, row.id, { ...row.data, steering_pool: next }));
      }),
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
