/**
 * Carriers' webhooks (`/telephony/<carrier>/…`): no API key — each request proves itself with the
 * carrier's signature, checked by the telephony layer against the account it concerns.
 */
import type { OpenAPIHono } from '@hono/zod-openapi';
import type { Context } from 'hono';
import type { TelephonyContext } from '../telephony/context.js';
import { telnyxEvents } from '../telephony/telnyx/carrier.js';
import { twilioAmd, twilioDial, twilioHold, twilioParticipant, twilioStatus, twilioVoice, type WebhookReply, type WebhookRequest } from '../telephony/twilio/handlers.js';
import type { AuthEnv } from './auth.js';

type Handler = (ctx: TelephonyContext, req: WebhookRequest) => Promise<WebhookReply>;

function reply(c: Context, r: WebhookReply): Response {
  if (r.status === 204) return c.body(null, 204);
  return c.body(r.body, r.status as 200, { 'content-type': r.xml ? 'text/xml; charset=utf-8' : 'text/plain; charset=utf-8' });
}

export function mountTelephony(app: OpenAPIHono<AuthEnv>, ctx: TelephonyContext): void {
  const twilio: Record<string, Handler> = { voice: twilioVoice, status: twilioStatus, amd: twilioAmd, dial: twilioDial, hold: twilioHold, participant: twilioParticipant };
  for (const [name, handler] of Object.entries(twilio)) {
    app.post(`/telephony/twilio/${name}`, async (c) => {
      const url = new URL(c.req.url);
      const r = await handler(ctx, { pathAndQuery: url.pathname + url.search, rawBody: await c.req.text(), signature: c.req.header('x-twilio-signature') });
      return reply(c, r);
    });
  }
  app.post('/telephony/telnyx/events', async (c) => {
    const r = await telnyxEvents(ctx, { rawBody: await c.req.text(), headers: c.req.raw.headers });
    return reply(c, r);
  });
}
