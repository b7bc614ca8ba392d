import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, usingPostgres, type TestServer } from './helpers/server.js';
import { vocodeSpec } from './helpers/vocodeSpec.js';

/**
 * The published OpenAPI document is what SDK generators and users read: it must describe Vocode's
 * operations exactly as Vocode's own spec does (path, method, operationId, query parameters), plus the
 * Fluents additions, and every operation must be behind the bearer key.
 */

/** Vocode operations that arrive with later work; each is checked like the rest once it is documented. */
const DEFERRED: Record<string, string> = {
  'POST /v1/numbers/buy': 'buying a number needs the telephony (carrier) integration',
  'POST /v1/calls/create': 'placing a call needs the telephony integration and the conversation engine',
  'POST /v1/calls/end': 'ending a live call needs the conversation engine',
  'GET /v1/calls/recording': 'recordings come with the conversation engine',
};

/** In Vocode's spec but not part of the documented /v1 API here (served, checked separately). */
const NOT_DOCUMENTED: Record<string, string> = {
  'GET /metrics': 'Prometheus metrics are served at /metrics but are operational, not part of the /v1 API',
};

/** Optional query parameters Switchboard adds to Vocode operations. */
const EXTRA_QUERY: Record<string, string> = { filters: 'Fluents list filtering (JSON object)' };

const RESOURCES: [string, string][] = [
  ['actions', 'action'], ['voices', 'voice'], ['webhooks', 'webhook'], ['vector_databases', 'vector_database'],
  ['prompt_templates', 'prompt_template'], ['prompts', 'prompt'], ['agents', 'agent'], ['account_connections', 'account_connection'],
];

const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace'];

type Op = { operationId: string; parameters?: { name: string; in: string; required?: boolean }[]; requestBody?: { required?: boolean }; security?: Record<string, string[]>[] };

const vocodeOps = Object.entries(vocodeSpec.paths).flatMap(([path, methods]) =>
  Object.entries(methods).filter(([m]) => METHODS.includes(m)).map(([method, op]) => ({ key: `${method.toUpperCase()} ${path}`, path, method, op: op as unknown as Op })));

let s: TestServer;
let doc: any;
let docOps: { key: string; path: string; method: string; op: Op }[];

beforeAll(async () => {
  s = await startTestServer();
  const r = await fetch(`${s.url}/openapi.json`);
  expect(r.status).toBe(200);
  expect(r.headers.get('content-type')).toMatch(/application\/json/);
  doc = await r.json();
  docOps = Object.entries(doc.paths as Record<string, Record<string, Op>>).flatMap(([path, methods]) =>
    Object.entries(methods).filter(([m]) => METHODS.includes(m)).map(([method, op]) => ({ key: `${method.toUpperCase()} ${path}`, path, method, op })));
});
afterAll(async () => { await s?.close(); });

const docOp = (method: string, path: string): Op | undefined => doc.paths?.[path]?.[method.toLowerCase()];
const queryParams = (op: Op) => (op.parameters ?? []).filter((p) => p.in === 'query');

describe('the document', () => {
  it('is OpenAPI 3.1.x with a title and version', () => {
    expect(doc.openapi).toMatch(/^3\.1\.\d+$/);
    expect(doc.info.title).toEqual(expect.any(String));
    expect(doc.info.version).toEqual(expect.any(String));
  });

  it('is served by a server on the database under test', () => {
    expect(s.dbKind).toBe(usingPostgres() ? 'postgres' : 'pglite');
  });

  it('has unique operationIds and no dangling $refs', () => {
    const ids = docOps.map((o) => o.op.operationId);
    expect(ids.every((id) => typeof id === 'string' && id.length > 0)).toBe(true);
    expect(ids.filter((id, i) => ids.indexOf(id) !== i)).toEqual([]);
    const refs = new Set<string>();
    const walk = (v: unknown) => {
      if (Array.isArray(v)) v.forEach(walk);
      else if (v && typeof v === 'object') {
        for (const [k, x] of Object.entries(v)) (k === '$ref' && typeof x === 'string' ? refs.add(x) : walk(x));
      }
    };
    walk(doc);
    const dangling = [...refs].filter((r) => {
      const m = /^#\/components\/schemas\/(.+)$/.exec(r);
      return !m || !doc.components?.schemas?.[decodeURIComponent(m[1])];
    });
    expect(dangling).toEqual([]);
  });

  it('names the component schemas SDKs use', () => {
    const names = Object.keys(doc.components?.schemas ?? {});
    for (const n of ['Agent', 'AgentParams', 'AgentUpdateParams', 'NormalizedAgent', 'PhoneNumber', 'Call', 'NormalizedCall', 'Usage']) {
      expect(names, n).toContain(n);
    }
  });

  it('documents only /v1 operations (no /metrics, /healthz, /docs)', () => {
    expect(Object.keys(doc.paths).filter((p) => !p.startsWith('/v1/'))).toEqual([]);
  });
});

describe('every Vocode operation, as Vocode documents it', () => {
  it.for(vocodeOps.map((o) => [o.key, o] as const))('%s', ([key, { path, method, op: vop }], ctx) => {
    if (NOT_DOCUMENTED[key]) {
      expect(docOp(method, path), `${key} should not be documented: ${NOT_DOCUMENTED[key]}`).toBeUndefined();
      return;
    }
    const op = docOp(method, path);
    if (!op && DEFERRED[key]) ctx.skip(`not yet: ${DEFERRED[key]}`);
    expect(op, `${key} (${vop.operationId}) is missing from /openapi.json`).toBeDefined();
    expect(op!.operationId).toBe(vop.operationId);

    const ours = new Map(queryParams(op!).map((p) => [p.name, !!p.required]));
    const theirs = new Map(queryParams(vop).map((p) => [p.name, !!p.required]));
    for (const [name, required] of theirs) {
      expect(ours.has(name), `${key}: query parameter ${name} missing`).toBe(true);
      expect(ours.get(name), `${key}: query parameter ${name} required-ness`).toBe(required);
    }
    for (const [name, required] of ours) {
      if (theirs.has(name)) continue;
      expect(EXTRA_QUERY[name], `${key}: query parameter ${name} is not in Vocode's spec`).toBeDefined();
      expect(required, `${key}: added query parameter ${name} must be optional`).toBe(false);
    }

    expect(!!op!.requestBody, `${key}: has a request body`).toBe(!!vop.requestBody);
    if (vop.requestBody) expect(!!op!.requestBody!.required, `${key}: request body required-ness`).toBe(!!vop.requestBody.required);
  });

  it('lists each deferred operation with a reason, and each is a real Vocode operation', () => {
    const keys = new Set(vocodeOps.map((o) => o.key));
    for (const [key, reason] of Object.entries({ ...DEFERRED, ...NOT_DOCUMENTED })) {
      expect(keys.has(key), key).toBe(true);
      expect(reason.length).toBeGreaterThan(10);
    }
  });
});

describe('Fluents additions', () => {
  it.each(RESOURCES)('%s: delete as DELETE and POST, and the full CRUD set', (resource, singular) => {
    const base = `/v1/${resource}`;
    const expected: [string, string, string, string[]][] = [
      ['get', base, `get_${singular}`, ['id']],
      ['get', `${base}/list`, `list_${resource}`, []],
      ['post', `${base}/create`, `create_${singular}`, []],
      ['post', `${base}/update`, `update_${singular}`, ['id']],
      ['delete', `${base}/delete`, `delete_${singular}`, ['id']],
      ['post', `${base}/delete`, `delete_${singular}_post`, ['id']],
    ];
    for (const [method, path, operationId, required] of expected) {
      const op = docOp(method, path);
      expect(op, `${method.toUpperCase()} ${path}`).toBeDefined();
      expect(op!.operationId).toBe(operationId);
      expect(queryParams(op!).filter((p) => p.required).map((p) => p.name)).toEqual(required);
    }
  });

  it('numbers: detach and delete take phone_number or id', () => {
    for (const [method, path, operationId] of [
      ['post', '/v1/numbers/detach', 'detach_number'],
      ['delete', '/v1/numbers/delete', 'delete_number'],
      ['post', '/v1/numbers/delete', 'delete_number_post'],
    ]) {
      const op = docOp(method, path);
      expect(op, `${method.toUpperCase()} ${path}`).toBeDefined();
      expect(op!.operationId).toBe(operationId);
      expect(queryParams(op!).map((p) => [p.name, !!p.required]).sort()).toEqual([['id', false], ['phone_number', false]]);
    }
  });
});

describe('authentication', () => {
  it('declares the HTTPBearer scheme and requires it on every documented operation', () => {
    expect(doc.components.securitySchemes.HTTPBearer).toEqual({ type: 'http', scheme: 'bearer' });
    const open = docOps.filter((o) => !(o.op.security ?? doc.security ?? []).some((req: Record<string, string[]>) => 'HTTPBearer' in req));
    expect(open.map((o) => o.key)).toEqual([]);
    expect(docOps.length).toBeGreaterThan(50);
  });

  it('every documented operation is served, and refuses a request without a key with 401', async () => {
    const problems: string[] = [];
    for (const { key, path, method } of docOps) {
      const anon = await fetch(s.url + path, { method: method.toUpperCase() });
      const anonBody = await anon.json().catch(() => null);
      if (anon.status !== 401 || anonBody?.error !== 'Unauthorized' || anonBody?.statusCode !== 401) {
        problems.push(`${key} without a key: ${anon.status} ${JSON.stringify(anonBody)}`);
      }
      const authed = await fetch(s.url + path, { method: method.toUpperCase(), headers: { authorization: `Bearer ${s.key}` } });
      const authedBody = await authed.json().catch(() => null);
      if (authed.status === 401 || authed.status >= 500 || (authed.status === 404 && /^no route/.test(authedBody?.message ?? ''))) {
        problems.push(`${key} with a key: ${authed.status} ${JSON.stringify(authedBody)}`);
      }
    }
    expect(problems).toEqual([]);
  });
});

describe('outside the document', () => {
  it('GET /metrics answers 200 with Prometheus text, without a key', async () => {
    const r = await fetch(`${s.url}/metrics`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await r.text();
    expect(text).toContain('# HELP');
    expect(text).toContain('switchboard_http_request_duration_seconds');
  });

  it('GET /docs serves the Swagger UI page for /openapi.json', async () => {
    const r = await fetch(`${s.url}/docs`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await r.text();
    expect(html).toMatch(/<html/i);
    expect(html).toMatch(/SwaggerUI/);
    expect(html).toContain('/openapi.json');
  });
});
