/** The agent's configuration after validation: every path absolute, every duration in ms. */

export interface ListenAddress {
  host: string; // "0.0.0.0", "::", "127.0.0.1" (no brackets)
  port: number;
}

/** A whitelist entry as written by the user (config `allow` or whitelist.json), before CIDR parsing. */
export interface WhitelistEntrySpec {
  cidr: string;
  note?: string;
  /** Absolute expiry; undefined = never. */
  expires?: Date;
}

export type TlsConfig =
  | { mode: 'selfsigned'; certDir: string; hostnames: string[] }
  | { mode: 'files'; certDir: string; hostnames: string[]; certFile: string; keyFile: string };

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
  log: { level: string };
  rendezvous?: AgentRendezvousConfig;
}

export const DEFAULT_TIMEOUTS: TimeoutsConfig = {
  headersMs: 30_000,
  keepAliveMs: 65_000,
  idleMs: 30 * 60_000,
  upstreamConnectMs: 10_000,
  upstreamResponseMs: 0,
};

export const DEFAULT_HEARTBEAT_MS = 5_000;
export const DEFAULT_REREGISTER = '0 20 4 * * *';
/** Shared secrets shorter than this are refused: they could be guessed offline from one captured handshake. */
export const MIN_SECRET_LENGTH = 16;
