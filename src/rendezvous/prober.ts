import { randomBytes, X509Certificate, type KeyObject } from 'node:crypto';
import { connect as connectTcp } from 'node:net';
import type { Logger } from '../common/logger.js';
import { formatAddress, type PublicAddress } from './addresses.js';
import { clientHello, fingerprintOf, readServerFlight, signatureVerifies } from './tls12-handshake.js';

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

/**
 * Connects back to an agent's public address and runs the server half of a TLS 1.2 handshake far enough
 * to prove who answers (tls12-handshake.ts): the certificate must be the one the agent registered over the
 * authenticated control channel, and its key must sign our fresh random. That proves the check reached
 * this agent and not another subscriber behind the same CGNAT address; no CA is involved (an agent's
 * certificate is self-signed). Then the connection is reset: nothing is left in TIME_WAIT on either side,
 * and the agent notes an aborted handshake at debug level. At 10,000 agents checked every 30 s, a full
 * TLS client handshake per check cost several times the rest of the rendezvous's work.
 */
export const probeReachability: ProbeFunction = (target, timeoutMs) => new Promise((resolve) => {
  const { address, fingerprint, publicHost, sourceIp } = target;
  const clientRandom = randomBytes(32);
  let settled = false;
  let connected = false;
  let received = Buffer.alloc(0);
  const tcp = connectTcp({ host: address.ip, port: address.port, noDelay: true, ...(sourceIp !== undefined ? { localAddress: sourceIp } : {}) });
  const finish = (reason?: ProbeFailure, detail?: string): void => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    // a socket still connecting cannot be reset; destroy() abandons the attempt
    if (connected && !tcp.destroyed) tcp.resetAndDestroy();
    else tcp.destroy();
    resolve({ reachable: reason === undefined, ...(reason ? { reason } : {}), ...(detail ? { detail } : {}), checkedAt: new Date() });
  };
  const timer = setTimeout(() => finish('timeout', `no ${connected ? 'TLS handshake' : 'TCP connection'} within ${timeoutMs} ms`), timeoutMs);
  tcp.on('error', (error: NodeJS.ErrnoException) => finish(classifyError(error, connected), error.code ?? error.message));
  tcp.once('close', () => finish('reset', 'closed before the TLS handshake completed'));
  tcp.once('end', () => finish('reset', 'closed before the TLS handshake completed'));
  tcp.once('connect', () => {
    connected = true;
    tcp.write(clientHello(clientRandom, publicHost));
  });
  tcp.on('data', (chunk: Buffer) => {
    received = received.length === 0 ? chunk : Buffer.concat([received, chunk]);
    const flight = readServerFlight(received);
    if (!flight.ok) return finish('tls error', flight.error);
    if (flight.value === undefined) return;
    const seen = fingerprintOf(flight.value.leaf);
    if (seen !== fingerprint.toUpperCase()) return finish('wrong certificate', `${formatAddress(address)} served ${seen}`);
    if (!signatureVerifies(flight.value, clientRandom, publicKeyOf(seen, flight.value.leaf))) {
      return finish('wrong certificate', `${formatAddress(address)} showed the certificate but could not sign with its key`);
    }
    finish();
  });
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
  /** The check itself; tests inject a fake. */
  probe?: ProbeFunction;
}

interface Watch {
  target: ProbeTarget;
  timer: NodeJS.Timeout | undefined;
  /** Failed checks in a row. */
  failures: number;
}

/**
 * Runs reachability checks per online agent: at once when told (registration, address change), then
 * every intervalMs counted from the start of the previous check, so an agent is never unchecked longer
 * than the interval plus one timeout; sooner after a failure (see retryMs). A check overtaken by a new
 * target (or a stop) is dropped when it ends.
 */
export class ProbeScheduler {
  private readonly watches = new Map<string, Watch>();
  private readonly probe: ProbeFunction;
  private closed = false;
  private running = 0;
  /** Checks waiting for a free slot, first come first served. */
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly options: ProbeSchedulerOptions) {
    this.probe = options.probe ?? probeReachability;
  }

  /** Checks `target` now and then periodically, replacing whatever was watched for `name`. */
  checkNow(name: string, target: ProbeTarget): void {
    if (this.closed) return;
    const previous = this.watches.get(name);
    clearTimeout(previous?.timer);
    const watch: Watch = { target, timer: undefined, failures: 0 };
    this.watches.set(name, watch);
    void this.run(name, watch);
  }

  /** Stops checking `name` (it went offline); a check in flight is ignored when it ends. */
  stop(name: string): void {
    const watch = this.watches.get(name);
    if (!watch) return;
    clearTimeout(watch.timer);
    this.watches.delete(name);
  }

  get watching(): number {
    return this.watches.size;
  }

  close(): void {
    this.closed = true;
    for (const name of [...this.watches.keys()]) this.stop(name);
  }

  private async run(name: string, watch: Watch): Promise<void> {
    await this.acquireSlot();
    const started = Date.now();
    try {
      if (this.watches.get(name) !== watch) return;
      const result = await this.probe(watch.target, this.options.timeoutMs);
      watch.failures = result.reachable ? 0 : watch.failures + 1;
      if (this.watches.get(name) === watch) this.options.onResult(name, watch.target, result);
    } catch (error) {
      this.options.logger.error({ err: (error as Error).message, agent: name }, 'reachability check failed unexpectedly');
    } finally {
      this.releaseSlot();
    }
    if (this.watches.get(name) !== watch) return;
    const { intervalMs, retryMs = 1000 } = this.options;
    const period = watch.failures === 0 ? intervalMs : Math.min(intervalMs, retryMs * 2 ** (watch.failures - 1));
    watch.timer = setTimeout(() => void this.run(name, watch), Math.max(0, period - (Date.now() - started)));
    watch.timer.unref();
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
