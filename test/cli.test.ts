import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client, killAllChildren, runCli, startServe, type ServeProcess } from './helpers/process.js';

/**
 * `switchboard keys create|list|revoke` against an embedded DATA_DIR. Embedded PGlite is single-process,
 * so every CLI command runs while no server is open on that directory; the server starts afterwards.
 */

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'sb-cli-'));
  dirs.push(d);
  return d;
}

afterAll(async () => {
  await killAllChildren();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

interface Created { key: string; id: string; user: string }

describe('keys create | list | revoke, then the server honours them', { timeout: 120_000 }, () => {
  let dataDir: string;
  let env: Record<string, string>;
  const keys: Record<string, Created> = {};

  async function create(args: string[]): Promise<Created> {
    const r = await runCli(['keys', 'create', ...args], env);
    expect(r.code, r.stderr).toBe(0);
    const key = r.stdout.trim();
    expect(key).toMatch(/^sb_[A-Za-z0-9_-]{32}$/);
    expect(r.stdout).toBe(`${key}\n`);
    const m = /key id (\S+) for user (\S+)/.exec(r.stderr);
    expect(m, r.stderr).not.toBeNull();
    expect(m![1]).toMatch(UUID);
    expect(m![2]).toMatch(UUID);
    expect(r.stderr).not.toContain(key);
    return { key, id: m![1], user: m![2] };
  }

  beforeAll(() => {
    dataDir = tempDir();
    env = { DATA_DIR: dataDir, LOG_LEVEL: 'warn' };
  });

  it('keys list on a new DATA_DIR lists nothing', async () => {
    const r = await runCli(['keys', 'list'], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe('');
  });

  it('keys create makes a new user per call unless --user is given', async () => {
    keys.alice = await create(['--label', 'alice']);
    keys.bob = await create([]);
    expect(keys.bob.user).not.toBe(keys.alice.user);
    keys.alice2 = await create(['--user', keys.alice.user, '--label', 'alice-laptop']);
    expect(keys.alice2.user).toBe(keys.alice.user);
    expect(keys.alice2.key).not.toBe(keys.alice.key);
    keys.revokeById = await create(['--user', keys.alice.user, '--label', 'to-revoke-by-id']);
    keys.revokeByKey = await create(['--label', 'to-revoke-by-key']);
    expect(new Set(Object.values(keys).map((k) => k.key)).size).toBe(5);
  });

  it('keys create --user refuses a user that does not exist', async () => {
    const unknown = await runCli(['keys', 'create', '--user', '00000000-0000-4000-8000-000000000000'], env);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('no user 00000000-0000-4000-8000-000000000000');
    expect(unknown.stdout).not.toMatch(/sb_/);
    const malformed = await runCli(['keys', 'create', '--user', 'alice'], env);
    expect(malformed.code).toBe(1);
    expect(malformed.stderr).toContain('no user alice');
  });

  it('a 36-character id that is not a UUID gets a plain answer, not an SQL error', async () => {
    const notUuid = '0'.repeat(36);
    const revoke = await runCli(['keys', 'revoke', notUuid], env);
    expect.soft(revoke.code).toBe(1);
    expect.soft(revoke.stdout + revoke.stderr).not.toMatch(/Failed query|api_keys|key_hash/);
    expect.soft(revoke.stdout).toContain('no active key matched');
    const create = await runCli(['keys', 'create', '--user', notUuid], env);
    expect.soft(create.code).toBe(1);
    expect.soft(create.stderr).not.toMatch(/Failed query|users/);
    expect.soft(create.stderr).toContain(`no user ${notUuid}`);
  });

  it('keys revoke takes a key id or the full key', async () => {
    const byId = await runCli(['keys', 'revoke', keys.revokeById.id], env);
    expect(byId.code, byId.stderr).toBe(0);
    expect(byId.stdout).toContain('revoked 1 key');
    const byKey = await runCli(['keys', 'revoke', keys.revokeByKey.key], env);
    expect(byKey.code, byKey.stderr).toBe(0);
    expect(byKey.stdout).toContain('revoked 1 key');
  });

  it('keys revoke of an already revoked or unknown key exits 1; without an argument exits 2 with usage', async () => {
    const again = await runCli(['keys', 'revoke', keys.revokeById.id], env);
    expect(again.code).toBe(1);
    expect(again.stdout).toContain('no active key matched');
    const unknown = await runCli(['keys', 'revoke', 'sb_not_a_key_at_all_000000000000000'], env);
    expect(unknown.code).toBe(1);
    const missing = await runCli(['keys', 'revoke'], env);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('keys revoke <KEY_ID|KEY>');
  });

  it('keys list shows id, prefix, user and state of every key, never a full key', async () => {
    const r = await runCli(['keys', 'list'], env);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(5);
    for (const k of Object.values(keys)) {
      expect(r.stdout).not.toContain(k.key);
      const line = lines.find((l) => l.startsWith(k.id));
      expect(line, `a line for key ${k.id}\n${r.stdout}`).toBeDefined();
      expect(line).toContain(`user ${k.user}`);
      expect(line).toContain(k.key.slice(0, 7));
    }
    const lineOf = (name: string) => lines.find((l) => l.startsWith(keys[name].id))!;
    for (const name of ['alice', 'alice2', 'bob']) {
      expect(lineOf(name)).toMatch(/\bactive\b/);
      expect(lineOf(name)).not.toMatch(/revoked/);
    }
    for (const name of ['revokeById', 'revokeByKey']) expect(lineOf(name)).toMatch(/\brevoked\b/);
    expect(lineOf('alice2')).toContain('alice-laptop');
  });

  describe('the server started on that DATA_DIR', () => {
    let server: ServeProcess;
    beforeAll(async () => {
      server = await startServe({ ...env, API_KEY_CACHE_SECONDS: '0' });
    }, 90_000);
    afterAll(async () => { await server?.stop(); });

    it('prints no bootstrap key (keys already exist)', () => {
      expect(server.stdout()).not.toMatch(/sb_[A-Za-z0-9_-]{20,}/);
    });

    it('accepts the created keys on /v1/usage, each for its own user', async () => {
      for (const name of ['alice', 'alice2', 'bob']) {
        const r = await client(server.url, keys[name].key)('/v1/usage');
        expect(r.status, `${name}: ${JSON.stringify(r.body)}`).toBe(200);
        expect(r.body.user_id).toBe(keys[name].user);
      }
    });

    it('answers 401 with the error body for revoked keys', async () => {
      for (const name of ['revokeById', 'revokeByKey']) {
        const r = await client(server.url, keys[name].key)('/v1/usage');
        expect(r.status).toBe(401);
        expect(r.body).toEqual({ detail: expect.any(String), message: expect.any(String), error: 'Unauthorized', statusCode: 401 });
        expect(r.body.detail).toBe(r.body.message);
        expect(r.body.message).toMatch(/revoked|invalid/i);
      }
    });

    it('keys of one user share data; another user sees none of it', async () => {
      const alice = client(server.url, keys.alice.key);
      const alice2 = client(server.url, keys.alice2.key);
      const bob = client(server.url, keys.bob.key);
      const created = await alice('/v1/agents/create', { body: { name: 'Shared', prompt: { content: 'hi' }, voice: { type: 'voice_azure', voice_name: 'en-US-AriaNeural' } } });
      expect(created.status, JSON.stringify(created.body)).toBe(201);
      const id = created.body.id;
      const seen = await alice2(`/v1/agents?id=${id}`);
      expect(seen.status).toBe(200);
      expect(seen.body).toEqual(created.body);
      expect((await alice2('/v1/agents/list')).body.items.map((a: any) => a.id)).toEqual([id]);
      expect((await bob('/v1/agents/list')).body).toMatchObject({ items: [], total: 0 });
      expect((await bob(`/v1/agents?id=${id}`)).status).toBe(404);
      expect((await bob(`/v1/prompts?id=${created.body.prompt.id}`)).status).toBe(404);
      expect((await bob(`/v1/agents/update?id=${id}`, { body: { name: 'hijacked' } })).status).toBe(404);
      expect((await bob(`/v1/agents/delete?id=${id}`, { method: 'DELETE' })).status).toBe(404);
      expect((await alice(`/v1/agents?id=${id}`)).body.name).toBe('Shared');
    });
  });
});

describe('keys create while a server holds the DATA_DIR', { timeout: 120_000 }, () => {
  it('never reports success for a key that does not work', async () => {
    const dataDir = tempDir();
    const env = { DATA_DIR: dataDir, LOG_LEVEL: 'warn', API_KEY_CACHE_SECONDS: '0' };
    let server = await startServe(env);
    try {
      const r = await runCli(['keys', 'create', '--label', 'while-running'], env);
      if (r.code !== 0) {
        // refusing is fine, as long as it says why
        expect(r.stderr).toMatch(/running|in use|lock|stop/i);
        expect(r.stdout).not.toMatch(/sb_/);
        return;
      }
      const key = r.stdout.trim();
      const now = await client(server.url, key)('/v1/usage');
      expect.soft(now.status, 'the running server accepts the key the CLI just printed').toBe(200);
      expect(await server.stop()).toEqual({ code: 0, signal: null });
      server = await startServe(env);
      const later = await client(server.url, key)('/v1/usage');
      expect(later.status, 'the key survives a server restart').toBe(200);
    } finally {
      await server.stop();
    }
  });
});

describe('other commands (each on its own DATA_DIR)', { timeout: 120_000 }, () => {

  it('an unknown command exits 2 and prints the usage', async () => {
    const r = await runCli(['frobnicate'], { DATA_DIR: tempDir() });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown command frobnicate');
    expect(r.stderr).toContain('keys create [--user ID] [--label TEXT]');
    expect(r.stdout).toBe('');
  });

  it('an unknown keys subcommand exits 2 and prints the usage', async () => {
    const r = await runCli(['keys', 'rotate'], { DATA_DIR: tempDir() });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('keys list');
  });

  it('help prints the usage on stdout and exits 0', async () => {
    const r = await runCli(['--help'], {});
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('switchboard <command>');
    expect(r.stdout).toContain('migrate');
  });

  it('migrate exits 0 on a new DATA_DIR and again on a migrated one, without creating keys', async () => {
    const dataDir = tempDir();
    const env = { DATA_DIR: dataDir, LOG_LEVEL: 'warn' };
    const first = await runCli(['migrate'], env);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toContain('migrations applied');
    const second = await runCli(['migrate'], env);
    expect(second.code, second.stderr).toBe(0);
    const list = await runCli(['keys', 'list'], env);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout.trim()).toBe('');
  });
});
