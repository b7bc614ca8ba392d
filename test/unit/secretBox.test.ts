import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { keyFromString, maskSecret, resolveSecretKey, SecretBox } from '../../src/store/secretBox.js';

const dirs: string[] = [];
const tempDir = () => { const d = mkdtempSync(join(tmpdir(), 'sb-unit-')); dirs.push(d); return d; };
afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

describe('SecretBox', () => {
  const box = new SecretBox(randomBytes(32));

  it.each(['tw-auth-token-1234', '', 'ünïcødé ✓ 秘密', 'x'.repeat(10_000)])('round-trips %j', (plain) => {
    const sealed = box.seal(plain);
    expect(sealed.startsWith('enc:v1:')).toBe(true);
    expect(SecretBox.isSealed(sealed)).toBe(true);
    expect(box.open(sealed)).toBe(plain);
  });

  it('never shows the plain text and uses a fresh IV for every value', () => {
    const a = box.seal('same secret value');
    const b = box.seal('same secret value');
    expect(a).not.toBe(b);
    expect(a).not.toContain('same secret value');
    const iv = (s: string) => Buffer.from(s.slice('enc:v1:'.length), 'base64').subarray(0, 12).toString('hex');
    expect(iv(a)).not.toBe(iv(b));
  });

  it('refuses a tampered value (ciphertext, tag or IV)', () => {
    const sealed = box.seal('do not touch');
    const raw = Buffer.from(sealed.slice('enc:v1:'.length), 'base64');
    for (const at of [0, 12, raw.length - 1]) {
      const t = Buffer.from(raw);
      t[at] ^= 0x01;
      expect(() => box.open('enc:v1:' + t.toString('base64')), `byte ${at}`).toThrow();
    }
    expect(() => box.open('enc:v1:' + raw.subarray(0, raw.length - 1).toString('base64'))).toThrow();
  });

  it('refuses a value sealed with another key', () => {
    const other = new SecretBox(randomBytes(32));
    expect(() => other.open(box.seal('mine'))).toThrow();
  });

  it('passes through values that were never sealed', () => {
    expect(SecretBox.isSealed('plain')).toBe(false);
    expect(SecretBox.isSealed(null)).toBe(false);
    expect(box.open('plain')).toBe('plain');
  });

  it('needs a 32-byte key', () => {
    expect(() => new SecretBox(randomBytes(16))).toThrow(/32 bytes/);
  });
});

describe('keyFromString', () => {
  const raw = randomBytes(32);

  it('reads 64 hex characters as raw bytes (whitespace around ignored)', () => {
    expect(keyFromString(raw.toString('hex'))).toEqual(raw);
    expect(keyFromString(raw.toString('hex').toUpperCase())).toEqual(raw);
    expect(keyFromString(`  ${raw.toString('hex')}\n`)).toEqual(raw);
  });

  it('reads base64 and base64url of 32 bytes as raw bytes', () => {
    expect(keyFromString(raw.toString('base64'))).toEqual(raw);
    expect(keyFromString(raw.toString('base64url'))).toEqual(raw);
  });

  it('stretches any other string (a passphrase) with SHA-256, deterministically', () => {
    const pass = 'correct horse battery staple';
    const k = keyFromString(pass);
    expect(k).toHaveLength(32);
    expect(k).toEqual(createHash('sha256').update(pass).digest());
    expect(keyFromString(pass)).toEqual(k);
    expect(keyFromString('correct horse battery stapler')).not.toEqual(k);
    // 63 hex digits is not a raw key
    expect(keyFromString(raw.toString('hex').slice(1))).toHaveLength(32);
    expect(keyFromString(raw.toString('hex').slice(1))).not.toEqual(raw);
  });

  it('gives keys that a SecretBox accepts', () => {
    for (const s of [raw.toString('hex'), raw.toString('base64'), 'pw']) {
      const box = new SecretBox(keyFromString(s));
      expect(box.open(box.seal('v'))).toBe('v');
    }
  });
});

describe('resolveSecretKey', () => {
  it('embedded: creates DATA_DIR/secret.key (mode 0600, hex) on first use and reuses it', () => {
    const dataDir = join(tempDir(), 'nested', 'data');
    const k1 = resolveSecretKey({ dataDir, embedded: true });
    const file = join(dataDir, 'secret.key');
    expect(existsSync(file)).toBe(true);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file, 'utf8').trim()).toBe(k1.toString('hex'));
    const k2 = resolveSecretKey({ dataDir, embedded: true });
    expect(k2).toEqual(k1);
    // a box sealed before a restart opens after it
    expect(new SecretBox(k2).open(new SecretBox(k1).seal('kept'))).toBe('kept');
  });

  it('embedded: two data directories get different keys', () => {
    expect(resolveSecretKey({ dataDir: tempDir(), embedded: true })).not.toEqual(resolveSecretKey({ dataDir: tempDir(), embedded: true }));
  });

  it('SWITCHBOARD_SECRET_KEY wins over the key file and writes nothing', () => {
    const dataDir = tempDir();
    const raw = randomBytes(32);
    expect(resolveSecretKey({ secretKey: raw.toString('hex'), dataDir, embedded: true })).toEqual(raw);
    expect(existsSync(join(dataDir, 'secret.key'))).toBe(false);
    writeFileSync(join(dataDir, 'secret.key'), randomBytes(32).toString('hex'));
    expect(resolveSecretKey({ secretKey: raw.toString('hex'), dataDir, embedded: true })).toEqual(raw);
  });

  it('not embedded (PostgreSQL): refuses to start without SWITCHBOARD_SECRET_KEY and writes no file', () => {
    const dataDir = tempDir();
    expect(() => resolveSecretKey({ dataDir, embedded: false })).toThrow(/SWITCHBOARD_SECRET_KEY/);
    expect(existsSync(join(dataDir, 'secret.key'))).toBe(false);
    expect(resolveSecretKey({ secretKey: 'shared passphrase', dataDir, embedded: false })).toHaveLength(32);
  });
});

describe('maskSecret', () => {
  it.each([
    ['sk-proj-secret-wxyz', '****wxyz'],
    ['abcde', '****bcde'],
    ['abcd', '****'],
    ['ab', '****'],
    ['', '****'],
  ])('%j → %j', (plain, masked) => {
    expect(maskSecret(plain)).toBe(masked);
  });

  it('never reveals more than the last four characters', () => {
    const s = randomBytes(20).toString('hex');
    expect(maskSecret(s)).not.toContain(s.slice(-5));
  });
});
