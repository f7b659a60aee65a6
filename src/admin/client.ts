import type { IncomingMessage } from 'node:http';
import { request } from 'node:https';
import { isIP } from 'node:net';
import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import { spanInWords } from '../common/duration.js';
import { isPlainObject } from '../common/plain-object.js';
import { err, ok, type Result } from '../common/result.js';
import type { AdminKey } from '../common/admin-key.js';
import { authorizationHeader } from './signature.js';
import type { ApiStatus, ApiWhitelistEntry } from './api-types.js';

/** Where an admin API lives and how to trust it. */
export interface AdminEndpoint {
  /** The API base, ending in "/": https://127.0.0.1:7443/api/ or https://rv.example.com:8443/api/agents/home/. */
  base: URL;
  /** PEM CA certificate(s) trusted instead of the system's. */
  ca?: string;
  /** The name the certificate must carry when the URL's host is not it (an agent reached on 127.0.0.1). */
  certificateName?: string;
  /** What to check or pass when the certificate cannot be verified; ends the TLS error message. */
  trustHint: string;
  /** Where a key for this server comes from; ends the 401 message. */
  keyHint?: string;
}

export interface AdminClientOptions {
  endpoint: AdminEndpoint;
  key: AdminKey;
  /** The client's clock in ms (tests skew it). */
  now?: () => number;
  /** Time for the whole exchange. */
  timeoutMs?: number;
}

/** A runtime entry to add; ttl as the user wrote it ("24h", "90m"); the server applies its default and maximum. */
export interface NewEntry {
  cidr: string;
  note?: string;
  ttl?: string;
}

const DEFAULT_TIMEOUT_MS = 10_000;
/** Admin answers are small; a bigger one is not the admin API. */
const MAX_ANSWER_BYTES = 1 << 20;
/** OpenSSL's and Node's names for "this certificate is not trusted or not for this host". */
const TLS_VERIFY_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'CERT_SIGNATURE_FAILURE', 'CERT_UNTRUSTED',
  'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID', 'ERR_TLS_CERT_ALTNAME_INVALID',
]);

interface RawAnswer {
  status: number;
  retryAfter: string | undefined;
  text: string;
}

/**
 * Signs and sends admin API requests. Every method answers a Result whose error is one line a user can act
 * on: which server, what went wrong, what to do.
 */
export class AdminClient {
  private readonly now: () => number;
  private readonly server: string;

  constructor(private readonly options: AdminClientOptions) {
    this.now = options.now ?? Date.now;
    this.server = options.endpoint.base.host;
  }

  status(): Promise<Result<ApiStatus>> {
    return this.call<ApiStatus>('GET', 'status');
  }

  async list(): Promise<Result<ApiWhitelistEntry[]>> {
    const answer = await this.call<{ entries: ApiWhitelistEntry[] }>('GET', 'whitelist');
    return answer.ok ? ok(answer.value.entries) : answer;
  }

  async add(entry: NewEntry): Promise<Result<ApiWhitelistEntry>> {
    return entryOf(await this.call('POST', 'whitelist', entry));
  }

  /** How many runtime entries for `cidr` were removed. */
  remove(cidr: string): Promise<Result<{ removed: number }>> {
    return this.call('DELETE', `whitelist/${encodeURIComponent(cidr)}`);
  }

  /** Adds the address the server sees this client come from. */
  async allowMe(options: { ttl?: string; note?: string } = {}): Promise<Result<ApiWhitelistEntry>> {
    return entryOf(await this.call('POST', 'allow-me', options));
  }

  private async call<T>(method: string, route: string, body?: object): Promise<Result<T>> {
    const target = `${this.options.endpoint.base.pathname}${route}`;
    const bodyText = body === undefined ? '' : JSON.stringify(body);
    const sentAt = this.now();
    const authorization = authorizationHeader(this.options.key, { method, target, body: bodyText }, { nowMs: sentAt });
    const answer = await this.send(method, target, authorization, bodyText);
    return answer.ok ? this.interpret<T>(answer.value, sentAt) : answer;
  }

  private send(method: string, target: string, authorization: string, body: string): Promise<Result<RawAnswer>> {
    const { base, ca, certificateName } = this.options.endpoint;
    const host = base.hostname.replace(/^\[(.*)\]$/, '$1');
    const name = certificateName ?? host;
    const timeoutMs = this.options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    return new Promise((resolve) => {
      const req = request({
        host,
        port: base.port === '' ? 443 : Number(base.port),
        method,
        path: target,
        headers: { authorization, ...(body !== '' && { 'content-type': 'application/json' }), 'content-length': Buffer.byteLength(body) },
        agent: false,
        ...(ca !== undefined && { ca }),
        // RFC 6066 forbids an IP address as SNI
        ...(isIP(name) === 0 && { servername: name }),
        ...(certificateName !== undefined && { checkServerIdentity: (_host: string, cert: PeerCertificate) => checkServerIdentity(certificateName, cert) }),
      }, (res) => readAnswer(res, resolve, (error) => resolve(err(this.transportError(error)))));
      req.setTimeout(timeoutMs, () => req.destroy(Object.assign(new Error(`no answer within ${timeoutMs / 1000} s`), { code: 'ETIMEDOUT' })));
      req.on('error', (error) => resolve(err(this.transportError(error))));
      req.end(body);
    });
  }

  private transportError(error: NodeJS.ErrnoException): string {
    const url = this.options.endpoint.base.href;
    const code = error.code ?? error.message;
    if (TLS_VERIFY_CODES.has(code)) return `cannot verify the TLS certificate of ${url} (${code}): ${this.options.endpoint.trustHint}`;
    const detail = code === 'ETIMEDOUT' ? error.message : 'is the server running and listening there?';
    return `cannot reach ${url} (${code}); ${detail}`;
  }

  private interpret<T>(answer: RawAnswer, sentAt: number): Result<T> {
    const json = parseJson(answer.text);
    if (json === undefined) {
      return err(`${this.server} answered ${answer.status} with something that is not the homeport admin API; check the URL ${this.options.endpoint.base.href}`);
    }
    if (answer.status >= 200 && answer.status < 300) return ok(json as T);
    const reason = typeof json.error === 'string' ? json.error : `status ${answer.status}`;
    const keyId = this.options.key.id;
    switch (answer.status) {
      case 401: {
        const serverTime = typeof json.serverTime === 'string' ? Date.parse(json.serverTime) : Number.NaN;
        if (!Number.isNaN(serverTime)) return err(clockSkewMessage(serverTime - sentAt, this.server));
        const hint = this.options.endpoint.keyHint;
        return err(`${this.server} refused key ${keyId}: ${reason}${hint === undefined ? '' : `; ${hint}`}`);
      }
      case 403:
        return err(`key ${keyId} may not do this on ${this.server}: ${reason}`);
      case 429:
        return err(`${this.server} refuses requests from this address after too many failures: retry in ${answer.retryAfter ?? 'a few'} s`);
      default:
        return err(`${this.server} answered ${answer.status}: ${reason}`);
    }
  }
}

function readAnswer(res: IncomingMessage, resolve: (answer: Result<RawAnswer>) => void, fail: (error: NodeJS.ErrnoException) => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  res.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size > MAX_ANSWER_BYTES) res.destroy(Object.assign(new Error('answer too large'), { code: 'EMSGSIZE' }));
    else chunks.push(chunk);
  });
  res.on('error', fail);
  res.on('end', () => {
    const retryAfter = res.headers['retry-after'];
    resolve(ok({ status: res.statusCode ?? 0, retryAfter, text: Buffer.concat(chunks).toString('utf8') }));
  });
}

function parseJson(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return isPlainObject(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

function entryOf(answer: Result<{ entry: ApiWhitelistEntry }>): Result<ApiWhitelistEntry> {
  return answer.ok ? ok(answer.value.entry) : answer;
}

/** `offsetMs` = server clock minus client clock. */
export function clockSkewMessage(offsetMs: number, server: string): string {
  const direction = offsetMs > 0 ? 'behind' : 'ahead of';
  return `your clock is ${spanInWords(Math.abs(offsetMs))} ${direction} ${server}; fix the time (NTP) and retry`;
}
