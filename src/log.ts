import { pino, type Logger } from 'pino';

/** Paths whose values never reach a log line, whatever object they hang off. */
const REDACT = [
  'authorization', 'req.headers.authorization', '*.authorization', 'headers.authorization',
  'credentials', '*.credentials', 'api_key', '*.api_key', 'key', 'secret', '*.signature_secret',
];

export function createLogger(level: string): Logger {
  return pino({ level, redact: { paths: REDACT, censor: '[redacted]' }, base: { svc: 'switchboard' } });
}

export type { Logger };
