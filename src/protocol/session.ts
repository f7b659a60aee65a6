import { createHmac, timingSafeEqual } from 'node:crypto';
import { err, ok, type Result } from '../common/result.js';
import {
  type AcmeChallengeMessage,
  type AcmeChallengeResultMessage,
  type AdminMessage,
  type AdminResultMessage,
  type ErrorMessage,
  type Message,
  type MessageType,
  type OpenWorkMessage,
  type PingMessage,
  type PongMessage,
  type ProbeMessage,
  type PunchMessage,
  type WelcomeMessage,
} from './messages.js';

/**
 * The cryptography of the control protocol, pure apart from drawing random nonces. All MACs are
 * HMAC-SHA256 as lowercase hex; the shared secret itself never leaves the process.
 *
 * Handshake MACs use the agent's secret directly. After `welcome`, both sides derive `sessionKey` and
 * wrap every frame with a `SealedChannelState`: a per-direction counter (seq) plus a MAC over the
 * direction and the canonical JSON of the message, so frames cannot be forged, altered, replayed,
 * dropped, reordered or reflected back to their sender.
 */

/** A shared secret as configured: text (UTF-8) or raw bytes. */
export type Secret = string | Buffer;
export type Role = 'agent' | 'server';

/** What the agent registers in `auth`; covered by `auth.mac` so nobody on the path can change it. */
export interface AuthClaims {
  fingerprint: string;
  listenPort: number;
  publicHost?: string;
}

/** What the server tells in `welcome`; covered by `welcome.mac` so nobody on the path can change it. */
export type WelcomeClaims = Pick<WelcomeMessage, 'observed' | 'heartbeatMs' | 'stunPort'>;

/** The message kinds that are sealed after `welcome`, each with the `seq` and `mac` the seal adds. */
export type SealedMessage =
  | PingMessage
  | PongMessage
  | ProbeMessage
  | AdminMessage
  | AdminResultMessage
  | OpenWorkMessage
  | PunchMessage
  | AcmeChallengeMessage
  | AcmeChallengeResultMessage
  | (ErrorMessage & { seq: number; mac: string });
/** A sealed message before sealing: what `SealedChannelState.seal` takes. */
export type UnsealedMessage = SealedMessage extends infer M ? (M extends SealedMessage ? Omit<M, 'seq' | 'mac'> : never) : never;

/** Which sealed types each role sends; anything else arriving sealed is refused. */
const SEALED_TYPES_SENT_BY: Record<Role, ReadonlySet<MessageType>> = {
  agent: new Set(['ping', 'adminResult', 'acmeChallenge', 'error']),
  server: new Set(['pong', 'probe', 'admin', 'openWork', 'punch', 'acmeChallengeResult', 'error']),
};
const DIRECTION_OF: Record<Role, string> = { agent: 'a2s', server: 's2a' };

/** The agent's proof of the secret, bound to both nonces and to what it registers. */
export function authMac(secret: Secret, agent: string, clientNonce: string, serverNonce: string, claims: AuthClaims): string {
  const lines = ['homeport/1 auth', agent, clientNonce, serverNonce, claims.fingerprint, String(claims.listenPort), claims.publicHost ?? ''];
  return hmacHex(secret, lines.join('\n'));
}

/** The server's proof of the secret, bound to both nonces, the observed address, the heartbeat and the STUN port. */
export function welcomeMac(secret: Secret, agent: string, serverNonce: string, clientNonce: string, welcome: WelcomeClaims): string {
  const { observed, heartbeatMs, stunPort } = welcome;
  const lines = ['homeport/1 welcome', agent, serverNonce, clientNonce, observed.ip, String(observed.port), String(heartbeatMs), stunPort === undefined ? '' : String(stunPort)];
  return hmacHex(secret, lines.join('\n'));
}

/**
 * The agent's proof of the secret on a side connection (work or punch), bound to both nonces and, for a
 * punch, to the punch id, so a captured handshake answers no other.
 */
export function workMac(secret: Secret, agent: string, clientNonce: string, serverNonce: string, punch: string | undefined): string {
  return hmacHex(secret, ['homeport/1 work', agent, clientNonce, serverNonce, punch ?? ''].join('\n'));
}

/** The key that seals the PROXY header on one work connection: only the rendezvous that knows the secret can write it. */
export function workKey(secret: Secret, clientNonce: string, serverNonce: string): Buffer {
  return hmac(secret, `homeport/1 work-key\n${clientNonce}\n${serverNonce}`);
}

/** The 32-byte key that seals every frame after `welcome`. */
export function sessionKey(secret: Secret, clientNonce: string, serverNonce: string): Buffer {
  return hmac(secret, `homeport/1 session\n${clientNonce}\n${serverNonce}`);
}

/** Compares two MACs in constant time (their length is public, so a length mismatch returns at once). */
export function macEquals(a: string, b: string): boolean {
  const left = Buffer.from(a, 'utf8');
  const right = Buffer.from(b, 'utf8');
  return left.length === right.length && timingSafeEqual(left, right);
}

/** JSON with object keys sorted at every level, so a MAC does not depend on key order. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((item) => canonicalJson(item ?? null)).join(',')}]`;
  if (typeof value !== 'object' || value === null) return JSON.stringify(value);
  return canonicalObject(value as Record<string, unknown>);
}

/**
 * canonicalJson of an object, leaving out the member `omit` (a sealed message's MAC covers everything but
 * the MAC). Every ping and pong goes through here twice: plain loops, because filter/sort/map/join make
 * garbage on every MAC (sort alone allocates a work area per call).
 */
function canonicalObject(record: Record<string, unknown>, omit?: string): string {
  const keys = sortedKeys(record, omit);
  let json = '{';
  for (let index = 0; index < keys.length; index++) {
    const key = keys[index]!;
    json += `${index === 0 ? '' : ','}${JSON.stringify(key)}:${canonicalJson(record[key])}`;
  }
  return `${json}}`;
}

/** The keys with a defined value, but `omit`, in the order Array.prototype.sort gives them (UTF-16 code units). */
function sortedKeys(record: Record<string, unknown>, omit: string | undefined): string[] {
  const keys: string[] = [];
  for (const key of Object.keys(record)) {
    if (key === omit || record[key] === undefined) continue;
    // insertion sort: a message has a handful of keys
    let at = keys.length;
    keys.push(key);
    for (; at > 0 && keys[at - 1]! > key; at--) keys[at] = keys[at - 1]!;
    keys[at] = key;
  }
  return keys;
}

/**
 * One side's sealing state for one connection. Create it right after `welcome` with the same
 * `sessionKey` on both sides. Any error from `open` means the connection must be closed: the counters
 * are then out of step for good.
 */
export class SealedChannelState {
  private nextSendSeq = 1;
  private nextReceiveSeq = 1;
  private readonly peer: Role;

  constructor(
    private readonly key: Buffer,
    readonly role: Role,
  ) {
    this.peer = role === 'agent' ? 'server' : 'agent';
  }

  /** Adds the next outgoing seq and the MAC. */
  seal<M extends UnsealedMessage>(message: M): M & { seq: number; mac: string } {
    const sealed = { ...message, seq: this.nextSendSeq } as M & { seq: number; mac: string };
    this.nextSendSeq += 1;
    sealed.mac = this.macOf(this.role, sealed); // computed before `mac` exists, so it covers the rest
    return sealed;
  }

  /** Accepts only the strictly next sealed frame from the peer, with a valid MAC. */
  open(message: Message): Result<SealedMessage> {
    if (!SEALED_TYPES_SENT_BY[this.peer].has(message.type)) {
      return err(`"${message.type}" is not a sealed message the ${this.peer} sends`);
    }
    const sealed = message as SealedMessage;
    const { mac, seq } = sealed;
    if (mac === undefined || seq === undefined) return err(`"${message.type}" after welcome must be sealed (seq and mac)`);
    if (!macEquals(mac, this.macOf(this.peer, sealed))) return err(`"${message.type}" seq ${seq} has a bad MAC`);
    if (seq !== this.nextReceiveSeq) {
      const what = seq < this.nextReceiveSeq ? 'is replayed or reordered' : 'skips ahead (a frame is missing)';
      return err(`"${message.type}" seq ${seq} ${what}; expected seq ${this.nextReceiveSeq}`);
    }
    this.nextReceiveSeq += 1;
    return ok(sealed);
  }

  /** The MAC over everything in `message` but its own `mac` member. */
  private macOf(sender: Role, message: object): string {
    return hmacHex(this.key, `${DIRECTION_OF[sender]}\n${canonicalObject(message as Record<string, unknown>, 'mac')}`);
  }
}

function hmac(key: Secret, text: string): Buffer {
  return createHmac('sha256', key).update(text, 'utf8').digest();
}

function hmacHex(key: Secret, text: string): string {
  return createHmac('sha256', key).update(text, 'utf8').digest('hex');
}
