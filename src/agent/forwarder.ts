import { Agent as HttpAgent, request as httpRequest, ServerResponse, STATUS_CODES, type ClientRequest, type IncomingHttpHeaders, type IncomingMessage, type RequestOptions } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { TLSSocket } from 'node:tls';
import { escapeHtml } from '../common/html.js';
import type { Logger } from '../common/logger.js';
import type { TimeoutsConfig } from '../config/agent-types.js';
import type { Route } from './router.js';

/**
 * Forwards requests and WebSocket upgrades to LAN services, straight on node:http: what a reverse proxy
 * in front of home services must get right (client-address headers, hop-by-hop headers, timeouts, error
 * pages, releasing the upstream when the client goes away) and nothing else on the data path.
 */
export interface Forwarder {
  web(req: IncomingMessage, res: ServerResponse, route: Route, clientAddress: string): void;
  /** `onStatus` learns the status sent to the client: 101 when upgraded, else the error or upstream status. */
  ws(req: IncomingMessage, socket: Duplex, head: Buffer, route: Route, clientAddress: string, onStatus?: (status: number) => void): void;
  /** Closes the idle upstream connections of the pool. */
  close(): void;
}

export interface ForwarderOptions {
  timeouts: TimeoutsConfig;
  logger: Logger;
}

/**
 * Upstream keep-alive pool. Idle sockets are bounded per upstream; busy ones are bounded generously
 * because a film, an SSE feed or a long upload each hold one for as long as they last.
 */
const POOL_OPTIONS = { keepAlive: true, maxSockets: 1024, maxFreeSockets: 128, scheduling: 'lifo' } as const;

/** At most one warning per route in this window when its upstream keeps failing; the rest are counted. */
const UPSTREAM_WARNING_INTERVAL_MS = 10_000;

type TimeoutPhase = 'connect' | 'response';

/** The upstream did not connect or did not start its answer in time: the client gets a 504. */
export class UpstreamTimeoutError extends Error {
  readonly code = 'HOMEPORT_UPSTREAM_TIMEOUT';
  constructor(phase: TimeoutPhase, ms: number) {
    super(phase === 'connect' ? `no connection to the upstream within ${ms} ms` : `the upstream did not answer within ${ms} ms`);
  }
}

/** Everything about one route that is built once, not per request. */
interface RouteForwarder {
  /** Requests go straight to node:http with these options: the hot path, no per-request setup. */
  readonly request: typeof httpRequest;
  readonly options: RequestOptions & { rejectUnauthorized?: boolean };
  readonly basePath: string;
  readonly badGateway: Buffer;
  readonly gatewayTimeout: Buffer;
  lastWarningAt: number;
  suppressedWarnings: number;
}


/** What every route's forwarding shares: the two upstream pools, the timeouts and the logger. */
interface Upstreams {
  readonly http: HttpAgent;
  readonly https: HttpsAgent;
  readonly timeouts: TimeoutsConfig;
  readonly logger: Logger;
  /** The 'finish' listener of a web request: one function for all requests, no closure per request on the hot path. */
  readonly onWebRequestSent: (this: ClientRequest) => void;
}

export function createForwarder({ timeouts, logger }: ForwarderOptions): Forwarder {
  const upstreams: Upstreams = {
    http: new HttpAgent(POOL_OPTIONS),
    https: new HttpsAgent(POOL_OPTIONS),
    timeouts,
    logger,
    /** The response timer starts once the request, body included, has gone out. */
    onWebRequestSent(this: ClientRequest) {
      const timer = startResponseTimer(this, timeouts.upstreamResponseMs);
      this.once('response', () => clearTimeout(timer));
    },
  };
  const routes = new WeakMap<Route, RouteForwarder>();

  function forwarderFor(route: Route): RouteForwarder {
    let forwarder = routes.get(route);
    if (!forwarder) {
      forwarder = createRouteForwarder(upstreams, route);
      routes.set(route, forwarder);
    }
    return forwarder;
  }

  return {
    web(req, res, route, clientAddress) {
      const forwarder = forwarderFor(route);
      forwardedHeaders(req.headers, clientAddress, false);
      try {
        forwardWeb(upstreams, forwarder, route, req, res);
      } catch (error) {
        // Node refusing something about this request synchronously (a bad path) must not end the process.
        failWeb(upstreams, forwarder, route, error as Error, res);
      }
    },
    ws(req, socket, head, route, clientAddress, onStatus) {
      const forwarder = forwarderFor(route);
      forwardedHeaders(req.headers, clientAddress, true);
      try {
        forwardUpgrade(upstreams, forwarder, route, req, socket, head, onStatus);
      } catch (error) {
        onStatus?.(502);
        writeRawPage(socket, 502, forwarder.badGateway);
        warnUpstreamFailure(upstreams.logger, forwarder, route, error as Error);
      }
    },
    close() {
      upstreams.http.destroy();
      upstreams.https.destroy();
    },
  };
}

function createRouteForwarder(upstreams: Upstreams, route: Route): RouteForwarder {
  const https = route.target.protocol === 'https:';
  return {
    request: https ? httpsRequest : httpRequest,
    options: {
      hostname: route.target.hostname.replace(/^\[|\]$/g, ''),
      port: route.target.port || (https ? 443 : 80),
      agent: https ? upstreams.https : upstreams.http,
      ...(https ? { rejectUnauthorized: !route.insecure } : {}),
    },
    basePath: route.target.pathname === '/' ? '' : route.target.pathname.replace(/\/$/, ''),
    badGateway: htmlPage(502, `homeport could not reach the service of route ${route.label}.`),
    gatewayTimeout: htmlPage(504, `The service of route ${route.label} did not answer in time.`),
    lastWarningAt: 0,
    suppressedWarnings: 0,
  };
}

function upstreamRequest(upstreams: Upstreams, forwarder: RouteForwarder, req: IncomingMessage): ClientRequest {
  const proxyReq = forwarder.request({
    ...forwarder.options,
    method: req.method,
    path: forwarder.basePath + (req.url ?? '/'),
    headers: req.headers,
  });
  proxyReq.on('socket', (socket) => guardConnect(proxyReq, socket, upstreams.timeouts.upstreamConnectMs));
  return proxyReq;
}

/**
 * One request to the upstream: headers already rewritten, body streamed, response streamed back. The
 * upstream request is destroyed as soon as the client goes away, so an aborted download (a player
 * seeking) frees its upstream connection at once.
 */
function forwardWeb(upstreams: Upstreams, forwarder: RouteForwarder, route: Route, req: IncomingMessage, res: ServerResponse): void {
  const proxyReq = upstreamRequest(upstreams, forwarder, req);
  proxyReq.on('error', (error) => failWeb(upstreams, forwarder, route, error, res));
  proxyReq.on('response', (proxyRes) => sendUpstreamResponse(proxyRes, res));
  res.on('close', () => {
    if (!res.writableFinished) proxyReq.destroy();
  });
  if (upstreams.timeouts.upstreamResponseMs > 0) proxyReq.once('finish', upstreams.onWebRequestSent);
  req.pipe(proxyReq);
}

/**
 * A WebSocket (or other) upgrade: the upstream's 101 and its headers go to the client as they are,
 * then bytes flow both ways until either side closes. An upstream that refuses the upgrade has its
 * answer passed on unchanged.
 */
function forwardUpgrade(
  upstreams: Upstreams, forwarder: RouteForwarder, route: Route, req: IncomingMessage, socket: Duplex, head: Buffer, onStatus?: (status: number) => void,
): void {
  const proxyReq = upstreamRequest(upstreams, forwarder, req);
  let answered = false;
  let responseTimer: NodeJS.Timeout | undefined;
  const answer = (status: number): void => {
    clearTimeout(responseTimer);
    answered = true;
    onStatus?.(status);
  };
  proxyReq.on('upgrade', (proxyRes: IncomingMessage, upstream: Socket, upstreamHead: Buffer) => {
    answer(101);
    if (!socket.writable) return void upstream.destroy();
    socket.write(rawResponseHead(proxyRes));
    if (upstreamHead.length > 0) socket.write(upstreamHead);
    if (head.length > 0) upstream.write(head);
    splice(socket, upstream, upstreams.timeouts.idleMs);
  });
  proxyReq.on('response', (proxyRes: IncomingMessage) => {
    answer(proxyRes.statusCode ?? 502);
    socket.write(rawResponseHead(proxyRes));
    proxyRes.pipe(socket);
  });
  proxyReq.on('error', (error) => {
    if (answered || !socket.writable) return;
    answer(failureStatus(error));
    writeRawPage(socket, failureStatus(error), failurePage(forwarder, error));
    warnUpstreamFailure(upstreams.logger, forwarder, route, error);
  });
  // A client that leaves before the upstream answered must not leave the upstream request behind.
  socket.once('close', () => {
    if (!answered) proxyReq.destroy();
  });
  const { upstreamResponseMs } = upstreams.timeouts;
  if (upstreamResponseMs > 0) proxyReq.once('finish', () => (responseTimer = startResponseTimer(proxyReq, upstreamResponseMs)));
  proxyReq.end();
}

/** Two sockets joined after an upgrade: either one closing or failing closes the other. */
function splice(client: Duplex, upstream: Socket, idleMs: number): void {
  upstream.setNoDelay(true);
  upstream.setTimeout(0);
  const closeBoth = (): void => {
    client.destroy();
    upstream.destroy();
  };
  client.on('error', closeBoth).on('close', closeBoth);
  upstream.on('error', closeBoth).on('close', closeBoth);
  client.pipe(upstream).pipe(client);
  // The HTTP server no longer watches an upgraded socket: an abandoned WebSocket would stay open forever.
  if (idleMs > 0) (client as Socket).setTimeout?.(idleMs, closeBoth);
}

/** A new upstream connection gets connectMs to be ready (TLS handshake included); pooled ones are. */
function guardConnect(proxyReq: ClientRequest, socket: Socket, connectMs: number): void {
  if (!socket.connecting || connectMs <= 0) return;
  const timer = setTimeout(abortUpstream, connectMs, proxyReq, 'connect', connectMs).unref();
  socket.once(socket instanceof TLSSocket ? 'secureConnect' : 'connect', () => clearTimeout(timer));
}

/** Started once the request (body included) has been sent: a slow upload does not count against it. */
function startResponseTimer(proxyReq: ClientRequest, responseMs: number): NodeJS.Timeout {
  return setTimeout(abortUpstream, responseMs, proxyReq, 'response', responseMs).unref();
}

function failWeb(upstreams: Upstreams, forwarder: RouteForwarder, route: Route, error: Error, res: ServerResponse): void {
  if (res.destroyed || res.writableEnded) return; // the client is gone; its upstream request was destroyed
  if (res.headersSent) {
    res.destroy(); // cut the half-sent response so the client sees it is incomplete
  } else {
    const page = failurePage(forwarder, error);
    res.writeHead(failureStatus(error), pageHeaders(page));
    res.end(page);
  }
  warnUpstreamFailure(upstreams.logger, forwarder, route, error);
}

function warnUpstreamFailure(logger: Logger, forwarder: RouteForwarder, route: Route, error: Error): void {
  const now = Date.now();
  if (now - forwarder.lastWarningAt < UPSTREAM_WARNING_INTERVAL_MS) {
    forwarder.suppressedWarnings++;
    return;
  }
  const suppressed = forwarder.suppressedWarnings;
  forwarder.lastWarningAt = now;
  forwarder.suppressedWarnings = 0;
  const code = (error as NodeJS.ErrnoException).code;
  logger.warn({ route: route.label, target: route.target.origin, code, err: error.message, suppressed }, 'upstream failed');
}

/** The request's 'error' listener answers 504. */
function abortUpstream(proxyReq: ClientRequest, phase: TimeoutPhase, ms: number): void {
  proxyReq.destroy(new UpstreamTimeoutError(phase, ms));
}

/**
 * Request headers that describe one hop (RFC 9110 7.6.1), or that only homeport may set (Forwarded,
 * X-Real-IP; X-Forwarded-* go by prefix).
 * Expect: Node already answered "100 Continue" to the client, the upstream gets the body right away.
 * Proxy-Authorization: credentials meant for a proxy, never for the LAN service.
 */
const REQUEST_HOP_HEADERS = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade', 'expect', 'proxy-authorization', 'forwarded', 'x-real-ip']);
const RESPONSE_HOP_HEADERS = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade', 'transfer-encoding']);
/** Connection header values that are options, not names of headers to drop. */
const CONNECTION_OPTIONS = new Set(['keep-alive', 'close', 'upgrade']);

/**
 * Rewrites the request headers in place before they are sent upstream: drops hop-by-hop headers and
 * every client-supplied forwarding header (a spoofed X-Forwarded-For would make a LAN service such as
 * Jellyfin treat a remote client as local), then states the real client address from the socket.
 * Transfer-Encoding stays: Node re-frames a chunked body itself when the header says chunked.
 */
function forwardedHeaders(headers: IncomingHttpHeaders, clientAddress: string, upgrade: boolean): void {
  const upgradeProtocol = headers.upgrade;
  const listed = headers.connection === undefined ? undefined : connectionListedHeaders(headers.connection);
  if (listed) for (const name of listed) if (name !== 'host') delete headers[name];
  for (const name in headers) {
    if (REQUEST_HOP_HEADERS.has(name) || name.startsWith('x-forwarded-')) delete headers[name];
  }
  if (upgrade) {
    headers.connection = 'upgrade';
    headers.upgrade = upgradeProtocol;
  }
  const host = headers.host;
  headers['x-forwarded-for'] = clientAddress;
  headers['x-forwarded-proto'] = 'https';
  if (host !== undefined) headers['x-forwarded-host'] = host;
  headers['x-real-ip'] = clientAddress;
  headers.forwarded = forwardedElement(clientAddress, host);
}

/** Headers named in a Connection header are hop-by-hop too: "close, X-Secret" -> ["x-secret"]. */
function connectionListedHeaders(connection: string): string[] | undefined {
  const lower = connection.toLowerCase();
  if (CONNECTION_OPTIONS.has(lower)) return undefined; // the usual case, without splitting
  const names = lower.split(',').map((token) => token.trim()).filter((name) => name !== '' && !CONNECTION_OPTIONS.has(name));
  return names.length === 0 ? undefined : names;
}

/** RFC 7239: `for=192.0.2.1;proto=https;host="nas.example.com"`, IPv6 quoted in brackets. */
function forwardedElement(clientAddress: string, host: string | undefined): string {
  const node = clientAddress.includes(':') ? `"[${clientAddress}]"` : clientAddress || 'unknown';
  const element = `for=${node};proto=https`;
  return host === undefined ? element : `${element};host="${host.replace(/["\\]/g, '\\$&')}"`;
}

function failureStatus(error: Error): 502 | 504 {
  return error instanceof UpstreamTimeoutError ? 504 : 502;
}

function failurePage(forwarder: RouteForwarder, error: Error): Buffer {
  return error instanceof UpstreamTimeoutError ? forwarder.gatewayTimeout : forwarder.badGateway;
}

/** The status line and headers of an upstream response, for a socket the HTTP server handed over. */
function rawResponseHead(proxyRes: IncomingMessage): string {
  const raw = proxyRes.rawHeaders;
  let head = `HTTP/1.1 ${proxyRes.statusCode} ${proxyRes.statusMessage ?? ''}\r\n`;
  for (let i = 0; i < raw.length; i += 2) head += `${raw[i]}: ${raw[i + 1]}\r\n`;
  return `${head}\r\n`;
}

const INVALID_RESPONSE_PAGE = htmlPage(502, 'The service sent a response homeport cannot pass on.');

/**
 * The upstream answered: pass its status and end-to-end headers on, then stream the body without
 * buffering (pipe honours back-pressure: a 1 GiB film never sits in memory; SSE events go out as they
 * come). Node sets framing and Connection for the client side itself.
 */
function sendUpstreamResponse(proxyRes: IncomingMessage, res: ServerResponse): void {
  if (res.destroyed) {
    proxyRes.destroy();
    return;
  }
  try {
    res.writeHead(proxyRes.statusCode ?? 502, proxyRes.statusMessage || undefined, endToEndHeaders(proxyRes));
  } catch {
    // Node refuses a status line or header it would not send itself; the client must not get half of
    // it. The reason phrase is explicit: the refused one is still set on res and would be refused again.
    proxyRes.destroy();
    res.writeHead(502, STATUS_CODES[502], pageHeaders(INVALID_RESPONSE_PAGE));
    res.end(INVALID_RESPONSE_PAGE);
    return;
  }
  proxyRes.pipe(res);
  // An upstream that dies mid-body leaves pipe() waiting forever: cut the client response too.
  proxyRes.once('close', () => {
    if (!proxyRes.complete) res.destroy();
  });
}

/**
 * The upstream's raw header list (original case, repeated headers kept) minus the hop-by-hop ones, in
 * one pass over rawHeaders: reading proxyRes.headers would build a second, lower-cased copy of them all.
 */
function endToEndHeaders(proxyRes: IncomingMessage): string[] {
  const raw = proxyRes.rawHeaders;
  const kept: string[] = [];
  let listed: string[] | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (name === 'connection') listed = connectionListedHeaders(raw[i + 1]!) ?? listed;
    if (!RESPONSE_HOP_HEADERS.has(name)) kept.push(raw[i]!, raw[i + 1]!);
  }
  return listed ? withoutHeaders(kept, listed) : kept;
}

function withoutHeaders(pairs: string[], names: string[]): string[] {
  const kept: string[] = [];
  for (let i = 0; i < pairs.length; i += 2) {
    if (!names.includes(pairs[i]!.toLowerCase())) kept.push(pairs[i]!, pairs[i + 1]!);
  }
  return kept;
}

/** A short page for errors the proxy itself answers (no route, upstream down or slow). */
export function htmlPage(status: number, message: string): Buffer {
  const title = `${status} ${STATUS_CODES[status] ?? ''}`;
  return Buffer.from(`<!doctype html><meta charset="utf-8"><title>${title}</title><h1>${title}</h1><p>${escapeHtml(message)}</p>\n`);
}

export function pageHeaders(page: Buffer): Record<string, string | number> {
  return { 'content-type': 'text/html; charset=utf-8', 'content-length': page.length, 'cache-control': 'no-store' };
}

/** Answers on a socket the HTTP server has handed over (an upgrade request), then closes it. */
export function writeRawPage(socket: Duplex, status: number, page: Buffer): void {
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\nContent-Type: text/html; charset=utf-8\r\n` +
      `Content-Length: ${page.length}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n${page.toString()}`,
  );
}
