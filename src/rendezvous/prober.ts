import { randomBytes, X509Certificate, type KeyObject } from 'node:crypto';
import { connect as connectTcp, isIP, type Socket } from 'node:net';
import { connect as connectTls, createSecureContext, type SecureContext } from 'node:tls';
import type { Logger } from '../common/logger.js';
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
 * The reachability check the scheduler runs, at a third of the CPU of a full TLS handshake (a rendezvous
 * with 10,000 agents runs 333 checks a second): the server half of a TLS 1.2 handshake, read as far as it
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

export interface ProbeSchedulerOptions {
  /** Longest time between two checks of a watched agent. */
  intervalMs: number;
  timeoutMs: number;
  /**
   * After a failed check the next one comes sooner: after retryMs, then twice that, and so on up to
   * intervalMs (default 1 s). A check that raced the agent's listener, or a brief outage, is then corrected
   * in a second instead of a whole interval.
   */
  retryMs?: number;
  /** Checks running at once at most (default 64); more wait their turn, so a burst costs time, not memory. */
  maxConcurrent?: number;
  /** Called with each result that is still current (not overtaken by a newer target for that agent). */
  onResult(name: string, target: ProbeTarget, result: ProbeResult): void;
  logger: Logger;
  /** The check (default checkReachability); tests inject a fake. */
  probe?: ProbeFunction;
  /**
   * Runs when the check fails with "tls error", and its result counts instead (default probeReachability
   * with the default check, none with an injected one): a TLS stack the light check cannot talk to is no
   * reason to call an agent unreachable.
   */
  fallback?: ProbeFunction;
}

/** How much earlier than intervalMs a periodic check may come. */
const CHECK_JITTER = 0.1;
/** The sweep that starts due checks runs at most this far apart. */
const MAX_TICK_MS = 1000;

interface Watch {
  name: string;
  target: ProbeTarget;
  /** Failed checks in a row. */
  failures: number;
}

/**
 * Runs reachability checks per online agent: at once when told (registration, address change), then
 * every intervalMs counted from the start of the previous check, so an agent is never unchecked longer
 * than the interval plus one timeout; sooner after a failure (see retryMs). A check overtaken by a new
 * target (or a stop) is dropped when it ends.
 *
 * Due checks wait in slots of one tick and one sweep timer starts them: with 10,000 agents a timer per
 * agent, re-armed with a jittered delay, kept thousands of Node timer lists alive.
 */
export class ProbeScheduler {
  private readonly watches = new Map<string, Watch>();
  private readonly probe: ProbeFunction;
  private readonly fallback: ProbeFunction | undefined;
  private closed = false;
  private running = 0;
  /** Checks waiting for a free slot, first come first served. */
  private readonly waiting: (() => void)[] = [];
  /** Fine enough for the shortest delay a check waits (a quarter of it), coarse enough to batch. */
  private readonly tickMs: number;
  /** Watches by the tick they are due in; one stopped or replaced meanwhile is skipped when it comes up. */
  private readonly due = new Map<number, Watch[]>();
  /** The first tick the sweep has not started yet. */
  private nextTick = 0;
  private sweeper: NodeJS.Timeout | undefined;

  constructor(private readonly options: ProbeSchedulerOptions) {
    this.probe = options.probe ?? checkReachability;
    this.fallback = options.fallback ?? (options.probe ? undefined : probeReachability);
    this.tickMs = Math.max(1, Math.min(MAX_TICK_MS, Math.min(options.intervalMs, options.retryMs ?? 1000) / 4));
  }

  /** Checks `target` now and then periodically, replacing whatever was watched for `name`. */
  checkNow(name: string, target: ProbeTarget): void {
    if (this.closed) return;
    const watch: Watch = { name, target, failures: 0 };
    this.watches.set(name, watch);
    void this.run(watch);
  }

  /** Stops checking `name` (it went offline); a check in flight is ignored when it ends. */
  stop(name: string): void {
    this.watches.delete(name);
  }

  get watching(): number {
    return this.watches.size;
  }

  close(): void {
    this.closed = true;
    this.watches.clear();
    this.due.clear();
    clearInterval(this.sweeper);
  }

  private isCurrent(watch: Watch): boolean {
    return this.watches.get(watch.name) === watch;
  }

  private async run(watch: Watch): Promise<void> {
    await this.acquireSlot();
    const started = Date.now();
    try {
      if (!this.isCurrent(watch)) return;
      const result = await this.checkOnce(watch);
      watch.failures = result.reachable ? 0 : watch.failures + 1;
      if (this.isCurrent(watch)) this.options.onResult(watch.name, watch.target, result);
    } catch (error) {
      this.options.logger.error({ err: (error as Error).message, agent: watch.name }, 'reachability check failed unexpectedly');
    } finally {
      this.releaseSlot();
    }
    if (!this.isCurrent(watch)) return;
    const { intervalMs, retryMs = 1000 } = this.options;
    // up to a tenth early, at random: agents that registered together (a rendezvous restart) drift apart
    // instead of being checked in one burst every interval for good; and a tick early, as the sweep may
    // start it up to a tick late
    const period = watch.failures === 0 ? intervalMs * (1 - CHECK_JITTER * Math.random()) - this.tickMs : Math.min(intervalMs, retryMs * 2 ** (watch.failures - 1));
    this.schedule(watch, started + period);
  }

  private schedule(watch: Watch, dueAt: number): void {
    if (this.sweeper === undefined) {
      this.nextTick = Math.floor(Date.now() / this.tickMs);
      this.sweeper = setInterval(() => this.sweep(), this.tickMs).unref();
    }
    const tick = Math.max(this.nextTick, Math.ceil(dueAt / this.tickMs));
    const slot = this.due.get(tick);
    if (slot) slot.push(watch);
    else this.due.set(tick, [watch]);
  }

  /** Starts the checks of every tick that has begun. */
  private sweep(): void {
    const now = Math.floor(Date.now() / this.tickMs);
    for (; this.nextTick <= now; this.nextTick++) {
      const slot = this.due.get(this.nextTick);
      if (!slot) continue;
      this.due.delete(this.nextTick);
      for (const watch of slot) if (this.isCurrent(watch)) void this.run(watch);
    }
    if (this.due.size === 0) {
      // nothing left to wait for: checks in flight arm it again when they end
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }

  private async checkOnce(watch: Watch): Promise<ProbeResult> {
    const { timeoutMs } = this.options;
    const result = await this.probe(watch.target, timeoutMs);
    return result.reason === 'tls error' && this.fallback ? this.fallback(watch.target, timeoutMs) : result;
  }

  private acquireSlot(): Promise<void> {
    if (this.running < (this.options.maxConcurrent ?? 64)) {
      this.running++;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  /** Hands the slot to the next waiting check, or frees it. */
  private releaseSlot(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.running--;
  }
}
