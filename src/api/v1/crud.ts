import { z } from '../../domain/common.js';
import type { ListParams, Page } from '../../store/listQuery.js';
import type { Db } from '../../store/db.js';
import type { Store } from '../../store/store.js';
import { IdQuery, ListQuery, pageOf, type RouteDef } from '../routes.js';

type Json = Record<string, unknown>;

export interface CrudOps {
  get(db: Db, userId: string, id: string): Promise<Json>;
  list(db: Db, userId: string, q: ListParams): Promise<Page<Json>>;
  create(db: Db, userId: string, body: Json): Promise<Json>;
  update(db: Db, userId: string, id: string, body: Json): Promise<Json>;
  delete(db: Db, userId: string, id: string): Promise<Json>;
}

export interface CrudSpec {
  /** Path segment and tag: "voices". */
  resource: string;
  /** Singular for operation ids: "voice". */
  singular: string;
  create: z.ZodType;
  update: z.ZodType;
  /** Response schemas for the docs: the single (expanded) form and the list item (normalized) form. */
  one: z.ZodType;
  item: z.ZodType;
  pageName: string;
  ops: CrudOps;
}

/** The five operations every /v1 resource has: get, list, create, update, and Fluents' delete. */
export function crudRoutes(store: Store, spec: CrudSpec): RouteDef[] {
  const { resource: r, singular: one, ops } = spec;
  const base = `/v1/${r}`;
  const del = (method: 'delete' | 'post'): RouteDef<{ id: string }> => ({
    method, path: `${base}/delete`, operationId: `delete_${one}${method === 'post' ? '_post' : ''}`,
    summary: `Delete ${one.replace(/_/g, ' ')}`, tag: r, query: IdQuery, response: spec.one, status: method === 'post' ? 201 : 200,
    handler: ({ userId, query }) => store.tx((db) => ops.delete(db, userId, query.id)),
  });
  return [
    {
      method: 'get', path: base, operationId: `get_${one}`, summary: `Get ${one.replace(/_/g, ' ')}`, tag: r,
      query: IdQuery, response: spec.one, status: 200,
      handler: ({ userId, query }) => ops.get(store.db, userId, query.id),
    },
    {
      method: 'get', path: `${base}/list`, operationId: `list_${r}`, summary: `List ${r.replace(/_/g, ' ')}`, tag: r,
      query: ListQuery, response: pageOf(spec.item, spec.pageName), status: 200,
      handler: ({ userId, query }) => ops.list(store.db, userId, query),
    },
    {
      method: 'post', path: `${base}/create`, operationId: `create_${one}`, summary: `Create ${one.replace(/_/g, ' ')}`, tag: r,
      body: spec.create, response: spec.one, status: 201,
      handler: ({ userId, body }) => store.tx((db) => ops.create(db, userId, body as Json)),
    },
    {
      method: 'post', path: `${base}/update`, operationId: `update_${one}`, summary: `Update ${one.replace(/_/g, ' ')}`, tag: r,
      query: IdQuery, body: spec.update, response: spec.one, status: 201,
      handler: ({ userId, query, body }) => store.tx((db) => ops.update(db, userId, query.id, body as Json)),
    },
    del('delete'),
    del('post'),
  ];
}

/** A response schema for the docs: the params shape plus the ids every stored object has. */
export function withIds(schema: z.ZodType, name: string): z.ZodType {
  const ids = { id: z.uuid(), user_id: z.uuid() };
  const s = schema as unknown as { options?: z.ZodObject[]; extend?: (x: object) => z.ZodType };
  if (s.options) {
    const opts = s.options.map((o) => o.extend(ids));
    return z.union(opts as unknown as [z.ZodType, z.ZodType]).openapi(name);
  }
  return (schema as z.ZodObject).extend(ids).openapi(name);
}
