import { connect, type Socket } from 'node:net';
import { resolveHost } from '../common/resolve.js';
import type { ServerAddress } from '../config/agent-types.js';
import { FramedConnection } from '../protocol/channel.js';
import { PROTOCOL_VERSION, type RouteMessage } from '../protocol/messages.js';
import { shareableBindAddress } from './tcp-punch.js';

export interface RouteAnswer {
  route: RouteMessage;
  /**
   * The connection the route came on, still open for a punch (its NAT mapping is the one the agent was
   * told to dial); already closed by the rendezvous otherwise.
   */
  socket: Socket;
}

/** Asks the rendezvous's control port which paths lead to `agent`; with `punch`, it also sets up a hole punch. */
export async function requestRoute(server: ServerAddress, agent: string, punch: boolean, timeoutMs: number): Promise<RouteAnswer> {
  const ip = await resolveHost(server);
  const socket = connect({ host: ip, port: server.port, noDelay: true, ...(punch ? { localAddress: shareableBindAddress(ip) } : {}) });
  const connection = new FramedConnection(socket);
  return new Promise((resolve, reject) => {
    const fail = (why: string): void => {
      clearTimeout(timer);
      connection.reset();
      reject(new Error(why));
    };
    const timer = setTimeout(() => fail(`no answer from the rendezvous ${server.host}:${server.port} within ${timeoutMs} ms`), timeoutMs);
    connection.on('close', (cause) => fail(`the rendezvous ${server.host}:${server.port} closed the connection${cause ? ` (${cause})` : ''}`));
    connection.on('message', (message) => {
      if (message.type !== 'route') return fail(`unexpected "${message.type}" from the rendezvous`);
      clearTimeout(timer);
      connection.removeAllListeners('close');
      socket.on('error', () => undefined);
      resolve({ route: message, socket });
    });
    connection.send({ type: 'connect', version: PROTOCOL_VERSION, agent, punch });
  });
}
