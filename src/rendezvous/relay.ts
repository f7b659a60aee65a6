import { createServer, type Server, type Socket } from 'node:net';
import { listenOn } from '../common/listen.js';
import type { Logger } from '../common/logger.js';
import { TokenBuckets } from '../common/token-buckets.js';
import { MAX_RELAY_POOL, type RelaySettings, type RendezvousAgentEntry } from '../config/rendezvous-types.js';
import { formatAddress } from '../common/address.js';
import { encodeProxyHeader } from '../protocol/proxy-v2.js';
import { normalizeIp } from './addresses.js';
import { ByteRateLimiter } from '../common/rate-limiter.js';
import { reset, splice } from '../common/splice.js';
import { WorkPool, type WorkConnection } from './work-pool.js';

/** How long a user waits for a work connection when the pool is empty. */
export const DEFAULT_WORK_WAIT_MS = 5_000;

export interface RelayHubOptions {
  agents: readonly RendezvousAgentEntry[];
  /** Asks an agent for more work connections over its control connection; false when it is offline. */
  requestWork: (agent: string, count: number) => boolean;
  logger: Logger;
  workWaitMs?: number;
}

/**
 * The relay side of the rendezvous (frp-style): one port per agent that has a relay. A user's connection
 * is joined to one of the agent's work connections after a sealed PROXY v2 header with the user's real
 * address; the bytes are TLS, which ends at the agent, so the relay never holds plaintext.
 */
export class RelayHub {
  private readonly relays = new Map<string, AgentRelay>();

  constructor(options: RelayHubOptions) {
    const log = options.logger.child({ component: 'relay' });
    for (const agent of options.agents) {
      if (!agent.relay || agent.mode === 'direct') continue; // mode = "direct" turns the relay off: its port stays closed
      this.relays.set(agent.name, new AgentRelay(agent.name, agent.relay, options, log));
    }
  }

  /** Binds every relay port; returns agent → port bound. */
  async listen(): Promise<Map<string, number>> {
    const ports = new Map<string, number>();
    for (const [agent, relay] of this.relays) ports.set(agent, await relay.listen());
    return ports;
  }

  /** The relay port an agent's users reach, if it has a relay. */
  portOf(agent: string): number | undefined {
    return this.relays.get(agent)?.port;
  }

  /** A work connection that proved its agent's secret. */
  addWork(agent: string, connection: WorkConnection): void {
    const relay = this.relays.get(agent);
    if (relay) relay.pool.add(connection);
    else connection.socket.destroy(); // no relay for this agent: nothing to wait for
  }

  /** The agent authenticated its control connection: fill its pool. */
  online(agent: string): void {
    this.relays.get(agent)?.online();
  }

  /** The agent's control connection is gone: close its idle and relayed connections now. */
  offline(agent: string): void {
    this.relays.get(agent)?.offline();
  }

  async close(): Promise<void> {
    await Promise.all([...this.relays.values()].map((relay) => relay.close()));
  }
}

/** One agent's relay port, pool, limits and open connections. */
class AgentRelay {
  readonly pool: WorkPool;
  port: number | undefined;
  private readonly server: Server;
  private readonly active = new Set<Socket>();
  private readonly limiter: ByteRateLimiter | undefined;
  /** At most a few refusal lines per agent a minute, however hard a client knocks. */
  private readonly refusalNotices = new TokenBuckets({ capacity: 5, refillPerSecond: 1 / 12 });
  private isOnline = false;

  constructor(private readonly agent: string, private readonly settings: RelaySettings, options: RelayHubOptions, private readonly log: Logger) {
    this.pool = new WorkPool({
      size: settings.pool,
      maxIdle: MAX_RELAY_POOL, // relayPool is at most this: the agent cannot make the rendezvous hold more
      request: (count) => options.requestWork(agent, count),
      waitMs: options.workWaitMs ?? DEFAULT_WORK_WAIT_MS,
    });
    this.limiter = settings.bytesPerSecond > 0 ? new ByteRateLimiter(settings.bytesPerSecond) : undefined;
    // paused until joined: the ClientHello waits in the kernel, not in our memory; half-open: a client
    // that sends FIN after its request still gets the whole answer
    this.server = createServer({ pauseOnConnect: true, allowHalfOpen: true, noDelay: true }, (socket) => void this.accept(socket));
    this.server.on('error', (error) => this.log.error({ agent, err: error.message }, 'relay listener error'));
  }

  async listen(): Promise<number> {
    this.port = await listenOn(this.server, this.settings.listen, `[[agent]] "${this.agent}" relay`);
    return this.port;
  }

  online(): void {
    this.isOnline = true;
    this.pool.fill();
  }

  offline(): void {
    this.isOnline = false;
    this.pool.clear();
    for (const socket of this.active) reset(socket);
  }

  close(): Promise<void> {
    this.offline();
    return new Promise((resolve) => (this.server.listening ? this.server.close(() => resolve()) : resolve()));
  }

  private async accept(user: Socket): Promise<void> {
    user.on('error', () => undefined); // reported by splice once joined; before that, only a close
    const client = { ip: normalizeIp(user.remoteAddress ?? '') ?? 'unknown', port: user.remotePort ?? 0 };
    if (!this.isOnline) return this.refuse(user, client, 'the agent is offline');
    if (this.active.size >= this.settings.maxConnections) {
      return this.refuse(user, client, `${this.active.size} relayed connections open, relayMaxConnections is ${this.settings.maxConnections}`);
    }
    this.active.add(user);
    user.once('close', () => this.active.delete(user));
    const work = await this.pool.take();
    if (!work) return this.refuse(user, client, 'no work connection from the agent in time');
    if (user.destroyed) return this.pool.add(work); // the user gave up while waiting; the connection is still good
    const destination = { ip: normalizeIp(user.localAddress ?? '') ?? '0.0.0.0', port: user.localPort ?? 0 };
    work.socket.write(encodeProxyHeader({ source: client, destination }, work.key));
    const started = Date.now();
    const result = await splice(user, work.socket, { idleMs: this.settings.idleMs, ...(this.limiter ? { limiter: this.limiter } : {}) });
    this.log.debug({ agent: this.agent, client: formatAddress(client), ...result, ms: Date.now() - started }, 'relayed connection closed');
  }

  private refuse(user: Socket, client: { ip: string; port: number }, why: string): void {
    if (this.refusalNotices.take(why)) this.log.warn({ agent: this.agent, client: formatAddress(client), reason: why }, `relay refused a connection to ${this.agent}: ${why}`);
    reset(user);
  }
}
