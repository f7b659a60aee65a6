import type { AgentMode } from '../config/rendezvous-types.js';
import type { PathName } from '../protocol/messages.js';
import type { AgentRecord } from './registry.js';

/** An agent's `mode`, and its relay port when it has an open relay. */
export interface RelayRoute {
  mode: AgentMode;
  port?: number;
}

export interface PathChoice {
  path: PathName;
  /** Why this path, in words for logs, status and the 503 page. */
  reason: string;
}

/**
 * Pure: how users reach an agent now. Direct when the reachability check passed; the relay when the agent
 * has one and the direct path failed the check, is not checked yet, or is turned off (`mode = "relay"`);
 * none when the agent is offline, or unreachable without a relay. Every check re-decides it, so a home
 * moves back to direct as soon as its punched port passes (fall forward) and onto the relay within one
 * check when it stops passing.
 */
export function choosePath(record: Readonly<AgentRecord>, { mode, port }: RelayRoute): PathChoice {
  const hasRelay = port !== undefined;
  if (!record.publicAddress) return { path: 'none', reason: `${record.name} has not connected to the rendezvous yet` };
  if (!record.online) return { path: 'none', reason: `${record.name} is offline since ${record.offlineSince ?? 'the rendezvous started'}` };
  const relay = hasRelay && mode !== 'direct';
  if (relay && mode === 'relay') return { path: 'relay', reason: 'mode = "relay"' };
  const { state, reason, checkedAt } = record.reachability;
  if (state === 'reachable') return { path: 'direct', reason: `the punched port passed the reachability check at ${checkedAt ?? 'an unknown time'}` };
  if (state === 'unknown') {
    // a check is under way: the relay is sure to work meanwhile; without one, the new address is tried at once
    return relay ? { path: 'relay', reason: 'the punched port is not checked yet' } : { path: 'direct', reason: 'the punched port is being checked' };
  }
  const unreachable = `the punched port is unreachable: ${reason ?? 'unknown reason'} (checked at ${checkedAt ?? 'an unknown time'})`;
  return relay ? { path: 'relay', reason: unreachable } : { path: 'none', reason: `${record.name} is unreachable: ${reason ?? 'unknown reason'} (checked at ${checkedAt ?? 'an unknown time'})` };
}
