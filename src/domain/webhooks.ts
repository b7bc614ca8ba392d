import { z, HttpUrl, labelled, optionalShape } from './common.js';

/** Vocode's event types plus Fluents' error event. */
export const EventType = z.enum([
  'event_message', 'event_action', 'event_phone_call_connected', 'event_phone_call_ended',
  'event_phone_call_did_not_connect', 'event_transcript', 'event_recording', 'event_human_detection', 'event_error',
]).openapi('EventType');

const webhookFields = {
  subscriptions: z.array(EventType).max(20),
  url: HttpUrl,
  method: z.enum(['GET', 'POST']),
  ...labelled,
};

export const WebhookParams = z.object({ ...webhookFields, method: webhookFields.method.optional() }).openapi('WebhookParams');
export const WebhookUpdateParams = z.object(optionalShape(webhookFields)).openapi('WebhookUpdateParams');
export const WebhookDefaults = { method: 'POST', label: null, description: null };
