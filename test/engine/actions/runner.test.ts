import { describe, expect, it } from 'vitest';
import { createActionRunner, type ActionHistoryEntry, type EngineAction } from '../../../src/engine/actions/index.js';
import { VirtualClock } from '../../../src/engine/clock.js';
import { FakeTransport } from '../../../src/engine/testkit/fakeTransport.js';
import type { ToolCall, Transport } from '../../../src/engine/types.js';
import { answering, type CarrierAnswers } from '../handOff.js';

const fn = { type: 'action_trigger_function_call' } as const;
const never = () => new AbortController().signal;
let seq = 0;
const call = (name: string, args: unknown = {}): ToolCall => ({ id: `call_${++seq}`, name, arguments: typeof args === 'string' ? args : JSON.stringify(args) });

function action(type: string, config: Record<string, unknown> = {}, extra: Partial<EngineAction> = {}): EngineAction {
  return { id: `act_${type}_${++seq}`, type, label: null, config, trigger: fn, ...extra };
}

function setup(actions: EngineAction[], variables?: Record<string, string>, answers: CarrierAnswers = {}) {
  const clock = new VirtualClock();
  const transport = answering(new FakeTransport(clock), clock, answers);
  let t = Date.parse('2025-01-01T00:00:00.000Z');
  const seen: ActionHistoryEntry[] = [];
  const runner = createActionRunner({
    actions, transport, callId: 'call-1', variables, now: () => new Date((t += 1000)), onHistory: (e) => seen.push(e),
  });
  return { clock, transport, runner, seen };
}

describe('tool specs', () => {
  it('gives each function-call action a stable, LLM-friendly name and an object schema', () => {
    const { runner } = setup([
      action('action_end_conversation'),
      action('action_transfer_call', { phone_number: '+15550001111' }),
      action('action_dtmf'),
      action('action_set_hold'),
      action('action_add_to_conference', { phone_number: '+15550002222', place_primary_on_hold: true }),
      action('action_warm_transfer', { phone_number: '+15550003333' }),
      action('action_external', {
        name: 'lookup_balance', description: 'Look up the caller balance', url: 'http://127.0.0.1:1/x',
        input_schema: { type: 'object', properties: { account: { type: 'string' } }, required: ['account'] },
        speak_on_send: false, speak_on_receive: true, processing_mode: 'muted',
      }),
      action('action_transfer_call', { phone_number: '+15550009999' }, { trigger: { type: 'action_trigger_phrase_based', phrases: ['transferring you'] } }),
    ]);
    expect(runner.tools.map((t) => t.name)).toEqual([
      'end_conversation', 'transfer_call', 'send_dtmf', 'set_hold', 'add_to_conference', 'warm_transfer', 'lookup_balance',
    ]);
    for (const t of runner.tools) {
      expect(t.name).toMatch(/^[A-Za-z0-9_-]{1,64}$/);
      expect(t.description.length).toBeGreaterThan(5);
      expect(t.parameters.type).toBe('object');
    }
    const dtmf = runner.tools.find((t) => t.name === 'send_dtmf')!;
    expect(dtmf.parameters).toMatchObject({ properties: { digits: { type: 'string' } }, required: ['digits'] });
    const ext = runner.tools.find((t) => t.name === 'lookup_balance')!;
    expect(ext.description).toBe('Look up the caller balance');
    expect(ext.parameters).toEqual({ type: 'object', properties: { account: { type: 'string' } }, required: ['account'] });
  });

  it('suffixes colliding names deterministically, by order, without stealing an existing name', () => {
    const ext = (name: string) => action('action_external', {
      name, description: name, url: 'http://127.0.0.1:1/', input_schema: {}, speak_on_send: false, speak_on_receive: false,
    });
    const actions = [
      action('action_transfer_call', { phone_number: '+15550000001' }),
      action('action_transfer_call', { phone_number: '+15550000002' }),
      ext('transfer_call_2'),
      action('action_transfer_call', { phone_number: '+15550000003' }),
      ext('end_conversation'),
      action('action_end_conversation'),
    ];
    const names = setup(actions).runner.tools.map((t) => t.name);
    expect(names).toEqual(['transfer_call', 'transfer_call_3', 'transfer_call_2', 'transfer_call_4', 'end_conversation', 'end_conversation_2']);
    expect(new Set(names).size).toBe(names.length);
    // The same actions always get the same names.
    expect(setup(actions).runner.tools.map((t) => t.name)).toEqual(names);
  });

  it('routes a suffixed name to its own action', async () => {
    const { runner, transport } = setup([
      action('action_transfer_call', { phone_number: '+15550000001' }),
      action('action_transfer_call', { phone_number: '+15550000002' }),
    ]);
    await runner.runTool(call('transfer_call_2'), never());
    await runner.runTool(call('transfer_call'), never());
    expect(transport.commands.map((c) => c.arg)).toEqual(['+15550000002', '+15550000001']);
  });

  it('takes an input_schema given as a JSON string and adds user_message when speak_on_send', () => {
    const { runner } = setup([action('action_external', {
      name: 'book', description: 'Book a slot', url: 'http://127.0.0.1:1/',
      input_schema: JSON.stringify({ type: 'object', properties: { day: { type: 'string' } }, required: ['day'] }),
      speak_on_send: true, speak_on_receive: false,
    })]);
    expect(runner.tools[0].parameters).toMatchObject({
      type: 'object', properties: { day: { type: 'string' }, user_message: { type: 'string' } }, required: ['day', 'user_message'],
    });
  });
});

describe('transport actions', () => {
  it('end_conversation ends the call and issues no transport command', async () => {
    const { runner, transport } = setup([action('action_end_conversation')]);
    expect(await runner.runTool(call('end_conversation'), never())).toEqual({ result: '{"ended":true}', endCall: true });
    expect(transport.commands).toEqual([]);
  });

  // Neither ever ends the call (that would hang up on the caller); a hand-off says the agent is no longer on it.
  it.each([
    ['the caller has left the agent (handed_off)', 'handed_off', { handedOff: true }],
    ['the agent stays on the line', 'stays', {}],
    ['the transport does not say', undefined, {}],
  ] as const)('transfer_call transfers to the configured number, without ending the call; %s', async (_what, answer, handOff) => {
    const { runner, transport } = setup([action('action_transfer_call', { phone_number: '+15551234567' })], undefined, { transfer: answer });
    const out = await runner.runTool(call('transfer_call'), never());
    expect(out).toEqual({ result: '{"transferred":true}', ...handOff });
    expect(out.endCall).toBeUndefined();
    expect(transport.commands).toEqual([{ at: 0, command: 'transfer', arg: '+15551234567' }]);
  });

  it('fills a {placeholder} phone number from the call variables', async () => {
    const { runner, transport } = setup(
      [action('action_transfer_call', { phone_number: '{manager_phone}' }), action('action_add_to_conference', { phone_number: '{ manager_phone }', place_primary_on_hold: false })],
      { manager_phone: '+15557654321' },
    );
    await runner.runTool(call('transfer_call'), never());
    await runner.runTool(call('add_to_conference'), never());
    expect(transport.commands.map((c) => [c.command, c.arg])).toEqual([
      ['transfer', '+15557654321'],
      ['conference', { to: '+15557654321', placePrimaryOnHold: false }],
    ]);
  });

  it('an unknown placeholder is a failed outcome, not a throw, and nothing is dialled', async () => {
    const { runner, transport } = setup([action('action_transfer_call', { phone_number: '{nope}' })], { other: '+15550000000' });
    const out = await runner.runTool(call('transfer_call'), never());
    expect(JSON.parse(out.result).error).toMatch(/\{nope\}/);
    expect(out.endCall).toBeUndefined();
    expect(transport.commands).toEqual([]);
    expect(runner.history.map((h) => h.event_type)).toEqual(['action_started', 'action_failed']);
    expect(runner.history[1].result?.error).toMatch(/\{nope\}/);
  });

  it('send_dtmf sends valid digits and rejects invalid ones', async () => {
    const { runner, transport } = setup([action('action_dtmf')]);
    await runner.runTool(call('send_dtmf', { digits: '1w2#*W9' }), never());
    const bad = await runner.runTool(call('send_dtmf', { digits: '12a' }), never());
    const missing = await runner.runTool(call('send_dtmf', {}), never());
    expect(transport.commands).toEqual([{ at: 0, command: 'dtmf', arg: '1w2#*W9' }]);
    expect(JSON.parse(bad.result).error).toMatch(/digits/);
    expect(JSON.parse(missing.result).error).toMatch(/digits/);
  });

  it('set_hold puts the caller on hold; the caller is handed off only where the carrier says so (Twilio), not where the agent stays (Telnyx)', async () => {
    const twilio = setup([action('action_set_hold')], undefined, { hold: 'handed_off' });
    expect(await twilio.runner.runTool(call('set_hold'), never())).toEqual({ result: '{"on_hold":true}', handedOff: true });
    expect(twilio.transport.commands).toEqual([{ at: 0, command: 'hold', arg: true }]);
    const telnyx = setup([action('action_set_hold')], undefined, { hold: 'stays' });
    expect(await telnyx.runner.runTool(call('set_hold'), never())).toEqual({ result: '{"on_hold":true}' });
  });

  it('add_to_conference passes placePrimaryOnHold (default true), and hands the caller off when the carrier says so', async () => {
    const { runner, transport } = setup([action('action_add_to_conference', { phone_number: '+15550002222' })], undefined, { conference: 'handed_off' });
    expect(await runner.runTool(call('add_to_conference'), never())).toEqual({ result: '{"added":true}', handedOff: true });
    expect(transport.commands).toEqual([{ at: 0, command: 'conference', arg: { to: '+15550002222', placePrimaryOnHold: true } }]);
    const staying = setup([action('action_add_to_conference', { phone_number: '+15550002222', place_primary_on_hold: false })], undefined, { conference: 'stays' });
    expect(await staying.runner.runTool(call('add_to_conference'), never())).toEqual({ result: '{"added":true}' });
  });

  it('warm_transfer holds first, then conferences; without hold it only conferences', async () => {
    const a = setup([action('action_warm_transfer', { phone_number: '+15550003333', place_primary_on_hold: true, hold_message: 'One moment while I connect you.' })]);
    expect(a.runner.describe(call('warm_transfer')).sayBeforeRun).toBe('One moment while I connect you.');
    await a.runner.runTool(call('warm_transfer'), never());
    expect(a.transport.commands.map((c) => [c.command, c.arg])).toEqual([
      ['hold', true],
      ['conference', { to: '+15550003333', placePrimaryOnHold: true }],
    ]);
    const b = setup([action('action_warm_transfer', { phone_number: '+15550003333', place_primary_on_hold: false })]);
    await b.runner.runTool(call('warm_transfer'), never());
    expect(b.transport.commands.map((c) => c.command)).toEqual(['conference']);
  });

  it('warm_transfer hands the caller off when either step does (Telnyx: the hold keeps the agent on, the dial hands off)', async () => {
    const config = { phone_number: '+15550003333' };
    const telnyx = setup([action('action_warm_transfer', config)], undefined, { hold: 'stays', conference: 'handed_off' });
    expect(await telnyx.runner.runTool(call('warm_transfer'), never())).toEqual({ result: '{"transferred":true}', handedOff: true });
    const twilio = setup([action('action_warm_transfer', config)], undefined, { hold: 'handed_off', conference: 'handed_off' });
    expect((await twilio.runner.runTool(call('warm_transfer'), never())).handedOff).toBe(true);
    const staying = setup([action('action_warm_transfer', config)], undefined, { hold: 'stays', conference: 'stays' });
    expect(await staying.runner.runTool(call('warm_transfer'), never())).toEqual({ result: '{"transferred":true}' });
  });

  it('a transport that fails gives a failed outcome and an action_failed entry', async () => {
    const clock = new VirtualClock();
    const transport: Transport = Object.assign(new FakeTransport(clock), { transfer: () => Promise.reject(new Error('carrier said no')) });
    const runner = createActionRunner({ actions: [action('action_transfer_call', { phone_number: '+15550000001' })], transport, callId: 'c' });
    const out = await runner.runTool(call('transfer_call'), never());
    expect(JSON.parse(out.result)).toEqual({ error: 'carrier said no' });
    expect(runner.history.at(-1)).toMatchObject({ event_type: 'action_failed', result: { error: 'carrier said no' } });
  });

  it('an unknown tool or malformed arguments is a failed outcome', async () => {
    const { runner } = setup([action('action_dtmf')]);
    expect(JSON.parse((await runner.runTool(call('launch_rockets'), never())).result).error).toMatch(/launch_rockets/);
    const out = await runner.runTool(call('send_dtmf', '{"digits": '), never());
    expect(JSON.parse(out.result).error).toMatch(/JSON/);
    expect(runner.history.map((h) => h.event_type)).toEqual(['action_started', 'action_failed']);
  });

  it('an already-aborted signal rejects without running', async () => {
    const { runner, transport } = setup([action('action_set_hold')]);
    const ac = new AbortController();
    ac.abort(new Error('barge-in'));
    await expect(runner.runTool(call('set_hold'), ac.signal)).rejects.toThrow('barge-in');
    expect(transport.commands).toEqual([]);
  });
});

describe('phrase-triggered actions', () => {
  const phrase = (phrases: string[], type = 'action_end_conversation', config: Record<string, unknown> = {}) =>
    action(type, config, { trigger: { type: 'action_trigger_phrase_based', phrases } });

  it('matches phrases the bot said, case-insensitively, as a contains', () => {
    const bye = phrase(['Goodbye', 'have a  nice day']);
    const transfer = phrase(['let me transfer you'], 'action_transfer_call', { phone_number: '+15550000001' });
    const fnEnd = action('action_end_conversation');
    const { runner } = setup([bye, transfer, fnEnd]);
    expect(runner.phraseActions('OK, GOODBYE then!')).toEqual([bye]);
    expect(runner.phraseActions('Thanks, have a nice\nday.')).toEqual([bye]);
    expect(runner.phraseActions('Sure. Let me transfer you now. Goodbye.')).toEqual([bye, transfer]);
    expect(runner.phraseActions('Good bye')).toEqual([]);
    expect(runner.phraseActions('How can I help?')).toEqual([]);
    expect(runner.phraseActions('')).toEqual([]);
    // Phrase-triggered actions are not tools.
    expect(runner.tools.map((t) => t.name)).toEqual(['end_conversation']);
  });

  it('runPhraseAction runs the action with history', async () => {
    const transfer = phrase(['transferring you'], 'action_transfer_call', { phone_number: '{desk}' });
    const { runner, transport } = setup([transfer], { desk: '+15550004444' });
    const [hit] = runner.phraseActions('Transferring you now.');
    const out = await runner.runPhraseAction(hit, never());
    expect(JSON.parse(out.result)).toEqual({ transferred: true });
    expect(transport.commands).toEqual([{ at: 0, command: 'transfer', arg: '+15550004444' }]);
    expect(runner.history.map((h) => [h.event_type, h.action_id])).toEqual([['action_started', transfer.id], ['action_completed', transfer.id]]);
  });
});

describe('history', () => {
  it('records started then completed/failed in Fluents shape, in order, also via onHistory', async () => {
    const hold = action('action_set_hold', {}, { label: 'Hold line' });
    const dtmf = action('action_dtmf');
    const { runner, seen } = setup([hold, dtmf]);
    await runner.runTool(call('set_hold'), never());
    await runner.runTool(call('send_dtmf', { digits: 'x' }), never());
    expect(runner.history).toEqual([
      { event_type: 'action_started', timestamp: '2025-01-01T00:00:01.000Z', action_id: hold.id, action_type: 'action_set_hold', action_label: 'Hold line', parameters: {}, result: null },
      { event_type: 'action_completed', timestamp: '2025-01-01T00:00:02.000Z', action_id: hold.id, action_type: 'action_set_hold', action_label: 'Hold line', parameters: {}, result: { json: { on_hold: true } } },
      { event_type: 'action_started', timestamp: '2025-01-01T00:00:03.000Z', action_id: dtmf.id, action_type: 'action_dtmf', action_label: null, parameters: { digits: 'x' }, result: null },
      { event_type: 'action_failed', timestamp: '2025-01-01T00:00:04.000Z', action_id: dtmf.id, action_type: 'action_dtmf', action_label: null, parameters: { digits: 'x' }, result: { error: expect.stringMatching(/digits/) } },
    ]);
    expect(seen).toEqual(runner.history);
  });
});
