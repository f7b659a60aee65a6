import type { ListenAddress } from '../common/address.js';
import type { TlsConfig } from './agent-types.js';

/** The rendezvous's configuration after validation: every path absolute, every duration in ms. */

/** How `/go/<agent>/` sends users: by the reachability check (auto), always direct, always through the relay. */
export const AGENT_MODES = ['auto', 'direct', 'relay'] as const;
export type AgentMode = (typeof AGENT_MODES)[number];

export interface RendezvousAgentEntry {
  /** AGENT_NAME_PATTERN ([a-z0-9-], at most 63): it appears in `/go/<name>/` URLs and in the protocol. */
  name: string;
  /** The shared secret (from the file or from `secretEnv`), at least MIN_SECRET_CHARS long. Never logged. */
  secret: string;
  mode: AgentMode;
  /** The agent's relay; absent when the agent has none (mode is then "direct"). */
  relay?: RelaySettings;
  /** Lower-cased DNS names this agent may answer HTTP-01 for through the rendezvous; absent when none. */
  acmeHostnames?: string[];
}

/** One agent's relay port on the rendezvous: user TLS bytes pass through it to the agent's work connections. */
export interface RelaySettings {
  listen: ListenAddress;
  /** Relayed connections open at once; one more is refused. */
  maxConnections: number;
  /** Bytes per second for all of the agent's relayed connections together, both directions; 0 = unlimited. */
  bytesPerSecond: number;
  /** A relayed connection with no byte in either direction for this long is closed. */
  idleMs: number;
  /** Idle work connections the agent keeps open to the rendezvous, so a user's first byte waits for none. */
  pool: number;
}

export interface RendezvousSettings {
  /** Where agents connect (TCP, the control protocol). */
  control: ListenAddress;
  /** Where users are redirected (HTTPS). */
  http: ListenAddress;
  /** Plain HTTP answering only /.well-known/acme-challenge/<token> (HTTP-01); absent when off. */
  acmeHttp?: ListenAddress;
  stateDir: string;
  /** The heartbeat the server expects; an agent silent for 2 heartbeats (plus a grace) is dead. */
  heartbeatMs: number;
  /** Longest time between two reachability checks of an online agent. */
  probeIntervalMs: number;
  /** Time a reachability check may take (TCP connect plus TLS handshake). */
  probeTimeoutMs: number;
  /** Canonical CIDRs ("203.0.113.0/24") allowed to ask for redirects; empty = everyone. */
  redirectAllow: string[];
  /** The host name users reach the relay ports at; default the host they asked /go/ at. */
  publicHost?: string;
}

/** The [stun] section: where the rendezvous answers STUN Binding requests (UDP and TCP on each address). */
export interface StunSettings {
  /** A1:P1. */
  listen: ListenAddress;
  /**
   * A2:P2, the server's second address: with it the server answers CHANGE-REQUEST and names this address in
   * OTHER-ADDRESS (RFC 5780). `listen` then has a specific host of the same family and a port other than 0.
   */
  alternate?: ListenAddress;
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
  /** Absent when `[stun] listen = "off"`. */
  stun?: StunSettings;
  log: { level: string };
}

export const RENDEZVOUS_DEFAULTS = {
  control: '0.0.0.0:7000',
  http: '0.0.0.0:8443',
  heartbeatMs: 5_000,
  probeIntervalMs: 30_000,
  probeTimeoutMs: 5_000,
} as const;

/** 3478 is STUN's registered port, for UDP and TCP alike. */
export const STUN_DEFAULT_LISTEN = '0.0.0.0:3478';

export const RELAY_DEFAULTS = {
  maxConnections: 64,
  idleMs: 30 * 60_000,
  pool: 2,
} as const;
/** More idle work connections than this per agent would only hold sockets open for nothing. */
export const MAX_RELAY_POOL = 16;
