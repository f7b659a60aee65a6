import { LogThrottle } from '../common/log-throttle.js';
import type { Logger } from '../common/logger.js';
import type { LimitsConfig } from '../config/agent-types.js';

/** File descriptors kept free besides the connections: stdio, listeners, log and state files, the rendezvous link. */
export const RESERVED_FDS = 64;
/** An admitted connection may hold an upstream socket besides its own. */
const FDS_PER_CONNECTION = 2;
/** At most one refusal line per address (and one for the global cap) per this interval. */
const LOG_INTERVAL_MS = 60_000;
/** Addresses remembered for that; past it, refusals of new addresses are only counted. */
const MAX_LOGGED_ADDRESSES = 10_000;

export interface ConnectionLimits {
  /** Counts a connection from `address` in; false when it would pass a limit: the caller drops it, nothing is counted. */
  open(address: string): boolean;
  /** A connection counted in by open() has closed. */
  close(address: string): void;
  stats(): { open: number; addresses: number; refused: number };
}

export interface ConnectionLimitsOptions {
  /** The process's open-file limit (see openFileLimit); the global cap is lowered to fit in it. */
  fdLimit?: number | undefined;
  now?: () => number;
}

/** The most connections that fit in `fdLimit` open files: the configured number, or less. */
export function fitConnectionsToFdLimit(connections: number, fdLimit: number | undefined): number {
  if (fdLimit === undefined) return connections;
  return Math.max(1, Math.min(connections, Math.floor((fdLimit - RESERVED_FDS) / FDS_PER_CONNECTION)));
}

/**
 * Open connections per client address and in all, checked at accept right after the whitelist gate and
 * before TLS. A whitelisted address that opens thousands of connections (a buggy client, a stolen phone,
 * a handshake flood) gets connectionsPerAddress and no more; many of them together get `connections`,
 * which stays below the open-file limit: an exhausted fd table would close every new connection, the
 * owner's included, and fail upstream connections and file writes too.
 */
export function createConnectionLimits(limits: LimitsConfig, logger: Logger, options: ConnectionLimitsOptions = {}): ConnectionLimits {
  const now = options.now ?? Date.now;
  const total = fitConnectionsToFdLimit(limits.connections, options.fdLimit);
  if (total < limits.connections) {
    logger.warn(
      { setting: 'limits.connections', configured: limits.connections, using: total, openFileLimit: options.fdLimit },
      `limits.connections lowered to ${total} to fit the open-file limit of ${options.fdLimit} (ulimit -n); raise that (LimitNOFILE= in the service) to allow more`,
    );
  }
  const perAddress = new Map<string, number>();
  const throttle = new LogThrottle(LOG_INTERVAL_MS, MAX_LOGGED_ADDRESSES);
  let open = 0;
  let refused = 0;

  const refuse = (address: string, key: 'limits.connectionsPerAddress' | 'limits.connections', count: number, limit: number): false => {
    refused++;
    const scope = key === 'limits.connections' ? 'in all' : 'from one address';
    const verdict = throttle.pass(key === 'limits.connections' ? key : address, now());
    if (verdict) {
      logger.warn(
        { client: address, open: count, limit, setting: key, ...(verdict.first ? {} : { refusedSinceLastLine: verdict.heldBack + 1 }) },
        `connection refused: too many open connections ${scope} (${key} = ${limit})`,
      );
    }
    return false;
  };

  return {
    open(address) {
      const mine = perAddress.get(address) ?? 0;
      if (mine >= limits.connectionsPerAddress) return refuse(address, 'limits.connectionsPerAddress', mine, limits.connectionsPerAddress);
      if (open >= total) return refuse(address, 'limits.connections', open, total);
      perAddress.set(address, mine + 1);
      open++;
      return true;
    },
    close(address) {
      const mine = perAddress.get(address);
      if (mine === undefined) return;
      if (mine <= 1) perAddress.delete(address);
      else perAddress.set(address, mine - 1);
      open--;
    },
    stats: () => ({ open, addresses: perAddress.size, refused }),
  };
}
