import { relations, sql } from 'drizzle-orm';
import {
  boolean, index, integer, jsonb, pgTable, primaryKey, text, timestamp, uniqueIndex, uuid,
} from 'drizzle-orm/pg-core';

const createdAt = () => timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow();
const updatedAt = () => timestamp('updated_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow();

export const users = pgTable('users', {
  id: uuid('id').primaryKey().default(sql`gen_random_uuid()`),
  name: text('name'),
  planType: text('plan_type').notNull().default('plan_unlimited'),
  monthlyUsageLimitMinutes: integer('monthly_usage_limit_minutes'),
  createdAt: createdAt(),
});

export const apiKeys = pgTable('api_keys', {
  id: uuid('id').primaryKey().default(sql`gen_random_uuid()`),
  userId: uuid('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
  keyHash: text('key_hash').notNull(),
  prefix: text('prefix').notNull(),
  label: text('label'),
  createdAt: createdAt(),
  revokedAt: timestamp('revoked_at', { withTimezone: true, mode: 'date' }),
}, (t) => [uniqueIndex('api_keys_hash_uq').on(t.keyHash), index('api_keys_user_idx').on(t.userId)]);

/**
 * Configuration resources share one shape: typed columns for what is joined, sorted or filtered on,
 * and `data` for the rest of the resource's own fields (secrets inside it are sealed).
 */
function resourceTable<N extends string>(name: N) {
  return pgTable(name, {
    id: uuid('id').primaryKey().default(sql`gen_random_uuid()`),
    userId: uuid('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
    type: text('type'),
    label: text('label'),
    description: text('description'),
    data: jsonb('data').$type<Record<string, unknown>>().notNull().default({}),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  }, (t) => [index(`${name}_user_created_idx`).on(t.userId, t.createdAt, t.id)]);
}

export const promptTemplates = resourceTable('prompt_templates');
export const actions = resourceTable('actions');
export const voices = resourceTable('voices');
export const webhooks = resourceTable('webhooks');
export const vectorDatabases = resourceTable('vector_databases');
export const accountConnections = resourceTable('account_connections');

export const prompts = pgTable('prompts', {
  id: uuid('id').primaryKey().default(sql`gen_random_uuid()`),
  userId: uuid('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
  type: text('type'),
  label: text('label'),
  description: text('description'),
  promptTemplateId: uuid('prompt_template_id').references(() => promptTemplates.id, { onDelete: 'restrict' }),
  data: jsonb('data').$type<Record<string, unknown>>().notNull().default({}),
  createdAt: createdAt(),
  updatedAt: updatedAt(),
}, (t) => [index('prompts_user_created_idx').on(t.userId, t.createdAt, t.id)]);

export const agents = pgTable('agents', {
  id: uuid('id').primaryKey().default(sql`gen_random_uuid()`),
  userId: uuid('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
  label: text('label'),
  description: text('description'),
  promptId: uuid('prompt_id').notNull().references(() => prompts.id, { onDelete: 'restrict' }),
  voiceId: uuid('voice_id').references(() => voices.id, { onDelete: 'restrict' }),
  webhookId: uuid('webhook_id').references(() => webhooks.id, { onDelete: 'restrict' }),
  vectorDatabaseId: uuid('vector_database_id').references(() => vectorDatabases.id, { onDelete: 'restrict' }),
  openaiAccountConnectionId: uuid('openai_account_connection_id')
    .references(() => accountConnections.id, { onDelete: 'restrict' }),
  data: jsonb('data').$type<Record<string, unknown>>().notNull().default({}),
  createdAt: createdAt(),
  updatedAt: updatedAt(),
}, (t) => [index('agents_user_created_idx').on(t.userId, t.createdAt, t.id)]);

export const agentActions = pgTable('agent_actions', {
  agentId: uuid('agent_id').notNull().references(() => agents.id, { onDelete: 'cascade' }),
  actionId: uuid('action_id').notNull().references(() => actions.id, { onDelete: 'restrict' }),
  position: integer('position').notNull(),
}, (t) => [primaryKey({ columns: [t.agentId, t.position] }), index('agent_actions_action_idx').on(t.actionId)]);

export const numbers = pgTable('numbers', {
  id: uuid('id').primaryKey().default(sql`gen_random_uuid()`),
  userId: uuid('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
  number: text('number').notNull(),
  active: boolean('active').notNull().default(true),
  label: text('label').notNull().default(''),
  description: text('description'),
  outboundOnly: boolean('outbound_only').notNull().default(false),
  telephonyProvider: text('telephony_provider').notNull(),
  inboundAgentId: uuid('inbound_agent_id').references(() => agents.id, { onDelete: 'restrict' }),
  telephonyAccountConnectionId: uuid('telephony_account_connection_id')
    .references(() => accountConnections.id, { onDelete: 'restrict' }),
  data: jsonb('data').$type<Record<string, unknown>>().notNull().default({}),
  // The carrier's id of the number and the configuration we replaced at link time; never shown.
  carrierState: jsonb('carrier_state').$type<Record<string, unknown>>(),
  createdAt: createdAt(),
  updatedAt: updatedAt(),
}, (t) => [
  // A number routes inbound calls to exactly one owner; cancelled numbers stay on record without holding it.
  uniqueIndex('numbers_number_active_uq').on(t.number).where(sql`${t.active}`),
  index('numbers_number_idx').on(t.number),
  index('numbers_user_created_idx').on(t.userId, t.createdAt, t.id),
]);

export const calls = pgTable('calls', {
  id: uuid('id').primaryKey().default(sql`gen_random_uuid()`),
  userId: uuid('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
  status: text('status').notNull().default('not_started'),
  errorMessage: text('error_message'),
  recordingAvailable: boolean('recording_available').notNull().default(false),
  transcript: text('transcript'),
  humanDetectionResult: text('human_detection_result'),
  doNotCallResult: boolean('do_not_call_result'),
  telephonyId: text('telephony_id'),
  stage: text('stage'),
  stageOutcome: text('stage_outcome'),
  telephonyMetadata: jsonb('telephony_metadata').$type<Record<string, unknown>>(),
  startTime: timestamp('start_time', { withTimezone: true, mode: 'date' }),
  endTime: timestamp('end_time', { withTimezone: true, mode: 'date' }),
  toNumber: text('to_number').notNull(),
  fromNumber: text('from_number').notNull(),
  agentId: uuid('agent_id').references(() => agents.id, { onDelete: 'set null' }),
  // The agent as it was configured for this call; the call keeps it if the agent later changes or goes.
  agentSnapshot: jsonb('agent_snapshot').$type<Record<string, unknown>>().notNull(),
  telephonyProvider: text('telephony_provider').notNull(),
  agentPhoneNumber: text('agent_phone_number').notNull(),
  hipaaCompliant: boolean('hipaa_compliant').notNull().default(false),
  onNoHumanAnswer: text('on_no_human_answer'),
  context: jsonb('context').$type<Record<string, string>>(),
  runDoNotCallDetection: boolean('run_do_not_call_detection'),
  telephonyAccountConnectionId: uuid('telephony_account_connection_id')
    .references(() => accountConnections.id, { onDelete: 'set null' }),
  telephonyParams: jsonb('telephony_params').$type<Record<string, string>>(),
  isOutgoing: boolean('is_outgoing').notNull().default(false),
  errors: jsonb('errors').$type<string[]>().notNull().default([]),
  actionHistory: jsonb('action_history').$type<Record<string, unknown>[]>().notNull().default([]),
  // Set once, when the carrier's media stream connects: a stream token works only once.
  mediaConnectedAt: timestamp('media_connected_at', { withTimezone: true, mode: 'date' }),
  // Runtime facts about the call that are not part of the API (turn metrics, the machine-detection detail…).
  internal: jsonb('internal').$type<Record<string, unknown>>().notNull().default({}),
  label: text('label'),
  description: text('description'),
  createdAt: createdAt(),
  updatedAt: updatedAt(),
}, (t) => [
  index('calls_user_created_idx').on(t.userId, t.createdAt, t.id),
  index('calls_user_status_idx').on(t.userId, t.status),
  // A carrier's call is recorded once, however often its webhook is retried.
  uniqueIndex('calls_telephony_uq').on(t.telephonyProvider, t.telephonyId),
]);

export const promptsRelations = relations(prompts, ({ one }) => ({
  promptTemplate: one(promptTemplates, { fields: [prompts.promptTemplateId], references: [promptTemplates.id] }),
}));

export const agentsRelations = relations(agents, ({ one, many }) => ({
  prompt: one(prompts, { fields: [agents.promptId], references: [prompts.id] }),
  voice: one(voices, { fields: [agents.voiceId], references: [voices.id] }),
  webhook: one(webhooks, { fields: [agents.webhookId], references: [webhooks.id] }),
  vectorDatabase: one(vectorDatabases, { fields: [agents.vectorDatabaseId], references: [vectorDatabases.id] }),
  openaiAccountConnection: one(accountConnections, {
    fields: [agents.openaiAccountConnectionId], references: [accountConnections.id],
  }),
  agentActions: many(agentActions),
}));

export const agentActionsRelations = relations(agentActions, ({ one }) => ({
  agent: one(agents, { fields: [agentActions.agentId], references: [agents.id] }),
  action: one(actions, { fields: [agentActions.actionId], references: [actions.id] }),
}));

export const numbersRelations = relations(numbers, ({ one }) => ({
  inboundAgent: one(agents, { fields: [numbers.inboundAgentId], references: [agents.id] }),
  telephonyAccountConnection: one(accountConnections, {
    fields: [numbers.telephonyAccountConnectionId], references: [accountConnections.id],
  }),
}));
