import type { AdminKey } from '../common/admin-key.js';
import type { ListenAddress } from '../common/address.js';

/** The agent's configuration after validation: every path absolute, every duration in ms. */

/** A whitelist entry as written by the user (config `allow` or whitelist.json), before CIDR parsing. */
export interface WhitelistEntrySpec {
  cidr: string;
  note?: string;
  /** Absolute expiry; undefined = never. */
  expires?: Date;
}

export type TlsConfig =
  | { mode: 'selfsigned'; certDir: string; hostnames: string[] }
  | { mode: 'files'; certDir: string; hostnames: string[]; certFile: string; keyFile: string }
  /** hostnames = acme.hostnames, so code that reads tls.hostnames keeps working. */
  | { mode: 'acme'; certDir: string; hostnames: string[]; acme: AcmeConfig };

export const ACME_CHALLENGES = ['dns-01', 'http-01'] as const;
export type AcmeChallenge = (typeof ACME_CHALLENGES)[number];

/** [tls.acme]: a certificate from an ACME CA (Let's Encrypt), renewed by the program itself. */
export interface AcmeConfig {
  /** The directory URL; the names "letsencrypt" and "letsencrypt-staging" are already resolved. */
  directory: string;
  email?: string;
  /** DNS names only; "*.x" only with dns-01. */
  hostnames: string[];
  challenge: AcmeChallenge;
  /** Absolute path of the DNS hook (required for dns-01): `dnsHook set|unset` with HOMEPORT_ACME_* in the environment. */
  dnsHook?: string;
  /** How long to wait for the TXT record at the zone's authoritative servers. */
  propagationTimeoutMs: number;
  /** "host:port" servers asked for the TXT record instead of the zone's authoritative ones. */
  nameservers?: string[];
  /** Absolute path of a PEM CA trusted for the directory's HTTPS besides the system's (Pebble in tests). */
  directoryCa?: string;
}

export const ACME_DIRECTORIES: Readonly<Record<string, string>> = {
  letsencrypt: 'https://acme-v02.api.letsencrypt.org/directory',
  'letsencrypt-staging': 'https://acme-staging-v02.api.letsencrypt.org/directory',
};

export const DEFAULT_PROPAGATION_TIMEOUT_MS = 5 * 60_000;

export interface RouteConfig {
  /** "example.com", "*.example.com" or "*". Lower-case. */
  host: string;
  /** Path prefix starting with "/". */
  path: string;
  /** Upstream base URL, http: or https:. */
  target: URL;
  /** Skip certificate checks for an https upstream (a NAS UI with its own self-signed cert). */
  insecure: boolean;
}

export interface TimeoutsConfig {
  /** Time for a client to send complete request headers (slowloris guard). */
  headersMs: number;
  /** Idle time between requests on a kept-alive client connection. */
  keepAliveMs: number;
  /** A connection with no traffic at all in either direction for this long is closed (0 = never). */
  idleMs: number;
  /** Time to establish a TCP connection to an upstream. */
  upstreamConnectMs: number;
  /** Time for an upstream to start its response after the request was sent (0 = never). */
  upstreamResponseMs: number;
}

/** [limits]: what one client, and all of them together, may hold open at the agent's port. */
export interface LimitsConfig {
  /** Open connections from one client address; one more is reset at accept, before TLS. */
  connectionsPerAddress: number;
  /** Open connections in all; lowered at start to fit the open-file limit (about two descriptors each). */
  connections: number;
}

/** A server to connect to: an IP address or a DNS name, and a port. */
export interface ServerAddress {
  host: string;
  port: number;
}

/** The optional [rendezvous] section: without it the agent serves its port on the LAN only. */
export interface AgentRendezvousConfig {
  server: ServerAddress;
  /** Shared with the rendezvous's [[agent]] entry; from the file or HOMEPORT_SECRET. Never logged. */
  secret: string;
  heartbeatMs: number;
  /** Cron expression (with seconds) of the daily re-register after the router's reboot. */
  reregister: string;
  /** Up to this much random delay after the cron time (0 = none), so every home on one ISP does not knock at once. */
  reregisterDelayMs: number;
  /** IANA time zone of `reregister`; default the machine's. */
  timezone: string;
  /** Command run with HOMEPORT_PUBLIC_IP / HOMEPORT_PUBLIC_PORT when the public address changes (DDNS). */
  onAddressChange?: string;
  /** A DNS name the redirect uses instead of the public IP. */
  publicHost?: string;
}

export interface AgentConfig {
  /** The config file, for messages. */
  file: string;
  agent: { name: string; listen: ListenAddress; stateDir: string };
  tls: TlsConfig;
  whitelist: { allow: WhitelistEntrySpec[] };
  routes: RouteConfig[];
  timeouts: TimeoutsConfig;
  limits: LimitsConfig;
  log: { level: string };
  rendezvous?: AgentRendezvousConfig;
  admin?: AgentAdminConfig;
}

/**
 * The optional [admin] section: the agent's LAN admin listener and what the CLI (`homeport whitelist`,
 * `homeport allow-me`) uses to reach it or the rendezvous.
 */
export interface AgentAdminConfig {
  /** The LAN admin listener (TLS with the agent's certificate). */
  listen: ListenAddress;
  /** The key the CLI signs requests with; from the file or HOMEPORT_ADMIN_KEY (which wins). */
  key?: AdminKey;
  /** https base URL of the rendezvous's web port, for `--via rendezvous`. */
  rendezvousUrl?: URL;
  /** Absolute path of a PEM CA file trusted for rendezvousUrl (besides the system's CAs). */
  ca?: string;
  /** Lifetime of an `allow-me` entry. */
  allowMeTtlMs: number;
  /** The longest ttl an API client may ask for a whitelist entry. */
  maxTtlMs: number;
}

export const DEFAULT_TIMEOUTS: TimeoutsConfig = {
  headersMs: 30_000,
  keepAliveMs: 65_000,
  idleMs: 30 * 60_000,
  upstreamConnectMs: 10_000,
  upstreamResponseMs: 0,
};

/**
 * A browser opens six connections per host and a media app a few more: 256 leaves a household behind one
 * NAT address plenty, while one address alone cannot hold the agent's whole fd table.
 */
export const DEFAULT_LIMITS: LimitsConfig = {
  connectionsPerAddress: 256,
  connections: 4096,
};
/** The largest value either limit takes: beyond it, the system's own limits decide anyway. */
export const MAX_CONNECTIONS_LIMIT = 1_000_000;

export const DEFAULT_HEARTBEAT_MS = 5_000;
export const DEFAULT_REREGISTER = '0 20 4 * * *';
export const DEFAULT_REREGISTER_DELAY_MS = 60_000;
/** A longer random delay would leave the home unreachable long after the router's reboot. */
export const MAX_REREGISTER_DELAY_MS = 3_600_000;

export const DEFAULT_ADMIN_LISTEN = '127.0.0.1:7443';
export const DEFAULT_ALLOW_ME_TTL_MS = 24 * 3_600_000;
export const DEFAULT_MAX_TTL_MS = 7 * 24 * 3_600_000;
