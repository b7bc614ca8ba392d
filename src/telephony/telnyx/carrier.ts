/**
 * Telnyx wired into Switchboard: numbers through our Call Control application, outbound calls that start
 * their media stream when answered, the REST-side controls of a live call, and the one event webhook
 * (`/telephony/telnyx/events`) every Telnyx call event arrives on, each verified with the account's
 * Ed25519 public key before it changes anything.
 *
 * Telnyx has one webhook URL per Call Control application, so the call an event belongs to comes from the
 * client_state we attach (`{call_id}`) or, for a new inbound call, from the dialled number.
 */
import { normalizePhone } from '../../domain/common.js';
import { isCallOver, type CallRow } from '../../store/calls.js';
import type { TelnyxCarrierAccount } from '../accounts.js';
import { carrierVerdict, finishFromCarrier, type CarrierEnd } from '../carrierEnd.js';
import type { TelephonyContext } from '../context.js';
import { acceptInbound, refusal } from '../inbound.js';
import type { CarrierNumbers } from '../numbers.js';
import { createStreamToken } from '../streamToken.js';
import type { CallControl } from '../types.js';
import { TelnyxClient, telnyxCallControl } from './rest.js';
import { decodeClientState, encodeClientState, parseTelnyxEvent, verifyTelnyxWebhook, type HeaderSource, type TelnyxEvent } from './webhooks.js';

/** The name of the Call Control application Switchboard creates in a Telnyx account. */
export const TELNYX_APP_NAME = 'Switchboard';

const apps = new Map<string, Promise<string>>();

export function telnyxClient(account: TelnyxCarrierAccount): TelnyxClient {
  return new TelnyxClient({ apiKey: account.apiKey, baseUrl: account.baseUrl });
}

export function telnyxEventsUrl(ctx: TelephonyContext): string {
  return ctx.url('/telephony/telnyx/events');
}

/** Our Call Control application in the account (the one configured, or ours, created on first need). */
export function telnyxAppId(ctx: TelephonyContext, account: TelnyxCarrierAccount): Promise<string> {
  if (account.connectionId) return Promise.resolve(account.connectionId);
  const key = `${account.baseUrl}|${account.apiKey}|${telnyxEventsUrl(ctx)}`;
  let app = apps.get(key);
  if (!app) {
    app = telnyxClient(account).ensureCallControlApp(telnyxEventsUrl(ctx), TELNYX_APP_NAME);
    app.catch(() => apps.delete(key));
    apps.set(key, app);
  }
  return app;
}

export async function telnyxNumbers(ctx: TelephonyContext, account: TelnyxCarrierAccount): Promise<CarrierNumbers> {
  const client = telnyxClient(account);
  return {
    search: (q) => client.searchNumbers(q),
    buy: async (o) => client.buyNumber(o, await telnyxAppId(ctx, account)),
    claim: async (n) => client.claimNumber(n, await telnyxAppId(ctx, account)),
    restore: async (claimed) => {
      // Only a number still on our application is put back: someone else's change since stays.
      const now = await client.findNumber(claimed.number);
      if (!now || now.connection_id !== (await telnyxAppId(ctx, account))) return false;
      await client.restoreNumber(claimed);
      return true;
    },
    release: (id) => client.releaseNumber(id),
  };
}

function streamUrl(ctx: TelephonyContext, callId: string): string {
  return ctx.wsUrl(`/telephony/telnyx/media/${createStreamToken(ctx.store.box, callId)}`);
}

/** Dials an outbound call; its stream starts when it is answered, answering-machine detection included. */
export async function placeTelnyxCall(ctx: TelephonyContext, account: TelnyxCarrierAccount, call: CallRow, ringSec: number): Promise<string> {
  const res = await telnyxClient(account).dial({
    to: call.toNumber, from: call.fromNumber, connectionId: await telnyxAppId(ctx, account), webhookUrl: telnyxEventsUrl(ctx),
    clientState: encodeClientState({ call_id: call.id }), amd: 'detect_beep', streamUrl: streamUrl(ctx, call.id), timeoutSecs: ringSec,
  });
  return res.callControlId;
}

export async function telnyxControl(ctx: TelephonyContext, account: TelnyxCarrierAccount, call: CallRow): Promise<CallControl> {
  return telnyxCallControl(telnyxClient(account), call.telephonyId!, {
    from: call.isOutgoing ? call.fromNumber : call.toNumber, connectionId: await telnyxAppId(ctx, account), webhookUrl: telnyxEventsUrl(ctx),
    participantState: (conferenceId) => encodeClientState({ call_id: call.id, conference_id: conferenceId }),
  });
}

/**
 * Events of the human dialled into a call's conference (a warm transfer): answering takes the held caller
 * off hold and makes the transfer a success; never answering ends the caller's wait.
 */
async function transferLegEvent(ctx: TelephonyContext, client: ReturnType<typeof telnyxClient>, call: CallRow, conferenceId: string, e: TelnyxEvent): Promise<void> {
  const { store } = ctx;
  const callerLive = !isCallOver(call);
  if (e.type === 'call.answered') {
    if (!callerLive) {
      // The caller gave up waiting: nobody for the human to talk to.
      await client.hangup(e.callControlId).catch(() => {});
      return;
    }
    await store.calls.advance(store.db, call.id, { stage: 'transfer_successful' });
    await client.unholdParticipants(conferenceId, [call.telephonyId!]).catch((err: unknown) => {
      ctx.log.warn({ err: (err as Error).message, callId: call.id }, 'could not take the caller off hold for the human');
    });
  } else if (e.type === 'call.hangup' && call.stage !== 'transfer_successful') {
    await store.calls.advance(store.db, call.id, { stageOutcome: 'transfer_unanswered' });
    // Nobody is coming: the caller would wait on hold forever.
    if (callerLive) await client.hangup(call.telephonyId!).catch(() => {});
  }
}

export interface TelnyxWebhookRequest {
  rawBody: string;
  headers: HeaderSource;
}

const ok = { status: 200, body: '' };

/** How a Telnyx hang-up cause ends a call that was never answered. */
function unansweredEnd(cause: string): Omit<CarrierEnd, 'metadata'> {
  if (cause === 'timeout' || cause === 'no_answer') return { status: 'ended', outcome: 'human_unanswered' };
  if (['user_busy', 'call_rejected', 'originator_cancel', 'normal_clearing', 'time_limit'].includes(cause)) return { status: 'ended', outcome: 'call_did_not_connect' };
  return { status: 'error', outcome: 'call_did_not_connect', error: `the carrier could not connect the call (Telnyx hangup cause ${cause})` };
}

function amdVerdict(e: TelnyxEvent): 'human' | 'machine' | 'machine_end' | null {
  if (e.type === 'call.machine.detection.ended' || e.type === 'call.machine.premium.detection.ended') {
    if (e.result.startsWith('human')) return 'human';
    if (e.result === 'machine' || e.result === 'fax_detected') return 'machine';
    return null;
  }
  if (e.type === 'call.machine.greeting.ended' || e.type === 'call.machine.premium.greeting.ended') {
    return e.result === 'beep_detected' || e.result === 'ended' ? 'machine_end' : null;
  }
  return null;
}

export async function telnyxEvents(ctx: TelephonyContext, req: TelnyxWebhookRequest): Promise<{ status: number; body: string }> {
  let unverified: TelnyxEvent;
  try {
    unverified = parseTelnyxEvent(JSON.parse(req.rawBody));
  } catch {
    return { status: 400, body: 'not a Telnyx event' };
  }
  const { store } = ctx;
  // The account whose key must have signed this: the call's (client_state or call id), or the dialled number's.
  const state = decodeClientState<{ call_id?: string; conference_id?: string }>(unverified.clientState);
  let call = state?.call_id && /^[0-9a-f-]{36}$/i.test(state.call_id) ? await store.calls.findById(store.db, state.call_id) : undefined;
  call ??= unverified.callControlId ? await store.calls.findByTelephonyId(store.db, 'telnyx', unverified.callControlId) : undefined;
  const isNewInbound = !call && unverified.type === 'call.initiated' && unverified.direction === 'incoming';
  const number = isNewInbound ? await store.numbers.findAnyUser(store.db, normalizePhone(unverified.to) ?? unverified.to) : undefined;
  const owner = call ?? number;
  if (!owner) return ok; // not ours (another application's call, or one we never recorded): nothing to do
  let account;
  try {
    account = await ctx.accountOf(owner);
  } catch {
    return { status: 403, body: 'no account for this call' };
  }
  if (account.provider !== 'telnyx') return { status: 403, body: 'not a Telnyx call' };
  if (!account.publicKey) {
    ctx.log.warn('a Telnyx webhook cannot be verified: set telnyx_public_key on the account connection (or TELNYX_PUBLIC_KEY)');
    return { status: 403, body: 'no public key to verify the signature with' };
  }
  const verified = verifyTelnyxWebhook(req.rawBody, req.headers, account.publicKey);
  if (!verified.ok) return { status: 403, body: `signature refused: ${verified.reason}` };
  const e = verified.event;
  const client = telnyxClient(account);

  if (isNewInbound && number && e.type === 'call.initiated') {
    const existing = await store.calls.findByTelephonyId(store.db, 'telnyx', e.callControlId);
    if (existing) return ok; // a redelivery
    if (refusal(number)) {
      await client.reject(e.callControlId).catch(() => {});
      return ok;
    }
    const decision = await acceptInbound(ctx, number, {
      provider: 'telnyx', from: normalizePhone(e.from) ?? e.from, telephonyId: e.callControlId,
      metadata: { type: 'telephony_metadata_telnyx', call_control_id: e.callControlId, call_session_id: e.callSessionId, call_status: 'initiated' },
    });
    if (decision.kind === 'duplicate') return ok;
    if (decision.kind === 'answer') {
      await client.answer(e.callControlId, { streamUrl: streamUrl(ctx, decision.call.id), clientState: encodeClientState({ call_id: decision.call.id }) });
    } else {
      await client.reject(e.callControlId, decision.kind === 'busy' ? 'USER_BUSY' : 'CALL_REJECTED').catch(() => {});
    }
    return ok;
  }
  if (!call) return ok;
  if (state?.conference_id && e.callControlId !== call.telephonyId) {
    await transferLegEvent(ctx, client, call, state.conference_id, e);
    return ok;
  }

  const meta = (status: string) => ({ ...(call!.telephonyMetadata ?? { type: 'telephony_metadata_telnyx' }), call_control_id: e.callControlId, call_status: status });
  switch (e.type) {
    case 'call.initiated':
      await store.calls.advance(store.db, call.id, { telephonyId: call.telephonyId ?? e.callControlId, telephonyMetadata: meta('initiated') });
      break;
    case 'call.answered':
      await store.calls.advance(store.db, call.id, { status: 'in_progress', startTime: call.startTime ?? new Date(), telephonyMetadata: meta('answered') });
      break;
    case 'call.bridged':
      if (call.stage === 'transfer_started') await store.calls.advance(store.db, call.id, { stage: 'transfer_successful' });
      break;
    case 'call.hangup': {
      const answered = call.status === 'in_progress' || call.mediaConnectedAt !== null;
      // Telnyx says which leg hung up: the far party's (the callee of our outbound call, the caller of an inbound one), or ours.
      const [theirs, ours] = call.isOutgoing ? ['callee', 'caller'] : ['caller', 'callee'];
      const remote = e.hangupSource === theirs ? true : e.hangupSource === ours ? false : undefined;
      // Recorded after the webhook is answered: a running conversation gets seconds to record its own end,
      // longer than a webhook should keep Telnyx waiting (it would deliver the event again).
      void finishFromCarrier(ctx, call, {
        ...(answered ? { status: 'ended', outcome: null } : unansweredEnd(e.hangupCause)), remote,
        metadata: { ...meta('hangup'), hangup_cause: e.hangupCause, hangup_source: e.hangupSource },
      }).catch((err: unknown) => ctx.log.error({ err, call_id: call!.id }, 'could not record the end of a Telnyx call'));
      break;
    }
    case 'streaming.failed': {
      // The caller would hear silence: end the call and say why.
      const message = `media stream failed: ${e.failureReason}`;
      await client.hangup(e.callControlId).catch(() => {});
      await store.calls.finish(store.db, call.id, { status: 'error', errorMessage: message, errors: [...call.errors, message] });
      break;
    }
    default: {
      const verdict = amdVerdict(e);
      if (!verdict) break;
      await store.calls.mergeInternal(store.db, call.id, { amd: { event: e.eventType, result: (e as { result?: string }).result ?? null } });
      await carrierVerdict(ctx, call, verdict, () => client.hangup(e.callControlId));
    }
  }
  return ok;
}
