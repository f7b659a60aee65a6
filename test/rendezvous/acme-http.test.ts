import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect } from 'node:net';
import { after, before, test } from 'node:test';
import { startAcmeHttp, type AcmeHttp } from '../../src/rendezvous/acme-http.js';
import { captureLogs } from '../helpers/logs.js';

const TOKEN = 'LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0';
const KEY_AUTH = `${TOKEN}.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI`;
const PATH = `/.well-known/acme-challenge/${TOKEN}`;

let acme: AcmeHttp;
const { logger, lines } = captureLogs();

before(async () => {
  acme = await startAcmeHttp({ host: '127.0.0.1', port: 0 }, logger);
  assert.ok(acme.store.set('home', 'home.example.com', TOKEN, KEY_AUTH).ok);
});
after(() => acme.close());

/** Writes `bytes` on a fresh connection and returns everything the server sends until it closes or `idleMs` pass. */
async function exchange(bytes: string | Buffer, idleMs = 1000): Promise<string> {
  const socket = connect({ host: '127.0.0.1', port: acme.port });
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  socket.on('error', () => undefined);
  socket.setTimeout(idleMs, () => socket.destroy());
  socket.write(bytes);
  await once(socket, 'close');
  return Buffer.concat(chunks).toString('latin1');
}

const get = (path: string, host: string | undefined): string =>
  `GET ${path} HTTP/1.1\r\n${host === undefined ? '' : `Host: ${host}\r\n`}Connection: close\r\n\r\n`;

test('the CA\'s request gets the key authorization as text/plain; other hosts, tokens and methods the same 404', async () => {
  const answered = await exchange(get(PATH, 'home.example.com'));
  assert.match(answered, /^HTTP\/1\.1 200 OK\r\n/);
  assert.match(answered, /\r\ncontent-type: text\/plain\r\n/i);
  assert.ok(answered.endsWith(`\r\n\r\n${KEY_AUTH}`), answered);
  assert.ok((await exchange(get(PATH, 'Home.Example.com:80'))).endsWith(KEY_AUTH), 'Host is compared without port and case');

  const notFound: [name: string, request: string][] = [
    ['another host', get(PATH, 'other.example.com')],
    ['no Host (HTTP/1.0)', `GET ${PATH} HTTP/1.0\r\n\r\n`],
    ['an IP as Host', get(PATH, '127.0.0.1')],
    ['an unknown token', get(`/.well-known/acme-challenge/${'x'.repeat(43)}`, 'home.example.com')],
    ['a token of the wrong shape', get('/.well-known/acme-challenge/..%2f..%2fetc%2fpasswd', 'home.example.com')],
    ['the root', get('/', 'home.example.com')],
    ['HEAD', `HEAD ${PATH} HTTP/1.1\r\nHost: home.example.com\r\nConnection: close\r\n\r\n`],
    ['POST with a body', `POST ${PATH} HTTP/1.1\r\nHost: home.example.com\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello`],
  ];
  for (const [name, request] of notFound) {
    const answer = await exchange(request);
    assert.match(answer, /^HTTP\/1\.[01] 404 Not Found\r\n/, name);
    assert.ok(answer.endsWith('\r\n\r\nnot found\n') || name === 'HEAD', `${name}: ${answer}`);
    assert.ok(!answer.includes(KEY_AUTH), name);
  }
});

test('garbage, oversized headers and broken framing get Node\'s own 4xx and a close; the listener keeps answering', async () => {
  const cases: [name: string, bytes: string | Buffer, status: RegExp][] = [
    ['binary garbage', Buffer.from([0x16, 0x03, 0x01, 0x00, 0xff, 0x00, 0x0d, 0x0a, 0x0d, 0x0a]), /^HTTP\/1\.1 400 Bad Request/],
    ['a TLS ClientHello start', Buffer.from('160301020001', 'hex'), /^(HTTP\/1\.1 400 Bad Request|$)/],
    ['a request line without version (Node takes it as HTTP/0.9)', 'GET /\r\n\r\n', /^HTTP\/1\.1 404 Not Found/],
    ['a header without colon', `GET ${PATH} HTTP/1.1\r\nHost home.example.com\r\n\r\n`, /^HTTP\/1\.1 400 Bad Request/],
    ['16 KiB of headers', `GET ${PATH} HTTP/1.1\r\nHost: home.example.com\r\nX-Pad: ${'p'.repeat(16_384)}\r\n\r\n`, /^HTTP\/1\.1 431 Request Header Fields Too Large/],
    ['a bad chunk', `POST / HTTP/1.1\r\nHost: home.example.com\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n`, /^HTTP\/1\.1 (400 Bad Request|404 Not Found)/],
    ['two Content-Lengths', `POST / HTTP/1.1\r\nHost: a.example\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab`, /^HTTP\/1\.1 400 Bad Request/],
  ];
  for (const [name, bytes, status] of cases) assert.match(await exchange(bytes), status, name);
  await Promise.all(Array.from({ length: 50 }, () => exchange(Buffer.from('\u0000'.repeat(64)), 500)));
  assert.ok((await exchange(get(PATH, 'home.example.com'))).endsWith(KEY_AUTH), 'still answering');
});

test('a client that sends its headers too slowly is cut off within seconds', { timeout: 15_000 }, async () => {
  const started = Date.now();
  const answer = await exchange(`GET ${PATH} HTTP/1.1\r\nHost: home.example.com\r\n`, 12_000);
  const tookMs = Date.now() - started;
  assert.ok(tookMs < 8_000, `closed after ${tookMs} ms`);
  assert.match(answer, /^(HTTP\/1\.1 408 Request Timeout|)/);
});

test('an answered challenge is one short info line with the name and the client; a 404 is debug only', async () => {
  lines.length = 0;
  await exchange(get(PATH, 'home.example.com'));
  await exchange(get(PATH, 'other.example.com'));
  const answered = lines.filter((line) => line.msg === 'http-01 challenge answered');
  assert.deepEqual(answered.map(({ level, hostname, client, component }) => ({ level, hostname, client, component })), [
    { level: 30, hostname: 'home.example.com', client: '127.0.0.1', component: 'acme-http' },
  ]);
  assert.ok(lines.every((line) => !JSON.stringify(line).includes(KEY_AUTH)), 'no key authorization in the log');
  assert.ok(lines.some((line) => line.level === 20 && line.why === 'no such challenge for this host'));
});
