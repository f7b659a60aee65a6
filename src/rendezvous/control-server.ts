import { EventEmitter } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from '../common/logger.js';
import type { ListenAddress } from '../common/address.js';
import type { RendezvousAgentEntry } from '../config/rendezvous-types.js';
import { formatAddress } from '../common/address.js';
import { normalizeIp } from './addresses.js';
import { ControlSession, type SessionHost, type SideConnection } from './control-session.js';
import { listenOn } from '../common/listen.js';
import { TokenBuckets } from '../common/token-buckets.js';
import type { AcmeChallengeOrder, AdminOrder, ObservedAddress, PathName } from '../protocol/messages.js';
import { err, type Result } from '../common/result.js';
import type { ProbeOutcome, Registry, RegistrationOutcome } from './registry.js';
import { DEFAULT_ADMIN_TIMEOUT_MS, type AdminReply } from './remote-admin.js';

/** Guards against scanners and broken clients, per source IP. */
export interface ControlLimits {
  /** Time to complete hello → auth. */
  handshakeTimeoutMs: number;
  /** Failed handshakes (bad MAC, unknown agent, malformed frames, timeouts) an IP may have in a burst... */
  failureBurst: number;
  /** ...and how many it earns back per second. An IP with none left is refused at once, without work. */
  failureRefillPerSecond: number;
  /** Unfinished handshakes one IP may hold open at once. */
  pendingPerIp: number;
}

export const DEFAULT_CONTROL_LIMITS: ControlLimits = {
  handshakeTimeoutMs: 10_000,
  failureBurst: 10,
  failureRefillPerSecond: 1 / 6,
  pendingPerIp: 256,
};

export interface ControlServerOptions {
  agents: readonly RendezvousAgentEntry[];
  registry: Registry;
  heartbeatMs: number;
  logger: Logger;
  limits?: Partial<ControlLimits>;
  /** How long a forwarded admin request waits for the agent (default DEFAULT_ADMIN_TIMEOUT_MS). */
  adminTimeoutMs?: number;
  /** The STUN port told in `welcome`, once bound (it is bound before the control port); none when STUN is off. */
  stunPort?: () => number | undefined;
  /** Carries out an agent's HTTP-01 challenge request; without it every request is refused. */
  acmeChallenge?: (agent: string, order: AcmeChallengeOrder) => Result<void>;
}

export interface ControlServerEvents {
  /** An agent authenticated; the registry is updated already. `serverIp`: the address it connected to. */
  registered: [agent: string, outcome: RegistrationOutcome, serverIp: string | undefined];
  /** An agent's connection ended (and no newer one replaced it). */
  offline: [agent: string];
  /** A work or punch connection proved its agent's secret, or a `homeport connect` client asked: the listener owns it now. */
  side: [side: SideConnection];
}

/**
 * The control port agents connect to. Accepts, rate-limits and hands each connection to a ControlSession;
 * keeps the one current session per agent (a new authenticated connection replaces the old one) and
 * mirrors sessions into the registry. Nothing a peer sends can make it throw.
 */
export class ControlServer extends EventEmitter<ControlServerEvents> {
  private readonly server: Server;
  private readonly secrets: ReadonlyMap<string, string>;
  private readonly current = new Map<string, ControlSession>();
  private readonly all = new Set<ControlSession>();
  private readonly pendingByIp = new Map<string, number>();
  private readonly limits: ControlLimits;
  private readonly failures: TokenBuckets;
  /** At most one "refusing" line per IP per minute. */
  private readonly refusalNotices = new TokenBuckets({ capacity: 1, refillPerSecond: 1 / 60 });
  private readonly log: Logger;
  private readonly host: SessionHost;
  /** Expires sessions past their handshake or liveness deadline. */
  private readonly sweep: NodeJS.Timeout;
  private stopping = false;

  constructor(private readonly options: ControlServerOptions) {
    super();
    this.secrets = new Map(options.agents.map((agent) => [agent.name, agent.secret]));
    this.limits = { ...DEFAULT_CONTROL_LIMITS, ...options.limits };
    this.failures = new TokenBuckets({ capacity: this.limits.failureBurst, refillPerSecond: this.limits.failureRefillPerSecond });
    this.log = options.logger.child({ component: 'control' });
    this.host = {
      secretOf: (agent) => this.secrets.get(agent),
      heartbeatMs: options.heartbeatMs,
      get stunPort() {
        return options.stunPort?.();
      },
      handshakeTimeoutMs: this.limits.handshakeTimeoutMs,
      adminTimeoutMs: options.adminTimeoutMs ?? DEFAULT_ADMIN_TIMEOUT_MS,
      authenticated: (session) => this.authenticated(session),
      heartbeat: (session) => options.registry.heartbeat(session.agent!),
      acmeChallenge: (session, order) => options.acmeChallenge?.(session.agent!, order) ?? err('this rendezvous does not answer HTTP-01 challenges'),
      handshakeFailed: (session, why) => this.handshakeFailed(session, why),
      ended: (session, failure) => this.ended(session, failure),
      detached: (session, side) => {
        this.all.delete(session);
        this.settlePending(session.observed.ip);
        if (this.stopping) return void side.socket.destroy();
        this.emit('side', side);
      },
    };
    // a tenth of the shortest deadline, at most a second: a ghost lingers at most that much longer
    const sweepMs = Math.min(1000, Math.max(10, Math.min(this.limits.handshakeTimeoutMs, ControlSession.deadAfterMs(options.heartbeatMs)) / 10));
    this.sweep = setInterval(() => this.expireOverdue(), sweepMs);
    this.sweep.unref();
    this.server = createServer({ noDelay: true }, (socket) => this.accept(socket));
    this.server.on('error', (error) => this.log.error({ err: error.message }, 'control listener error'));
  }

  listen(address: ListenAddress): Promise<number> {
    return listenOn(this.server, address, 'rendezvous.control');
  }

  /** Sends a reachability result to the agent's current session; false when it has none. */
  sendProbe(agent: string, outcome: ProbeOutcome, path: PathName): boolean {
    return this.current.get(agent)?.sendProbe(outcome, path) ?? false;
  }

  /** Asks the agent for `count` more work connections; false when it has no session. */
  sendOpenWork(agent: string, count: number): boolean {
    return this.current.get(agent)?.sendOpenWork(count) ?? false;
  }

  /** Asks the agent to punch towards a `homeport connect` client; false when it has no session. */
  sendPunch(agent: string, id: string, peer: ObservedAddress): boolean {
    return this.current.get(agent)?.sendPunch(id, peer) ?? false;
  }

  /** Forwards an admin order to the agent's current session and waits for the answer; 503 when it has none. */
  requestAdmin(agent: string, order: Omit<AdminOrder, 'id'>): Promise<AdminReply> {
    const session = this.current.get(agent);
    return session ? session.requestAdmin(order) : Promise.resolve({ ok: false, status: 503, error: `${agent} is not connected to the rendezvous` });
  }

  /** Agents with an authenticated connection. */
  get online(): number {
    return this.current.size;
  }

  /** Stops accepting and closes every session (with FIN: the agents reconnect to the next instance). */
  close(): Promise<void> {
    this.stopping = true;
    clearInterval(this.sweep);
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      for (const session of this.all) session.close('the rendezvous is stopping');
    });
  }

  private accept(socket: Socket): void {
    socket.on('error', () => undefined); // reported through the session's 'close'; must never be unhandled
    const ip = normalizeIp(socket.remoteAddress ?? '');
    if (ip === undefined) return void socket.destroy();
    const pending = this.pendingByIp.get(ip) ?? 0;
    if (!this.failures.has(ip) || pending >= this.limits.pendingPerIp) {
      if (this.refusalNotices.take(ip)) {
        const why = pending >= this.limits.pendingPerIp ? `${pending} unfinished handshakes` : 'too many failed handshakes';
        this.log.warn({ ip }, `refusing control connections from ${ip} for a while: ${why}`);
      }
      return void socket.destroy();
    }
    this.pendingByIp.set(ip, pending + 1);
    this.all.add(new ControlSession(socket, ip, this.host));
  }

  private expireOverdue(): void {
    const now = Date.now();
    for (const session of this.all) session.expireIfDue(now);
  }

  private settlePending(ip: string): void {
    const left = (this.pendingByIp.get(ip) ?? 1) - 1;
    if (left > 0) this.pendingByIp.set(ip, left);
    else this.pendingByIp.delete(ip);
  }

  private authenticated(session: ControlSession): void {
    const agent = session.agent!;
    const { claims } = session.registration!;
    this.settlePending(session.observed.ip);
    const previous = this.current.get(agent);
    this.current.set(agent, session);
    if (previous) {
      this.log.info({ agent, old: formatAddress(previous.observed), new: formatAddress(session.observed) },
        `${agent} reconnected; its previous connection from ${formatAddress(previous.observed)} is replaced and closed (a ghost if that NAT mapping is gone)`);
      previous.close('replaced by a newer connection of the same agent');
    }
    const outcome = this.options.registry.register(agent, {
      observed: session.observed,
      fingerprint: claims.fingerprint,
      ...(claims.publicHost !== undefined ? { publicHost: claims.publicHost } : {}),
    });
    this.log.info({ agent, observed: formatAddress(session.observed), listenPort: claims.listenPort, publicHost: claims.publicHost }, 'agent registered');
    if (outcome.previousAddress) {
      const change = `${formatAddress(outcome.previousAddress)} → ${formatAddress(session.observed)}`;
      this.log.info({ agent, old: formatAddress(outcome.previousAddress), new: formatAddress(session.observed), addressChanges: outcome.record.addressChanges }, `public address of ${agent} changed: ${change}`);
    }
    this.emit('registered', agent, outcome, session.serverIp);
  }

  private handshakeFailed(session: ControlSession, why: string): void {
    if (this.stopping) return;
    const { ip, port } = session.observed;
    // Logged while the IP still has failures to spend: a scanner costs a bounded number of lines.
    if (this.failures.take(ip)) this.log.warn({ ip, port, agent: session.agent, reason: why }, 'control connection refused');
  }

  private ended(session: ControlSession, failure: string | undefined): void {
    this.all.delete(session);
    if (!session.registration) return this.settlePending(session.observed.ip);
    const agent = session.registration.agent;
    if (this.current.get(agent) !== session) return;
    this.current.delete(agent);
    this.options.registry.markOffline(agent);
    // one line per agent at shutdown would flood the log of a busy rendezvous
    this.log[this.stopping ? 'debug' : failure ? 'warn' : 'info']({ agent, observed: formatAddress(session.observed), reason: failure ?? 'closed by the agent' }, 'agent offline');
    this.emit('offline', agent);
  }
}
