/**
 * The local carrier emulator (a Twilio stand-in on the wire): see ./emulator.ts for the API and the
 * documents it follows.
 */
export { startEmulator, type Emulator, type EmulatorOptions, type EmulatorStats, type InboundCallOptions, type NumberConfig } from './emulator.js';
export type { AnsweredBy, CallEvent, CallHandle, CallMetrics, CallStatus, Destination, HangupBy, LatencySample, Transfer, WebhookKind, WebhookRecord } from './call.js';
export type { CallerAudio } from './audio.js';
export type { ConferenceEndReason, ConferenceInfo, ConferenceStatus, HeardAudio, LeaveReason, ParticipantInfo, ParticipantStatus } from './conference.js';
export type { AgentSpeech } from './playback.js';
export type { SpeechSpan } from './caller.js';
export type { ClearRecord, MarkRecord, MediaSession, ProtocolViolation, StreamEnd } from './stream.js';
export type { TickerStats } from './ticker.js';
export { parseTwiml, type TwimlVerb } from './twiml.js';
export { runEmulatorCli } from './cli.js';
export { prefixRewriter } from './webhook.js';
