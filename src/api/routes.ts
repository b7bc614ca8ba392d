import type { OpenAPIHono } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { z } from '../domain/common.js';
import { AppError, ValidationError } from '../domain/errors.js';
import { assertStorableJson } from '../domain/storableJson.js';
import { parseOrThrow } from '../domain/validation.js';
import type { AuthEnv } from './auth.js';
import { errorBody } from './errors.js';

type Json = Record<string, unknown>;

export interface RouteCtx<Q, B> { userId: string; query: Q; body: B; c: Context<AuthEnv> }

export interface RouteDef<Q = any, B = any> {
  method: 'get' | 'post' | 'delete';
  path: string;
  operationId: string;
  summary: string;
  tag: string;
  query?: z.ZodType<Q>;
  body?: z.ZodType<B>;
  /** When false, an empty body is read as `{}` (Vocode's optional bodies). */
  bodyRequired?: boolean;
  response?: z.ZodType;
  /** Vocode answers 200; Fluents answers 201 for POSTs that create or change. */
  status: 200 | 201;
  /** Error statuses this route answers besides the common 400, 401, 404 and 422 (documented in the spec). */
  errors?: number[];
  handler(ctx: RouteCtx<Q, B>): Promise<unknown>;
}

const ErrorSchema = z.object({
  detail: z.union([z.string(), z.array(z.object({ loc: z.array(z.union([z.string(), z.number()])), msg: z.string(), type: z.string() }))]),
  message: z.string(),
  error: z.string(),
  statusCode: z.number(),
}).openapi('ErrorResponse');

/** Reads a JSON body whatever the Content-Type says: clients that forget the header still work. */
async function readBody(c: Context, required: boolean): Promise<unknown> {
  const text = await c.req.text();
  if (text.trim() === '') {
    if (required) throw ValidationError.one(['body'], 'Field required: send a JSON object', 'missing');
    return {};
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    // V8's message quotes the text around the fault, which may be a secret: give the position only.
    const pos = /position (\d+)/.exec((e as Error).message)?.[1];
    throw new AppError(400, `malformed JSON in request body${pos ? ` at position ${pos}` : ''}`);
  }
  assertStorableJson(parsed, ['body']);
  return parsed;
}

export function mount(app: OpenAPIHono<AuthEnv>, defs: RouteDef[]): void {
  for (const d of defs) {
    app.on(d.method.toUpperCase(), d.path, async (c) => {
      const query = d.query ? parseOrThrow(d.query, c.req.query(), ['query']) : {};
      let body: unknown;
      if (d.body) {
        const raw = await readBody(c, d.bodyRequired !== false);
        if (d.bodyRequired !== false && (raw === null || typeof raw !== 'object' || Array.isArray(raw))) {
          throw ValidationError.one(['body'], `must be a JSON object, got ${Array.isArray(raw) ? 'an array' : raw === null ? 'null' : `a ${typeof raw}`}`, 'dict_type');
        }
        body = parseOrThrow(d.body, raw ?? {}, ['body']);
      }
      const result = await d.handler({ userId: c.get('userId'), query, body, c });
      return c.json(result as Json, d.status);
    });
    const errors = Object.fromEntries([400, 401, 404, 422, ...(d.errors ?? [])].map((s) => [String(s), {
      description: errorBody(s, '').error, content: { 'application/json': { schema: ErrorSchema } },
    }]));
    app.openAPIRegistry.registerPath({
      method: d.method, path: d.path, operationId: d.operationId, summary: d.summary, tags: [d.tag],
      security: [{ HTTPBearer: [] }],
      request: {
        ...(d.query ? { query: d.query as z.ZodObject } : {}),
        ...(d.body ? { body: { required: d.bodyRequired !== false, content: { 'application/json': { schema: d.body } } } } : {}),
      },
      responses: {
        [String(d.status)]: {
          description: 'Successful Response',
          ...(d.response ? { content: { 'application/json': { schema: d.response } } } : {}),
        },
        ...errors,
      },
    });
  }
}

// ---- shared query shapes ----

const boolString = z.union([z.boolean(), z.enum(['true', 'false', '1', '0'])]).transform((v) => v === true || v === 'true' || v === '1');

export const ListQuery = z.object({
  page: z.coerce.number().int().min(1).max(1_000_000).default(1),
  size: z.coerce.number().int().min(1).max(100).default(10),
  sort_column: z.string().max(100).optional(),
  sort_desc: boolString.optional(),
  filters: z.string().max(10_000).optional(),
});

export const IdQuery = z.object({ id: z.uuid({ message: 'must be a valid UUID' }) });

export function pageOf(item: z.ZodType, name: string) {
  return z.object({
    items: z.array(item), page: z.number().int(), size: z.number().int(), has_more: z.boolean(),
    total: z.number().int(), total_is_estimated: z.boolean(),
  }).openapi(name);
}
