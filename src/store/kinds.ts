import { AccountConnectionParams, accountConnectionDefaults, AccountConnectionSecrets } from '../domain/accountConnections.js';
import { ActionParams, actionDefaults, completeActionConfig } from '../domain/actions.js';
import { PromptTemplateDefaults, PromptTemplateParams } from '../domain/prompts.js';
import { VectorDatabaseDefaults, VectorDatabaseSecrets, PineconeVectorDatabaseParams } from '../domain/vectorDatabases.js';
import { VoiceParams, voiceDefaults, VoiceSecrets } from '../domain/voices.js';
import { WebhookDefaults, WebhookParams } from '../domain/webhooks.js';
import * as s from './schema.js';
import type { KindSpec } from './resources.js';

const none = (): string[][] => [];

export const promptTemplateKind: KindSpec = {
  noun: 'prompt_template', table: s.promptTemplates, typed: false, dataFields: ['required_context_keys'],
  createSchema: PromptTemplateParams, defaults: () => ({ ...PromptTemplateDefaults }), secrets: none,
  // Vocode's PromptTemplate.label is a string, never null.
  complete: (_t, full) => ({ ...full, label: full.label ?? '' }),
};

export const actionKind: KindSpec = {
  noun: 'action', table: s.actions, typed: true, dataFields: ['config', 'action_trigger'],
  createSchema: ActionParams, defaults: (t) => actionDefaults(t ?? ''), secrets: none,
  visibleSecrets: [['config', 'signature_secret']], mergeKeys: ['config'],
  complete: (t, full) => ({ ...full, config: completeActionConfig(t ?? '', (full.config ?? {}) as Record<string, unknown>) }),
};

export const voiceKind: KindSpec = {
  noun: 'voice', table: s.voices, typed: true,
  dataFields: ['voice_id', 'voice_name', 'speaker', 'model_id', 'model', 'voice'],
  createSchema: VoiceParams, defaults: (t) => voiceDefaults(t ?? ''), secrets: (t) => VoiceSecrets[t ?? ''] ?? [],
};

export const webhookKind: KindSpec = {
  noun: 'webhook', table: s.webhooks, typed: false, dataFields: ['url', 'method', 'subscriptions'],
  createSchema: WebhookParams, defaults: () => ({ ...WebhookDefaults }), secrets: none,
};

export const vectorDatabaseKind: KindSpec = {
  noun: 'vector_database', table: s.vectorDatabases, typed: true, dataFields: ['index', 'api_environment'],
  createSchema: PineconeVectorDatabaseParams,
  defaults: (t) => ({ ...(VectorDatabaseDefaults[t ?? ''] ?? {}) }), secrets: (t) => VectorDatabaseSecrets[t ?? ''] ?? [],
};

export const accountConnectionKind: KindSpec = {
  noun: 'account_connection', table: s.accountConnections, typed: true,
  dataFields: ['steering_pool', 'account_supports_any_caller_id', 'config'],
  createSchema: AccountConnectionParams, defaults: (t) => accountConnectionDefaults(t ?? ''),
  secrets: (t) => AccountConnectionSecrets[t ?? ''] ?? [], mergeKeys: ['credentials', 'config'],
};
