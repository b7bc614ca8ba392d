import { z } from '../../domain/common.js';
import { CreateCallRequest } from '../../domain/calls.js';
import type { Store } from '../../store/store.js';
import { createOutboundCall, endCall } from '../../telephony/calls.js';
import type { TelephonyContext } from '../../telephony/context.js';
import { IdQuery, ListQuery, pageOf, type RouteDef } from '../routes.js';

const CallStatus = z.enum(['not_started', 'in_progress', 'error', 'ended']).openapi('CallStatus');

const callFields = {
  id: z.uuid(), user_id: z.uuid(), status: CallStatus, error_message: z.string().nullable(),
  recording_available: z.boolean(), transcript: z.string().nullable(),
  human_detection_result: z.enum(['human', 'no_human']).nullable(), do_not_call_result: z.boolean().nullable(),
  telephony_id: z.string().nullable(),
  stage: z.enum(['created', 'picked_up', 'transfer_started', 'transfer_successful']).nullable(),
  stage_outcome: z.enum(['human_unanswered', 'call_did_not_connect', 'human_disconnected', 'bot_disconnected', 'transfer_unanswered', 'transfer_disconnected']).nullable(),
  telephony_metadata: z.record(z.string(), z.unknown()).nullable(),
  to_number: z.string(), from_number: z.string(), telephony_provider: z.string(), agent_phone_number: z.string(),
  hipaa_compliant: z.boolean(), on_no_human_answer: z.enum(['continue', 'hangup']).nullable(),
  context: z.record(z.string(), z.string()).nullable(), run_do_not_call_detection: z.boolean().nullable(),
  telephony_params: z.record(z.string(), z.string()).nullable(), is_outgoing: z.boolean(), errors: z.array(z.string()),
  action_history: z.array(z.record(z.string(), z.unknown())),
};

export function callRoutes(store: Store, telephony: TelephonyContext): RouteDef[] {
  const c = store.calls;
  const one = z.object({
    ...callFields, agent: z.record(z.string(), z.unknown()), start_time: z.string().nullable(), end_time: z.string().nullable(),
    telephony_account_connection: z.record(z.string(), z.unknown()).nullable(),
  }).openapi('Call');
  const item = z.object({
    ...callFields, agent: z.uuid(), start_time: z.number().nullable(), end_time: z.number().nullable(),
    telephony_account_connection: z.uuid().nullable(),
  }).openapi('NormalizedCall');
  return [
    {
      method: 'get', path: '/v1/calls', operationId: 'get_call', summary: 'Get call', tag: 'calls',
      query: IdQuery, response: one, status: 200,
      handler: async ({ userId, query }) => c.expand(store.db, await c.get(store.db, userId, query.id)),
    },
    {
      method: 'post', path: '/v1/calls/create', operationId: 'create_call', summary: 'Place an outbound call', tag: 'calls',
      body: CreateCallRequest, response: one, status: 201, errors: [503], // 503: the node is at SWITCHBOARD_MAX_CALLS
      handler: async ({ userId, body }) => c.expand(store.db, await createOutboundCall(telephony, userId, body)),
    },
    {
      method: 'post', path: '/v1/calls/end', operationId: 'end_call', summary: 'End a call (hangs up through the carrier)', tag: 'calls',
      query: IdQuery, response: one, status: 201,
      handler: async ({ userId, query }) => c.expand(store.db, await endCall(telephony, userId, query.id)),
    },
    {
      method: 'get', path: '/v1/calls/list', operationId: 'list_calls', summary: 'List calls', tag: 'calls',
      query: ListQuery, response: pageOf(item, 'CallPage'), status: 200,
      handler: ({ userId, query }) => c.list(store.db, userId, query),
    },
  ];
}
