import { backoffDelay } from '../../common/backoff.js';

/**
 * When to renew and when to look again, pure. A certificate is renewed once less than a third of its
 * lifetime remains: 30 days of a 90-day Let's Encrypt certificate, 2 days of a 6-day one. A fixed "30 days
 * before" would renew a short-lived certificate at once and forever.
 */

const HOUR_MS = 3_600_000;
/** How often the schedule looks at the certificate: renewal is due days ahead, so twice a day is plenty. */
export const CHECK_INTERVAL_MS = 12 * HOUR_MS;
/** Up to this much random delay on each check, so homes that started together do not ask the CA together. */
export const CHECK_JITTER_MS = HOUR_MS;
/** A failed issuance is retried after 1 min, 2, 4 … up to 6 h (with jitter): soon for a blip, gently on a lasting fault. */
export const RETRY_BASE_MS = 60_000;
export const RETRY_CAP_MS = 6 * HOUR_MS;

export interface Validity {
  notBefore: Date;
  notAfter: Date;
}

/** notAfter − lifetime/3. */
export function renewAt({ notBefore, notAfter }: Validity): Date {
  const lifetime = notAfter.getTime() - notBefore.getTime();
  return new Date(notAfter.getTime() - lifetime / 3);
}

export function renewalDue(validity: Validity, now: Date): boolean {
  return now >= renewAt(validity);
}

/**
 * The next time to look: the renewal time when it comes before the next regular check, else the regular
 * check; either plus jitter (`random` in [0, 1)).
 */
export function nextCheck(validity: Validity, now: Date, random: () => number = Math.random, intervalMs = CHECK_INTERVAL_MS, jitterMs = CHECK_JITTER_MS): Date {
  const regular = now.getTime() + intervalMs;
  const due = Math.max(now.getTime(), renewAt(validity).getTime());
  return new Date(Math.min(regular, due) + Math.floor(random() * jitterMs));
}

/**
 * Delay before retry number `failures` (1 = after the first failure). A CA's Retry-After (rate limits)
 * is honoured when it asks for longer.
 */
export function retryDelay(failures: number, retryAfterMs = 0, random: () => number = Math.random, baseMs = RETRY_BASE_MS, capMs = RETRY_CAP_MS): number {
  // backoffDelay's attempt 1 is its first delayed attempt
  const backoff = backoffDelay(failures, { baseMs, capMs, random });
  return Math.max(backoff, retryAfterMs);
}
