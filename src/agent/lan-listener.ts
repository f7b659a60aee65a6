import { createServer, type AddressInfo, type Socket } from 'node:net';
import type { Logger } from '../common/logger.js';
import type { ListenAddress } from '../common/address.js';
import { bindFailureText } from '../common/listen.js';

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

/** Turns a failure to bind agent.listen into one line that names the config file and says what to do. */
export function describeBindError(error: NodeJS.ErrnoException, file: string, listen: ListenAddress): string {
  return `${file}: ${bindFailureText(error, 'agent.listen', listen)}`;
}
