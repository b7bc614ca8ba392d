import { AccountConnectionParams, AccountConnectionUpdateParams } from '../../domain/accountConnections.js';
import { ActionParams, ActionUpdateParams } from '../../domain/actions.js';
import { PromptTemplateParams, PromptTemplateUpdateParams } from '../../domain/prompts.js';
import { PineconeVectorDatabaseParams, PineconeVectorDatabaseUpdateParams } from '../../domain/vectorDatabases.js';
import { VoiceParams, VoiceUpdateParams } from '../../domain/voices.js';
import { WebhookParams, WebhookUpdateParams } from '../../domain/webhooks.js';
import type { z } from '../../domain/common.js';
import type { ResourceRepo } from '../../store/resources.js';
import type { Store } from '../../store/store.js';
import type { RouteDef } from '../routes.js';
import { crudRoutes, withIds, type CrudOps } from './crud.js';

/** Operations of a configuration resource that has no nested objects of its own. */
export function flatOps(repo: ResourceRepo): CrudOps {
  return {
    get: async (db, u, id) => repo.serialize(await repo.get(db, u, id)),
    list: (db, u, q) => repo.list(db, u, q),
    create: async (db, u, body) => repo.serialize(await repo.insert(db, u, body)),
    update: async (db, u, id, body) => repo.serialize(await repo.update(db, u, id, body)),
    delete: async (db, u, id) => repo.serialize(await repo.delete(db, u, id)),
  };
}

function flat(store: Store, repo: ResourceRepo, resource: string, singular: string, create: z.ZodType, update: z.ZodType, name: string, pageName: string): RouteDef[] {
  const one = withIds(create, name);
  return crudRoutes(store, { resource, singular, create, update, one, item: one, pageName, ops: flatOps(repo) });
}

export function flatResourceRoutes(store: Store): RouteDef[] {
  return [
    ...flat(store, store.actions, 'actions', 'action', ActionParams, ActionUpdateParams, 'ActionResponseModel', 'ActionPage'),
    ...flat(store, store.voices, 'voices', 'voice', VoiceParams, VoiceUpdateParams, 'VoiceResponseModel', 'VoicePage'),
    ...flat(store, store.webhooks, 'webhooks', 'webhook', WebhookParams, WebhookUpdateParams, 'Webhook', 'WebhookPage'),
    ...flat(store, store.vectorDatabases, 'vector_databases', 'vector_database', PineconeVectorDatabaseParams,
      PineconeVectorDatabaseUpdateParams, 'PineconeVectorDatabase', 'VectorDatabasePage'),
    ...flat(store, store.templates, 'prompt_templates', 'prompt_template', PromptTemplateParams, PromptTemplateUpdateParams,
      'PromptTemplate', 'PromptTemplatePage'),
  ];
}
