import { connect, type Socket, type TcpNetConnectOpts } from 'node:net';
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
