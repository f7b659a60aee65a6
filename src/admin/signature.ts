import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { KEY_ID_PATTERN, type AdminKey } from '../common/admin-key.js';
import { NONCE_BYTES, NONCE_PATTERN, randomNonce } from '../common/nonce.js';
import { err, ok, type Result } from '../common/result.js';

/**
 * Request signing for the admin API, pure. A client proves it holds a key by sending
 *
 *   Authorization: HOMEPORT-HMAC key=<id>, ts=<unix seconds>, nonce=<16 random bytes, base64url>, sig=<hex>
 *
 * where sig is HMAC-SHA256, keyed with the secret, over `stringToSign`: the method, path, query, timestamp,
 * nonce and the body's SHA-256, one per line. The timestamp bounds how long a captured request is worth
 * anything (MAX_CLOCK_SKEW_S); the nonce, remembered for that long, makes each request usable once.
 * The browser page computes the same string with WebCrypto (src/rendezvous/admin-page.ts).
 */

export const AUTH_SCHEME = 'HOMEPORT-HMAC';
const STRING_TO_SIGN_LABEL = 'HOMEPORT-HMAC-SHA256';
/** A request whose timestamp is further than this from the server's clock is refused. */
export const MAX_CLOCK_SKEW_S = 300;

const SIGNATURE_PATTERN = /^[0-9a-f]{64}$/;

export interface SignedRequest {
  method: string;
  /** The request target exactly as sent: path and query, percent-encoding untouched. */
  target: string;
  /** Unix time in whole seconds. */
  timestamp: number;
  nonce: string;
  /** SHA-256 of the body bytes in lowercase hex (of the empty string when there is no body). */
  bodySha256: string;
}

export interface Authorization {
  keyId: string;
  timestamp: number;
  nonce: string;
  signature: string;
}

export function sha256Hex(body: Uint8Array | string): string {
  return createHash('sha256').update(body).digest('hex');
}

export function stringToSign(request: SignedRequest): string {
  const queryAt = request.target.indexOf('?');
  const path = queryAt < 0 ? request.target : request.target.slice(0, queryAt);
  const query = queryAt < 0 ? '' : request.target.slice(queryAt + 1);
  return [STRING_TO_SIGN_LABEL, request.method.toUpperCase(), path, query, String(request.timestamp), request.nonce, request.bodySha256].join('\n');
}

/** HMAC-SHA256 of stringToSign in lowercase hex, keyed with the UTF-8 bytes of the secret text. */
export function sign(secret: string, request: SignedRequest): string {
  return createHmac('sha256', secret).update(stringToSign(request)).digest('hex');
}

/** Constant time: how much of a guess matched never shows in the answer's timing. */
export function signatureMatches(secret: string, request: SignedRequest, signature: string): boolean {
  const expected = Buffer.from(sign(secret, request), 'hex');
  const given = Buffer.from(SIGNATURE_PATTERN.test(signature) ? signature : '', 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

export interface SigningClock {
  /** Client time in ms (default Date.now()). */
  nowMs?: number;
  /** A fixed nonce, for tests (default random). */
  nonce?: string;
}

/** The Authorization header value for one request. */
export function authorizationHeader(
  key: AdminKey,
  request: { method: string; target: string; body?: Uint8Array | string },
  clock: SigningClock = {},
): string {
  const timestamp = Math.floor((clock.nowMs ?? Date.now()) / 1000);
  const nonce = clock.nonce ?? randomNonce();
  const signature = sign(key.secret, { method: request.method, target: request.target, timestamp, nonce, bodySha256: sha256Hex(request.body ?? '') });
  return `${AUTH_SCHEME} key=${key.id}, ts=${timestamp}, nonce=${nonce}, sig=${signature}`;
}

const PARAMETERS = ['key', 'ts', 'nonce', 'sig'] as const;

/** Reads the header strictly: the scheme, then exactly key, ts, nonce and sig, each once, each well formed. */
export function parseAuthorization(header: string | undefined): Result<Authorization> {
  if (header === undefined || header === '') return err(`no Authorization header; sign the request (${AUTH_SCHEME})`);
  const spaceAt = header.indexOf(' ');
  if (spaceAt < 0 || header.slice(0, spaceAt) !== AUTH_SCHEME) return err(`the Authorization scheme must be ${AUTH_SCHEME}`);
  const values = new Map<string, string>();
  for (const part of header.slice(spaceAt + 1).split(',')) {
    const equalsAt = part.indexOf('=');
    const name = part.slice(0, equalsAt).trim();
    if (equalsAt < 0 || !(PARAMETERS as readonly string[]).includes(name) || values.has(name)) {
      return err(`the Authorization header must hold ${PARAMETERS.join(', ')} once each`);
    }
    values.set(name, part.slice(equalsAt + 1).trim());
  }
  const [keyId = '', ts = '', nonce = '', signature = ''] = PARAMETERS.map((name) => values.get(name) ?? '');
  if (!KEY_ID_PATTERN.test(keyId)) return err('Authorization key= must be a key id of 12 hex digits');
  if (!/^\d{1,12}$/.test(ts)) return err('Authorization ts= must be the Unix time in seconds');
  if (!NONCE_PATTERN.test(nonce)) return err(`Authorization nonce= must be ${NONCE_BYTES} random bytes in base64url`);
  if (!SIGNATURE_PATTERN.test(signature)) return err('Authorization sig= must be an HMAC-SHA256 in 64 lowercase hex digits');
  return ok({ keyId, timestamp: Number(ts), nonce, signature });
}
