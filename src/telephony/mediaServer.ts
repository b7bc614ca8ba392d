/**
 * The carriers' media WebSockets (`/telephony/{twilio,telnyx}/media/<token>`): the upgrade is accepted only
 * with a valid, unexpired stream token for a call whose stream has not connected yet (and, for Twilio, a
 * valid X-Twilio-Signature when one is sent); then the call runs on this node.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { runCall } from '../calls/runner.js';
import { RealClock } from '../engine/clock.js';
import type { CallRow } from '../store/calls.js';
import { twilioControl } from './calls.js';
import type { TelephonyContext } from './context.js';
import { MediaStreamTransport } from './mediaStream.js';
import { verifyStreamToken } from './streamToken.js';
import { twilioMediaCodec } from './twilio/media.js';
import { telnyxControl } from './telnyx/carrier.js';
import { telnyxMediaCodec } from './telnyx/media.js';
import { TWILIO_SIGNATURE_HEADER, validTwilioSignature } from './twilio/webhooks.js';
import type { CallControl, MediaCodec, TelephonyProvider } from './types.js';

/** The carrier must send its `start` message this soon after connecting. */
const START_TIMEOUT_MS = 10_000;
const PATH = /^\/telephony\/(twilio|telnyx)\/media\/([A-Za-z0-9._-]+)$/;

function reject(socket: Duplex, status: number, message: string): void {
  const reason = { 400: 'Bad Request', 403: 'Forbidden', 404: 'Not Found', 409: 'Conflict', 500: 'Internal Server Error' }[status] ?? 'Error';
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(message)}\r\n\r\n${message}`);
}

export interface MediaCarrier {
  codec: MediaCodec;
  /** The call's REST-side controls, once its carrier call id is known. */
  control(call: CallRow): Promise<CallControl>;
}

export class MediaServer {
  private readonly wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  private readonly carriers = new Map<TelephonyProvider, MediaCarrier>();

  constructor(private readonly ctx: TelephonyContext) {
    this.carriers.set('twilio', {
      codec: twilioMediaCodec,
      control: async (call) => {
        const account = await ctx.accountOf(call);
        if (account.provider !== 'twilio') throw new Error('not a Twilio call');
        return twilioControl(ctx, account, call);
      },
    });

    this.carriers.set('telnyx', {
      codec: telnyxMediaCodec,
      control: async (call) => {
        const account = await ctx.accountOf(call);
        if (account.provider !== 'telnyx') throw new Error('not a Telnyx call');
        return telnyxControl(ctx, account, call);
      },
    });
  }

  /** The HTTP server's `upgrade` listener. */
  readonly onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    socket.on('error', () => {});
    void this.upgrade(req, socket, head).catch((err) => {
      this.ctx.log.error({ err }, 'media stream upgrade failed');
      if (!socket.destroyed) reject(socket, 500, 'internal error');
    });
  };

  private async upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const path = (req.url ?? '').split('?')[0];
    const m = PATH.exec(path);
    if (!m) return reject(socket, 404, 'no WebSocket here');
    const provider = m[1] as TelephonyProvider;
    const carrier = this.carriers.get(provider);
    if (!carrier) return reject(socket, 404, `${provider} media streams are not enabled`);
    const { store, log } = this.ctx;
    const check = verifyStreamToken(store.box, m[2]);
    if (!check.ok) return reject(socket, 403, `stream token refused: ${check.reason}`);
    const call = await store.calls.findById(store.db, check.callId);
    if (!call || call.telephonyProvider !== provider) return reject(socket, 404, 'unknown call');
    const signature = req.headers[TWILIO_SIGNATURE_HEADER] as string | undefined;
    if (provider === 'twilio' && signature) {
      const account = await this.ctx.accountOf(call).catch(() => null);
      if (!account || account.provider !== 'twilio' || !validTwilioSignature(account.account.authToken, signature, this.ctx.wsUrl(path), {})) {
        return reject(socket, 403, 'invalid signature');
      }
    }
    const claimed = await store.calls.claimMedia(store.db, call.id);
    if (!claimed) return reject(socket, 409, 'this stream token has been used, or the call is over');

    this.wss.handleUpgrade(req, socket, head, (ws) => {
      const clog = log.child({ call_id: call.id, provider });
      const transport = new MediaStreamTransport(ws, carrier.codec, new RealClock(), (detail) => clog.warn({ detail }, 'media stream protocol error'), this.ctx.deps.metrics?.media);
      void this.run(claimed, transport, carrier).catch((err) => clog.error({ err }, 'call failed'));
    });
  }

  private async run(call: CallRow, transport: MediaStreamTransport, carrier: MediaCarrier): Promise<void> {
    const { store } = this.ctx;
    let timer: NodeJS.Timeout | undefined;
    let start;
    try {
      start = await Promise.race([
        transport.started,
        new Promise<never>((_, rej) => { timer = setTimeout(() => rej(new Error('no start message from the carrier')), START_TIMEOUT_MS); }),
      ]);
    } catch (err) {
      const message = `media stream: ${(err as Error).message}`;
      await store.calls.finish(store.db, call.id, { status: 'error', errorMessage: message, errors: [...call.errors, message] });
      transport.close(1008, 'no start');
      return;
    } finally {
      clearTimeout(timer);
    }
    let row = call;
    if (start.carrierCallId && call.telephonyId && start.carrierCallId !== call.telephonyId) {
      transport.close(1008, 'stream belongs to another call');
      return;
    }
    if (!call.telephonyId && start.carrierCallId) {
      row = (await store.calls.advance(store.db, call.id, { telephonyId: start.carrierCallId })) ?? call;
    }
    let control: CallControl;
    try {
      control = await carrier.control(row);
    } catch (err) {
      // Without its controls the call cannot be run or even hung up by the agent: end it, and say why.
      const message = `the call could not be set up at the carrier: ${(err as Error).message}`;
      await store.calls.finish(store.db, call.id, { status: 'error', errorMessage: message, errors: [...call.errors, message] });
      transport.close(1011, 'setup failed');
      return;
    }
    await runCall(this.ctx.deps, row, transport, control);
  }

  close(): void {
    for (const ws of this.wss.clients) ws.terminate();
    this.wss.close();
  }
}
