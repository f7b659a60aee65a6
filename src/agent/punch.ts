import { createSocket } from 'node:dgram';
import { connect, createServer, isIP, type AddressInfo, type Server, type Socket } from 'node:net';
import { resolveHost } from '../common/resolve.js';
import { err, ok, type Result } from '../common/result.js';
import type { ListenAddress } from '../common/address.js';
import type { ServerAddress } from '../config/agent-types.js';

const WILDCARDS = new Set(['0.0.0.0', '::']);

/**
 * The address this machine would use to reach `ip`, as the routing table says. Connecting a UDP socket
 * sends nothing; it only makes the kernel pick the source address.
 */
export function localAddressToward(ip: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = createSocket(isIP(ip) === 6 ? 'udp6' : 'udp4');
    socket.on('error', (error) => { socket.close(); reject(error); });
    socket.connect(9, ip, () => {
      const { address } = socket.address();
      socket.close();
      resolve(address);
    });
  });
}

export interface PunchedPortOptions {
  listen: ListenAddress;
  server: ServerAddress;
  /** Every connection accepted on the punched port. */
  onConnection: (socket: Socket) => void;
  /** Errors of the listener after it is up (e.g. EMFILE on accept): reported, never fatal. */
  onListenerError: (error: Error) => void;
  connectTimeoutMs: number;
}

/**
 * Holds the punched port P: an outbound TCP connection to the rendezvous from P, which makes the NAT
 * create (and keep) a mapping, and a listener on the same P, which a full-cone NAT then forwards to.
 *
 * Order matters on Linux with Node: connect from P first, then listen (libuv sets SO_REUSEADDR; listening
 * first makes the connect fail with EADDRINUSE). So every (re)connect closes the listener, connects, and
 * listens again; connections already accepted stay up through it.
 */
export class PunchedPort {
  private listener: Server | undefined;
  /** P; when the config asked for port 0, the first port the system picked, kept from then on. */
  private heldPort: number;

  constructor(private readonly options: PunchedPortOptions) {
    this.heldPort = options.listen.port;
  }

  /**
   * Connects a fresh control socket from P and re-opens the listener. The listener comes back even when
   * the rendezvous cannot be reached (an error value), so LAN clients are served while the agent retries;
   * only a listener that cannot be re-opened throws.
   */
  async open(): Promise<Result<Socket>> {
    await this.closeListener();
    let socket: Socket | undefined;
    let failure = '';
    try {
      const serverIp = await resolveHost(this.options.server);
      socket = await this.connectFromPort(serverIp, await this.bindAddress(serverIp));
      this.heldPort = socket.localPort ?? this.heldPort;
    } catch (error) {
      failure = (error as Error).message;
    }
    await this.listenAgain(socket);
    return socket ? ok(socket) : err(failure);
  }

  /** Listens on P again; a failure to do so also ends the control connection just made. */
  private async listenAgain(socket: Socket | undefined): Promise<void> {
    try {
      this.listener = await this.listen();
      this.heldPort = (this.listener.address() as AddressInfo).port;
    } catch (error) {
      socket?.resetAndDestroy();
      throw error;
    }
  }

  /** The port held: P, or the port picked when P was 0. */
  get port(): number {
    return this.heldPort;
  }

  async close(): Promise<void> {
    await this.closeListener();
  }

  /**
   * The outbound socket is bound to the LAN address when the listener is on the wildcard: BSD and macOS
   * refuse a wildcard bind beside a specific one, and it pins the route the NAT mapping was made on.
   */
  private async bindAddress(serverIp: string): Promise<string> {
    const { host } = this.options.listen;
    return WILDCARDS.has(host) ? localAddressToward(serverIp) : host;
  }

  private connectFromPort(serverIp: string, localAddress: string): Promise<Socket> {
    const { server, connectTimeoutMs } = this.options;
    const localPort = this.port;
    return new Promise((resolve, reject) => {
      const socket = connect({ host: serverIp, port: server.port, localAddress, localPort, noDelay: true });
      const fail = (error: Error): void => {
        clearTimeout(timer);
        socket.destroy();
        reject(error);
      };
      const timer = setTimeout(() => fail(new Error(`connect to ${serverIp}:${server.port} timed out`)), connectTimeoutMs);
      socket.once('error', fail);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.off('error', fail);
        resolve(socket);
      });
    });
  }

  private listen(): Promise<Server> {
    const { listen, onConnection } = this.options;
    return new Promise((resolve, reject) => {
      const server = createServer({ noDelay: true }, onConnection);
      server.once('error', reject);
      server.listen({ host: listen.host, port: this.port }, () => {
        server.off('error', reject);
        server.on('error', this.options.onListenerError);
        resolve(server);
      });
    });
  }

  private closeListener(): Promise<void> {
    const listener = this.listener;
    this.listener = undefined;
    // close() only stops accepting: connections already accepted on P carry on
    return listener ? new Promise((resolve) => listener.close(() => resolve())) : Promise.resolve();
  }
}
