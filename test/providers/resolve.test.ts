/**
 * Credential resolution and provider selection on real stored objects: agents and account connections
 * created through the API, read back through the store as a call would read them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveAccess } from '../../src/providers/credentials.js';
import { MissingCredentialError, resolveAgentProviders, UnsupportedProviderError } from '../../src/providers/index.js';
import { VENDORS } from '../../src/providers/vendors.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { startDeepgramFake } from '../fakes/deepgram.js';
import { until } from './helpers.js';

let srv: TestServer;
let userId: string;

beforeAll(async () => {
  srv = await startTestServer();
  const r = await srv.api('/v1/prompts/create', { body: { content: 'hi' } });
  userId = r.body.user_id;
});
afterAll(async () => { await srv?.close(); });

const lookup = () => srv.running.store.connectionLookup(userId) as never;

async function connection(type: string, credentials: Record<string, string>, key = srv.key): Promise<string> {
  const r = await srv.api('/v1/account_connections/create', { body: { type, credentials }, key });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body.id;
}

async function agentForCall(params: Record<string, unknown>): Promise<Record<string, unknown>> {
  const r = await srv.api('/v1/agents/create', { body: { prompt: { content: 'You help.' }, voice: { type: 'voice_openai', voice: 'alloy' }, ...params } });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return srv.running.store.agents.getForCall(srv.running.store.db, userId, r.body.id);
}

describe('credential resolution order', () => {
  it('no connection and no env default: fails naming the connection type and the env variable', async () => {
    const err = await resolveAccess('gladia', { purpose: 'transcriber_gladia', lookup: lookup(), env: {} }).catch((e) => e);
    expect(err).toBeInstanceOf(MissingCredentialError);
    expect(err.connectionType).toBe('account_connection_gladia');
    expect(err.message).toContain('account_connection_gladia');
    expect(err.message).toContain('GLADIA_API_KEY');
  });

  it('env default when the user has no connection of the type', async () => {
    const a = await resolveAccess('rime', { purpose: 'voice_rime', lookup: lookup(), env: { RIME_API_KEY: 'env-rime', RIME_BASE_URL: 'http://127.0.0.1:9/' } });
    expect(a).toEqual({ apiKey: 'env-rime', baseUrl: 'http://127.0.0.1:9', extra: {} });
  });

  it("the user's connection of the type beats the env default; the newest one wins", async () => {
    await connection('account_connection_cartesia', { cartesia_api_key: 'older-cartesia' });
    await connection('account_connection_cartesia', { cartesia_api_key: 'newer-cartesia' });
    const a = await resolveAccess('cartesia', { purpose: 'voice_cartesia', lookup: lookup(), env: { CARTESIA_API_KEY: 'env-cartesia' } });
    expect(a.apiKey).toBe('newer-cartesia');
    expect(a.baseUrl).toBe(VENDORS.cartesia.defaultBaseUrl);
  });

  it('an explicitly named connection beats the newest one of the type', async () => {
    const chosen = await connection('account_connection_deepgram', { deepgram_api_key: 'chosen-dg' });
    await connection('account_connection_deepgram', { deepgram_api_key: 'latest-dg' });
    const a = await resolveAccess('deepgram', { purpose: 'transcriber_deepgram', explicit: { connectionId: chosen }, lookup: lookup(), env: { DEEPGRAM_API_KEY: 'env-dg' } });
    expect(a.apiKey).toBe('chosen-dg');
  });

  it('an explicit connection of the wrong type, or another user\'s, is refused by name', async () => {
    const wrong = await connection('account_connection_rime', { rime_api_key: 'r' });
    const e1 = await resolveAccess('deepgram', { purpose: 'transcriber_deepgram', explicit: { connectionId: wrong }, lookup: lookup(), env: {} }).catch((e) => e);
    expect(e1.message).toContain('is an account_connection_rime');
    const otherKey = await srv.newUser();
    const theirs = await connection('account_connection_deepgram', { deepgram_api_key: 'not-yours' }, otherKey);
    const e2 = await resolveAccess('deepgram', { purpose: 'transcriber_deepgram', explicit: { connectionId: theirs }, lookup: lookup(), env: {} }).catch((e) => e);
    expect(e2).toBeInstanceOf(MissingCredentialError);
    expect(e2.message).toContain('does not exist');
    expect(JSON.stringify(e2.message)).not.toContain('not-yours');
  });

  it('extras: Azure Speech needs its region, from the connection or AZURE_SPEECH_REGION', async () => {
    const e = await resolveAccess('azure_speech', { purpose: 'voice_azure', lookup: lookup(), env: { AZURE_SPEECH_KEY: 'k' } }).catch((x) => x);
    expect(e.message).toContain('azure_speech_region');
    const a = await resolveAccess('azure_speech', { purpose: 'voice_azure', lookup: lookup(), env: { AZURE_SPEECH_KEY: 'k', AZURE_SPEECH_REGION: 'westeurope' } });
    expect(a.baseUrl).toBe('https://westeurope.api.cognitive.microsoft.com');
    await connection('account_connection_azure_speech', { azure_speech_key: 'conn-k', azure_speech_region: 'eastus' });
    const b = await resolveAccess('azure_speech', { purpose: 'voice_azure', lookup: lookup(), env: { AZURE_SPEECH_REGION: 'westeurope' } });
    expect(b).toMatchObject({ apiKey: 'conn-k', extra: { region: 'eastus' }, baseUrl: 'https://eastus.api.cognitive.microsoft.com' });
  });

  it('an OpenAI-compatible server may run keyless but needs a base URL', async () => {
    const e = await resolveAccess('openai_compatible', { purpose: 'LLM provider "openai_compatible"', lookup: lookup(), env: {} }).catch((x) => x);
    expect(e.message).toContain('OPENAI_COMPATIBLE_BASE_URL');
    const a = await resolveAccess('openai_compatible', { purpose: 'x', lookup: lookup(), env: { OPENAI_COMPATIBLE_BASE_URL: 'http://127.0.0.1:11434/v1' } });
    expect(a).toMatchObject({ apiKey: '', baseUrl: 'http://127.0.0.1:11434/v1' });
  });
});

describe('resolving an agent\'s providers', () => {
  const allKeys = Object.fromEntries(Object.values(VENDORS).map((v) => [v.keyEnv, `env-${v.keyEnv}`]));
  const env = { ...allKeys, AZURE_SPEECH_REGION: 'eastus', PLAYHT_USER_ID: 'u1', AZURE_OPENAI_ENDPOINT: 'https://x.openai.azure.com', OPENAI_COMPATIBLE_BASE_URL: 'http://127.0.0.1:11434/v1' };

  const voices = [
    { type: 'voice_eleven_labs', voice_id: 'v1' }, { type: 'voice_cartesia', voice_id: 'c1' }, { type: 'voice_openai', voice: 'alloy' },
    { type: 'voice_vocode', voice_id: 'joe' }, { type: 'voice_deepgram', model: 'aura-2-thalia-en' }, { type: 'voice_rime', speaker: 'cove' },
    { type: 'voice_play_ht', voice_id: 's3://voice' }, { type: 'voice_azure', voice_name: 'en-US-AvaNeural' },
  ];
  const transcribers = ['transcriber_deepgram', 'transcriber_assembly_ai', 'transcriber_gladia', 'transcriber_azure', 'transcriber_google', 'transcriber_openai'];
  const llms = ['openai', 'azure', 'anthropic', 'google', 'deepseek', 'togetherai', 'groq', 'openai_compatible'];

  it('every voice, transcriber and LLM provider resolves with platform defaults', async () => {
    for (let i = 0; i < Math.max(voices.length, transcribers.length, llms.length); i++) {
      const agent = await agentForCall({
        voice: voices[i % voices.length], transcriber: { type: transcribers[i % transcribers.length] }, provider: llms[i % llms.length],
      });
      const p = await resolveAgentProviders(agent, { lookup: lookup(), env });
      expect(typeof p.stt.open).toBe('function');
      expect(typeof p.llm.stream).toBe('function');
      expect(typeof p.tts.open).toBe('function');
      expect(p.summary.llm).toContain(llms[i % llms.length]);
    }
  });

  it('an agent without transcriber or provider gets Deepgram and OpenAI', async () => {
    const agent = await agentForCall({});
    const p = await resolveAgentProviders(agent, { lookup: lookup(), env });
    expect(p.summary.stt).toMatch(/^deepgram/);
    expect(p.summary.llm).toMatch(/^openai /);
    expect(p.summary.tts).toBe('openai alloy');
  });

  it('llm_fallback resolves both models and says so', async () => {
    const agent = await agentForCall({ provider: 'anthropic', model: 'claude-x', llm_fallback: { provider: 'openai', model_name: 'gpt-4o-mini' } });
    const p = await resolveAgentProviders(agent, { lookup: lookup(), env });
    expect(p.summary.llm).toBe('anthropic claude-x → openai gpt-4o-mini');
  });

  it('everything missing is reported in one message naming each connection type', async () => {
    const agent = await agentForCall({ voice: { type: 'voice_rime', speaker: 'cove' }, transcriber: { type: 'transcriber_gladia' }, provider: 'groq' });
    const err = await resolveAgentProviders(agent, { lookup: lookup(), env: {} }).catch((e) => e);
    expect(err).toBeInstanceOf(MissingCredentialError);
    for (const t of ['account_connection_gladia', 'account_connection_groq']) expect(err.message).toContain(t);
  });

  it("the voice's own api_key is the explicit credential for ElevenLabs, and never leaks into errors", async () => {
    const agent = await agentForCall({ voice: { type: 'voice_eleven_labs', voice_id: 'v1', api_key: 'xi-voice-own-key-1234' }, provider: 'groq' });
    expect((agent.voice as { api_key: string }).api_key).toBe('xi-voice-own-key-1234');
    const err = await resolveAgentProviders(agent, { lookup: lookup(), env: { OPENAI_API_KEY: 'x', DEEPGRAM_API_KEY: 'y' } }).catch((e) => e);
    expect(err.message).toContain('account_connection_groq');
    expect(err.message).not.toContain('xi-voice-own-key');
    const ok = await resolveAgentProviders(agent, { lookup: lookup(), env: { DEEPGRAM_API_KEY: 'y', GROQ_API_KEY: 'g' } });
    expect(ok.summary.tts).toBe('elevenlabs v1');
  });

  it('an unknown voice type is refused by name', async () => {
    const agent = await agentForCall({});
    const err = await resolveAgentProviders({ ...agent, voice: { type: 'voice_future' } }, { lookup: lookup(), env }).catch((e) => e);
    expect(err).toBeInstanceOf(UnsupportedProviderError);
    expect(err.message).toContain('voice_future');
  });
});

describe('a call\'s providers, set up and torn down', () => {
  it('preconnect opens the transcriber and voice sockets during setup; the first turn adopts them; dispose releases them', async () => {
    const fake = await startDeepgramFake('dg-valid-key');
    try {
      const agent = await agentForCall({ voice: { type: 'voice_deepgram', model: 'aura-2-thalia-en' }, transcriber: { type: 'transcriber_deepgram' } });
      const p = await resolveAgentProviders(agent, { lookup: { byId: async () => null, latestOfType: async () => null }, env: { DEEPGRAM_API_KEY: 'dg-valid-key', DEEPGRAM_BASE_URL: fake.url, OPENAI_API_KEY: 'x' } });
      p.preconnect({ sampleRate: 8000, language: 'en' });
      await until(() => fake.stt.connections === 1 && fake.tts.connections === 1, 'both pre-connections');
      const session = await p.stt.open({ sampleRate: 8000, language: 'en' });
      expect(fake.stt.connections).toBe(1);
      await session.close();
      await p.dispose();
      expect(fake.stt.lastKey).toBe('dg-valid-key');
    } finally {
      await fake.close();
    }
  });
});
