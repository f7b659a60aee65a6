import { isIP } from 'node:net';
import type { PublicAddress } from '../common/address.js';
import { KEY_ID_PATTERN } from '../common/admin-key.js';
import { parseCidr } from '../common/cidr.js';
import { NONCE_BYTES, NONCE_PATTERN } from '../common/nonce.js';
import { isPlainObject } from '../common/plain-object.js';
import { err, ok, type Result } from '../common/result.js';

/**
 * Every message of the homeport control protocol v1 (agent ⇄ rendezvous) and its limits, in one place.
 * Pure: `parseMessage` validates a decoded frame and returns a fresh object holding only the known fields.
 *
 * Handshake: agent `hello` → server `challenge` → agent `auth` → server `welcome`; after that every frame
 * in both directions is sealed by session.ts (`ping`, `pong`, `probe`, `admin`, `adminResult`, `openWork`,
 * `punch`, `acmeChallenge`, `acmeChallengeResult`, and `error` with seq + mac).
 *
 * Admin: the server forwards an admin API operation it has already authenticated (a signed request to
 * `/api/agents/<name>/...`) as `admin` with a request id; the agent applies it to its whitelist and answers
 * with `adminResult` carrying the same id, an HTTP status and JSON text. The text travels in parts of at most
 * ADMIN_RESULT_PART_CHARS characters, all but the last marked `more: true`, so a long whitelist fits the
 * frame limit without raising it: MAX_FRAME_BYTES is also what an unauthenticated peer can make us buffer.
 *
 * What the MACs and the parser cover, each closing a hole an on-path attacker could use:
 * 1. `auth.mac` covers `fingerprint`, `listenPort` and `publicHost` besides the name and nonces (see
 *    `authMac`); otherwise anyone on the path could swap in their own certificate fingerprint or rewrite
 *    `publicHost`, making the rendezvous redirect users to a host of their choice.
 * 2. `welcome.mac` covers `heartbeatMs` and `stunPort` too (see `welcomeMac`): unauthenticated, a rewritten
 *    interval could make the agent ping too rarely (declared dead, NAT mapping lost) or flood, and a
 *    rewritten STUN port could point the agent's NAT checks at someone else's server.
 * 3. Unknown fields are rejected, at every level. A sealed message is verified over the canonical JSON of
 *    the parsed message, so a field the parser dropped would otherwise ride along unauthenticated.
 * 4. A sealed message is accepted only if its type is one the peer's role sends (see session.ts), on top
 *    of the direction label inside the MAC.
 * Relay and punching (side connections, each a fresh TCP connection to the control port):
 * - work: agent `workHello` → server `challenge` → agent `workAuth`; the connection then waits, idle, in the
 *   agent's pool on the rendezvous. For a user the rendezvous writes a sealed PROXY v2 header (proxy-v2.ts)
 *   followed by the user's bytes: TLS still ends at the agent. Over the control channel the server asks for
 *   more with sealed `openWork`.
 * - punch: a `homeport connect` client sends `connect` from a fixed port; the server answers `route` with
 *   the paths it knows (direct when the reachability check passed, the relay port). With `punch: true` it
 *   sends the agent a sealed `punch` naming the client's mapped address; the agent dials a side connection
 *   (`workHello` with that punch id) from a fresh port, whose mapped address the server returns to the
 *   client in `route.peer`; then both connect to each other at once (TCP simultaneous open).
 * ACME HTTP-01 through the rendezvous: the agent asks with sealed `acmeChallenge` (an id, op "set" with the
 * key authorization or "unset") and the server answers sealed `acmeChallengeResult` with the same id. The
 * server refuses hostnames not in that agent's `acmeHostnames`, so an agent can answer for its own names
 * only; the token and key authorization are as RFC 8555 makes them (base64url, `<token>.<thumbprint>`).
 * Also fixed here: nonces are base64url of 16 random bytes (22 characters); `reregister` is
 * left out (the agent reconnects instead); after `welcome` an `error` must be sealed like any other frame.
 */

export const PROTOCOL_VERSION = 1;

/** Agent names as they appear in `hello`, the rendezvous config and `/go/<agent>/` URLs. */
export const AGENT_NAME_PATTERN = /^[a-z0-9-]{1,63}$/;
/** Shared secrets shorter than this are refused by both configs: they could be guessed offline from one captured handshake. */
export const MIN_SECRET_CHARS = 16;
/** Longest `error.message` and `probe.reason`. */
export const MAX_TEXT_CHARS = 200;
/** Range of the heartbeat interval the server announces in `welcome`. */
export const MIN_HEARTBEAT_MS = 100;
export const MAX_HEARTBEAT_MS = 600_000;
/** Whitelist operations the server forwards in `admin` (the status it answers itself, from its registry). */
export const ADMIN_OPS = ['list', 'add', 'remove'] as const;
/** Longest note an `admin` add may carry. */
export const MAX_ADMIN_NOTE_CHARS = MAX_TEXT_CHARS;
/** Longest lifetime an `admin` add may carry: ten years. */
export const MAX_ADMIN_TTL_MS = 3650 * 86_400_000;
/**
 * Characters of answer text in one `adminResult`. Even if every one needed a six-byte JSON escape
 * (\uXXXX) the frame stays below MAX_FRAME_BYTES.
 */
export const ADMIN_RESULT_PART_CHARS = 2048;
/** Longest answer text, all parts together (512 parts): a whitelist of several thousand entries. */
export const MAX_ADMIN_RESULT_CHARS = 1024 * 1024;

/**
 * A name an agent may ask the rendezvous to answer HTTP-01 for: a lower-case DNS name of at least two
 * labels, no wildcard (only dns-01 proves those) and no IP address (the Host header could not carry the
 * name the CA checks). Callers lower-case first; isAcmeHostname also refuses an IPv4 address, which the
 * pattern alone would let through.
 */
export const ACME_HOSTNAME_PATTERN = /^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
/** An ACME token (RFC 8555 8.3): base64url without padding, at least 128 bits; 128 characters is ample. */
export const ACME_TOKEN_PATTERN = /^[A-Za-z0-9_-]{22,128}$/;
/** A key authorization: the token, ".", and the base64url SHA-256 thumbprint of the account key (43 characters). */
export const ACME_KEY_AUTHORIZATION_PATTERN = /^[A-Za-z0-9_-]{22,128}\.[A-Za-z0-9_-]{43}$/;
export const ACME_CHALLENGE_OPS = ['set', 'unset'] as const;
export type AcmeChallengeOp = (typeof ACME_CHALLENGE_OPS)[number];

export function isAcmeHostname(text: string): boolean {
  return ACME_HOSTNAME_PATTERN.test(text) && isIP(text) === 0;
}

/** The address the server saw the agent's connection come from. */
export type ObservedAddress = PublicAddress;

/** How users reach an agent now, as the rendezvous decides it (`probe.path`, `route`). */
export const PATHS = ['direct', 'relay', 'none'] as const;
export type PathName = (typeof PATHS)[number];
/** Most work connections the server asks for in one `openWork`. */
export const MAX_OPEN_WORK = 16;

/** agent → server: opens the handshake with a fresh client nonce. */
export interface HelloMessage {
  type: 'hello';
  version: typeof PROTOCOL_VERSION;
  agent: string;
  nonce: string;
}

/** server → agent: the server nonce the agent must MAC. */
export interface ChallengeMessage {
  type: 'challenge';
  nonce: string;
}

/** agent → server: proves the secret and registers what the reachability check must find. */
export interface AuthMessage {
  type: 'auth';
  mac: string;
  /** SHA-256 of the agent's TLS leaf certificate, as `X509Certificate.fingerprint256` prints it. */
  fingerprint: string;
  publicHost?: string;
  listenPort: number;
}

/** server → agent: proves the server knows the secret too, and tells the address it observed. */
export interface WelcomeMessage {
  type: 'welcome';
  mac: string;
  observed: ObservedAddress;
  heartbeatMs: number;
  /** The port the rendezvous answers STUN on (UDP and TCP, at the address the agent connected to); absent when STUN is off. */
  stunPort?: number;
  seq: 0;
}

/** agent → server, sealed: heartbeat that keeps the NAT mapping alive. */
export interface PingMessage {
  type: 'ping';
  seq: number;
  mac: string;
}

/** server → agent, sealed: answers each ping with the address observed now. */
export interface PongMessage {
  type: 'pong';
  seq: number;
  mac: string;
  observed: ObservedAddress;
}

/** server → agent, sealed: result of the reachability check. */
export interface ProbeMessage {
  type: 'probe';
  seq: number;
  mac: string;
  reachable: boolean;
  reason?: string;
  /** When the check ran, as `Date.prototype.toISOString` prints it. */
  checkedAt: string;
  /** How the rendezvous sends users to the agent now; `reason` says why when it is not direct. */
  path?: PathName;
}

/** agent → server, on a fresh connection: opens a work (relay) or punch side connection. */
export interface WorkHelloMessage {
  type: 'workHello';
  version: typeof PROTOCOL_VERSION;
  agent: string;
  nonce: string;
  /** Set on a punch side connection: the id of the server's `punch`. */
  punch?: string;
}

/** agent → server: proves the secret on a side connection (see workMac). */
export interface WorkAuthMessage {
  type: 'workAuth';
  mac: string;
}

/** server → agent, sealed: open this many more work connections. */
export interface OpenWorkMessage {
  type: 'openWork';
  seq: number;
  mac: string;
  count: number;
}

/** server → agent, sealed: a `homeport connect` client at `peer` wants a punched connection. */
export interface PunchMessage {
  type: 'punch';
  seq: number;
  mac: string;
  id: string;
  peer: ObservedAddress;
}

/** client → server: which paths lead to `agent`; with `punch`, also coordinate a TCP hole punch. */
export interface ConnectMessage {
  type: 'connect';
  version: typeof PROTOCOL_VERSION;
  agent: string;
  punch: boolean;
}

/** server → client: the answer to `connect`. */
export interface RouteMessage {
  type: 'route';
  /** The agent's punched port, when the reachability check passed. */
  direct?: ObservedAddress;
  /** The port of the agent's relay on this rendezvous. */
  relayPort?: number;
  /** The agent's mapped address for the punch, when it answered in time. */
  peer?: ObservedAddress;
  /** The client's address as the server saw it. */
  observed: ObservedAddress;
  /** Why a path is missing, in words. */
  reason?: string;
}

export type AdminOp = (typeof ADMIN_OPS)[number];

/** server → agent, sealed: one admin operation, authenticated and authorised by the server already. */
export interface AdminMessage {
  type: 'admin';
  seq: number;
  mac: string;
  /** Chosen by the server, unique on this connection; the answer carries it back. */
  id: number;
  op: AdminOp;
  /** add, remove: a canonical CIDR ("203.0.113.7/32"). */
  cidr?: string;
  /** add only. */
  note?: string;
  /** add only: the entry's lifetime. */
  ttlMs?: number;
  /** add, remove: the admin key that signed the change, and the address it came from, for the agent's log. */
  keyId?: string;
  client?: string;
}

/** An `admin` message's content: what the server asks and the agent carries out. */
export type AdminOrder = Omit<AdminMessage, 'type' | 'seq' | 'mac'>;

/** agent → server, sealed: (a part of) the answer to `admin` `id`: an HTTP status and JSON text. */
export interface AdminResultMessage {
  type: 'adminResult';
  seq: number;
  mac: string;
  id: number;
  status: number;
  /** A part of the JSON text; the parts joined in order are the whole answer. */
  body: string;
  /** Set on every part but the last. */
  more?: true;
}

/** agent → server, sealed: serve (set) or stop serving (unset) an HTTP-01 key authorization for one of its names. */
export interface AcmeChallengeMessage {
  type: 'acmeChallenge';
  seq: number;
  mac: string;
  /** Chosen by the agent, unique on this connection; the answer carries it back. */
  id: number;
  op: AcmeChallengeOp;
  hostname: string;
  token: string;
  /** set only: `<token>.<thumbprint>`. */
  keyAuthorization?: string;
}

/** An `acmeChallenge` message's content: what the agent asks. */
export type AcmeChallengeOrder = Omit<AcmeChallengeMessage, 'type' | 'seq' | 'mac'>;

/** server → agent, sealed: the answer to `acmeChallenge` `id`; `error` says why when it was refused. */
export interface AcmeChallengeResultMessage {
  type: 'acmeChallengeResult';
  seq: number;
  mac: string;
  id: number;
  ok: boolean;
  error?: string;
}

/** Either way: why the sender is closing. Unsealed only before `welcome`; sealed after it. */
export interface ErrorMessage {
  type: 'error';
  message: string;
  seq?: number;
  mac?: string;
}

export type Message =
  | HelloMessage
  | ChallengeMessage
  | AuthMessage
  | WelcomeMessage
  | PingMessage
  | PongMessage
  | ProbeMessage
  | AdminMessage
  | AdminResultMessage
  | WorkHelloMessage
  | WorkAuthMessage
  | OpenWorkMessage
  | PunchMessage
  | AcmeChallengeMessage
  | AcmeChallengeResultMessage
  | ConnectMessage
  | RouteMessage
  | ErrorMessage;

export type MessageType = Message['type'];

/** The `adminResult` messages, before sealing, that carry one answer: its text cut into parts, in order. */
export function adminResultParts(id: number, status: number, body: string): Omit<AdminResultMessage, 'seq' | 'mac'>[] {
  const parts: Omit<AdminResultMessage, 'seq' | 'mac'>[] = [];
  for (let at = 0; at < body.length; at += ADMIN_RESULT_PART_CHARS) {
    const more = at + ADMIN_RESULT_PART_CHARS < body.length;
    parts.push({ type: 'adminResult', id, status, body: body.slice(at, at + ADMIN_RESULT_PART_CHARS), ...(more ? { more: true } : {}) });
  }
  return parts;
}

type Check = (value: unknown, field: string) => Result<unknown>;

interface Schema {
  required: Record<string, Check>;
  optional?: Record<string, Check>;
  /** A rule across fields; returns the problem, if any. */
  across?: (message: Record<string, unknown>) => string | undefined;
}

/** Validates a decoded frame: known type, every field present with the right type and size, nothing else. */
export function parseMessage(value: unknown): Result<Message> {
  if (!isPlainObject(value)) return err(`a message must be a JSON object, not ${describe(value)}`);
  const type = value.type;
  if (typeof type !== 'string') return err(`message.type must be a string, not ${describe(type)}`);
  if (!Object.hasOwn(SCHEMAS, type)) {
    return err(`message type ${describe(type)} is unknown; known types: ${Object.keys(SCHEMAS).join(', ')}`);
  }
  const schema = SCHEMAS[type as MessageType];
  const parsed = readFields(value, type, { ...schema, required: { type: exactly(type), ...schema.required } });
  return parsed.ok ? ok(parsed.value as unknown as Message) : parsed;
}

function readFields(value: Record<string, unknown>, path: string, schema: Schema): Result<Record<string, unknown>> {
  const checks = { ...schema.required, ...schema.optional };
  for (const key of Object.keys(value)) {
    if (!Object.hasOwn(checks, key)) {
      return err(`${path} has unknown field ${describe(key)}; its fields are: ${Object.keys(checks).join(', ')}`);
    }
  }
  const fields: Record<string, unknown> = {};
  for (const [key, check] of Object.entries(checks)) {
    const present = Object.hasOwn(value, key) && value[key] !== undefined;
    if (!present) {
      if (Object.hasOwn(schema.optional ?? {}, key)) continue;
      return err(`${path}.${key} is missing`);
    }
    const checked = check(value[key], `${path}.${key}`);
    if (!checked.ok) return checked;
    fields[key] = checked.value;
  }
  const problem = schema.across?.(fields);
  return problem === undefined ? ok(fields) : err(`${path}: ${problem}`);
}

// ---- field checks: each names the field and what it must be --------------------------------------------

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (typeof value !== 'string') return typeof value;
  const text = JSON.stringify(value);
  return text.length > 40 ? `${text.slice(0, 37)}..."` : text;
}

const must = (field: string, what: string, value: unknown): Result<never> => err(`${field} must be ${what}, not ${describe(value)}`);

function exactly(expected: string | number | boolean): Check {
  return (value, field) => (value === expected ? ok(value) : must(field, JSON.stringify(expected), value));
}

function matching(pattern: RegExp, what: string): Check {
  return (value, field) => (typeof value === 'string' && pattern.test(value) ? ok(value) : must(field, what, value));
}

function integer(min: number, max: number): Check {
  return (value, field) =>
    Number.isSafeInteger(value) && (value as number) >= min && (value as number) <= max
      ? ok(value)
      : must(field, `an integer from ${min} to ${max}`, value);
}

function text(maxChars: number): Check {
  return (value, field) =>
    typeof value === 'string' && value.length >= 1 && value.length <= maxChars
      ? ok(value)
      : must(field, `a string of 1 to ${maxChars} characters`, value);
}

const boolean: Check = (value, field) => (typeof value === 'boolean' ? ok(value) : must(field, 'true or false', value));

const nonce: Check = (value, field) =>
  typeof value === 'string' && NONCE_PATTERN.test(value) && Buffer.from(value, 'base64url').toString('base64url') === value
    ? ok(value)
    : must(field, `${NONCE_BYTES} bytes in base64url (22 characters)`, value);

const ip: Check = (value, field) =>
  typeof value === 'string' && value.length <= 45 && isIP(value) !== 0 ? ok(value) : must(field, 'an IPv4 or IPv6 address', value);

const isoTime: Check = (value, field) =>
  typeof value === 'string' &&
  /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/.test(value) &&
  !Number.isNaN(Date.parse(value)) &&
  new Date(value).toISOString() === value
    ? ok(value)
    : must(field, 'a UTC time as Date.toISOString() prints it (2024-01-31T04:20:00.000Z)', value);

const observed: Check = (value, field) =>
  isPlainObject(value) ? readFields(value, field, { required: { ip, port: integer(1, 65535) } }) : must(field, 'an object { ip, port }', value);

const version: Check = (value, field) =>
  value === PROTOCOL_VERSION ? ok(value) : must(field, `${PROTOCOL_VERSION}, the only protocol version this build speaks`, value);

const agentName = matching(AGENT_NAME_PATTERN, '1 to 63 characters of a-z, 0-9 and "-"');
const mac = matching(/^[0-9a-f]{64}$/, 'an HMAC-SHA256 in 64 lowercase hex digits');
const fingerprint = matching(
  /^[0-9A-F]{2}(:[0-9A-F]{2}){31}$/,
  'a SHA-256 fingerprint as 32 uppercase hex bytes joined by ":" (as X509Certificate.fingerprint256 prints it)',
);
const hostname = matching(
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/,
  'a DNS name such as home.example.com',
);
const port = integer(1, 65535);
const seq = integer(1, Number.MAX_SAFE_INTEGER);
const requestId = integer(1, Number.MAX_SAFE_INTEGER);
const keyId = matching(KEY_ID_PATTERN, 'an admin key id of 12 lowercase hex digits');

const pathName: Check = (value, field) =>
  (PATHS as readonly unknown[]).includes(value) ? ok(value) : must(field, `one of ${PATHS.join(', ')}`, value);

const adminOp: Check = (value, field) =>
  (ADMIN_OPS as readonly unknown[]).includes(value) ? ok(value) : must(field, `one of ${ADMIN_OPS.join(', ')}`, value);

const canonicalCidr: Check = (value, field) => {
  const parsed = typeof value === 'string' && value.length <= 64 ? parseCidr(value) : undefined;
  return parsed?.ok && parsed.value.text === value ? ok(value) : must(field, 'a CIDR in canonical form such as "203.0.113.7/32"', value);
};

/** The optional fields each admin operation needs, and the ones it may have besides; `across` refuses others. */
const ADMIN_FIELDS: Record<AdminOp, { required: string[]; allowed: string[] }> = {
  list: { required: [], allowed: [] },
  add: { required: ['cidr', 'ttlMs', 'keyId', 'client'], allowed: ['note'] },
  remove: { required: ['cidr', 'keyId', 'client'], allowed: [] },
};
const ADMIN_OPTIONAL_FIELDS = ['cidr', 'note', 'ttlMs', 'keyId', 'client'];

function adminFieldsProblem(message: Record<string, unknown>): string | undefined {
  const { required, allowed } = ADMIN_FIELDS[message.op as AdminOp];
  const missing = required.find((field) => message[field] === undefined);
  if (missing !== undefined) return `op "${message.op as string}" needs ${missing}`;
  const extra = ADMIN_OPTIONAL_FIELDS.find((field) => message[field] !== undefined && !required.includes(field) && !allowed.includes(field));
  return extra === undefined ? undefined : `op "${message.op as string}" takes no ${extra}`;
}

const acmeChallengeOp: Check = (value, field) =>
  (ACME_CHALLENGE_OPS as readonly unknown[]).includes(value) ? ok(value) : must(field, `one of ${ACME_CHALLENGE_OPS.join(', ')}`, value);

const acmeHostname: Check = (value, field) =>
  typeof value === 'string' && isAcmeHostname(value) ? ok(value) : must(field, 'a lower-case DNS name such as home.example.com', value);

const acmeToken = matching(ACME_TOKEN_PATTERN, 'an ACME token: 22 to 128 base64url characters');
const keyAuthorization = matching(ACME_KEY_AUTHORIZATION_PATTERN, 'an ACME key authorization: the token, ".", and a 43-character base64url thumbprint');

/** set carries the key authorization of its own token; unset carries none. */
function acmeChallengeProblem(message: Record<string, unknown>): string | undefined {
  const keyAuth = message.keyAuthorization as string | undefined;
  if (message.op === 'unset') return keyAuth === undefined ? undefined : 'op "unset" takes no keyAuthorization';
  if (keyAuth === undefined) return 'op "set" needs keyAuthorization';
  return keyAuth.startsWith(`${message.token as string}.`) ? undefined : 'keyAuthorization must begin with the token and "."';
}

const SCHEMAS: Record<MessageType, Schema> = {
  hello: { required: { version, agent: agentName, nonce } },
  challenge: { required: { nonce } },
  auth: { required: { mac, fingerprint, listenPort: port }, optional: { publicHost: hostname } },
  welcome: { required: { mac, observed, heartbeatMs: integer(MIN_HEARTBEAT_MS, MAX_HEARTBEAT_MS), seq: exactly(0) }, optional: { stunPort: port } },
  ping: { required: { seq, mac } },
  pong: { required: { seq, mac, observed } },
  probe: { required: { seq, mac, reachable: boolean, checkedAt: isoTime }, optional: { reason: text(MAX_TEXT_CHARS), path: pathName } },
  workHello: { required: { version, agent: agentName, nonce }, optional: { punch: nonce } },
  workAuth: { required: { mac } },
  openWork: { required: { seq, mac, count: integer(1, MAX_OPEN_WORK) } },
  punch: { required: { seq, mac, id: nonce, peer: observed } },
  connect: { required: { version, agent: agentName, punch: boolean } },
  route: { required: { observed }, optional: { direct: observed, relayPort: port, peer: observed, reason: text(MAX_TEXT_CHARS) } },
  admin: {
    required: { seq, mac, id: requestId, op: adminOp },
    optional: { cidr: canonicalCidr, note: text(MAX_ADMIN_NOTE_CHARS), ttlMs: integer(1, MAX_ADMIN_TTL_MS), keyId, client: ip },
    across: adminFieldsProblem,
  },
  adminResult: {
    required: { seq, mac, id: requestId, status: integer(100, 599), body: text(ADMIN_RESULT_PART_CHARS) },
    optional: { more: exactly(true) },
  },
  acmeChallenge: {
    required: { seq, mac, id: requestId, op: acmeChallengeOp, hostname: acmeHostname, token: acmeToken },
    optional: { keyAuthorization },
    across: acmeChallengeProblem,
  },
  acmeChallengeResult: {
    required: { seq, mac, id: requestId, ok: boolean },
    optional: { error: text(MAX_TEXT_CHARS) },
    across: (message) => ((message.ok === true) === (message.error === undefined) ? undefined : 'error comes with ok: false, and only then'),
  },
  error: {
    required: { message: text(MAX_TEXT_CHARS) },
    optional: { seq, mac },
    across: (message) => ((message.seq === undefined) === (message.mac === undefined) ? undefined : 'seq and mac come together or not at all'),
  },
};
