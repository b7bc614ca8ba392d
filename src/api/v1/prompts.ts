import { PromptParams, PromptUpdateParams, PromptTemplateParams } from '../../domain/prompts.js';
import { z } from '../../domain/common.js';
import type { Store } from '../../store/store.js';
import type { RouteDef } from '../routes.js';
import { crudRoutes, withIds } from './crud.js';

export function promptRoutes(store: Store): RouteDef[] {
  const p = store.prompts;
  const template = withIds(PromptTemplateParams, 'PromptTemplate');
  const one = (PromptParams.extend({ id: z.uuid(), user_id: z.uuid(), prompt_template: template.nullable() })).openapi('Prompt');
  const item = (PromptParams.extend({ id: z.uuid(), user_id: z.uuid(), prompt_template: z.uuid().nullable() })).openapi('NormalizedPrompt');
  return crudRoutes(store, {
    resource: 'prompts', singular: 'prompt', create: PromptParams, update: PromptUpdateParams, one, item, pageName: 'PromptPage',
    ops: {
      get: async (db, u, id) => p.expand(db, await p.get(db, u, id)),
      list: (db, u, q) => p.list(db, u, q),
      create: async (db, u, body) => p.expand(db, await p.insert(db, u, body)),
      update: async (db, u, id, body) => p.expand(db, await p.update(db, u, id, body)),
      delete: async (db, u, id) => {
        const expanded = await p.expand(db, await p.get(db, u, id));
        await p.delete(db, u, id);
        return expanded;
      },
    },
  });
}
