import { AgentParams, AgentUpdateParams } from '../../domain/agents.js';
import { z } from '../../domain/common.js';
import type { Store } from '../../store/store.js';
import type { RouteDef } from '../routes.js';
import { crudRoutes } from './crud.js';

export function agentRoutes(store: Store): RouteDef[] {
  const a = store.agents;
  const ids = { id: z.uuid(), user_id: z.uuid() };
  const one = AgentParams.extend({ ...ids, prompt: z.record(z.string(), z.unknown()), voice: z.record(z.string(), z.unknown()), actions: z.array(z.record(z.string(), z.unknown())) }).openapi('Agent');
  const item = AgentParams.extend({ ...ids, prompt: z.uuid(), voice: z.uuid().nullable(), actions: z.array(z.uuid()), webhook: z.uuid().nullable(), vector_database: z.uuid().nullable(), openai_account_connection: z.uuid().nullable() }).openapi('NormalizedAgent');
  return crudRoutes(store, {
    resource: 'agents', singular: 'agent', create: AgentParams, update: AgentUpdateParams, one, item, pageName: 'AgentPage',
    ops: {
      get: (db, u, id) => a.getExpanded(db, u, id),
      list: (db, u, q) => a.list(db, u, q),
      create: async (db, u, body) => a.getExpanded(db, u, (await a.insert(db, u, body)).id),
      update: async (db, u, id, body) => a.getExpanded(db, u, (await a.update(db, u, id, body)).id),
      delete: async (db, u, id) => {
        const expanded = await a.getExpanded(db, u, id);
        await a.delete(db, u, id);
        return expanded;
      },
    },
  });
}
