import { randomBytes, X509Certificate, type KeyObject } from 'node:crypto';
import { connect as connectTcp, isIP, type Socket } from 'node:net';
import { connect as connectTls, createSecureContext, type SecureContext } from 'node:tls';
import { formatAddress } from '../common/address.js';
import type { PublicAddress } from '../common/address.js';
import { clientHello, fingerprintOf, plainHex, readServerFlight, sha256HexOf, signatureVerifies } from './tls12-handshake.js';

/** Why a reachability check failed, as shown to users on the 503 page and sent to the agent. */
export type ProbeFailure = 'timeout' | 'refused' | 'reset' | 'no route' | 'connect error' | 'wrong certificate' | 'tls error';

export interface ProbeTarget {
  address: PublicAddress;
  /** The SHA-256 fingerprint the agent registered (colon hex). */
  fingerprint: string;
  /** Sent as SNI when it is a DNS name, so the agent picks the certificate it would serve users. */
  publicHost?: string;
  /**
   * Our source address: the one the agent connected to. Its whitelist admits exactly that address, and on
   * a host with several addresses the kernel might otherwise pick another.
   */
  sourceIp?: string;
}

export interface ProbeResult {
  reachable: boolean;
  reason?: ProbeFailure;
  /** The underlying error for logs (error code or message). */
  detail?: string;
  checkedAt: Date;
}

export type ProbeFunction = (target: ProbeTarget, timeoutMs: number) => Promise<ProbeResult>;

type Finish = (reason?: ProbeFailure, detail?: string) => void;
/** Ends the check's connection once the verdict is in. */
type Closer = (reachable: boolean) => void;

/**
 * What both checks share: a TCP connection to the agent's public address from `sourceIp`, one deadline,
 * one result. Once TCP is up, `handshake` runs the TLS part, calls `finish` with the verdict and returns
 * how to close. Refused and timed-out checks never get that far, so they cost no TLS state.
 */
function check(target: ProbeTarget, timeoutMs: number, handshake: (tcp: Socket, finish: Finish) => Closer): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const { address, sourceIp } = target;
    let settled = false;
    let close: Closer | undefined;
    const tcp = connectTcp({ host: address.ip, port: address.port, noDelay: true, ...(sourceIp !== undefined ? { localAddress: sourceIp } : {}) });
    const finish: Finish = (reason, detail) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (close) close(reason === undefined);
      else tcp.destroy();
      resolve({ reachable: reason === undefined, ...(reason ? { reason } : {}), ...(detail ? { detail } : {}), checkedAt: new Date() });
    };
    const timer = setTimeout(() => finish('timeout', `no ${close ? 'TLS handshake' : 'TCP connection'} within ${timeoutMs} ms`), timeoutMs);
    tcp.on('error', (error: NodeJS.ErrnoException) => finish(classifyError(error, close !== undefined), error.code ?? error.message));
    tcp.once('close', () => finish('reset', 'closed before the TLS handshake completed'));
    tcp.once('connect', () => {
      close = handshake(tcp, finish);
    });
  });
}

/** One client context for every full check: building one per connection costs more than the check itself. */
let probeContext: SecureContext | undefined;

/**
 * The full check: connects back to an agent's public address and completes a TLS handshake with Node's
 * TLS stack. The scheduler runs the lighter checkReachability and falls back to this one only when that
 * fails on the TLS protocol itself (an agent whose TLS stack will not speak TLS 1.2, say). The certificate is not verified
 * against any CA (an agent's is self-signed); trust comes from the SHA-256 of the leaf matching the one
 * the agent registered over the authenticated control channel, which proves the check reached this agent
 * and not another subscriber behind the same CGNAT address.
 */
export const probeReachability: ProbeFunction = (target, timeoutMs) => check(target, timeoutMs, (tcp, finish) => {
  const { address, fingerprint, publicHost } = target;
  const secured = connectTls({
    socket: tcp,
    secureContext: probeContext ??= createSecureContext({ minVersion: 'TLSv1.2' }),
    rejectUnauthorized: false,
    ALPNProtocols: ['http/1.1'],
    ...(publicHost !== undefined && isIP(publicHost) === 0 ? { servername: publicHost } : {}),
  });
  secured.on('error', (error: NodeJS.ErrnoException) => finish(classifyError(error, true), error.code ?? error.message));
  secured.once('secureConnect', () => {
    const seen = secured.getPeerX509Certificate()?.fingerprint256;
    if (seen !== undefined && seen.toUpperCase() === fingerprint.toUpperCase()) finish();
    else finish('wrong certificate', `${formatAddress(address)} served ${seen ?? 'no certificate'}`);
  });
  return (reachable) => {
    if (!reachable) return void secured.destroy();
    // a polite close_notify and FIN, so the agent does not log a reset for every check
    secured.end();
    setTimeout(() => secured.destroy(), 1000).unref();
  };
});

/** Public keys of the certificates checks have found, by fingerprint: parsing a certificate costs more than a check. */
const publicKeys = new Map<string, KeyObject>();
const MAX_PUBLIC_KEYS = 65_536;

function publicKeyOf(fingerprint: string, der: Buffer): KeyObject {
  let key = publicKeys.get(fingerprint);
  if (key === undefined) {
    if (publicKeys.size >= MAX_PUBLIC_KEYS) publicKeys.delete(publicKeys.keys().next().value!);
    key = new X509Certificate(der).publicKey;
    publicKeys.set(fingerprint, key);
  }
  return key;
}

/** What a target's checks need of its registered certificate, worked out at its first check. */
interface Registered {
  /**
   * The registered fingerprint as plain hex, compared with the leaf's digest. A string, not a Buffer: a
   * small Buffer is a slice of Node's shared 8 KB pool and would keep a whole pool slab alive per agent.
   */
  sha256Hex: string;
  /** The certificate's public key, once a check has seen the certificate. */
  publicKey?: KeyObject;
}

/** Per target (a registration), so a check neither parses nor formats a fingerprint. */
const registeredOf = new WeakMap<ProbeTarget, Registered>();

function registered(target: ProbeTarget): Registered {
  let known = registeredOf.get(target);
  if (known === undefined) {
    known = { sha256Hex: plainHex(target.fingerprint) };
    registeredOf.set(target, known);
  }
  return known;
}

/** Client randoms come from a pool drawn 256 at a time; a used-up pool is replaced, never refilled in place. */
let randomPool = Buffer.alloc(0);
let randomOffset = 0;

function freshRandom(): Buffer {
  if (randomOffset === randomPool.length) {
    randomPool = randomBytes(32 * 256);
    randomOffset = 0;
  }
  randomOffset += 32;
  return randomPool.subarray(randomOffset - 32, randomOffset);
}

/**
 * The reachability check the scheduler runs, far cheaper than a full TLS handshake (a rendezvous with
 * thousands of agents runs hundreds of checks a second): the server half of a TLS 1.2 handshake, read as far as it
 * proves who answers (tls12-handshake.ts). The certificate must be the registered one and its key must
 * sign our fresh random, which is the proof a full handshake gives about the server; no key agreement,
 * no TLS socket, no X509 object per check, and no OpenSSL state to fragment the heap when thousands of
 * agents register at once. Then the connection is reset, leaving no TIME_WAIT on either side; the agent
 * notes an aborted handshake at debug level.
 */
export const checkReachability: ProbeFunction = (target, timeoutMs) => check(target, timeoutMs, (tcp, finish) => {
  const { address, publicHost } = target;
  const clientRandom = freshRandom();
  let received: Buffer = Buffer.alloc(0);
  tcp.once('end', () => finish('reset', 'closed before the TLS handshake completed'));
  tcp.on('data', (chunk: Buffer) => {
    received = received.length === 0 ? chunk : Buffer.concat([received, chunk]);
    const flight = readServerFlight(received);
    if (!flight.ok) return finish('tls error', flight.error);
    if (flight.value === undefined) return;
    const { leaf } = flight.value;
    const known = registered(target);
    if (sha256HexOf(leaf) !== known.sha256Hex) return finish('wrong certificate', `${formatAddress(address)} served ${fingerprintOf(leaf)}`);
    known.publicKey ??= publicKeyOf(target.fingerprint.toUpperCase(), leaf);
    if (!signatureVerifies(flight.value, clientRandom, known.publicKey)) {
      return finish('wrong certificate', `${formatAddress(address)} showed the certificate but could not sign with its key`);
    }
    finish();
  });
  tcp.write(clientHello(clientRandom, publicHost));
  return () => {
    if (!tcp.destroyed) tcp.resetAndDestroy();
  };
});

function classifyError(error: NodeJS.ErrnoException, duringTls: boolean): ProbeFailure {
  switch (error.code) {
    case 'ECONNREFUSED': return 'refused';
    case 'ECONNRESET': case 'EPIPE': return 'reset';
    case 'ETIMEDOUT': return 'timeout';
    case 'EHOSTUNREACH': case 'ENETUNREACH': return 'no route';
    default: return duringTls ? 'tls error' : 'connect error';
  }
}
