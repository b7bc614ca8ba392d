import { z } from 'zod';
import { SDK_VENDORS } from './providers/sdkVendors.js';

/** Every environment variable the process reads, in one typed place. */
const EnvSchema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  HOST: z.string().default('0.0.0.0'),
  DATABASE_URL: z.string().optional(),
  DATA_DIR: z.string().default('./data'),
  SWITCHBOARD_BOOTSTRAP_API_KEY: z.string().min(16, 'must be at least 16 characters').optional(),
  SWITCHBOARD_SECRET_KEY: z.string().optional(),
  PUBLIC_URL: z.string().url().optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  DATABASE_POOL_SIZE: z.coerce.number().int().min(1).max(200).default(20),
  API_KEY_CACHE_SECONDS: z.coerce.number().min(0).max(3600).default(10),
  MAX_BODY_BYTES: z.coerce.number().int().min(1024).default(1024 * 1024),
  /** HTTP worker processes sharing the port (PostgreSQL only: embedded PGlite is single-process). */
  SWITCHBOARD_WORKERS: z.coerce.number().int().min(1).max(64).default(1),
  // Carriers: REST base URLs (a proxy, or the local carrier emulator) and the platform's own accounts,
  // used for numbers bought without an account connection and for account_connection_fluents_twilio.
  TWILIO_API_BASE_URL: z.string().url().default('https://api.twilio.com'),
  TWILIO_ACCOUNT_SID: z.string().optional(),
  TWILIO_AUTH_TOKEN: z.string().optional(),
  TELNYX_API_BASE_URL: z.string().url().default('https://api.telnyx.com'),
  TELNYX_API_KEY: z.string().optional(),
  TELNYX_PUBLIC_KEY: z.string().optional(),
  TELNYX_CONNECTION_ID: z.string().optional(),
  /** Let users' URLs (context endpoints, external actions) reach private, loopback and link-local addresses. */
  SWITCHBOARD_ALLOW_PRIVATE_URLS: z.enum(['true', 'false', '1', '0']).default('false').transform((v) => v === 'true' || v === '1'),
  /** What a Twilio caller on hold (warm transfer) hears: an audio URL Twilio can fetch; unset, quiet with a "please hold". */
  TWILIO_HOLD_MUSIC_URL: z.url({ protocol: /^https?$/ }).optional(),
  /** Voice activity detection on calls: Silero (ONNX) or the light energy detector. */
  SWITCHBOARD_VAD: z.enum(['silero', 'energy']).default('silero'),
  /** Where Silero runs: batched in a worker thread, or on the event loop (for comparison, or where workers misbehave). */
  SWITCHBOARD_VAD_THREAD: z.enum(['worker', 'inline']).default('worker'),
  /** Calls one node takes at once; beyond it inbound calls get busy and calls/create a 503 (0: no limit). */
  SWITCHBOARD_MAX_CALLS: z.coerce.number().int().min(0).default(0),
  /**
   * SDK-backed adapters to import at start-up rather than on first use (whose import blocks the event loop of
   * a node with calls up for 150–300 ms): a comma list of google_speech, azure_speech, anthropic, google, or all.
   */
  SWITCHBOARD_PRELOAD_SDKS: z.string().default('')
    .transform((v) => v.split(',').map((x) => x.trim()).filter(Boolean))
    .transform((list) => (list.includes('all') ? [...SDK_VENDORS] : list))
    .pipe(z.array(z.enum(SDK_VENDORS, { error: (i) => `unknown SDK "${String(i.input)}": use ${SDK_VENDORS.join(', ')} or all` }))),
});

export type Config = z.infer<typeof EnvSchema> & {
  publicUrl: string;
  /** The whole environment: provider keys and base URLs (OPENAI_API_KEY, DEEPGRAM_BASE_URL, …) are read from it. */
  env: Record<string, string | undefined>;
};

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = EnvSchema.safeParse(Object.fromEntries(Object.entries(env).filter(([, v]) => v !== '')));
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new Error(`Invalid configuration:\n${lines.join('\n')}`);
  }
  const c = parsed.data;
  const hostForUrl = c.HOST === '0.0.0.0' || c.HOST === '::' ? 'localhost' : urlHost(c.HOST);
  return { ...c, publicUrl: (c.PUBLIC_URL ?? `http://${hostForUrl}:${c.PORT}`).replace(/\/+$/, ''), env: { ...env } };
}

/** A host as it appears in a URL: IPv6 literals go in brackets. */
export function urlHost(host: string): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}
