import assert from 'node:assert/strict';
import { once } from 'node:events';
import { randomBytes, X509Certificate } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import tls from 'node:tls';
import { pino } from 'pino';
import { generate } from 'selfsigned';
import { checkReachability, type ProbeFunction, type ProbeTarget } from '../../src/rendezvous/prober.js';
import { ProbeScheduler } from '../../src/rendezvous/probe-scheduler.js';
import { clientHello, fingerprintOf, plainHex, readServerFlight, sha256HexOf, signatureVerifies } from '../../src/rendezvous/tls12-handshake.js';
import { ensureSelfSigned } from '../../src/tls/selfsigned.js';
import { TLS_SERVER_OPTIONS, type TlsMaterial } from '../../src/tls/server-options.js';

const scratch: string[] = [];
const servers: net.Server[] = [];
after(async () => {
  for (const server of servers) server.close();
  await Promise.all(scratch.map((dir) => rm(dir, { recursive: true, force: true })));
});

/** An agent's certificate as the agent makes it (EC P-256 leaf + local CA). */
async function agentMaterial(): Promise<TlsMaterial & { fingerprint: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'hp-tls12-'));
  scratch.push(dir);
  const state = await ensureSelfSigned(join(dir, 'certs'), ['127.0.0.1'], new Date());
  return { ...state.material, fingerprint: state.leaf.fingerprint256 };
}

/** What tls.mode = "files" may hold instead: an RSA certificate. */
async function rsaMaterial(): Promise<TlsMaterial & { fingerprint: string }> {
  const pems = await generate([{ name: 'commonName', value: '127.0.0.1' }], { keyType: 'rsa', keySize: 2048, algorithm: 'sha256' });
  return { key: pems.private, cert: pems.cert, fingerprint: new X509Certificate(pems.cert).fingerprint256 };
}

async function listening<S extends net.Server>(server: S): Promise<number> {
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as net.AddressInfo).port;
}

/** The agent's TLS server, as src/agent/pipeline.ts configures it. */
function agentServer(material: TlsMaterial): tls.Server {
  const server = tls.createServer({ ...TLS_SERVER_OPTIONS, ...material });
  server.on('tlsClientError', () => undefined); // every check ends the handshake early
  return server;
}

const target = (port: number, fingerprint: string, extra: Partial<ProbeTarget> = {}): ProbeTarget => ({ address: { ip: '127.0.0.1', port }, fingerprint, ...extra });

/** The bytes a server sends in answer to one ClientHello, up to ServerHelloDone. */
async function capturedFlight(port: number, random: Buffer): Promise<Buffer> {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  await once(socket, 'connect');
  socket.write(clientHello(random));
  let received = Buffer.alloc(0);
  for await (const chunk of socket) {
    received = Buffer.concat([received, chunk as Buffer]);
    const flight = readServerFlight(received);
    if (!flight.ok || flight.value !== undefined) break;
  }
  socket.destroy();
  return received;
}

describe('checkReachability: the signed half-handshake', { timeout: 20_000 }, () => {
  let ec: TlsMaterial & { fingerprint: string };
  let ecPort: number;

  before(async () => {
    ec = await agentMaterial();
    ecPort = await listening(agentServer(ec));
  });

  test('reachable when the agent shows the registered certificate and signs our random with its key (EC and RSA)', async () => {
    const rsa = await rsaMaterial();
    const rsaPort = await listening(agentServer(rsa));
    for (const [port, fingerprint] of [[ecPort, ec.fingerprint], [rsaPort, rsa.fingerprint]] as const) {
      const result = await checkReachability(target(port, fingerprint.toLowerCase()), 2000);
      assert.deepEqual({ reachable: result.reachable, reason: result.reason, detail: result.detail }, { reachable: true, reason: undefined, detail: undefined });
    }
  });

  test('"wrong certificate" for another certificate, and for the right one replayed by someone without its key', async () => {
    const other = await agentMaterial();
    const wrong = await checkReachability(target(await listening(agentServer(other)), ec.fingerprint), 2000);
    assert.equal(wrong.reason, 'wrong certificate');
    // a recorded answer of the real agent: right certificate, but signed over somebody else's random
    const recorded = await capturedFlight(ecPort, randomBytes(32));
    const replayer = net.createServer((socket) => {
      socket.on('error', () => undefined);
      socket.once('data', () => socket.write(recorded));
    });
    const replayed = await checkReachability(target(await listening(replayer), ec.fingerprint), 2000);
    assert.equal(replayed.reason, 'wrong certificate');
    assert.match(replayed.detail ?? '', /could not sign/);
  });

  test('SNI carries publicHost when it is a DNS name, nothing when it is an IP', async () => {
    const names: (string | undefined)[] = [];
    const server = tls.createServer({ ...TLS_SERVER_OPTIONS, ...ec, SNICallback: (name, done) => { names.push(name); done(null, tls.createSecureContext(ec)); } });
    server.on('tlsClientError', () => undefined);
    const port = await listening(server);
    assert.equal((await checkReachability(target(port, ec.fingerprint, { publicHost: 'home.example.com' }), 2000)).reachable, true);
    assert.equal((await checkReachability(target(port, ec.fingerprint, { publicHost: '203.0.113.7' }), 2000)).reachable, true);
    assert.deepEqual(names, ['home.example.com']);
  });

  test('refused, reset, timeout, and "tls error" for a server that speaks something else', async () => {
    const closed = net.createServer();
    const closedPort = await listening(closed);
    await new Promise((resolve) => closed.close(resolve));
    assert.equal((await checkReachability(target(closedPort, ec.fingerprint), 2000)).reason, 'refused');
    const resetting = await listening(net.createServer((socket) => socket.resetAndDestroy()));
    assert.equal((await checkReachability(target(resetting, ec.fingerprint), 2000)).reason, 'reset');
    const silent = await listening(net.createServer((socket) => socket.on('error', () => undefined)));
    assert.equal((await checkReachability(target(silent, ec.fingerprint), 300)).reason, 'timeout');
    const http = await listening(net.createServer((socket) => socket.on('error', () => undefined).end('HTTP/1.1 400 Bad Request\r\n\r\n')));
    assert.equal((await checkReachability(target(http, ec.fingerprint), 2000)).reason, 'tls error');
  });

  test('readServerFlight waits for the whole flight however it is cut, and refuses alerts and non-TLS bytes', async () => {
    const random = randomBytes(32);
    const flight = await capturedFlight(ecPort, random);
    for (let cut = 0; cut < flight.length; cut += 7) {
      const partial = readServerFlight(flight.subarray(0, cut));
      assert.ok(partial.ok && partial.value === undefined, `cut at ${cut}: ${JSON.stringify(partial)}`);
    }
    const whole = readServerFlight(flight);
    assert.ok(whole.ok && whole.value);
    assert.equal(fingerprintOf(whole.value.leaf), ec.fingerprint);
    assert.equal(sha256HexOf(whole.value.leaf), plainHex(ec.fingerprint.toLowerCase()), 'the form a check compares, whatever the registered case');
    assert.notEqual(sha256HexOf(whole.value.leaf), plainHex(fingerprintOf(Buffer.from('another certificate'))));
    assert.equal(signatureVerifies(whole.value, random, new X509Certificate(whole.value.leaf).publicKey), true);
    assert.equal(signatureVerifies(whole.value, randomBytes(32), new X509Certificate(whole.value.leaf).publicKey), false);
    const alert = readServerFlight(Buffer.from([21, 3, 3, 0, 2, 2, 40]));
    assert.ok(!alert.ok && /alert 40/.test(alert.error));
    const garbage = readServerFlight(Buffer.from('HTTP/1.1 400 Bad Request\r\n\r\n'));
    assert.ok(!garbage.ok && /not a TLS server/.test(garbage.error));
  });
});

describe('ProbeScheduler fallback', { timeout: 10_000 }, () => {
  const logger = pino({ level: 'silent' });

  test('a "tls error" from the check is settled by the fallback; other failures are not', async () => {
    const results: string[] = [];
    const fallbacks: number[] = [];
    const reasons = new Map<number, 'tls error' | 'refused'>([[1, 'tls error'], [2, 'refused']]);
    const probe: ProbeFunction = async (checked) => ({ reachable: false, reason: reasons.get(checked.address.port)!, checkedAt: new Date() });
    const fallback: ProbeFunction = async (checked) => {
      fallbacks.push(checked.address.port);
      return { reachable: true, checkedAt: new Date() };
    };
    const scheduler = new ProbeScheduler({ intervalMs: 60_000, timeoutMs: 50, logger, probe, fallback, onResult: (name, _t, result) => results.push(`${name}:${result.reachable ? 'reachable' : result.reason}`) });
    scheduler.checkNow('tls12-shy', target(1, 'AA'));
    scheduler.checkNow('closed', target(2, 'AA'));
    await new Promise((resolve) => setTimeout(resolve, 50));
    scheduler.close();
    assert.deepEqual(results.sort(), ['closed:refused', 'tls12-shy:reachable']);
    assert.deepEqual(fallbacks, [1]);
  });
});
