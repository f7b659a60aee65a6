export interface BackoffOptions {
  baseMs: number;
  capMs: number;
  /** [0, 1), injectable for tests. */
  random?: () => number;
}

/**
 * Delay before reconnect attempt `attempt` (0 = the first retry, which goes at once): exponential growth
 * capped at `capMs`, with "equal jitter" (half fixed, half random) so a thousand agents behind one
 * rebooted router do not all knock at the same moment.
 */
export function backoffDelay(attempt: number, { baseMs, capMs, random = Math.random }: BackoffOptions): number {
  if (attempt <= 0) return 0;
  const ceiling = Math.min(capMs, baseMs * 2 ** (attempt - 1));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}
