import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { startServer, type Running } from '../../src/server.js';
import { startOpenCarrier, type OpenCarrier } from '../fakes/openCarrier.js';

/**
 * A real Switchboard server on a loopback port, on a fresh database: in-memory PGlite, or a new
 * PostgreSQL database (dropped afterwards) when TEST_DATABASE_URL is set.
 */
export interface TestServer {
  url: string;
  key: string;
  running: Running;
  dbKind: string;
  /** The carrier numbers are linked at, unless the suite gave its own (TWILIO_API_BASE_URL / TELNYX_API_BASE_URL). */
  carrier: OpenCarrier | null;
  /** A second, unrelated user with their own key. */
  newUser(): Promise<string>;
  api(path: string, init?: { method?: string; body?: unknown; key?: string | null; raw?: string; headers?: Record<string, string> }): Promise<{ status: number; body: any; headers: Headers }>;
  close(): Promise<void>;
}

export const usingPostgres = () => !!process.env.TEST_DATABASE_URL;

/** A new, empty database on the server `admin` points at (its name starts with `prefix`), and its drop. */
export async function freshPostgres(admin = process.env.TEST_DATABASE_URL!, prefix = 'sb_test'): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `${prefix}_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
  const c = new pg.Client({ connectionString: admin });
  await c.connect();
  await c.query(`CREATE DATABASE ${name}`);
  await c.end();
  const u = new URL(admin);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    drop: async () => {
      const d = new pg.Client({ connectionString: admin });
      await d.connect();
      await d.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await d.end();
    },
  };
}

export async function startTestServer(env: Record<string, string> = {}): Promise<TestServer> {
  const key = `sb_test_${randomBytes(16).toString('hex')}`;
  const pgdb = usingPostgres() ? await freshPostgres() : null;
  const carrier = env.TWILIO_API_BASE_URL || env.TELNYX_API_BASE_URL ? null : await startOpenCarrier();
  const config = loadConfig({
    ...(carrier ? { TWILIO_API_BASE_URL: carrier.url, TELNYX_API_BASE_URL: carrier.url } : {}),
    PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'silent', DATA_DIR: 'memory://', API_KEY_CACHE_SECONDS: '0',
    SWITCHBOARD_BOOTSTRAP_API_KEY: key, SWITCHBOARD_SECRET_KEY: randomBytes(32).toString('hex'),
    ...(pgdb ? { DATABASE_URL: pgdb.url } : {}),
    ...env,
  });
  const running = await startServer(config, { log: createLogger('silent'), print: () => {} });
  const api: TestServer['api'] = async (path, init = {}) => {
    const headers: Record<string, string> = { ...(init.headers ?? {}) };
    const k = init.key === undefined ? key : init.key;
    if (k) headers.authorization = `Bearer ${k}`;
    let body: string | undefined = init.raw;
    if (init.body !== undefined) { body = JSON.stringify(init.body); headers['content-type'] ??= 'application/json'; }
    const res = await fetch(running.url + path, { method: init.method ?? (body !== undefined ? 'POST' : 'GET'), headers, body });
    const text = await res.text();
    let parsed: unknown = text;
    try { parsed = JSON.parse(text); } catch { /* not JSON */ }
    return { status: res.status, body: parsed, headers: res.headers };
  };
  return {
    url: running.url, key, running, dbKind: running.store.database.kind, api, carrier,
    newUser: async () => {
      const store = running.store;
      return store.tx(async (db) => (await store.users.createKey(db, await store.users.createUser(db, 'other'))).key);
    },
    close: async () => { await running.close(); await carrier?.close(); await pgdb?.drop(); },
  };
}
