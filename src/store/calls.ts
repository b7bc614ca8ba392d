import { and, eq, inArray, isNull, notInArray, sql } from 'drizzle-orm';
import { ConflictError, NotFoundError } from '../domain/errors.js';
import type { AgentRepo } from './agents.js';
import { col, type FieldMap, type ListParams, type Page } from './listQuery.js';
import { listPage, pgCode, type Exec, type ResourceRepo } from './resources.js';
import * as s from './schema.js';

type Json = Record<string, unknown>;
export type CallRow = typeof s.calls.$inferSelect;
export type NewCall = Omit<typeof s.calls.$inferInsert, 'userId' | 'agentSnapshot'>;

const FINISHED = ['ended', 'error'];

/** The call has ended (or failed): its record is final but for what `finish` still adds. */
export const isCallOver = (call: Pick<CallRow, 'status'>): boolean => FINISHED.includes(call.status);

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
    try {
      const [row] = await db.insert(s.calls).values({ ...call, userId, agentSnapshot }).returning();
      return row;
    } catch (err) {
      // The carrier's call is already on record (a webhook delivered twice at once).
      if (pgCode(err) === '23505') throw new ConflictError(`call ${call.telephonyId ?? ''} is already recorded`);
      throw err;
    }
  }

  async update(db: Exec, userId: string, id: string, set: Partial<NewCall>): Promise<CallRow> {
    const [row] = await db.update(s.calls).set({ ...set, updatedAt: new Date() })
      .where(and(eq(s.calls.id, id), eq(s.calls.userId, userId))).returning();
    if (!row) throw new NotFoundError('call', id);
    return row;
  }

  // ---- for carriers' webhooks and media streams: unscoped, because they prove themselves by signature or token ----

  async findById(db: Exec, id: string): Promise<CallRow | undefined> {
    const [row] = await db.select().from(s.calls).where(eq(s.calls.id, id)).limit(1);
    return row;
  }

  async findByTelephonyId(db: Exec, provider: string, telephonyId: string): Promise<CallRow | undefined> {
    const [row] = await db.select().from(s.calls)
      .where(and(eq(s.calls.telephonyId, telephonyId), eq(s.calls.telephonyProvider, provider))).limit(1);
    return row;
  }

  /** Marks the call's media stream connected; undefined if it already was (a stream token works once). */
  async claimMedia(db: Exec, id: string): Promise<CallRow | undefined> {
    const [row] = await db.update(s.calls).set({ mediaConnectedAt: new Date(), updatedAt: new Date() })
      .where(and(eq(s.calls.id, id), isNull(s.calls.mediaConnectedAt), notInArray(s.calls.status, FINISHED))).returning();
    return row;
  }

  /**
   * Moves a call on, unless it has finished: a late or repeated carrier event never reopens an ended call.
   * Returns the row after the change, or undefined if the call had finished.
   */
  async advance(db: Exec, id: string, set: Partial<NewCall>): Promise<CallRow | undefined> {
    const [row] = await db.update(s.calls).set({ ...set, updatedAt: new Date() })
      .where(and(eq(s.calls.id, id), notInArray(s.calls.status, FINISHED))).returning();
    return row;
  }

  /** Records a human/machine verdict unless one is recorded already (the first stands), on a call not over. */
  async noteHumanDetection(db: Exec, id: string, result: 'human' | 'no_human'): Promise<void> {
    const t = s.calls;
    await db.update(t).set({ humanDetectionResult: sql`COALESCE(${t.humanDetectionResult}, ${result})`, updatedAt: new Date() })
      .where(and(eq(t.id, id), notInArray(t.status, FINISHED)));
  }

  /**
   * Ends a call. The first ending wins: a call already ended keeps its status, end time and outcome (the
   * carrier's status callback, `calls/end` and the media stream's end may all report it); the transcript,
   * action history and internals are written whenever given.
   */
  async finish(db: Exec, id: string, f: {
    status: 'ended' | 'error'; stageOutcome?: string | null; errorMessage?: string | null; endTime?: Date;
    transcript?: string; actionHistory?: Record<string, unknown>[]; internal?: Record<string, unknown>; errors?: string[];
  }): Promise<CallRow | undefined> {
    const t = s.calls;
    const end = (f.endTime ?? new Date()).toISOString();
    const set: Record<string, unknown> = {
      status: sql`CASE WHEN ${t.status} IN ('ended', 'error') THEN ${t.status} ELSE ${f.status} END`,
      endTime: sql`COALESCE(${t.endTime}, ${end}::timestamptz)`,
      updatedAt: new Date(),
    };
    if (f.stageOutcome) set.stageOutcome = sql`COALESCE(${t.stageOutcome}, ${f.stageOutcome})`;
    if (f.errorMessage) set.errorMessage = sql`COALESCE(${t.errorMessage}, ${f.errorMessage})`;
    if (f.transcript !== undefined) set.transcript = f.transcript;
    if (f.actionHistory !== undefined) set.actionHistory = f.actionHistory;
    if (f.errors !== undefined) set.errors = f.errors;
    if (f.internal !== undefined) set.internal = sql`${t.internal} || ${JSON.stringify(f.internal)}::jsonb`;
    const [row] = await db.update(t).set(set).where(eq(t.id, id)).returning();
    return row;
  }

  /** Writes what the conversation produced, whatever the call's status (a transfer ends the record elsewhere). */
  async record(db: Exec, id: string, f: { transcript?: string; actionHistory?: Record<string, unknown>[]; errors?: string[]; internal?: Record<string, unknown> }): Promise<void> {
    const t = s.calls;
    const set: Record<string, unknown> = { updatedAt: new Date() };
    if (f.transcript !== undefined) set.transcript = f.transcript;
    if (f.actionHistory !== undefined) set.actionHistory = f.actionHistory;
    if (f.errors !== undefined) set.errors = f.errors;
    if (f.internal !== undefined) set.internal = sql`${t.internal} || ${JSON.stringify(f.internal)}::jsonb`;
    await db.update(t).set(set).where(eq(t.id, id));
  }

  async mergeInternal(db: Exec, id: string, internal: Record<string, unknown>): Promise<void> {
    await this.record(db, id, { internal });
  }

  /** The carrier's id of the call, whatever its status (a fast final callback may have ended it already). */
  async setTelephony(db: Exec, id: string, telephonyId: string, metadata: Record<string, unknown>): Promise<CallRow> {
    const [row] = await db.update(s.calls).set({ telephonyId, telephonyMetadata: metadata, updatedAt: new Date() }).where(eq(s.calls.id, id)).returning();
    return row;
  }

  async setTelephonyMetadata(db: Exec, id: string, metadata: Record<string, unknown>): Promise<void> {
    await db.update(s.calls).set({ telephonyMetadata: metadata, updatedAt: new Date() }).where(eq(s.calls.id, id));
  }

  /** Calls of the user that are not over yet, oldest first. */
  async active(db: Exec, userId: string): Promise<CallRow[]> {
    return db.select().from(s.calls).where(and(eq(s.calls.userId, userId), inArray(s.calls.status, ['not_started', 'in_progress'])));
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
