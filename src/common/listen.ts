import type { Socket as DatagramSocket } from 'node:dgram';
import type { Server as HttpServer } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Server } from 'node:net';
import { formatHostPort, type ListenAddress } from './address.js';

/** Binds `server` to `address` and returns the port bound; the error names the config key and the fix. */
export function listenOn(server: Server, address: ListenAddress, key: string): Promise<number> {
  // ipv6Only stays false: "[::]" also takes IPv4 peers, which normalizeIp turns back into plain IPv4
  return bindExplained(server, address, key, (done) => server.listen({ host: address.host, port: address.port }, done), () => {
    const bound = server.address();
    return typeof bound === 'object' && bound !== null ? bound.port : address.port;
  });
}

/** Binds a UDP socket to `address` and returns the port bound; the error names the config key and the fix, as listenOn's. */
export function bindDatagram(socket: DatagramSocket, address: ListenAddress, key: string): Promise<number> {
  return bindExplained(socket, address, key, (done) => socket.bind({ address: address.host, port: address.port }, done), () => socket.address().port);
}

/** Runs `bind`, turning the target's bind error into bindFailureText's line. */
function bindExplained(target: Server | DatagramSocket, address: ListenAddress, key: string, bind: (done: () => void) => void, boundPort: () => number): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException): void => reject(new Error(bindFailureText(error, key, address)));
    target.once('error', onError);
    bind(() => {
      target.off('error', onError);
      resolve(boundPort());
    });
  });
}

/** A bind failure as one line that says what to do: `agent.listen 0.0.0.0:443 cannot be bound: ports below 1024 need root ...`. */
export function bindFailureText(error: NodeJS.ErrnoException, key: string, address: ListenAddress): string {
  const hints: Record<string, string> = {
    EADDRINUSE: `another program uses it; pick another ${key} port`,
    EACCES: 'ports below 1024 need root or CAP_NET_BIND_SERVICE',
    EADDRNOTAVAIL: 'this machine has no such address',
  };
  return `${key} ${formatHostPort(address)} cannot be bound: ${hints[error.code ?? ''] ?? error.message}`;
}

/** Closes an HTTP(S) server now: idle keep-alive connections would hold close() up for seconds. */
export function closeHttpServer(server: HttpServer | HttpsServer): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
