/**
 * Numbers at the carrier, behind the /v1/numbers operations: search what is for sale, buy (pointing the
 * number's voice webhooks at us), link a number the user already has (checking it exists in their account,
 * remembering the configuration we replace), and release, restore or forget it again.
 *
 * `cancel` releases a number Switchboard bought; a number the user linked is theirs, so `cancel` only
 * puts back its previous voice configuration (and marks it inactive) instead of giving it up. `detach`
 * restores only what we set: if someone re-pointed the number since, that configuration stays.
 */
import { AppError, ConflictError, ValidationError } from '../domain/errors.js';
import type { Db } from '../store/db.js';
import type { NumberRow } from '../store/numbers.js';
import { requireWebhookKey, type CarrierAccount } from './accounts.js';
import { telnyxNumbers } from './telnyx/carrier.js';
import { carrierToAppError, type TelephonyContext } from './context.js';
import { CarrierError, type AvailableNumber, type ClaimedNumber, type NumberSearch, type TelephonyProvider, type WebhookUrls } from './types.js';

type Json = Record<string, unknown>;

/** What a carrier does with numbers, whichever carrier it is. */
export interface CarrierNumbers {
  search(q: NumberSearch): Promise<AvailableNumber[]>;
  buy(o: { phoneNumber?: string; areaCode?: string }, hooks: WebhookUrls): Promise<ClaimedNumber>;
  claim(number: string, hooks: WebhookUrls): Promise<ClaimedNumber>;
  /** Puts back `previous` if the number still points at us; false if it did not (nothing changed). */
  restore(claimed: ClaimedNumber, ourPrefix: string): Promise<boolean>;
  release(carrierNumberId: string): Promise<void>;
}

/** What we keep about a number at its carrier (the number row's carrier_state; never shown). */
export interface NumberCarrierState {
  number_id: string;
  /** Bought through Switchboard (released by cancel) rather than linked (the user's own). */
  bought: boolean;
  previous: Json;
  /** Bought for this account connection's steering pool: given back when it leaves the pool. */
  steering_pool?: string;
}

export async function carrierNumbers(ctx: TelephonyContext, account: CarrierAccount): Promise<CarrierNumbers> {
  if (account.provider === 'twilio') {
    const rest = account.rest;
    return {
      search: (q) => rest.searchNumbers(q),
      buy: (o, hooks) => rest.buyNumber(o, hooks),
      claim: (n, hooks) => rest.claimNumber(n, hooks),
      restore: (c, prefix) => rest.restoreNumber(c, prefix),
      release: (id) => rest.releaseNumber(id),
    };
  }
  return telnyxNumbers(ctx, account);
}

export function providerOf(requested: string | undefined, account: CarrierAccount | null): TelephonyProvider {
  if (account) return account.provider;
  if (requested === 'vonage') throw ValidationError.one(['body', 'telephony_provider'], 'vonage is not supported on Switchboard; use twilio or telnyx');
  return requested === 'telnyx' ? 'telnyx' : 'twilio';
}

const connLoc = (where: 'body' | 'query') => [where, 'telephony_account_connection'];

export async function searchAvailable(ctx: TelephonyContext, userId: string, q: {
  limit: number; provider?: string; connectionId?: string; areaCode?: string; contains?: string; tollFree?: boolean; country?: string;
}): Promise<{ items: Json[]; total: number }> {
  if (q.provider === 'vonage') throw ValidationError.one(['query', 'telephony_provider'], 'vonage is not supported on Switchboard; use twilio or telnyx');
  const provider = (q.provider ?? 'twilio') as TelephonyProvider;
  const account = await ctx.accountFor(userId, q.connectionId, provider, connLoc('query'));
  const numbers = await carrierNumbers(ctx, account);
  try {
    const found = await numbers.search({
      country: (q.country ?? 'US').toUpperCase(), areaCode: q.areaCode, contains: q.contains, tollFree: q.tollFree, limit: q.limit,
    });
    const items = found.map((n) => ({ ...n, number: n.phone_number, telephony_provider: account.provider }));
    return { items, total: items.length };
  } catch (err) {
    throw carrierToAppError(err, { connectionLoc: connLoc('query'), numberLoc: ['query', 'area_code'] });
  }
}

/**
 * What can be checked before the carrier is asked (and paid): that calls through the account can be verified,
 * the agent the number gets, and that the number is free here.
 */
async function precheck(ctx: TelephonyContext, userId: string, body: Json, account: CarrierAccount, loc: (string | number)[]): Promise<void> {
  requireWebhookKey(account, loc);
  if (typeof body.inbound_agent === 'string' && body.inbound_agent !== 'default') await ctx.store.agents.get(ctx.store.db, userId, body.inbound_agent);
  const number = body.phone_number as string | null | undefined;
  if (number && (await ctx.store.numbers.findAnyUser(ctx.store.db, number))?.active) {
    throw new ConflictError(`phone number ${number} is already on this Switchboard`);
  }
}

type StoreBought<T> = (claimed: ClaimedNumber, account: CarrierAccount, state: NumberCarrierState) => Promise<T>;

/**
 * Buys `want` at the carrier and hands it to `store`, which records it (in its transaction); a number that
 * cannot be recorded is given back rather than paid for as a ghost. `refused` turns the carrier's refusal
 * into the API's answer.
 */
async function purchase<T>(ctx: TelephonyContext, account: CarrierAccount, want: { phoneNumber?: string; areaCode?: string }, o: {
  numbers: CarrierNumbers; refused: (err: unknown) => unknown; state?: Partial<NumberCarrierState>; store: StoreBought<T>;
}): Promise<T> {
  let claimed: ClaimedNumber;
  try {
    claimed = await o.numbers.buy(want, ctx.hooks(account.provider));
  } catch (err) {
    throw o.refused(err);
  }
  try {
    return await o.store(claimed, account, { number_id: claimed.carrierNumberId, bought: true, previous: {}, ...o.state });
  } catch (err) {
    await o.numbers.release(claimed.carrierNumberId).catch((e) => ctx.log.error({ err: e, number: claimed.number }, 'could not release a number bought for a failed request'));
    throw err;
  }
}

/** Buys a number at the carrier; `store` inserts the row (in its transaction), and a failure there releases the number again. */
export async function buyNumber<T>(ctx: TelephonyContext, userId: string, body: Json, store: StoreBought<T>): Promise<T> {
  const connectionId = (body.telephony_account_connection as string | null | undefined) ?? null;
  const account = connectionId
    ? await ctx.accountFor(userId, connectionId, 'twilio', connLoc('body'))
    : await ctx.accountFor(userId, null, providerOf(body.telephony_provider as string | undefined, null), ['body', 'telephony_provider']);
  if (connectionId && body.telephony_provider && body.telephony_provider !== account.provider) {
    throw ValidationError.one(['body', 'telephony_provider'], `is ${String(body.telephony_provider)}, but account connection ${connectionId} is a ${account.provider} account`);
  }
  await precheck(ctx, userId, body, account, connectionId ? connLoc('body') : ['body', 'telephony_provider']);
  const want = { phoneNumber: (body.phone_number as string | null | undefined) ?? undefined, areaCode: (body.area_code as string | null | undefined) ?? undefined };
  return purchase(ctx, account, want, {
    numbers: await carrierNumbers(ctx, account), store,
    refused: (err) => carrierToAppError(err, { connectionLoc: connLoc('body'), numberLoc: body.phone_number ? ['body', 'phone_number'] : ['body', 'area_code'], prefix: 'cannot buy the number' }),
  });
}

/** Checks a number the user owns at the carrier and points it at us; `store` inserts the row. */
export async function linkNumber<T>(ctx: TelephonyContext, userId: string, body: Json, store: (claimed: ClaimedNumber, account: CarrierAccount, state: NumberCarrierState) => Promise<T>): Promise<T> {
  const account = await ctx.accountFor(userId, body.telephony_account_connection as string, 'twilio', connLoc('body'));
  if (account.platform) {
    // The platform account holds every user's bought numbers: linking from it would take someone else's.
    throw ValidationError.one(connLoc('body'), 'numbers of the platform account cannot be linked; buy one with numbers/buy, or link through your own account connection');
  }
  const number = body.phone_number as string;
  const taken = await ctx.store.numbers.findAnyUser(ctx.store.db, number);
  if (taken?.active) throw new ConflictError(`phone number ${number} cannot be linked: it is already linked on this Switchboard`);
  await precheck(ctx, userId, { ...body, phone_number: undefined }, account, connLoc('body'));
  const numbers = await carrierNumbers(ctx, account);
  let claimed: ClaimedNumber;
  try {
    claimed = await numbers.claim(number, ctx.hooks(account.provider));
  } catch (err) {
    throw carrierToAppError(err, { connectionLoc: connLoc('body'), numberLoc: ['body', 'phone_number'], prefix: 'cannot link the number' });
  }
  try {
    return await store(claimed, account, { number_id: claimed.carrierNumberId, bought: false, previous: claimed.previous });
  } catch (err) {
    await numbers.restore(claimed, ctx.hookPrefix(account.provider)).catch(() => {});
    throw err;
  }
}

const POOL_LOC = ['query', 'id'];

/** A steering-pool purchase the carrier refused: none to be had is a 429 (the pool cannot grow now). */
function poolRefusal(err: unknown, areaCode: string | undefined): unknown {
  if (err instanceof CarrierError && err.kind === 'not_found') {
    return new AppError(429, `the steering pool cannot grow: no number available${areaCode ? ` in area code ${areaCode}` : ''} (${err.message})`);
  }
  return carrierToAppError(err, { connectionLoc: POOL_LOC, numberLoc: ['body', 'area_code'], prefix: 'cannot buy a steering-pool number' });
}

/**
 * Buys a number for a connection's warm-transfer steering pool through its carrier (any number, or one in
 * `areaCode`). `store` records it, with the state that marks it as bought for this pool (so leaving the pool
 * gives it back); a failure there gives it back at once.
 */
export async function buyPoolNumber<T>(ctx: TelephonyContext, userId: string, connectionId: string, areaCode: string | undefined, store: StoreBought<T>): Promise<T> {
  const account = await ctx.accountFor(userId, connectionId, 'twilio', POOL_LOC);
  await precheck(ctx, userId, {}, account, POOL_LOC);
  const numbers = await carrierNumbers(ctx, account);
  let candidate: string | undefined;
  if (!areaCode) {
    let first: AvailableNumber | undefined;
    try {
      [first] = await numbers.search({ country: 'US', limit: 1 });
    } catch (err) {
      throw poolRefusal(err, areaCode);
    }
    if (!first) throw new AppError(429, 'the steering pool cannot grow: the carrier has no number available to buy');
    candidate = first.phone_number;
  }
  return purchase(ctx, account, { phoneNumber: candidate, areaCode }, {
    numbers, store, state: { steering_pool: connectionId }, refused: (err) => poolRefusal(err, areaCode),
  });
}

/**
 * The number row of `number` if Switchboard bought it for this connection's steering pool: only such a number
 * is given back when it leaves the pool (one the user put in the pool stays theirs, untouched).
 */
export async function poolNumberBought(ctx: TelephonyContext, db: Db, userId: string, connectionId: string, number: string): Promise<NumberRow | undefined> {
  const row = await ctx.store.numbers.find(db, userId, number);
  return row && stateOf(row)?.steering_pool === connectionId ? row : undefined;
}

function stateOf(row: NumberRow): NumberCarrierState | null {
  const s = row.carrierState as Partial<NumberCarrierState> | null;
  if (!s || typeof s.number_id !== 'string') return null;
  return { number_id: s.number_id, bought: s.bought === true, previous: (s.previous ?? {}) as Json, ...(typeof s.steering_pool === 'string' ? { steering_pool: s.steering_pool } : {}) };
}

/**
 * Undoes our hold on a number at the carrier before its row changes: `release` gives a bought number back
 * (cancel, delete, leaving the steering pool it was bought for); otherwise the configuration we replaced is put
 * back (detach, and cancel of a linked number).
 */
export async function letGo(ctx: TelephonyContext, row: NumberRow, mode: 'release' | 'restore', loc: (string | number)[] = ['query', 'phone_number']): Promise<void> {
  const state = stateOf(row);
  if (!state) return; // linked before numbers were checked at the carrier: nothing of ours there
  let account: CarrierAccount;
  try {
    account = await ctx.accountOf(row);
  } catch (err) {
    ctx.log.warn({ err, number: row.number }, 'number has no usable carrier account; leaving the carrier untouched');
    return;
  }
  const numbers = await carrierNumbers(ctx, account);
  try {
    // A number bought in the platform's shared account is never left there unowned: letting go releases it.
    if (state.bought && (mode === 'release' || account.platform)) await numbers.release(state.number_id);
    else await numbers.restore({ carrierNumberId: state.number_id, number: row.number, previous: state.previous }, ctx.hookPrefix(account.provider));
  } catch (err) {
    // Already gone at the carrier: there is nothing left to undo.
    if ((err as { kind?: string }).kind === 'not_found') return;
    throw carrierToAppError(err, { connectionLoc: loc, numberLoc: loc });
  }
}

export type { Db };
