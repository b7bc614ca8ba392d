/**
 * The token in a media-stream URL (`/telephony/twilio/media/<token>`): it names the call, expires, and is
 * signed with the deployment's secret key, so only the URL we handed the carrier opens a stream. It is
 * single-use: the call row's `media_connected_at` is claimed atomically when the stream connects, so a
 * replayed URL finds the call taken (see CallRepo.claimMedia).
 */
import { timingSafeEqual } from 'node:crypto';
import { isUuid } from '../domain/common.js';
import type { SecretBox } from '../store/secretBox.js';

const PURPOSE = 'media-stream-token';
/** Long enough for a slow answer and the carrier's connect; a carrier connects within seconds. */
export const STREAM_TOKEN_TTL_MS = 10 * 60_000;

export function createStreamToken(box: SecretBox, callId: string, now = Date.now()): string {
  const body = `${callId}.${Math.floor((now + STREAM_TOKEN_TTL_MS) / 1000)}`;
  return `${body}.${box.mac(PURPOSE, body).toString('base64url')}`;
}

export type StreamTokenCheck = { ok: true; callId: string } | { ok: false; reason: string };

export function verifyStreamToken(box: SecretBox, token: string, now = Date.now()): StreamTokenCheck {
  const parts = token.split('.');
  if (parts.length !== 3) return { ok: false, reason: 'malformed token' };
  const [callId, exp, sig] = parts;
  if (!isUuid(callId) || !/^\d{1,12}$/.test(exp)) return { ok: false, reason: 'malformed token' };
  const expected = box.mac(PURPOSE, `${callId}.${exp}`);
  const given = Buffer.from(sig, 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false, reason: 'bad signature' };
  if (Number(exp) * 1000 < now) return { ok: false, reason: 'expired' };
  return { ok: true, callId };
}
