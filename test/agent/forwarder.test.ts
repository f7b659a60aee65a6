import { test, before, after } from 'node:test';
import { freePort } from '../helpers/ports.js';
import { captureLogs, type LogLine } from '../helpers/logs.js';
import { echoWebSocket, encodeFrame, readFrame } from '../helpers/websocket.js';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, request, type IncomingHttpHeaders, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { connect, createServer as createTcpServer, type AddressInfo, type Server as TcpServer } from 'node:net';
import { Readable, type Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { generate } from 'selfsigned';
import { DEFAULT_TIMEOUTS, type RouteConfig } from '../../src/config/agent-types.js';
import { compileRoutes } from '../../src/agent/router.js';
import { createForwarder, type Forwarder } from '../../src/agent/forwarder.js';
import { createHttpHandlers } from '../../src/agent/http-handler.js';
import { waitFor } from '../helpers/wait.js';

// ---------------------------------------------------------------------------------------------------
// Loopback fixtures: upstream services written here, and the agent's HTTP server with our handlers.

const FILE = randomBytes(2 * 1024 * 1024 + 77);
const CONNECT_TIMEOUT_MS = 300;
const RESPONSE_TIMEOUT_MS = 300;
/** A forwarding bug shows up as a stalled stream: fail the test instead of hanging the run. */
const NO_HANG = { timeout: 15_000 };


/** Lets the SSE test pace the upstream: it sends the next event only after the client saw the last. */
class Pacer {
  private readonly waiting: Array<() => void> = [];
  next(): Promise<void> {
    return new Promise((resolve) => this.waiting.push(resolve));
  }
  ack(): void {
    this.waiting.shift()?.();
  }
}

interface Fixture {
  proxyPort: number;
  logs: LogLine[];
  logger: Logger;
  servers: Array<Server | TcpServer>;
  forwarders: Forwarder[];
  sse: Pacer;
  /** Resolves when the upstream socket of the last /endless or /upload-watched request closed. */
  watched: { socketClosed?: Promise<void> };
  parked: ServerResponse[];
}

let fx: Fixture;

function listen(server: Server | TcpServer): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

function route(host: string, path: string, target: string, insecure = false): RouteConfig {
  return { host, path, target: new URL(target), insecure };
}

/** Serves FILE with single-range support, like a media server. */
function serveFile(req: IncomingMessage, res: ServerResponse): void {
  const range = /^bytes=(\d*)-(\d*)$/.exec(req.headers.range ?? '');
  let start = 0;
  let end = FILE.length - 1;
  if (range) {
    start = range[1] === '' ? FILE.length - Number(range[2]) : Number(range[1]);
    end = range[1] !== '' && range[2] !== '' ? Number(range[2]) : end;
    res.statusCode = 206;
    res.setHeader('content-range', `bytes ${start}-${end}/${FILE.length}`);
  }
  res.setHeader('accept-ranges', 'bytes');
  res.setHeader('content-length', end - start + 1);
  res.end(req.method === 'HEAD' ? undefined : FILE.subarray(start, end + 1));
}

function hashBody(req: IncomingMessage, res: ServerResponse): void {
  const hash = createHash('sha256');
  let bytes = 0;
  req.on('data', (chunk: Buffer) => {
    hash.update(chunk);
    bytes += chunk.length;
  });
  req.on('end', () => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ bytes, sha256: hash.digest('hex'), te: req.headers['transfer-encoding'] ?? null, expect: req.headers.expect ?? null }));
  });
}

function mainUpstream(fixture: Pick<Fixture, 'sse' | 'watched'>): RequestListener {
  return (req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path === '/file') return serveFile(req, res);
    if (path === '/upload') return hashBody(req, res);
    if (path === '/headers') {
      res.setHeader('set-cookie', ['a=1; Path=/', 'b=2; Path=/']);
      res.setHeader('x-hop', 'must not pass');
      res.setHeader('connection', 'keep-alive, X-Hop');
      res.setHeader('x-upstream-peer-port', String(req.socket.remotePort));
      res.end(JSON.stringify(req.headers));
      return;
    }
    if (path === '/sse') {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      void (async () => {
        for (let event = 1; event <= 3; event++) {
          res.write(`data: ${event}\n\n`);
          await fixture.sse.next(); // the next event only after the client saw this one
          await new Promise((resolve) => setTimeout(resolve, RESPONSE_TIMEOUT_MS + 200)); // longer than the response timeout
        }
        res.end();
      })();
      return;
    }
    if (path === '/endless' || path === '/upload-watched') {
      fixture.watched.socketClosed = new Promise((resolve) => req.socket.once('close', () => resolve()));
    }
    if (path === '/upload-watched') return hashBody(req, res);
    if (path === '/endless') {
      const chunk = Buffer.alloc(64 * 1024, 1);
      const pump = (): void => {
        while (!res.destroyed && res.write(chunk));
      };
      res.on('drain', pump);
      pump();
      return;
    }
    if (path === '/truncate') {
      res.writeHead(200, { 'content-length': 1024 * 1024 });
      res.write(Buffer.alloc(64 * 1024), () => req.socket.destroy());
      return;
    }
    res.statusCode = 404;
    res.end('upstream 404');
  };
}

/** The agent's HTTP layer as the pipeline mounts it, on plain HTTP. */
async function startProxy(routes: RouteConfig[], logger: Logger): Promise<{ server: Server; port: number; forwarder: Forwarder }> {
  const forwarder = createForwarder({
    timeouts: { ...DEFAULT_TIMEOUTS, upstreamConnectMs: CONNECT_TIMEOUT_MS, upstreamResponseMs: RESPONSE_TIMEOUT_MS },
    logger,
  });
  const handlers = createHttpHandlers({ router: compileRoutes(routes), forwarder, logger });
  const server = createServer({ requestTimeout: 0 }, handlers.request);
  server.on('upgrade', handlers.upgrade);
  return { server, port: await listen(server), forwarder };
}

before(async () => {
  const hooks = { sse: new Pacer(), watched: {} as Fixture['watched'] };
  const parked: ServerResponse[] = [];

  const main = createServer(mainUpstream(hooks));
  main.keepAliveTimeout = 7_000; // its "Keep-Alive: timeout=7" must not reach the client
  main.on('upgrade', echoWebSocket);
  const slow = createServer((_req, res) => parked.push(res)); // accepts, never answers
  const silent = createTcpServer((socket) => socket.on('error', () => {})); // TCP accept, never a TLS byte
  // Node's client parser accepts this reason phrase, Node's server refuses to send it.
  const garbled = createTcpServer((socket) => socket.once('data', () => socket.end('HTTP/1.1 200 O\x01K\r\nContent-Length: 2\r\n\r\nok')));
  const pems = await generate([{ name: 'commonName', value: 'localhost' }], { keyType: 'ec', algorithm: 'sha256' });
  const selfSigned = createHttpsServer({ key: pems.private, cert: pems.cert }, (_req, res) => res.end('tls upstream'));

  const [mainPort, slowPort, silentPort, garbledPort, tlsPort, down] = await Promise.all([
    listen(main), listen(slow), listen(silent), listen(garbled), listen(selfSigned), freePort(),
  ]);
  const routes = [
    route('*', '/', `http://127.0.0.1:${mainPort}`),
    route('*', '/down', `http://127.0.0.1:${down}`),
    route('slow.test', '/', `http://127.0.0.1:${slowPort}`),
    route('silent.test', '/', `https://127.0.0.1:${silentPort}`),
    route('garbled.test', '/', `http://127.0.0.1:${garbledPort}`),
    route('insecure.test', '/', `https://127.0.0.1:${tlsPort}`, true),
    route('strict.test', '/', `https://127.0.0.1:${tlsPort}`, false),
  ];
  const { lines: logs, logger } = captureLogs('info');
  const proxy = await startProxy(routes, logger);
  fx = {
    proxyPort: proxy.port,
    logs,
    logger,
    servers: [proxy.server, main, slow, silent, garbled, selfSigned],
    forwarders: [proxy.forwarder],
    sse: hooks.sse,
    watched: hooks.watched,
    parked,
  };
});

after(() => {
  for (const res of fx.parked) res.destroy();
  for (const server of fx.servers) {
    (server as Server).closeAllConnections?.();
    server.close();
  }
  for (const forwarder of fx.forwarders) forwarder.close();
});

// ---------------------------------------------------------------------------------------------------
// Client helpers

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

interface Call {
  method?: string;
  headers?: Record<string, string | number>;
  body?: Buffer | Readable;
}

/** One request to the proxy on its own connection (agent: false sends "Connection: close"). */
function call(path: string, { method = 'GET', headers = {}, body }: Call = {}, port = fx.proxyPort): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    const send = (): void => {
      if (body instanceof Readable) body.pipe(req);
      else req.end(body);
    };
    if (String(headers.expect ?? headers.Expect ?? '').toLowerCase() === '100-continue') req.once('continue', send);
    else send();
  });
}

function accessLine(predicate: (line: LogLine) => boolean): Promise<LogLine> {
  return waitFor('the access-log line', () => fx.logs.find((line) => line.msg === 'request' && predicate(line)));
}

// ---------------------------------------------------------------------------------------------------
// Plain forwarding

test('GET returns the upstream status, body and end-to-end headers', NO_HANG, async () => {
  const res = await call('/file');
  assert.equal(res.status, 200);
  assert.equal(Number(res.headers['content-length']), FILE.length);
  assert.ok(res.body.equals(FILE));
});

test('Range requests answer 206 with byte-exact content', NO_HANG, async () => {
  const middle = await call('/file', { headers: { range: 'bytes=1000000-1999999' } });
  assert.equal(middle.status, 206);
  assert.equal(middle.headers['content-range'], `bytes 1000000-1999999/${FILE.length}`);
  assert.ok(middle.body.equals(FILE.subarray(1_000_000, 2_000_000)));
  const tail = await call('/file', { headers: { range: 'bytes=-100' } });
  assert.equal(tail.status, 206);
  assert.ok(tail.body.equals(FILE.subarray(FILE.length - 100)));
});

test('HEAD has the headers and no body', NO_HANG, async () => {
  const res = await call('/file', { method: 'HEAD' });
  assert.equal(res.status, 200);
  assert.equal(Number(res.headers['content-length']), FILE.length);
  assert.equal(res.body.length, 0);
});

test('a chunked upload of unknown length arrives chunked and intact', NO_HANG, async () => {
  const parts = [randomBytes(1000), randomBytes(70_000), randomBytes(3)];
  const res = await call('/upload', { method: 'POST', body: Readable.from(parts) });
  const seen = JSON.parse(res.body.toString()) as { bytes: number; sha256: string; te: string };
  assert.equal(res.status, 200);
  assert.equal(seen.te, 'chunked');
  assert.equal(seen.bytes, 71_003);
  assert.equal(seen.sha256, createHash('sha256').update(Buffer.concat(parts)).digest('hex'));
});

test('a 64 MiB WebDAV-style PUT with Expect: 100-continue streams through intact', NO_HANG, async () => {
  const size = 64 * 1024 * 1024;
  const hash = createHash('sha256');
  const body = Readable.from((function* () {
    for (let sent = 0; sent < size; sent += 1024 * 1024) {
      const chunk = randomBytes(1024 * 1024);
      hash.update(chunk);
      yield chunk;
    }
  })());
  const res = await call('/upload', { method: 'PUT', headers: { 'content-length': size, expect: '100-continue' }, body });
  const seen = JSON.parse(res.body.toString()) as { bytes: number; sha256: string; expect: string | null };
  assert.equal(res.status, 200);
  assert.equal(seen.bytes, size);
  assert.equal(seen.sha256, hash.digest('hex'));
  assert.equal(seen.expect, null, 'the proxy answered 100-continue itself');
});

test('Server-Sent Events arrive one by one while the stream is open, not cut by the response timeout', NO_HANG, async () => {
  const events = await new Promise<string[]>((resolve, reject) => {
    const seen: string[] = [];
    const req = request({ host: '127.0.0.1', port: fx.proxyPort, path: '/sse', agent: false }, (res) => {
      assert.equal(res.headers['content-type'], 'text/event-stream');
      let text = '';
      res.on('data', (chunk: Buffer) => {
        text += chunk.toString();
        for (const match of text.matchAll(/data: (\d)\n\n/g)) {
          if (seen.includes(match[1]!)) continue;
          assert.equal(res.complete, false, 'the event arrived before the stream ended');
          seen.push(match[1]!);
          fx.sse.ack(); // the upstream sends the next event only now: a buffering proxy would stall here
        }
      });
      res.on('end', () => resolve(seen));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
  assert.deepEqual(events, ['1', '2', '3']);
});

// ---------------------------------------------------------------------------------------------------
// Headers

test('spoofed forwarding headers are replaced by the real client address; hop-by-hop headers dropped', NO_HANG, async () => {
  const res = await call('/headers', {
    headers: {
      host: 'nas.example.com',
      'x-forwarded-for': '6.6.6.6',
      'x-forwarded-host': 'evil.example',
      'x-forwarded-proto': 'http',
      'x-forwarded-port': '1',
      forwarded: 'for=6.6.6.6;proto=http',
      'x-real-ip': '6.6.6.6',
      'proxy-authorization': 'Basic c2VjcmV0',
      connection: 'close, X-Private',
      'x-private': 'for this hop only',
      te: 'trailers',
    },
  });
  const seen = JSON.parse(res.body.toString()) as IncomingHttpHeaders;
  assert.equal(seen['x-forwarded-for'], '127.0.0.1');
  assert.equal(seen['x-forwarded-proto'], 'https');
  assert.equal(seen['x-forwarded-host'], 'nas.example.com');
  assert.equal(seen.forwarded, 'for=127.0.0.1;proto=https;host="nas.example.com"');
  assert.equal(seen['x-real-ip'], '127.0.0.1');
  assert.equal(seen.host, 'nas.example.com', 'the original Host reaches the service');
  for (const gone of ['x-forwarded-port', 'proxy-authorization', 'x-private', 'te']) assert.equal(seen[gone], undefined, gone);
  assert.equal(seen.connection, 'keep-alive', 'the upstream connection is pooled whatever the client asked');

  assert.deepEqual(res.headers['set-cookie'], ['a=1; Path=/', 'b=2; Path=/']);
  assert.equal(res.headers['x-hop'], undefined, 'a header the upstream listed in Connection stays on its hop');
  assert.equal(res.headers['keep-alive'], undefined, "the upstream's Keep-Alive is not the client's");
  assert.equal(res.headers.connection, 'close', 'the client asked to close and Node honours it');
});

test('upstream connections are kept alive and reused across client connections', NO_HANG, async () => {
  const first = await call('/headers');
  const second = await call('/headers');
  assert.equal(first.headers['x-upstream-peer-port'], second.headers['x-upstream-peer-port']);
});

// ---------------------------------------------------------------------------------------------------
// WebSocket

function openWebSocket(path: string, port = fx.proxyPort): Promise<{ res: IncomingMessage; socket?: Duplex; head?: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request({
      host: '127.0.0.1',
      port,
      path,
      agent: false,
      headers: {
        connection: 'keep-alive, Upgrade', // as Firefox sends it
        upgrade: 'websocket',
        'sec-websocket-key': randomBytes(16).toString('base64'),
        'sec-websocket-version': '13',
        'x-forwarded-for': '6.6.6.6',
      },
    });
    req.on('upgrade', (res, socket, head) => resolve({ res, socket, head }));
    req.on('response', (res) => resolve({ res }));
    req.on('error', reject);
    req.end();
  });
}

test('a WebSocket upgrade is forwarded and echoes a frame; the upstream sees the real address', NO_HANG, async () => {
  const { res, socket, head } = await openWebSocket('/ws');
  assert.equal(res.statusCode, 101);
  assert.equal(res.headers['x-seen-forwarded-for'], '127.0.0.1');
  socket!.write(encodeFrame(Buffer.from('hello'), true));
  const reply = await readFrame(socket!, head!);
  assert.equal(reply.toString(), 'echo: hello');
  socket!.destroy();
  const line = await accessLine((l) => l.path === '/ws');
  assert.equal(line.status, 101);
});

test('a WebSocket to an upstream that is down gets a 502 page and a closed socket', NO_HANG, async () => {
  const { res } = await openWebSocket('/down/ws');
  assert.equal(res.statusCode, 502);
  const body = await new Promise<string>((resolve) => {
    let text = '';
    res.on('data', (chunk: Buffer) => (text += chunk.toString()));
    res.on('end', () => resolve(text));
  });
  assert.match(body, /\*\/down/);
});

// ---------------------------------------------------------------------------------------------------
// Failures

test('an upstream that is down gives a short 502 page naming the route', NO_HANG, async () => {
  const res = await call('/down/anything');
  assert.equal(res.status, 502);
  assert.match(res.headers['content-type'] ?? '', /^text\/html/);
  assert.match(res.body.toString(), /502 Bad Gateway/);
  assert.match(res.body.toString(), /route \*\/down/);
  assert.ok(fx.logs.some((line) => line.msg === 'upstream failed' && line.route === '*/down' && line.code === 'ECONNREFUSED'));
});

test('an upstream that never starts its answer gives a 504 after the response timeout', NO_HANG, async () => {
  const res = await call('/', { headers: { host: 'slow.test' } });
  assert.equal(res.status, 504);
  assert.match(res.body.toString(), /route slow\.test\//);
});

test('an upstream whose TLS connection never completes gives a 504 after the connect timeout', NO_HANG, async () => {
  const res = await call('/', { headers: { host: 'silent.test' } });
  assert.equal(res.status, 504);
  assert.match(res.body.toString(), /silent\.test\//);
  const warning = fx.logs.find((line) => line.msg === 'upstream failed' && line.route === 'silent.test/');
  assert.match(String(warning?.err), /no connection to the upstream within/);
});

test('insecure routes accept a self-signed upstream certificate; other routes refuse it', NO_HANG, async () => {
  const insecure = await call('/', { headers: { host: 'insecure.test' } });
  assert.equal(insecure.status, 200);
  assert.equal(insecure.body.toString(), 'tls upstream');
  const strict = await call('/', { headers: { host: 'strict.test' } });
  assert.equal(strict.status, 502);
});

test('an upstream that dies mid-body cuts the client response instead of leaving it hanging', NO_HANG, async () => {
  const outcome = await new Promise<{ complete: boolean; received: number }>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: fx.proxyPort, path: '/truncate', agent: false }, (res) => {
      let received = 0;
      res.on('data', (chunk: Buffer) => (received += chunk.length));
      res.on('error', () => {}); // "aborted" is the expected outcome
      res.on('close', () => resolve({ complete: res.complete, received }));
    });
    req.on('error', reject);
    req.end();
  });
  assert.equal(outcome.complete, false);
  assert.ok(outcome.received < 1024 * 1024);
  const ok = await call('/file', { method: 'HEAD' });
  assert.equal(ok.status, 200, 'the proxy is still serving');
});

test('a response Node would refuse to send becomes a 502, and the proxy keeps serving', NO_HANG, async () => {
  const res = await call('/', { headers: { host: 'garbled.test' } });
  assert.equal(res.status, 502);
  assert.equal((await call('/file', { method: 'HEAD' })).status, 200);
});

test('the forwarder answers 502 instead of throwing on a request target it cannot forward', NO_HANG, async () => {
  // The router never sends such a target here (it matches no route); a caller that does must not crash the agent.
  const forwarder = createForwarder({ timeouts: DEFAULT_TIMEOUTS, logger: fx.logger });
  const target = { host: '*', path: '/', target: new URL('http://127.0.0.1:9'), insecure: false, label: '*/' };
  const server = createServer((req, res) => forwarder.web(req, res, target, '127.0.0.1'));
  fx.servers.push(server);
  fx.forwarders.push(forwarder);
  const port = await listen(server);
  const statusLine = await new Promise<string>((resolve) => {
    const socket = connect(port, '127.0.0.1', () => socket.write('GET http://[bad HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n'));
    let answer = '';
    socket.on('data', (chunk: Buffer) => (answer += chunk.toString()));
    socket.on('close', () => resolve(answer.split('\r\n')[0]!));
  });
  assert.equal(statusLine, 'HTTP/1.1 502 Bad Gateway');
});

test('a client that aborts a download releases the upstream connection within 2 s', NO_HANG, async () => {
  const abortedAt = await new Promise<number>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: fx.proxyPort, path: '/endless', agent: false }, (res) => {
      res.once('data', () => {
        req.destroy();
        resolve(Date.now());
      });
    });
    req.on('error', () => {}); // destroying our own request
    req.on('close', () => {});
    req.end();
    setTimeout(() => reject(new Error('no data from /endless')), 2_000).unref();
  });
  await upstreamReleasedWithin2s(abortedAt);
  const line = await accessLine((l) => l.path === '/endless');
  assert.equal(line.aborted, true);
});

test('a client that aborts an upload releases the upstream connection within 2 s', NO_HANG, async () => {
  const abortedAt = await new Promise<number>((resolve) => {
    const req = request({ host: '127.0.0.1', port: fx.proxyPort, path: '/upload-watched', method: 'PUT', agent: false, headers: { 'content-length': 64 * 1024 * 1024 } });
    req.on('error', () => {}); // destroying our own request
    req.write(randomBytes(1024 * 1024), () => {
      setTimeout(() => {
        req.destroy();
        resolve(Date.now());
      }, 100);
    });
  });
  await upstreamReleasedWithin2s(abortedAt);
});

async function upstreamReleasedWithin2s(abortedAt: number): Promise<void> {
  const closed = fx.watched.socketClosed;
  assert.ok(closed, 'the upstream got the request');
  await Promise.race([
    closed,
    new Promise((_resolve, reject) => setTimeout(() => reject(new Error('upstream socket still open 2 s after the client left')), 2_000).unref()),
  ]);
  assert.ok(Date.now() - abortedAt < 2_000);
  fx.watched.socketClosed = undefined;
}

// ---------------------------------------------------------------------------------------------------
// Access log

test('one access-log line per request with the fields a user needs, and no query string', NO_HANG, async () => {
  await call('/file?api_key=secret-token', { headers: { host: 'nas.example.com' } });
  const line = await accessLine((l) => l.path === '/file' && l.host === 'nas.example.com');
  assert.equal(line.ip, '127.0.0.1');
  assert.equal(line.method, 'GET');
  assert.equal(line.status, 200);
  assert.equal(line.route, '*/');
  assert.ok((line.bytes as number) > FILE.length, 'body plus headers');
  assert.equal(typeof line.ms, 'number');
  assert.equal(typeof line.time, 'string');
  assert.equal(line.aborted, undefined);
  assert.doesNotMatch(JSON.stringify(fx.logs), /secret-token/);
});

test('without a matching route: a 404 page, also for an upgrade, and a log line without route', NO_HANG, async () => {
  const proxy = await startProxy([route('nas.example.com', '/media', 'http://127.0.0.1:1')], fx.logger);
  fx.servers.push(proxy.server);
  fx.forwarders.push(proxy.forwarder);
  const res = await call('/media/x', { headers: { host: 'other.example.com' } }, proxy.port);
  assert.equal(res.status, 404);
  assert.match(res.body.toString(), /404 Not Found/);
  const line = await accessLine((l) => l.path === '/media/x' && l.host === 'other.example.com');
  assert.equal(line.status, 404);
  assert.equal('route' in line, false);
  const upgrade = await openWebSocket('/elsewhere', proxy.port);
  assert.equal(upgrade.res.statusCode, 404);
  upgrade.res.resume();
});
