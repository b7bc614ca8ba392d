import { maskSecret, type SecretBox } from './secretBox.js';

type Json = Record<string, unknown>;

export function getPath(o: Json, path: string[]): unknown {
  let cur: unknown = o;
  for (const k of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Json)[k];
  }
  return cur;
}

/** A copy of `o` with `v` at `path`, copying each object on the way; a missing parent leaves `o` as is. */
export function setPath(o: Json, path: string[], v: unknown): Json {
  const out = { ...o };
  let cur = out;
  for (const k of path.slice(0, -1)) {
    if (cur[k] === null || typeof cur[k] !== 'object') return o;
    cur[k] = { ...(cur[k] as Json) };
    cur = cur[k] as Json;
  }
  cur[path[path.length - 1]] = v;
  return out;
}

/** Applies `fn` to each string found at the given secret paths; returns a copy. */
export function mapSecrets(o: Json, paths: string[][], fn: (v: string) => string): Json {
  let out = o;
  for (const p of paths) {
    const v = getPath(out, p);
    if (typeof v === 'string') out = setPath(out, p, fn(v));
  }
  return out;
}

/** Callers pass plaintext only, so a value that merely looks sealed is sealed like any other. */
export const sealAll = (box: SecretBox, o: Json, paths: string[][]) => mapSecrets(o, paths, (v) => box.seal(v));
export const openAll = (box: SecretBox, o: Json, paths: string[][]) => mapSecrets(o, paths, (v) => box.open(v));
export const maskAll = (box: SecretBox, o: Json, paths: string[][]) => mapSecrets(o, paths, (v) => maskSecret(box.open(v)));

/** The shape maskSecret gives: four asterisks and at most four characters of the secret. */
export const isMasked = (v: string) => /^\*{4}[^*]{0,4}$/.test(v);

/**
 * An update that sends back the masked form of a stored secret means "unchanged": put the stored
 * plaintext back wherever the incoming value equals the mask of what is stored.
 */
export function keepMaskedSecrets(incoming: Json, storedPlain: Json, paths: string[][]): Json {
  let out = incoming;
  for (const p of paths) {
    const inc = getPath(out, p);
    const old = getPath(storedPlain, p);
    if (typeof inc === 'string' && typeof old === 'string' && inc === maskSecret(old)) out = setPath(out, p, old);
  }
  return out;
}
