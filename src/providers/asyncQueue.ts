/**
 * A single-consumer async queue: producers push from socket callbacks, the consumer reads with
 * `for await`. Ending or failing wakes a waiting reader; items pushed after the end are dropped.
 */
export class AsyncQueue<T> implements AsyncIterable<T> {
  private items: T[] = [];
  private waiting?: { resolve: (r: IteratorResult<T>) => void; reject: (e: unknown) => void };
  private ended = false;
  private error: unknown;
  private failed = false;

  push(item: T): void {
    if (this.ended || this.failed) return;
    if (this.waiting) {
      const w = this.waiting;
      this.waiting = undefined;
      w.resolve({ value: item, done: false });
    } else this.items.push(item);
  }

  end(): void {
    if (this.ended || this.failed) return;
    this.ended = true;
    this.wake();
  }

  fail(err: unknown): void {
    if (this.ended || this.failed) return;
    this.failed = true;
    this.error = err;
    this.wake();
  }

  get closed(): boolean { return this.ended || this.failed; }

  private wake(): void {
    if (!this.waiting || this.items.length) return;
    const w = this.waiting;
    this.waiting = undefined;
    if (this.failed) w.reject(this.error);
    else w.resolve({ value: undefined, done: true });
  }

  next(): Promise<IteratorResult<T>> {
    if (this.items.length) return Promise.resolve({ value: this.items.shift()!, done: false });
    if (this.failed) return Promise.reject(this.error);
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => { this.waiting = { resolve, reject }; });
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return { next: () => this.next(), return: async () => { this.end(); this.items = []; return { value: undefined, done: true }; } };
  }
}
