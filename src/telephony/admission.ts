/**
 * The node's call limit (SWITCHBOARD_MAX_CALLS): past its capacity a node would make every call on it
 * worse (late audio, slow answers), so it turns new calls away instead — inbound as busy, outbound with a
 * 503 that a client can retry on another node. It counts the calls it runs plus seats: calls being
 * accepted, and calls answered or dialled whose media has not reached this node yet. A seat is taken in the
 * same step as the check, so calls arriving together cannot all pass it.
 */
import type { LiveCalls } from '../calls/liveCalls.js';

/** How long an answered call holds its seat: its media may reach another node, or never come. */
const CONNECTING_MS = 60_000;

export class Admission {
  /** Seat key (a call id once admitted) → the timer that frees it. */
  private readonly seats = new Map<string, NodeJS.Timeout>();
  private nextSeat = 0;

  /** `max` 0: no limit. */
  constructor(private readonly max: number, private readonly live: Pick<LiveCalls, 'size' | 'onAdd'>) {
    // Once a call runs here it is counted as live; its seat is no longer needed.
    live.onAdd((callId) => this.release(callId));
  }

  /** Calls this node runs or is connecting. */
  get load(): number {
    return this.live.size + this.seats.size;
  }

  /** A seat for a new call, or why there is none. */
  reserve(): Seat | string {
    if (!this.max) return NO_LIMIT;
    if (this.load >= this.max) return `this node is at its limit of ${this.max} concurrent calls (SWITCHBOARD_MAX_CALLS)`;
    const key = `seat:${++this.nextSeat}`;
    this.hold(key);
    return {
      admit: (callId) => { this.release(key); this.hold(callId); },
      release: () => this.release(key),
    };
  }

  /** Frees a call's seat (it failed to connect, or connected here). */
  release(key: string): void {
    clearTimeout(this.seats.get(key));
    this.seats.delete(key);
  }

  private hold(key: string): void {
    this.seats.set(key, setTimeout(() => this.seats.delete(key), CONNECTING_MS).unref());
  }
}

export interface Seat {
  /** The call was answered or dialled: its seat is held under its id until its media connects (or 60 s). */
  admit(callId: string): void;
  /** The call will not connect: the seat is free again. */
  release(): void;
}

const NO_LIMIT: Seat = { admit: () => {}, release: () => {} };
