import { readFileSync } from 'node:fs';
import { serve, type ServerType } from '@hono/node-server';
import { sql } from 'drizzle-orm';
import { createApp } from './api/app.js';
import { urlHost, type Config } from './config.js';
import { createLogger, type Logger } from './log.js';
import { openDatabase } from './store/db.js';
import { maskSecret, resolveSecretKey, SecretBox } from './store/secretBox.js';
import { Store } from './store/store.js';
import { LiveCalls } from './calls/liveCalls.js';
import { CallMetrics } from './calls/metrics.js';
import { CallBus } from './calls/bus.js';
import { createMetrics } from './api/metrics.js';
import { TelephonyContext } from './telephony/context.js';
import { MediaServer } from './telephony/mediaServer.js';
import { preloadSdkAdapters } from './providers/index.js';

export const VERSION: string = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version;

export async function openStore(config: Config, log: Logger = createLogger(config.LOG_LEVEL)): Promise<Store> {
  const embedded = !config.DATABASE_URL;
  const key = resolveSecretKey({ secretKey: config.SWITCHBOARD_SECRET_KEY, dataDir: config.DATA_DIR, embedded });
  const database = await openDatabase({
    url: config.DATABASE_URL, dataDir: config.DATA_DIR, poolSize: config.DATABASE_POOL_SIZE, log,
    onIdleClientError: (err) => log.warn({ err }, 'an idle database connection dropped; the pool replaces it'),
  });
  return new Store(database, new SecretBox(key));
}

/**
 * First start with no API key at all: create a user and a key (the configured bootstrap key if given)
 * and print it once. Returns the key when one was generated here.
 */
export async function ensureBootstrapKey(store: Store, config: Config, out: (line: string) => void): Promise<string | null> {
  return store.tx(async (db) => {
    // Nodes starting together on one database: one of them creates the first key, the others see it.
    await db.execute(sql`SELECT pg_advisory_xact_lock(727275)`);
    if ((await store.users.countKeys(db)) > 0) {
      if (config.SWITCHBOARD_BOOTSTRAP_API_KEY) out('SWITCHBOARD_BOOTSTRAP_API_KEY is ignored: API keys already exist (use `switchboard keys create`).');
      return null;
    }
    const userId = await store.users.createUser(db, 'admin');
    const { key } = await store.users.createKey(db, userId, 'bootstrap', config.SWITCHBOARD_BOOTSTRAP_API_KEY);
    if (config.SWITCHBOARD_BOOTSTRAP_API_KEY) {
      out(`Registered SWITCHBOARD_BOOTSTRAP_API_KEY (${maskSecret(key)}) as the first user's API key.`);
    } else {
      out([
        '',
        '  Your Switchboard API key (shown once; store it now):',
        '',
        `      ${key}`,
        '',
        `  Try: curl -H "Authorization: Bearer ${key}" ${config.publicUrl}/v1/agents/list`,
        '',
      ].join('\n'));
    }
    return key;
  });
}

export interface Running {
  url: string;
  store: Store;
  log: Logger;
  /** The calls this process runs. */
  live: LiveCalls;
  telephony: TelephonyContext;
  close(): Promise<void>;
}

export async function startServer(config: Config, opts: { store?: Store; log?: Logger; print?: (s: string) => void } = {}): Promise<Running> {
  const log = opts.log ?? createLogger(config.LOG_LEVEL);
  await preloadSdkAdapters(config.SWITCHBOARD_PRELOAD_SDKS);
  const store = opts.store ?? (await openStore(config, log));
  const live = new LiveCalls();
  const metrics = createMetrics();
  const bus = new CallBus(store.database, live, log);
  await bus.start();
  const telephony = new TelephonyContext({ store, config, log, live, bus, metrics: new CallMetrics(metrics.registry, () => live.size) });
  const media = new MediaServer(telephony);
  const app = createApp({ store, log, maxBodyBytes: config.MAX_BODY_BYTES, apiKeyCacheSeconds: config.API_KEY_CACHE_SECONDS, version: VERSION, telephony, metrics });
  let server: ServerType | undefined;
  try {
    // Listen before creating the first key: a key printed by a process that then dies would be lost.
    server = await new Promise<ServerType>((resolve, reject) => {
      const s = serve({ fetch: app.fetch, port: config.PORT, hostname: config.HOST }, () => resolve(s));
      // Carriers' media streams: upgraded here, with our own checks, before anything reaches the API.
      s.on('upgrade', media.onUpgrade);
      s.once('error', (err: NodeJS.ErrnoException) => reject(err.code === 'EADDRINUSE'
        ? new Error(`port ${config.PORT} on ${config.HOST} is already in use; set PORT to a free port`)
        : err));
    });
    await ensureBootstrapKey(store, config, opts.print ?? ((line) => process.stdout.write(line + '\n')));
  } catch (err) {
    if (server) await new Promise((r) => server!.close(r));
    await bus.close();
    if (!opts.store) await store.close();
    throw err;
  }
  const listening = server;
  const addr = listening.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.PORT;
  const host = config.HOST === '0.0.0.0' || config.HOST === '::' ? '127.0.0.1' : urlHost(config.HOST);
  // With an ephemeral port (PORT=0) and no PUBLIC_URL, the URL we give carriers must carry the real port.
  if (!config.PUBLIC_URL && config.PORT === 0) config.publicUrl = `http://${host}:${port}`;
  log.info({ port, database: store.database.kind, publicUrl: config.publicUrl }, 'switchboard listening');
  return {
    url: `http://${host}:${port}`, store, log, live, telephony,
    close: async () => {
      // Calls in progress are hung up and recorded as ended before the database goes.
      const closing = new Promise<void>((resolve) => listening.close(() => resolve()));
      await live.endAll();
      media.close();
      await closing;
      await bus.close();
      if (!opts.store) await store.close();
    },
  };
}
