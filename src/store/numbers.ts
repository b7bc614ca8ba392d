import { and, desc, eq, sql } from 'drizzle-orm';
import { AgentParams } from '../domain/agents.js';
import { TELEPHONY_TYPES } from '../domain/accountConnections.js';
import { ConflictError, NotFoundError, ValidationError } from '../domain/errors.js';
import { NUMBER_DATA_DEFAULTS } from '../domain/numbers.js';
import { parseOrThrow } from '../domain/validation.js';
import { AGENT_WITH, type AgentLoaded, type AgentRepo } from './agents.js';
import { col, jsonField, type FieldMap, type ListParams, type Page } from './listQuery.js';
import { listPage, pgCode, type Exec, type ResourceRepo, type ResourceRow } from './resources.js';
import { perHandle } from './db.js';
import * as s from './schema.js';

type Json = Record<string, unknown>;
type Loc = (string | number)[];
export type NumberRow = typeof s.numbers.$inferSelect;

const PROVIDER_OF: Record<string, string> = {
  account_connection_twilio: 'twilio', account_connection_fluents_twilio: 'twilio', account_connection_telnyx: 'telnyx',
};

const DATA_KEYS = ['example_context', 'config', 'tags', 'sms_enabled', 'is_routing_number'] as const;

const expandedQuery = perHandle((db) => db.query.numbers.findFirst({
  where: and(eq(s.numbers.number, sql.placeholder('number')), eq(s.numbers.userId, sql.placeholder('userId'))),
  with: { inboundAgent: { with: AGENT_WITH }, telephonyAccountConnection: true },
  // A number cancelled and then bought or linked again: the live one is the number.
  orderBy: [desc(s.numbers.active), desc(s.numbers.createdAt)],
}).prepare('number_expanded'));

export class NumberRepo {
  readonly fields: FieldMap;

  constructor(private readonly agents: AgentRepo, private readonly connections: ResourceRepo) {
    const t = s.numbers;
    this.fields = {
      id: col(t.id, 'uuid'), created_at: col(t.createdAt, 'time'), updated_at: col(t.updatedAt, 'time'),
      number: col(t.number, 'text'), active: col(t.active, 'bool'), label: col(t.label, 'text'),
      description: col(t.description, 'text'), outbound_only: col(t.outboundOnly, 'bool'),
      telephony_provider: col(t.telephonyProvider, 'text'), inbound_agent: col(t.inboundAgentId, 'uuid'),
      telephony_account_connection: col(t.telephonyAccountConnectionId, 'uuid'),
      tags: jsonField(t.data, 'tags'), sms_enabled: jsonField(t.data, 'sms_enabled'),
      is_routing_number: jsonField(t.data, 'is_routing_number'),
    };
  }

  async telephonyConnection(db: Exec, userId: string, id: string, loc: Loc): Promise<ResourceRow> {
    const [conn] = await this.connections.assertOwned(db, userId, [id]);
    if (!TELEPHONY_TYPES.has(conn.type ?? '')) {
      throw ValidationError.one(loc, `must be a telephony account connection (${[...TELEPHONY_TYPES].join(', ')}); ${id} is ${conn.type}`);
    }
    return conn;
  }

  private async inboundAgentForCreate(db: Exec, userId: string, v: unknown, loc: Loc): Promise<string | null> {
    if (v === null || v === undefined) return null;
    if (v === 'default') return (await this.agents.createDefault(db, userId)).id;
    if (typeof v === 'string') return (await this.agents.get(db, userId, v)).id;
    return (await this.agents.insert(db, userId, v as Json, loc)).id;
  }

  private pickData(p: Json): Json {
    return Object.fromEntries(DATA_KEYS.filter((k) => p[k] !== undefined).map((k) => [k, p[k]]));
  }

  /** Stores a number the user already owns at a carrier, against their account connection. */
  async link(db: Exec, userId: string, p: Json, carrierState: Record<string, unknown> | null = null): Promise<NumberRow> {
    const conn = await this.telephonyConnection(db, userId, p.telephony_account_connection as string, ['body', 'telephony_account_connection']);
    return this.insertClaimed(db, userId, p, {
      number: p.phone_number as string, provider: PROVIDER_OF[conn.type ?? ''] ?? 'twilio', connectionId: conn.id, carrierState,
    });
  }

  /** Stores a number now held at its carrier (linked or bought), with what we keep about it there. */
  async insertClaimed(db: Exec, userId: string, p: Json, o: { number: string; provider: string; connectionId: string | null; carrierState: Record<string, unknown> | null }): Promise<NumberRow> {
    if (o.connectionId) await this.telephonyConnection(db, userId, o.connectionId, ['body', 'telephony_account_connection']);
    const inboundAgentId = await this.inboundAgentForCreate(db, userId, p.inbound_agent, ['body', 'inbound_agent']);
    return this.insert(db, userId, {
      number: o.number, telephonyProvider: o.provider, telephonyAccountConnectionId: o.connectionId, inboundAgentId,
      outboundOnly: (p.outbound_only as boolean) ?? false, label: (p.label as string) ?? '',
      description: (p.description as string) ?? null, data: { ...NUMBER_DATA_DEFAULTS, ...this.pickData(p) }, carrierState: o.carrierState,
    });
  }

  async insert(db: Exec, userId: string, values: Omit<typeof s.numbers.$inferInsert, 'userId'>): Promise<NumberRow> {
    try {
      const [row] = await db.insert(s.numbers).values({ ...values, userId }).returning();
      return row;
    } catch (err) {
      if (pgCode(err) === '23505') throw new ConflictError(`phone number ${values.number} cannot be linked: it is already linked on this Switchboard`);
      throw err;
    }
  }

  async find(db: Exec, userId: string, number: string, lock = false): Promise<NumberRow | undefined> {
    const q = db.select().from(s.numbers).where(and(eq(s.numbers.number, number), eq(s.numbers.userId, userId)))
      .orderBy(desc(s.numbers.active), desc(s.numbers.createdAt)).limit(1);
    const [row] = lock ? await q.for('update') : await q;
    return row;
  }

  async get(db: Exec, userId: string, number: string, lock = false): Promise<NumberRow> {
    const row = await this.find(db, userId, number, lock);
    if (!row) throw new NotFoundError('phone number', number);
    return row;
  }

  /** The number's row whoever owns it: inbound calls find their owner by the dialled number. */
  async findAnyUser(db: Exec, number: string): Promise<NumberRow | undefined> {
    const [row] = await db.select().from(s.numbers).where(eq(s.numbers.number, number))
      .orderBy(desc(s.numbers.active), desc(s.numbers.createdAt)).limit(1);
    return row;
  }

  /** The active numbers bought for a connection's steering pool (its carrier state says so), listed there or not. */
  async boughtForPool(db: Exec, userId: string, connectionId: string): Promise<NumberRow[]> {
    return db.select().from(s.numbers).where(and(
      eq(s.numbers.userId, userId), eq(s.numbers.telephonyAccountConnectionId, connectionId), eq(s.numbers.active, true),
      sql`${s.numbers.carrierState}->>'steering_pool' = ${connectionId}`,
    ));
  }

  async setCarrierState(db: Exec, id: string, state: Record<string, unknown> | null): Promise<void> {
    await db.update(s.numbers).set({ carrierState: state, updatedAt: new Date() }).where(eq(s.numbers.id, id));
  }

  async getById(db: Exec, userId: string, id: string): Promise<NumberRow> {
    const [row] = await db.select().from(s.numbers).where(and(eq(s.numbers.id, id), eq(s.numbers.userId, userId))).limit(1);
    if (!row) throw new NotFoundError('phone number', id);
    return row;
  }

  async update(db: Exec, userId: string, number: string, p: Json): Promise<NumberRow> {
    const row = await this.get(db, userId, number, true);
    const set: Partial<typeof s.numbers.$inferInsert> = { updatedAt: new Date(), data: { ...row.data, ...this.pickData(p) } };
    if (p.outbound_only !== undefined) set.outboundOnly = p.outbound_only as boolean;
    if (p.label !== undefined) set.label = (p.label as string | null) ?? '';
    if (p.description !== undefined) set.description = p.description as string | null;
    if (p.inbound_agent !== undefined) {
      const v = p.inbound_agent;
      const loc = ['body', 'inbound_agent'];
      if (v === null) set.inboundAgentId = null;
      else if (typeof v === 'string') set.inboundAgentId = (await this.agents.get(db, userId, v)).id;
      // Agent update params edit the number's current agent in place; with no agent yet they must describe a whole one.
      else if (row.inboundAgentId) await this.agents.update(db, userId, row.inboundAgentId, v as Json, loc);
      else set.inboundAgentId = (await this.agents.insert(db, userId, parseOrThrow(AgentParams, v, loc) as Json, loc)).id;
    }
    const [updated] = await db.update(s.numbers).set(set).where(eq(s.numbers.id, row.id)).returning();
    return updated;
  }

  async setActiveById(db: Exec, id: string, active: boolean): Promise<NumberRow> {
    const [updated] = await db.update(s.numbers).set({ active, updatedAt: new Date() }).where(eq(s.numbers.id, id)).returning();
    return updated;
  }

  async remove(db: Exec, userId: string, id: string): Promise<void> {
    await db.delete(s.numbers).where(and(eq(s.numbers.id, id), eq(s.numbers.userId, userId)));
  }

  async getExpanded(db: Exec, userId: string, number: string): Promise<Json> {
    const full = await expandedQuery(db).execute({ number, userId });
    if (!full) throw new NotFoundError('phone number', number);
    const agent = full.inboundAgent ? this.agents.expandLoaded(full.inboundAgent as unknown as AgentLoaded) : null;
    return {
      ...this.base(full),
      inbound_agent: agent,
      inbound_agent_name: agent ? (agent.name as string | null) : null,
      telephony_account_connection: full.telephonyAccountConnection ? this.connections.serialize(full.telephonyAccountConnection) : null,
    };
  }

  private base(r: NumberRow): Json {
    return {
      id: r.id, user_id: r.userId, number: r.number, active: r.active, label: r.label, description: r.description,
      outbound_only: r.outboundOnly, telephony_provider: r.telephonyProvider, ...NUMBER_DATA_DEFAULTS, ...r.data,
    };
  }

  normalize(r: NumberRow): Json {
    return { ...this.base(r), inbound_agent: r.inboundAgentId, telephony_account_connection: r.telephonyAccountConnectionId };
  }

  async list(db: Exec, userId: string, params: ListParams): Promise<Page<Json>> {
    const page = await listPage(db, s.numbers, s.numbers.userId, userId, params, this.fields, this.fields.created_at, s.numbers.id);
    return { ...page, items: (page.items as NumberRow[]).map((r) => this.normalize(r)) };
  }
}
