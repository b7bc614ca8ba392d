/**
 * Small shared pieces of the emulator: Twilio SIDs, RFC 2822 dates, E.164 checks, number display.
 *
 * Followed: "Twilio SIDs" — two-letter prefix + 32 hex digits, 34 characters
 * (https://www.twilio.com/docs/glossary/what-is-a-sid); dates in REST bodies as RFC 2822 UTC
 * ("Tue, 31 Aug 2010 20:36:28 +0000", https://www.twilio.com/docs/usage/api); E.164 numbers
 * (https://www.twilio.com/docs/glossary/what-e164).
 */
import { randomBytes } from 'node:crypto';

export type SidPrefix = 'AC' | 'CA' | 'CF' | 'PN' | 'MZ';

export function newSid(prefix: SidPrefix): string {
  return prefix + randomBytes(16).toString('hex');
}

export const isSid = (prefix: SidPrefix, s: string) => new RegExp(`^${prefix}[0-9a-f]{32}$`).test(s);

export function rfc2822(d: Date | number = Date.now()): string {
  return new Date(d).toUTCString().replace('GMT', '+0000');
}

/** "+" then 8–15 digits, the first not 0. */
export const isE164 = (s: string) => /^\+[1-9]\d{7,14}$/.test(s);

/** "(415) 555-0100" for NANP numbers, the E.164 string otherwise (Twilio's *_formatted / friendly_name). */
export function formatNumber(e164: string): string {
  const m = /^\+1(\d{3})(\d{3})(\d{4})$/.exec(e164);
  return m ? `(${m[1]}) ${m[2]}-${m[3]}` : e164;
}

/** Accepts "+14155550100", "14155550100", "4155550100" (NANP) and returns E.164, or undefined. */
export function normalizeNumber(s: string): string | undefined {
  const t = s.trim().replace(/[\s().-]/g, '');
  if (isE164(t)) return t;
  if (/^1\d{10}$/.test(t)) return `+${t}`;
  if (/^[2-9]\d{9}$/.test(t)) return `+1${t}`;
  return undefined;
}

export const sleep = (ms: number, signal?: AbortSignal) => new Promise<void>((resolve) => {
  if (signal?.aborted) return resolve();
  const t = setTimeout(done, Math.max(0, ms));
  function done() { signal?.removeEventListener('abort', done); clearTimeout(t); resolve(); }
  signal?.addEventListener('abort', done, { once: true });
});

/** A promise with its resolve function outside. */
export function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => { resolve = res; reject = rej; });
  return { promise, resolve, reject };
}
