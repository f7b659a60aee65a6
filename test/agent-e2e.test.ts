import { test, before, after } from 'node:test';
import { freePort } from './helpers/ports.js';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { request as httpsRequest } from 'node:https';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { createServer, type Server } from 'node:http';
import { connect as connectTcp, type AddressInfo } from 'node:net';
import { connect as connectTls } from 'node:tls';
import { join } from 'node:path';
import { createMediaServer } from '../src/demo/media-server.js';
import { startAgentFixture, fetchTls, type AgentFixture } from './helpers/agent-fixture.js';
import { echoWebSocket, encodeFrame, readFrame } from './helpers/websocket.js';

const MOVIE = randomBytes(4 * 1024 * 1024 + 123);
let media: Server;
let uploads: Server;
let fixture: AgentFixture;

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

before(async () => {
  const moviePath = join(await mkdtemp(join(tmpdir(), 'hp-e2e-')), 'movie.bin');
  await writeFile(moviePath, MOVIE);
  media = createMediaServer(moviePath);
  uploads = createServer((req, res) => {
    if (req.url === '/upload/events') return sendEvents(res);
    const hash = createHash('sha256');
    let bytes = 0;
    req.on('data', (chunk: Buffer) => { hash.update(chunk); bytes += chunk.length; });
    req.on('end', () => res.end(JSON.stringify({ bytes, sha256: hash.digest('hex') })));
  });
  uploads.on('upgrade', echoWebSocket);
  const [mediaPort, uploadPort] = await Promise.all([listen(media), listen(uploads)]);
  const deadPort = await freePort();
  fixture = await startAgentFixture({
    target: `http://127.0.0.1:${mediaPort}`,
    extra: `
[[route]]
host = "*"
path = "/upload"
target = "http://127.0.0.1:${uploadPort}"
[[route]]
host = "*"
path = "/down"
target = "http://127.0.0.1:${deadPort}"
`,
  });
});

after(async () => {
  await fixture?.close();
  media?.close();
  uploads?.close();
});

test('GET through gate, TLS and router returns the upstream bytes, certificate verified by the local CA', async () => {
  const res = await fetchTls(fixture, '/movie.bin');
  assert.equal(res.status, 200);
  assert.equal(Number(res.headers['content-length']), MOVIE.length);
  assert.ok(res.body.equals(MOVIE));
});

test('Range requests answer 206 with byte-exact content; HEAD has headers and no body', async () => {
  const res = await fetchTls(fixture, '/movie.bin', { headers: { Range: 'bytes=1000000-1999999' } });
  assert.equal(res.status, 206);
  assert.equal(res.headers['content-range'], `bytes 1000000-1999999/${MOVIE.length}`);
  assert.ok(res.body.equals(MOVIE.subarray(1_000_000, 2_000_000)));
  const tail = await fetchTls(fixture, '/movie.bin', { headers: { Range: 'bytes=-100' } });
  assert.ok(tail.body.equals(MOVIE.subarray(MOVIE.length - 100)));
  const head = await fetchTls(fixture, '/movie.bin', { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(Number(head.headers['content-length']), MOVIE.length);
  assert.equal(head.body.length, 0);
});

test('an 8 MiB upload reaches the upstream intact through TLS', async () => {
  const body = randomBytes(8 * 1024 * 1024);
  const res = await fetchTls(fixture, '/upload/file.bin', { method: 'PUT', body });
  assert.equal(res.status, 200);
  assert.deepEqual(JSON.parse(res.body.toString()), { bytes: body.length, sha256: createHash('sha256').update(body).digest('hex') });
});

test('an upstream that is down gives a 502 page naming the route, and the agent keeps serving', async () => {
  const res = await fetchTls(fixture, '/down/x');
  assert.equal(res.status, 502);
  assert.match(res.body.toString(), /\/down/);
  assert.equal((await fetchTls(fixture, '/movie.bin', { method: 'HEAD' })).status, 200);
});

/** Server-Sent Events: three events 200 ms apart, each flushed on its own. */
function sendEvents(res: import('node:http').ServerResponse): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  let sent = 0;
  const timer = setInterval(() => {
    res.write(`data: event ${++sent}\n\n`);
    if (sent === 3) {
      clearInterval(timer);
      res.end();
    }
  }, 200);
}

test('a WebSocket upgrade through TLS echoes a frame; Server-Sent Events arrive one by one', async () => {
  const upgraded = await new Promise<{ status: number; socket: import('node:net').Socket; head: Buffer }>((resolve, reject) => {
    const req = httpsRequest({
      host: '127.0.0.1', port: fixture.agent.port, servername: 'localhost', ca: fixture.ca, path: '/upload/ws', agent: false,
      headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-key': randomBytes(16).toString('base64'), 'sec-websocket-version': '13' },
    });
    req.on('upgrade', (res, socket, head) => resolve({ status: res.statusCode ?? 0, socket, head }));
    req.on('response', (res) => reject(new Error(`no upgrade: ${res.statusCode}`)));
    req.on('error', reject);
    req.end();
  });
  assert.equal(upgraded.status, 101);
  upgraded.socket.write(encodeFrame(Buffer.from('over TLS'), true));
  assert.equal((await readFrame(upgraded.socket, upgraded.head)).toString(), 'echo: over TLS');
  upgraded.socket.destroy();

  const arrivals: number[] = [];
  await new Promise<void>((resolve, reject) => {
    httpsRequest({ host: '127.0.0.1', port: fixture.agent.port, servername: 'localhost', ca: fixture.ca, path: '/upload/events', agent: false }, (res) => {
      res.on('data', (chunk: Buffer) => { for (const line of chunk.toString().split('\n')) if (line.startsWith('data:')) arrivals.push(Date.now()); });
      res.on('end', resolve);
    }).on('error', reject).end();
  });
  assert.equal(arrivals.length, 3);
  assert.ok(arrivals[2]! - arrivals[0]! >= 300, 'events were not buffered until the end of the stream');
});

/** Connects from `localAddress` and reports whether any byte came back before the connection closed. */
function rawConnect(localAddress: string, port: number): Promise<{ bytes: number; closedMs: number }> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    let bytes = 0;
    const socket = connectTcp({ host: '127.0.0.1', port, localAddress });
    socket.on('connect', () => socket.write(Buffer.from([0x16, 0x03, 0x01, 0x00, 0x05, 1, 0, 0, 1, 0]))); // a TLS record header
    socket.on('data', (chunk: Buffer) => { bytes += chunk.length; });
    socket.on('error', () => undefined);
    socket.on('close', () => resolve({ bytes, closedMs: Date.now() - started }));
    setTimeout(() => { socket.destroy(); reject(new Error(`${localAddress}: connection still open after 3 s`)); }, 3000);
  });
}

function tlsHandshake(localAddress: string, port: number, ca: string): Promise<'secure' | string> {
  return new Promise((resolve) => {
    const socket = connectTls({ socket: connectTcp({ host: '127.0.0.1', port, localAddress }), servername: 'localhost', ca });
    socket.on('secureConnect', () => { socket.destroy(); resolve('secure'); });
    socket.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
  });
}

test('a client from 127.0.0.2 (outside the whitelist) is closed before any TLS byte; 127.0.0.1 gets through', async () => {
  const port = fixture.agent.port;
  const denied = await rawConnect('127.0.0.2', port);
  assert.equal(denied.bytes, 0, 'the server must not send a single byte to a denied client');
  assert.ok(denied.closedMs < 1000);
  assert.notEqual(await tlsHandshake('127.0.0.2', port, fixture.ca), 'secure');
  assert.equal(await tlsHandshake('127.0.0.1', port, fixture.ca), 'secure');
  assert.ok(fixture.logs.some((line) => JSON.stringify(line).includes('127.0.0.2')), 'the denial is logged with the address');
});

test('whitelist changes apply live: 127.0.0.2 is let in after adding and refused after removing', async () => {
  const port = fixture.agent.port;
  await fixture.agent.whitelist.add({ cidr: '127.0.0.2/32', note: 'e2e' });
  assert.equal(await tlsHandshake('127.0.0.2', port, fixture.ca), 'secure');
  const open = connectTls({ socket: connectTcp({ host: '127.0.0.1', port, localAddress: '127.0.0.2' }), servername: 'localhost', ca: fixture.ca });
  await new Promise((resolve) => open.once('secureConnect', resolve));
  const cutOff = new Promise((resolve) => open.once('close', resolve));
  open.on('error', () => undefined);
  await fixture.agent.whitelist.remove('127.0.0.2/32');
  assert.notEqual(await tlsHandshake('127.0.0.2', port, fixture.ca), 'secure');
  await cutOff; // an open connection from the removed address is closed too
});

test('one JSON access-log line per request with the socket address, never a spoofed header', async () => {
  await fetchTls(fixture, '/movie.bin?token=secret', { method: 'HEAD', headers: { 'X-Forwarded-For': '8.8.8.8' } });
  const line = fixture.logs.findLast((entry) => entry.method === 'HEAD');
  assert.ok(line, 'an access-log line');
  assert.equal(line.status, 200);
  assert.equal(line.path, '/movie.bin');
  assert.doesNotMatch(JSON.stringify(line), /8\.8\.8\.8|token=secret/);
  assert.match(JSON.stringify(line), /127\.0\.0\.1/);
});

test('a request target with a fragment is refused, never forwarded with the fragment dropped', async () => {
  const res = await fetchTls(fixture, '/upload/folder/#ment', { method: 'DELETE' });
  assert.equal(res.status, 400);
  assert.match(res.body.toString(), /fragment/);
});
