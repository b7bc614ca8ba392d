import { and, count, eq, getTableColumns, getTableName, inArray, sql, type AnyColumn, type SQL } from 'drizzle-orm';
import type { PgTable } from 'drizzle-orm/pg-core';
import type { z } from 'zod';
import { ConflictError, NotFoundError, ValidationError } from '../domain/errors.js';
import { parseOrThrow } from '../domain/validation.js';
import { perHandle, type Db } from './db.js';
import { col, jsonField, orderBy, parseFilters, type FieldMap, type ListParams, type Page } from './listQuery.js';
import * as s from './schema.js';
import { getPath, isMasked, keepMaskedSecrets, maskAll, openAll, sealAll } from './secrets.js';
import type { SecretBox } from './secretBox.js';

type Json = Record<string, unknown>;
export type Exec = Db;
export type ResourceTable =
  | typeof s.promptTemplates | typeof s.actions | typeof s.voices | typeof s.webhooks
  | typeof s.vectorDatabases | typeof s.accountConnections;
export type ResourceRow = typeof s.voices.$inferSelect;

/** What distinguishes one configuration resource from another. */
export interface KindSpec {
  /** Singular name used in messages: "voice". */
  noun: string;
  table: ResourceTable;
  typed: boolean;
  /** Fields kept in `data` that lists may sort and filter on. */
  dataFields: string[];
  createSchema: z.ZodType;
  defaults(type: string | null): Json;
  secrets(type: string | null): string[][];
  /** Fills generated values (e.g. an external action's signature secret) after defaults. */
  complete?(type: string | null, full: Json): Json;
  /** Secrets sealed at rest but shown in full: the user needs them (an external action's signing key). */
  visibleSecrets?: string[][];
  /** Object fields an update merges key by key instead of replacing (credentials, config). */
  mergeKeys?: string[];
}

export function pgCode(err: unknown): string | undefined {
  let e: unknown = err;
  for (let i = 0; i < 4 && e; i++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/** PostgreSQL reports a RESTRICT reference as 23503 (foreign_key_violation); PGlite as 23001 (restrict_violation). */
export function isForeignKeyViolation(err: unknown): boolean {
  const code = pgCode(err);
  return code === '23503' || code === '23001';
}

const isObject = (v: unknown): v is Json => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Splits a full object into the row's columns and its `data`. */
function toRow(full: Json): { type: string | null; label: string | null; description: string | null; data: Json } {
  const { type, label, description, ...data } = full;
  return { type: (type as string) ?? null, label: (label as string) ?? null, description: (description as string) ?? null, data };
}

function fromRow(row: ResourceRow): Json {
  return { ...(row.type ? { type: row.type } : {}), ...row.data, label: row.label, description: row.description };
}

export class ResourceRepo {
  readonly fields: FieldMap;

  constructor(readonly spec: KindSpec, private readonly box: SecretBox) {
    const t = spec.table;
    this.fields = {
      id: col(t.id, 'uuid'),
      created_at: col(t.createdAt, 'time'),
      updated_at: col(t.updatedAt, 'time'),
      label: col(t.label, 'text'),
      description: col(t.description, 'text'),
      ...(spec.typed ? { type: col(t.type, 'text') } : {}),
      ...Object.fromEntries(spec.dataFields.map((f) => [f, jsonField(t.data, f)])),
    };
  }

  private sealedPaths(type: string | null): string[][] {
    return [...this.spec.secrets(type), ...(this.spec.visibleSecrets ?? [])];
  }

  /** The public form: ids, fields, secrets masked. */
  serialize(row: ResourceRow): Json {
    const shown = openAll(this.box, fromRow(row), this.spec.visibleSecrets ?? []);
    return { id: row.id, user_id: row.userId, ...maskAll(this.box, shown, this.spec.secrets(row.type)) };
  }

  /** The full form with secrets in clear, for the engine and for merges; never sent to a client. */
  reveal(row: ResourceRow): Json {
    return { id: row.id, user_id: row.userId, ...openAll(this.box, fromRow(row), this.sealedPaths(row.type)) };
  }

  /** With `lock`, the row stays locked until the transaction ends, so concurrent updates queue up. */
  async find(db: Exec, userId: string, id: string, lock = false): Promise<ResourceRow | undefined> {
    const t = this.spec.table;
    const q = db.select().from(t).where(and(eq(t.id, id), eq(t.userId, userId))).limit(1);
    const rows = lock ? await q.for('update') : await q;
    return rows[0] as ResourceRow | undefined;
  }

  async get(db: Exec, userId: string, id: string, lock = false): Promise<ResourceRow> {
    const row = await this.find(db, userId, id, lock);
    if (!row) throw new NotFoundError(this.spec.noun, id);
    return row;
  }

  /** Every id must name one of the user's objects; the first that does not is a 404. */
  async assertOwned(db: Exec, userId: string, ids: string[]): Promise<ResourceRow[]> {
    if (ids.length === 0) return [];
    const t = this.spec.table;
    const rows = (await db.select().from(t).where(and(eq(t.userId, userId), inArray(t.id, ids)))) as ResourceRow[];
    const missing = ids.find((id) => !rows.some((r) => r.id === id));
    if (missing) throw new NotFoundError(this.spec.noun, missing);
    return rows;
  }

  private complete(full: Json): Json {
    const type = (full.type as string) ?? null;
    const withDefaults = { ...this.spec.defaults(type), ...full };
    return this.spec.complete ? this.spec.complete(type, withDefaults) : withDefaults;
  }

  /** A masked value in a secret field is a copy of a response, not a secret: storing it would lose the real one. */
  private refuseMasked(full: Json, type: string | null, loc: (string | number)[]): void {
    for (const path of this.spec.secrets(type)) {
      const v = getPath(full, path);
      if (typeof v === 'string' && isMasked(v)) {
        throw ValidationError.one([...loc, ...path], 'is a masked value; send the secret itself');
      }
    }
  }

  async insert(db: Exec, userId: string, params: Json, loc: (string | number)[] = ['body']): Promise<ResourceRow> {
    const full = this.complete(params);
    const type = (full.type as string) ?? null;
    this.refuseMasked(full, type, loc);
    const sealed = sealAll(this.box, full, this.sealedPaths(type));
    const [row] = await db.insert(this.spec.table).values({ userId, ...toRow(sealed) }).returning();
    return row as ResourceRow;
  }

  /**
   * Partial update: absent fields stay, `null` clears, a masked secret sent back keeps the stored one.
   * The merged result must still be a valid object of its type.
   */
  async update(db: Exec, userId: string, id: string, patch: Json, loc: (string | number)[] = ['body']): Promise<ResourceRow> {
    const row = await this.get(db, userId, id, true);
    const current = openAll(this.box, fromRow(row), this.sealedPaths(row.type));
    if (this.spec.typed && patch.type !== undefined && patch.type !== row.type) {
      throw ValidationError.one([...loc, 'type'], `cannot change the type of a ${this.spec.noun} from ${row.type} to ${String(patch.type)}; create a new one instead`);
    }
    const defined = Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined));
    for (const k of this.spec.mergeKeys ?? []) {
      const [inc, old] = [defined[k], current[k]];
      if (isObject(inc) && isObject(old)) defined[k] = { ...old, ...inc };
    }
    const merged = keepMaskedSecrets({ ...current, ...defined }, current, this.spec.secrets(row.type));
    this.refuseMasked(merged, row.type, loc);
    const valid = parseOrThrow(this.spec.createSchema, merged, loc) as Json;
    // Fields the schema does not know (defaults such as steering_pool) are kept from the merge.
    const full = this.complete({ ...merged, ...valid });
    const sealed = sealAll(this.box, full, this.sealedPaths(row.type));
    const t = this.spec.table;
    const [updated] = await db.update(t).set({ ...toRow(sealed), updatedAt: new Date() })
      .where(and(eq(t.id, id), eq(t.userId, userId))).returning();
    return updated as ResourceRow;
  }

  /** Replaces stored fields without re-validation (internal changes such as the steering pool). */
  async patchData(db: Exec, userId: string, id: string, data: Json): Promise<ResourceRow> {
    const t = this.spec.table;
    const [updated] = await db.update(t).set({ data, updatedAt: new Date() })
      .where(and(eq(t.id, id), eq(t.userId, userId))).returning();
    if (!updated) throw new NotFoundError(this.spec.noun, id);
    return updated as ResourceRow;
  }

  async delete(db: Exec, userId: string, id: string): Promise<ResourceRow> {
    const row = await this.get(db, userId, id);
    const t = this.spec.table;
    try {
      await db.delete(t).where(and(eq(t.id, id), eq(t.userId, userId)));
    } catch (err) {
      if (isForeignKeyViolation(err)) throw new ConflictError(`${this.spec.noun} ${id} is still used by another object (an agent, prompt or number); detach it first`);
      throw err;
    }
    return row;
  }

  async list(db: Exec, userId: string, params: ListParams): Promise<Page<Json>> {
    const page = await listPage(db, this.spec.table, this.spec.table.userId, userId, params, this.fields,
      this.fields.created_at, this.spec.table.id);
    return { ...page, items: (page.items as ResourceRow[]).map((r) => this.serialize(r)) };
  }
}

/**
 * One page of a user's rows plus the exact total, with sort and filters applied. The total rides along
 * as a window count, so a page costs one query; only a page past the end needs a separate count.
 */
export async function listPage(
  db: Exec, table: PgTable, userCol: AnyColumn, userId: string,
  params: ListParams, fields: FieldMap, fallback: FieldMap[string], idCol: AnyColumn,
  extra: Record<string, SQL> = {},
): Promise<Page<unknown>> {
  const offset = (params.page - 1) * params.size;
  const filters = parseFilters(params.filters, fields);
  const order = orderBy(params, fields, fallback, idCol);
  const select = { ...getTableColumns(table), ...extra, __total: sql<number>`count(*) over ()` };
  let rows: Record<string, unknown>[];
  if (filters.length === 0) {
    // Unfiltered pages are the common case: one prepared statement per table and sort order.
    const key = `list_${getTableName(table)}_${params.sort_column ?? ''}_${params.sort_desc ? 'd' : 'a'}`;
    const byKey = preparedLists(db);
    let q = byKey.get(key);
    if (!q) {
      q = db.select(select).from(table).where(eq(userCol, sql.placeholder('userId'))).orderBy(...order)
        .limit(sql.placeholder('limit')).offset(sql.placeholder('offset')).prepare(key);
      byKey.set(key, q);
    }
    rows = await q.execute({ userId, limit: params.size, offset });
  } else {
    rows = await db.select(select).from(table).where(and(eq(userCol, userId), ...filters))
      .orderBy(...order).limit(params.size).offset(offset);
  }
  let total: number;
  if (rows.length > 0) total = Number(rows[0].__total);
  else if (offset === 0) total = 0;
  else total = (await db.select({ n: count() }).from(table).where(and(eq(userCol, userId), ...filters)))[0].n;
  const items = rows.map(({ __total, ...r }) => r);
  return { items, page: params.page, size: params.size, has_more: offset + items.length < total, total, total_is_estimated: false };
}

type PreparedList = { execute(p: Record<string, unknown>): Promise<Record<string, unknown>[]> };
const preparedLists = perHandle(() => new Map<string, PreparedList>());
