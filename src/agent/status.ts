import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from '../common/atomic-write.js';
import { formatDuration } from '../common/duration.js';
import { formatAddress, type PublicAddress } from '../common/address.js';
import type { PathName } from '../protocol/messages.js';
import type { CertificateInfo } from '../tls/cert-info.js';
import type { NatStatus } from './nat-watch.js';

/** What `homeport status` shows; the agent keeps it in stateDir/status.json. */
export interface AgentStatus {
  agent: string;
  localPort: number;
  rendezvous?: string;
  connected: boolean;
  publicAddress?: PublicAddress;
  /** ISO time the current public address was first seen. */
  since?: string;
  reachable?: boolean;
  reachableReason?: string;
  checkedAt?: string;
  /** How the rendezvous sends users here, from its last reachability message. */
  path?: PathName;
  lastHeartbeat?: string;
  /** ISO time of the last successful registration with the rendezvous. */
  registeredAt?: string;
  addressChanges: number;
  /** `homeport nat-check` against the rendezvous, run once after the agent started. */
  nat?: NatStatus;
  /** The served TLS certificate: issuer, expiry, next renewal, a failing renewal's reason. */
  certificate?: CertificateInfo;
  updatedAt: string;
  pid: number;
}

/** The agent's status file (stateDir/status.json), or undefined when it is missing or unreadable. */
export function readStatusFile(file: string): Promise<AgentStatus | undefined> {
  return readFile(file, 'utf8').then((text) => JSON.parse(text) as AgentStatus, () => undefined);
}

/** Human-readable status, one fact a line. Pure: `now` is passed in. */
export function formatStatus(status: AgentStatus, now: Date): string {
  const ago = (iso: string | undefined): string => (iso ? `${formatDuration(Math.max(0, now.getTime() - Date.parse(iso)))} ago` : 'never');
  const reach = status.reachable === undefined ? 'not checked yet'
    : status.reachable ? 'yes' : `no (${status.reachableReason ?? 'unknown reason'})`;
  const lines = [
    ['agent', status.agent],
    ['local port', String(status.localPort)],
    ['rendezvous', status.rendezvous ? `${status.rendezvous} (${status.connected ? 'connected' : 'disconnected'})` : 'not configured (LAN only)'],
    ['public address', status.publicAddress ? `${formatAddress(status.publicAddress)} since ${status.since} (${ago(status.since)})` : 'unknown'],
    ['reachable', reach],
    ['path', describePath(status)],
    ['NAT', status.rendezvous ? describeNat(status.nat) : 'not checked without a rendezvous (run homeport nat-check)'],
    ['certificate', status.certificate ? describeCertificate(status.certificate) : 'unknown'],
    ['last heartbeat', ago(status.lastHeartbeat)],
    ['address changes', String(status.addressChanges)],
    ['updated', `${status.updatedAt} (pid ${status.pid})`],
  ];
  const width = Math.max(...lines.map(([key]) => key!.length));
  // a value of several lines continues under its first line
  return lines.map(([key, value]) => `${key!.padEnd(width)}  ${value!.replaceAll('\n', `\n${' '.repeat(width + 2)}`)}`).join('\n');
}

/** Issuer, expiry and renewal on one line; a failing renewal's reason on the next. */
export function describeCertificate(certificate: CertificateInfo): string {
  const renewal = certificate.renewAt !== undefined ? `, renewal from ${certificate.renewAt}` : ', renewed by you (mode "files")';
  const failing = certificate.lastError !== undefined ? `\nlast renewal failed: ${certificate.lastError}` : '';
  return `${certificate.issuer}, expires ${certificate.notAfter}${renewal}${failing}`;
}

/** The NAT check's verdict and what it means, in words. */
export function describeNat(nat: NatStatus | undefined): string {
  if (nat === undefined) return 'not checked yet (the agent asks its rendezvous\'s STUN server once after it starts)';
  const behaviour = nat.nat === false ? ' (no NAT)' : nat.classic === 'cannot tell' ? '' : ` (mapping ${nat.mapping}, filtering ${nat.filtering})`;
  return [`${nat.classic}${behaviour}, checked ${nat.checkedAt} against ${nat.server}`, ...nat.advice.map((line) => `  ${line}`)].join('\n');
}

/** The path users take, and why, in words. */
export function describePath(status: Pick<AgentStatus, 'path' | 'reachable' | 'reachableReason'>): string {
  const why = status.reachableReason ?? 'unknown reason';
  switch (status.path) {
    case 'direct': return 'direct (the punched port passed the reachability check)';
    case 'relay': return status.reachable ? 'relay (the rendezvous relays this agent: mode = "relay")' : `relay (the punched port is unreachable: ${why})`;
    case 'none': return `none (unreachable: ${why}; the rendezvous has no relay for this agent)`;
    default: return 'not known yet';
  }
}

/**
 * Keeps the status file in step with the agent. What a user acts on (connected, public address,
 * reachability) is written at once; routine heartbeats at most once a minute, so a ping every 5 s does not
 * mean 17,000 fsyncs a day on a NAS's flash. `homeport status` therefore shows the last heartbeat to
 * within a minute.
 */
export class StatusFile {
  private pending: NodeJS.Timeout | undefined;
  private lastWrite = 0;
  private writing: Promise<void> = Promise.resolve();

  constructor(private readonly file: string, private readonly snapshot: () => AgentStatus, private readonly minIntervalMs = 60_000) {}

  /** Writes within `minIntervalMs`; `urgent` (a change a user acts on) writes at once. */
  update(urgent = false): void {
    if (this.pending && !urgent) return;
    clearTimeout(this.pending);
    const wait = urgent ? 0 : Math.max(0, this.lastWrite + this.minIntervalMs - Date.now());
    this.pending = setTimeout(() => this.flush(), wait);
    this.pending.unref();
  }

  flush(): Promise<void> {
    clearTimeout(this.pending);
    this.pending = undefined;
    this.lastWrite = Date.now();
    const text = `${JSON.stringify(this.snapshot(), null, 2)}\n`;
    this.writing = this.writing.then(() => writeFileAtomic(this.file, text, 0o644)).catch(() => undefined);
    return this.writing;
  }

  close(): Promise<void> {
    clearTimeout(this.pending);
    return this.writing;
  }
}
