import type { Socket } from 'node:net';
import type { ServerAddress } from '../config/agent-types.js';
import { FramedConnection } from '../protocol/channel.js';
import { PROTOCOL_VERSION } from '../protocol/messages.js';
import { workKey, workMac } from '../protocol/session.js';
import { randomNonce } from '../common/nonce.js';

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
  const connection = await FramedConnection.dial(options.server, { shareable: options.shareable === true });
  const fail = (why: string): Error => {
    connection.reset();
    return new Error(why);
  };
  const clientNonce = randomNonce();
  connection.send({ type: 'workHello', version: PROTOCOL_VERSION, agent: options.agent, nonce: clientNonce, ...(options.punch ? { punch: options.punch } : {}) });
  const answer = await connection.nextMessage(options.timeoutMs);
  const where = `${options.server.host}:${options.server.port}`;
  if (!answer.ok) throw fail(`no challenge from ${where}: ${answer.error}`);
  const challenge = answer.value;
  if (challenge.type !== 'challenge') throw fail(challenge.type === 'error' ? `the rendezvous refused: ${challenge.message}` : `unexpected ${challenge.type} from ${where}`);
  connection.send({ type: 'workAuth', mac: workMac(options.secret, options.agent, clientNonce, challenge.nonce, options.punch) });
  const released = connection.detach();
  if (!released.ok) throw fail(released.error);
  const socket = released.value as Socket;
  socket.on('error', () => undefined); // the new owner reports what matters
  return { socket, key: workKey(options.secret, clientNonce, challenge.nonce) };
}
