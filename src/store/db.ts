import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sql } from 'drizzle-orm';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import type { Logger } from '../log.js';
import { lockDataDir } from './dataDirLock.js';
import * as schema from './schema.js';

export type Db = PgDatabase<PgQueryResultHKT, typeof schema>;

export interface Database {
  db: Db;
  kind: 'pglite' | 'postgres';
  /**
   * Subscribes to a NOTIFY channel (messages from any process on this database). On PostgreSQL one
   * dedicated connection listens and, whenever it drops, listens again on a new one (backing off while
   * the database is unreachable, for as long as the subscription lasts). Messages sent while no
   * connection listens are lost, as NOTIFY's are. Resolves with the unsubscribe, which also stops
   * any pending retry.
   */
  listen(channel: string, onMessage: (payload: string) => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

const migrationsFolder = join(dirname(fileURLToPath(import.meta.url)), 'migrations');

/**
 * PostgreSQL when a URL is given, else PGlite: on disk under dataDir, or in memory when dataDir is
 * 'memory://'. Migrations run before the database is handed out.
 */
export async function openDatabase(opts: {
  url?: string; dataDir: string; poolSize?: number; onIdleClientError?: (err: Error) => void;
  /** Reports the listening connections' drops and recoveries (without it a drop goes to onIdleClientError). */
  log?: Pick<Logger, 'warn' | 'info' | 'debug'>;
}): Promise<Database> {
  if (opts.url) {
    const { default: pg } = await import('pg');
    const { drizzle } = await import('drizzle-orm/node-postgres');
    const { migrate } = await import('drizzle-orm/node-postgres/migrator');
    const pool = new pg.Pool({ connectionString: opts.url, max: opts.poolSize ?? 20 });
    // An idle connection that drops (database restart, terminated backend) is replaced by the pool;
    // unheard, its 'error' event would crash the process.
    pool.on('error', (err) => opts.onIdleClientError?.(err));
    const db = drizzle(pool, { schema });
    // Several nodes may start at once against one database: only one migrates at a time.
    const client = await pool.connect();
    try {
      await client.query('SELECT pg_advisory_lock(727274)');
      await migrate(drizzle(client, { schema }), { migrationsFolder });
    } finally {
      await client.query('SELECT pg_advisory_unlock(727274)').catch(() => {});
      client.release();
    }
    const listeners = new Set<() => Promise<void>>();
    const listen = async (channel: string, onMessage: (payload: string) => void) => {
      const stop = await listenAgainAndAgain(pg.Client, opts.url!, channel, onMessage, opts.log, opts.onIdleClientError);
      const off = async () => { listeners.delete(off); await stop(); };
      listeners.add(off);
      return off;
    };
    return {
      db: db as unknown as Db, kind: 'postgres', listen,
      close: async () => { await Promise.all([...listeners].map((off) => off())); await pool.end(); },
    };
  }
  const { PGlite } = await import('@electric-sql/pglite');
  const { drizzle } = await import('drizzle-orm/pglite');
  const { migrate } = await import('drizzle-orm/pglite/migrator');
  const inMemory = opts.dataDir.startsWith('memory://');
  const dir = inMemory ? undefined : join(opts.dataDir, 'pglite');
  if (dir) mkdirSync(dir, { recursive: true });
  const unlock = dir ? lockDataDir(opts.dataDir) : () => {};
  try {
    const client = new PGlite(dir);
    const db = drizzle(client, { schema });
    await migrate(db, { migrationsFolder });
    return {
      db: db as unknown as Db, kind: 'pglite',
      listen: async (channel, onMessage) => { const off = await client.listen(channel, onMessage); return () => off(); },
      close: async () => { await client.close(); unlock(); },
    };
  } catch (err) {
    unlock();
    throw err;
  }
}

/** Waits between attempts to listen again: 100 ms doubling up to 5 s, each drawn from its upper half. */
const RELISTEN_FIRST_MS = 100;
const RELISTEN_MAX_MS = 5000;

/**
 * LISTENs on a dedicated connection of its own and, when that connection errors or ends without us
 * ending it, discards it and listens on a new one, retrying with backoff until it succeeds or the
 * returned stop is called. The first attempt's failure rejects (the caller learns at start-up).
 */
async function listenAgainAndAgain(
  Client: typeof import('pg').Client, url: string, channel: string, onMessage: (payload: string) => void,
  log: Pick<Logger, 'warn' | 'info' | 'debug'> | undefined, onDrop: ((err: Error) => void) | undefined,
): Promise<() => Promise<void>> {
  let current: InstanceType<typeof Client> | undefined; // connecting or listening
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let failures = 0;

  const discard = (c: InstanceType<typeof Client>): Promise<void> => {
    if (current === c) current = undefined;
    c.removeAllListeners();
    c.on('error', () => {}); // a late error from the dead socket must not crash the process
    return c.end().catch(() => {});
  };

  const lost = (c: InstanceType<typeof Client>, err?: Error) => {
    if (current !== c) return; // 'error' and 'end' both come; the first one counts
    void discard(c);
    if (stopped) return;
    const why = err ?? new Error('the listening connection ended');
    if (log) log.warn({ err: why, channel }, 'database LISTEN connection dropped; listening again (messages meanwhile are lost)');
    else onDrop?.(why);
    retry();
  };

  const attempt = async (): Promise<void> => {
    // keepAlive: a connection silently cut off (network, failover) errors instead of waiting forever.
    const c = new Client({ connectionString: url, keepAlive: true, keepAliveInitialDelayMillis: 10_000, connectionTimeoutMillis: 10_000 });
    current = c;
    let listening = false; // until then, failures arrive through connect()/query()
    c.on('notification', (n) => { if (n.channel === channel && n.payload !== undefined) onMessage(n.payload); });
    c.on('error', (err) => { if (listening) lost(c, err); });
    c.on('end', () => { if (listening) lost(c); });
    try {
      await c.connect();
      await c.query(`LISTEN ${c.escapeIdentifier(channel)}`);
    } catch (err) {
      await discard(c);
      throw err;
    }
    if (stopped || current !== c) { await discard(c); return; }
    listening = true;
  };

  const retry = () => {
    const ms = Math.min(RELISTEN_MAX_MS, RELISTEN_FIRST_MS * 2 ** Math.min(failures++, 16));
    timer = setTimeout(() => {
      timer = undefined;
      attempt().then(
        () => { if (!stopped) { log?.info({ channel, attempts: failures }, 'database LISTEN restored'); failures = 0; } },
        (err: unknown) => { if (!stopped) { log?.debug({ err, channel, attempts: failures }, 'listening again failed; retrying'); retry(); } },
      );
    }, ms / 2 + Math.random() * (ms / 2));
    timer.unref(); // a pending retry alone does not keep the process alive
  };

  await attempt();
  return async () => {
    stopped = true;
    clearTimeout(timer);
    if (current) await discard(current);
  };
}

/**
 * A value made once per database handle and reused, such as a prepared statement: planning a join
 * costs PostgreSQL more than running it. A transaction is its own handle, so it makes its own.
 */
export function perHandle<T>(make: (db: Db) => T): (db: Db) => T {
  const made = new WeakMap<Db, T>();
  return (db) => {
    let v = made.get(db);
    if (v === undefined) made.set(db, (v = make(db)));
    return v;
  };
}

export async function ping(db: Db): Promise<void> {
  await db.execute(sql`select 1`);
}
