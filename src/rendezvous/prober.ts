import { connect as connectTcp, isIP } from 'node:net';
import { connect as connectTls, createSecureContext, type SecureContext, type TLSSocket } from 'node:tls';
import type { Logger } from '../common/logger.js';
import { formatAddress, type PublicAddress } from './addresses.js';

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

/** One client context for every check: building one per connection costs more than the check itself. */
let probeContext: SecureContext | undefined;

/**
 * Connects back to an agent's public address and completes a TLS handshake. The certificate is not
 * verified against any CA (an agent's is self-signed); trust comes from the SHA-256 of the leaf matching
 * the one the agent registered over the authenticated control channel, which proves the check reached
 * this agent and not another subscriber behind the same CGNAT address. TCP comes first and TLS only on
 * a connection that is up, so the common failures (refused, timeout) cost no TLS state.
 */
export const probeReachability: ProbeFunction = (target, timeoutMs) => new Promise((resolve) => {
  const { address, fingerprint, publicHost, sourceIp } = target;
  let settled = false;
  let secured: TLSSocket | undefined;
  const tcp = connectTcp({ host: address.ip, port: address.port, ...(sourceIp !== undefined ? { localAddress: sourceIp } : {}) });
  const finish = (reason?: ProbeFailure, detail?: string): void => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    const socket = secured ?? tcp;
    if (reason === undefined) {
      // a polite close_notify and FIN, so the agent does not log a reset for every check
      socket.end();
      setTimeout(() => socket.destroy(), 1000).unref();
    } else {
      socket.destroy();
    }
    resolve({ reachable: reason === undefined, ...(reason ? { reason } : {}), ...(detail ? { detail } : {}), checkedAt: new Date() });
  };
  const timer = setTimeout(() => finish('timeout', `no ${secured ? 'TLS handshake' : 'TCP connection'} within ${timeoutMs} ms`), timeoutMs);
  tcp.on('error', (error: NodeJS.ErrnoException) => finish(classifyError(error, secured !== undefined), error.code ?? error.message));
  tcp.once('close', () => finish('reset', 'closed before the TLS handshake completed'));
  tcp.once('connect', () => {
    secured = connectTls({
      socket: tcp,
      secureContext: probeContext ??= createSecureContext({ minVersion: 'TLSv1.2' }),
      rejectUnauthorized: false,
      ALPNProtocols: ['http/1.1'],
      ...(publicHost !== undefined && isIP(publicHost) === 0 ? { servername: publicHost } : {}),
    });
    secured.on('error', (error: NodeJS.ErrnoException) => finish(classifyError(error, true), error.code ?? error.message));
    secured.once('secureConnect', () => {
      const seen = secured!.getPeerX509Certificate()?.fingerprint256;
      if (seen !== undefined && seen.toUpperCase() === fingerprint.toUpperCase()) finish();
      else finish('wrong certificate', `${formatAddress(address)} served ${seen ?? 'no certificate'}`);
    });
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
