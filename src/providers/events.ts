/**
 * Small event plumbing the adapters share: a session's listener set, and abort hooks that are removed
 * when the work ends first (a listener left on a long-lived signal keeps its session alive).
 */

/** The `on(listener) → off` half of a session, and the `emit` the adapter calls. */
export class Listeners<E> {
  private readonly set = new Set<(e: E) => void>();

  on(listener: (e: E) => void): () => void {
    this.set.add(listener);
    return () => { this.set.delete(listener); };
  }

  emit(e: E): void {
    for (const l of this.set) l(e);
  }
}

/** Calls `fn` once when `signal` aborts (at once if it already has); returns the remover. */
export function onAbort(signal: AbortSignal | undefined, fn: () => void): () => void {
  if (!signal) return () => {};
  if (signal.aborted) {
    fn();
    return () => {};
  }
  signal.addEventListener('abort', fn, { once: true });
  return () => signal.removeEventListener('abort', fn);
}

/** `p`, or the signal's reason as soon as it aborts (stops the wait only, not the work behind `p`). */
export function raceAbort<T>(p: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const off = onAbort(signal, () => reject(signal.reason));
    p.then(resolve, reject).finally(off);
  });
}
