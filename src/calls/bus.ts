/**
 * Word to the node that runs a call. A call lives where its media stream landed, but the carrier's
 * answering-machine verdict arrives at whichever node its webhook reached: the verdict goes over the
 * database (PostgreSQL NOTIFY, which every node LISTENs to; PGlite's own, in one process) to the call.
 */
import { sql } from 'drizzle-orm';
import type { Logger } from '../log.js';
import type { Database } from '../store/db.js';
import type { LiveCalls } from './liveCalls.js';

const CHANNEL = 'switchboard_calls';

export type Verdict = 'human' | 'machine' | 'machine_end';
interface Message { call_id: string; verdict: Verdict }

export class CallBus {
  private unlisten?: () => Promise<void>;

  constructor(private readonly database: Database, private readonly live: LiveCalls, private readonly log: Logger) {}

  async start(): Promise<void> {
    this.unlisten = await this.database.listen(CHANNEL, (payload) => {
      try {
        const m = JSON.parse(payload) as Message;
        this.live.get(m.call_id)?.machineDetected(m.verdict);
      } catch (err) {
        this.log.warn({ err }, 'unreadable call bus message');
      }
    });
  }

  /** Delivers the verdict to the call here, or to whichever node runs it. True when it ran here. */
  async machineDetected(callId: string, verdict: Verdict): Promise<boolean> {
    const local = this.live.get(callId);
    if (local) {
      local.machineDetected(verdict);
      return true;
    }
    await this.database.db.execute(sql`select pg_notify(${CHANNEL}, ${JSON.stringify({ call_id: callId, verdict } satisfies Message)})`);
    return false;
  }

  async close(): Promise<void> {
    await this.unlisten?.();
  }
}
