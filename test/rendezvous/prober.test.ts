import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import tls from 'node:tls';
import { pino } from 'pino';
import { probeReachability, ProbeScheduler, type ProbeResult, type ProbeTarget } from '../../src/rendezvous/prober.js';
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

describe('ProbeScheduler', { timeout: 20_000 }, () => {
  const target = (port: number): ProbeTarget => ({ address: { ip: '127.0.0.1', port }, fingerprint: 'AA' });
  const logger = pino({ level: 'silent' });

  test('checks at once, then again every interval, and stops when told', async () => {
    const checks: number[] = [];
    const results: string[] = [];
    const scheduler = new ProbeScheduler({
      intervalMs: 100, timeoutMs: 50, logger,
      probe: async (probed) => { checks.push(probed.address.port); return { reachable: true, checkedAt: new Date() }; },
      onResult: (name, probed) => results.push(`${name}@${probed.address.port}`),
    });
    scheduler.checkNow('home', target(1));
    await new Promise((resolve) => setTimeout(resolve, 350));
    assert.ok(checks.length >= 3 && checks.length <= 5, `${checks.length} checks in 350 ms at a 100 ms interval`);
    assert.deepEqual(new Set(results), new Set(['home@1']));
    scheduler.stop('home');
    const stoppedAt = checks.length;
    await new Promise((resolve) => setTimeout(resolve, 250));
    assert.equal(checks.length, stoppedAt, 'no check after stop');
    assert.equal(scheduler.watching, 0);
    scheduler.close();
  });

  test('after a failure the next check comes sooner, backing off towards the interval; success restores the interval', async () => {
    const checkedAt: number[] = [];
    let reachable = false;
    const scheduler = new ProbeScheduler({
      intervalMs: 10_000, retryMs: 40, timeoutMs: 50, logger,
      probe: async () => { checkedAt.push(Date.now()); return { reachable, ...(reachable ? {} : { reason: 'refused' as const }), checkedAt: new Date() }; },
      onResult: () => undefined,
    });
    scheduler.checkNow('home', target(1));
    await new Promise((resolve) => setTimeout(resolve, 330)); // checks at about 0, 40, 120, 280 ms
    const gaps = checkedAt.slice(1).map((at, i) => at - checkedAt[i]!);
    assert.ok(checkedAt.length >= 3 && checkedAt.length <= 5, `${checkedAt.length} checks`);
    assert.ok(gaps.every((gap, i) => i === 0 || gap > gaps[i - 1]!), `gaps grow: ${gaps.join(', ')}`);
    assert.ok(gaps[0]! >= 35 && gaps[0]! < 1000, `first retry after ${gaps[0]} ms`);
    reachable = true;
    await new Promise((resolve) => setTimeout(resolve, 400)); // the next retry succeeds; then 10 s of quiet
    const afterSuccess = checkedAt.length;
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(checkedAt.length, afterSuccess, 'back to the full interval after a success');
    scheduler.close();
  });

  test('a replaced target is checked no more: only the new one keeps its interval', async () => {
    const checks: number[] = [];
    const scheduler = new ProbeScheduler({
      intervalMs: 100, timeoutMs: 50, logger,
      probe: async (probed) => { checks.push(probed.address.port); return { reachable: true, checkedAt: new Date() }; },
      onResult: () => undefined,
    });
    scheduler.checkNow('home', target(1));
    await new Promise((resolve) => setTimeout(resolve, 50)); // port 1's next check is now waiting its turn
    scheduler.checkNow('home', target(2));
    await new Promise((resolve) => setTimeout(resolve, 350));
    scheduler.close();
    assert.deepEqual(checks.filter((port) => port === 1), [1], 'port 1 only in its first check');
    const port2 = checks.filter((port) => port === 2).length;
    assert.ok(port2 >= 3 && port2 <= 5, `${port2} checks of port 2 in 350 ms at a 100 ms interval`);
  });

  test('a new target overtakes a check in flight: the old result is dropped', async () => {
    const pending = new Map<number, (result: ProbeResult) => void>();
    const delivered: number[] = [];
    const scheduler = new ProbeScheduler({
      intervalMs: 60_000, timeoutMs: 50, logger,
      probe: (probed) => new Promise((resolve) => pending.set(probed.address.port, resolve)),
      onResult: (_name, probed) => delivered.push(probed.address.port),
    });
    scheduler.checkNow('home', target(1));
    await new Promise((resolve) => setImmediate(resolve));
    scheduler.checkNow('home', target(2)); // the address changed while the first check ran
    await new Promise((resolve) => setImmediate(resolve));
    pending.get(2)!({ reachable: true, checkedAt: new Date() });
    pending.get(1)!({ reachable: false, reason: 'timeout', checkedAt: new Date() });
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(delivered, [2]);
    scheduler.close();
  });
});
