import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from '../common/logger.js';
import { clientAddressOf } from './client-address.js';
import { htmlPage, pageHeaders, writeRawPage, type Forwarder } from './forwarder.js';
import type { HttpHandlers } from './pipeline.js';
import { routingPath, type Route, type Router } from './router.js';

export interface HttpHandlerOptions {
  router: Router;
  forwarder: Forwarder;
  logger: Logger;
}

const NOT_FOUND_PAGE = htmlPage(404, 'homeport has no route for this host and path.');
const NOT_FOUND_HEADERS = pageHeaders(NOT_FOUND_PAGE);
const BAD_TARGET_PAGE = htmlPage(400, 'A request target must not contain a fragment (#).');
const BAD_TARGET_HEADERS = pageHeaders(BAD_TARGET_PAGE);

/**
 * A fragment never belongs in a request target (RFC 9112 §3.2), but Node's parser accepts one and the
 * forwarder's URL handling would silently drop it: `DELETE /dav/folder/#x` would reach the LAN service as
 * `DELETE /dav/folder/` and delete the whole folder. Such a request is refused instead.
 */
function hasFragment(target: string): boolean {
  return target.includes('#');
}

/** One access-log line: what a user needs to see who fetched what, how it ended and how long it took. */
interface AccessEntry {
  ip: string;
  host: string | undefined;
  method: string | undefined;
  /** Without the query string, which may carry tokens. */
  path: string;
  /** 0 when the client left before any status was sent. */
  status: number;
  /** Bytes written to the client connection for this exchange, headers included. */
  bytes: number;
  ms: number;
  route: string | undefined;
  aborted?: true;
}

/**
 * The request and upgrade listeners of the agent's HTTP server: route by Host and path, forward, and
 * write one access-log line per exchange once it is over. This is the hot path: no sync I/O, one
 * closure per request (the log line needs the start time), everything else precomputed.
 */
export function createHttpHandlers({ router, forwarder, logger }: HttpHandlerOptions): HttpHandlers {
  // The access line has a fixed set of fields (AccessEntry; the path without its query) and none can
  // hold a secret, so it skips pino's key redaction: matching the wildcard redact paths against every
  // field is a noticeable share of the CPU a small request costs (bench/README.md). Everything else
  // logged still goes through the redacting logger.
  const accessLog = logger.child({}, { redact: [] });
  function logExchange(entry: AccessEntry): void {
    accessLog.info(entry, 'request');
  }

  function request(req: IncomingMessage, res: ServerResponse): void {
    const started = performance.now();
    const socket = req.socket;
    const bytesBefore = socket.bytesWritten;
    const clientAddress = clientAddressOf(socket);
    const path = routingPath(req.url ?? '/');
    const route = router.match(req.headers.host, path);
    res.on('close', () => {
      const entry = accessEntry(req, clientAddress, path, route, started, socket.bytesWritten - bytesBefore);
      entry.status = res.headersSent ? res.statusCode : 0;
      // 'close' before 'finish' means the connection went away before the whole response was sent.
      if (!res.writableFinished) entry.aborted = true;
      logExchange(entry);
    });
    if (hasFragment(req.url ?? '')) {
      res.writeHead(400, BAD_TARGET_HEADERS);
      res.end(BAD_TARGET_PAGE);
    } else if (route) {
      forwarder.web(req, res, route, clientAddress);
    } else {
      res.writeHead(404, NOT_FOUND_HEADERS);
      res.end(NOT_FOUND_PAGE);
    }
  }

  function upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const started = performance.now();
    const clientAddress = clientAddressOf(socket);
    const path = routingPath(req.url ?? '/');
    const route = router.match(req.headers.host, path);
    let status = 0;
    // The HTTP server no longer listens on an upgraded socket; an unhandled 'error' would end the process.
    socket.on('error', destroyOnError);
    socket.once('close', () => {
      const entry = accessEntry(req, clientAddress, path, route, started, (socket as Socket).bytesWritten ?? 0);
      entry.status = status;
      if (status === 0) entry.aborted = true;
      logExchange(entry);
    });
    if (hasFragment(req.url ?? '')) {
      status = 400;
      writeRawPage(socket, 400, BAD_TARGET_PAGE);
    } else if (route) {
      forwarder.ws(req, socket, head, route, clientAddress, (sent) => (status = sent));
    } else {
      status = 404;
      writeRawPage(socket, 404, NOT_FOUND_PAGE);
    }
  }

  return { request, upgrade };
}

function accessEntry(req: IncomingMessage, ip: string, path: string, route: Route | undefined, started: number, bytes: number): AccessEntry {
  return {
    ip,
    host: req.headers.host,
    method: req.method,
    path,
    status: 0,
    bytes,
    ms: Math.round((performance.now() - started) * 10) / 10,
    route: route?.label,
  };
}

function destroyOnError(this: Duplex): void {
  this.destroy();
}
