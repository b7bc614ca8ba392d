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
type NewCallFields = Parameters<TelephonyContext['store']['calls']['insert']>[2];

export type InboundDecision =
  | { kind: 'reject'; reason: string }
  /** The node is at its call limit: the caller hears busy; the call is recorded as not connected. */
  | { kind: 'busy'; call: CallRow; reason: string }
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
  const callFields = {
    agentId: number.inboundAgentId!, toNumber: number.number, fromNumber: o.from, agentPhoneNumber: number.number, telephonyProvider: o.provider,
    telephonyAccountConnectionId: number.telephonyAccountConnectionId, telephonyId: o.telephonyId, isOutgoing: false, telephonyMetadata: o.metadata,
    status: 'not_started' as const, stage: 'created' as const,
  };
  const seat = ctx.admission.reserve();
  if (typeof seat === 'string') {
    // Recorded as over from the start: a second delivery of the webhook finds it so and never answers it.
    const refused = await insertOnce(ctx, number.userId, o, {
      ...callFields, status: 'error', stageOutcome: 'call_did_not_connect', errorMessage: seat, errors: [seat], endTime: new Date(),
    });
    return refused.kind === 'duplicate' ? refused : { kind: 'busy', call: refused.call, reason: seat };
  }
  try {
    const decision = await answerable(ctx, number, o, callFields);
    if (decision.kind === 'answer') seat.admit(decision.call.id);
    else seat.release();
    return decision;
  } catch (err) {
    seat.release();
    throw err;
  }
}

/** The call recorded and checked: answer it, or say why not. */
async function answerable(ctx: TelephonyContext, number: NumberRow, o: { provider: TelephonyProvider; from: string; telephonyId: string }, callFields: NewCallFields): Promise<InboundDecision> {
  const { store } = ctx;
  const { agentId } = callFields;
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
  const inserted = await insertOnce(ctx, number.userId, o, { ...callFields, context: Object.keys(context).length ? context : null, errors });
  if (inserted.kind === 'duplicate') return inserted;
  const { call } = inserted;
  const problem = await providerProblem(ctx, number.userId, agentId);
  if (problem) {
    await store.calls.finish(store.db, call.id, { status: 'error', errorMessage: problem, errors: [...errors, problem] });
    return { kind: 'unavailable', call, reason: problem };
  }
  return { kind: 'answer', call };
}

/** The call's record, or the one a simultaneous delivery of the same carrier webhook made. */
async function insertOnce(ctx: TelephonyContext, userId: string, o: { provider: TelephonyProvider; telephonyId: string }, fields: NewCallFields): Promise<{ kind: 'new'; call: CallRow } | { kind: 'duplicate'; call: CallRow }> {
  const { store } = ctx;
  try {
    return { kind: 'new', call: await store.calls.insert(store.db, userId, fields) };
  } catch (err) {
    const existing = err instanceof ConflictError ? await store.calls.findByTelephonyId(store.db, o.provider, o.telephonyId) : undefined;
    if (existing) return { kind: 'duplicate', call: existing };
    throw err;
  }
}
