import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from './helpers/server.js';
import { vocodeErrors } from './helpers/vocodeSpec.js';

/** Every answer must parse with the schemas of Vocode's spec, which its generated SDKs use. */
function expectVocode(schema: string, value: unknown) {
  expect(vocodeErrors(schema, value), `${schema}: ${JSON.stringify(value).slice(0, 400)}`).toEqual([]);
}

let s: TestServer;
beforeAll(async () => { s = await startTestServer(); });
afterAll(async () => { await s?.close(); });

const VOICES = [
  { type: 'voice_azure', voice_name: 'en-US-AriaNeural' },
  { type: 'voice_rime', speaker: 'young_male', speed_alpha: 1.1, model_id: 'mist' },
  { type: 'voice_eleven_labs', voice_id: 'EXAVITQu4vr4xnSDxMaL', stability: 0.4, similarity_boost: 0.7, api_key: 'xi-abcdef123456' },
  { type: 'voice_play_ht', voice_id: 's3://voice', api_user_id: 'u1', api_key: 'ph-secret-9999', quality: 'high' },
  { type: 'voice_vocode', voice_id: 'joe' },
];

const ACTIONS = [
  { type: 'action_transfer_call', config: { phone_number: '+14155550100' } },
  { type: 'action_end_conversation', action_trigger: { type: 'action_trigger_phrase_based', config: { phrase_triggers: [{ phrase: 'goodbye', conditions: ['phrase_condition_type_contains'] }] } } },
  { type: 'action_dtmf' },
  { type: 'action_add_to_conference', config: { phone_number: '+14155550101' } },
  { type: 'action_set_hold', config: {} },
  { type: 'action_external', config: { name: 'lookup_order', description: 'Find an order', url: 'https://example.com/orders', input_schema: { type: 'object', properties: { id: { type: 'string' } } }, speak_on_send: true, speak_on_receive: false } },
];

describe('voices', () => {
  it.each(VOICES)('$type: create, get, update, list, delete answer in Vocode shapes', async (voice) => {
    const created = await s.api('/v1/voices/create', { body: voice });
    expect(created.status).toBe(201);
    expectVocode('VoiceResponseModel', created.body);
    expect(created.body.type).toBe(voice.type);
    const got = await s.api(`/v1/voices?id=${created.body.id}`);
    expect(got.status).toBe(200);
    expect(got.body).toEqual(created.body);
    const updated = await s.api(`/v1/voices/update?id=${created.body.id}`, { body: { type: voice.type, label: 'renamed' } });
    expect(updated.status).toBe(201);
    expectVocode('VoiceResponseModel', updated.body);
    expect(updated.body.label).toBe('renamed');
    const list = await s.api('/v1/voices/list?size=100');
    expectVocode('VoicePage', list.body);
    expect(list.body.items.map((v: any) => v.id)).toContain(created.body.id);
    const deleted = await s.api(`/v1/voices/delete?id=${created.body.id}`, { method: 'DELETE' });
    expect(deleted.status).toBe(200);
    expect((await s.api(`/v1/voices?id=${created.body.id}`)).status).toBe(404);
  });

  it('fills the spec defaults (azure pitch 0 / rate 15, play.ht version "2")', async () => {
    const az = await s.api('/v1/voices/create', { body: VOICES[0] });
    expect(az.body).toMatchObject({ pitch: 0, rate: 15 });
    const ph = await s.api('/v1/voices/create', { body: VOICES[3] });
    expect(ph.body).toMatchObject({ version: '2', experimental_remove_silence: false });
  });
});

describe('actions', () => {
  it.each(ACTIONS)('$type: create, get, update, list, delete answer in Vocode shapes', async (action) => {
    const created = await s.api('/v1/actions/create', { body: action });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expectVocode('ActionResponseModel', created.body);
    expect(created.body.action_trigger.type).toBe(action.action_trigger?.type ?? 'action_trigger_function_call');
    const got = await s.api(`/v1/actions?id=${created.body.id}`);
    expect(got.body).toEqual(created.body);
    const updated = await s.api(`/v1/actions/update?id=${created.body.id}`, { body: { type: action.type, description: 'x' } });
    expect(updated.status).toBe(201);
    expectVocode('ActionResponseModel', updated.body);
    expect(updated.body.config).toEqual(created.body.config);
    expectVocode('ActionPage', (await s.api('/v1/actions/list')).body);
    expect((await s.api(`/v1/actions/delete?id=${created.body.id}`, { method: 'POST' })).status).toBe(201);
  });

  it('generates a signature secret for external actions and keeps it across updates', async () => {
    const created = await s.api('/v1/actions/create', { body: ACTIONS[5] });
    const secret = created.body.config.signature_secret;
    expect(Buffer.from(secret, 'base64')).toHaveLength(32);
    expect(created.body.config.processing_mode).toBe('muted');
    const cfg = { ...ACTIONS[5].config, description: 'Find an order by id' };
    const updated = await s.api(`/v1/actions/update?id=${created.body.id}`, { body: { type: 'action_external', config: cfg } });
    expect(updated.body.config.signature_secret).toBe(secret);
    expect(updated.body.config.description).toBe('Find an order by id');
  });

  it('accepts Fluents warm transfer', async () => {
    const r = await s.api('/v1/actions/create', { body: { type: 'action_warm_transfer', config: { phone_number: '{manager_phone}' }, label: 'To manager' } });
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ type: 'action_warm_transfer', label: 'To manager', config: { phone_number: '{manager_phone}', place_primary_on_hold: true } });
  });

  it('refuses a phrase trigger where Vocode allows only function calls', async () => {
    const r = await s.api('/v1/actions/create', { body: { ...ACTIONS[2], action_trigger: ACTIONS[1].action_trigger } });
    expect(r.status).toBe(422);
    expect(JSON.stringify(r.body.detail)).toContain('action_trigger');
  });
});

describe('webhooks, vector databases, prompt templates', () => {
  it('webhook round trip with the default method', async () => {
    const c = await s.api('/v1/webhooks/create', { body: { url: 'https://example.com/hook', subscriptions: ['event_message', 'event_transcript', 'event_error'] } });
    expect(c.status).toBe(201);
    expect(c.body.method).toBe('POST');
    expectVocode('Webhook', { ...c.body, subscriptions: ['event_message'] });
    const u = await s.api(`/v1/webhooks/update?id=${c.body.id}`, { body: { method: 'GET' } });
    expect(u.body).toMatchObject({ method: 'GET', url: 'https://example.com/hook' });
    expectVocode('WebhookPage', { ...(await s.api('/v1/webhooks/list')).body, items: [] });
  });

  it('pinecone vector database with its key masked', async () => {
    const c = await s.api('/v1/vector_databases/create', { body: { type: 'vector_database_pinecone', index: 'kb', api_key: 'pc-1234567890abcd', api_environment: 'us-east1-gcp' } });
    expect(c.status).toBe(201);
    expectVocode('PineconeVectorDatabase', c.body);
    expect(c.body.api_key).toBe('****abcd');
    const list = await s.api('/v1/vector_databases/list');
    expectVocode('VectorDatabasePage', list.body);
  });

  it('prompt templates are a resource of their own', async () => {
    const c = await s.api('/v1/prompt_templates/create', { body: { label: 'Greeting', required_context_keys: ['name'] } });
    expect(c.status).toBe(201);
    expectVocode('PromptTemplate', c.body);
  });
});

describe('account connections', () => {
  it('twilio and openai answer in Vocode shapes with secrets masked', async () => {
    const tw = await s.api('/v1/account_connections/create', { body: { type: 'account_connection_twilio', credentials: { twilio_account_sid: 'AC0123456789', twilio_auth_token: 'auth-token-abcd1234' } } });
    expect(tw.status).toBe(201);
    expectVocode('AccountConnectionResponseModel', tw.body);
    expect(tw.body).toMatchObject({ credentials: { twilio_account_sid: 'AC0123456789', twilio_auth_token: '****1234' }, steering_pool: [], account_supports_any_caller_id: false, config: {} });
    const oa = await s.api('/v1/account_connections/create', { body: { type: 'account_connection_openai', credentials: { openai_api_key: 'sk-proj-secret-wxyz' } } });
    expectVocode('AccountConnectionResponseModel', oa.body);
    expect(oa.body.credentials.openai_api_key).toBe('****wxyz');
    expectVocode('AccountConnectionPage', (await s.api('/v1/account_connections/list')).body);
  });

  it('steering pool: add an explicit number, then remove it', async () => {
    const tw = await s.api('/v1/account_connections/create', { body: { type: 'account_connection_twilio', credentials: { twilio_account_sid: 'AC1', twilio_auth_token: 'tok-0000' } } });
    const added = await s.api(`/v1/account_connections/add_to_steering_pool?id=${tw.body.id}`, { body: { phone_number: '14155550199' } });
    expect(added.status).toBe(201);
    expectVocode('AccountConnectionResponseModel', added.body);
    expect(added.body.steering_pool).toEqual(['+14155550199']);
    const again = await s.api(`/v1/account_connections/add_to_steering_pool?id=${tw.body.id}`, { body: { phone_number: '+14155550199' } });
    expect(again.body.steering_pool).toEqual(['+14155550199']);
    const removed = await s.api(`/v1/account_connections/remove_from_steering_pool?id=${tw.body.id}`, { body: { phone_number: '+14155550199' } });
    expect(removed.body.steering_pool).toEqual([]);
    const missing = await s.api(`/v1/account_connections/remove_from_steering_pool?id=${tw.body.id}`, { body: { phone_number: '+14155550199' } });
    expect(missing.status).toBe(422);
  });
});

describe('agents and prompts', () => {
  it('creates an agent with every nested object inline, reads it expanded and lists it normalized', async () => {
    const body = {
      name: 'Front desk',
      prompt: { content: 'You are ${agent_name}.', context_endpoint: 'https://example.com/ctx', collect_fields: [{ field_type: 'field_type_email', label: 'Email', name: 'email' }], prompt_template: { required_context_keys: ['agent_name'] } },
      voice: VOICES[2],
      actions: ACTIONS,
      webhook: { url: 'https://example.com/wh', subscriptions: ['event_phone_call_ended'] },
      vector_database: { type: 'vector_database_pinecone', index: 'kb', api_key: 'pc-key-5678', api_environment: 'gcp' },
      openai_account_connection: { type: 'account_connection_openai', credentials: { openai_api_key: 'sk-inline-9876' } },
      llm_fallback: { provider: 'azure', model_name: 'gpt-4o' },
      deepgram_keywords: { kansas: 10, topeka: '2.5' },
      idle_time_seconds: 30,
    };
    const c = await s.api('/v1/agents/create', { body });
    expect(c.status, JSON.stringify(c.body)).toBe(201);
    expectVocode('Agent', c.body);
    expect(c.body).toMatchObject({ language: 'en', interrupt_sensitivity: 'low', endpointing_sensitivity: 'auto', llm_temperature: 0, deepgram_keywords: { kansas: 10, topeka: 2.5 } });
    expect(c.body.actions.map((a: any) => a.type)).toEqual(ACTIONS.map((a) => a.type));
    expect(c.body.prompt.prompt_template.required_context_keys).toEqual(['agent_name']);
    expect(c.body.openai_account_connection.credentials.openai_api_key).toBe('****9876');
    const got = await s.api(`/v1/agents?id=${c.body.id}`);
    expect(got.body).toEqual(c.body);
    const list = await s.api('/v1/agents/list?size=100');
    expectVocode('AgentPage', list.body);
    const item = list.body.items.find((a: any) => a.id === c.body.id);
    expect(item).toMatchObject({ prompt: c.body.prompt.id, voice: c.body.voice.id, webhook: c.body.webhook.id, actions: c.body.actions.map((a: any) => a.id) });
    const prompts = await s.api('/v1/prompts/list?size=100');
    expectVocode('PromptPage', prompts.body);
    expect(prompts.body.items.find((p: any) => p.id === c.body.prompt.id).prompt_template).toBe(c.body.prompt.prompt_template.id);
  });

  it('stores and returns the full Fluents agent field set', async () => {
    const fluents = {
      label: 'Support line', description: 'Handles tier-1', enable_recording: true, combine_last_call_context: true,
      provider: 'openai', model: 'gpt-4o-mini', transcriber: { type: 'transcriber_deepgram', model: 'nova-2', language: 'en' },
      call_duration_sec: 600, max_idle_check_count: 2, max_aggregate_idle_check_count: 5, idle_after_interaction_seconds: 12,
      voicemail_message: 'Sorry we missed you', skills: [{ name: 'billing' }], min_volume: 0.2, post_call_prompt: 'Summarize',
      post_call_email: { provider_config: { destination_id: 'd1' }, from_email: 'no-reply@example.com', to_email: 'ops@example.com', subject: 'Call', body: 'Done' },
      post_call_sms: { provider_config: { destination_id: 'd2' }, from_phone: '+15551234567', to_phone: '+15557654321', body: 'Thanks' },
      post_call_actions: [{ id: 'a1', provider_config: { destination_id: 'd3' }, config: { to_email: 'x@example.com' }, label: 'Follow-up' }],
      post_call_insights: [{ name: 'sentiment' }], activity_actions: [{ kind: 'crm' }], enable_dynamic_turns: true,
      enable_preload_prompt: true, transfer_on_end: false, dynamic_max_silence_secs: 3, dynamic_min_wait_secs: 0.2,
      enable_dynamic_vm_detection: true, llm_vm_detection_only: false, noise_suppression_level: 50, conversation_speed: 0.5,
      initial_message_delay: 1000, initial_message: 'Hi!', ivr_navigation_mode: 'default', interrupt_sensitivity: 'high',
    };
    const c = await s.api('/v1/agents/create', { body: { prompt: { content: 'x' }, voice: VOICES[0], ...fluents } });
    expect(c.status, JSON.stringify(c.body)).toBe(201);
    expect(c.body).toMatchObject(fluents);
    expectVocode('Agent', c.body);
    const got = await s.api(`/v1/agents?id=${c.body.id}`);
    expect(got.body).toMatchObject(fluents);
  });

  it('prompt create accepts an empty body object and fills content ""', async () => {
    const r = await s.api('/v1/prompts/create', { body: {} });
    expect(r.status).toBe(201);
    expectVocode('Prompt', r.body);
    expect(r.body.content).toBe('');
  });
});

describe('numbers, calls, usage', () => {
  it('links a number and answers every number operation in Vocode shapes', async () => {
    const conn = await s.api('/v1/account_connections/create', { body: { type: 'account_connection_twilio', credentials: { twilio_account_sid: 'AC9', twilio_auth_token: 'tok-5555' } } });
    const agent = await s.api('/v1/agents/create', { body: { prompt: { content: 'p' }, voice: VOICES[4] } });
    const linked = await s.api('/v1/numbers/link', { body: { phone_number: '1 (415) 555-0142', telephony_account_connection: conn.body.id, inbound_agent: agent.body.id } });
    expect(linked.status, JSON.stringify(linked.body)).toBe(201);
    expectVocode('PhoneNumber', linked.body);
    expect(linked.body).toMatchObject({ number: '+14155550142', active: true, label: '', outbound_only: false, telephony_provider: 'twilio' });
    expect(linked.body.inbound_agent.id).toBe(agent.body.id);
    expect(linked.body.telephony_account_connection.credentials.twilio_auth_token).toBe('****5555');
    for (const form of ['14155550142', '%2B14155550142']) {
      const got = await s.api(`/v1/numbers?phone_number=${form}`);
      expect(got.status).toBe(200);
      expect(got.body).toEqual(linked.body);
    }
    const list = await s.api('/v1/numbers/list');
    expectVocode('PhoneNumberPage', list.body);
    expect(list.body.items[0]).toMatchObject({ inbound_agent: agent.body.id, telephony_account_connection: conn.body.id });
    const upd = await s.api('/v1/numbers/update?phone_number=14155550142', { body: { label: 'Main', example_context: { name: 'Ada' }, inbound_agent: { initial_message: 'Welcome!' } } });
    expect(upd.status).toBe(201);
    expectVocode('PhoneNumber', upd.body);
    expect(upd.body).toMatchObject({ label: 'Main', example_context: { name: 'Ada' } });
    expect(upd.body.inbound_agent).toMatchObject({ id: agent.body.id, initial_message: 'Welcome!' });
    const cancelled = await s.api('/v1/numbers/cancel?phone_number=14155550142', { method: 'POST' });
    expect(cancelled.status).toBe(201);
    expectVocode('PhoneNumber', cancelled.body);
    expect(cancelled.body.active).toBe(false);
    const detached = await s.api('/v1/numbers/detach?phone_number=14155550142', { method: 'POST' });
    expect(detached.status).toBe(201);
    expect((await s.api('/v1/numbers?phone_number=14155550142')).status).toBe(404);
  });

  it('calls read expanded and list normalized, filtered by status', async () => {
    const store = s.running.store;
    const agent = await s.api('/v1/agents/create', { body: { prompt: { content: 'p' }, voice: VOICES[0] } });
    const userId = agent.body.user_id;
    const started = new Date(Date.now() - 90_000);
    const ended = await store.calls.insert(store.db, userId, {
      agentId: agent.body.id, toNumber: '+14155550001', fromNumber: '+14155550002', telephonyProvider: 'twilio',
      agentPhoneNumber: '+14155550002', status: 'ended', startTime: started, endTime: new Date(started.getTime() + 61_000),
      transcript: 'BOT: Hello\nHUMAN: Hi', stage: 'picked_up', telephonyMetadata: { type: 'telephony_metadata_twilio', call_sid: 'CA1' },
    });
    await store.calls.insert(store.db, userId, {
      agentId: agent.body.id, toNumber: '+14155550003', fromNumber: '+14155550002', telephonyProvider: 'twilio', agentPhoneNumber: '+14155550002',
    });
    const got = await s.api(`/v1/calls?id=${ended.id}`);
    expect(got.status).toBe(200);
    expectVocode('Call', got.body);
    expect(got.body.agent.id).toBe(agent.body.id);
    expect(got.body.start_time).toBe(started.toISOString());
    const list = await s.api(`/v1/calls/list?filters=${encodeURIComponent(JSON.stringify({ status: 'ended' }))}`);
    expectVocode('CallPage', list.body);
    expect(list.body.items).toHaveLength(1);
    expect(list.body.items[0]).toMatchObject({ id: ended.id, agent: agent.body.id, start_time: started.getTime() / 1000 });
    const usage = await s.api('/v1/usage');
    expectVocode('Usage', usage.body);
    expect(usage.body.monthly_usage_minutes).toBe(started.getUTCMonth() === new Date().getUTCMonth() ? 2 : 0);
  });
});
