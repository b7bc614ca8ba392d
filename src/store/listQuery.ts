import { asc, desc, sql, type SQL, type AnyColumn } from 'drizzle-orm';
import { isUuid } from '../domain/common.js';
import { ValidationError } from '../domain/errors.js';
import { assertStorableJson } from '../domain/storableJson.js';

/** How a field the API exposes maps onto SQL, and what values a filter on it accepts. */
export type FieldKind = 'text' | 'bool' | 'uuid' | 'time' | 'json';
export interface FieldDef { expr: SQL | AnyColumn; kind: FieldKind }
export type FieldMap = Record<string, FieldDef>;

export const col = (expr: AnyColumn, kind: FieldKind): FieldDef => ({ expr, kind });
export const jsonField = (data: AnyColumn, name: string): FieldDef => ({ expr: sql`(${data} -> ${name})`, kind: 'json' });

export interface ListParams {
  page: number;
  size: number;
  sort_column?: string | null;
  sort_desc?: boolean | null;
  filters?: string | null;
}

const OPERATORS = ['eq', 'ne', 'gt', 'gte', 'lt', 'lte', 'in', 'nin', 'contains', 'is_null'] as const;
type Op = (typeof OPERATORS)[number];

function bad(loc: string[], msg: string): never {
  throw ValidationError.one(['query', ...loc], msg);
}

/** Converts one filter value to what the field's column takes, or rejects it with a 422. */
function coerce(field: string, def: FieldDef, v: unknown): unknown {
  if (v === null) return null;
  switch (def.kind) {
    case 'text':
      if (typeof v !== 'string') bad(['filters', field], 'must be a string');
      return v;
    case 'bool':
      if (typeof v !== 'boolean') bad(['filters', field], 'must be true or false');
      return v;
    case 'uuid':
      if (!isUuid(v)) bad(['filters', field], 'must be a valid UUID');
      return v;
    case 'time': {
      // Strings must look like ISO 8601 dates: Date() alone reads "1" as the year 2001.
      const d = typeof v === 'number' ? new Date(v * 1000)
        : typeof v === 'string' && /^\d{4}-\d{2}-\d{2}([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(v) ? new Date(v) : null;
      const year = d?.getUTCFullYear() ?? NaN;
      if (!d || Number.isNaN(d.getTime()) || year < 1 || year > 9999) {
        bad(['filters', field], 'must be an ISO 8601 time or epoch seconds between years 1 and 9999');
      }
      return d.toISOString();
    }
    case 'json':
      return JSON.stringify(v);
  }
}

function operand(def: FieldDef, value: unknown): SQL {
  if (def.kind === 'json') return sql`${value}::jsonb`;
  if (def.kind === 'time') return sql`${value}::timestamptz`;
  if (def.kind === 'uuid') return sql`${value}::uuid`;
  return sql`${value}`;
}

function condition(field: string, def: FieldDef, op: Op, raw: unknown): SQL {
  const e = def.expr;
  if (op === 'is_null') {
    if (typeof raw !== 'boolean') bad(['filters', field, op], 'must be true or false');
    // Parenthesised: drizzle's and() does not wrap its parts, and a JSON null counts as null.
    if (def.kind === 'json') return raw ? sql`(${e} IS NULL OR ${e} = 'null'::jsonb)` : sql`(${e} IS NOT NULL AND ${e} <> 'null'::jsonb)`;
    return raw ? sql`(${e} IS NULL)` : sql`(${e} IS NOT NULL)`;
  }
  if (op === 'in' || op === 'nin') {
    if (!Array.isArray(raw) || raw.length === 0 || raw.length > 100) bad(['filters', field, op], 'must be a non-empty array of at most 100 values');
    const list = sql.join(raw.map((x) => operand(def, coerce(field, def, x))), sql`, `);
    return op === 'in' ? sql`${e} IN (${list})` : sql`(${e} IS NULL OR ${e} NOT IN (${list}))`;
  }
  if (op === 'contains') {
    if (typeof raw !== 'string') bad(['filters', field, op], 'must be a string');
    const text = def.kind === 'json' ? sql`(${e} #>> '{}')` : sql`${e}::text`;
    return sql`${text} ILIKE ${'%' + raw.replace(/[\\%_]/g, (m) => '\\' + m) + '%'}`;
  }
  const v = coerce(field, def, raw);
  if (v === null) {
    if (op === 'eq') return condition(field, def, 'is_null', true);
    if (op === 'ne') return condition(field, def, 'is_null', false);
    bad(['filters', field, op], 'cannot compare with null');
  }
  const rhs = operand(def, v);
  switch (op) {
    case 'eq': return sql`${e} = ${rhs}`;
    case 'ne': return sql`(${e} IS NULL OR ${e} <> ${rhs})`;
    case 'gt': return sql`${e} > ${rhs}`;
    case 'gte': return sql`${e} >= ${rhs}`;
    case 'lt': return sql`${e} < ${rhs}`;
    default: return sql`${e} <= ${rhs}`;
  }
}

/**
 * `filters` is a JSON object: `{"field": value}` (equality; an array means "any of"), or
 * `{"field": {"gte": 1, "lt": 5}}` with operators eq, ne, gt, gte, lt, lte, in, nin, contains, is_null.
 */
export function parseFilters(filters: string | null | undefined, fields: FieldMap): SQL[] {
  if (filters == null || filters.trim() === '') return [];
  let parsed: unknown;
  try { parsed = JSON.parse(filters); } catch { bad(['filters'], 'must be a JSON object, e.g. {"status":"ended"}'); }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) bad(['filters'], 'must be a JSON object, e.g. {"status":"ended"}');
  assertStorableJson(parsed, ['query', 'filters']);
  const out: SQL[] = [];
  for (const [field, spec] of Object.entries(parsed as Record<string, unknown>)) {
    const def = Object.hasOwn(fields, field) ? fields[field] : undefined;
    if (!def) bad(['filters', field], `unknown field; filterable fields: ${Object.keys(fields).join(', ')}`);
    if (Array.isArray(spec)) out.push(condition(field, def, 'in', spec));
    else if (spec && typeof spec === 'object') {
      const entries = Object.entries(spec);
      if (entries.length === 0) bad(['filters', field], 'operator object is empty');
      for (const [op, v] of entries) {
        if (!(OPERATORS as readonly string[]).includes(op)) bad(['filters', field, op], `unknown operator; use one of ${OPERATORS.join(', ')}`);
        out.push(condition(field, def, op as Op, v));
      }
    } else out.push(condition(field, def, 'eq', spec));
  }
  return out;
}

export function orderBy(params: ListParams, fields: FieldMap, fallback: FieldDef, id: AnyColumn): SQL[] {
  let def = fallback;
  if (params.sort_column) {
    const d = Object.hasOwn(fields, params.sort_column) ? fields[params.sort_column] : undefined;
    if (!d) bad(['sort_column'], `unknown column; sortable columns: ${Object.keys(fields).join(', ')}`);
    def = d;
  }
  const dir = params.sort_desc ? desc : asc;
  const nulls = params.sort_desc ? sql`NULLS LAST` : sql`NULLS FIRST`;
  return [sql`${def.expr} ${params.sort_desc ? sql`DESC` : sql`ASC`} ${nulls}`, dir(id)];
}


export interface Page<T> {
  items: T[];
  page: number;
  size: number;
  has_more: boolean;
  total: number;
  total_is_estimated: boolean;
}
