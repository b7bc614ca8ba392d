/**
 * Requests the emulator makes to the application, signed the way Twilio signs them.
 *
 * Followed "Webhooks security" (https://www.twilio.com/docs/usage/webhooks/webhooks-security):
 * X-Twilio-Signature is the base64 HMAC-SHA1, keyed with the Auth Token, of the full URL as configured
 * followed, for a POST, by every form parameter sorted by name as name+value; a GET carries its
 * parameters in the query string and is signed over that URL alone. The media stream's WebSocket
 * handshake is signed the same way over the stream URL. The signature itself comes from the `twilio`
 * package (getExpectedTwilioSignature), so it is exactly what its validateRequest checks.
 * "Webhooks (HTTP callbacks) connection overrides" (https://www.twilio.com/docs/usage/webhooks/webhooks-connection-overrides):
 * Twilio gives a webhook 15 s to answer by default.
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import webhooks from 'twilio/lib/webhooks/webhooks.js';

export const WEBHOOK_TIMEOUT_MS = 15_000;

export function signature(authToken: string, url: string, params: Record<string, string>): string {
  return webhooks.getExpectedTwilioSignature(authToken, url, params);
}

export interface WebhookRequest {
  url: string;
  method: 'GET' | 'POST';
  params: Record<string, string>;
}

export interface WebhookResult {
  /** The URL as signed (for a GET, with the parameters in its query string). */
  url: string;
  status?: number;
  contentType?: string;
  body?: string;
  error?: string;
  ms: number;
}

export interface WebhookSender {
  authToken: string;
  /** Maps the URL Twilio would call to the one this process can reach; the signature keeps the original. */
  rewriteUrl?: (url: string) => string;
  timeoutMs?: number;
}

export function withQuery(url: string, params: Record<string, string>): string {
  const q = new URLSearchParams(params).toString();
  if (!q) return url;
  return url + (url.includes('?') ? '&' : '?') + q;
}

export async function sendWebhook(s: WebhookSender, req: WebhookRequest, signal?: AbortSignal): Promise<WebhookResult> {
  const t0 = performance.now();
  const isGet = req.method === 'GET';
  const url = isGet ? withQuery(req.url, req.params) : req.url;
  const headers: Record<string, string> = {
    'x-twilio-signature': signature(s.authToken, url, isGet ? {} : req.params),
    'user-agent': 'TwilioProxy/1.1',
    'i-twilio-idempotency-token': randomUUID(),
    accept: '*/*',
  };
  if (!isGet) headers['content-type'] = 'application/x-www-form-urlencoded';
  const timeout = AbortSignal.timeout(s.timeoutMs ?? WEBHOOK_TIMEOUT_MS);
  try {
    const res = await fetch(s.rewriteUrl ? s.rewriteUrl(url) : url, {
      method: req.method,
      headers,
      body: isGet ? undefined : new URLSearchParams(req.params).toString(),
      signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      redirect: 'manual',
    });
    const body = await res.text();
    return { url, status: res.status, contentType: res.headers.get('content-type') ?? undefined, body, ms: performance.now() - t0 };
  } catch (err) {
    const e = err as Error;
    const error = e.name === 'TimeoutError' ? `no answer in ${s.timeoutMs ?? WEBHOOK_TIMEOUT_MS} ms` : e.name === 'AbortError' ? 'aborted' : `${e.message}${(e as { cause?: Error }).cause ? `: ${(e as { cause?: Error }).cause!.message}` : ''}`;
    return { url, error, ms: performance.now() - t0 };
  }
}

/**
 * A `rewriteUrl` from prefix pairs, e.g. { 'https://sb.example.com': 'http://127.0.0.1:3000' }: a URL
 * under a public prefix goes to the local target instead; the matching wss:// → ws:// pair is implied.
 */
export function prefixRewriter(map: Record<string, string>): (url: string) => string {
  const rules: Array<[string, string]> = [];
  const ws = (u: string) => u.replace(/^http/i, 'ws');
  for (const [from, to] of Object.entries(map)) {
    const f = from.replace(/\/+$/, '');
    const t = to.replace(/\/+$/, '');
    rules.push([f, t]);
    if (/^https?:\/\//i.test(f) && /^https?:\/\//i.test(t)) rules.push([ws(f), ws(t)]);
  }
  return (url) => {
    for (const [f, t] of rules) {
      if (url === f || url.startsWith(`${f}/`) || url.startsWith(`${f}?`)) return t + url.slice(f.length);
    }
    return url;
  };
}
