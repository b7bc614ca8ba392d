/**
 * Twilio's side of our webhooks: checking X-Twilio-Signature and answering in TwiML.
 *
 * Followed "Webhooks security" (https://www.twilio.com/docs/usage/webhooks/webhooks-security): the
 * signature is base64 HMAC-SHA1, keyed with the account's Auth Token, over the full URL Twilio called
 * (as configured: scheme, host, path, query) followed by the POST parameters sorted by name, each as
 * name + value; the WebSocket handshake of a media stream is signed over its wss URL the same way.
 * The check itself is the `twilio` package's (validateRequest). TwiML is built with its VoiceResponse:
 * <Connect><Stream url><Parameter/></Stream></Connect> (https://www.twilio.com/docs/voice/twiml/stream),
 * <Reject reason>, <Hangup>, <Dial callerId><Number>, <Say>, <Play loop>, and the caller's side of a warm
 * transfer: <Dial action><Conference waitUrl startConferenceOnEnter endConferenceOnExit beep>
 * (https://www.twilio.com/docs/voice/twiml/conference).
 */
import webhooks from 'twilio/lib/webhooks/webhooks.js';
import VoiceResponse from 'twilio/lib/twiml/VoiceResponse.js';

export const TWILIO_SIGNATURE_HEADER = 'x-twilio-signature';

/** `url` is the URL as the carrier was given it (PUBLIC_URL + path + query), not as a proxy rewrote it. */
export function validTwilioSignature(authToken: string, signature: string | undefined, url: string, params: Record<string, string>): boolean {
  if (!signature) return false;
  return webhooks.validateRequest(authToken, signature, url, params);
}

/** Form parameters as Twilio posts them (a repeated name keeps its last value, as Twilio sends none). */
export function formParams(body: string): Record<string, string> {
  return Object.fromEntries(new URLSearchParams(body));
}

export function streamTwiml(streamUrl: string, parameters: Record<string, string> = {}): string {
  const r = new VoiceResponse();
  const stream = r.connect().stream({ url: streamUrl });
  for (const [name, value] of Object.entries(parameters)) stream.parameter({ name, value });
  return r.toString();
}

export function rejectTwiml(reason: 'rejected' | 'busy' = 'rejected'): string {
  const r = new VoiceResponse();
  r.reject({ reason });
  return r.toString();
}

/** Says a short message (an error the caller should hear) and hangs up. */
export function sayAndHangupTwiml(message: string): string {
  const r = new VoiceResponse();
  r.say(message);
  r.hangup();
  return r.toString();
}

export function hangupTwiml(): string {
  const r = new VoiceResponse();
  r.hangup();
  return r.toString();
}

/**
 * Cold transfer: the caller leaves the agent and is connected to `to`. Twilio requests `action` with the
 * outcome (DialCallStatus) when that leg ends.
 */
export function dialTwiml(to: string, o: { callerId?: string; action?: string } = {}): string {
  const r = new VoiceResponse();
  const dial = r.dial({ ...(o.callerId ? { callerId: o.callerId } : {}), ...(o.action ? { action: o.action, method: 'POST' } : {}) });
  if (to.startsWith('sip:')) dial.sip(to);
  else dial.number(to);
  return r.toString();
}

/**
 * Warm transfer, the caller's side: the caller waits alone in the call's own conference, hearing `waitUrl`
 * (hold), until the human added to it starts it. The caller ending the conference when leaving means the
 * human is never left in an empty room; `action` hears how the conference went.
 */
export function conferenceTwiml(name: string, o: { waitUrl: string; action: string }): string {
  const r = new VoiceResponse();
  r.dial({ action: o.action, method: 'POST' }).conference({
    waitUrl: o.waitUrl, waitMethod: 'POST', startConferenceOnEnter: false, endConferenceOnExit: true, beep: 'false',
  }, name);
  return r.toString();
}

/** What a caller on hold hears, one round (Twilio requests the wait URL again when it ends). */
export function holdTwiml(o: { musicUrl?: string; pauseSec?: number }): string {
  const r = new VoiceResponse();
  if (o.musicUrl) r.play(o.musicUrl);
  else r.pause({ length: o.pauseSec ?? 10 });
  return r.toString();
}
