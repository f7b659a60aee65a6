import type { IncomingMessage, ServerResponse } from 'node:http';
import { MAX_BODY_BYTES } from './api.js';
import type { AdminHttpRequest, AdminHttpResponse } from './api-types.js';

/**
 * One admin request over HTTP, wherever the API is mounted: reads the body (one byte past MAX_BODY_BYTES at
 * most, so the API can refuse it with 413 without the server holding more), asks `handle`, sends the answer.
 * `route` is the path after the API base, query left out. Never rejects: a failure ends this request only.
 */
export async function serveAdminHttp(
  req: IncomingMessage,
  res: ServerResponse,
  route: string,
  clientIp: string,
  handle: (request: AdminHttpRequest) => Promise<AdminHttpResponse>,
): Promise<void> {
  try {
    const { body, complete } = await readBody(req, MAX_BODY_BYTES + 1);
    const answer = await handle({ method: req.method ?? 'GET', target: req.url ?? '/', route, authorization: req.headers.authorization, body, clientIp });
    if (res.destroyed) return;
    // the rest of an oversized body is never read: the connection cannot carry another request
    res.writeHead(answer.status, complete ? answer.headers : { ...answer.headers, connection: 'close' });
    res.end(req.method === 'HEAD' ? undefined : answer.body);
  } catch {
    res.destroy();
  }
}

function readBody(req: IncomingMessage, limit: number): Promise<{ body: Buffer; complete: boolean }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const finish = (complete: boolean): void => {
      req.off('data', onData);
      resolve({ body: Buffer.concat(chunks).subarray(0, limit), complete });
    };
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      size += chunk.length;
      if (size < limit) return;
      req.pause();
      finish(false);
    };
    req.on('data', onData);
    req.once('end', () => finish(true));
    req.once('error', () => finish(false));
    req.once('close', () => finish(req.complete));
  });
}

/** A JSON answer the API did not make (a path outside it). */
export function sendJson(res: ServerResponse, status: number, body: object): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

/** The path of a request target, without the query. */
export function pathOf(target: string): string {
  const queryAt = target.indexOf('?');
  return queryAt < 0 ? target : target.slice(0, queryAt);
}
