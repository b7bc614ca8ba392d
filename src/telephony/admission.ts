/**
 * The node's call limit (SWITCHBOARD_MAX_CALLS): past its capacity a node would make every call on it
 * worse (late audio, slow answers), so it turns new calls away instead — inbound as busy, outbound with a
 * 503 — and a load balancer or the carrier's retry sends them elsewhere. It counts the calls it runs plus
 * those it answered whose media has not connected yet, so a burst of calls cannot all slip in at once.
 */
import type { LiveCalls } from '../calls/liveCalls.js';

/** How long an answered call counts as connecting: its media may reach another node, or never come. */
const CONNECTING_MS = 60_000;

export class Admission {
  private readonly connecting = new Map<string, NodeJS.Timeout>();

  /** `max` 0: no limit. */
  constructor(private readonly max: number, private readonly live: Pick<LiveCalls, 'get' | 'size'>) {}

  /** Calls this node runs or is connecting. */
  get load(): number {
    for (const [id, timer] of this.connecting) {
      if (this.live.get(id)) { clearTimeout(timer); this.connecting.delete(id); }
    }
    return this.live.size + this.connecting.size;
  }

  /** Why a new call must be turned away now, or null. */
  refusal(): string | null {
    if (!this.max || this.load < this.max) return null;
    return `this node is at its limit of ${this.max} concurrent calls (SWITCHBOARD_MAX_CALLS)`;
  }

  /** A call was answered or dialled here: it counts from now until its media connects. */
  admitted(callId: string): void {
    if (!this.max) return;
    clearTimeout(this.connecting.get(callId));
    this.connecting.set(callId, setTimeout(() => this.connecting.delete(callId), CONNECTING_MS).unref());
  }
}
