export * from './types.js';
export { createActionRunner, handsOffCaller, vocodeSignature, DEFAULT_EXTERNAL_TIMEOUT_MS } from './runner.js';
export type { ActionRunner, ActionRunnerOptions, ToolCallDescription } from './runner.js';
