/**
 * Twilio's webhooks to us, each checked against X-Twilio-Signature with the Auth Token of the account the
 * number or call belongs to (so only that account's Twilio can drive it):
 *
 *  - voice  (a number's VoiceUrl, or an outbound call's Url when answered): record the call and answer
 *           with <Connect><Stream> to a signed, single-use media URL; reject calls the number must not take.
 *  - status (StatusCallback): the call's progress drives status, stage, times and stage_outcome.
 *  - amd    (AsyncAmdStatusCallback): answering-machine detection → human_detection_result.
 *  - dial   (a transfer's <Dial action>, or a warm transfer's conference ending): how the transfer went.
 *  - hold   (a warm transfer's conference waitUrl): what the caller hears on hold, until a time limit.
 *  - participant (StatusCallback of the human dialled into a warm transfer): answered → transfer_successful;
 *           never answered → transfer_unanswered, and the waiting caller hears an apology and is hung up on.
 *
 * Parameters follow "TwiML Voice: Twilio's request to your application" and "Call resource: StatusCallback
 * parameters / AnsweredBy" (https://www.twilio.com/docs/voice/twiml#request-parameters,
 * https://www.twilio.com/docs/voice/api/call-resource#statuscallback, https://www.twilio.com/docs/voice/answering-machine-detection).
 */
import { normalizePhone } from '../../domain/common.js';
import { isCallOver, type CallRow } from '../../store/calls.js';
import { acceptInbound } from '../inbound.js';
import type { TwilioCarrierAccount } from '../accounts.js';
import { carrierVerdict, finishFromCarrier, type CarrierEnd } from '../carrierEnd.js';
import type { TelephonyContext } from '../context.js';
import { createStreamToken } from '../streamToken.js';
import { formParams, hangupTwiml, holdTwiml, rejectTwiml, sayAndHangupTwiml, streamTwiml, validTwilioSignature } from './webhooks.js';

export interface WebhookRequest {
  /** Path and query as received (e.g. `/telephony/twilio/status?call_id=…`). */
  pathAndQuery: string;
  rawBody: string;
  signature: string | undefined;
}

export interface WebhookReply {
  status: number;
  /** TwiML (text/xml) when `xml`, else plain text. */
  body: string;
  xml?: boolean;
}

const twiml = (body: string): WebhookReply => ({ status: 200, body, xml: true });
const forbidden: WebhookReply = { status: 403, body: 'invalid signature' };
const notFound: WebhookReply = { status: 404, body: 'unknown call or number' };

/** Said to a caller when the agent cannot take calls (its providers are not configured). */
export const UNAVAILABLE_MESSAGE = 'Sorry, this line cannot take calls right now. Please try again later.';

function verify(ctx: TelephonyContext, account: TwilioCarrierAccount, req: WebhookRequest, params: Record<string, string>): boolean {
  if (params.AccountSid && params.AccountSid !== account.account.accountSid) return false;
  return validTwilioSignature(account.account.authToken, req.signature, ctx.url(req.pathAndQuery), params);
}

function queryParam(req: WebhookRequest, name: string): string | null {
  const q = req.pathAndQuery.indexOf('?');
  return q < 0 ? null : new URLSearchParams(req.pathAndQuery.slice(q + 1)).get(name);
}

const callIdOf = (req: WebhookRequest): string | null => queryParam(req, 'call_id');

/**
 * The start of every webhook about a call we recorded: its parameters, the call, and its account, once
 * the request is proven to come from that account's Twilio. Otherwise the reply to send (`unknown` for a
 * call we do not know).
 */
async function callWebhook(ctx: TelephonyContext, req: WebhookRequest, unknown: WebhookReply = notFound): Promise<
  { params: Record<string, string>; call: CallRow; account: TwilioCarrierAccount } | { reply: WebhookReply }
> {
  const params = formParams(req.rawBody);
  const call = await loadCall(ctx, req, params);
  if (!call) return { reply: unknown };
  const account = await twilioAccount(ctx, call);
  if (!account || !verify(ctx, account, req, params)) return { reply: forbidden };
  return { params, call, account };
}

/**
 * A redelivered voice webhook: the stream again if it never connected; a call that ended before it ever
 * did (refused at the node's call limit, say) is rejected rather than answered and hung up; else nothing
 * more to do.
 */
function answerAgain(ctx: TelephonyContext, call: CallRow): WebhookReply {
  if (isCallOver(call)) return twiml(call.mediaConnectedAt ? hangupTwiml() : rejectTwiml('busy'));
  return call.mediaConnectedAt ? twiml(hangupTwiml()) : streamAnswer(ctx, call);
}

async function twilioAccount(ctx: TelephonyContext, row: Parameters<TelephonyContext['accountOf']>[0]): Promise<TwilioCarrierAccount | null> {
  try {
    const a = await ctx.accountOf(row);
    return a.provider === 'twilio' ? a : null;
  } catch (err) {
    ctx.log.warn({ err: (err as Error).message }, 'twilio webhook for a number or call without a usable account');
    return null;
  }
}

function streamAnswer(ctx: TelephonyContext, call: CallRow): WebhookReply {
  const token = createStreamToken(ctx.store.box, call.id);
  return twiml(streamTwiml(ctx.wsUrl(`/telephony/twilio/media/${token}`), { call_id: call.id }));
}

async function loadCall(ctx: TelephonyContext, req: WebhookRequest, params: Record<string, string>): Promise<CallRow | undefined> {
  const id = callIdOf(req);
  const { calls } = ctx.store;
  if (id) return /^[0-9a-f-]{36}$/i.test(id) ? calls.findById(ctx.store.db, id) : undefined;
  return params.CallSid ? calls.findByTelephonyId(ctx.store.db, 'twilio', params.CallSid) : undefined;
}

export async function twilioVoice(ctx: TelephonyContext, req: WebhookRequest): Promise<WebhookReply> {
  const params = formParams(req.rawBody);
  const { store } = ctx;

  // An outbound call was answered: its Url carries our call id.
  if (callIdOf(req)) {
    const w = await callWebhook(ctx, req);
    if ('reply' in w) return w.reply;
    const { call } = w;
    if (call.telephonyId && params.CallSid && params.CallSid !== call.telephonyId) return forbidden;
    return isCallOver(call) ? twiml(hangupTwiml()) : streamAnswer(ctx, call);
  }

  // An inbound call to one of our numbers.
  const to = normalizePhone(params.To ?? params.Called ?? '');
  const number = to ? await store.numbers.findAnyUser(store.db, to) : undefined;
  if (!number) return notFound;
  const account = await twilioAccount(ctx, number);
  if (!account || !verify(ctx, account, req, params)) return forbidden;
  if (!params.CallSid) return { status: 400, body: 'CallSid missing' };

  // Twilio retries a webhook it got no answer to: the same CallSid gets the same call, not a second one.
  const existing = await store.calls.findByTelephonyId(store.db, 'twilio', params.CallSid);
  if (existing) return answerAgain(ctx, existing);

  const from = normalizePhone(params.From ?? params.Caller ?? '') ?? (params.From || 'anonymous');
  const decision = await acceptInbound(ctx, number, {
    provider: 'twilio', from, telephonyId: params.CallSid,
    metadata: { type: 'telephony_metadata_twilio', call_sid: params.CallSid, call_status: params.CallStatus ?? 'ringing' },
  });
  if (decision.kind === 'reject') return twiml(rejectTwiml('rejected'));
  if (decision.kind === 'busy') return twiml(rejectTwiml('busy'));
  if (decision.kind === 'duplicate') return answerAgain(ctx, decision.call);
  if (decision.kind === 'unavailable') return twiml(sayAndHangupTwiml(UNAVAILABLE_MESSAGE));
  return streamAnswer(ctx, decision.call);
}

/** Twilio's CallStatus values that end a call, and what each means for the call record. */
const FINAL: Record<string, Omit<CarrierEnd, 'metadata'>> = {
  // Answered and hung up: Twilio does not say by whom.
  completed: { status: 'ended', outcome: null },
  busy: { status: 'ended', outcome: 'call_did_not_connect' },
  'no-answer': { status: 'ended', outcome: 'human_unanswered' },
  canceled: { status: 'ended', outcome: 'call_did_not_connect' },
  failed: { status: 'error', outcome: 'call_did_not_connect', error: 'the carrier could not connect the call (Twilio status failed)' },
};

export async function twilioStatus(ctx: TelephonyContext, req: WebhookRequest): Promise<WebhookReply> {
  const w = await callWebhook(ctx, req, { status: 204, body: '' }); // unknown: e.g. rejected before it was recorded
  if ('reply' in w) return w.reply;
  const { params, call } = w;
  const { calls, db } = ctx.store;
  const status = params.CallStatus ?? '';
  const metadata = { ...(call.telephonyMetadata ?? { type: 'telephony_metadata_twilio' }), call_sid: params.CallSid ?? call.telephonyId, call_status: status };
  const final = FINAL[status];
  if (final) {
    await finishFromCarrier(ctx, call, { ...final, metadata });
  } else if (status === 'in-progress') {
    await calls.advance(db, call.id, { status: 'in_progress', startTime: call.startTime ?? new Date(), telephonyMetadata: metadata, telephonyId: call.telephonyId ?? params.CallSid });
  } else {
    await calls.advance(db, call.id, { telephonyMetadata: metadata, telephonyId: call.telephonyId ?? params.CallSid });
  }
  return { status: 204, body: '' };
}

/** AnsweredBy values of Twilio's answering-machine detection. */
function answeredBy(v: string | undefined): 'human' | 'machine' | 'machine_end' | null {
  if (v === 'human') return 'human';
  if (v === 'machine_start' || v === 'fax') return 'machine';
  if (v?.startsWith('machine_end')) return 'machine_end';
  return null; // unknown: no verdict
}

export async function twilioAmd(ctx: TelephonyContext, req: WebhookRequest): Promise<WebhookReply> {
  const w = await callWebhook(ctx, req);
  if ('reply' in w) return w.reply;
  const { params, call, account } = w;
  const verdict = answeredBy(params.AnsweredBy);
  await ctx.store.calls.mergeInternal(ctx.store.db, call.id, {
    amd: { answered_by: params.AnsweredBy ?? null, machine_detection_duration_ms: params.MachineDetectionDuration ? Number(params.MachineDetectionDuration) : null },
  });
  const sid = call.telephonyId ?? params.CallSid;
  if (verdict) {
    await carrierVerdict(ctx, call, verdict, async () => {
      if (!sid) throw new Error('no CallSid to hang up');
      await account.rest.endCall(sid, 'completed');
    });
  }
  return { status: 204, body: '' };
}

export async function twilioDial(ctx: TelephonyContext, req: WebhookRequest): Promise<WebhookReply> {
  const w = await callWebhook(ctx, req);
  if ('reply' in w) return w.reply;
  const { params, call } = w;
  // After a warm transfer's conference the Dial says nothing about the human (it is `completed` either
  // way): the participant's own callbacks decide the outcome, this only ends the caller's side.
  if (queryParam(req, 'conference') !== null) return twiml(hangupTwiml());
  const s = params.DialCallStatus ?? '';
  if (s === 'completed' || s === 'answered') {
    await ctx.store.calls.advance(ctx.store.db, call.id, { stage: 'transfer_successful' });
  } else {
    await ctx.store.calls.advance(ctx.store.db, call.id, { stageOutcome: 'transfer_unanswered' });
  }
  return twiml(hangupTwiml());
}

/** A caller left on hold longer than this, with nobody arriving, is told so and hung up on. */
export const HOLD_LIMIT_MS = 5 * 60_000;
const HOLD_GIVE_UP = 'Sorry, nobody is available to take your call right now. Please try again later. Goodbye.';

/** Nobody is coming for a caller on hold: record it, and tell them so and let them go (a new TwiML takes them out of the conference). */
async function giveUpWaiting(ctx: TelephonyContext, account: TwilioCarrierAccount, call: CallRow): Promise<void> {
  await ctx.store.calls.advance(ctx.store.db, call.id, { stageOutcome: 'transfer_unanswered' });
  if (!call.telephonyId || isCallOver(call)) return;
  await account.rest.redirect(call.telephonyId, sayAndHangupTwiml(HOLD_GIVE_UP)).catch((err: unknown) => {
    // The caller may have hung up meanwhile: nothing to move.
    ctx.log.info({ err: (err as Error).message, callId: call.id }, 'could not let a waiting caller go');
  });
}

export async function twilioHold(ctx: TelephonyContext, req: WebhookRequest): Promise<WebhookReply> {
  const w = await callWebhook(ctx, req);
  if ('reply' in w) return w.reply;
  const { call, account } = w;
  const since = Number(queryParam(req, 'since'));
  if (Number.isFinite(since) && Date.now() - since > HOLD_LIMIT_MS) {
    // A wait URL cannot hang up: the call is moved to new TwiML instead.
    await giveUpWaiting(ctx, account, call);
    return twiml(holdTwiml({ pauseSec: 5 }));
  }
  // One round of hold audio; Twilio requests the wait URL again when it ends. (The agent has already said
  // the action's hold message.)
  return twiml(holdTwiml({ musicUrl: ctx.config.TWILIO_HOLD_MUSIC_URL }));
}

/** The human's call states that mean they will never join. */
const NOT_REACHED = new Set(['busy', 'no-answer', 'failed', 'canceled']);

export async function twilioParticipant(ctx: TelephonyContext, req: WebhookRequest): Promise<WebhookReply> {
  const w = await callWebhook(ctx, req);
  if ('reply' in w) return w.reply;
  const { params, call, account } = w;
  const status = params.CallStatus ?? '';
  const { calls, db } = ctx.store;
  if (isCallOver(call) && params.CallSid && ['initiated', 'ringing', 'in-progress'].includes(status)) {
    // The caller gave up waiting: Twilio would still connect the human, alone, to a fresh conference.
    await account.rest.endCall(params.CallSid, status === 'in-progress' ? 'completed' : 'canceled').catch((err: unknown) => {
      ctx.log.info({ err: (err as Error).message, callId: call.id }, 'could not stop the human of an abandoned warm transfer');
    });
    return { status: 204, body: '' };
  }
  if (status === 'in-progress' || status === 'answered') {
    await calls.advance(db, call.id, { stage: 'transfer_successful' });
  } else if (NOT_REACHED.has(status) || (status === 'completed' && call.stage !== 'transfer_successful')) {
    await giveUpWaiting(ctx, account, call);
  }
  return { status: 204, body: '' };
}
