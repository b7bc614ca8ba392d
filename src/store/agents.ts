import { and, asc, eq, sql } from 'drizzle-orm';
import type { z } from 'zod';
import { AgentDefaults, AGENT_SCALAR_FIELDS } from '../domain/agents.js';
import { ActionParams } from '../domain/actions.js';
import { ConflictError, NotFoundError, ValidationError } from '../domain/errors.js';
import { PineconeVectorDatabaseParams } from '../domain/vectorDatabases.js';
import { VoiceParams } from '../domain/voices.js';
import { WebhookParams } from '../domain/webhooks.js';
import { AccountConnectionParams } from '../domain/accountConnections.js';
import { parseOrThrow } from '../domain/validation.js';
import { col, jsonField, type FieldMap, type ListParams, type Page } from './listQuery.js';
import type { PromptRepo } from './prompts.js';
import { isForeignKeyViolation, listPage, type Exec, type ResourceRepo, type ResourceRow } from './resources.js';
import { perHandle } from './db.js';
import * as s from './schema.js';

type Json = Record<string, unknown>;
type Loc = (string | number)[];
export type AgentRow = typeof s.agents.$inferSelect;

export interface AgentDeps {
  prompts: PromptRepo;
  voices: ResourceRepo;
  actions: ResourceRepo;
  webhooks: ResourceRepo;
  vectorDatabases: ResourceRepo;
  connections: ResourceRepo;
}

const REF_KEYS = ['prompt', 'voice', 'actions', 'webhook', 'vector_database', 'openai_account_connection'] as const;

/** The relational query that loads an agent with everything its expanded form shows. */
export const AGENT_WITH = {
  prompt: { with: { promptTemplate: true as const } },
  voice: true as const,
  webhook: true as const,
  vectorDatabase: true as const,
  openaiAccountConnection: true as const,
  agentActions: { with: { action: true as const }, orderBy: [asc(s.agentActions.position)] },
};

export class AgentRepo {
  readonly fields: FieldMap;

  constructor(private readonly d: AgentDeps) {
    const t = s.agents;
    this.fields = {
      id: col(t.id, 'uuid'), created_at: col(t.createdAt, 'time'), updated_at: col(t.updatedAt, 'time'),
      label: col(t.label, 'text'), description: col(t.description, 'text'),
      prompt: col(t.promptId, 'uuid'), voice: col(t.voiceId, 'uuid'), webhook: col(t.webhookId, 'uuid'),
      vector_database: col(t.vectorDatabaseId, 'uuid'), openai_account_connection: col(t.openaiAccountConnectionId, 'uuid'),
      ...Object.fromEntries(AGENT_SCALAR_FIELDS.filter((f) => f !== 'label' && f !== 'description')
        .map((f) => [f, jsonField(t.data, f)])),
    };
  }

  // ---- references: an id of the user's own object, or an object given inline ----

  /**
   * One nested reference: an id of the user's own object, or an inline object. On update an inline
   * object edits the object already attached (same type); otherwise it is created, validated as new.
   */
  private async ref(
    repo: ResourceRepo, createSchema: z.ZodType, db: Exec, userId: string,
    currentId: string | null, v: unknown, loc: Loc,
  ): Promise<string | null> {
    if (v === null || v === undefined) return null;
    if (typeof v === 'string') return (await repo.assertOwned(db, userId, [v]))[0].id;
    const { id, ...o } = v as Json;
    // A full object with an id (e.g. read back from a GET) names that object; its other fields edit it.
    const target = typeof id === 'string' ? id : currentId;
    if (target) {
      const current = await repo.get(db, userId, target, true);
      const sameType = !repo.spec.typed || o.type === undefined || o.type === current.type;
      if (!sameType && typeof id === 'string') throw ValidationError.one(loc, `${id} is ${current.type}, not ${String(o.type)}`);
      if (sameType) {
        return typeof id === 'string' && Object.keys(o).length === 0 ? current.id : (await repo.update(db, userId, target, o, loc)).id;
      }
    }
    return (await repo.insert(db, userId, parseOrThrow(createSchema, o, loc) as Json, loc)).id;
  }

  private async openaiConnection(db: Exec, userId: string, currentId: string | null, v: unknown, loc: Loc): Promise<string | null> {
    const id = await this.ref(this.d.connections, AccountConnectionParams, db, userId, currentId, v, loc);
    if (id) {
      const row = await this.d.connections.get(db, userId, id);
      if (row.type !== 'account_connection_openai') {
        throw ValidationError.one(loc, `must be an account_connection_openai connection; ${row.id} is ${row.type}`);
      }
    }
    return id;
  }

  /** Actions keep their order; inline ones are created, or edited in place when they carry their id. */
  private async actionIds(db: Exec, userId: string, list: unknown[], loc: Loc): Promise<string[]> {
    const ids: string[] = [];
    for (const [i, a] of list.entries()) ids.push((await this.ref(this.d.actions, ActionParams, db, userId, null, a, [...loc, i]))!);
    return ids;
  }

  private async setActions(db: Exec, agentId: string, ids: string[]): Promise<void> {
    await db.delete(s.agentActions).where(eq(s.agentActions.agentId, agentId));
    if (ids.length) await db.insert(s.agentActions).values(ids.map((actionId, position) => ({ agentId, actionId, position })));
  }

  /** The transcriber may name an account connection: it must be the user's own. */
  private async checkTranscriber(db: Exec, userId: string, t: unknown): Promise<void> {
    const id = t && typeof t === 'object' ? (t as Json).account_connection : undefined;
    if (typeof id === 'string') await this.d.connections.assertOwned(db, userId, [id]);
  }

  private scalars(params: Json): Json {
    return Object.fromEntries(Object.entries(params).filter(([k, v]) => v !== undefined && !(REF_KEYS as readonly string[]).includes(k)));
  }

  async insert(db: Exec, userId: string, p: Json, loc: Loc = ['body']): Promise<AgentRow> {
    const promptId = typeof p.prompt === 'string'
      ? (await this.d.prompts.get(db, userId, p.prompt)).id
      : (await this.d.prompts.insert(db, userId, p.prompt as Json, [...loc, 'prompt'])).id;
    const voiceId = await this.ref(this.d.voices, VoiceParams, db, userId, null, p.voice, [...loc, 'voice']);
    const webhookId = await this.ref(this.d.webhooks, WebhookParams, db, userId, null, p.webhook, [...loc, 'webhook']);
    const vdbId = await this.ref(this.d.vectorDatabases, PineconeVectorDatabaseParams, db, userId, null, p.vector_database, [...loc, 'vector_database']);
    const openaiId = await this.openaiConnection(db, userId, null, p.openai_account_connection, [...loc, 'openai_account_connection']);
    const actionIds = await this.actionIds(db, userId, (p.actions as unknown[]) ?? [], [...loc, 'actions']);
    await this.checkTranscriber(db, userId, p.transcriber);
    const { label, description, ...data } = { ...AgentDefaults, ...this.scalars(p) };
    const [row] = await db.insert(s.agents).values({
      userId, label: label as string | null, description: description as string | null, data,
      promptId, voiceId, webhookId, vectorDatabaseId: vdbId, openaiAccountConnectionId: openaiId,
    }).returning();
    await this.setActions(db, row.id, actionIds);
    return row;
  }

  async find(db: Exec, userId: string, id: string, lock = false): Promise<AgentRow | undefined> {
    const q = db.select().from(s.agents).where(and(eq(s.agents.id, id), eq(s.agents.userId, userId))).limit(1);
    const [row] = lock ? await q.for('update') : await q;
    return row;
  }

  async get(db: Exec, userId: string, id: string, lock = false): Promise<AgentRow> {
    const row = await this.find(db, userId, id, lock);
    if (!row) throw new NotFoundError('agent', id);
    return row;
  }

  async update(db: Exec, userId: string, id: string, patch: Json, loc: Loc = ['body']): Promise<AgentRow> {
    const row = await this.get(db, userId, id, true);
    const set: Partial<typeof s.agents.$inferInsert> = { updatedAt: new Date() };
    if (patch.prompt !== undefined) {
      set.promptId = typeof patch.prompt === 'string'
        ? (await this.d.prompts.get(db, userId, patch.prompt)).id
        : (await this.d.prompts.update(db, userId, row.promptId, patch.prompt as Json, [...loc, 'prompt'])).id;
    }
    if (patch.voice !== undefined) set.voiceId = await this.ref(this.d.voices, VoiceParams, db, userId, row.voiceId, patch.voice, [...loc, 'voice']);
    if (patch.webhook !== undefined) set.webhookId = await this.ref(this.d.webhooks, WebhookParams, db, userId, row.webhookId, patch.webhook, [...loc, 'webhook']);
    if (patch.vector_database !== undefined) {
      set.vectorDatabaseId = await this.ref(this.d.vectorDatabases, PineconeVectorDatabaseParams, db, userId, row.vectorDatabaseId, patch.vector_database, [...loc, 'vector_database']);
    }
    if (patch.openai_account_connection !== undefined) {
      set.openaiAccountConnectionId = await this.openaiConnection(db, userId, row.openaiAccountConnectionId, patch.openai_account_connection, [...loc, 'openai_account_connection']);
    }
    await this.checkTranscriber(db, userId, patch.transcriber);
    const { label, description, ...data } = this.scalars(patch);
    if (label !== undefined) set.label = label as string | null;
    if (description !== undefined) set.description = description as string | null;
    set.data = { ...row.data, ...data };
    const [updated] = await db.update(s.agents).set(set).where(and(eq(s.agents.id, id), eq(s.agents.userId, userId))).returning();
    if (patch.actions !== undefined) {
      await this.setActions(db, id, await this.actionIds(db, userId, patch.actions as unknown[], [...loc, 'actions']));
    }
    return updated;
  }

  async delete(db: Exec, userId: string, id: string): Promise<AgentRow> {
    const row = await this.get(db, userId, id);
    try {
      await db.delete(s.agents).where(and(eq(s.agents.id, id), eq(s.agents.userId, userId)));
    } catch (err) {
      if (isForeignKeyViolation(err)) throw new ConflictError(`agent ${id} is the inbound agent of a number; give the number another agent first`);
      throw err;
    }
    return row;
  }

  /** A starter agent for `inbound_agent: "default"`. */
  async createDefault(db: Exec, userId: string): Promise<AgentRow> {
    return this.insert(db, userId, {
      name: 'Default agent',
      prompt: { content: 'You are a friendly, concise phone assistant. Help the caller with their question.' },
      // A voice type Vocode's SDKs know, so numbers with the default agent parse there too.
      voice: { type: 'voice_azure', voice_name: 'en-US-AriaNeural' },
      initial_message: 'Hello! How can I help you today?',
    });
  }

  // ---- read forms ----

  async getExpanded(db: Exec, userId: string, id: string): Promise<Json> {
    const full = await expandedQuery(db).execute({ id, userId });
    if (!full) throw new NotFoundError('agent', id);
    return this.expandLoaded(full);
  }

  /**
   * The expanded agent with its secrets in clear (the voice's own key, the OpenAI connection's
   * credentials), for resolving a call's providers. Never sent to a client.
   */
  async getForCall(db: Exec, userId: string, id: string): Promise<Json> {
    const full = await expandedQuery(db).execute({ id, userId });
    if (!full) throw new NotFoundError('agent', id);
    return {
      ...this.expandLoaded(full),
      voice: full.voice ? this.d.voices.reveal(full.voice) : null,
      openai_account_connection: full.openaiAccountConnection ? this.d.connections.reveal(full.openaiAccountConnection) : null,
    };
  }

  /** Expanded form from a row loaded with AGENT_WITH. */
  expandLoaded(full: AgentLoaded): Json {
    const prompt = this.d.prompts.expandWith(full.prompt, full.prompt.promptTemplate);
    return {
      id: full.id, user_id: full.userId, ...AgentDefaults, ...full.data,
      prompt,
      voice: full.voice ? this.d.voices.serialize(full.voice) : null,
      actions: full.agentActions.map((aa) => this.d.actions.serialize(aa.action)),
      webhook: full.webhook ? this.d.webhooks.serialize(full.webhook) : null,
      vector_database: full.vectorDatabase ? this.d.vectorDatabases.serialize(full.vectorDatabase) : null,
      openai_account_connection: full.openaiAccountConnection ? this.d.connections.serialize(full.openaiAccountConnection) : null,
      label: full.label, description: full.description,
    };
  }

  async list(db: Exec, userId: string, params: ListParams): Promise<Page<Json>> {
    const actionIds = sql<string[]>`(select coalesce(array_agg(${s.agentActions.actionId} order by ${s.agentActions.position}), '{}') from ${s.agentActions} where ${s.agentActions.agentId} = ${s.agents.id})`;
    const page = await listPage(db, s.agents, s.agents.userId, userId, params, this.fields, this.fields.created_at, s.agents.id, { actionIds });
    return { ...page, items: (page.items as (AgentRow & { actionIds: string[] })[]).map((r) => this.normalize(r, r.actionIds)) };
  }

  /** The normalized form: nested objects as ids. */
  normalize(r: AgentRow, actionIds: string[]): Json {
    return {
      id: r.id, user_id: r.userId, ...AgentDefaults, ...r.data,
      prompt: r.promptId, voice: r.voiceId, actions: actionIds, webhook: r.webhookId,
      vector_database: r.vectorDatabaseId, openai_account_connection: r.openaiAccountConnectionId,
      label: r.label, description: r.description,
    };
  }
}

const expandedQuery = perHandle((db) => db.query.agents.findFirst({
  where: and(eq(s.agents.id, sql.placeholder('id')), eq(s.agents.userId, sql.placeholder('userId'))), with: AGENT_WITH,
}).prepare('agent_expanded'));

export type AgentLoaded = AgentRow & {
  prompt: typeof s.prompts.$inferSelect & { promptTemplate: ResourceRow | null };
  voice: ResourceRow | null;
  webhook: ResourceRow | null;
  vectorDatabase: ResourceRow | null;
  openaiAccountConnection: ResourceRow | null;
  agentActions: { action: ResourceRow }[];
};
