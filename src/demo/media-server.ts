import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer, type Server, type IncomingMessage, type ServerResponse } from 'node:http';
import { basename } from 'node:path';
import { parseRange } from './range.js';

/**
 * The demo's stand-in for a LAN media server (Jellyfin, a NAS UI): serves one file with Range support,
 * as a video player needs for seeking, plus a small index page.
 */
export function createMediaServer(file: string): Server {
  const name = `/${basename(file)}`;
  return createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/') return sendIndex(res, name);
    if (path !== name) return sendText(res, 404, 'not found\n');
    if (req.method !== 'GET' && req.method !== 'HEAD') return sendText(res, 405, 'method not allowed\n');
    serveFile(req, res, file).catch(() => res.destroy());
  });
}

async function serveFile(req: IncomingMessage, res: ServerResponse, file: string): Promise<void> {
  const { size } = await stat(file);
  const range = parseRange(req.headers.range, size);
  res.setHeader('Accept-Ranges', 'bytes');
  res.setHeader('Content-Type', 'application/octet-stream');
  if (range === 'unsatisfiable') {
    res.writeHead(416, { 'Content-Range': `bytes */${size}` }).end();
    return;
  }
  const { start, end } = range ?? { start: 0, end: size - 1 };
  res.setHeader('Content-Length', size === 0 ? 0 : end - start + 1);
  if (range) res.setHeader('Content-Range', `bytes ${start}-${end}/${size}`);
  res.writeHead(range ? 206 : 200);
  if (req.method === 'HEAD' || size === 0) {
    res.end();
    return;
  }
  const stream = createReadStream(file, { start, end, highWaterMark: 256 * 1024 });
  stream.on('error', () => res.destroy());
  res.on('close', () => stream.destroy());
  stream.pipe(res);
}

function sendIndex(res: ServerResponse, name: string): void {
  res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
  res.end(`<!doctype html><title>homeport demo</title><h1>A LAN service behind homeport</h1>
<p>This page came through the whitelist gate and TLS. <a href="${name}">${name.slice(1)}</a> supports Range requests.</p>
<video controls width="480" src="${name}"></video>\n`);
}

function sendText(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8' }).end(text);
}
