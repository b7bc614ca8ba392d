/**
 * All engine timers go through a Clock, so conversation tests run on virtual time.
 */
export interface Timer { cancel(): void }

export interface Clock {
  /** Milliseconds on a monotonic timeline. */
  now(): number;
  setTimeout(fn: () => void, ms: number): Timer;
  /** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

function sleepWith(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => { timer.cancel(); reject(signal!.reason); };
    const timer = clock.setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve(); }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export class RealClock implements Clock {
  now(): number { return performance.now(); }
  setTimeout(fn: () => void, ms: number): Timer {
    const h = setTimeout(fn, Math.max(0, ms));
    return { cancel: () => clearTimeout(h) };
  }
  sleep(ms: number, signal?: AbortSignal): Promise<void> { return sleepWith(this, ms, signal); }
}

interface Pending { at: number; seq: number; fn: () => void; cancelled: boolean }

/**
 * Time moves only when a test says so. `advance` runs due timers in time order and lets promise
 * continuations settle between them, so async code observes the same ordering it would in real time.
 */
export class VirtualClock implements Clock {
  private t = 0;
  private seq = 0;
  private queue: Pending[] = [];

  now(): number { return this.t; }

  setTimeout(fn: () => void, ms: number): Timer {
    const p: Pending = { at: this.t + Math.max(0, ms), seq: this.seq++, fn, cancelled: false };
    this.queue.push(p);
    return { cancel: () => { p.cancelled = true; } };
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> { return sleepWith(this, ms, signal); }

  /** Moves time forward by `ms`, firing every timer that falls due on the way. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    await settle();
    for (;;) {
      const next = this.nextDue(end);
      if (!next) break;
      this.t = next.at;
      next.cancelled = true;
      next.fn();
      await settle();
    }
    this.t = end;
    await settle();
  }

  /** Timers still waiting (for leak checks in tests). */
  pending(): number { return this.queue.filter((p) => !p.cancelled).length; }

  private nextDue(end: number): Pending | undefined {
    this.queue = this.queue.filter((p) => !p.cancelled);
    let best: Pending | undefined;
    for (const p of this.queue) {
      if (p.at <= end && (!best || p.at < best.at || (p.at === best.at && p.seq < best.seq))) best = p;
    }
    return best;
  }
}

/** Lets queued promise continuations run (several rounds: awaits chain). */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
  await new Promise<void>((r) => setImmediate(r));
}
