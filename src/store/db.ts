import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sql } from 'drizzle-orm';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import { lockDataDir } from './dataDirLock.js';
import * as schema from './schema.js';

export type Db = PgDatabase<PgQueryResultHKT, typeof schema>;

export interface Database {
  db: Db;
  kind: 'pglite' | 'postgres';
  /**
   * Subscribes to a NOTIFY channel (messages from any process on this database). On PostgreSQL one
   * dedicated connection listens, and listens again after it drops. Resolves with the unsubscribe.
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
    const listeners: { close(): Promise<void> }[] = [];
    const listen = async (channel: string, onMessage: (payload: string) => void) => {
      let client: InstanceType<typeof pg.Client> | undefined;
      let closed = false;
      const connect = async (): Promise<void> => {
        const c = new pg.Client({ connectionString: opts.url });
        c.on('notification', (n) => { if (n.channel === channel && n.payload !== undefined) onMessage(n.payload); });
        c.on('error', (err) => {
          opts.onIdleClientError?.(err);
          // The listening connection is gone: listen on a new one (messages meanwhile are lost, as NOTIFY's are).
          if (!closed) setTimeout(() => void connect().catch(() => {}), 1000).unref();
        });
        await c.connect();
        await c.query(`LISTEN "${channel.replace(/"/g, '')}"`);
        client = c;
      };
      await connect();
      const handle = { close: async () => { closed = true; await client?.end().catch(() => {}); } };
      listeners.push(handle);
      return handle.close;
    };
    return {
      db: db as unknown as Db, kind: 'postgres', listen,
      close: async () => { await Promise.all(listeners.map((l) => l.close())); await pool.end(); },
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
