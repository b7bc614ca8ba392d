import { and, desc, eq } from 'drizzle-orm';
import { isUuid } from '../domain/common.js';
import type { Database, Db } from './db.js';
import { AgentRepo } from './agents.js';
import { CallRepo } from './calls.js';
import * as kinds from './kinds.js';
import { NumberRepo } from './numbers.js';
import { PromptRepo } from './prompts.js';
import { ResourceRepo } from './resources.js';
import { SecretBox } from './secretBox.js';
import { UserRepo } from './users.js';
import * as schema from './schema.js';

type Json = Record<string, unknown>;

/** One repository per aggregate over one database. */
export class Store {
  readonly db: Db;
  readonly templates: ResourceRepo;
  readonly actions: ResourceRepo;
  readonly voices: ResourceRepo;
  readonly webhooks: ResourceRepo;
  readonly vectorDatabases: ResourceRepo;
  readonly connections: ResourceRepo;
  readonly prompts: PromptRepo;
  readonly agents: AgentRepo;
  readonly numbers: NumberRepo;
  readonly calls: CallRepo;
  readonly users = new UserRepo();

  constructor(readonly database: Database, readonly box: SecretBox) {
    this.db = database.db;
    this.templates = new ResourceRepo(kinds.promptTemplateKind, box);
    this.actions = new ResourceRepo(kinds.actionKind, box);
    this.voices = new ResourceRepo(kinds.voiceKind, box);
    this.webhooks = new ResourceRepo(kinds.webhookKind, box);
    this.vectorDatabases = new ResourceRepo(kinds.vectorDatabaseKind, box);
    this.connections = new ResourceRepo(kinds.accountConnectionKind, box);
    this.prompts = new PromptRepo(this.templates);
    this.agents = new AgentRepo({
      prompts: this.prompts, voices: this.voices, actions: this.actions, webhooks: this.webhooks,
      vectorDatabases: this.vectorDatabases, connections: this.connections,
    });
    this.numbers = new NumberRepo(this.agents, this.connections);
    this.calls = new CallRepo(this.agents, this.connections);
  }

  /**
   * One user's account connections with credentials in clear, as provider resolution reads them:
   * by id, or the most recently updated one of a type.
   */
  connectionLookup(userId: string) {
    const t = schema.accountConnections;
    type Revealed = Json & { id: string; type: string };
    return {
      byId: async (id: string): Promise<Revealed | null> => {
        if (!isUuid(id)) return null;
        const row = await this.connections.find(this.db, userId, id);
        return row ? (this.connections.reveal(row) as Revealed) : null;
      },
      latestOfType: async (type: string): Promise<Revealed | null> => {
        const [row] = await this.db.select().from(t).where(and(eq(t.userId, userId), eq(t.type, type))).orderBy(desc(t.updatedAt)).limit(1);
        return row ? (this.connections.reveal(row) as Revealed) : null;
      },
    };
  }

  /** Runs `fn` in one transaction: inline objects created on the way vanish if anything fails. */
  tx<T>(fn: (db: Db) => Promise<T>): Promise<T> {
    return this.db.transaction((tx) => fn(tx as unknown as Db));
  }

  close(): Promise<void> {
    return this.database.close();
  }
}
