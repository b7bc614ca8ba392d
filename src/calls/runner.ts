/**
 * Runs one call on this node, from the moment its media stream starts: the stored agent and its providers,
 * the engine over the carrier's media transport, and the call record kept true as the call goes (status,
 * transcript, action history, errors, human and do-not-call detection) until it is written as ended.
 */
import type { Config } from '../config.js';
import { createActionRunner } from '../engine/actions/index.js';
import {
  engineAgentFromStored, RealClock, startConversation, type Conversation, type EndReason, type HandOff, type StoredAgent, type TurnMetrics,
} from '../engine/index.js';
import { createVad, type VoiceActivityDetector } from '../engine/vad/index.js';
import type { Logger } from '../log.js';
import { resolveAgentProviders, type AgentProviders } from '../providers/index.js';
import type { CallRow } from '../store/calls.js';
import type { Store } from '../store/store.js';
import type { MediaStreamTransport } from '../telephony/mediaStream.js';
import type { CallControl } from '../telephony/types.js';
import { engineActions } from './agentSetup.js';
import { userUrlFetch } from './userUrls.js';
import { isDoNotCallRequest, soundsLikeHuman, soundsLikeMachine } from './detection.js';
import type { LiveCalls } from './liveCalls.js';
import type { CallMetrics } from './metrics.js';

type Json = Record<string, unknown>;

export interface RunnerDeps {
  store: Store;
  config: Config;
  log: Logger;
  live: LiveCalls;
  metrics?: CallMetrics;
}

/** Said before the agent hangs up on someone who asked not to be called again. */
export const DO_NOT_CALL_GOODBYE = "Understood. I'll make sure you're not contacted again. Goodbye.";
/** How often the transcript is written while the call goes on (a GET /v1/calls shows it live). */
const TRANSCRIPT_WRITE_MS = 500;
const MAX_ERRORS = 50;

/** (After a hand-off the carrier's events end the record: `handed_off` has no outcome of ours.) */
const OUTCOME: Record<EndReason, string | null> = {
  caller_hangup: 'human_disconnected', agent_ended: 'bot_disconnected', handed_off: null, idle: 'bot_disconnected',
  max_duration: 'bot_disconnected', api: 'bot_disconnected', error: null,
};

/** A human-readable reason for a provider resolution failure (MissingCredentialError, UnsupportedProviderError…). */
function reasonOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export async function runCall(deps: RunnerDeps, call: CallRow, transport: MediaStreamTransport, control: CallControl): Promise<void> {
  const { store, log } = deps;
  const clog = log.child({ call_id: call.id });
  const errors = [...call.errors];
  const addError = (msg: string) => { if (!errors.includes(msg) && errors.length < MAX_ERRORS) errors.push(msg); };
  /** The call cannot go on: its record says why, and the caller is hung up on. */
  const fail = async (message: string): Promise<void> => {
    addError(message);
    await store.calls.finish(store.db, call.id, { status: 'error', errorMessage: message, errors })
      .catch((err: unknown) => clog.warn({ err }, 'could not record the call as failed'));
    await transport.hangup().catch(() => {});
  };

  // The call is live on this node from its first moment: calls/end, shutdown and the carrier's answering-
  // machine verdicts reach it even while its providers are still being set up.
  let conv: Conversation | undefined;
  let endRequested = false;
  const pendingVerdicts: ('human' | 'machine' | 'machine_end')[] = [];
  let onVerdict: ((v: 'human' | 'machine' | 'machine_end') => void) | undefined;
  let resolveFinished!: () => void;
  const finished = new Promise<void>((r) => { resolveFinished = r; });
  deps.live.add({
    callId: call.id, userId: call.userId, finished,
    end: async () => {
      endRequested = true;
      if (conv) await conv.end('api');
      await finished;
    },
    machineDetected: (v) => { if (onVerdict) onVerdict(v); else pendingVerdicts.push(v); },
  });

  // ---- stages the carrier's REST API moves through (recorded as they happen) ----
  let stage = call.stage;
  let transferred = false;
  // The caller left the agent for a human (a transfer, Twilio's hold, a warm transfer's dial): the carrier's
  // events end the record, and the stream closing is not the caller hanging up. The action that did it says
  // so to the conversation, which ends itself once its reply has played.
  const handOff = async (r: HandOff): Promise<HandOff> => {
    if (r === 'handed_off' && !transferred) {
      transferred = true;
      stage = 'transfer_started';
      await store.calls.advance(store.db, call.id, { stage });
    }
    return r;
  };
  transport.control = {
    // Once the caller is with someone else, ending our side must not hang up their call.
    hangup: async () => { if (!transferred) await control.hangup(); },
    transfer: async (to) => handOff(await control.transfer(to)),
    setHold: async (on) => handOff(await control.setHold(on)),
    addToConference: async (to, opts) => handOff(await control.addToConference(to, opts)),
    ...(control.sendDtmf ? { sendDtmf: (d: string) => control.sendDtmf!(d) } : {}),
  };

  let providers: AgentProviders | undefined;
  try {
    // ---- the agent and its providers ----
    let agent: Json;
    try {
      agent = call.agentId ? await store.agents.getForCall(store.db, call.userId, call.agentId) : call.agentSnapshot;
      providers = await resolveAgentProviders(agent, { lookup: store.connectionLookup(call.userId), env: deps.config.env });
    } catch (err) {
      clog.warn({ err: reasonOf(err) }, 'call cannot start');
      await fail(reasonOf(err));
      return;
    }
    providers.preconnect({ sampleRate: transport.sampleRate, language: (agent.language as string | undefined) ?? 'en' });

    const actionHistory: Json[] = [...call.actionHistory];
    const clock = new RealClock();
    const actions = createActionRunner({
      actions: engineActions(agent.actions), transport, callId: call.id, variables: call.context ?? {},
      fetch: userUrlFetch(deps.config.SWITCHBOARD_ALLOW_PRIVATE_URLS),
      onHistory: (entry) => { actionHistory.push(entry as unknown as Json); scheduleWrite(); },
    });
    const engineAgent = engineAgentFromStored(agent as StoredAgent, { tools: actions.tools });
    let vad: VoiceActivityDetector | undefined;
    try {
      vad = await createVad(deps.config.SWITCHBOARD_VAD === 'energy'
        ? { kind: 'energy', sampleRate: transport.sampleRate }
        : { kind: 'silero', sampleRate: transport.sampleRate, logger: clog, thread: deps.config.SWITCHBOARD_VAD_THREAD });
    } catch (err) {
      addError(`voice activity detection unavailable: ${reasonOf(err)}`);
    }

    let c: Conversation;
    try {
      c = await startConversation({
        agent: engineAgent, variables: call.context ?? {}, transport,
        stt: providers.stt, llm: providers.llm, tts: providers.tts, clock, vad, actions,
        onAudioLate: deps.metrics ? () => { deps.metrics!.media.lateOut++; } : undefined,
      });
    } catch (err) {
      await fail(`the call could not start: ${reasonOf(err)}`);
      return;
    }
    conv = c;

    // ---- the call is live ----
    const startedAt = Date.now();
    await store.calls.advance(store.db, call.id, {
      status: 'in_progress', stage: stage === 'created' || !stage ? 'picked_up' : stage, startTime: call.startTime ?? new Date(startedAt),
    });
    if (!stage || stage === 'created') stage = 'picked_up';

    const runDnc = call.runDoNotCallDetection ?? (agent.run_do_not_call_detection as boolean | undefined) ?? false;
    let doNotCall: boolean | null = null;
    let human: 'human' | 'no_human' | null = call.humanDetectionResult as 'human' | 'no_human' | null;
    const voicemail = (agent.voicemail_message as string | null | undefined) ?? null;
    const onNoHuman = call.onNoHumanAnswer ?? 'continue';
    let voicemailLeft = false;
    const turns: TurnMetrics[] = [];

    /** The first verdict stands (the carrier's usually comes first); only outbound calls are judged. */
    const detectHuman = async (result: 'human' | 'no_human', source: string) => {
      if (human !== null || !call.isOutgoing) return;
      human = result;
      await store.calls.advance(store.db, call.id, { humanDetectionResult: result });
      clog.info({ result, source }, 'human detection');
      if (result === 'no_human' && onNoHuman === 'hangup') {
        await store.calls.finish(store.db, call.id, { status: 'ended', stageOutcome: 'human_unanswered' });
        void c.end('agent_ended');
      }
    };
    /** After a machine's greeting (its beep), the voicemail message, if the agent has one, and goodbye. */
    const leaveVoicemail = () => {
      if (voicemailLeft || !voicemail || onNoHuman !== 'continue' || !call.isOutgoing || human !== 'no_human') return;
      voicemailLeft = true;
      void c.say(voicemail, { endCall: true });
    };
    onVerdict = (v) => {
      if (v === 'human') void detectHuman('human', 'carrier');
      else if (v === 'machine') void detectHuman('no_human', 'carrier');
      else void detectHuman('no_human', 'carrier').then(leaveVoicemail); // the beep: the machine records now
    };
    for (const v of pendingVerdicts.splice(0)) onVerdict(v);

    let writeTimer: NodeJS.Timeout | undefined;
    let writing: Promise<unknown> = Promise.resolve();
    function scheduleWrite(): void {
      if (writeTimer || !conv) return;
      writeTimer = setTimeout(() => {
        writeTimer = undefined;
        writing = writing.then(() => store.calls.record(store.db, call.id, {
          transcript: c.transcript.toString(), actionHistory, errors,
        })).catch((err) => clog.warn({ err }, 'could not write the live transcript'));
      }, TRANSCRIPT_WRITE_MS);
    }

    let firstHumanLine = true;
    c.on((e) => {
      switch (e.type) {
        case 'transcript': {
          scheduleWrite();
          if (e.line.sender !== 'HUMAN') break;
          const text = e.line.text;
          if (firstHumanLine) {
            firstHumanLine = false;
            if (soundsLikeMachine(text)) void detectHuman('no_human', 'transcript').then(leaveVoicemail);
            else if (soundsLikeHuman(text)) void detectHuman('human', 'transcript');
          }
          if (runDnc && doNotCall !== true && isDoNotCallRequest(text)) {
            doNotCall = true;
            void store.calls.advance(store.db, call.id, { doNotCallResult: true });
            void c.say(DO_NOT_CALL_GOODBYE, { endCall: true });
          }
          break;
        }
        case 'error':
          addError(`${e.stage}: ${e.error.message}`);
          scheduleWrite();
          break;
        case 'metrics':
          turns.push(e.metrics);
          deps.metrics?.turnMeasured(e.metrics);
          break;
        default:
          break;
      }
    });
    if (endRequested) void c.end('api');

    // ---- the end ----
    const reason = await c.done;
    clearTimeout(writeTimer);
    await writing;
    const rel = (ms?: number) => (ms === undefined ? undefined : Math.round(ms - startedAt));
    const internal = {
      end_reason: reason,
      turns: turns.map((m) => ({
        turn: m.turn, speech_end_ms: rel(m.speechEndMs), stt_final_ms: rel(m.sttFinalMs), endpoint_ms: rel(m.endpointMs),
        llm_first_token_ms: rel(m.llmFirstTokenMs), tts_first_audio_ms: rel(m.ttsFirstAudioMs), first_frame_sent_ms: rel(m.firstFrameSentMs),
        interrupted_at_ms: rel(m.interruptedAtMs),
      })),
      media: transport.stats,
      providers: providers.summary,
    };
    const record = { transcript: c.transcript.toString(), actionHistory, errors, internal };
    if (runDnc && doNotCall === null) await store.calls.advance(store.db, call.id, { doNotCallResult: false });
    if (transferred) {
      // The caller is with the human now: the carrier's events end the call record.
      await store.calls.record(store.db, call.id, record);
      deps.metrics?.callEnded(call.telephonyProvider, 'transferred', stage);
    } else {
      const row = await store.calls.finish(store.db, call.id, {
        status: reason === 'error' ? 'error' : 'ended', stageOutcome: OUTCOME[reason], ...record,
      });
      deps.metrics?.callEnded(call.telephonyProvider, row?.status ?? 'ended', row?.stageOutcome ?? null);
    }
  } catch (err) {
    clog.error({ err }, 'the call failed');
    await fail(`the call failed: ${reasonOf(err)}`);
  } finally {
    await providers?.dispose().catch(() => {});
    transport.close();
    resolveFinished();
  }
}
