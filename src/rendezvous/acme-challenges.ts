import { err, ok, type Result } from '../common/result.js';
import { ACME_KEY_AUTHORIZATION_PATTERN, ACME_TOKEN_PATTERN, isAcmeHostname } from '../protocol/messages.js';
import type { Http01Responder } from '../tls/acme/http01.js';

/**
 * The HTTP-01 key authorizations the rendezvous serves on acmeHttp: its own (when its certificate comes
 * by HTTP-01) and its agents'. Each entry belongs to the owner that set it and is served only for the
 * hostname it was set for; entries expire on their own, so an agent that crashes between set and unset
 * leaves nothing answered behind.
 */

/** Validation takes seconds; a CA that has not come after ten minutes will not come. */
export const CHALLENGE_TTL_MS = 10 * 60_000;
/** Entries one owner may hold at once: Let's Encrypt puts at most 100 names into one certificate. */
export const MAX_CHALLENGES_PER_OWNER = 100;
/** The owner of the rendezvous's own challenges; agent names cannot contain parentheses. */
export const RENDEZVOUS_OWNER = '(rendezvous)';

export interface ChallengeStoreOptions {
  ttlMs?: number;
  maxPerOwner?: number;
  /** Clock in epoch ms (tests move it). */
  now?: () => number;
}

interface Entry {
  owner: string;
  keyAuthorization: string;
  expiresAt: number;
}

export class ChallengeStore {
  /**
   * `hostname token` → entry. Every set re-inserts its key, so the Map's order is the order of expiry (one
   * TTL for all) and pruning stops at the first live entry.
   */
  private readonly entries = new Map<string, Entry>();
  private readonly perOwner = new Map<string, number>();
  private readonly ttlMs: number;
  private readonly maxPerOwner: number;
  private readonly now: () => number;

  constructor(options: ChallengeStoreOptions = {}) {
    this.ttlMs = options.ttlMs ?? CHALLENGE_TTL_MS;
    this.maxPerOwner = options.maxPerOwner ?? MAX_CHALLENGES_PER_OWNER;
    this.now = options.now ?? Date.now;
  }

  /** Serves `keyAuthorization` for `hostname` and `token` from now until unset or expiry. */
  set(owner: string, hostname: string, token: string, keyAuthorization: string): Result<void> {
    const host = hostname.toLowerCase();
    if (!isAcmeHostname(host)) return err(`"${hostname}" is not a DNS name the rendezvous answers HTTP-01 for`);
    if (!ACME_TOKEN_PATTERN.test(token)) return err('the token is not 22 to 128 base64url characters');
    if (!ACME_KEY_AUTHORIZATION_PATTERN.test(keyAuthorization) || !keyAuthorization.startsWith(`${token}.`)) {
      return err('the key authorization is not "<token>.<thumbprint>"');
    }
    this.prune();
    const key = `${host} ${token}`;
    const existing = this.entries.get(key);
    if (existing !== undefined && existing.owner !== owner) return err(`the token for ${host} is set by someone else already`);
    const held = this.perOwner.get(owner) ?? 0;
    if (existing === undefined && held >= this.maxPerOwner) {
      return err(`${held} challenges are set already, the most one agent may have; unset finished ones first`);
    }
    this.entries.delete(key);
    this.entries.set(key, { owner, keyAuthorization, expiresAt: this.now() + this.ttlMs });
    if (existing === undefined) this.perOwner.set(owner, held + 1);
    return ok(undefined);
  }

  /** Stops serving an entry of `owner`'s; anything else (unknown, expired, another owner's) is left as it is. */
  unset(owner: string, hostname: string, token: string): void {
    const key = `${hostname.toLowerCase()} ${token}`;
    if (this.entries.get(key)?.owner === owner) this.remove(key);
  }

  /** The key authorization to answer for `hostname` (lower-case) and `token`, while it lives. */
  lookup(hostname: string, token: string): string | undefined {
    this.prune();
    return this.entries.get(`${hostname} ${token}`)?.keyAuthorization;
  }

  /** Live entries of `owner` (status and tests). */
  countOf(owner: string): number {
    this.prune();
    return this.perOwner.get(owner) ?? 0;
  }

  /** `owner`'s challenges as an Http01Responder: the rendezvous's own certificate source takes this. */
  responder(owner: string): Http01Responder {
    return {
      set: async (hostname, token, keyAuthorization) => {
        const result = this.set(owner, hostname, token, keyAuthorization);
        if (!result.ok) throw new Error(result.error);
      },
      unset: async (hostname, token) => this.unset(owner, hostname, token),
    };
  }

  private prune(): void {
    const now = this.now();
    for (const [key, entry] of this.entries) {
      if (entry.expiresAt > now) return;
      this.remove(key);
    }
  }

  private remove(key: string): void {
    const entry = this.entries.get(key);
    if (entry === undefined) return;
    this.entries.delete(key);
    const left = (this.perOwner.get(entry.owner) ?? 1) - 1;
    if (left > 0) this.perOwner.set(entry.owner, left);
    else this.perOwner.delete(entry.owner);
  }
}

export interface ChallengeRequest {
  method: string;
  /** The raw request target. */
  url: string;
  /** The Host header as sent. */
  host: string | undefined;
}

export interface ChallengeAnswer {
  status: 200 | 404;
  body: string;
  /** For the log line. */
  hostname?: string;
  why?: string;
}

const CHALLENGE_PATH = /^\/\.well-known\/acme-challenge\/([^/?#]*)$/;

/**
 * Pure: what acmeHttp answers. Only `GET /.well-known/acme-challenge/<token>` for a token set for the
 * request's Host gets the key authorization; everything else is the same 404, so nobody learns which
 * tokens or names exist.
 */
export function answerChallengeRequest(request: ChallengeRequest, lookup: (hostname: string, token: string) => string | undefined): ChallengeAnswer {
  const match = CHALLENGE_PATH.exec(request.url);
  if (request.method !== 'GET' || !match) return { status: 404, body: NOT_FOUND, why: 'not a challenge request' };
  const token = match[1]!;
  const hostname = hostOf(request.host);
  if (!ACME_TOKEN_PATTERN.test(token) || hostname === undefined) return { status: 404, body: NOT_FOUND, why: 'malformed token or Host' };
  const keyAuthorization = lookup(hostname, token);
  if (keyAuthorization === undefined) return { status: 404, body: NOT_FOUND, hostname, why: 'no such challenge for this host' };
  return { status: 200, body: keyAuthorization, hostname };
}

const NOT_FOUND = 'not found\n';

/** "Home.Example.com:80" → "home.example.com"; undefined when it is no DNS name (an IP, garbage, missing). */
function hostOf(header: string | undefined): string | undefined {
  const host = header?.replace(/:\d{1,5}$/, '').toLowerCase();
  return host !== undefined && isAcmeHostname(host) ? host : undefined;
}
