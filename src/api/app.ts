import { OpenAPIHono } from '@hono/zod-openapi';
import { bodyLimit } from 'hono/body-limit';
import type { Logger } from '../log.js';
import type { Store } from '../store/store.js';
import { ping } from '../store/db.js';
import { apiKeyAuth, type AuthEnv } from './auth.js';
import { onError, sendError } from './errors.js';
import { mountDocs } from './docs.js';
import { createMetrics } from './metrics.js';
import { mount } from './routes.js';
import { accountConnectionRoutes } from './v1/accountConnections.js';
import { agentRoutes } from './v1/agents.js';
import { callRoutes } from './v1/calls.js';
import { numberRoutes } from './v1/numbers.js';
import { promptRoutes } from './v1/prompts.js';
import { flatResourceRoutes } from './v1/resources.js';
import { usageRoutes } from './v1/usage.js';
import { mountTelephony } from './telephony.js';
import type { TelephonyContext } from '../telephony/context.js';

export interface AppOptions {
  store: Store;
  log: Logger;
  maxBodyBytes: number;
  apiKeyCacheSeconds: number;
  version: string;
  telephony: TelephonyContext;
  /** The registry and HTTP middleware behind /metrics (the server shares it with the call layer). */
  metrics?: ReturnType<typeof createMetrics>;
}

export function createApp(o: AppOptions): OpenAPIHono<AuthEnv> {
  const app = new OpenAPIHono<AuthEnv>();
  const metrics = o.metrics ?? createMetrics();
  app.onError(onError(o.log));
  app.notFound((c) => sendError(c, 404, `no route for ${c.req.method} ${c.req.path}`));

  app.use('*', metrics.middleware);
  if (o.log.isLevelEnabled('debug')) {
    app.use('*', async (c, next) => {
      const start = performance.now();
      await next();
      // Path only: query strings and bodies stay out of the log.
      o.log.debug({ method: c.req.method, path: c.req.path, status: c.res.status, ms: Math.round(performance.now() - start) }, 'request');
    });
  }
  app.get('/healthz', async (c) => {
    try {
      await ping(o.store.db);
      return c.json({ status: 'ok', database: o.store.database.kind, version: o.version });
    } catch (err) {
      o.log.warn({ err }, 'health check failed');
      return c.json({ status: 'unavailable', database: o.store.database.kind }, 503);
    }
  });
  app.get('/metrics', async (c) => c.text(await metrics.registry.metrics(), 200, { 'content-type': metrics.registry.contentType }));

  app.use('/v1/*', bodyLimit({ maxSize: o.maxBodyBytes, onError: (c) => {
    // The unread rest of the body is still on the socket: this connection cannot carry another request.
    c.header('Connection', 'close');
    return sendError(c, 413, `request body is larger than ${o.maxBodyBytes} bytes`);
  } }));
  app.use('/v1/*', apiKeyAuth(o.store, o.apiKeyCacheSeconds));
  app.use('/telephony/*', bodyLimit({ maxSize: 256 * 1024, onError: (c) => c.text('request body too large', 413) }));
  mountTelephony(app, o.telephony);

  mount(app, [
    ...accountConnectionRoutes(o.store, o.telephony),
    ...flatResourceRoutes(o.store),
    ...promptRoutes(o.store),
    ...agentRoutes(o.store),
    ...numberRoutes(o.store, o.telephony),
    ...callRoutes(o.store, o.telephony),
    ...usageRoutes(o.store),
  ]);

  app.openAPIRegistry.registerComponent('securitySchemes', 'HTTPBearer', { type: 'http', scheme: 'bearer' });
  app.doc31('/openapi.json', {
    openapi: '3.1.0',
    info: {
      title: 'Switchboard API', version: o.version,
      description: 'Vocode/Fluents-compatible hosted API for AI voice agents. Authenticate with `Authorization: Bearer <API key>`.',
    },
  });
  mountDocs(app);
  return app;
}
