/**
 * An inbound call to one of our numbers, whichever carrier brings it: the checks the number makes (active,
 * not outbound-only, an agent on it), the call record with its template variables (the number's
 * example_context, then the prompt's context endpoint asked about the caller), and the early check that
 * the agent's providers can be reached (a call that cannot be answered properly is not answered at all).
 */
import { fetchContext } from '../calls/agentSetup.js';
import { ConflictError } from '../domain/errors.js';
import { userUrlFetch } from '../calls/userUrls.js';
import type { CallRow } from '../store/calls.js';
import type { NumberRow } from '../store/numbers.js';
import { providerProblem } from './calls.js';
import type { TelephonyContext } from './context.js';
import type { TelephonyProvider } from './types.js';

type Json = Record<string, unknown>;

export type InboundDecision =
  | { kind: 'reject'; reason: string }
  | { kind: 'unavailable'; call: CallRow; reason: string }
  | { kind: 'answer'; call: CallRow }
  /** The carrier delivered this call's webhook twice at once: the other delivery recorded it. */
  | { kind: 'duplicate'; call: CallRow };

/** Whether the number takes calls at all (checked before anything is recorded). */
export function refusal(number: NumberRow): string | null {
  if (!number.active) return 'the number is cancelled';
  // (Numbers bought for a steering pool are outbound only: they point at us, but are no line.)
  if (number.outboundOnly) return 'the number is outbound only';
  if (!number.inboundAgentId) return 'the number has no inbound agent';
  return null;
}

export async function acceptInbound(ctx: TelephonyContext, number: NumberRow, o: {
  provider: TelephonyProvider; from: string; telephonyId: string; metadata: Json;
}): Promise<InboundDecision> {
  const reason = refusal(number);
  if (reason) return { kind: 'reject', reason };
  const { store } = ctx;
  const agentId = number.inboundAgentId!;
  const agent = await store.agents.getExpanded(store.db, number.userId, agentId);
  const errors: string[] = [];
  const context: Record<string, string> = { ...((number.data.example_context as Record<string, string> | null) ?? {}) };
  const endpoint = ((agent.prompt as Json | null)?.context_endpoint ?? agent.context_endpoint) as string | null | undefined;
  if (endpoint) {
    try {
      Object.assign(context, await fetchContext(endpoint, o.from, { fetch: userUrlFetch(ctx.config.SWITCHBOARD_ALLOW_PRIVATE_URLS) }));
    } catch (err) {
      // The call goes on without the caller's context: the prompt keeps its placeholders' defaults.
      errors.push(`context endpoint: ${(err as Error).message}`);
    }
  }
  let call: CallRow;
  try {
    call = await store.calls.insert(store.db, number.userId, {
    agentId, status: 'not_started', stage: 'created', toNumber: number.number, fromNumber: o.from,
    agentPhoneNumber: number.number, telephonyProvider: o.provider, telephonyAccountConnectionId: number.telephonyAccountConnectionId,
    telephonyId: o.telephonyId, isOutgoing: false, context: Object.keys(context).length ? context : null, errors,
    telephonyMetadata: o.metadata,
    });
  } catch (err) {
    const existing = err instanceof ConflictError ? await store.calls.findByTelephonyId(store.db, o.provider, o.telephonyId) : undefined;
    if (existing) return { kind: 'duplicate', call: existing };
    throw err;
  }
  const problem = await providerProblem(ctx, number.userId, agentId);
  if (problem) {
    await store.calls.finish(store.db, call.id, { status: 'error', errorMessage: problem, errors: [...errors, problem] });
    return { kind: 'unavailable', call, reason: problem };
  }
  return { kind: 'answer', call };
}
