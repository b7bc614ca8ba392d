/**
 * The engine's view of an agent's actions. Plain objects, typed here: the engine never imports the
 * stored (API/domain) shapes. Whoever starts a call turns each stored action into an `EngineAction`
 * (`action_trigger.config.phrase_triggers[].phrase` becomes `trigger.phrases`).
 */

export type EngineActionTrigger =
  | { type: 'action_trigger_function_call' }
  /** Runs when the agent itself says one of `phrases` (Vocode's `phrase_condition_type_contains`). */
  | { type: 'action_trigger_phrase_based'; phrases: string[] };

export interface EngineAction {
  id: string;
  /** `action_transfer_call`, `action_end_conversation`, `action_dtmf`, `action_add_to_conference`, `action_set_hold`, `action_external`, `action_warm_transfer`. */
  type: string;
  label?: string | null;
  /** The stored action's free-text description; added to the tool description the model sees. */
  description?: string | null;
  /** The stored action's `config`, as stored (defaults already filled in). */
  config: Record<string, unknown>;
  trigger: EngineActionTrigger;
}

export type ActionHistoryEventType = 'action_started' | 'action_completed' | 'action_failed';

export interface ActionHistoryResult {
  /** What the action produced (for external actions: the webhook's parsed JSON response). */
  json?: unknown;
  /** External actions: the HTTP status of the webhook's answer, when one arrived. */
  http_status_code?: number;
  error?: string;
}

/** One entry of a call's `action_history`, in Fluents' shape. */
export interface ActionHistoryEntry {
  event_type: ActionHistoryEventType;
  /** ISO 8601. */
  timestamp: string;
  action_id: string;
  action_type: string;
  action_label: string | null;
  parameters: Record<string, unknown>;
  /** `null` on `action_started`. */
  result: ActionHistoryResult | null;
}
