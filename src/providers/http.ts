/**
 * Streaming HTTP requests to vendors on Node's fetch, with the failures typed: a non-2xx answer becomes
 * a ProviderError from its status and body, no response headers within `firstByteTimeoutMs` is a
 * timeout, a body cut short is a network error, and the caller's abort cancels the request at once.
 */
import { ProviderError } from '../engine/types.js';
import { asProviderError, headerSecrets, isAbort, statusError } from './errors.js';
import { onAbort } from './events.js';

export interface StreamRequest {
  provider: string;
  url: string;
  method?: string;
  headers?: Record<string, string>;
  body?: string | Uint8Array | FormData;
  signal: AbortSignal;
  /** No response headers after this long is a timeout (the vendor is overloaded or hung). */
  firstByteTimeoutMs?: number;
}

export const DEFAULT_FIRST_BYTE_TIMEOUT_MS = 10_000;

/** Sends the request and resolves with the OK response; throws a ProviderError or the abort reason. */
export async function vendorFetch(r: StreamRequest): Promise<Response> {
  const timeout = new AbortController();
  const timer = setTimeout(() => timeout.abort(), r.firstByteTimeoutMs ?? DEFAULT_FIRST_BYTE_TIMEOUT_MS);
  const signal = AbortSignal.any([r.signal, timeout.signal]);
  try {
    const res = await fetch(r.url, { method: r.method ?? 'POST', headers: r.headers, body: r.body as BodyInit, signal });
    if (!res.ok) throw statusError(r.provider, res.status, await res.text().catch(() => ''), headerSecrets(r.headers));
    return res;
  } catch (err) {
    if (r.signal.aborted) throw r.signal.reason;
    if (timeout.signal.aborted) throw new ProviderError('timeout', 'no response from the vendor in time', r.provider);
    throw asProviderError(r.provider, err);
  } finally {
    clearTimeout(timer);
  }
}

/** The response body as it arrives. */
export async function* streamBytes(r: StreamRequest): AsyncIterable<Uint8Array> {
  const res = await vendorFetch(r);
  if (!res.body) return;
  const reader = res.body.getReader();
  const cancel = () => { void reader.cancel().catch(() => {}); };
  const offAbort = onAbort(r.signal, cancel);
  let ended = false;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) { ended = true; return; }
      if (value?.length) yield value;
    }
  } catch (err) {
    ended = true;
    if (isAbort(err, r.signal)) throw r.signal.reason ?? err;
    throw new ProviderError('network', `response cut short: ${(err as Error).message}`, r.provider);
  } finally {
    offAbort();
    // A consumer that stops early: without a cancel the body keeps downloading and holds its connection.
    if (!ended) cancel();
    reader.releaseLock();
  }
}
