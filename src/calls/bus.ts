/**
 * Word to the node that runs a call. A call lives where its media stream landed, but the carrier's
 * answering-machine verdict arrives at whichever node its webhook reached: the verdict goes over the
 * database (PostgreSQL NOTIFY, which every node LISTENs to; PGlite's own, in one process) to the call.
 *
 * Sending says nothing about whether any node runs the call: the sender decides that from the call's
 * record (telephony/carrierEnd.ts) before it sends.
 */
import { sql } from 'drizzle-orm';
import type { Logger } from '../log.js';
import type { Database } from '../store/db.js';
import type { LiveCalls } from './liveCalls.js';

const CHANNEL = 'switchboard_calls';

/**
 * A call's record shows its stream connected a moment before the call joins LiveCalls (after the carrier's
 * start message): a verdict for a call not (yet) here waits this long for it.
 */
const JOIN_WAIT_MS = 5000;
const JOIN_POLL_MS = 50;

export type Verdict = 'human' | 'machine' | 'machine_end';
interface Message { call_id: string; verdict: Verdict }

export class CallBus {
  private unlisten?: () => Promise<void>;
  private closed = false;
  private readonly waiting = new Set<NodeJS.Timeout>();

  constructor(private readonly database: Database, private readonly live: LiveCalls, private readonly log: Logger) {}

  async start(): Promise<void> {
    this.unlisten = await this.database.listen(CHANNEL, (payload) => {
      try {
        this.deliver(JSON.parse(payload) as Message, Date.now() + JOIN_WAIT_MS);
      } catch (err) {
        this.log.warn({ err }, 'unreadable call bus message');
      }
    });
  }

  /** Hands the verdict to the call's conversation: directly when it runs here, else over the database to every node. */
  async machineDetected(callId: string, verdict: Verdict): Promise<'here' | 'sent'> {
    const local = this.live.get(callId);
    if (local) {
      local.machineDetected(verdict);
      return 'here';
    }
    await this.database.db.execute(sql`select pg_notify(${CHANNEL}, ${JSON.stringify({ call_id: callId, verdict } satisfies Message)})`);
    return 'sent';
  }

  /** Every node hears every message; only the one whose LiveCalls has the call (or gets it in time) acts. */
  private deliver(m: Message, until: number): void {
    const call = this.live.get(m.call_id);
    if (call) {
      call.machineDetected(m.verdict);
      return;
    }
    if (Date.now() >= until || this.closed) return;
    const timer = setTimeout(() => { this.waiting.delete(timer); this.deliver(m, until); }, JOIN_POLL_MS);
    timer.unref();
    this.waiting.add(timer);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.waiting) clearTimeout(t);
    this.waiting.clear();
    await this.unlisten?.();
  }
}
