import { EventEmitter } from 'node:events';
import type { PathName } from '../protocol/messages.js';
import type { PublicAddress } from '../common/address.js';

export interface Reachability {
  reachable: boolean;
  reason?: string;
  checkedAt: string;
  /** How the rendezvous sends users here now (direct, relay, none); `reason` says why when not direct. */
  path?: PathName;
}

/**
 * The agent's view of its public (NAT-mapped) address, as the rendezvous reports it. Pure state with an
 * injected clock: it decides what counts as a change; the agent acts on the 'change' event.
 */
export class PublicAddressTracker extends EventEmitter<{ change: [previous: PublicAddress | undefined, current: PublicAddress] }> {
  current: PublicAddress | undefined;
  since: Date | undefined;
  changes = 0;
  reachability: Reachability | undefined;
  lastHeartbeat: Date | undefined;

  constructor(private readonly now: () => Date = () => new Date()) {
    super();
  }

  /** Records an address the rendezvous observed (welcome or pong). */
  observe(address: PublicAddress): void {
    this.lastHeartbeat = this.now();
    const previous = this.current;
    if (previous && previous.ip === address.ip && previous.port === address.port) return;
    this.current = { ip: address.ip, port: address.port };
    this.since = this.now();
    // the first address after start is not a change; a later different one is
    if (previous) this.changes++;
    // an old reachability verdict says nothing about the new address
    this.reachability = undefined;
    this.emit('change', previous, this.current);
  }

  recordProbe(result: Reachability): void {
    this.reachability = result;
  }
}
