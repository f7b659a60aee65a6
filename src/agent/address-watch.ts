import { networkInterfaces, type NetworkInterfaceInfo } from 'node:os';
import { everyUnref, heartbeatStale } from './wall-clock.js';

/** Interfaces are cheap to read; a PPPoE redial or a new DHCP lease is noticed within this. */
export const INTERFACE_POLL_MS = 5_000;
/** How often the agent re-checks that its public address is current (the heartbeat replies carry it). */
export const ADDRESS_RECHECK_MS = 5 * 60_000;

export type InterfaceReader = () => NodeJS.Dict<NetworkInterfaceInfo[]>;

/**
 * The non-loopback addresses of the machine as one comparable string, independent of the order the OS
 * lists them in. Two readings with the same fingerprint mean no address came or went.
 */
export function interfacesFingerprint(interfaces: NodeJS.Dict<NetworkInterfaceInfo[]>): string {
  const addresses: string[] = [];
  for (const [name, infos] of Object.entries(interfaces)) {
    for (const info of infos ?? []) {
      if (!info.internal) addresses.push(`${name} ${info.cidr ?? info.address}`);
    }
  }
  return addresses.sort().join('\n');
}

export interface AddressWatchOptions {
  /** Reconnects the control channel from the punched port; the reason goes to the log. */
  reregister: (reason: string) => void;
  /** Only a live session can have stale heartbeats; a broken one is already retrying. */
  connected: () => boolean;
  lastHeartbeat: () => Date | undefined;
  heartbeatMs: number;
  readInterfaces?: InterfaceReader;
  now?: () => number;
  interfacePollMs?: number;
  recheckMs?: number;
}

/**
 * Keeps the public address current between the daily jobs: re-registers at once when the machine's
 * network interfaces change (a PPPoE redial at an odd hour), and when a periodic wall-clock re-check
 * finds the heartbeat replies stale (timers that stalled through a sleep). Returns the stop function.
 */
export function watchAddress({
  reregister, connected, lastHeartbeat, heartbeatMs,
  readInterfaces = networkInterfaces, now = Date.now, interfacePollMs = INTERFACE_POLL_MS, recheckMs = ADDRESS_RECHECK_MS,
}: AddressWatchOptions): () => void {
  let known = interfacesFingerprint(readInterfaces());
  const stopInterfaces = everyUnref(interfacePollMs, () => {
    const current = interfacesFingerprint(readInterfaces());
    if (current === known) return;
    known = current;
    reregister('network interfaces changed');
  });
  const stopRecheck = everyUnref(recheckMs, () => {
    if (connected() && heartbeatStale({ lastHeartbeatMs: lastHeartbeat()?.getTime(), nowMs: now(), heartbeatMs })) {
      reregister('public address re-check: heartbeat replies stale');
    }
  });
  return () => {
    stopInterfaces();
    stopRecheck();
  };
}
