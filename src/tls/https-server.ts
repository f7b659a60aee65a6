import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { Logger } from '../common/logger.js';
import type { CertificateSource } from './certificates.js';
import { TLS_SERVER_OPTIONS } from './server-options.js';

/**
 * An HTTPS server under homeport's TLS policy that follows certificate changes (renewal, SIGHUP): new
 * connections get the new certificate. Shared by the agent's admin listener and the rendezvous's web port.
 */
export function createHttpsServer(certificates: CertificateSource, log: Logger, onRequest: (req: IncomingMessage, res: ServerResponse) => void): Server {
  const server = createServer({
    ...TLS_SERVER_OPTIONS,
    ...certificates.current(),
    handshakeTimeout: 10_000,
    headersTimeout: 10_000,
    requestTimeout: 15_000,
    keepAliveTimeout: 5_000,
  }, onRequest);
  const onChange = (): void => server.setSecureContext({ ...TLS_SERVER_OPTIONS, ...certificates.current() });
  certificates.on('change', onChange);
  server.on('close', () => certificates.off('change', onChange));
  // a client that breaks off a handshake is no server problem
  server.on('tlsClientError', (error) => log.debug({ err: error.message }, 'TLS handshake failed'));
  return server;
}
