/**
 * Runs an agent's actions during a call: turns the function-call-triggered ones into tools for the
 * language model, executes tool calls against the transport (transfer, hold, DTMF, conference) or an
 * external webhook (Vocode's `action_external`), matches phrase-triggered actions against what the
 * agent said, and keeps the call's action history in Fluents' shape.
 *
 * speak_on_send (Vocode): the external action's tool gets a required `user_message` parameter, "a
 * message to reply to the user with BEFORE we make the function call". It is never sent to the
 * webhook. `describe(call).sayBeforeRun` returns it, so a conversation that wants Vocode's exact
 * behaviour speaks it and then calls `runTool`. (A conversation that ignores `describe` still runs the
 * action correctly; the filler line is just not spoken.) `describe` also reports a warm transfer's
 * `hold_message`, said before the caller is put on hold.
 *
 * Failures never throw: a bad argument, a missing placeholder value, a transport error, a webhook that
 * answers non-2xx, invalid JSON or nothing in time all become `{result: '{"error": ...}'}`, so the
 * model hears what went wrong and can tell the caller. The one exception is the caller's signal: when
 * it aborts (barge-in, hang-up) the pending run rejects with its reason, cancelling any request.
 *
 * A transfer, hold or conference that the transport says handed the caller off (`handed_off`) has the
 * outcome `handedOff`: the agent's part of the call is over, though the call itself goes on.
 *
 * `processing_mode: 'muted'` needs nothing here: the conversation does not speak while a tool runs.
 */
import { createHmac } from 'node:crypto';
import type { ToolOutcome } from '../conversation.js';
import type { HandOff, ToolCall, ToolSpec, TransportControls } from '../types.js';
import type { ActionHistoryEntry, ActionHistoryEventType, ActionHistoryResult, EngineAction } from './types.js';

export interface ActionRunnerOptions {
  actions: EngineAction[];
  /** Transfer, hold and conference answer whether they handed the caller off: the outcome says so (`handedOff`). */
  transport: TransportControls;
  /** Sent to external actions as `call_id`. */
  callId: string;
  /** The call's context: fills `{placeholder}` phone numbers. */
  variables?: Record<string, string>;
  /** Timestamps of history entries. */
  now?: () => Date;
  fetch?: typeof fetch;
  /** How long an external action's webhook may take to answer (default 10 s, as Vocode). */
  externalTimeoutMs?: number;
  onHistory?: (entry: ActionHistoryEntry) => void;
}

export interface ToolCallDescription {
  /** The action the call would run; undefined for an unknown tool name. */
  action?: EngineAction;
  /** A line to speak before `runTool`: an external action's `user_message` (speak_on_send) or a warm transfer's hold message. */
  sayBeforeRun?: string;
}

export interface ActionRunner {
  /** One tool per function-call-triggered action, in the order of `actions`. */
  readonly tools: ToolSpec[];
  runTool(call: ToolCall, signal: AbortSignal): Promise<ToolOutcome>;
  /** What a tool call would do, without doing it (see speak_on_send above). */
  describe(call: ToolCall): ToolCallDescription;
  /** The phrase-triggered actions one of whose phrases occurs in `spokenText` (case-insensitive). */
  phraseActions(spokenText: string): EngineAction[];
  runPhraseAction(action: EngineAction, signal: AbortSignal): Promise<ToolOutcome>;
  /** Every entry so far, oldest first (the same entries go to `onHistory`). */
  readonly history: ActionHistoryEntry[];
}

export const DEFAULT_EXTERNAL_TIMEOUT_MS = 10_000;

const TOOL_NAME_MAX = 64;
const DTMF_DIGITS = /^[0-9*#wW]+$/;
const USER_MESSAGE = 'user_message';

/** A failed run: what the model hears, and what the history records. */
class ActionFailure extends Error {
  constructor(message: string, readonly httpStatus?: number, readonly json?: unknown) {
    super(message);
  }
}

interface Done {
  outcome: ToolOutcome;
  json?: unknown;
  httpStatus?: number;
}

type Params = Record<string, unknown>;

/** An outcome, marked as handing the caller off when one of the transport's answers says so. */
function handingOff(outcome: ToolOutcome, ...answers: (HandOff | void)[]): ToolOutcome {
  return answers.includes('handed_off') ? { ...outcome, handedOff: true } : outcome;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

const emptyParams = (): Record<string, unknown> => ({ type: 'object', properties: {}, required: [] });

interface Builtin { name: string; description: string; parameters: () => Record<string, unknown> }

const BUILTINS: Record<string, Builtin> = {
  action_end_conversation: {
    name: 'end_conversation',
    description: 'End the call. Use it once the conversation is over, after saying goodbye.',
    parameters: emptyParams,
  },
  action_transfer_call: {
    name: 'transfer_call',
    description: 'Transfer the caller to a human. Use it when the caller asks for a person or when you cannot help further.',
    parameters: emptyParams,
  },
  action_dtmf: {
    name: 'send_dtmf',
    description: 'Press keys on the phone keypad (DTMF), for example to navigate a phone menu.',
    parameters: () => ({
      type: 'object',
      properties: {
        digits: {
          type: 'string',
          pattern: '^[0-9*#wW]+$',
          description: 'The keys to press, in order: 0-9, * and #. "w" waits half a second, "W" one second.',
        },
      },
      required: ['digits'],
    }),
  },
  action_set_hold: {
    name: 'set_hold',
    description: 'Put the caller on hold.',
    parameters: emptyParams,
  },
  action_add_to_conference: {
    name: 'add_to_conference',
    description: 'Bring a human into this call as a three-way conference.',
    parameters: emptyParams,
  },
  action_warm_transfer: {
    name: 'warm_transfer',
    description: 'Hand the caller over to a human: put the caller on hold, bring the human into the call, then leave.',
    parameters: emptyParams,
  },
};

/** Actions that can move the caller away from the agent's audio. */
const HANDS_OFF = new Set(['action_transfer_call', 'action_warm_transfer', 'action_set_hold', 'action_add_to_conference']);

/** Whether running this action may take the caller off the media stream (a carrier may redirect the call). */
export function handsOffCaller(action: Pick<EngineAction, 'type'>): boolean {
  return HANDS_OFF.has(action.type);
}

function sanitizeToolName(name: string): string {
  return name.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, TOOL_NAME_MAX);
}

function baseToolName(action: EngineAction): string | undefined {
  if (action.type === 'action_external') {
    const name = typeof action.config.name === 'string' ? sanitizeToolName(action.config.name.trim()) : '';
    return name || 'external_action';
  }
  return BUILTINS[action.type]?.name;
}

/**
 * Tool names for the function-call actions, by index in `actions`. The first action with a given name
 * keeps it; later ones get `_2`, `_3`, ... (skipping names another action already has), so names
 * depend only on the order of `actions`.
 */
function assignToolNames(actions: EngineAction[]): Map<number, string> {
  const bases = new Map<number, string>();
  actions.forEach((a, i) => {
    if (a.trigger.type !== 'action_trigger_function_call') return;
    const base = baseToolName(a);
    if (base) bases.set(i, base);
  });
  const taken = new Set<string>();
  const names = new Map<number, string>();
  for (const [i, base] of bases) {
    if (!taken.has(base)) { taken.add(base); names.set(i, base); }
  }
  for (const [i, base] of bases) {
    if (names.has(i)) continue;
    for (let n = 2; ; n++) {
      const suffix = `_${n}`;
      const name = base.slice(0, TOOL_NAME_MAX - suffix.length) + suffix;
      if (!taken.has(name)) { taken.add(name); names.set(i, name); break; }
    }
  }
  return names;
}

/** The external action's input schema as an object schema (Vocode stores it as a JSON string; Switchboard as an object). */
function externalSchema(config: Record<string, unknown>): Record<string, unknown> {
  let schema: unknown = config.input_schema;
  if (typeof schema === 'string') {
    try { schema = JSON.parse(schema); } catch { schema = undefined; }
  }
  const base = isObject(schema) ? schema : {};
  const out: Record<string, unknown> = { ...base, type: base.type ?? 'object', properties: isObject(base.properties) ? { ...base.properties } : {} };
  if (config.speak_on_send === true) {
    (out.properties as Record<string, unknown>)[USER_MESSAGE] = {
      type: 'string',
      description: 'A message to reply to the user with BEFORE we make the function call. Essentially a live response informing them that the function is about to happen.',
    };
    const required = Array.isArray(base.required) ? base.required.filter((r) => r !== USER_MESSAGE) : [];
    out.required = [...required, USER_MESSAGE];
  }
  return out;
}

function toolSpec(action: EngineAction, name: string): ToolSpec {
  const extra = (action.description ?? action.label ?? '').trim();
  if (action.type === 'action_external') {
    const own = typeof action.config.description === 'string' ? action.config.description.trim() : '';
    return { name, description: own || extra || name, parameters: externalSchema(action.config) };
  }
  const b = BUILTINS[action.type]!;
  return { name, description: extra ? `${b.description} ${extra}` : b.description, parameters: b.parameters() };
}

function parseArguments(raw: string): Params {
  if (!raw || !raw.trim()) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new ActionFailure('the tool arguments are not valid JSON');
  }
  if (!isObject(parsed)) throw new ActionFailure('the tool arguments must be a JSON object');
  return parsed;
}

function normalizeText(text: string): string {
  return text.toLowerCase().replace(/\s+/g, ' ').trim();
}

function errorMessage(err: unknown): string {
  if (err instanceof Error) {
    const cause = (err as { cause?: unknown }).cause;
    return cause instanceof Error && cause.message ? `${err.message}: ${cause.message}` : err.message;
  }
  return String(err);
}

/** Vocode's `x-vocode-signature`: base64(HMAC-SHA256(key = base64-decoded secret, message = the body bytes)). */
export function vocodeSignature(body: Uint8Array, signatureSecret: string): string {
  return createHmac('sha256', Buffer.from(signatureSecret, 'base64')).update(body).digest('base64');
}

export function createActionRunner(opts: ActionRunnerOptions): ActionRunner {
  const { actions, transport, callId } = opts;
  const variables = opts.variables ?? {};
  const now = opts.now ?? (() => new Date());
  const doFetch = opts.fetch ?? globalThis.fetch;
  const timeoutMs = opts.externalTimeoutMs ?? DEFAULT_EXTERNAL_TIMEOUT_MS;
  const history: ActionHistoryEntry[] = [];

  const names = assignToolNames(actions);
  const byName = new Map<string, EngineAction>();
  const tools: ToolSpec[] = [];
  actions.forEach((a, i) => {
    const name = names.get(i);
    if (name === undefined) return;
    byName.set(name, a);
    tools.push(toolSpec(a, name));
  });

  function record(type: ActionHistoryEventType, action: EngineAction, parameters: Params, result: ActionHistoryResult | null): void {
    const entry: ActionHistoryEntry = {
      event_type: type,
      timestamp: now().toISOString(),
      action_id: action.id,
      action_type: action.type,
      action_label: action.label ?? null,
      parameters,
      result,
    };
    history.push(entry);
    opts.onHistory?.(entry);
  }

  /** A `{placeholder}` phone number is looked up in the call's context. */
  function phoneNumber(action: EngineAction): string {
    const raw = action.config.phone_number;
    if (typeof raw !== 'string' || !raw.trim()) throw new ActionFailure('no phone number is configured for this action');
    const m = /^\{\s*([A-Za-z0-9_]+)\s*\}$/.exec(raw.trim());
    if (!m) return raw.trim();
    const value = variables[m[1]];
    if (typeof value !== 'string' || !value.trim()) throw new ActionFailure(`the call has no value for {${m[1]}}, so there is no number to call`);
    return value.trim();
  }

  const placePrimaryOnHold = (action: EngineAction): boolean => action.config.place_primary_on_hold !== false;

  async function runExternal(action: EngineAction, payload: Params, signal: AbortSignal): Promise<Done> {
    const { config } = action;
    const url = typeof config.url === 'string' ? config.url : '';
    if (!url) throw new ActionFailure('the external action has no url');
    const body = new Uint8Array(Buffer.from(JSON.stringify({ call_id: callId, payload }), 'utf8'));
    const headers: Record<string, string> = { 'Content-Type': 'application/json', Accept: 'application/json' };
    if (typeof config.signature_secret === 'string' && config.signature_secret) {
      headers['x-vocode-signature'] = vocodeSignature(body, config.signature_secret);
    }
    const timeout = AbortSignal.timeout(timeoutMs);
    const combined = AbortSignal.any([signal, timeout]);
    const failure = (err: unknown, status?: number): unknown => {
      // (A caller's abort needs nothing here: `run` rethrows the signal's reason whatever was thrown.)
      if (timeout.aborted) return new ActionFailure(`the service did not answer within ${timeoutMs} ms`, status);
      return new ActionFailure(`the request to the service failed: ${errorMessage(err)}`, status);
    };

    let res: Response;
    try {
      // Vocode's client does not follow redirects; a 3xx is a failure like any other non-2xx.
      res = await doFetch(url, { method: 'POST', headers, body, signal: combined, redirect: 'manual' });
    } catch (err) {
      throw failure(err);
    }
    let text: string;
    try {
      text = await res.text();
    } catch (err) {
      throw failure(err, res.status);
    }
    let data: unknown;
    let parsed = true;
    try { data = JSON.parse(text); } catch { parsed = false; }
    if (!res.ok) {
      const snippet = text.trim().slice(0, 200);
      throw new ActionFailure(`the service answered HTTP ${res.status}${snippet ? `: ${snippet}` : ''}`, res.status, parsed ? data : undefined);
    }
    if (!parsed) throw new ActionFailure('the service answered with invalid JSON', res.status);
    if (!isObject(data)) throw new ActionFailure('the service answered with JSON that is not an object', res.status, data);
    const agentMessage = typeof data.agent_message === 'string' && data.agent_message.trim() ? data.agent_message : undefined;
    const outcome: ToolOutcome = { result: JSON.stringify(data.result ?? data) };
    if (config.speak_on_receive === true && agentMessage) outcome.say = agentMessage;
    return { outcome, json: data, httpStatus: res.status };
  }

  async function perform(action: EngineAction, params: Params, signal: AbortSignal): Promise<Done> {
    switch (action.type) {
      case 'action_end_conversation':
        return { outcome: { result: JSON.stringify({ ended: true }), endCall: true }, json: { ended: true } };
      case 'action_transfer_call': {
        // No endCall: hanging up would end the call that was just transferred.
        const to = phoneNumber(action);
        const handOff = await transport.transfer(to);
        return { outcome: handingOff({ result: JSON.stringify({ transferred: true }) }, handOff), json: { transferred: true, to } };
      }
      case 'action_dtmf': {
        const raw = params.digits;
        const digits = typeof raw === 'number' && Number.isInteger(raw) && raw >= 0 ? String(raw) : typeof raw === 'string' ? raw.replace(/[\s-]/g, '') : '';
        if (!DTMF_DIGITS.test(digits)) throw new ActionFailure('digits must be one or more of 0-9, *, #, w and W');
        await transport.sendDtmf(digits);
        return { outcome: { result: JSON.stringify({ sent: digits }) }, json: { sent: digits } };
      }
      case 'action_set_hold': {
        const handOff = await transport.setHold(true);
        return { outcome: handingOff({ result: JSON.stringify({ on_hold: true }) }, handOff), json: { on_hold: true } };
      }
      case 'action_add_to_conference': {
        const to = phoneNumber(action);
        const hold = placePrimaryOnHold(action);
        const handOff = await transport.addToConference(to, { placePrimaryOnHold: hold });
        return { outcome: handingOff({ result: JSON.stringify({ added: true }) }, handOff), json: { added: true, to, place_primary_on_hold: hold } };
      }
      case 'action_warm_transfer': {
        const to = phoneNumber(action);
        const hold = placePrimaryOnHold(action);
        const held = hold ? await transport.setHold(true) : undefined;
        const added = await transport.addToConference(to, { placePrimaryOnHold: hold });
        return { outcome: handingOff({ result: JSON.stringify({ transferred: true }) }, held, added), json: { transferred: true, to, place_primary_on_hold: hold } };
      }
      case 'action_external':
        return runExternal(action, params, signal);
      default:
        throw new ActionFailure(`unsupported action type ${action.type}`);
    }
  }

  /** One run: `action_started`, then `action_completed` or `action_failed`. */
  async function run(action: EngineAction, rawArguments: string | Params, signal: AbortSignal): Promise<ToolOutcome> {
    if (signal.aborted) throw signal.reason;
    let params: Params = {};
    let badArguments: ActionFailure | undefined;
    try {
      params = typeof rawArguments === 'string' ? parseArguments(rawArguments) : rawArguments;
    } catch (err) {
      badArguments = err as ActionFailure;
    }
    // speak_on_send's line is for the caller, not for the webhook.
    if (action.type === 'action_external' && USER_MESSAGE in params) {
      params = { ...params };
      delete params[USER_MESSAGE];
    }
    record('action_started', action, params, null);
    try {
      if (badArguments) throw badArguments;
      const done = await perform(action, params, signal);
      const result: ActionHistoryResult = { json: done.json };
      if (done.httpStatus !== undefined) result.http_status_code = done.httpStatus;
      record('action_completed', action, params, result);
      return done.outcome;
    } catch (err) {
      if (signal.aborted) {
        record('action_failed', action, params, { error: `cancelled: ${errorMessage(signal.reason)}` });
        throw signal.reason;
      }
      const failure = err instanceof ActionFailure ? err : new ActionFailure(errorMessage(err));
      const result: ActionHistoryResult = { error: failure.message };
      if (failure.httpStatus !== undefined) result.http_status_code = failure.httpStatus;
      if (failure.json !== undefined) result.json = failure.json;
      record('action_failed', action, params, result);
      return { result: JSON.stringify({ error: failure.message }) };
    }
  }

  return {
    tools,
    history,

    runTool(call, signal) {
      const action = byName.get(call.name);
      if (!action) {
        if (signal.aborted) return Promise.reject(signal.reason);
        return Promise.resolve({ result: JSON.stringify({ error: `no tool named ${call.name}` }) });
      }
      return run(action, call.arguments, signal);
    },

    describe(call) {
      const action = byName.get(call.name);
      if (!action) return {};
      let sayBeforeRun: string | undefined;
      if (action.type === 'action_external' && action.config.speak_on_send === true) {
        try {
          const message = parseArguments(call.arguments)[USER_MESSAGE];
          if (typeof message === 'string' && message.trim()) sayBeforeRun = message.trim();
        } catch { /* runTool reports bad arguments */ }
      } else if (action.type === 'action_warm_transfer') {
        const message = action.config.hold_message;
        if (typeof message === 'string' && message.trim()) sayBeforeRun = message.trim();
      }
      return { action, ...(sayBeforeRun === undefined ? {} : { sayBeforeRun }) };
    },

    phraseActions(spokenText) {
      const said = normalizeText(spokenText);
      if (!said) return [];
      return actions.filter((a) => a.trigger.type === 'action_trigger_phrase_based'
        && a.trigger.phrases.some((p) => {
          const phrase = normalizeText(p);
          return phrase !== '' && said.includes(phrase);
        }));
    },

    runPhraseAction(action, signal) {
      return run(action, {}, signal);
    },
  };
}
