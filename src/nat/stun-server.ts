import { createSocket, type RemoteInfo, type Socket as DatagramSocket } from 'node:dgram';
import { createServer, isIP, type Server, type Socket } from 'node:net';
import type { ListenAddress } from '../common/address.js';
import { normalizeClientAddress } from '../common/cidr.js';
import { bindDatagram, listenOn } from '../common/listen.js';
import type { Logger } from '../common/logger.js';
import { TokenBuckets } from '../common/token-buckets.js';
import { answerBinding, PRIMARY_ROLE, roleAddress, roleName, SOCKET_ROLES, type BindingContext, type SocketRole, type StunTransport } from './binding-answer.js';
import { StunFrameSplitter } from './stun-frames.js';
import { decodeStun, type StunAddress } from './stun-message.js';

/** Guards against scanners, floods and clients that hold connections open. */
export interface StunLimits {
  /** A TCP connection with no byte either way for this long is closed. */
  idleMs: number;
  /** Longest message read over TCP; a longer one closes the connection. */
  maxFrameBytes: number;
  /** TCP connections open at once over all listeners; one more is refused. */
  maxConnections: number;
  /** UDP requests one source IP may send in a burst... */
  udpBurst: number;
  /** ...and per second after it; the rest are dropped unanswered (a response is larger than its request). */
  udpPerSecond: number;
}

export const DEFAULT_STUN_LIMITS: StunLimits = {
  idleMs: 30_000,
  maxFrameBytes: 4096,
  maxConnections: 1024,
  udpBurst: 40,
  // RFC 5780 clients start at most 10 transactions a second; retransmissions come on top
  udpPerSecond: 20,
};

/** Tries for one free port shared by UDP and TCP when the config asks for port 0. */
const SAME_PORT_ATTEMPTS = 5;

export interface StunServerOptions {
  /** A1:P1. */
  listen: ListenAddress;
  /** A2:P2: with it the server also binds A1:P2 and A2:P1 and answers CHANGE-REQUEST (RFC 5780). */
  alternate?: ListenAddress;
  /** SOFTWARE in every response: "homeport <version>". */
  software: string;
  logger: Logger;
  limits?: Partial<StunLimits>;
}

/** The ports bound: each serves UDP and TCP. */
export interface StunPorts {
  port: number;
  alternatePort?: number;
}

/**
 * The rendezvous's STUN server: Binding over UDP and TCP on every socket of its roles (each answers what
 * arrives on it, as coturn does), the answers from binding-answer.ts. Nothing a peer sends makes it
 * throw: a bad datagram is dropped, a bad TCP stream closes that connection.
 */
export class StunServer {
  private readonly limits: StunLimits;
  private readonly log: Logger;
  private readonly datagrams = new Map<string, DatagramSocket>();
  private readonly listeners: Server[] = [];
  private readonly connections = new Set<Socket>();
  private readonly udpBudget: TokenBuckets;
  /** At most one line a minute per reason, however hard clients knock. */
  private readonly notices = new TokenBuckets({ capacity: 1, refillPerSecond: 1 / 60 });
  private primary: StunAddress;
  private alternate: StunAddress | undefined;

  constructor(private readonly options: StunServerOptions) {
    this.limits = { ...DEFAULT_STUN_LIMITS, ...options.limits };
    this.log = options.logger.child({ component: 'stun' });
    this.udpBudget = new TokenBuckets({ capacity: this.limits.udpBurst, refillPerSecond: this.limits.udpPerSecond });
    this.primary = { ip: options.listen.host, port: options.listen.port };
    this.alternate = options.alternate && { ip: options.alternate.host, port: options.alternate.port };
  }

  /** Binds every socket; on failure the caller closes what was bound. */
  async start(): Promise<StunPorts> {
    if (!this.alternate) {
      this.primary.port = await this.bindPrimaryOnly();
      return { port: this.primary.port };
    }
    for (const role of SOCKET_ROLES) await this.bind(role);
    return { port: this.primary.port, alternatePort: this.alternate.port };
  }

  async close(): Promise<void> {
    for (const socket of this.connections) socket.destroy();
    const closing = [
      ...this.listeners.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))),
      ...[...this.datagrams.values()].map((socket) => new Promise<void>((resolve) => socket.close(() => resolve()))),
    ];
    this.listeners.length = 0;
    this.datagrams.clear();
    await Promise.all(closing);
  }

  /** A1:P1 alone; with port 0 UDP picks the port and TCP takes the same, so one number serves both. */
  private async bindPrimaryOnly(): Promise<number> {
    for (let attempt = 1; ; attempt++) {
      const port = await this.bindDatagram(PRIMARY_ROLE, this.primary);
      try {
        await this.listenTcp(PRIMARY_ROLE, { ...this.primary, port });
        return port;
      } catch (error) {
        if (this.primary.port !== 0 || attempt === SAME_PORT_ATTEMPTS) throw error;
        await new Promise<void>((resolve) => this.datagrams.get(roleName(PRIMARY_ROLE))!.close(() => resolve()));
        this.datagrams.delete(roleName(PRIMARY_ROLE));
      }
    }
  }

  private async bind(role: SocketRole): Promise<void> {
    const address = roleAddress(role, this.primary, this.alternate);
    await this.bindDatagram(role, address);
    await this.listenTcp(role, address);
  }

  private async bindDatagram(role: SocketRole, address: StunAddress): Promise<number> {
    const socket = createSocket({ type: isIP(address.ip) === 6 ? 'udp6' : 'udp4' });
    const port = await bindDatagram(socket, { host: address.ip, port: address.port }, configKey(role));
    socket.on('error', (error) => this.log.error({ socket: roleName(role), err: error.message }, 'STUN UDP socket error'));
    socket.on('message', (packet, from) => this.receiveDatagram(role, packet, from));
    this.datagrams.set(roleName(role), socket);
    return port;
  }

  private async listenTcp(role: SocketRole, address: StunAddress): Promise<void> {
    const server = createServer({ noDelay: true }, (socket) => this.accept(role, socket));
    await listenOn(server, { host: address.ip, port: address.port }, configKey(role));
    server.on('error', (error) => this.log.error({ socket: roleName(role), err: error.message }, 'STUN TCP listener error'));
    this.listeners.push(server);
  }

  private receiveDatagram(role: SocketRole, packet: Buffer, from: RemoteInfo): void {
    const source = { ip: normalizeClientAddress(from.address), port: from.port };
    if (!this.udpBudget.take(source.ip)) return this.notice(`udp:${source.ip}`, { ip: source.ip }, `dropping STUN requests from ${source.ip} for a while: more than ${this.limits.udpPerSecond} a second`);
    const answer = answerBinding(decodeStun(packet), this.context('udp', source, role, this.primary));
    if (!answer) return;
    const socket = this.datagrams.get(roleName(answer.from));
    socket?.send(answer.packet, from.port, from.address, (error) => {
      if (error) this.log.debug({ to: source, err: error.message }, 'STUN response not sent');
    });
  }

  private accept(role: SocketRole, socket: Socket): void {
    socket.on('error', () => undefined); // a reset peer only ends its own connection
    if (this.connections.size >= this.limits.maxConnections) {
      this.notice('tcp:full', {}, `refusing STUN TCP connections: ${this.connections.size} open, the most allowed`);
      return void socket.destroy();
    }
    this.connections.add(socket);
    socket.once('close', () => this.connections.delete(socket));
    socket.setTimeout(this.limits.idleMs, () => socket.destroy());
    const source = { ip: normalizeClientAddress(socket.remoteAddress ?? ''), port: socket.remotePort ?? 0 };
    // a wildcard listener learns its own address per connection: RESPONSE-ORIGIN can name it
    const primary = this.alternate ? this.primary : { ip: normalizeClientAddress(socket.localAddress ?? this.primary.ip), port: this.primary.port };
    const splitter = new StunFrameSplitter(this.limits.maxFrameBytes);
    socket.on('data', (chunk: Buffer) => {
      const frames = splitter.push(chunk);
      if (!frames.ok) {
        this.log.debug({ from: source, reason: frames.error }, 'STUN TCP connection closed');
        return void socket.destroy();
      }
      for (const frame of frames.value) {
        const answer = answerBinding(decodeStun(frame), this.context('tcp', source, role, primary));
        if (answer) socket.write(answer.packet);
      }
      // a client that sends without reading waits for its answers: no unbounded queue in our memory
      if (socket.writableNeedDrain) {
        socket.pause();
        socket.once('drain', () => socket.resume());
      }
    });
  }

  private context(transport: StunTransport, source: StunAddress, received: SocketRole, primary: StunAddress): BindingContext {
    return { transport, source, primary, ...(this.alternate ? { alternate: this.alternate } : {}), received, software: this.options.software };
  }

  private notice(key: string, fields: object, message: string): void {
    if (this.notices.take(key)) this.log.warn(fields, message);
  }
}

/** The config key a socket comes from, for bind errors. */
function configKey(role: SocketRole): string {
  return role.alternateIp || role.alternatePort ? 'stun.alternate' : 'stun.listen';
}
