import { createCipheriv, createDecipheriv, createHash, createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const PREFIX = 'enc:v1:';

/** AES-256-GCM with a random 96-bit IV per value; the stored form is self-describing text. */
export class SecretBox {
  constructor(private readonly key: Buffer) {
    if (key.length !== 32) throw new Error('secret key must be 32 bytes');
  }

  seal(plain: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
    return PREFIX + Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64');
  }

  open(sealed: string): string {
    if (!SecretBox.isSealed(sealed)) return sealed;
    const raw = Buffer.from(sealed.slice(PREFIX.length), 'base64');
    const decipher = createDecipheriv('aes-256-gcm', this.key, raw.subarray(0, 12));
    decipher.setAuthTag(raw.subarray(12, 28));
    return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8');
  }

  /**
   * HMAC-SHA256 of `data` under a key derived from the secret key for `purpose` (HKDF), so a MAC made for
   * one purpose (a media-stream token, say) is never valid for another, and never reveals the key.
   */
  mac(purpose: string, data: string): Buffer {
    const sub = Buffer.from(hkdfSync('sha256', this.key, Buffer.alloc(0), `switchboard:${purpose}`, 32));
    return createHmac('sha256', sub).update(data, 'utf8').digest();
  }

  static isSealed(v: unknown): v is string {
    return typeof v === 'string' && v.startsWith(PREFIX);
  }
}

/** Accepts 32 raw bytes as 64 hex chars or base64; any other string is stretched with SHA-256. */
export function keyFromString(s: string): Buffer {
  const t = s.trim();
  if (/^[0-9a-fA-F]{64}$/.test(t)) return Buffer.from(t, 'hex');
  const b = Buffer.from(t, 'base64');
  if (b.length === 32 && /^[A-Za-z0-9+/=_-]+$/.test(t)) return b;
  return createHash('sha256').update(t, 'utf8').digest();
}

/**
 * The credential key: from SWITCHBOARD_SECRET_KEY, or (embedded mode only) a key file generated in DATA_DIR
 * on first start. A shared PostgreSQL needs the same key on every node, so it must come from the environment.
 */
export function resolveSecretKey(opts: { secretKey?: string; dataDir: string; embedded: boolean }): Buffer {
  if (opts.secretKey) return keyFromString(opts.secretKey);
  if (!opts.embedded) {
    throw new Error('SWITCHBOARD_SECRET_KEY is required when DATABASE_URL is set (every node must share it)');
  }
  const file = join(opts.dataDir, 'secret.key');
  if (existsSync(file)) {
    const text = readFileSync(file, 'utf8').trim();
    // A damaged key file would silently derive another key and make every stored secret unreadable.
    if (!/^[0-9a-fA-F]{64}$/.test(text)) throw new Error(`${file} is damaged (expected 64 hex characters); restore it from a backup`);
    return Buffer.from(text, 'hex');
  }
  mkdirSync(opts.dataDir, { recursive: true });
  const key = randomBytes(32);
  writeFileSync(file, key.toString('hex') + '\n', { mode: 0o600 });
  return key;
}

/** What a response shows of a secret: its last four characters. */
export function maskSecret(plain: string): string {
  return plain.length <= 4 ? '****' : `****${plain.slice(-4)}`;
}
