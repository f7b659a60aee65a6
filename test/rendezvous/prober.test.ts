import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import tls from 'node:tls';
import { probeReachability } from '../../src/rendezvous/prober.js';
import { ensureSelfSigned, type SelfSignedState } from '../../src/tls/selfsigned.js';
import { TLS_SERVER_OPTIONS } from '../../src/tls/server-options.js';

const scratch: string[] = [];
const servers: net.Server[] = [];
after(async () => {
  for (const server of servers) server.close();
  await Promise.all(scratch.map((dir) => rm(dir, { recursive: true, force: true })));
});

async function certificate(): Promise<SelfSignedState> {
  const dir = await mkdtemp(join(tmpdir(), 'hp-prober-'));
  scratch.push(dir);
  return ensureSelfSigned(join(dir, 'certs'), ['localhost', '127.0.0.1'], new Date());
}

async function listening<S extends net.Server>(server: S): Promise<number> {
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as net.AddressInfo).port;
}

/** A port nothing listens on: bound once, then released. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('probeReachability', { timeout: 20_000 }, () => {
  let agentCert: SelfSignedState;
  let otherCert: SelfSignedState;
  let tlsPort: number;
  let server: tls.Server;

  before(async () => {
    [agentCert, otherCert] = await Promise.all([certificate(), certificate()]);
    server = tls.createServer({ ...TLS_SERVER_OPTIONS, ...agentCert.material });
    tlsPort = await listening(server);
  });

  test('reachable when the TLS handshake shows the registered certificate', async () => {
    const handshake = once(server, 'secureConnection');
    const result = await probeReachability({ address: { ip: '127.0.0.1', port: tlsPort }, fingerprint: agentCert.leaf.fingerprint256 }, 2000);
    assert.deepEqual({ reachable: result.reachable, reason: result.reason }, { reachable: true, reason: undefined });
    assert.ok(Math.abs(result.checkedAt.getTime() - Date.now()) < 5000);
    await handshake; // the handshake really completed at the agent
  });

  test('the check leaves from the given source address (the one the agent connected to and admits)', async () => {
    const seen = once(server, 'secureConnection');
    const result = await probeReachability({ address: { ip: '127.0.0.1', port: tlsPort }, fingerprint: agentCert.leaf.fingerprint256, sourceIp: '127.0.0.2' }, 2000);
    assert.equal(result.reachable, true);
    const [socket] = await seen as [tls.TLSSocket];
    assert.equal(socket.remoteAddress, '127.0.0.2');
  });

  test('the fingerprint comparison ignores letter case', async () => {
    const result = await probeReachability({ address: { ip: '127.0.0.1', port: tlsPort }, fingerprint: agentCert.leaf.fingerprint256.toLowerCase() }, 2000);
    assert.equal(result.reachable, true);
  });

  test('"wrong certificate" when another certificate answers (another subscriber behind the CGNAT address)', async () => {
    const result = await probeReachability({ address: { ip: '127.0.0.1', port: tlsPort }, fingerprint: otherCert.leaf.fingerprint256 }, 2000);
    assert.equal(result.reachable, false);
    assert.equal(result.reason, 'wrong certificate');
    assert.ok(result.detail?.includes(agentCert.leaf.fingerprint256), result.detail);
  });

  test('"refused" on a closed port', async () => {
    const result = await probeReachability({ address: { ip: '127.0.0.1', port: await closedPort() }, fingerprint: agentCert.leaf.fingerprint256 }, 2000);
    assert.deepEqual({ reachable: result.reachable, reason: result.reason, detail: result.detail }, { reachable: false, reason: 'refused', detail: 'ECONNREFUSED' });
  });

  test('"timeout" against a listener that never completes TLS', async () => {
    const held: net.Socket[] = [];
    const silent = net.createServer((socket) => held.push(socket));
    const port = await listening(silent);
    const started = Date.now();
    const result = await probeReachability({ address: { ip: '127.0.0.1', port }, fingerprint: agentCert.leaf.fingerprint256 }, 300);
    const elapsed = Date.now() - started;
    assert.equal(result.reason, 'timeout');
    assert.ok(elapsed >= 290 && elapsed < 3000, `took ${elapsed} ms`);
    held.forEach((socket) => socket.destroy());
  });

  test('"reset" when the peer drops the connection, "tls error" when it speaks something else', async () => {
    const resetting = net.createServer((socket) => socket.resetAndDestroy());
    const reset = await probeReachability({ address: { ip: '127.0.0.1', port: await listening(resetting) }, fingerprint: agentCert.leaf.fingerprint256 }, 2000);
    assert.equal(reset.reason, 'reset');
    const plainHttp = net.createServer((socket) => socket.end('HTTP/1.1 400 Bad Request\r\n\r\n'));
    const garbled = await probeReachability({ address: { ip: '127.0.0.1', port: await listening(plainHttp) }, fingerprint: agentCert.leaf.fingerprint256 }, 2000);
    assert.equal(garbled.reason, 'tls error', garbled.detail);
  });
});
