import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import { connect as connectTcp, type AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { connect as connectTls, type TLSSocket } from 'node:tls';
import { startAgentFixture, type AgentFixture } from './helpers/agent-fixture.js';

let upstream: Server;
let fixture: AgentFixture;

before(async () => {
  upstream = createServer((_req, res) => res.end('hello'));
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  fixture = await startAgentFixture({ target: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}` });
});

after(async () => {
  await fixture?.close();
  upstream?.close();
});

/** A TLS connection to the agent from `localAddress`, resolved once the handshake is done. */
async function openTls(localAddress: string): Promise<TLSSocket> {
  const socket = connectTls({
    socket: connectTcp({ host: '127.0.0.1', port: fixture.agent.port, localAddress }),
    servername: 'localhost',
    ca: fixture.ca,
  });
  await once(socket, 'secureConnect');
  return socket;
}

/** One keep-alive request on an open connection; resolves with the raw response text. */
async function roundTrip(socket: TLSSocket): Promise<string> {
  socket.write('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n');
  const [chunk] = (await once(socket, 'data')) as [Buffer];
  return chunk.toString();
}

test('an open connection from an address whose entry expires is closed at the expiry', async () => {
  const added = await fixture.agent.whitelist.add({ cidr: '127.0.0.3/32', note: 'expiry e2e', ttlMs: 1000 });
  assert.ok(added.ok);
  const expiresMs = added.value.expires!.getTime();
  const socket = await openTls('127.0.0.3');
  socket.on('error', () => undefined); // the agent resets it
  const closed = once(socket, 'close').then(() => Date.now());
  assert.match(await roundTrip(socket), /^HTTP\/1\.1 200 /, 'the connection works before the expiry');
  const closedMs = await closed;
  const lateMs = closedMs - expiresMs;
  assert.ok(lateMs >= 0, `closed ${-lateMs} ms before the expiry`);
  assert.ok(lateMs < 1000, `closed ${lateMs} ms after the expiry`);
  assert.ok(fixture.logs.some((line) => line.msg === 'closed connections from addresses no longer whitelisted'));
});
