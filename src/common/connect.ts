import { connect, isIP, type Socket, type TcpNetConnectOpts } from 'node:net';
import { err, ok, type Result } from './result.js';

/**
 * A TCP connection within `timeoutMs`, or why not (the error code, or "timed out"); a failed socket is
 * destroyed. A connected socket keeps a no-op 'error' listener, so an error before its new owner listens
 * cannot crash the process; the owner sees it through its own listeners or 'close'.
 */
export function connectWithin(options: TcpNetConnectOpts, timeoutMs: number): Promise<Result<Socket>> {
  return new Promise((resolve) => {
    const socket = connect(options);
    const finish = (result: Result<Socket>): void => {
      clearTimeout(timer);
      socket.off('error', onError);
      socket.on('error', () => undefined);
      if (!result.ok) socket.destroy();
      resolve(result);
    };
    const onError = (error: NodeJS.ErrnoException): void => finish(err(error.code ?? error.message));
    const timer = setTimeout(() => finish(err('timed out')), timeoutMs);
    socket.once('error', onError);
    socket.once('connect', () => finish(ok(socket)));
  });
}

/**
 * The address to bind a socket that must share its port with another: an explicit bind sets SO_REUSEADDR,
 * and Linux lets two sockets share a port only when both have it, so the socket whose mapping the peer is
 * told (to the rendezvous) and the punching one are both bound to the wildcard of the peer's family.
 */
export function shareableBindAddress(ip: string): string {
  return isIP(ip) === 6 ? '::' : '0.0.0.0';
}
