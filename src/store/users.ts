import { createHash, randomBytes } from 'node:crypto';
import { and, asc, count, eq, isNull, or, sql } from 'drizzle-orm';
import { isUuid } from '../domain/common.js';
import type { Exec } from './resources.js';
import * as s from './schema.js';

export const hashKey = (key: string) => createHash('sha256').update(key, 'utf8').digest('hex');

export function generateApiKey(): string {
  return `sb_${randomBytes(24).toString('base64url')}`;
}

export interface KeyInfo { id: string; user_id: string; prefix: string; label: string | null; created_at: string; revoked_at: string | null }

export class UserRepo {
  async createUser(db: Exec, name: string | null = null): Promise<string> {
    const [u] = await db.insert(s.users).values({ name }).returning({ id: s.users.id });
    return u.id;
  }

  async getUser(db: Exec, id: string) {
    const [u] = await db.select().from(s.users).where(eq(s.users.id, id)).limit(1);
    return u;
  }

  /** Stores only the key's hash; the key itself is returned to be shown once. */
  async createKey(db: Exec, userId: string, label: string | null = null, key = generateApiKey()): Promise<{ key: string; id: string }> {
    const [row] = await db.insert(s.apiKeys).values({ userId, keyHash: hashKey(key), prefix: key.slice(0, 7), label }).returning({ id: s.apiKeys.id });
    return { key, id: row.id };
  }

  async userForKey(db: Exec, key: string): Promise<string | null> {
    const [row] = await db.select({ userId: s.apiKeys.userId }).from(s.apiKeys)
      .where(and(eq(s.apiKeys.keyHash, hashKey(key)), isNull(s.apiKeys.revokedAt))).limit(1);
    return row?.userId ?? null;
  }

  async countKeys(db: Exec): Promise<number> {
    const [r] = await db.select({ n: count() }).from(s.apiKeys);
    return r.n;
  }

  async listKeys(db: Exec): Promise<KeyInfo[]> {
    const rows = await db.select().from(s.apiKeys).orderBy(asc(s.apiKeys.createdAt));
    return rows.map((r) => ({
      id: r.id, user_id: r.userId, prefix: r.prefix, label: r.label,
      created_at: r.createdAt.toISOString(), revoked_at: r.revokedAt?.toISOString() ?? null,
    }));
  }

  /** Revokes by key id or by the full key; returns how many keys changed. */
  async revokeKey(db: Exec, idOrKey: string): Promise<number> {
    const byId = isUuid(idOrKey);
    const rows = await db.update(s.apiKeys).set({ revokedAt: sql`now()` })
      .where(and(isNull(s.apiKeys.revokedAt), byId ? or(eq(s.apiKeys.id, idOrKey), eq(s.apiKeys.keyHash, hashKey(idOrKey))) : eq(s.apiKeys.keyHash, hashKey(idOrKey))))
      .returning({ id: s.apiKeys.id });
    return rows.length;
  }
}
