import { and, eq, sql } from 'drizzle-orm';
import { NotFoundError } from '../domain/errors.js';
import type { AgentRepo } from './agents.js';
import { col, type FieldMap, type ListParams, type Page } from './listQuery.js';
import { listPage, type Exec, type ResourceRepo } from './resources.js';
import * as s from './schema.js';

type Json = Record<string, unknown>;
export type CallRow = typeof s.calls.$inferSelect;
export type NewCall = Omit<typeof s.calls.$inferInsert, 'userId' | 'agentSnapshot'>;

export class CallRepo {
  readonly fields: FieldMap;

  constructor(private readonly agents: AgentRepo, private readonly connections: ResourceRepo) {
    const t = s.calls;
    this.fields = {
      id: col(t.id, 'uuid'), created_at: col(t.createdAt, 'time'), updated_at: col(t.updatedAt, 'time'),
      status: col(t.status, 'text'), to_number: col(t.toNumber, 'text'), from_number: col(t.fromNumber, 'text'),
      agent: col(t.agentId, 'uuid'), agent_phone_number: col(t.agentPhoneNumber, 'text'),
      telephony_provider: col(t.telephonyProvider, 'text'), telephony_id: col(t.telephonyId, 'text'),
      human_detection_result: col(t.humanDetectionResult, 'text'), do_not_call_result: col(t.doNotCallResult, 'bool'),
      stage: col(t.stage, 'text'), stage_outcome: col(t.stageOutcome, 'text'), start_time: col(t.startTime, 'time'),
      end_time: col(t.endTime, 'time'), recording_available: col(t.recordingAvailable, 'bool'),
      hipaa_compliant: col(t.hipaaCompliant, 'bool'), is_outgoing: col(t.isOutgoing, 'bool'),
      on_no_human_answer: col(t.onNoHumanAnswer, 'text'), error_message: col(t.errorMessage, 'text'),
      label: col(t.label, 'text'), telephony_account_connection: col(t.telephonyAccountConnectionId, 'uuid'),
    };
  }

  /** Records a call with a snapshot of its agent as configured at that moment. */
  async insert(db: Exec, userId: string, call: NewCall & { agentId: string }): Promise<CallRow> {
    const agentSnapshot = await this.agents.getExpanded(db, userId, call.agentId);
    const [row] = await db.insert(s.calls).values({ ...call, userId, agentSnapshot }).returning();
    return row;
  }

  async update(db: Exec, userId: string, id: string, set: Partial<NewCall>): Promise<CallRow> {
    const [row] = await db.update(s.calls).set({ ...set, updatedAt: new Date() })
      .where(and(eq(s.calls.id, id), eq(s.calls.userId, userId))).returning();
    if (!row) throw new NotFoundError('call', id);
    return row;
  }

  async get(db: Exec, userId: string, id: string): Promise<CallRow> {
    const [row] = await db.select().from(s.calls).where(and(eq(s.calls.id, id), eq(s.calls.userId, userId))).limit(1);
    if (!row) throw new NotFoundError('call', id);
    return row;
  }

  private base(r: CallRow): Json {
    return {
      id: r.id, user_id: r.userId, status: r.status, error_message: r.errorMessage, recording_available: r.recordingAvailable,
      transcript: r.transcript, human_detection_result: r.humanDetectionResult, do_not_call_result: r.doNotCallResult,
      telephony_id: r.telephonyId, stage: r.stage, stage_outcome: r.stageOutcome, telephony_metadata: r.telephonyMetadata,
      to_number: r.toNumber, from_number: r.fromNumber, telephony_provider: r.telephonyProvider,
      agent_phone_number: r.agentPhoneNumber, hipaa_compliant: r.hipaaCompliant, on_no_human_answer: r.onNoHumanAnswer,
      context: r.context, run_do_not_call_detection: r.runDoNotCallDetection, telephony_params: r.telephonyParams,
      is_outgoing: r.isOutgoing, errors: r.errors, action_history: r.actionHistory, label: r.label, description: r.description,
    };
  }

  /** The expanded form: the agent object and ISO times. */
  async expand(db: Exec, r: CallRow): Promise<Json> {
    const conn = r.telephonyAccountConnectionId ? await this.connections.find(db, r.userId, r.telephonyAccountConnectionId) : undefined;
    return {
      ...this.base(r), agent: r.agentSnapshot,
      start_time: r.startTime?.toISOString() ?? null, end_time: r.endTime?.toISOString() ?? null,
      telephony_account_connection: conn ? this.connections.serialize(conn) : null,
    };
  }

  /** The normalized form: the agent as its id, times as epoch seconds (Vocode's NormalizedCall). */
  normalize(r: CallRow): Json {
    return {
      ...this.base(r), agent: r.agentId ?? (r.agentSnapshot.id as string),
      start_time: r.startTime ? r.startTime.getTime() / 1000 : null, end_time: r.endTime ? r.endTime.getTime() / 1000 : null,
      telephony_account_connection: r.telephonyAccountConnectionId,
    };
  }

  async list(db: Exec, userId: string, params: ListParams): Promise<Page<Json>> {
    const page = await listPage(db, s.calls, s.calls.userId, userId, params, this.fields, this.fields.created_at, s.calls.id);
    return { ...page, items: (page.items as CallRow[]).map((r) => this.normalize(r)) };
  }

  /** Minutes of calls started this calendar month (UTC), each rounded up to a whole minute. */
  async monthlyMinutes(db: Exec, userId: string, now = new Date()): Promise<number> {
    const monthStart = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
    const [r] = await db.select({
      minutes: sql<string>`coalesce(sum(ceil(extract(epoch from (coalesce(${s.calls.endTime}, now()) - ${s.calls.startTime})) / 60.0)), 0)`,
    }).from(s.calls).where(and(eq(s.calls.userId, userId), sql`${s.calls.startTime} >= ${monthStart.toISOString()}::timestamptz`));
    return Number(r?.minutes ?? 0);
  }
}
