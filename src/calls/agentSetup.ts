/**
 * From the stored agent and call to what the engine runs: the agent's actions as engine actions, the call's
 * template variables (the `calls/create` context, the prompt's context endpoint, the number's example
 * context), and the agent's telephony settings.
 */
import type { EngineAction } from '../engine/actions/index.js';

type Json = Record<string, unknown>;

/** Stored actions (as AgentRepo serializes them) → engine actions. */
export function engineActions(stored: unknown): EngineAction[] {
  if (!Array.isArray(stored)) return [];
  return stored.map((a: Json) => {
    const trigger = (a.action_trigger ?? { type: 'action_trigger_function_call' }) as Json;
    const phrases = trigger.type === 'action_trigger_phrase_based'
      ? (((trigger.config as Json | undefined)?.phrase_triggers ?? []) as { phrase: string }[]).map((p) => p.phrase)
      : [];
    return {
      id: String(a.id), type: String(a.type), label: (a.label as string | null) ?? null, description: (a.description as string | null) ?? null,
      config: (a.config ?? {}) as Json,
      trigger: trigger.type === 'action_trigger_phrase_based' ? { type: 'action_trigger_phrase_based', phrases } : { type: 'action_trigger_function_call' },
    };
  });
}

/** How long the prompt's context endpoint may take: the caller is ringing meanwhile. */
export const CONTEXT_ENDPOINT_TIMEOUT_MS = 3000;

/**
 * Vocode's context endpoint: `GET <url>?phone_number=<caller>` answers a JSON object whose string (or
 * scalar) values fill the prompt's `${placeholders}`. Resolves with the values, or throws a short reason.
 */
export async function fetchContext(url: string, phoneNumber: string, o: { fetch?: typeof fetch; timeoutMs?: number } = {}): Promise<Record<string, string>> {
  const timeoutMs = o.timeoutMs ?? CONTEXT_ENDPOINT_TIMEOUT_MS;
  const u = new URL(url);
  u.searchParams.set('phone_number', phoneNumber);
  let res: Response;
  try {
    res = await (o.fetch ?? fetch)(u, { headers: { accept: 'application/json' }, redirect: 'error', signal: AbortSignal.timeout(timeoutMs) });
  } catch (err) {
    const e = err as Error;
    const cause = (e.cause as Error | undefined)?.message;
    throw new Error(e.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : `unreachable (${cause ?? e.message})`);
  }
  if (!res.ok) throw new Error(`answered HTTP ${res.status}`);
  let body: unknown;
  try {
    body = JSON.parse(await res.text());
  } catch {
    throw new Error('answered with a body that is not JSON');
  }
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw new Error('answered with JSON that is not an object');
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(body as Json)) {
    if (v === null || v === undefined) continue;
    out[k] = typeof v === 'string' ? v : typeof v === 'object' ? JSON.stringify(v) : String(v);
  }
  return out;
}
