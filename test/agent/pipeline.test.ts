import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { once } from 'node:events';
import { connect as netConnect, createServer, Socket, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { pino } from 'pino';
import { clientAddressOf } from '../../src/agent/client-address.js';
import { createConnectionLimits, type ConnectionLimits } from '../../src/agent/connection-limits.js';
import { Pipeline } from '../../src/agent/pipeline.js';
import { DEFAULT_TIMEOUTS } from '../../src/config/agent-types.js';
import { ensureSelfSigned } from '../../src/tls/selfsigned.js';
import { createSecureContext } from '../../src/tls/server-options.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The pipeline as a path uses it: a socket and the true client address go in; a whitelisted client gets
 * TLS and HTTP with its own address, anyone else a closed door without a TLS byte.
 */

const ALLOWED = '198.51.100.7';
/** Small, so a test can reach it: connections open at once from one address. */
const PER_ADDRESS = 3;
let dir: string;
let listener: Server;
let pipeline: Pipeline;
let limits: ConnectionLimits;
let ca: string;
/** The client address the test claims for the next connection (a path such as a relay passes it along). */
let nextClient = ALLOWED;
let allowed = new Set([ALLOWED]);

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hp-pipeline-'));
  const tls = await ensureSelfSigned(dir, ['localhost'], new Date());
  ca = tls.ca.toString();
  limits = createConnectionLimits({ connectionsPerAddress: PER_ADDRESS, connections: 100 }, pino({ level: 'silent' }));
  pipeline = new Pipeline({
    gate: { admit: (address) => address !== undefined && allowed.has(address) },
    limits,
    secureContext: createSecureContext(tls.material),
    handlers: {
      request: (req, res) => res.end(`hello ${clientAddressOf(req.socket)}`),
      upgrade: (_req, socket) => socket.destroy(),
    },
    timeouts: DEFAULT_TIMEOUTS,
    logger: pino({ level: 'silent' }),
  });
  listener = createServer((socket) => pipeline.accept(socket, nextClient));
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
});

after(async () => {
  pipeline.close();
  await new Promise((resolve) => listener.close(resolve));
  await rm(dir, { recursive: true, force: true });
});

function open(): Promise<TLSSocket> {
  const { port } = listener.address() as AddressInfo;
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost', ca }, () => resolve(socket));
    socket.once('error', reject);
  });
}

function get(socket: TLSSocket): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      text += chunk;
      if (/\r\n\r\nhello \S+$/.test(text)) resolve(text);
    });
    socket.once('error', reject);
    socket.write('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n');
  });
}

test('a whitelisted client gets TLS with the agent\'s certificate and an HTTP answer that knows its true address', async () => {
  nextClient = ALLOWED;
  const socket = await open();
  try {
    assert.equal(socket.authorized, true, 'the certificate verifies against the local CA');
    const answer = await get(socket);
    assert.match(answer, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(answer, new RegExp(`hello ${ALLOWED.replaceAll('.', '\\.')}$`), 'the handler sees the address the path passed in, not 127.0.0.1');
  } finally {
    socket.destroy();
  }
});

/** Connects, starts a ClientHello and counts the bytes the pipeline sends back before the connection closes. */
function bytesBeforeClose(): Promise<number> {
  const { port } = listener.address() as AddressInfo;
  return new Promise<number>((resolve) => {
    let bytes = 0;
    const socket = netConnect({ host: '127.0.0.1', port }, () => socket.write('\x16\x03\x01 a ClientHello would start so'));
    socket.on('data', (chunk: Buffer) => { bytes += chunk.length; });
    socket.on('error', () => undefined); // the reset
    socket.once('close', () => resolve(bytes));
  });
}

test('a client the gate refuses is dropped before a single TLS byte', async () => {
  nextClient = '203.0.113.99';
  assert.equal(await bytesBeforeClose(), 0);
});

test('past limits.connectionsPerAddress an address is dropped before TLS; a closed connection frees its place', async () => {
  nextClient = ALLOWED;
  const held = await Promise.all(Array.from({ length: PER_ADDRESS }, open));
  try {
    assert.equal(await bytesBeforeClose(), 0, 'one more from the same address: no TLS byte');
    held.pop()!.destroy();
    const again = await waitFor('a place to free up', () => open().catch(() => undefined), 2_000);
    held.push(again);
    assert.match(await get(again), /hello 198\.51\.100\.7$/);
  } finally {
    for (const socket of held) socket.destroy();
    await waitFor('the pipeline to see them closed', () => limits.stats().open === 0);
  }
});

test('dropRevoked cuts off an open connection whose address the whitelist no longer allows, and only that one', async () => {
  nextClient = ALLOWED;
  const kept = await open();
  allowed = new Set([ALLOWED, '192.0.2.1']);
  nextClient = '192.0.2.1';
  const revoked = await open();
  try {
    await get(revoked);
    await get(kept);
    allowed = new Set([ALLOWED]);
    assert.equal(pipeline.dropRevoked((address) => allowed.has(address)), 1);
    await waitFor('the revoked connection to close', () => revoked.destroyed || revoked.readyState === 'closed');
    assert.match(await get(kept), /hello 198\.51\.100\.7$/, 'the allowed client is still served on its connection');
  } finally {
    kept.destroy();
    revoked.destroy();
  }
});

test('a socket that closed before a path handed it over takes no place of the limits', async () => {
  const socket = new Socket();
  socket.destroy();
  await once(socket, 'close');
  const before = limits.stats().open; // an earlier test's connection may still be closing
  pipeline.accept(socket, ALLOWED);
  assert.equal(limits.stats().open, before);
});
