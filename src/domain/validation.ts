import type { z } from 'zod';
import { ValidationError, type FieldIssue } from './errors.js';

type Issue = z.core.$ZodIssue;

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}

function valueAt(root: unknown, path: PropertyKey[]): unknown {
  let cur = root;
  for (const k of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[k];
  }
  return cur;
}

/**
 * For a union that failed, the branch the caller most likely meant: the one that got furthest (its
 * first issue has the longest path), preferring branches that are not a plain type mismatch at the root.
 */
function bestBranch(branches: Issue[][]): Issue[] | undefined {
  let best: Issue[] | undefined;
  let bestScore = -Infinity;
  for (const b of branches) {
    if (b.length === 0) continue;
    const depth = Math.max(...b.map((i) => i.path.length));
    const rootTypeMiss = b.every((i) => i.path.length === 0 && i.code === 'invalid_type');
    const score = (rootTypeMiss ? -100 : 0) + depth * 10 - b.length;
    if (score > bestScore) { best = b; bestScore = score; }
  }
  return best;
}

function flatten(issues: Issue[], prefix: PropertyKey[], input: unknown, out: FieldIssue[]): void {
  for (const issue of issues) {
    const path = [...prefix, ...issue.path];
    const loc = path.map((p) => (typeof p === 'number' ? p : String(p)));
    const here = valueAt(input, path);
    switch (issue.code) {
      case 'invalid_union': {
        const disc = (issue as { note?: string }).note === 'No matching discriminator';
        if (disc) {
          // Zod puts the discriminator itself at the end of the path.
          const options = (issue as { options?: unknown[] }).options;
          const expected = options ? `; expected one of ${options.map((o) => String(o)).join(', ')}` : '';
          out.push(here === undefined
            ? { loc, msg: `Field required${expected}`, type: 'missing' }
            : { loc, msg: `unknown value ${JSON.stringify(here)}${expected}`, type: 'union_tag_invalid' });
          break;
        }
        const branch = bestBranch((issue as { errors: Issue[][] }).errors ?? []);
        if (branch) flatten(branch, path, input, out);
        else out.push({ loc, msg: issue.message, type: 'union' });
        break;
      }
      case 'invalid_type':
        out.push(here === undefined
          ? { loc, msg: 'Field required', type: 'missing' }
          : { loc, msg: `must be ${issue.expected === 'nonoptional' ? 'present' : `${/^[aeiou]/.test(issue.expected) ? 'an' : 'a'} ${issue.expected}`}, got ${describe(here)}`, type: `${issue.expected}_type` });
        break;
      case 'invalid_value':
        out.push({ loc, msg: `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}; got ${JSON.stringify(here)}`, type: 'enum' });
        break;
      case 'unrecognized_keys':
        for (const k of issue.keys) out.push({ loc: [...loc, k], msg: 'unknown field', type: 'extra_forbidden' });
        break;
      case 'too_small':
      case 'too_big':
        out.push({ loc, msg: issue.message.replace(/^Too (small|big): expected \w+ to (have|be) /, 'must be '), type: issue.code === 'too_small' ? 'too_short' : 'too_long' });
        break;
      case 'invalid_format':
        out.push({ loc, msg: issue.message.startsWith('Invalid') ? `must be a valid ${issue.format}` : issue.message, type: `${issue.format}_parsing` });
        break;
      default:
        out.push({ loc, msg: issue.message, type: 'value_error' });
    }
  }
}

/** Zod issues as FastAPI-style `detail` entries whose messages name the field. */
export function toFieldIssues(error: z.ZodError, prefix: (string | number)[], input: unknown): FieldIssue[] {
  const out: FieldIssue[] = [];
  flatten(error.issues, [], input, out);
  return out.map((i) => ({ ...i, loc: [...prefix, ...i.loc] }));
}

export function parseOrThrow<T extends z.ZodType>(schema: T, value: unknown, prefix: (string | number)[]): z.output<T> {
  const r = schema.safeParse(value);
  if (!r.success) throw new ValidationError(toFieldIssues(r.error, prefix, value));
  return r.data;
}
