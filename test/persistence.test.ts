import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client, killAllChildren, runCli, startServe, type ServeProcess } from './helpers/process.js';

/**
 * Embedded mode as a new user meets it: `switchboard serve` with only PORT and DATA_DIR set (PGlite on
 * disk, no DATABASE_URL), stopped and started again on the same directory.
 */

const KEY_RE = /sb_[A-Za-z0-9_-]{20,}/g;
const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'sb-persist-'));
  dirs.push(d);
  return d;
}

afterAll(async () => {
  await killAllChildren();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Every file under dir that contains the given text byte for byte. */
function filesContaining(dir: string, text: string): string[] {
  const needle = Buffer.from(text, 'utf8');
  const hits: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && readFileSync(p).includes(needle)) hits.push(p);
    }
  };
  walk(dir);
  return hits;
}

describe('embedded mode: first start, restart on the same DATA_DIR', { timeout: 120_000 }, () => {
  const AUTH_TOKEN = `tw-auth-${randomBytes(6).toString('hex')}-9a7b`;
  const VOICE_KEY = `xi-${randomBytes(6).toString('hex')}-5c3d`;
  let dataDir: string;
  let first: ServeProcess;
  let key: string;
  let secretKeyFile: string;
  let agent: any;
  let conn: any;
  let api: ReturnType<typeof client>;

  beforeAll(async () => {
    dataDir = tempDir();
    first = await startServe({ DATA_DIR: dataDir, LOG_LEVEL: 'warn' });
  }, 90_000);

  it('prints one generated sb_ API key with a ready-to-run curl line, once', async () => {
    const out = first.stdout();
    const keys = [...new Set(out.match(KEY_RE) ?? [])];
    expect(keys, out).toHaveLength(1);
    key = keys[0];
    expect(key).toMatch(/^sb_[A-Za-z0-9_-]{32}$/);
    expect(out.match(/shown once/g), out).toHaveLength(1);
    expect(out).toContain(`curl -H "Authorization: Bearer ${key}" http://localhost:${first.port}/v1/agents/list`);
    expect(out).toContain(`docs http://localhost:${first.port}/docs`);
    api = client(first.url, key);
    const health = await api('/healthz', { key: null });
    expect(health.body).toMatchObject({ status: 'ok', database: 'pglite' });
    const usage = await api('/v1/usage');
    expect(usage.status).toBe(200);
    expect(usage.body.user_id).toMatch(/^[0-9a-f-]{36}$/);
    expect((await api('/v1/usage', { key: `sb_${randomBytes(24).toString('base64url')}` })).status).toBe(401);
  });

  it('generates DATA_DIR/secret.key (mode 0600) for credentials', () => {
    secretKeyFile = readFileSync(join(dataDir, 'secret.key'), 'utf8');
    expect(secretKeyFile.trim()).toMatch(/^[0-9a-f]{64}$/);
    expect(statSync(join(dataDir, 'secret.key')).mode & 0o777).toBe(0o600);
  });

  it('creates an agent with inline prompt and voice, and a connection with a secret', async () => {
    const a = await api('/v1/agents/create', {
      body: {
        name: 'Persistent', initial_message: 'Hello!',
        prompt: { content: 'You are a receptionist.' },
        voice: { type: 'voice_eleven_labs', voice_id: 'EXAVITQu4vr4xnSDxMaL', api_key: VOICE_KEY },
        webhook: { url: 'https://example.com/hook', subscriptions: ['event_phone_call_ended'] },
      },
    });
    expect(a.status, JSON.stringify(a.body)).toBe(201);
    agent = a.body;
    expect(agent.voice.api_key).toBe('****5c3d');
    const c = await api('/v1/account_connections/create', {
      body: { type: 'account_connection_twilio', credentials: { twilio_account_sid: 'AC0123456789', twilio_auth_token: AUTH_TOKEN } },
    });
    expect(c.status, JSON.stringify(c.body)).toBe(201);
    conn = c.body;
    expect(conn.credentials.twilio_auth_token).toBe('****9a7b');
  });

  it('serves Swagger UI at /docs and the OpenAPI document at /openapi.json', async () => {
    const docs = await fetch(`${first.url}/docs`);
    expect(docs.status).toBe(200);
    expect(docs.headers.get('content-type')).toMatch(/text\/html/);
    const html = await docs.text();
    expect(html).toMatch(/swagger-ui/i);
    expect(html).toContain('/openapi.json');
    const spec = await fetch(`${first.url}/openapi.json`);
    expect(spec.status).toBe(200);
    expect(spec.headers.get('content-type')).toMatch(/application\/json/);
    const doc = await spec.json();
    expect(doc.openapi).toMatch(/^3\.1\./);
    expect(Object.keys(doc.paths)).toContain('/v1/agents/create');
  });

  it('stops on SIGTERM with exit code 0', async () => {
    const exit = await first.stop('SIGTERM');
    expect(exit, first.stdout() + first.stderr()).toEqual({ code: 0, signal: null });
  });

  it('keeps secrets and API keys off the disk in plain text', () => {
    expect(filesContaining(dataDir, AUTH_TOKEN)).toEqual([]);
    expect(filesContaining(dataDir, VOICE_KEY)).toEqual([]);
    expect(filesContaining(dataDir, key)).toEqual([]);
  });

  describe('second start', () => {
    let second: ServeProcess;
    beforeAll(async () => {
      second = await startServe({ DATA_DIR: dataDir, LOG_LEVEL: 'warn' });
      api = client(second.url, key);
    }, 90_000);

    it('prints no new key and reuses secret.key', () => {
      expect(second.stdout().match(KEY_RE), second.stdout()).toBeNull();
      expect(second.stdout()).not.toContain('shown once');
      expect(second.stdout()).toContain('Switchboard is up');
      expect(readFileSync(join(dataDir, 'secret.key'), 'utf8')).toBe(secretKeyFile);
    });

    it('accepts the old key and returns every object unchanged, secrets masked the same', async () => {
      const a = await api(`/v1/agents?id=${agent.id}`);
      expect(a.status, JSON.stringify(a.body)).toBe(200);
      expect(a.body).toEqual(agent);
      const c = await api(`/v1/account_connections?id=${conn.id}`);
      expect(c.status, JSON.stringify(c.body)).toBe(200);
      expect(c.body).toEqual(conn);
      const list = await api('/v1/agents/list');
      expect(list.body.items.map((x: any) => x.id)).toEqual([agent.id]);
      const prompt = await api(`/v1/prompts?id=${agent.prompt.id}`);
      expect(prompt.body).toEqual(agent.prompt);
      const voice = await api(`/v1/voices?id=${agent.voice.id}`);
      expect(voice.body).toEqual(agent.voice);
    });

    it('updates after the restart keep the sealed secret readable', async () => {
      const u = await api(`/v1/account_connections/update?id=${conn.id}`, { body: { type: 'account_connection_twilio', label: 'main line' } });
      expect(u.status, JSON.stringify(u.body)).toBe(201);
      expect(u.body).toMatchObject({ label: 'main line', credentials: { twilio_account_sid: 'AC0123456789', twilio_auth_token: '****9a7b' } });
      const a = await api(`/v1/agents/update?id=${agent.id}`, { body: { name: 'Renamed' } });
      expect(a.status, JSON.stringify(a.body)).toBe(201);
      expect(a.body).toMatchObject({ name: 'Renamed', voice: { api_key: '****5c3d' } });
    });

    it('stops on SIGINT (Ctrl-C) with exit code 0, then starts a third time with the data intact', async () => {
      expect(await second.stop('SIGINT')).toEqual({ code: 0, signal: null });
      const third = await startServe({ DATA_DIR: dataDir, LOG_LEVEL: 'warn' });
      try {
        const a = await client(third.url, key)(`/v1/agents?id=${agent.id}`);
        expect(a.body).toMatchObject({ id: agent.id, name: 'Renamed' });
      } finally {
        expect(await third.stop('SIGTERM')).toEqual({ code: 0, signal: null });
      }
    });
  });
});

describe('SWITCHBOARD_BOOTSTRAP_API_KEY', { timeout: 120_000 }, () => {
  it('becomes the first key on a fresh DATA_DIR, is not printed in full, and survives a restart without the variable', async () => {
    const dataDir = tempDir();
    const chosen = `my-own-bootstrap-${randomBytes(8).toString('hex')}`;
    const s = await startServe({ DATA_DIR: dataDir, LOG_LEVEL: 'warn', SWITCHBOARD_BOOTSTRAP_API_KEY: chosen });
    try {
      const out = s.stdout() + s.stderr();
      expect(out).not.toContain(chosen);
      expect(out).toContain(`****${chosen.slice(-4)}`);
      expect(out.match(KEY_RE), 'no generated key is printed').toBeNull();
      const api = client(s.url, chosen);
      const usage = await api('/v1/usage');
      expect(usage.status).toBe(200);
      const created = await api('/v1/prompts/create', { body: { content: 'kept' } });
      expect(created.status).toBe(201);
      expect((await api('/v1/usage', { key: chosen.slice(0, -1) })).status).toBe(401);
    } finally {
      expect(await s.stop()).toEqual({ code: 0, signal: null });
    }
    const again = await startServe({ DATA_DIR: dataDir, LOG_LEVEL: 'warn' });
    try {
      expect(again.stdout().match(KEY_RE)).toBeNull();
      const list = await client(again.url, chosen)('/v1/prompts/list');
      expect(list.status).toBe(200);
      expect(list.body.items.map((p: any) => p.content)).toEqual(['kept']);
    } finally {
      expect(await again.stop()).toEqual({ code: 0, signal: null });
    }
  });

  it('a too-short value stops the start with an error naming the variable', async () => {
    const r = await runCli(['serve'], { DATA_DIR: tempDir(), LOG_LEVEL: 'warn', PORT: '0', SWITCHBOARD_BOOTSTRAP_API_KEY: 'short' }, 20_000);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('SWITCHBOARD_BOOTSTRAP_API_KEY');
    expect(r.stderr).toContain('at least 16 characters');
  });
});

describe('first start on a port that is already in use', { timeout: 120_000 }, () => {
  it('fails with a clear message and the one-time key is shown by the first start that actually serves', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '0.0.0.0', () => resolve()));
    const port = (blocker.address() as { port: number }).port;
    const dataDir = tempDir();
    let failed;
    try {
      failed = await runCli(['serve'], { DATA_DIR: dataDir, LOG_LEVEL: 'warn', PORT: String(port) }, 30_000);
    } finally {
      await new Promise((r) => blocker.close(r));
    }
    expect(failed.code).not.toBe(0);
    expect.soft(failed.stderr + failed.stdout).toContain(String(port));
    expect.soft(failed.stderr, 'an explained error, not an unhandled-event stack trace').not.toContain("Unhandled 'error' event");
    expect.soft(failed.stdout.match(KEY_RE), 'no key is handed out by a start that never served').toBeNull();

    const s = await startServe({ DATA_DIR: dataDir, LOG_LEVEL: 'warn' });
    try {
      const printed = [...new Set(s.stdout().match(KEY_RE) ?? [])];
      const usable = [...new Set([...(failed.stdout.match(KEY_RE) ?? []), ...printed])];
      expect(printed, 'the first serving start prints the API key').toHaveLength(1);
      expect((await client(s.url, printed[0] ?? usable[0] ?? 'none')('/v1/usage')).status).toBe(200);
    } finally {
      expect(await s.stop()).toEqual({ code: 0, signal: null });
    }
  });
});
