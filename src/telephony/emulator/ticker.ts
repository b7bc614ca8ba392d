/**
 * One timer for the 20 ms media frames of every emulated call.
 *
 * Every member has its own phase on a global grid (origin + phase + k·20 ms), a whole number of ms spread
 * across the frame as members join: calls on a real carrier each run on their own media clock, so a host
 * gets the frames of many calls spread over each 20 ms, not all at the same instant. A member's frames
 * are due at fixed points of its grid, so a late wake-up never shifts the schedule: the loop sends every
 * frame that has come due ("catches up") and then sleeps until the next due time. A frame sent more than
 * `lateAfterMs` after its due time counts as late — the figure a load benchmark reads to know the host kept up.
 *
 * Followed "Media Streams - WebSocket Messages" (https://www.twilio.com/docs/voice/media-streams/websocket-messages):
 * Twilio sends one media message per 20 ms of call audio.
 */
import { performance } from 'node:perf_hooks';

export interface FrameMember {
  /** One 20 ms slot: `dueMs` is its place on the grid, `nowMs` when it is actually being handled. */
  onFrame(dueMs: number, nowMs: number): void;
}

export interface TickerStats {
  /** Frame slots handled, over all members. */
  frames: number;
  /** Slots handled more than `lateAfterMs` after they were due. */
  lateFrames: number;
  /** The worst lateness seen, in ms. */
  maxLagMs: number;
  /** Sum of lateness over all slots (mean = totalLagMs / frames). */
  totalLagMs: number;
  /** Timer wake-ups. */
  wakeups: number;
  /** Members right now. */
  members: number;
}

export class MediaTicker {
  readonly frameMs = 20;
  private readonly origin = performance.now();
  private readonly next = new Map<FrameMember, number>();
  private timer?: NodeJS.Timeout;
  private running = false;
  private readonly s = { frames: 0, lateFrames: 0, maxLagMs: 0, totalLagMs: 0, wakeups: 0 };

  constructor(readonly lateAfterMs = 10) {}

  now(): number { return performance.now(); }

  private joined = 0;

  /** The first point at or after `t` of the grid with this phase. */
  gridAfter(t: number, phaseMs = 0): number {
    const start = this.origin + phaseMs;
    return start + Math.ceil((t - start) / this.frameMs) * this.frameMs;
  }

  /** Adds a member; its first frame is due at the next point of its grid. Returns that time. */
  add(m: FrameMember): number {
    // 7 and 20 share no factor: successive members take all 20 phases before one repeats.
    const phase = (this.joined++ * 7) % this.frameMs;
    const due = this.gridAfter(this.now() + 0.001, phase);
    this.next.set(m, due);
    this.arm();
    return due;
  }

  remove(m: FrameMember): void {
    this.next.delete(m);
    if (this.next.size === 0 && this.timer) { clearTimeout(this.timer); this.timer = undefined; }
  }

  has(m: FrameMember): boolean { return this.next.has(m); }

  get stats(): TickerStats { return { ...this.s, members: this.next.size }; }

  resetStats(): void { Object.assign(this.s, { frames: 0, lateFrames: 0, maxLagMs: 0, totalLagMs: 0, wakeups: 0 }); }

  stop(): void {
    this.next.clear();
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(): void {
    if (this.timer || this.running || this.next.size === 0) return;
    let soonest = Infinity;
    for (const t of this.next.values()) if (t < soonest) soonest = t;
    this.timer = setTimeout(() => { this.timer = undefined; this.loop(); }, Math.max(0, soonest - this.now()));
  }

  private loop(): void {
    this.running = true;
    this.s.wakeups++;
    try {
      const now = this.now();
      for (const [m, first] of this.next) {
        let due = first;
        while (due <= now && this.next.has(m)) {
          const lag = now - due;
          this.s.frames++;
          this.s.totalLagMs += lag;
          if (lag > this.s.maxLagMs) this.s.maxLagMs = lag;
          if (lag > this.lateAfterMs) this.s.lateFrames++;
          try {
            m.onFrame(due, now);
          } catch (err) {
            // A member's bug must not stop everybody else's audio.
            process.emitWarning(`emulator media member failed: ${(err as Error).stack ?? err}`);
            this.next.delete(m);
          }
          due += this.frameMs;
        }
        if (this.next.has(m)) this.next.set(m, due);
      }
    } finally {
      this.running = false;
      this.arm();
    }
  }
}
