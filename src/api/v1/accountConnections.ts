import {
  AccountConnectionParams, AccountConnectionUpdateParams, AddToSteeringPoolRequest, RemoveFromSteeringPoolRequest, TELEPHONY_TYPES,
} from '../../domain/accountConnections.js';
import { ConflictError, ValidationError } from '../../domain/errors.js';
import type { TelephonyContext } from '../../telephony/context.js';
import { buyPoolNumber, letGo, poolNumberBought } from '../../telephony/numbers.js';
import type { Db } from '../../store/db.js';
import type { Store } from '../../store/store.js';
import { IdQuery, type RouteDef } from '../routes.js';
import { crudRoutes, withIds } from './crud.js';
import { flatOps } from './resources.js';

/**
 * Account connections, and the steering pool of a telephony connection. `steering_pool` stays what Vocode
 * says, a list of numbers; a number Switchboard bought for it is also a number row of the user's (outbound
 * only, so calls to it are refused at the carrier) whose carrier state remembers the purchase, so it is given
 * back when it leaves the pool.
 */
export function accountConnectionRoutes(store: Store, telephony: TelephonyContext): RouteDef[] {
  const repo = store.connections;
  const one = withIds(AccountConnectionParams, 'AccountConnectionResponseModel');
  const ops = flatOps(repo);

  /** The connection, locked until the transaction ends (so concurrent pool changes queue up), and its pool. */
  async function pool(db: Db, userId: string, id: string) {
    const row = await repo.get(db, userId, id, true);
    if (!TELEPHONY_TYPES.has(row.type ?? '')) {
      throw ValidationError.one(['query', 'id'], `steering pools belong to telephony connections; ${id} is ${row.type}`);
    }
    return { row, pool: (row.data.steering_pool as string[] | undefined) ?? [] };
  }

  async function setPool(db: Db, userId: string, id: string, change: (current: string[]) => string[]) {
    const { row, pool: current } = await pool(db, userId, id);
    return repo.serialize(await repo.patchData(db, userId, row.id, { ...row.data, steering_pool: change(current) }));
  }

  const notInPool = (number: string) => ValidationError.one(['body', 'phone_number'], `${number} is not in this connection's steering pool`);

  return [
    ...crudRoutes(store, {
      resource: 'account_connections', singular: 'account_connection', create: AccountConnectionParams,
      update: AccountConnectionUpdateParams, one, item: one, pageName: 'AccountConnectionPage',
      ops: {
        ...ops,
        delete: async (db, userId, id) => {
          // Numbers bought for the pool are paid for at the carrier: the connection goes once they have been given back.
          // (Whether or not they are still listed in steering_pool, which an update may have rewritten.)
          await repo.get(db, userId, id, true);
          const held = (await store.numbers.boughtForPool(db, userId, id)).map((n) => n.number);
          if (held.length) {
            throw new ConflictError(`account connection ${id} still holds steering-pool numbers bought through it (${held.join(', ')}); remove them with remove_from_steering_pool first, which gives them back to the carrier`);
          }
          return ops.delete(db, userId, id);
        },
      },
    }),
    {
      method: 'post', path: '/v1/account_connections/add_to_steering_pool', operationId: 'add_to_steering_pool',
      summary: 'Add a number to the warm-transfer steering pool', tag: 'account_connections',
      query: IdQuery, body: AddToSteeringPoolRequest, bodyRequired: false, response: one, status: 201,
      handler: async ({ userId, query, body }) => {
        const add = (number: string) => (current: string[]) => (current.includes(number) ? current : [...current, number]);
        const given = body.phone_number;
        if (given) return store.tx((db) => setPool(db, userId, query.id, add(given)));
        // No number given: one is bought through the connection's carrier (outside the transaction: it is a
        // carrier call), then recorded as an outbound-only number with what we bought, and put in the pool.
        return buyPoolNumber(telephony, userId, query.id, body.area_code ?? undefined, (claimed, account, state) => store.tx(async (db) => {
          const result = await setPool(db, userId, query.id, add(claimed.number));
          await store.numbers.insertClaimed(db, userId, {
            outbound_only: true, label: 'steering pool', description: `Bought for the steering pool of account connection ${query.id}`,
          }, { number: claimed.number, provider: account.provider, connectionId: query.id, carrierState: { ...state } });
          return result;
        }));
      },
    },
    {
      method: 'post', path: '/v1/account_connections/remove_from_steering_pool', operationId: 'remove_from_steering_pool',
      summary: 'Remove a number from the steering pool (a number bought for it is given back to the carrier)', tag: 'account_connections',
      query: IdQuery, body: RemoveFromSteeringPoolRequest, response: one, status: 201,
      handler: async ({ userId, query, body }) => {
        const number = body.phone_number;
        const bought = await poolNumberBought(telephony, store.db, userId, query.id, number);
        // A number bought for the pool is given back before the pool changes (outside the transaction: a carrier
        // call), even one an update has dropped from the list: it would be paid for with no way to let it go.
        if (bought?.active) await letGo(telephony, bought, 'release', ['body', 'phone_number']);
        return store.tx(async (db) => {
          if (bought) await store.numbers.remove(db, userId, bought.id);
          return setPool(db, userId, query.id, (current) => {
            if (!current.includes(number) && !bought) throw notInPool(number);
            return current.filter((n) => n !== number);
          });
        });
      },
    },
  ];
}
