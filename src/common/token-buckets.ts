export interface TokenBucketsOptions {
  /** Tokens a fresh key starts with: the burst it may spend at once. */
  capacity: number;
  /** Tokens added back per second, up to capacity. */
  refillPerSecond: number;
  /** Keys tracked at most; full buckets are forgotten first, then the oldest. */
  maxKeys?: number;
  now?: () => number;
}

interface Bucket {
  tokens: number;
  updatedMs: number;
}

/**
 * One token bucket per key (a source IP), refilled lazily when the key is next seen. Memory stays bounded
 * by maxKeys, so a scan from many addresses cannot grow it without limit.
 */
export class TokenBuckets {
  private readonly buckets = new Map<string, Bucket>();
  private readonly now: () => number;
  private readonly maxKeys: number;

  constructor(private readonly options: TokenBucketsOptions) {
    this.now = options.now ?? Date.now;
    this.maxKeys = options.maxKeys ?? 65_536;
  }

  /** Whether `key` has a token left, without taking it. */
  has(key: string): boolean {
    const bucket = this.buckets.get(key);
    return bucket === undefined || this.refill(bucket) >= 1;
  }

  /** Takes a token; false when none was left (the caller then refuses or stays quiet). */
  take(key: string): boolean {
    let bucket = this.buckets.get(key);
    if (bucket === undefined) {
      this.makeRoom();
      bucket = { tokens: this.options.capacity, updatedMs: this.now() };
      this.buckets.set(key, bucket);
    }
    if (this.refill(bucket) < 1) return false;
    bucket.tokens -= 1;
    return true;
  }

  get size(): number {
    return this.buckets.size;
  }

  private refill(bucket: Bucket): number {
    const now = this.now();
    const elapsedSeconds = Math.max(0, now - bucket.updatedMs) / 1000;
    bucket.tokens = Math.min(this.options.capacity, bucket.tokens + elapsedSeconds * this.options.refillPerSecond);
    bucket.updatedMs = now;
    return bucket.tokens;
  }

  private makeRoom(): void {
    if (this.buckets.size < this.maxKeys) return;
    for (const [key, bucket] of this.buckets) {
      if (this.refill(bucket) >= this.options.capacity) this.buckets.delete(key);
    }
    // Still full: forget the oldest keys (Map order is insertion order).
    for (const key of this.buckets.keys()) {
      if (this.buckets.size < this.maxKeys) break;
      this.buckets.delete(key);
    }
  }
}
