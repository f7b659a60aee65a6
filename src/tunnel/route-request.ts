import type { Socket } from 'node:net';
import type { ServerAddress } from '../config/agent-types.js';
import { FramedConnection } from '../protocol/channel.js';
import { PROTOCOL_VERSION, type RouteMessage } from '../protocol/messages.js';

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
  const connection = await FramedConnection.dial(server, { shareable: punch });
  connection.send({ type: 'connect', version: PROTOCOL_VERSION, agent, punch });
  const answer = await connection.nextMessage(timeoutMs);
  if (!answer.ok || answer.value.type !== 'route') {
    connection.reset();
    throw new Error(`the rendezvous ${server.host}:${server.port}: ${answer.ok ? `unexpected "${answer.value.type}"` : answer.error}`);
  }
  const socket = connection.socket as Socket;
  socket.on('error', () => undefined);
  return { route: answer.value, socket };
}
