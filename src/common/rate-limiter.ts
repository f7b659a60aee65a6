/**
 * A byte-rate token bucket shared by all of one agent's relayed connections, both directions. Bytes are
 * always let through and may run the bucket into debt; the answer is how long the sender must then pause
 * reading, which is how TCP's own backpressure carries the limit back to both ends.
 */
export class ByteRateLimiter {
  private tokens: number;
  private updatedMs: number;
  private readonly burst: number;

  constructor(private readonly bytesPerSecond: number, private readonly now: () => number = Date.now) {
    // a quarter second of traffic, and at least a TLS record or four: smooth, yet never chopping records
    this.burst = Math.max(64 * 1024, bytesPerSecond / 4);
    this.tokens = this.burst;
    this.updatedMs = now();
  }

  /** Spends `bytes`; returns the milliseconds to wait before reading more (0: go on). */
  spend(bytes: number): number {
    const nowMs = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((nowMs - this.updatedMs) * this.bytesPerSecond) / 1000);
    this.updatedMs = nowMs;
    this.tokens -= bytes;
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens * 1000) / this.bytesPerSecond);
  }
}
