/**
 * What every part of the telephony layer shares: the store, configuration, log, the calls this node runs,
 * our public URLs, and the carrier account behind a number, a call or a connection.
 */
import type { Config } from '../config.js';
import { AppError, NotFoundError, ValidationError } from '../domain/errors.js';
import type { Logger } from '../log.js';
import type { LiveCalls } from '../calls/liveCalls.js';
import type { CallMetrics } from '../calls/metrics.js';
import type { CallBus } from '../calls/bus.js';
import type { CallRow } from '../store/calls.js';
import type { NumberRow } from '../store/numbers.js';
import type { Store } from '../store/store.js';
import { carrierAccountOf, CarrierAccountError, platformTelnyx, platformTwilio, type CarrierAccount, type RevealedConnection } from './accounts.js';
import { CarrierError, type TelephonyProvider, type WebhookUrls } from './types.js';
import { Admission } from './admission.js';

export interface TelephonyDeps {
  store: Store;
  config: Config;
  log: Logger;
  live: LiveCalls;
  /** Reaches the node that runs a call (answering-machine verdicts). */
  bus: CallBus;
  metrics?: CallMetrics;
}

export class TelephonyContext {
  /** This node's call limit (SWITCHBOARD_MAX_CALLS). */
  readonly admission: Admission;

  constructor(readonly deps: TelephonyDeps) {
    this.admission = new Admission(deps.config.SWITCHBOARD_MAX_CALLS, deps.live);
  }

  get store(): Store { return this.deps.store; }
  get config(): Config { return this.deps.config; }
  get log(): Logger { return this.deps.log; }
  get live(): LiveCalls { return this.deps.live; }
  get bus(): CallBus { return this.deps.bus; }

  /** An absolute URL under PUBLIC_URL: what carriers are given, and what their signatures cover. */
  url(path: string): string {
    return `${this.config.publicUrl}${path}`;
  }

  /** The WebSocket form of url(): ws:// for http, wss:// for https. */
  wsUrl(path: string): string {
    return this.url(path).replace(/^http/, 'ws');
  }

  /** Where a carrier's numbers send their calls. */
  hooks(provider: TelephonyProvider): WebhookUrls {
    return { voice: this.url(`/telephony/${provider}/voice`), status: this.url(`/telephony/${provider}/status`) };
  }

  /** Our webhooks' common prefix: a number whose voice URL starts with it points at this deployment. */
  hookPrefix(provider: TelephonyProvider): string {
    return this.url(`/telephony/${provider}/`);
  }

  async connection(userId: string, id: string): Promise<RevealedConnection | null> {
    return (await this.store.connectionLookup(userId).byId(id)) as RevealedConnection | null;
  }

  /** The account of a connection the user named (in `loc`), or the platform's for `provider` when none. */
  async accountFor(userId: string, connectionId: string | null | undefined, provider: TelephonyProvider, loc: (string | number)[]): Promise<CarrierAccount> {
    const conn = connectionId ? await this.connection(userId, connectionId) : null;
    if (connectionId && !conn) throw new NotFoundError('account connection', connectionId);
    try {
      if (!conn) return provider === 'telnyx' ? platformTelnyx(this.config) : platformTwilio(this.config);
      return carrierAccountOf(conn, this.config);
    } catch (err) {
      if (err instanceof CarrierAccountError) throw ValidationError.one(loc, err.message);
      throw err;
    }
  }

  /** The account a stored number or call goes through (its connection, or the platform's). */
  async accountOf(row: NumberRow | CallRow): Promise<CarrierAccount> {
    const provider = row.telephonyProvider as TelephonyProvider;
    if (!row.telephonyAccountConnectionId) return provider === 'telnyx' ? platformTelnyx(this.config) : platformTwilio(this.config);
    const conn = await this.connection(row.userId, row.telephonyAccountConnectionId);
    if (!conn) throw new CarrierAccountError(`the account connection of ${'number' in row ? row.number : `call ${row.id}`} no longer exists`);
    return carrierAccountOf(conn, this.config);
  }
}

/**
 * A carrier's refusal as an API error: credentials the carrier refuses and requests it finds invalid are
 * the user's to fix (422 naming the field), rate limits pass through (429), an outage is ours (502).
 */
export function carrierToAppError(err: unknown, o: { connectionLoc: (string | number)[]; numberLoc?: (string | number)[]; prefix?: string }): unknown {
  const p = o.prefix ? `${o.prefix}: ` : '';
  if (err instanceof CarrierAccountError) return ValidationError.one(o.connectionLoc, `${p}${err.message}`);
  if (!(err instanceof CarrierError)) return err;
  switch (err.kind) {
    case 'auth': return ValidationError.one(o.connectionLoc, `${p}${err.provider} refused the account's credentials (${err.message})`);
    case 'not_found':
    case 'invalid': return ValidationError.one(o.numberLoc ?? o.connectionLoc, `${p}${err.message}`);
    case 'quota': return new AppError(429, `${p}${err.message}`);
    default: return new AppError(502, `${p}${err.message}`);
  }
}
