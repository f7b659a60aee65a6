import { createServer, type AddressInfo, type Socket } from 'node:net';
import type { Logger } from '../common/logger.js';
import { formatHostPort, type ListenAddress } from '../common/address.js';

export interface PortHolder {
  readonly port: number;
  close(): Promise<void>;
}

/** Without a rendezvous the agent simply listens on its port (LAN, port forwarding, or a VPN). */
export async function listenOnLan(listen: ListenAddress, onConnection: (socket: Socket) => void, logger: Logger): Promise<PortHolder> {
  const server = createServer({ noDelay: true }, onConnection);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    // ipv6Only stays false so "[::]" also takes IPv4 clients (as ::ffff:a.b.c.d, matched as IPv4 by the gate)
    server.listen({ host: listen.host, port: listen.port }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (error) => logger.error({ err: error.message }, 'listener error'));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** Turns a bind failure into one line that says what to do. */
export function describeBindError(error: NodeJS.ErrnoException, file: string, listen: ListenAddress): string {
  const hint = error.code === 'EADDRINUSE' ? 'another program uses it; pick another agent.listen port'
    : error.code === 'EACCES' ? 'ports below 1024 need root or CAP_NET_BIND_SERVICE'
    : error.code === 'EADDRNOTAVAIL' ? 'this machine has no such address' : error.message;
  return `${file}: agent.listen ${formatHostPort(listen)} cannot be bound: ${hint}`;
}
