import { ValidationError } from './errors.js';

export const MAX_JSON_DEPTH = 64;

// A NUL, or a UTF-16 surrogate without its partner: PostgreSQL stores neither in text or jsonb.
const UNSTORABLE = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/**
 * Rejects, with a 422 naming the place, JSON that PostgreSQL cannot store (NUL characters, lone
 * surrogates) or that nests deeper than any resource needs. Walks iteratively: depth cannot blow the stack.
 */
export function assertStorableJson(value: unknown, prefix: (string | number)[]): void {
  const stack: { v: unknown; path: (string | number)[] }[] = [{ v: value, path: prefix }];
  while (stack.length) {
    const { v, path } = stack.pop()!;
    if (typeof v === 'string') {
      if (UNSTORABLE.test(v)) throw ValidationError.one(path, 'contains a NUL character or an unpaired surrogate', 'string_unstorable');
      continue;
    }
    if (v === null || typeof v !== 'object') continue;
    if (path.length - prefix.length >= MAX_JSON_DEPTH) {
      throw ValidationError.one(path, `nests deeper than ${MAX_JSON_DEPTH} levels`, 'too_deep');
    }
    if (Array.isArray(v)) v.forEach((x, i) => stack.push({ v: x, path: [...path, i] }));
    else {
      for (const [k, x] of Object.entries(v)) {
        if (UNSTORABLE.test(k)) throw ValidationError.one(path, 'has a key with a NUL character or an unpaired surrogate', 'string_unstorable');
        stack.push({ v: x, path: [...path, k] });
      }
    }
  }
}
