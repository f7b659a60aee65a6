/**
 * The admin API's types, shared by the handler (src/admin/api.ts), the transports that serve it (the
 * agent's LAN listener, the rendezvous) and the backends that apply it (the agent's whitelist, the
 * rendezvous's forwarding over the control connection).
 */

/** One request as the transport received it; the handler needs nothing else. */
export interface AdminHttpRequest {
  method: string;
  /** The full path?query as sent: what the client signed. */
  target: string;
  /**
   * The part after the API base, without leading '/' or query: 'status', 'whitelist',
   * 'whitelist/<percent-encoded cidr>' or 'allow-me'.
   */
  route: string;
  authorization: string | undefined;
  body: Buffer;
  /** Normalised client address (normalizeClientAddress): the rate limit and allow-me use it. */
  clientIp: string;
}

export interface AdminHttpResponse {
  status: number;
  headers: Record<string, string>;
  /** JSON text. */
  body: string;
}

/** Who made a change: logged with it, and passed on to the agent when the rendezvous forwards it. */
export interface Actor {
  keyId: string;
  clientIp: string;
}

export interface ApiWhitelistEntry {
  /** Canonical CIDR, e.g. "203.0.113.7/32". */
  cidr: string;
  note?: string;
  /** ISO 8601; absent = never expires (config entries). */
  expires?: string;
  /** ISO 8601; runtime entries only. */
  added?: string;
  source: 'config' | 'runtime';
}

export interface ApiStatus {
  agent: string;
  online: boolean;
  /** "ip:port" */
  publicAddress?: string;
  reachable?: boolean;
  reason?: string;
  checkedAt?: string;
  registeredAt?: string;
  /** How users reach the agent now (direct, relay, none) and why; the rendezvous's answer only. */
  path?: string;
  pathReason?: string;
}

/**
 * The one shape of "done, or an HTTP error": a value, or an HTTP status (400/404/503/...) with a one-line
 * error. A backend's answer, and (as Outcome<AdminAnswer>) an agent's answer through the rendezvous.
 */
export type Outcome<T> = { ok: true; value: T } | { ok: false; status: number; error: string };

/** An answer as an agent sends it back through the rendezvous: the HTTP status and the JSON text. */
export interface AdminAnswer {
  status: number;
  body: string;
}

/** Where the API's operations are applied: the agent's whitelist, or the agent behind a rendezvous. */
export interface AdminBackend {
  status(): Promise<Outcome<ApiStatus>>;
  /** Live entries only: an expired entry is never listed. */
  list(): Promise<Outcome<ApiWhitelistEntry[]>>;
  /** `cidr` is canonical (the handler has parsed it); `ttlMs` is positive and within the configured maximum. */
  add(entry: { cidr: string; note?: string; ttlMs: number }, actor: Actor): Promise<Outcome<ApiWhitelistEntry>>;
  /** `cidr` is canonical. */
  remove(cidr: string, actor: Actor): Promise<Outcome<{ removed: number }>>;
}
