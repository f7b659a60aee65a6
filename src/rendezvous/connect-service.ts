import type { Socket } from 'node:net';
import type { Logger } from '../common/logger.js';
import { TokenBuckets } from '../common/token-buckets.js';
import { formatAddress } from '../common/address.js';
import { FramedConnection } from '../protocol/channel.js';
import type { ConnectMessage, ObservedAddress, RouteMessage } from '../protocol/messages.js';
import { randomNonce } from '../common/nonce.js';
import type { AddressAllowList } from './addresses.js';
import { choosePath, type RelayRoute } from './path.js';
import type { AgentRecord } from './registry.js';

/** How long a client waits for the agent's side of a punch. */
export const PUNCH_ANSWER_MS = 5_000;
/** How long both ends of a punch keep their rendezvous connections (and so their NAT mappings) open. */
export const PUNCH_HOLD_MS = 20_000;

export interface ConnectServiceOptions {
  lookup(name: string): Readonly<AgentRecord> | undefined;
  relayOf(name: string): RelayRoute;
  /** Sends the agent a sealed `punch`; false when it is not connected. */
  sendPunch(agent: string, id: string, peer: ObservedAddress): boolean;
  /** `redirectAllow`: the same clients may ask as may be redirected. */
  allow: AddressAllowList;
  logger: Logger;
}

interface PendingPunch {
  agent: string;
  resolve: (peer: ObservedAddress | undefined) => void;
  /** The agent's side connection, once it arrived: closed with the client's. */
  agentSocket?: Socket;
}

/**
 * Answers `homeport connect` clients on the control port: which paths lead to an agent (`route`), and, when
 * asked, coordinates a TCP hole punch: the client's mapped address goes to the agent, the agent's (seen on
 * its punch side connection) back to the client, and both sockets stay open while the two ends dial each
 * other, so that both NAT mappings live.
 */
export class ConnectService {
  private readonly punches = new Map<string, PendingPunch>();
  /** Requests per client address: each punch costs the agent a connection. */
  private readonly budget = new TokenBuckets({ capacity: 20, refillPerSecond: 2 });
  private readonly log: Logger;

  constructor(private readonly options: ConnectServiceOptions) {
    this.log = options.logger.child({ component: 'connect' });
  }

  /** A client's `connect` request on a socket the control server let go of. */
  handle(request: ConnectMessage, socket: Socket, observed: ObservedAddress): void {
    socket.on('error', () => undefined);
    if (!this.budget.take(observed.ip)) return void socket.destroy();
    const connection = new FramedConnection(socket);
    const record = this.options.allow.allows(observed.ip) ? this.options.lookup(request.agent) : undefined;
    // an unknown agent and a client outside redirectAllow get the same answer, as on /go/
    if (!record) return this.answer(connection, { type: 'route', observed, reason: `no agent named "${request.agent}" here` });
    const relay = this.options.relayOf(record.name);
    const { path, reason } = choosePath(record, relay);
    // direct only when checked: choosePath also says direct while a relay-less agent is being checked
    const route: RouteMessage = {
      type: 'route',
      observed,
      ...(path === 'direct' && record.reachability.state === 'reachable' ? { direct: record.publicAddress! } : {}),
      ...(relay.port !== undefined && record.online ? { relayPort: relay.port } : {}),
      ...(path === 'direct' ? {} : { reason }),
    };
    if (!request.punch || !record.online) return this.answer(connection, route);
    void this.punch(record.name, observed).then((peer) => {
      const answered = peer ? { ...route, peer } : { ...route, reason: `${record.name} did not answer the punch within ${PUNCH_ANSWER_MS / 1000} s` };
      this.answer(connection, answered, PUNCH_HOLD_MS);
    });
  }

  /** The agent's punch side connection: its observed address is what the client must dial. */
  agentArrived(agent: string, id: string, socket: Socket, observed: ObservedAddress): void {
    const pending = this.punches.get(id);
    if (!pending || pending.agent !== agent || pending.agentSocket) return void socket.destroy();
    socket.on('error', () => undefined);
    pending.agentSocket = socket;
    pending.resolve(observed);
    setTimeout(() => socket.destroy(), PUNCH_HOLD_MS).unref();
  }

  private punch(agent: string, client: ObservedAddress): Promise<ObservedAddress | undefined> {
    const id = randomNonce();
    return new Promise((resolve) => {
      const timer = setTimeout(() => settle(undefined), PUNCH_ANSWER_MS);
      const settle = (peer: ObservedAddress | undefined): void => {
        clearTimeout(timer);
        this.punches.delete(id);
        resolve(peer);
      };
      this.punches.set(id, { agent, resolve: settle });
      if (!this.options.sendPunch(agent, id, client)) settle(undefined);
      else this.log.info({ agent, client: formatAddress(client) }, `punch requested for ${agent}`);
    });
  }

  /** Sends the route and closes, at once or (for a punch) after holdMs, or when the client closes first. */
  private answer(connection: FramedConnection, route: RouteMessage, holdMs = 0): void {
    connection.send(route);
    if (holdMs === 0) return connection.close();
    const timer = setTimeout(() => connection.close(), holdMs);
    timer.unref();
    connection.on('close', () => clearTimeout(timer));
  }
}
