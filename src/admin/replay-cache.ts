export interface ReplayCacheOptions {
  /**
   * How long a nonce is remembered. A request is accepted while its timestamp is within the clock skew of
   * the server's clock, so a nonce first seen now could come back with the same timestamp until
   * ts + skew <= now + 2 × skew: twice the skew covers every moment the signature is still accepted.
   */
  windowMs: number;
  /** Nonces remembered at most (default 100,000: a few MB). */
  maxEntries?: number;
  now?: () => number;
}

/** `fresh`: first use, now remembered; `replay`: seen within the window; `full`: cannot be remembered now. */
export type NonceVerdict = { verdict: 'fresh' } | { verdict: 'replay' } | { verdict: 'full'; retryAfterMs: number };

/**
 * Nonces of accepted requests, remembered for the window in which their signature stays valid. Every
 * nonce lives exactly `windowMs` from when it was recorded, so insertion order is expiry order: pruning
 * drops expired entries from the front of one Map, O(1) amortised per request, with no timers.
 *
 * When the cache is full it refuses new nonces instead of forgetting live ones: forgetting would let a
 * captured request be replayed, while refusing only delays honest requests until the oldest nonce expires.
 * Only requests with a valid signature are recorded, so filling the cache takes a key holder sending
 * 100,000 requests in ten minutes, never an anonymous client.
 */
export class ReplayCache {
  /** Nonce → when it may be forgotten (ms). */
  private readonly expiries = new Map<string, number>();
  private readonly maxEntries: number;
  private readonly now: () => number;

  constructor(private readonly options: ReplayCacheOptions) {
    this.maxEntries = options.maxEntries ?? 100_000;
    this.now = options.now ?? Date.now;
  }

  /** Checks a nonce and, when it is fresh, remembers it. `scope` (a key id) keeps keys' nonces apart. */
  remember(scope: string, nonce: string): NonceVerdict {
    const nowMs = this.now();
    this.prune(nowMs);
    const key = `${scope}:${nonce}`;
    if (this.expiries.has(key)) return { verdict: 'replay' };
    if (this.expiries.size >= this.maxEntries) {
      const oldest = this.expiries.values().next().value ?? nowMs;
      return { verdict: 'full', retryAfterMs: Math.max(0, oldest - nowMs) };
    }
    this.expiries.set(key, nowMs + this.options.windowMs);
    return { verdict: 'fresh' };
  }

  get size(): number {
    return this.expiries.size;
  }

  /** Drops expired nonces from the front. A clock stepped back only keeps nonces longer, never shorter. */
  private prune(nowMs: number): void {
    for (const [key, expires] of this.expiries) {
      if (expires >= nowMs) return; // still live at the very last accepted moment
      this.expiries.delete(key);
    }
  }
}
