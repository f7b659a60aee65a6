import { normalizeClientAddress, parseCidr, type Cidr } from '../common/cidr.js';
import { formatDuration, parseDuration } from '../common/duration.js';
import type { Logger } from '../common/logger.js';
import { err, ok, type Result } from '../common/result.js';
import { TokenBuckets } from '../common/token-buckets.js';
import type { Actor, AdminBackend, AdminHttpRequest, AdminHttpResponse, ApiWhitelistEntry, Outcome } from './api-types.js';
import { noteProblem, type KeyStore, type StoredKey } from './key-store.js';
import { ReplayCache } from './replay-cache.js';
import type { Scope } from './scopes.js';
import { AUTH_SCHEME, MAX_CLOCK_SKEW_S, parseAuthorization, sha256Hex, signatureMatches } from './signature.js';

/** Larger bodies are refused (413); the transports stop reading at this size too. */
export const MAX_BODY_BYTES = 16 * 1024;
/** Failed requests a client address may make at once before it gets 429 ... */
export const FAILURE_BURST = 20;
/** ... and how fast that allowance comes back: one attempt every 6 s, 600 guesses an hour at most. */
export const FAILURE_REFILL_PER_SECOND = 1 / 6;
/**
 * The broadest networks a client may add: shorter prefixes let in a large part of the internet, and an
 * entry that wide belongs in the config file, where the owner writes it by hand.
 */
export const MIN_PREFIX = { 4: 8, 6: 32 } as const;

export interface AdminApiOptions {
  keys: KeyStore;
  logger: Logger;
  /** Lifetime of an allow-me entry, and of a POST whitelist entry without ttl. */
  allowMeTtlMs: number;
  /** The longest ttl a client may ask for. */
  maxTtlMs: number;
  /** Clock (ms), for tests. */
  now?: () => number;
}

type Operation = 'status' | 'list' | 'add' | 'remove' | 'allowMe';

interface Endpoint {
  operation: Operation;
  scope: Scope;
}

/** Route pattern → method → endpoint. "whitelist/*" takes the percent-encoded CIDR. */
const ENDPOINTS: Record<string, Record<string, Endpoint>> = {
  'status': { GET: { operation: 'status', scope: 'status:read' } },
  'whitelist': { GET: { operation: 'list', scope: 'status:read' }, POST: { operation: 'add', scope: 'whitelist:write' } },
  'whitelist/*': { DELETE: { operation: 'remove', scope: 'whitelist:write' } },
  'allow-me': { POST: { operation: 'allowMe', scope: 'whitelist:write' } },
};

interface EntryBody {
  fields: Record<string, unknown>;
  entry: { note?: string; ttlMs: number };
}

/** The request after every check: who sent it and what it asks for. */
interface Authorized {
  request: AdminHttpRequest;
  actor: Actor;
  endpoint: Endpoint;
  /** The part of the route after "whitelist/", still percent-encoded. */
  parameter: string;
}

/** An Outcome whose failure carries what the refusal's answer needs besides its status and error. */
type Verdict<T> = Outcome<T> | Refused;
type Refused = { ok: false } & Refusal;

/** Why a request is refused, and what the answer carries besides { error }. */
interface Refusal {
  status: number;
  error: string;
  /** The key the request named, once known: logged with the refusal. */
  keyId?: string;
  headers?: Record<string, string>;
  /** More fields of the JSON answer, e.g. serverTime. */
  details?: Record<string, string>;
  /** Not the client's failure (the server is busy): spends none of its budget. */
  free?: true;
}

function refused(refusal: Refusal): Refused {
  return { ok: false, ...refusal };
}

/**
 * Whose failure budget a client spends: an IPv4 address's own, an IPv6 address's /64 (one subscriber
 * usually holds a whole /64, and a budget per address would give it 2^64 of them).
 */
export function failureBucket(clientIp: string): string {
  const network = parseCidr(`${clientIp}/64`);
  return network.ok && network.value.family === 6 ? network.value.text : clientIp;
}

/** Why a client may not add this network (a one-line reason), or undefined: see MIN_PREFIX. */
export function networkTooBroad(cidr: Cidr): string | undefined {
  const minimum = MIN_PREFIX[cidr.family];
  if (cidr.prefix >= minimum) return undefined;
  return `cidr ${cidr.text} is too broad: the admin API adds IPv${cidr.family} networks of /${minimum} or narrower; `
    + 'put a wider entry in the config file\'s whitelist.allow by hand';
}

/**
 * The admin API, once for both places it is served (the agent's LAN listener and the rendezvous). Checks,
 * in this order: body size, the Authorization header, the key, the clock, the signature over method,
 * target, timestamp, nonce and body hash (constant time), the nonce (recorded only once the signature is
 * valid, so nobody without a key can fill the cache), the route, the key's scope, the body; only then the
 * backend is called. Refused requests spend the failure budget of the client's address (of its /64 for
 * IPv6); a backend's own refusal (an entry not found, the agent offline) does not. An address with no
 * budget left is still authenticated, so that junk sent from the owner's address (by a web page, or a
 * neighbour behind the same carrier NAT) cannot lock the owner out; whatever fails there gets 429 alone.
 */
export class AdminApi {
  private readonly failures: TokenBuckets;
  /** One "rate limited" log line per address a minute, however hard it knocks. */
  private readonly rateLimitNotices: TokenBuckets;
  private readonly nonces: ReplayCache;
  private readonly now: () => number;

  constructor(private readonly options: AdminApiOptions) {
    this.now = options.now ?? Date.now;
    this.failures = new TokenBuckets({ capacity: FAILURE_BURST, refillPerSecond: FAILURE_REFILL_PER_SECOND, now: this.now });
    this.rateLimitNotices = new TokenBuckets({ capacity: 1, refillPerSecond: 1 / 60, now: this.now });
    this.nonces = new ReplayCache({ windowMs: 2 * MAX_CLOCK_SKEW_S * 1000, now: this.now });
  }

  /**
   * Answers one request, applied to `backend` (the rendezvous passes the backend of the agent the path
   * names; one AdminApi keeps one failure budget and replay cache for all of them). Never throws: a
   * backend that throws becomes a 500 and a log line.
   */
  async handle(raw: AdminHttpRequest, backend: AdminBackend): Promise<AdminHttpResponse> {
    const request = { ...raw, method: raw.method.toUpperCase(), clientIp: normalizeClientAddress(raw.clientIp) };
    try {
      const checked = await this.check(request);
      return 'actor' in checked ? await this.perform(checked, backend) : checked;
    } catch (error) {
      this.options.logger.error({ client: request.clientIp, target: request.target, err: String(error) }, 'admin request failed');
      return reply(500, { error: 'internal error; see the server log' });
    }
  }

  /** The request with every check passed, or the answer that refuses it. */
  private async check(request: AdminHttpRequest): Promise<Authorized | AdminHttpResponse> {
    const key = request.body.length > MAX_BODY_BYTES
      ? refused({ status: 413, error: `the body is over ${MAX_BODY_BYTES} bytes` })
      : await this.authenticate(request);
    if (!key.ok) {
      // the budget is looked at only now: a valid signature passes whatever the address spent
      const bucket = failureBucket(request.clientIp);
      return this.failures.has(bucket) ? this.refuse(request, key) : this.rateLimited(bucket);
    }
    const actor = { keyId: key.value.id, clientIp: request.clientIp };
    const route = resolveRoute(request.method, request.route);
    if (!route.ok) return this.refuse(request, { ...route, keyId: actor.keyId });
    const { endpoint } = route.value;
    if (!key.value.scopes.includes(endpoint.scope)) {
      const error = `key ${actor.keyId} lacks the scope ${endpoint.scope}; create a key with it: homeport keygen --scopes ${endpoint.scope}`;
      return this.refuse(request, { status: 403, error, keyId: actor.keyId });
    }
    return { request, actor, ...route.value };
  }

  /** The header, the key, the clock, the signature, the nonce: 401 for any of them (503: too many nonces). */
  private async authenticate(request: AdminHttpRequest): Promise<Verdict<StoredKey>> {
    const header = parseAuthorization(request.authorization);
    if (!header.ok) return refused({ status: 401, error: header.error });
    const { keyId, timestamp, nonce, signature } = header.value;
    const key = await this.options.keys.lookup(keyId);
    if (!key) return refused({ status: 401, error: `unknown key ${keyId}: it was not created here or has been revoked`, keyId });
    const nowMs = this.now();
    const offsetS = timestamp - nowMs / 1000;
    if (Math.abs(offsetS) > MAX_CLOCK_SKEW_S) {
      const how = `${Math.round(Math.abs(offsetS))} s ${offsetS > 0 ? 'ahead of' : 'behind'}`;
      const error = `the request's clock is ${how} the server's (at most ${MAX_CLOCK_SKEW_S} s allowed); set the client's clock`;
      return refused({ status: 401, error, keyId, details: { serverTime: new Date(nowMs).toISOString() } });
    }
    const signed = { method: request.method, target: request.target, timestamp, nonce, bodySha256: sha256Hex(request.body) };
    if (!signatureMatches(key.secret, signed, signature)) {
      return refused({ status: 401, error: 'the signature does not match: a wrong secret, or the request was changed on the way', keyId });
    }
    const seen = this.nonces.remember(keyId, nonce);
    if (seen.verdict === 'replay') {
      return refused({ status: 401, error: 'this nonce was used before: a replayed request is refused; sign every request afresh', keyId });
    }
    if (seen.verdict === 'full') {
      this.options.logger.warn({ keyId, client: request.clientIp }, 'admin replay cache full: refusing requests until old nonces expire');
      const retryAfter = String(Math.max(1, Math.ceil(seen.retryAfterMs / 1000)));
      return refused({ status: 503, error: 'too many signed requests in the last minutes; try again later', keyId, headers: { 'retry-after': retryAfter }, free: true });
    }
    return { ok: true, value: key };
  }

  private async perform({ request, actor, endpoint, parameter }: Authorized, backend: AdminBackend): Promise<AdminHttpResponse> {
    switch (endpoint.operation) {
      case 'status':
        return answer(await backend.status(), 200, (status) => status);
      case 'list':
        return answer(await backend.list(), 200, (entries) => ({ entries }));
      case 'add': {
        const body = this.entryBody(request.body, ['cidr', 'note', 'ttl'], false);
        if (!body.ok) return this.refuseBody(request, actor, body.error);
        const cidr = parseCidrField(body.value.fields.cidr);
        if (!cidr.ok) return this.refuseBody(request, actor, cidr.error);
        const tooBroad = networkTooBroad(cidr.value);
        if (tooBroad !== undefined) return this.refuseBody(request, actor, tooBroad);
        return this.add(backend, { ...body.value.entry, cidr: cidr.value.text }, actor, request.target);
      }
      case 'allowMe': {
        const body = this.entryBody(request.body, ['note', 'ttl'], true, 'allow-me');
        if (!body.ok) return this.refuseBody(request, actor, body.error);
        const own = parseCidr(actor.clientIp);
        if (!own.ok) return reply(400, { error: `your address "${actor.clientIp}" is not an IP address` });
        return this.add(backend, { ...body.value.entry, cidr: own.value.text }, actor, request.target);
      }
      case 'remove': {
        const cidr = parseCidrParameter(parameter);
        if (!cidr.ok) return this.refuseBody(request, actor, cidr.error);
        const outcome = await backend.remove(cidr.value.text, actor);
        if (outcome.ok) {
          const { keyId, clientIp: client } = actor;
          this.options.logger.info({ keyId, client, target: request.target, cidr: cidr.value.text, removed: outcome.value.removed }, 'admin: whitelist entry removed');
        }
        return answer(outcome, 200, (value) => value);
      }
    }
  }

  /** `target` goes into the log line: on the rendezvous it names the agent. */
  private async add(backend: AdminBackend, entry: { cidr: string; note?: string; ttlMs: number }, actor: Actor, target: string): Promise<AdminHttpResponse> {
    const outcome = await backend.add(entry, actor);
    if (outcome.ok) {
      const { cidr, note, expires } = outcome.value;
      this.options.logger.info({ keyId: actor.keyId, client: actor.clientIp, target, cidr, note, expires }, 'admin: whitelist entry added');
    }
    return answer(outcome, 201, (added: ApiWhitelistEntry) => ({ entry: added }));
  }

  /**
   * A JSON object with only `allowed` fields (an empty body is {} when `emptyIsObject`); its note and ttl
   * (default allowMeTtl, at most maxTtl) checked.
   */
  private entryBody(body: Buffer, allowed: string[], emptyIsObject: boolean, defaultNote?: string): Result<EntryBody> {
    const fields = parseJsonObject(body, allowed, emptyIsObject);
    if (!fields.ok) return fields;
    const ttlMs = parseTtl(fields.value.ttl, this.options.allowMeTtlMs, this.options.maxTtlMs);
    if (!ttlMs.ok) return ttlMs;
    const note = fields.value.note ?? defaultNote;
    if (note !== undefined && typeof note !== 'string') return err('note must be a string');
    const problem = note === undefined ? undefined : noteProblem(note);
    if (problem !== undefined) return err(`note ${problem}`);
    return ok({ fields: fields.value, entry: { ttlMs: ttlMs.value, ...(note !== undefined ? { note } : {}) } });
  }

  private refuseBody(request: AdminHttpRequest, actor: Actor, error: string): AdminHttpResponse {
    return this.refuse(request, { status: 400, error, keyId: actor.keyId });
  }

  /** A refused request: spends a failure token of the client's address, logs why, answers { error }. */
  private refuse(request: AdminHttpRequest, refusal: Refusal): AdminHttpResponse {
    const { status, error, keyId } = refusal;
    if (!refusal.free) this.failures.take(failureBucket(request.clientIp));
    this.options.logger.info({ client: request.clientIp, keyId, method: request.method, target: request.target, status, problem: error }, 'admin request refused');
    const headers = { ...(status === 401 ? { 'www-authenticate': AUTH_SCHEME } : {}), ...refusal.headers };
    return reply(status, { error, ...refusal.details }, headers);
  }

  /** The same answer whatever was wrong: a client out of budget learns nothing more by trying. */
  private rateLimited(bucket: string): AdminHttpResponse {
    if (this.rateLimitNotices.take(bucket)) {
      this.options.logger.warn({ client: bucket }, 'admin requests from this address are rate-limited after repeated failures');
    }
    const retryAfter = String(Math.ceil(1 / FAILURE_REFILL_PER_SECOND));
    return reply(429, { error: `too many failed requests from ${bucket}; wait ${retryAfter} s` }, { 'retry-after': retryAfter });
  }
}

/** Which endpoint a method and route name, or 404/405 (with the Allow header). */
function resolveRoute(method: string, route: string): Verdict<{ endpoint: Endpoint; parameter: string }> {
  const path = route.split('?', 1)[0]!;
  const slash = path.indexOf('/');
  const pattern = slash < 0 ? path : `${path.slice(0, slash)}/*`;
  const parameter = slash < 0 ? '' : path.slice(slash + 1);
  const methods = Object.hasOwn(ENDPOINTS, pattern) && (slash < 0 || parameter !== '') ? ENDPOINTS[pattern]! : undefined;
  if (!methods) {
    return refused({ status: 404, error: `no such endpoint "${path}"; the API has status, whitelist, whitelist/<cidr> and allow-me` });
  }
  const endpoint = methods[method];
  const allowed = Object.keys(methods).join(', ');
  if (!endpoint) {
    return refused({ status: 405, error: `${method} is not allowed on ${pattern.replace('*', '<cidr>')}; use ${allowed}`, headers: { allow: allowed } });
  }
  return { ok: true, value: { endpoint, parameter } };
}

/** The body as a JSON object holding only `allowed` fields; an empty body is {} when `emptyIsObject`. */
function parseJsonObject(body: Buffer, allowed: string[], emptyIsObject: boolean): Result<Record<string, unknown>> {
  const example = `a JSON object with ${allowed.join(', ')}, e.g. {"cidr": "203.0.113.7/32", "ttl": "24h"}`;
  if (body.length === 0 && emptyIsObject) return ok({});
  let data: unknown;
  try {
    data = JSON.parse(body.toString('utf8'));
  } catch (error) {
    return err(`the body is not valid JSON (${(error as Error).message}); send ${example}`);
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return err(`the body must be ${example}`);
  const unknown = Object.keys(data).find((field) => !allowed.includes(field));
  if (unknown !== undefined) return err(`"${unknown}" is not a known field here; the fields are ${allowed.join(', ')}`);
  return ok(data as Record<string, unknown>);
}

/** ttl: a duration such as "24h" or "90m", or whole seconds; absent = `fallbackMs`; never above `maxMs`. */
export function parseTtl(value: unknown, fallbackMs: number, maxMs: number): Result<number> {
  let ttlMs: number;
  if (value === undefined) {
    ttlMs = fallbackMs;
  } else if (typeof value === 'number' && Number.isSafeInteger(value) && value > 0) {
    ttlMs = value * 1000;
  } else if (typeof value === 'string') {
    const parsed = parseDuration(value);
    if (!parsed.ok) return err(`ttl ${parsed.error}`);
    ttlMs = parsed.value;
  } else {
    return err(`ttl ${JSON.stringify(value)} must be a duration such as "24h" or "90m", or a positive number of seconds`);
  }
  if (ttlMs <= 0) return err(`ttl ${JSON.stringify(value)} must be longer than zero`);
  if (ttlMs > maxMs) return err(`ttl ${formatDuration(ttlMs)} is longer than the allowed maximum of ${formatDuration(maxMs)}`);
  return ok(ttlMs);
}

/** The strict whitelist parser, so both transports and the CLI agree on what a CIDR is. */
function parseCidrField(value: unknown): Result<Cidr> {
  const example = 'give an address or network such as "203.0.113.7/32"';
  if (value === undefined) return err(`cidr is missing; ${example}`);
  if (typeof value !== 'string') return err(`cidr must be a string; ${example}`);
  const parsed = parseCidr(value);
  return parsed.ok ? parsed : err(`cidr "${value}" ${parsed.error}`);
}

/** The percent-encoded CIDR after "whitelist/": 203.0.113.7%2F32. */
function parseCidrParameter(text: string): Result<Cidr> {
  try {
    return parseCidrField(decodeURIComponent(text));
  } catch {
    return err(`"${text}" is not valid percent-encoding; write the CIDR in the path as e.g. whitelist/203.0.113.7%2F32`);
  }
}

function answer<T>(outcome: Outcome<T>, status: number, body: (value: T) => unknown): AdminHttpResponse {
  return outcome.ok ? reply(status, body(outcome.value)) : reply(outcome.status, { error: outcome.error });
}

function reply(status: number, body: unknown, headers: Record<string, string> = {}): AdminHttpResponse {
  return {
    status,
    headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...headers },
    body: JSON.stringify(body),
  };
}
