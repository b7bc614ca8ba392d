import type { MiddlewareHandler } from 'hono';
import type { Store } from '../store/store.js';
import { sendError } from './errors.js';

export type AuthEnv = { Variables: { userId: string } };

/**
 * Bearer API keys. Lookups are cached for a few seconds so hot paths cost no database round trip;
 * a revoked key therefore stops working within that many seconds on every node.
 */
export function apiKeyAuth(store: Store, cacheSeconds: number): MiddlewareHandler<AuthEnv> {
  const cache = new Map<string, { userId: string | null; until: number }>();
  return async (c, next) => {
    const header = c.req.header('authorization') ?? '';
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!m) return sendError(c, 401, header ? 'Authorization header must be "Bearer <API key>"' : 'missing API key: send "Authorization: Bearer <API key>"');
    const key = m[1];
    const now = Date.now();
    let hit = cache.get(key);
    if (!hit || hit.until < now) {
      hit = { userId: await store.users.userForKey(store.db, key), until: now + cacheSeconds * 1000 };
      if (cache.size > 10_000) cache.clear();
      cache.set(key, hit);
    }
    if (!hit.userId) return sendError(c, 401, 'invalid or revoked API key');
    c.set('userId', hit.userId);
    await next();
  };
}
