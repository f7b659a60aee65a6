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

export interface AgentConfig {
  /** The config file, for messages. */
  file: string;
  agent: { name: string; listen: ListenAddress; stateDir: string };
  tls: TlsConfig;
  whitelist: { allow: WhitelistEntrySpec[] };
  routes: RouteConfig[];
  timeouts: TimeoutsConfig;
  log: { level: string };
}

export const DEFAULT_TIMEOUTS: TimeoutsConfig = {
  headersMs: 30_000,
  keepAliveMs: 65_000,
  idleMs: 30 * 60_000,
  upstreamConnectMs: 10_000,
  upstreamResponseMs: 0,
};
