import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { isDoNotCallRequest, soundsLikeHuman, soundsLikeMachine } from '../../src/calls/detection.js';
import { createServer } from 'node:http';
import { engineActions, fetchContext } from '../../src/calls/agentSetup.js';
import { isPrivateAddress, PrivateAddressError, userUrlFetch } from '../../src/calls/userUrls.js';
import { SecretBox } from '../../src/store/secretBox.js';
import { createStreamToken, STREAM_TOKEN_TTL_MS, verifyStreamToken } from '../../src/telephony/streamToken.js';

const CALL = '3f0c6d1e-1a2b-4c3d-8e9f-0a1b2c3d4e5f';

describe('stream tokens', () => {
  const box = new SecretBox(randomBytes(32));

  it('names the call and verifies under the same key', () => {
    expect(verifyStreamToken(box, createStreamToken(box, CALL))).toEqual({ ok: true, callId: CALL });
  });

  it('refuses a token signed with another key, a changed call id, an expired token and garbage', () => {
    const token = createStreamToken(box, CALL);
    expect(verifyStreamToken(new SecretBox(randomBytes(32)), token)).toEqual({ ok: false, reason: 'bad signature' });
    const other = token.replace(CALL, '3f0c6d1e-1a2b-4c3d-8e9f-0a1b2c3d4e50');
    expect(verifyStreamToken(box, other)).toEqual({ ok: false, reason: 'bad signature' });
    const old = createStreamToken(box, CALL, Date.now() - STREAM_TOKEN_TTL_MS - 2000);
    expect(verifyStreamToken(box, old)).toEqual({ ok: false, reason: 'expired' });
    for (const bad of ['', 'a.b', 'x.y.z', `${CALL}.abc.sig`]) expect(verifyStreamToken(box, bad).ok).toBe(false);
  });

  it('a MAC for one purpose never validates for another', () => {
    expect(box.mac('media-stream-token', 'x').equals(box.mac('other', 'x'))).toBe(false);
  });
});

describe('do-not-call requests', () => {
  it.each([
    'Please take me off your list.', 'remove my number from your calling list', 'Stop calling me!', "don't call me again",
    'Put me on the do not call list', 'I do not want any more calls', 'never contact me again', 'Take us off your list please',
  ])('"%s" is a request', (t) => expect(isDoNotCallRequest(t)).toBe(true));
  it.each([
    'Can you call me back tomorrow?', "I'll take the list of options", 'stop, let me think', 'What list are you calling from?',
    'Call me at five', 'Please remove the extra item from my order',
  ])('"%s" is not', (t) => expect(isDoNotCallRequest(t)).toBe(false));
});

describe('human and machine cues', () => {
  it.each([
    'Hi, you have reached Anna. Please leave a message after the tone.', 'The person you are trying to reach is not available.',
    "I can't come to the phone right now", 'Welcome to the voicemail of 415 555 0100', 'Please record your message',
  ])('"%s" sounds like a machine', (t) => {
    expect(soundsLikeMachine(t)).toBe(true);
    expect(soundsLikeHuman(t)).toBe(false);
  });
  it.each(['Hello?', 'Yes, this is Anna speaking', 'Who is this?', 'hey'])('"%s" sounds like a person', (t) => {
    expect(soundsLikeHuman(t)).toBe(true);
    expect(soundsLikeMachine(t)).toBe(false);
  });
  it('a long sentence is no verdict either way', () => {
    expect(soundsLikeHuman('I was wondering whether you could tell me more about the offer you mentioned last week')).toBe(false);
  });
});

describe('stored actions for the engine', () => {
  it('keeps id, type, config and turns phrase triggers into phrases', () => {
    const actions = engineActions([
      { id: 'a1', type: 'action_transfer_call', config: { phone_number: '+14155550100' }, action_trigger: { type: 'action_trigger_function_call', config: {} }, label: 'Transfer', description: null },
      { id: 'a2', type: 'action_end_conversation', config: {}, action_trigger: { type: 'action_trigger_phrase_based', config: { phrase_triggers: [{ phrase: 'goodbye', conditions: ['phrase_condition_type_contains'] }] } } },
    ]);
    expect(actions).toEqual([
      { id: 'a1', type: 'action_transfer_call', label: 'Transfer', description: null, config: { phone_number: '+14155550100' }, trigger: { type: 'action_trigger_function_call' } },
      { id: 'a2', type: 'action_end_conversation', label: null, description: null, config: {}, trigger: { type: 'action_trigger_phrase_based', phrases: ['goodbye'] } },
    ]);
    expect(engineActions(undefined)).toEqual([]);
  });
});

describe('users\' URLs reach only public addresses unless allowed', () => {
  it.each([
    ['127.0.0.1', true], ['10.1.2.3', true], ['172.20.0.1', true], ['192.168.1.1', true], ['169.254.169.254', true], ['100.64.0.1', true],
    ['::1', true], ['fd00::1', true], ['fe80::1', true], ['::ffff:127.0.0.1', true], ['0.0.0.0', true],
    ['8.8.8.8', false], ['172.32.0.1', false], ['2001:4860:4860::8888', false], ['example.com', false],
  ])('%s private: %s', (addr, priv) => expect(isPrivateAddress(addr)).toBe(priv));

  it('a loopback server is refused by default and reached when allowed', async () => {
    const server = createServer((_req, res) => { res.writeHead(200, { 'content-type': 'application/json' }); res.end('{"a":"b"}'); });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    try {
      for (const host of ['127.0.0.1', 'localhost']) {
        const err = await userUrlFetch(false)(`http://${host}:${port}/`).catch((e) => e);
        expect(err).toBeInstanceOf(TypeError);
        expect(err.cause).toBeInstanceOf(PrivateAddressError);
      }
      await expect(fetchContext(`http://127.0.0.1:${port}/`, '+15551234567', { fetch: userUrlFetch(false) })).rejects.toThrow(/private, loopback or link-local/);
      expect(await fetchContext(`http://127.0.0.1:${port}/`, '+15551234567', { fetch: userUrlFetch(true) })).toEqual({ a: 'b' });
    } finally {
      server.close();
    }
  });
});
