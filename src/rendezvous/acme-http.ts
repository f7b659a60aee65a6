import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { ListenAddress } from '../common/address.js';
import { closeHttpServer, listenOn } from '../common/listen.js';
import type { Logger } from '../common/logger.js';
import { normalizeIp } from './addresses.js';
import { answerChallengeRequest, ChallengeStore } from './acme-challenges.js';

/**
 * Port 80 is open to the whole internet and the CA's requests are tiny: headers get a few seconds, a
 * request ten, and an idle connection goes after five. Node checks these deadlines only every
 * connectionsCheckingInterval (30 s by default), hence the short interval.
 */
const TIMEOUTS = { headersTimeout: 5_000, requestTimeout: 10_000, keepAliveTimeout: 5_000, connectionsCheckingInterval: 1_000 } as const;
/** The CA sends a few hundred bytes of headers; 8 KiB is Node's default, kept explicit here. */
const MAX_HEADER_BYTES = 8192;

export interface AcmeHttp {
  /** What the listener answers from: the agents' challenges and the rendezvous's own. */
  readonly store: ChallengeStore;
  /** The port bound (differs from the config when it asked for port 0). */
  readonly port: number;
  close(): Promise<void>;
}

/** A challenge store and its listener on `listen`, bound; a bind failure names rendezvous.acmeHttp. */
export async function startAcmeHttp(listen: ListenAddress, logger: Logger): Promise<AcmeHttp> {
  const store = new ChallengeStore();
  const server = createAcmeHttpServer((hostname, token) => store.lookup(hostname, token), logger);
  const port = await listenOn(server, listen, 'rendezvous.acmeHttp');
  return { store, port, close: () => closeHttpServer(server) };
}

/**
 * The plain-HTTP listener on acmeHttp: answers answerChallengeRequest and nothing else. Malformed requests
 * get Node's own 400 and are closed; none of it can throw. Call listen() on it.
 */
export function createAcmeHttpServer(lookup: (hostname: string, token: string) => string | undefined, logger: Logger): Server {
  const log = logger.child({ component: 'acme-http' });
  const server = createServer({ ...TIMEOUTS, maxHeaderSize: MAX_HEADER_BYTES }, (req: IncomingMessage, res: ServerResponse) => {
    const answer = answerChallengeRequest({ method: req.method ?? '', url: req.url ?? '', host: req.headers.host }, lookup);
    const client = normalizeIp(req.socket.remoteAddress ?? '') ?? 'unknown';
    // port 80 draws scanners all day: only the answers the CA gets are worth a line at info
    if (answer.status === 200) log.info({ hostname: answer.hostname, client }, 'http-01 challenge answered');
    else log.debug({ hostname: answer.hostname, client, why: answer.why }, 'http-01 request not answered');
    res.writeHead(answer.status, { 'content-type': 'text/plain', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(answer.body) });
    res.end(answer.body);
  });
  server.on('error', (error) => log.error({ err: error.message }, 'acme-http listener error'));
  return server;
}
