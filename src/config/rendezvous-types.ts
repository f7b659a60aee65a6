import type { ListenAddress } from '../common/address.js';
import type { TlsConfig } from './agent-types.js';

/** The rendezvous's configuration after validation: every path absolute, every duration in ms. */

export interface RendezvousAgentEntry {
  /** AGENT_NAME_PATTERN ([a-z0-9-], at most 63): it appears in `/go/<name>/` URLs and in the protocol. */
  name: string;
  /** The shared secret (from the file or from `secretEnv`), at least MIN_SECRET_CHARS long. Never logged. */
  secret: string;
}

export interface RendezvousSettings {
  /** Where agents connect (TCP, the control protocol). */
  control: ListenAddress;
  /** Where users are redirected (HTTPS). */
  http: ListenAddress;
  stateDir: string;
  /** The heartbeat the server expects; an agent silent for 2 heartbeats (plus a grace) is dead. */
  heartbeatMs: number;
  /** Longest time between two reachability checks of an online agent. */
  probeIntervalMs: number;
  /** Time a reachability check may take (TCP connect plus TLS handshake). */
  probeTimeoutMs: number;
  /** Canonical CIDRs ("203.0.113.0/24") allowed to ask for redirects; empty = everyone. */
  redirectAllow: string[];
}

/** The optional [admin] section: limits of the admin API at `/api/agents/<name>/...`. */
export interface RendezvousAdminSettings {
  /** Lifetime of an `allow-me` entry, and of an entry added without a ttl. */
  allowMeTtlMs: number;
  /** The longest ttl a client may ask for. */
  maxTtlMs: number;
}

export interface RendezvousConfig {
  /** The config file, for messages. */
  file: string;
  rendezvous: RendezvousSettings;
  admin: RendezvousAdminSettings;
  tls: TlsConfig;
  agents: RendezvousAgentEntry[];
  log: { level: string };
}

export const RENDEZVOUS_DEFAULTS = {
  control: '0.0.0.0:7000',
  http: '0.0.0.0:8443',
  heartbeatMs: 5_000,
  probeIntervalMs: 30_000,
  probeTimeoutMs: 5_000,
} as const;
