/**
 * What a carrier's word about a call does to its record, the same for every carrier: the call ended (Twilio's
 * final status callback, Telnyx's call.hangup) and the answering machine's verdict. Both defer to the call's
 * conversation when one runs it, on this node or another: it knows who hung up, and what to do about a machine.
 */
import type { Verdict } from '../calls/bus.js';
import { isCallOver, type CallRow } from '../store/calls.js';
import type { TelephonyContext } from './context.js';

type Json = Record<string, unknown>;

/** How long the carrier's end of a call waits for its conversation to record its own end. */
export const CONVERSATION_END_GRACE_MS = 3000;
/** How often a conversation on another node is looked for in the call's record meanwhile. */
const RECORD_POLL_MS = 100;

/** The conversation passed the caller on (a transfer, or on hold for a human): the carrier's events end the record. */
const handedOff = (call: CallRow): boolean => call.stage === 'transfer_started' || call.stage === 'transfer_successful';

/**
 * Whether a conversation runs the call on some node: its media stream connected (a stream lands on exactly one
 * node, which runs the conversation), and the record is neither over nor handed off.
 */
function conversationRuns(call: CallRow): boolean {
  return call.mediaConnectedAt !== null && !isCallOver(call) && !handedOff(call);
}

/**
 * The carrier's answering-machine verdict: to the conversation if one runs the call (here, or over the call
 * bus to the node that holds its stream), which applies it as it sees fit (the first verdict stands, a machine
 * gets the voicemail). Only when none does is it applied here: recorded, and a machine hung up on if the call
 * asks for that.
 */
export async function carrierVerdict(ctx: TelephonyContext, call: CallRow, verdict: Verdict, hangup: () => Promise<unknown>): Promise<void> {
  const { calls, db } = ctx.store;
  // The stream may have connected since the webhook read the call.
  const now = (await calls.findById(db, call.id)) ?? call;
  if (ctx.live.get(call.id) || conversationRuns(now)) {
    const where = await ctx.bus.machineDetected(call.id, verdict);
    // Sent over NOTIFY, which a reconnecting listener can miss: the verdict goes on the record too (unless
    // one is there already); acting on it stays the conversation's.
    if (where === 'sent') await calls.noteHumanDetection(db, call.id, verdict === 'human' ? 'human' : 'no_human');
    return;
  }
  const human = verdict === 'human' ? 'human' : 'no_human';
  await calls.noteHumanDetection(db, call.id, human);
  // (A caller already passed on to a human is not hung up on, as the conversation would not.)
  if (human === 'no_human' && now.onNoHumanAnswer === 'hangup' && !isCallOver(now) && !handedOff(now)) {
    try {
      await hangup();
    } catch (err) {
      // Gone already at the carrier: as good as hung up. Otherwise it is still up there, and the carrier's own
      // end of the call will end the record.
      if ((err as { kind?: string }).kind !== 'not_found') {
        ctx.log.warn({ err: (err as Error).message, callId: call.id }, 'could not hang up on a machine');
        return;
      }
    }
    await calls.finish(db, call.id, { status: 'ended', stageOutcome: 'human_unanswered' });
  }
}

/** The carrier's account of how a call ended. */
export interface CarrierEnd {
  status: 'ended' | 'error';
  /**
   * The carrier's own verdict (busy, unanswered, could not connect); null for an answered call that was hung
   * up, where who hung up decides.
   */
  outcome: string | null;
  error?: string;
  /** The far party hung up (true) or our side did (false), where the carrier says (Telnyx); Twilio does not. */
  remote?: boolean;
  /** The call's telephony_metadata from now on. */
  metadata: Json;
}

/**
 * Ends a call's record as its carrier reports. An answered call whose conversation runs gets a moment
 * (CONVERSATION_END_GRACE_MS) to record who hung up itself, so the record is not read as ended without its
 * outcome; the status and end time are written here in any case (the conversation may never get to it).
 */
export async function finishFromCarrier(ctx: TelephonyContext, call: CallRow, end: CarrierEnd): Promise<void> {
  const { calls, db } = ctx.store;
  let outcome = end.outcome;
  if (outcome === null) {
    if (call.mediaConnectedAt) outcome = await conversationOutcome(ctx, call, end.remote);
    else outcome = call.status === 'in_progress' ? 'human_disconnected' : 'call_did_not_connect';
  }
  await calls.finish(db, call.id, {
    status: end.status, stageOutcome: outcome,
    errorMessage: end.error ?? null, ...(end.error ? { errors: [...call.errors, end.error] } : {}),
  });
  await calls.setTelephonyMetadata(db, call.id, end.metadata);
}

/**
 * The outcome to write for an answered call that had a conversation, null when it is not ours to write: a
 * conversation that records its end in time wrote it; one that lingers past the grace was left by the far
 * side (had the agent hung up it would have finished already), or by us if the carrier says so; after a
 * handoff only the carrier's word on who hung up counts.
 */
async function conversationOutcome(ctx: TelephonyContext, call: CallRow, remote: boolean | undefined): Promise<string | null> {
  if (ctx.live.get(call.id) || conversationRuns(call)) {
    if (await conversationEnds(ctx, call.id)) return null;
    return remote === false ? 'bot_disconnected' : 'human_disconnected';
  }
  return remote === true ? 'human_disconnected' : null;
}

/** Whether the call's conversation ends within the grace: here it says so; on another node its record shows it. */
async function conversationEnds(ctx: TelephonyContext, callId: string): Promise<boolean> {
  const live = ctx.live.get(callId);
  if (live) return settlesWithin(live.finished, CONVERSATION_END_GRACE_MS);
  const deadline = Date.now() + CONVERSATION_END_GRACE_MS;
  for (;;) {
    const row = await ctx.store.calls.findById(ctx.store.db, callId);
    if (!row || !conversationRuns(row)) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, RECORD_POLL_MS));
  }
}

function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.then(() => true, () => true),
    new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(false), ms); }),
  ]).finally(() => clearTimeout(timer));
}
