import { connect, type Socket } from 'node:net';
import type { ServerAddress } from '../config/agent-types.js';
import { FramedConnection } from '../protocol/channel.js';
import { PROTOCOL_VERSION } from '../protocol/messages.js';
import { workKey, workMac } from '../protocol/session.js';
import { randomNonce } from '../common/nonce.js';
import { shareableBindAddress } from '../tunnel/tcp-punch.js';
import { resolveHost } from '../common/resolve.js';

export interface SideConnectionOptions {
  server: ServerAddress;
  agent: string;
  secret: string;
  /** The id of the rendezvous's `punch`, for a punch side connection. */
  punch?: string;
  /** Bind so that a punching socket can share the port (see shareableBindAddress). */
  shareable?: boolean;
  timeoutMs: number;
}

export interface SideConnection {
  socket: Socket;
  /** What the rendezvous seals this connection's PROXY header with. */
  key: Buffer;
}

/**
 * Dials a side connection to the control port (a relay work connection, or the agent's end of a punch):
 * `workHello` → `challenge` → `workAuth`. The rendezvous answers nothing more until it uses the connection,
 * so this resolves once `workAuth` is sent; a refusal shows as an error frame or a close after that.
 */
export async function dialSideConnection(options: SideConnectionOptions): Promise<SideConnection> {
  const host = await resolveHost(options.server);
  const socket = connect({ host, port: options.server.port, noDelay: true, ...(options.shareable ? { localAddress: shareableBindAddress(host) } : {}) });
  const connection = new FramedConnection(socket);
  const clientNonce = randomNonce();
  return new Promise((resolve, reject) => {
    const fail = (why: string): void => {
      clearTimeout(timer);
      connection.reset();
      reject(new Error(why));
    };
    const timer = setTimeout(() => fail(`no challenge from ${host}:${options.server.port} within ${options.timeoutMs} ms`), options.timeoutMs);
    connection.on('close', (cause) => fail(`the rendezvous closed the side connection${cause ? ` (${cause})` : ''}`));
    connection.on('message', (message) => {
      if (message.type !== 'challenge') return fail(message.type === 'error' ? `the rendezvous refused: ${message.message}` : `unexpected ${message.type}`);
      const mac = workMac(options.secret, options.agent, clientNonce, message.nonce, options.punch);
      connection.send({ type: 'workAuth', mac });
      const released = connection.detach();
      clearTimeout(timer);
      if (!released.ok) return fail(released.error);
      socket.on('error', () => undefined); // the new owner reports what matters
      resolve({ socket, key: workKey(options.secret, clientNonce, message.nonce) });
    });
    connection.send({ type: 'workHello', version: PROTOCOL_VERSION, agent: options.agent, nonce: clientNonce, ...(options.punch ? { punch: options.punch } : {}) });
  });
}
