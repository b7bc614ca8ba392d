/**
 * What the SDK-based language-model adapters share: one upstream AbortSignal that fires on the
 * caller's abort, on a first-token timeout, or when the consumer stops reading; the API key kept out of
 * error messages; and one mapping from the OpenAI and Anthropic SDKs' error classes (both are
 * Stainless-generated: `status`, `type`, `name`) to ProviderError.
 */
import { ProviderError, type ProviderErrorKind } from '../../engine/types.js';
import { asProviderError, kindOfStatus } from '../errors.js';

export const DEFAULT_FIRST_TOKEN_TIMEOUT_MS = 10_000;

/** Vendor error `type`/`code` strings that arrive without an HTTP status (SSE error events). */
const KIND_OF_TYPE: Record<string, ProviderErrorKind> = {
  authentication_error: 'auth', permission_error: 'auth', invalid_api_key: 'auth',
  rate_limit_error: 'quota', rate_limit_exceeded: 'quota', insufficient_quota: 'quota', billing_error: 'quota',
  overloaded_error: 'unavailable', api_error: 'unavailable', server_error: 'unavailable', service_unavailable_error: 'unavailable',
  timeout_error: 'timeout',
};

export class UpstreamRequest {
  private readonly ac = new AbortController();
  private timer?: ReturnType<typeof setTimeout>;
  private timedOut = false;
  private readonly onAbort = () => this.ac.abort(this.caller.reason);

  constructor(
    private readonly caller: AbortSignal,
    readonly provider: string,
    private readonly apiKey: string,
    firstTokenTimeoutMs: number,
    /** The vendor's own error mapping, for SDKs that are not Stainless-generated. */
    private readonly toError: (provider: string, err: unknown) => ProviderError = sdkError,
  ) {
    caller.addEventListener('abort', this.onAbort, { once: true });
    this.timer = setTimeout(() => { this.timedOut = true; this.ac.abort(); }, firstTokenTimeoutMs);
  }

  /** Hand this to the SDK request: it closes the upstream connection on any of our reasons. */
  get signal(): AbortSignal { return this.ac.signal; }

  /** The model started answering: the first-token deadline no longer applies. */
  firstContent(): void {
    clearTimeout(this.timer);
  }

  /**
   * What to throw once the SDK stopped: the caller's abort reason, our timeout, or the typed vendor
   * error. The SDKs end a stream silently when its signal aborts, so `err` may be undefined.
   */
  failure(err?: unknown): unknown {
    if (this.caller.aborted) return this.caller.reason;
    if (this.timedOut) return new ProviderError('timeout', 'no first token from the model in time', this.provider);
    if (err === undefined) return new ProviderError('network', 'the reply stream ended early', this.provider);
    return this.scrub(this.toError(this.provider, err));
  }

  /** Stops the timer and closes the upstream request if it is still open (the consumer stopped early). */
  close(): void {
    clearTimeout(this.timer);
    this.caller.removeEventListener('abort', this.onAbort);
    this.ac.abort();
  }

  /** Vendors echo (masked) keys in auth errors; never let the full key reach logs. */
  private scrub(e: ProviderError): ProviderError {
    if (!this.apiKey || this.apiKey.length < 6 || !e.message.includes(this.apiKey)) return e;
    const message = e.message.slice(this.provider.length + 2).split(this.apiKey).join('***');
    return new ProviderError(e.kind, message, this.provider, e.retryable);
  }
}

function sdkError(provider: string, err: unknown): ProviderError {
  if (err instanceof ProviderError) return err;
  const e = err as { name?: string; status?: unknown; type?: unknown; code?: unknown; message?: string };
  const message = e?.message ?? String(err);
  // OpenAI's error classes keep name 'Error'; the class name is the same in both SDKs.
  const cls = (err as object | null)?.constructor?.name;
  if (typeof e?.status === 'number') {
    return new ProviderError(kindOfStatus(e.status), message, provider, e.status === 429 || e.status >= 500);
  }
  if (cls === 'APIConnectionTimeoutError') return new ProviderError('timeout', message, provider);
  if (cls === 'APIConnectionError') return asProviderError(provider, (err as { cause?: unknown }).cause ?? err);
  const type = [e?.type, e?.code].find((t): t is string => typeof t === 'string' && t in KIND_OF_TYPE);
  if (type) return new ProviderError(KIND_OF_TYPE[type], message, provider);
  // An APIError with neither status nor known type is an error event we cannot classify; a SyntaxError is a garbled stream.
  if (cls === 'APIError' || err instanceof SyntaxError) return new ProviderError('protocol', message, provider);
  return asProviderError(provider, err);
}
