// A queue of things that arrive on their own (IPC messages, datagrams) that callers take out by predicate,
// waiting a bounded time. Items that arrive before anyone asks for them are kept, so no race is lost.

interface Waiter<T> {
  matches(item: T): boolean;
  deliver(item: T | undefined): void;
  fail(error: Error): void;
}

export class Mailbox<T> {
  private readonly queued: T[] = [];
  private readonly waiters = new Set<Waiter<T>>();
  private closedBecause: Error | undefined;

  put(item: T): void {
    for (const waiter of this.waiters) {
      if (waiter.matches(item)) {
        waiter.deliver(item);
        return;
      }
    }
    this.queued.push(item);
  }

  /** The first item that matches, or undefined once timeoutMs passed without one. */
  take(matches: (item: T) => boolean, timeoutMs: number): Promise<T | undefined> {
    const index = this.queued.findIndex(matches);
    if (index >= 0) return Promise.resolve(this.queued.splice(index, 1)[0]);
    if (this.closedBecause) return Promise.reject(this.closedBecause);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => waiter.deliver(undefined), timeoutMs);
      const waiter: Waiter<T> = {
        matches,
        deliver: (item) => {
          clearTimeout(timer);
          this.waiters.delete(waiter);
          resolve(item);
        },
        fail: (error) => {
          clearTimeout(timer);
          this.waiters.delete(waiter);
          reject(error);
        },
      };
      this.waiters.add(waiter);
    });
  }

  /** Nothing more will arrive: pending and later takes that find nothing queued fail with this error. */
  close(reason: Error): void {
    this.closedBecause ??= reason;
    for (const waiter of this.waiters) waiter.fail(reason);
  }
}
