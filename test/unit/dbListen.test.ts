/**
 * db.listen on PostgreSQL (the cross-node call bus rides on it): when the listening connection drops it
 * listens again on a new one, retrying with backoff while the database refuses connections, and once
 * unsubscribed it neither reconnects nor keeps the process alive. Runs when TEST_DATABASE_URL is set.
 */
import { spawn } from 'node:child_process';
import { sql } from 'drizzle-orm';
import pg from 'pg';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { openDatabase, type Database } from '../../src/store/db.js';
import { cleanEnv, REPO_ROOT } from '../helpers/process.js';
import { freshPostgres } from '../helpers/server.js';
import { until } from '../helpers/until.js';

/** A channel name that only survives LISTEN when quoted properly. */
const CHANNEL = 'sb_Listen "test"';

interface Line { level: number; time: number; msg: string }
const WARN = 40, INFO = 30, DEBUG = 20;

describe.runIf(!!process.env.TEST_DATABASE_URL)('db.listen on PostgreSQL', () => {
  let fresh: Awaited<ReturnType<typeof freshPostgres>>;
  let name: string;
  let admin: pg.Client; // on the admin database: unaffected by what the fresh one refuses
  let db: Database;
  let lines: Line[];
  let heard: string[];

  const listenerPids = async (): Promise<number[]> =>
    (await admin.query<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE datname = $1 AND query LIKE 'LISTEN%'`, [name])).rows.map((r) => r.pid);
  const allowConnections = (allow: boolean) => admin.query(`ALTER DATABASE ${admin.escapeIdentifier(name)} ALLOW_CONNECTIONS ${allow}`);
  const notify = (payload: string) => db.db.execute(sql`SELECT pg_notify(${CHANNEL}, ${payload})`);
  const logged = (level: number) => lines.filter((l) => l.level === level);

  beforeEach(async () => {
    fresh = await freshPostgres();
    name = new URL(fresh.url).pathname.slice(1);
    admin = new pg.Client({ connectionString: process.env.TEST_DATABASE_URL });
    await admin.connect();
    lines = [];
    heard = [];
    const log = pino({ level: 'debug' }, { write: (s: string) => { lines.push(JSON.parse(s) as Line); } });
    db = await openDatabase({ url: fresh.url, dataDir: 'memory://', log });
  });

  afterEach(async () => {
    await allowConnections(true);
    await db.close();
    await admin.end();
    await fresh.drop();
  });

  it('listens again on a new connection after its backend is terminated', async () => {
    const off = await db.listen(CHANNEL, (p) => heard.push(p));
    await notify('before');
    await until(() => heard.length === 1, 'the first message');
    const [first] = await listenerPids();
    expect(first).toBeTypeOf('number');

    await admin.query('SELECT pg_terminate_backend($1)', [first]);
    // Exactly one listening connection again, a new one: the old one is gone, not lingering beside it.
    await until(async () => { const pids = await listenerPids(); return pids.length === 1 && pids[0] !== first; }, 'a new LISTEN connection');
    await notify('after');
    await until(() => heard.length === 2, 'the message sent after the reconnect');
    expect(heard).toEqual(['before', 'after']);
    expect(logged(WARN).map((l) => l.msg)).toEqual([expect.stringMatching(/LISTEN connection dropped/)]);
    await until(() => logged(INFO).some((l) => /LISTEN restored/.test(l.msg)), 'the restored log line');
    // Unsubscribing ends the live connection.
    await off();
    await until(async () => (await listenerPids()).length === 0, 'the listening connection to end');
  });

  it('keeps retrying, backing off, while the database refuses connections, and listens once it accepts them', async () => {
    await db.listen(CHANNEL, (p) => heard.push(p));
    await allowConnections(false);
    await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND query LIKE \'LISTEN%\'', [name]);

    await until(() => logged(DEBUG).length >= 4, 'four failed attempts', 10_000);
    const failed = logged(DEBUG).map((l) => l.time);
    // The waits grow: 100 → 200 → 400 → 800 ms, each drawn from its upper half.
    expect(failed[3]! - failed[2]!).toBeGreaterThan(failed[1]! - failed[0]!);
    expect(await listenerPids()).toEqual([]);
    expect(logged(INFO)).toEqual([]);

    await allowConnections(true);
    await until(async () => (await listenerPids()).length === 1, 'listening again', 10_000);
    await notify('back');
    await until(() => heard.length === 1, 'the message after the database accepts connections again');
    expect(heard).toEqual(['back']);
    expect(logged(WARN)).toHaveLength(1);
    await until(() => logged(INFO).length === 1, 'the restored log line');
  });

  it('after unsubscribing, a pending retry is cancelled and nothing reconnects', async () => {
    const off = await db.listen(CHANNEL, (p) => heard.push(p));
    await allowConnections(false);
    await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND query LIKE \'LISTEN%\'', [name]);
    await until(() => logged(DEBUG).length >= 2, 'failed attempts');
    await off();
    const seen = lines.length;
    const connects = vi.spyOn(pg.Client.prototype, 'connect');
    try {
      await allowConnections(true);
      // Well past the next wait (≤ 400 ms after two failures).
      await new Promise((r) => setTimeout(r, 1500));
      expect(connects).not.toHaveBeenCalled();
    } finally {
      connects.mockRestore();
    }
    expect(lines.slice(seen)).toEqual([]);
    expect(await listenerPids()).toEqual([]);
    await notify('nobody');
    await new Promise((r) => setTimeout(r, 100));
    expect(heard).toEqual([]);
  });

  it('leaves nothing that keeps the process alive once closed, retry pending or not', async () => {
    // A separate process: one subscription loses its connection while the database refuses new ones and is
    // unsubscribed with a retry pending; another listens live and is ended by closing the database. The
    // process must then exit on its own.
    const script = `
      import { register } from 'tsx/esm/api';
      import pg from 'pg';
      register();
      const { openDatabase } = await import('./src/store/db.ts');
      const name = process.env.SB_DB_NAME;
      const admin = new pg.Client({ connectionString: process.env.SB_ADMIN_URL });
      await admin.connect();
      let failures = 0;
      const db = await openDatabase({ url: process.env.SB_URL, dataDir: 'memory://', log: { warn() {}, info() {}, debug() { failures++; } } });
      const off = await db.listen('sb_exit', () => {});
      await admin.query('ALTER DATABASE ' + admin.escapeIdentifier(name) + ' ALLOW_CONNECTIONS false');
      await admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND query LIKE 'LISTEN%'", [name]);
      while (failures < 2) await new Promise((r) => setTimeout(r, 10));
      await off();
      await admin.query('ALTER DATABASE ' + admin.escapeIdentifier(name) + ' ALLOW_CONNECTIONS true');
      await db.listen('sb_exit_live', () => {});
      await db.close();
      await admin.end();
      console.log('closed');
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'],
      env: cleanEnv({ SB_URL: fresh.url, SB_ADMIN_URL: process.env.TEST_DATABASE_URL!, SB_DB_NAME: name }),
    });
    let out = '';
    let closedAt = 0;
    child.stdout.setEncoding('utf8').on('data', (d: string) => { out += d; if (out.includes('closed') && !closedAt) closedAt = Date.now(); });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { out += d; });
    const code = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      child.on('exit', (c) => { clearTimeout(timer); resolve(c); });
    });
    expect(out).toContain('closed');
    expect(code).toBe(0);
    expect(Date.now() - closedAt).toBeLessThan(2000);
  });
});
