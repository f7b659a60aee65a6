import { createServer as createHttpServer, type IncomingMessage, type ServerResponse, type Server } from 'node:http';
import { TLSSocket, type SecureContext } from 'node:tls';
import type { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import type { Logger } from '../common/logger.js';
import type { TimeoutsConfig } from '../config/agent-types.js';
import { setClientAddress } from './client-address.js';
import type { ConnectionLimits } from './connection-limits.js';
import type { Gate } from './gate.js';
import { TLS_SERVER_OPTIONS } from '../tls/server-options.js';

export interface HttpHandlers {
  request(req: IncomingMessage, res: ServerResponse): void;
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
}

export interface PipelineOptions {
  gate: Pick<Gate, 'admit'>;
  /** Checked right after the gate, before TLS: open connections per address and in all. */
  limits: Pick<ConnectionLimits, 'open' | 'close'>;
  secureContext: SecureContext;
  handlers: HttpHandlers;
  timeouts: TimeoutsConfig;
  logger: Logger;
}

/** A TLS handshake that takes longer than this is a stalled or hostile client. */
const HANDSHAKE_TIMEOUT_MS = 10_000;

/**
 * The one chain every path ends in: gate → TLS → HTTP router. A path (the punched port, a relay work
 * connection, a tunnel) hands over a socket and the true client address; nothing else differs.
 */
export class Pipeline {
  private secureContext: SecureContext;
  private readonly http: Server;
  private readonly handshaking = new Set<TLSSocket>();
  /** Every admitted connection and its client address, so a revoked address can be cut off. */
  private readonly admitted = new Map<Duplex, string>();

  constructor(private readonly options: PipelineOptions) {
    this.secureContext = options.secureContext;
    const { timeouts } = options;
    this.http = createHttpServer({
      requestTimeout: 0, // a multi-hour WebDAV upload or a paused film must not be cut by a whole-request limit
      headersTimeout: timeouts.headersMs,
      keepAliveTimeout: timeouts.keepAliveMs,
      noDelay: true,
    });
    this.http.timeout = timeouts.idleMs; // silence in both directions for this long closes the socket
    this.http.on('request', options.handlers.request);
    this.http.on('upgrade', options.handlers.upgrade);
    this.http.on('clientError', onClientError);
  }

  /** Swaps the certificate for new connections; established ones keep theirs. */
  setSecureContext(context: SecureContext): void {
    this.secureContext = context;
  }

  /**
   * Entry point of every path. Denied clients, and clients over a connection limit, are dropped before a
   * single TLS byte is sent.
   */
  accept(socket: Duplex, clientAddress: string): void {
    const { gate, limits } = this.options;
    // a socket that closed during a path's setup never emits 'close' again: counted in, its place would stay taken
    if (!gate.admit(clientAddress) || socket.closed || !limits.open(clientAddress)) {
      drop(socket);
      return;
    }
    this.admitted.set(socket, clientAddress);
    socket.once('close', () => {
      this.admitted.delete(socket);
      limits.close(clientAddress);
    });
    (socket as Socket).setNoDelay?.(true);
    const tlsSocket = new TLSSocket(socket, {
      isServer: true,
      secureContext: this.secureContext,
      ALPNProtocols: TLS_SERVER_OPTIONS.ALPNProtocols,
    });
    setClientAddress(tlsSocket, clientAddress);
    this.handshaking.add(tlsSocket);
    const timer = setTimeout(() => tlsSocket.destroy(), HANDSHAKE_TIMEOUT_MS);
    const settle = (): void => {
      clearTimeout(timer);
      this.handshaking.delete(tlsSocket);
    };
    tlsSocket.on('error', (error) => {
      settle();
      this.options.logger.debug({ client: clientAddress, err: error.message }, 'tls error');
      tlsSocket.destroy();
    });
    tlsSocket.once('close', settle);
    tlsSocket.once('secure', () => {
      settle();
      this.http.emit('connection', tlsSocket);
    });
  }

  /**
   * Closes open connections whose address the whitelist no longer allows: removing a lost phone's entry
   * must cut it off now, not when its player disconnects. Returns how many were closed.
   */
  dropRevoked(allows: (address: string) => boolean): number {
    let dropped = 0;
    for (const [socket, address] of this.admitted) {
      if (allows(address)) continue;
      socket.destroy();
      dropped++;
    }
    return dropped;
  }

  /**
   * Closes every connection, idle or not. The HTTP server never listens (connections are handed to it), so
   * its closeAllConnections() knows none of them: the admitted sockets are the list.
   */
  close(): void {
    for (const socket of this.handshaking) socket.destroy();
    this.handshaking.clear();
    for (const socket of this.admitted.keys()) socket.destroy();
  }
}

/** RST rather than FIN where possible: the scanner sees a closed door, not a server that hung up. */
function drop(socket: Duplex): void {
  const tcp = socket as Socket;
  if (typeof tcp.resetAndDestroy === 'function' && tcp.readyState !== 'closed') tcp.resetAndDestroy();
  else socket.destroy();
}

function onClientError(error: NodeJS.ErrnoException, socket: Duplex): void {
  // Malformed request or header timeout: answer 400/408 when the socket can still take it, never crash.
  if (socket.writable && error.code !== 'ECONNRESET') {
    const status = error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : '400 Bad Request';
    socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  } else {
    socket.destroy();
  }
}
