import type { AdminHttpRequest, AdminHttpResponse } from '../admin/api-types.js';
import { pathOf, sendJson, serveAdminHttp } from '../admin/http.js';
import type { Logger } from '../common/logger.js';
import type { ListenAddress } from '../common/address.js';
import { listenOn } from '../common/listen.js';
import type { CertificateSource } from '../tls/certificates.js';
import { createHttpsServer } from '../tls/https-server.js';
import { normalizeClientAddress } from '../common/cidr.js';

/** The admin API's base path on the agent's LAN listener. */
export const AGENT_API_BASE = '/api/';

export interface AdminListenerOptions {
  listen: ListenAddress;
  certificates: CertificateSource;
  /** AdminApi.handle: the one definition of the API. */
  handle: (request: AdminHttpRequest) => Promise<AdminHttpResponse>;
  logger: Logger;
}

export interface AdminListener {
  readonly port: number;
  close(): Promise<void>;
}

/**
 * The agent's LAN admin API (`[admin] listen`): HTTPS with the agent's own certificate, `/api/<route>`.
 * It is not behind the whitelist gate: every request must carry a signature made with an agent key.
 */
export async function startAdminListener({ listen, certificates, handle, logger }: AdminListenerOptions): Promise<AdminListener> {
  const log = logger.child({ component: 'admin' });
  const server = createHttpsServer(certificates, log, (req, res) => {
    const path = pathOf(req.url ?? '/');
    if (!path.startsWith(AGENT_API_BASE)) return void sendJson(res, 404, { error: `the admin API is under ${AGENT_API_BASE}` });
    const clientIp = normalizeClientAddress(req.socket.remoteAddress ?? '');
    void serveAdminHttp(req, res, path.slice(AGENT_API_BASE.length), clientIp, handle);
  });
  const port = await listenOn(server, listen, 'admin.listen');
  return {
    port,
    close: () => new Promise((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}
