/** What LogThrottle.pass says about one event. */
export interface ThrottleVerdict {
  /** The key's first line since it was last forgotten. */
  first: boolean;
  /** Events of this key held back since its last line (this one not counted). */
  heldBack: number;
}

/**
 * At most one log line per key (a source address) per interval, counting what it held back: under a
 * flood, logging must not become the attack's amplifier. Memory stays bounded by maxKeys; past it, new
 * keys whose interval has not passed yet
 * keep their places and new ones get no line at all (the caller counts them in a summary).
 */
export class LogThrottle {
  private readonly keys = new Map<string, { lastLineMs: number; heldBack: number }>();

  constructor(private readonly intervalMs: number, private readonly maxKeys: number) {}

  /** A verdict when this event may be logged now; undefined to stay quiet (it is counted). */
  pass(key: string, nowMs: number): ThrottleVerdict | undefined {
    const entry = this.keys.get(key);
    if (entry === undefined) {
      if (this.keys.size >= this.maxKeys) this.prune(nowMs);
      if (this.keys.size >= this.maxKeys) return undefined;
      this.keys.set(key, { lastLineMs: nowMs, heldBack: 0 });
      return { first: true, heldBack: 0 };
    }
    if (nowMs - entry.lastLineMs < this.intervalMs) {
      entry.heldBack++;
      return undefined;
    }
    const verdict = { first: false, heldBack: entry.heldBack };
    entry.lastLineMs = nowMs;
    entry.heldBack = 0;
    return verdict;
  }

  /** Forgets keys whose interval has passed (their next event logs again, as a first line). */
  prune(nowMs: number): void {
    for (const [key, entry] of this.keys) if (nowMs - entry.lastLineMs >= this.intervalMs) this.keys.delete(key);
  }

  /** Keys remembered now. */
  get size(): number {
    return this.keys.size;
  }
}
