import { mkdir } from 'node:fs/promises';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import type { Logger } from '../common/logger.js';
import type { AgentConfig } from '../config/agent-types.js';
import { formatHostPort } from '../config/address.js';
import { ConfigError } from '../config/problems.js';
import { normalizeClientAddress } from './whitelist/cidr.js';
import { Whitelist } from './whitelist/store.js';
import { createGate } from './gate.js';
import { openCertificateSource, TlsSetupError, type CertificateSource } from '../tls/certificates.js';
import { createSecureContext } from '../tls/server-options.js';
import { compileRoutes } from './router.js';
import { createForwarder } from './forwarder.js';
import { createHttpHandlers } from './http-handler.js';
import { Pipeline } from './pipeline.js';

export interface RunningAgent {
  /** The port actually bound (differs from the config when it asked for port 0). */
  readonly port: number;
  readonly whitelist: Whitelist;
  readonly certificates: CertificateSource;
  /** SIGHUP: re-read the whitelist file and the certificate files. */
  reload(): Promise<void>;
  close(): Promise<void>;
}

/** Starts the agent: whitelist, certificates, routes, then the listener on the punched port. */
export async function startAgent(config: AgentConfig, logger: Logger): Promise<RunningAgent> {
  await mkdir(config.agent.stateDir, { recursive: true, mode: 0o700 });
  const whitelist = await Whitelist.open({
    configEntries: config.whitelist.allow,
    file: join(config.agent.stateDir, 'whitelist.json'),
    logger,
  }).catch(refuseToStart);
  const certificates = await openCertificateSource(config.tls, logger).catch((error: unknown) => {
    whitelist.close();
    return error instanceof TlsSetupError ? refuseToStart(error) : Promise.reject(error);
  });
  const forwarder = createForwarder({ timeouts: config.timeouts, logger });
  const pipeline = new Pipeline({
    gate: createGate(whitelist, logger),
    secureContext: createSecureContext(certificates.current()),
    handlers: createHttpHandlers({ router: compileRoutes(config.routes), forwarder, logger }),
    timeouts: config.timeouts,
    logger,
  });
  certificates.on('change', () => pipeline.setSecureContext(createSecureContext(certificates.current())));
  whitelist.on('change', () => {
    const dropped = pipeline.dropRevoked((address) => whitelist.allows(address));
    if (dropped > 0) logger.info({ dropped }, 'closed connections from addresses no longer whitelisted');
  });

  const server = createServer({ noDelay: true }, (socket: Socket) => {
    pipeline.accept(socket, normalizeClientAddress(socket.remoteAddress ?? ''));
  });
  server.on('error', (error) => logger.error({ err: error.message }, 'listener error'));
  try {
    await listen(server, config);
  } catch (error) {
    forwarder.close();
    whitelist.close();
    certificates.close();
    throw error;
  }
  const port = (server.address() as AddressInfo).port;
  logger.info({ listen: formatHostPort({ host: config.agent.listen.host, port }) }, 'agent listening');

  return {
    port,
    whitelist,
    certificates,
    async reload() {
      await Promise.all([whitelist.reload(), certificates.reload()]);
    },
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        pipeline.close();
      });
      forwarder.close();
      whitelist.close();
      certificates.close();
    },
  };
}

function listen(server: Server, config: AgentConfig): Promise<void> {
  const { host, port } = config.agent.listen;
  return new Promise((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException): void => {
      const hint = error.code === 'EADDRINUSE' ? 'another program uses it; pick another agent.listen port'
        : error.code === 'EACCES' ? 'ports below 1024 need root or CAP_NET_BIND_SERVICE'
        : error.code === 'EADDRNOTAVAIL' ? 'this machine has no such address' : error.message;
      reject(new Error(`${config.file}: agent.listen ${formatHostPort(config.agent.listen)} cannot be bound: ${hint}`));
    };
    server.once('error', onError);
    // ipv6Only stays false so "[::]" also takes IPv4 clients (as ::ffff:a.b.c.d, matched as IPv4 by the gate).
    server.listen({ host, port }, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

/** A state or key file the agent cannot trust is a configuration error: exit code 2, no restart loop. */
function refuseToStart(error: Error): never {
  throw new ConfigError([error.message]);
}
