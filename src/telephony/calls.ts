/**
 * Phone calls at the carrier: placing an outbound call (`POST /v1/calls/create`), ending one
 * (`POST /v1/calls/end`), and the REST-side controls of a live call (hang-up, transfer) the engine's
 * transport actions use.
 */
import { CreateCallRequest, DEFAULT_CALL_VOICE } from '../domain/calls.js';
import { AppError, ValidationError } from '../domain/errors.js';
import { resolveAgentProviders } from '../providers/index.js';
import { isCallOver, type CallRow } from '../store/calls.js';
import type { Db } from '../store/db.js';
import type { z } from '../domain/common.js';
import { requireWebhookKey, type CarrierAccount, type TwilioCarrierAccount } from './accounts.js';
import { carrierToAppError, type TelephonyContext } from './context.js';
import type { Seat } from './admission.js';
import { conferenceTwiml, dialTwiml } from './twilio/webhooks.js';
import { placeTelnyxCall, telnyxClient } from './telnyx/carrier.js';
import { CarrierError, type CallControl } from './types.js';

type Json = Record<string, unknown>;
type CreateCall = z.infer<typeof CreateCallRequest>;

/** How long an outbound call rings before it counts as unanswered (Twilio's default is 60 s). */
export const RING_TIMEOUT_SEC = 45;

/** Checks the agent's providers can be reached; the reason when not (it names the missing connection type). */
export async function providerProblem(ctx: TelephonyContext, userId: string, agentId: string): Promise<string | null> {
  try {
    const agent = await ctx.store.agents.getForCall(ctx.store.db, userId, agentId);
    const p = await resolveAgentProviders(agent, { lookup: ctx.store.connectionLookup(userId), env: ctx.config.env });
    await p.dispose();
    return null;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

/** The carrier account and caller id an outbound call uses; the account must be able to verify the call's webhooks. */
async function callerFor(ctx: TelephonyContext, db: Db, userId: string, body: CreateCall): Promise<{ account: CarrierAccount; connectionId: string | null }> {
  const found = await callerAccount(ctx, db, userId, body);
  requireWebhookKey(found.account, ['body', found.connectionId ? 'telephony_account_connection' : 'from_number']);
  return found;
}

async function callerAccount(ctx: TelephonyContext, db: Db, userId: string, body: CreateCall): Promise<{ account: CarrierAccount; connectionId: string | null }> {
  const number = await ctx.store.numbers.find(db, userId, body.from_number);
  if (number) {
    if (!number.active) throw ValidationError.one(['body', 'from_number'], `${body.from_number} is cancelled; it cannot place calls`);
    if (body.telephony_account_connection && body.telephony_account_connection !== number.telephonyAccountConnectionId) {
      throw ValidationError.one(['body', 'telephony_account_connection'], `${body.from_number} belongs to another account connection`);
    }
    try {
      return { account: await ctx.accountOf(number), connectionId: number.telephonyAccountConnectionId };
    } catch (err) {
      throw ValidationError.one(['body', 'from_number'], (err as Error).message);
    }
  }
  // Not one of the user's numbers: allowed only through an account that may use any caller id.
  const id = body.telephony_account_connection;
  if (id) {
    const account = await ctx.accountFor(userId, id, 'twilio', ['body', 'telephony_account_connection']);
    if (!account.anyCallerId) {
      throw ValidationError.one(['body', 'from_number'], `${body.from_number} is not one of your numbers, and account connection ${id} does not have account_supports_any_caller_id`);
    }
    return { account, connectionId: id };
  }
  for (const type of ['account_connection_twilio', 'account_connection_telnyx']) {
    const conn = await ctx.store.connectionLookup(userId).latestOfType(type) as Json | null;
    if (conn?.account_supports_any_caller_id === true) {
      return { account: await ctx.accountFor(userId, conn.id as string, 'twilio', ['body', 'from_number']), connectionId: conn.id as string };
    }
  }
  throw ValidationError.one(['body', 'from_number'], `${body.from_number} is not one of your numbers (buy or link it first, or use an account connection with account_supports_any_caller_id)`);
}

/**
 * Places an outbound call: the call is recorded first (status not_started), then the carrier is asked to
 * dial. A call whose providers cannot be reached is recorded as an error without dialling anyone.
 */
export async function createOutboundCall(ctx: TelephonyContext, userId: string, body: CreateCall): Promise<CallRow> {
  const { store } = ctx;
  // A reference to something that does not exist is a 404 before anything else is judged. (Should it go
  // meanwhile, the call's agent snapshot, read in the transaction, finds that out.)
  const storedAgentId = typeof body.agent === 'string' ? (await store.agents.get(store.db, userId, body.agent)).id : null;
  // Outside the transaction: the account lookups read through the store's own handle.
  const { account, connectionId } = await callerFor(ctx, store.db, userId, body);
  // Past the node's call limit nothing is recorded or dialled (checked once the inline agent is valid, in
  // the transaction that would record it): the client may retry, on another node.
  let seat: Seat | undefined;
  let call: CallRow;
  try {
    call = await store.tx(async (db) => {
      const agentId = storedAgentId
        ?? (await store.agents.insert(db, userId, { voice: DEFAULT_CALL_VOICE, ...(body.agent as Json) }, ['body', 'agent'])).id;
      const taken = ctx.admission.reserve();
      if (typeof taken === 'string') throw new AppError(503, taken);
      seat = taken;
      return store.calls.insert(db, userId, {
        agentId, status: 'not_started', stage: 'created', toNumber: body.to_number, fromNumber: body.from_number,
        agentPhoneNumber: body.from_number, telephonyProvider: account.provider, telephonyAccountConnectionId: connectionId,
        isOutgoing: true, onNoHumanAnswer: body.on_no_human_answer ?? 'continue', runDoNotCallDetection: body.run_do_not_call_detection ?? null,
        hipaaCompliant: body.hipaa_compliant ?? false, context: body.context ?? null, telephonyParams: body.telephony_params ?? null,
        label: body.label ?? null, description: body.description ?? null,
      });
    });
  } catch (err) {
    seat?.release();
    throw err;
  }

  const problem = await providerProblem(ctx, userId, call.agentId!).catch((err: unknown) => { seat!.release(); throw err; });
  if (problem) {
    seat!.release();
    return (await store.calls.finish(store.db, call.id, { status: 'error', errorMessage: problem, stageOutcome: 'call_did_not_connect', errors: [problem] }))!;
  }
  seat!.admit(call.id);

  try {
    let row: CallRow;
    if (account.provider === 'telnyx') {
      const id = await placeTelnyxCall(ctx, account, call, RING_TIMEOUT_SEC);
      row = await store.calls.setTelephony(store.db, call.id, id, { type: 'telephony_metadata_telnyx', call_control_id: id, call_status: 'initiated' });
    } else {
      const placed = await account.rest.placeCall({
      to: body.to_number, from: body.from_number,
      url: ctx.url(`/telephony/twilio/voice?call_id=${call.id}`),
      statusCallback: ctx.url(`/telephony/twilio/status?call_id=${call.id}`),
      machineDetection: true, amdCallback: ctx.url(`/telephony/twilio/amd?call_id=${call.id}`),
        timeoutSec: RING_TIMEOUT_SEC,
      });
      row = await store.calls.setTelephony(store.db, call.id, placed.sid, { type: 'telephony_metadata_twilio', call_sid: placed.sid, call_status: placed.status });
    }
    // Ended while it was being placed (calls/end): the carrier must not ring anyone.
    if (row.status === 'ended' && row.mediaConnectedAt === null && row.stageOutcome === 'call_did_not_connect') {
      await hangupAtCarrier(ctx, row, false).catch(() => {});
    }
    return row;
  } catch (err) {
    ctx.admission.release(call.id);
    const message = err instanceof Error ? err.message : String(err);
    await store.calls.finish(store.db, call.id, { status: 'error', errorMessage: message, stageOutcome: 'call_did_not_connect', errors: [message] });
    throw carrierToAppError(err, {
      connectionLoc: ['body', 'telephony_account_connection'], numberLoc: ['body', 'to_number'], prefix: `call ${call.id} could not be placed`,
    });
  }
}

/**
 * Ends a call: through the conversation if this node runs it, else at the carrier (which ends the media
 * stream on whichever node has it). The answer is the call as ended.
 */
export async function endCall(ctx: TelephonyContext, userId: string, id: string): Promise<CallRow> {
  const { store } = ctx;
  const call = await store.calls.get(store.db, userId, id);
  if (isCallOver(call)) return call;
  const live = ctx.live.get(id);
  if (live) {
    await live.end();
    return store.calls.get(store.db, userId, id);
  }
  const answered = call.mediaConnectedAt !== null || call.status === 'in_progress';
  if (call.telephonyId) {
    try {
      await hangupAtCarrier(ctx, call, answered);
    } catch (err) {
      // A call the carrier no longer knows is over anyway.
      if (!(err instanceof CarrierError && err.kind === 'not_found')) {
        throw carrierToAppError(err, { connectionLoc: ['query', 'id'], prefix: `call ${id} could not be ended at the carrier` });
      }
    }
  }
  return (await store.calls.finish(store.db, id, { status: 'ended', stageOutcome: answered ? 'bot_disconnected' : 'call_did_not_connect' }))!;
}

async function hangupAtCarrier(ctx: TelephonyContext, call: CallRow, answered: boolean): Promise<void> {
  const account = await ctx.accountOf(call);
  if (account.provider === 'twilio') await account.rest.endCall(call.telephonyId!, answered ? 'completed' : 'canceled');
  else await telnyxClient(account).hangup(call.telephonyId!);
}

/** How long Twilio rings the human of a warm transfer before giving up. */
const TRANSFER_RING_SEC = 30;

/** The REST-side controls of a live Twilio call. */
export function twilioControl(ctx: TelephonyContext, account: TwilioCarrierAccount, call: CallRow): CallControl {
  const sid = call.telephonyId!;
  const ourNumber = call.isOutgoing ? call.fromNumber : call.toNumber;
  // Hold on Twilio is a conference of the call's own: the caller waits in it, hearing the hold audio, until
  // the human dialled into it arrives. A media stream cannot be in a conference, so the agent leaves.
  const conference = `sb-${call.id}`;
  let onHold = false;
  const hold = async (): Promise<void> => {
    if (onHold) return;
    await account.rest.redirect(sid, conferenceTwiml(conference, {
      waitUrl: ctx.url(`/telephony/twilio/hold?call_id=${call.id}&since=${Date.now()}`),
      action: ctx.url(`/telephony/twilio/dial?call_id=${call.id}&conference=1`),
    }));
    onHold = true;
  };
  return {
    hangup: async () => {
      try {
        await account.rest.endCall(sid, 'completed');
      } catch (err) {
        if (!(err instanceof CarrierError && err.kind === 'not_found')) throw err;
      }
    },
    transfer: async (to) => {
      // The caller leaves the stream for the dialled number; the Dial's action reports how that went.
      await account.rest.redirect(sid, dialTwiml(to, { callerId: ourNumber, action: ctx.url(`/telephony/twilio/dial?call_id=${call.id}`) }));
      return 'handed_off';
    },
    setHold: async (on) => {
      if (!on) throw new Error('on Twilio a caller on hold waits for the human added to the call; the agent has left and cannot take them off hold');
      await hold();
      return 'handed_off';
    },
    addToConference: async (to, { placePrimaryOnHold }) => {
      if (!placePrimaryOnHold) {
        throw new Error('on Twilio the agent cannot stay on the line with the human in this version; set place_primary_on_hold (the caller waits on hold while the human is dialled, then talks to them)');
      }
      await hold();
      await account.rest.addParticipant(conference, {
        from: ourNumber, to, timeoutSec: TRANSFER_RING_SEC,
        statusCallback: ctx.url(`/telephony/twilio/participant?call_id=${call.id}`),
      });
      return 'handed_off';
    },
  };
}
