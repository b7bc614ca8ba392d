/**
 * API throughput and latency: get, list and create on the embedded database (PGlite) and on PostgreSQL.
 * The server runs as its own process (`switchboard serve`), the load generator (autocannon) in this one.
 *
 *   npm run bench:api                        # both databases (PostgreSQL from BENCH_DATABASE_URL or local)
 *   npm run bench:api -- --db postgres --duration 10 --connections 64 --workers 2
 *
 * Prints a table per database and, last, one JSON line per database (PostgreSQL last when it ran).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import pg from 'pg';

const { values: args } = parseArgs({
  args: process.argv.slice(3),
  options: {
    db: { type: 'string', default: 'both' },
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '32' },
    workers: { type: 'string', default: '1' },
  },
});
const duration = Number(args.duration);
const connections = Number(args.connections);
const pgAdmin = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      srv.close(() => (a && typeof a === 'object' ? resolve(a.port) : reject(new Error('no port'))));
    });
  });
}

async function waitHealthy(url: string, child: ChildProcess): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}`);
    try { if ((await fetch(`${url}/healthz`)).ok) return; } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('server did not become healthy');
}

interface Figures { rps: number; p50: number; p99: number; non2xx: number; errors: number }

async function load(url: string, key: string, method: 'GET' | 'POST', path: string, body?: string): Promise<Figures> {
  const r = await autocannon({
    url: url + path, method, connections, duration, body,
    headers: { authorization: `Bearer ${key}`, ...(body ? { 'content-type': 'application/json' } : {}) },
  });
  return { rps: Math.round(r.requests.average), p50: r.latency.p50, p99: r.latency.p99, non2xx: r.non2xx, errors: r.errors };
}

async function runOne(db: 'pglite' | 'postgres') {
  const port = await freePort();
  const key = `sb_bench_${randomBytes(12).toString('hex')}`;
  const dataDir = mkdtempSync(join(tmpdir(), 'sb-bench-'));
  let dropDb: (() => Promise<void>) | undefined;
  const env: Record<string, string> = {
    ...process.env as Record<string, string>, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn',
    DATA_DIR: dataDir, SWITCHBOARD_BOOTSTRAP_API_KEY: key, SWITCHBOARD_SECRET_KEY: randomBytes(32).toString('hex'),
    API_KEY_CACHE_SECONDS: '10', SWITCHBOARD_WORKERS: args.workers!,
  };
  delete env.DATABASE_URL;
  if (db === 'postgres') {
    const name = `sb_bench_${Date.now().toString(36)}`;
    const c = new pg.Client({ connectionString: pgAdmin });
    await c.connect();
    await c.query(`CREATE DATABASE ${name}`);
    await c.end();
    const u = new URL(pgAdmin);
    u.pathname = `/${name}`;
    env.DATABASE_URL = u.toString();
    dropDb = async () => {
      const d = new pg.Client({ connectionString: pgAdmin });
      await d.connect();
      await d.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await d.end();
    };
  }
  const child = spawn(process.execPath, ['bin/switchboard.mjs', 'serve'], { env, stdio: ['ignore', 'ignore', 'inherit'] });
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitHealthy(url, child);
    const h = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
    // Seed: 50 agents with nested objects, so list pages and expanded gets do real joins.
    let agentId = '';
    for (let i = 0; i < 50; i++) {
      const res = await fetch(`${url}/v1/agents/create`, {
        method: 'POST', headers: h,
        body: JSON.stringify({
          name: `agent ${i}`, prompt: { content: 'You are a helpful assistant.' }, voice: { type: 'voice_azure', voice_name: 'en-US-AriaNeural' },
          actions: [{ type: 'action_end_conversation' }], webhook: { url: 'https://example.com/hook', subscriptions: ['event_message'] },
        }),
      });
      agentId = ((await res.json()) as { id: string }).id;
    }
    const get = await load(url, key, 'GET', `/v1/agents?id=${agentId}`);
    const list = await load(url, key, 'GET', '/v1/agents/list?size=10');
    const create = await load(url, key, 'POST', '/v1/voices/create', JSON.stringify({ type: 'voice_azure', voice_name: 'en-US-JennyNeural' }));
    const rows: [string, Figures][] = [['get agent (expanded)', get], ['list agents (10)', list], ['create voice', create]];
    process.stdout.write(`\n${db} — ${connections} connections, ${duration}s each, ${args.workers} worker(s)\n`);
    process.stdout.write('operation               req/s    p50 ms   p99 ms   non-2xx  errors\n');
    for (const [name, f] of rows) {
      process.stdout.write(`${name.padEnd(22)} ${String(f.rps).padStart(6)} ${String(f.p50).padStart(8)} ${String(f.p99).padStart(8)} ${String(f.non2xx).padStart(9)} ${String(f.errors).padStart(7)}\n`);
    }
    return {
      get_rps: get.rps, get_p50_ms: get.p50, get_p99_ms: get.p99, list_rps: list.rps, list_p99_ms: list.p99,
      create_rps: create.rps, create_p99_ms: create.p99, non2xx: get.non2xx + list.non2xx + create.non2xx, db,
      workers: Number(args.workers), connections,
    };
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    rmSync(dataDir, { recursive: true, force: true });
    await dropDb?.();
  }
}

const dbs: ('pglite' | 'postgres')[] = args.db === 'both' ? ['pglite', 'postgres'] : [args.db as 'pglite' | 'postgres'];
const results = [];
for (const db of dbs) {
  if (db === 'postgres') {
    try {
      const c = new pg.Client({ connectionString: pgAdmin });
      await c.connect();
      await c.end();
    } catch (err) {
      process.stdout.write(`\npostgres skipped: ${(err as Error).message}\n`);
      continue;
    }
  }
  results.push(await runOne(db));
}
for (const r of results) process.stdout.write(JSON.stringify(r) + '\n');
