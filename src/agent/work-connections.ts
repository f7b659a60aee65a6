import type { Socket } from 'node:net';
import type { Logger } from '../common/logger.js';
import { normalizeClientAddress } from '../common/cidr.js';
import { decodeProxyHeader, MAX_PROXY_HEADER_BYTES } from '../protocol/proxy-v2.js';
import { dialSideConnection, type SideConnectionOptions } from './side-connection.js';

/** Work connections open or opening at once; the rendezvous cannot make the agent hold more. */
export const MAX_WORK_CONNECTIONS = 32;
const RETRIES = 3;

export interface WorkConnectionsOptions extends Omit<SideConnectionOptions, 'punch'> {
  /** A relayed user's connection, after its PROXY header: TLS bytes from `client` follow. */
  onRelayed: (socket: Socket, client: string) => void;
  logger: Logger;
}

/**
 * The agent's work connections for the rendezvous's relay: dialled when the rendezvous asks (`openWork`),
 * each waiting idle until it carries one user. The first bytes on it must be a PROXY v2 header sealed with
 * this connection's key; that header, and nothing else, gives the user's real address to the gate.
 */
export class WorkConnections {
  private readonly open = new Set<Socket>();
  private opening = 0;
  private closed = false;

  constructor(private readonly options: WorkConnectionsOptions) {}

  /** Opens `count` more, within MAX_WORK_CONNECTIONS. */
  add(count: number): void {
    const room = MAX_WORK_CONNECTIONS - this.open.size - this.opening;
    for (let index = 0; index < Math.min(count, room); index++) void this.openOne(1);
  }

  /** Idle ones only: relayed connections belong to the pipeline now. */
  close(): void {
    this.closed = true;
    for (const socket of this.open) socket.destroy();
    this.open.clear();
  }

  private async openOne(attempt: number): Promise<void> {
    this.opening++;
    try {
      const side = await dialSideConnection(this.options);
      if (this.closed) side.socket.destroy();
      else this.awaitHeader(side.socket, side.key);
    } catch (error) {
      this.options.logger.warn({ err: (error as Error).message, attempt }, 'cannot open a relay work connection');
      if (attempt < RETRIES && !this.closed) setTimeout(() => void this.openOne(attempt + 1), 1000 * attempt).unref();
    } finally {
      this.opening--;
    }
  }

  /** Waits, idle, for the header; then hands the socket, with whatever followed the header, to the pipeline. */
  private awaitHeader(socket: Socket, key: Buffer): void {
    this.open.add(socket);
    socket.setKeepAlive(true, 30_000);
    let received = Buffer.alloc(0);
    const done = (): void => {
      socket.off('data', onData);
      this.open.delete(socket);
    };
    const onData = (chunk: Buffer): void => {
      received = Buffer.concat([received, chunk]);
      const decoded = decodeProxyHeader(received.subarray(0, MAX_PROXY_HEADER_BYTES), key);
      if (decoded.state === 'incomplete') return;
      done();
      if (decoded.state === 'invalid') {
        this.options.logger.warn({ reason: decoded.error }, 'work connection closed: its PROXY header is not the rendezvous\'s');
        return void socket.destroy();
      }
      socket.pause();
      socket.unshift(received.subarray(decoded.length));
      this.options.onRelayed(socket, normalizeClientAddress(decoded.header.source.ip));
    };
    socket.on('data', onData);
    socket.once('close', done);
    socket.resume(); // the handshake left it paused, and a 'data' listener does not resume a paused stream
  }
}
