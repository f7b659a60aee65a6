import type { Logger } from '../common/logger.js';
import { normalizeClientAddress } from '../common/cidr.js';
import { LogThrottle } from '../common/log-throttle.js';

/** What the gate asks of a whitelist. */
export interface AddressPolicy {
  allows(address: string, nowMs?: number): boolean;
}

export interface GateOptions {
  /** At most one log line per denied source per this interval (default 60 s); the line counts what it hid. */
  perSourceIntervalMs?: number;
  /** A summary "N denied since last report" at most this often (default 60 s), only when something was denied. */
  summaryIntervalMs?: number;
  /** Sources remembered for rate limiting (default 10,000); past that, denials are only counted. */
  maxTrackedSources?: number;
  /** Clock, for tests. */
  now?: () => number;
}

export interface Gate {
  /** Decides at TCP accept, before any TLS byte. False: the caller destroys the socket. */
  admit(address: string | undefined): boolean;
  stats(): { admitted: number; denied: number };
  /** Logs the pending summary and stops the summary timer. */
  close(): void;
}

/**
 * The whitelist gate. A scanner or a flood from one address produces one log line per source per interval
 * plus a periodic summary, never a line per connection: logging must not become the attack's amplifier.
 */
export function createGate(whitelist: AddressPolicy, logger: Logger, options: GateOptions = {}): Gate {
  const now = options.now ?? Date.now;
  const perSourceIntervalMs = options.perSourceIntervalMs ?? 60_000;
  const summaryIntervalMs = options.summaryIntervalMs ?? 60_000;
  const sources = new LogThrottle(perSourceIntervalMs, options.maxTrackedSources ?? 10_000);
  let admitted = 0;
  let denied = 0;
  let deniedSinceReport = 0;
  let lastReportMs = now();

  const report = (nowMs: number): void => {
    if (deniedSinceReport > 0) {
      logger.info(
        { denied: deniedSinceReport, recentSources: sources.size, seconds: Math.round((nowMs - lastReportMs) / 1000) },
        `${deniedSinceReport} connections denied since last report`,
      );
    }
    deniedSinceReport = 0;
    lastReportMs = nowMs;
    sources.prune(nowMs);
  };

  const logDenied = (address: string, nowMs: number): void => {
    const source = normalizeClientAddress(address).slice(0, 64); // a garbage address must not bloat a line
    const verdict = sources.pass(source, nowMs); // past the tracked-source limit: counted in the summary only
    if (verdict?.first) logger.info({ client: source }, 'connection denied: address not in whitelist');
    else if (verdict) logger.info({ client: source, deniedSinceLastLine: verdict.heldBack + 1 }, 'connection denied: address not in whitelist');
  };

  const timer = setInterval(() => report(now()), summaryIntervalMs).unref();

  return {
    admit(address) {
      const nowMs = now();
      if (address !== undefined && whitelist.allows(address, nowMs)) {
        admitted++;
        return true;
      }
      denied++;
      deniedSinceReport++;
      logDenied(address ?? 'unknown', nowMs);
      if (nowMs - lastReportMs >= summaryIntervalMs) report(nowMs);
      return false;
    },
    stats: () => ({ admitted, denied }),
    close() {
      clearInterval(timer);
      report(now());
    },
  };
}
