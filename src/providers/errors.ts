/**
 * One mapping from what vendors answer (HTTP status, WebSocket close code, socket failure) to the
 * engine's typed ProviderError, so every adapter fails the same way and the engine can retry, fall
 * back or apologise without knowing the vendor.
 */
import { ProviderError, type ProviderErrorKind } from '../engine/types.js';

export { ProviderError };

/** The kind an HTTP status means; 400-class answers other than auth and quota are our own mistake. */
export function kindOfStatus(status: number): ProviderErrorKind {
  if (status === 401 || status === 403) return 'auth';
  if (status === 402 || status === 429) return 'quota';
  if (status === 408 || status === 504) return 'timeout';
  if (status >= 500) return 'unavailable';
  return 'protocol';
}

/** Vendor error bodies put the reason in different places; take the first human-readable one. */
export function errorText(body: string, max = 300): string {
  try {
    const j = JSON.parse(body) as Record<string, unknown>;
    const e = j.error ?? j.detail ?? j.message ?? j.err_msg ?? j.reason ?? j.title;
    const text = typeof e === 'string' ? e
      : e && typeof e === 'object' ? String((e as Record<string, unknown>).message ?? JSON.stringify(e))
      : body;
    return text.slice(0, max);
  } catch {
    return body.slice(0, max);
  }
}

/**
 * The secrets in request headers (`Authorization: Bearer …`, `xi-api-key`, …): vendors echo a rejected
 * key in their error body, and those bodies end up in error messages and logs.
 */
export function headerSecrets(headers: Record<string, string> | undefined): string[] {
  return Object.entries(headers ?? {})
    .filter(([name]) => /auth|key|token|secret/i.test(name))
    .flatMap(([, value]) => value.split(/\s+/))
    .filter((v) => v.length >= 8);
}

export function statusError(provider: string, status: number, body = '', secrets: string[] = []): ProviderError {
  for (const secret of secrets) body = body.split(secret).join('***');
  const detail = body ? `: ${errorText(body)}` : '';
  return new ProviderError(kindOfStatus(status), `HTTP ${status}${detail}`, provider, status === 429 || status >= 500);
}

/**
 * WebSocket close codes: 1008 (policy) is how several vendors reject a key after the upgrade,
 * 1013 (try again later) and 4xxx codes carry the vendor's own meaning, which we read from the reason.
 */
export function closeError(provider: string, code: number, reason: string): ProviderError {
  const r = reason.toLowerCase();
  let kind: ProviderErrorKind = 'network';
  // Deepgram prefixes reasons with an error class: DATA- (undecodable input), NET- (its side timed out or failed).
  if (/^data-/.test(r)) kind = 'protocol';
  else if (/^net-/.test(r)) kind = 'unavailable';
  else if (code === 1008 || code === 4001 || code === 4003 || /unauthori[sz]ed|invalid (api )?key|auth/.test(r)) kind = 'auth';
  else if (code === 4029 || code === 1013 || /quota|rate limit|too many|insufficient|credits/.test(r)) kind = 'quota';
  else if (code === 1011 || code === 1012 || code === 1014) kind = 'unavailable';
  else if (code === 1002 || code === 1003 || code === 1007 || code === 1009 || (code >= 4000 && code < 5000)) kind = 'protocol';
  return new ProviderError(kind, `socket closed (${code}${reason ? ` ${reason.slice(0, 200)}` : ''})`, provider);
}

/** Anything thrown while talking to a vendor becomes a ProviderError; an abort stays an abort. */
export function asProviderError(provider: string, err: unknown): ProviderError {
  if (err instanceof ProviderError) return err;
  const e = err as { name?: string; code?: string; message?: string; cause?: unknown } | undefined;
  if (e?.name === 'TimeoutError') return new ProviderError('timeout', e.message ?? 'timed out', provider);
  const code = e?.code ?? (e?.cause as { code?: string } | undefined)?.code;
  const msg = e?.message ?? String(err);
  return new ProviderError('network', code ? `${msg} (${code})` : msg, provider);
}

export function isAbort(err: unknown, signal?: AbortSignal): boolean {
  return (signal?.aborted ?? false) || (err as { name?: string } | null)?.name === 'AbortError';
}
