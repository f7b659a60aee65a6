import type { Socket } from 'node:net';
import type { Logger } from '../common/logger.js';
import { formatAddress } from '../common/address.js';
import type { ObservedAddress } from '../protocol/messages.js';
import { PUNCH_TIMEOUT_MS, simultaneousOpen } from '../tunnel/tcp-punch.js';
import { dialSideConnection, type SideConnectionOptions } from './side-connection.js';

/** Punches under way at once; more are ignored (each holds two sockets). */
const MAX_PUNCHES = 16;

export interface PunchResponderOptions extends Omit<SideConnectionOptions, 'punch'> {
  /** The whitelist: a client it would refuse is not even dialled. */
  allows: (ip: string) => boolean;
  /** A punched connection from `client`: it enters the pipeline like any other. */
  onPunched: (socket: Socket, client: string) => void;
  logger: Logger;
}

/**
 * The agent's half of a TCP hole punch: a side connection to the rendezvous from a fresh port (whose NAT
 * mapping the rendezvous tells the client), then simultaneous open from that same port to the client's
 * mapping. The side connection stays open meanwhile, so the mapping does too.
 */
export function createPunchResponder(options: PunchResponderOptions): (id: string, peer: ObservedAddress) => void {
  let underWay = 0;
  return (id, peer) => {
    const log = options.logger;
    if (!options.allows(peer.ip)) return log.info({ client: formatAddress(peer) }, 'punch not answered: the client is not in the whitelist');
    if (underWay >= MAX_PUNCHES) return log.warn({ client: formatAddress(peer) }, `punch not answered: ${underWay} under way`);
    underWay++;
    void punch(id, peer, options).finally(() => underWay--);
  };
}

async function punch(id: string, peer: ObservedAddress, options: PunchResponderOptions): Promise<void> {
  const log = options.logger;
  let side;
  try {
    side = await dialSideConnection({ ...options, punch: id, shareable: true });
  } catch (error) {
    return log.warn({ client: formatAddress(peer), err: (error as Error).message }, 'punch failed: no side connection to the rendezvous');
  }
  const started = Date.now();
  const punched = await simultaneousOpen({ localPort: side.socket.localPort!, peer, timeoutMs: PUNCH_TIMEOUT_MS });
  side.socket.destroy();
  if (!punched.ok) return log.info({ client: formatAddress(peer), err: punched.error }, 'punch failed');
  log.info({ client: formatAddress(peer), ms: Date.now() - started }, 'punched a direct connection to a homeport connect client');
  options.onPunched(punched.value, peer.ip);
}
