import assert from 'node:assert/strict';
import { freePort } from '../helpers/ports.js';
import { captureLogs } from '../helpers/logs.js';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import tls from 'node:tls';
import { parseRendezvousConfig } from '../../src/config/rendezvous.js';
import { FramedConnection } from '../../src/protocol/channel.js';
import { encodeFrame } from '../../src/protocol/framing.js';
import { PROTOCOL_VERSION, type Message, type WelcomeMessage } from '../../src/protocol/messages.js';
import { authMac, macEquals, SealedChannelState, sessionKey, welcomeMac } from '../../src/protocol/session.js';
import { randomNonce } from '../../src/common/nonce.js';
import { ControlServer, type ControlLimits } from '../../src/rendezvous/control-server.js';
import { Registry } from '../../src/rendezvous/registry.js';
import { startRendezvous, type RunningRendezvous } from '../../src/rendezvous/rendezvous.js';
import { ensureSelfSigned } from '../../src/tls/selfsigned.js';
import { TLS_SERVER_OPTIONS } from '../../src/tls/server-options.js';
import { waitFor } from '../helpers/wait.js';

const SECRET = 'home-secret-0123456789';
const FP = Array.from({ length: 32 }, (_, i) => (i * 7).toString(16).padStart(2, '0').toUpperCase()).join(':');

const scratch: string[] = [];
after(() => Promise.all(scratch.map((dir) => rm(dir, { recursive: true, force: true }))));

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'hp-control-'));
  scratch.push(dir);
  return dir;
}

/** The agent side of the protocol, as a test drives it: raw access to every step. */
class TestAgent {
  readonly connection: FramedConnection;
  readonly closed: Promise<string | undefined>;
  private readonly inbox: Message[] = [];
  private waiter: (() => void) | undefined;
  sealed: SealedChannelState | undefined;

  constructor(readonly socket: net.Socket) {
    this.connection = new FramedConnection(socket);
    this.connection.on('message', (message) => { this.inbox.push(message); this.waiter?.(); });
    this.closed = new Promise((resolve) => this.connection.on('close', resolve));
  }

  static async connect(port: number, localPort?: number): Promise<TestAgent> {
    const socket = net.connect({ host: '127.0.0.1', port, ...(localPort ? { localAddress: '127.0.0.1', localPort } : {}) });
    await once(socket, 'connect');
    return new TestAgent(socket);
  }

  /** The next message, or undefined when the connection closes first. */
  async next(timeoutMs = 3000): Promise<Message | undefined> {
    const deadline = Date.now() + timeoutMs;
    while (this.inbox.length === 0) {
      if (this.socket.destroyed) return undefined;
      const arrived = new Promise<void>((resolve) => { this.waiter = resolve; });
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('no message in time');
      await Promise.race([arrived, this.closed, sleep(left)]);
    }
    return this.inbox.shift();
  }

  /** hello → challenge → auth → welcome; returns the welcome (or whatever came instead). */
  async handshake(options: { agent?: string; secret?: string; publicHost?: string } = {}): Promise<Message | undefined> {
    const agent = options.agent ?? 'home';
    const secret = options.secret ?? SECRET;
    const clientNonce = randomNonce();
    this.connection.send({ type: 'hello', version: PROTOCOL_VERSION, agent, nonce: clientNonce });
    const challenge = await this.next();
    if (challenge?.type !== 'challenge') return challenge;
    const claims = { fingerprint: FP, listenPort: 25305, ...(options.publicHost ? { publicHost: options.publicHost } : {}) };
    this.connection.send({ type: 'auth', mac: authMac(secret, agent, clientNonce, challenge.nonce, claims), ...claims });
    const welcome = await this.next();
    if (welcome?.type === 'welcome' && macEquals(welcome.mac, welcomeMac(secret, agent, challenge.nonce, clientNonce, welcome))) {
      this.sealed = new SealedChannelState(sessionKey(secret, clientNonce, challenge.nonce), 'agent');
    }
    return welcome;
  }

  /** Sends a sealed ping and returns the opened pong. */
  async ping(): Promise<Message> {
    this.connection.send(this.sealed!.seal({ type: 'ping' }));
    return this.nextSealed('pong');
  }

  /** The next sealed message of `type`, opened and verified; others of the kind are skipped. */
  async nextSealed(type: 'pong' | 'probe', timeoutMs = 3000): Promise<Message> {
    for (;;) {
      const message = await this.next(timeoutMs);
      assert.ok(message, `closed while waiting for ${type}`);
      const opened = this.sealed!.open(message);
      assert.ok(opened.ok, opened.ok ? '' : opened.error);
      if (opened.value.type === type) return opened.value;
    }
  }
}

interface ServerFixture {
  control: ControlServer;
  registry: Registry;
  port: number;
  lines: Record<string, unknown>[];
  close(): Promise<void>;
}

async function startControl(options: { heartbeatMs?: number; limits?: Partial<ControlLimits> } = {}): Promise<ServerFixture> {
  const { logger, lines } = captureLogs();
  const registry = await Registry.open({ file: join(await tempDir(), 'registry.json'), agents: ['home', 'cabin'], logger });
  const control = new ControlServer({
    agents: [{ name: 'home', secret: SECRET, mode: 'direct' }, { name: 'cabin', secret: 'cabin-secret-0123456789', mode: 'direct' }],
    registry,
    heartbeatMs: options.heartbeatMs ?? 5000,
    logger,
    ...(options.limits ? { limits: options.limits } : {}),
  });
  const port = await control.listen({ host: '127.0.0.1', port: 0 });
  return { control, registry, port, lines, close: async () => { await control.close(); await registry.close(); } };
}

const logged = (lines: Record<string, unknown>[], pattern: RegExp): Record<string, unknown> | undefined =>
  lines.find((line) => pattern.test(`${String(line.msg)} ${String(line.reason ?? '')}`));

describe('control server', { timeout: 30_000 }, () => {
  const open: { close(): unknown }[] = [];
  afterEach(async () => {
    for (const item of open.splice(0).reverse()) await item.close();
  });
  const track = <T extends { close(): unknown }>(item: T): T => { open.push(item); return item; };
  const agentOn = async (port: number, localPort?: number): Promise<TestAgent> => {
    const agent = await TestAgent.connect(port, localPort);
    track({ close: () => agent.socket.destroy() });
    return agent;
  };

  test('full handshake: the welcome carries the observed 127.0.0.1:port, proves the secret, and each pong repeats it', async () => {
    const server = track(await startControl());
    const agent = await agentOn(server.port);
    const welcome = await agent.handshake({ publicHost: 'home.example.com' }) as WelcomeMessage;
    assert.equal(welcome.type, 'welcome');
    assert.deepEqual(welcome.observed, { ip: '127.0.0.1', port: agent.socket.localPort });
    assert.equal(welcome.heartbeatMs, 5000);
    assert.ok(agent.sealed, 'the welcome MAC verifies with the shared secret');
    for (let i = 0; i < 3; i++) {
      const pong = await agent.ping();
      assert.deepEqual(pong.type === 'pong' && pong.observed, welcome.observed);
    }
    const record = server.registry.get('home')!;
    assert.equal(record.online, true);
    assert.deepEqual(record.publicAddress, welcome.observed);
    assert.equal(record.fingerprint, FP);
    assert.equal(record.publicHost, 'home.example.com');
    assert.equal(server.control.online, 1);
    assert.ok(logged(server.lines, /agent registered/));
  });

  test('a wrong secret (bad MAC) and an unknown agent get the same refusal, then the server closes', async () => {
    const server = track(await startControl());
    for (const [options, reason] of [[{ secret: 'not-the-home-secret!' }, /bad auth MAC for agent "home"/], [{ agent: 'stranger' }, /unknown agent "stranger"/]] as const) {
      const agent = await agentOn(server.port);
      const answer = await agent.handshake(options);
      assert.deepEqual(answer, { type: 'error', message: 'authentication failed' });
      assert.equal(await agent.next(), undefined, 'closed after the refusal');
      assert.ok(logged(server.lines, reason), `logged ${reason}`);
    }
    assert.equal(server.registry.get('home')!.online, false);
    assert.equal(server.control.online, 0);
  });

  test('garbage, oversized frames and out-of-order messages close that connection; the server keeps serving others', async () => {
    const server = track(await startControl());
    const badInputs = [
      Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'),
      Buffer.from([0x00, 0x10, 0x00, 0x00, 0x7b]),                         // a 1 MiB frame announced
      Buffer.concat([Buffer.from([0, 0, 0, 5]), Buffer.from('[1,2]')]),    // JSON, but not an object
      encodeFrame({ type: 'hello', version: 2, agent: 'home', nonce: randomNonce() }),
      encodeFrame({ type: 'ping', seq: 1, mac: '0'.repeat(64) }),           // sealed talk before any handshake
    ];
    for (const input of badInputs) {
      const agent = await agentOn(server.port);
      agent.socket.write(input);
      const answer = await agent.next();
      assert.ok(answer === undefined || answer.type === 'error', `${input.toString('hex').slice(0, 20)}: ${JSON.stringify(answer)}`);
      await agent.closed;
    }
    assert.ok(logged(server.lines, /malformed frame: frame length 1048576/));
    const good = await agentOn(server.port);
    assert.equal((await good.handshake())?.type, 'welcome');
    assert.equal((await good.ping()).type, 'pong');
  });

  test('a handshake that stalls is closed at the deadline', async () => {
    const server = track(await startControl({ limits: { handshakeTimeoutMs: 200 } }));
    const agent = await agentOn(server.port);
    const started = Date.now();
    assert.deepEqual(await agent.next(), { type: 'error', message: 'authentication failed' });
    await agent.closed;
    assert.ok(Date.now() - started >= 150, 'not before the deadline');
    assert.ok(logged(server.lines, /no complete handshake within 200 ms/));
  });

  test('heartbeats keep an agent; 2 missed heartbeats expire the ghost and mark it offline', async () => {
    const server = track(await startControl({ heartbeatMs: 200 }));
    const agent = await agentOn(server.port);
    await agent.handshake();
    for (let i = 0; i < 8; i++) { // 800 ms of pings every 100 ms: longer than the timeout, still alive
      await agent.ping();
      await sleep(100);
    }
    assert.equal(server.registry.get('home')!.online, true);
    const silentSince = Date.now();
    await agent.closed; // now silent, like a connection whose NAT mapping vanished
    const silentFor = Date.now() - silentSince;
    assert.ok(silentFor >= 350 && silentFor < 2000, `expired after ${silentFor} ms of silence`);
    await waitFor('the agent to be offline', () => !server.registry.get('home')!.online, 3000);
    assert.ok(server.registry.get('home')!.offlineSince);
    assert.ok(logged(server.lines, /no heartbeat for 500 ms/));
  });

  test('a new authenticated connection replaces the old one; the address change is counted and logged', async () => {
    const server = track(await startControl());
    const first = await agentOn(server.port);
    const firstWelcome = await first.handshake() as WelcomeMessage;
    const second = await agentOn(server.port);
    const secondWelcome = await second.handshake() as WelcomeMessage;
    await first.closed;
    assert.equal(server.control.online, 1);
    const record = server.registry.get('home')!;
    assert.equal(record.online, true, 'the old connection closing does not take the agent offline');
    assert.deepEqual(record.publicAddress, secondWelcome.observed);
    assert.equal(record.addressChanges, 1);
    const change = logged(server.lines, /public address of home changed/)!;
    assert.equal(change.old, `127.0.0.1:${firstWelcome.observed.port}`);
    assert.equal(change.new, `127.0.0.1:${secondWelcome.observed.port}`);
    assert.equal((await second.ping()).type, 'pong', 'the new connection works');
  });

  test('an agent reconnects from the same local port right after a close, whichever side closed (no TIME_WAIT failure)', async () => {
    const server = track(await startControl());
    const closers: [string, (agent: TestAgent) => void][] = [
      ['the agent resets', (agent) => agent.connection.reset()],
      ['the server closes first', (agent) => agent.connection.send(agent.sealed!.seal({ type: 'error', message: 'going away' }))],
    ];
    for (const [how, close] of closers) {
      const punched = await freePort(); // bound explicitly each time, as the agent binds its punched port
      const first = await agentOn(server.port, punched);
      await first.handshake();
      close(first);
      await first.closed;
      const again = await agentOn(server.port, punched);
      const welcome = await again.handshake() as WelcomeMessage;
      assert.deepEqual(welcome.observed, { ip: '127.0.0.1', port: punched }, how);
      again.connection.reset();
      await again.closed;
    }
  });

  test('failed handshakes are rate-limited per source IP: once spent, even a correct agent is refused at once', async () => {
    const server = track(await startControl({ limits: { failureBurst: 3, failureRefillPerSecond: 0.001 } }));
    for (let i = 0; i < 3; i++) {
      const scanner = await agentOn(server.port);
      await scanner.handshake({ secret: 'guessing-the-secret-' + i });
      await scanner.closed;
    }
    const honest = await agentOn(server.port);
    honest.connection.send({ type: 'hello', version: PROTOCOL_VERSION, agent: 'home', nonce: randomNonce() });
    assert.equal(await honest.next(), undefined, 'closed without a challenge');
    assert.ok(logged(server.lines, /refusing control connections from 127\.0\.0\.1 for a while: too many failed handshakes/));
    assert.equal(server.lines.filter((line) => line.msg === 'control connection refused').length, 3, 'logging is bounded too');
  });
});

describe('rendezvous end to end', { timeout: 30_000 }, () => {
  test('register from the punched port, get probed through it, redirect to it; a closed port turns into 503 "refused"', async () => {
    const dir = await tempDir();
    const { logger, lines } = captureLogs();
    const config = parseRendezvousConfig(`
[rendezvous]
control = "127.0.0.1:0"
http = "127.0.0.1:0"
heartbeat = "1s"
probeInterval = "300ms"
probeTimeout = "2s"
[stun]
listen = "127.0.0.1:0"
[[agent]]
name = "home"
secret = "${SECRET}"
`, join(dir, 'rendezvous.toml'));
    const rendezvous: RunningRendezvous = await startRendezvous(config, logger);
    const listening = lines.find((line) => line.msg === 'rendezvous listening')!;
    assert.deepEqual([listening.controlPort, listening.httpPort], [rendezvous.controlPort, rendezvous.httpPort]);

    // The agent: connect to the rendezvous from port P first, then listen on P with its own certificate.
    const agentCert = await ensureSelfSigned(join(dir, 'agent-certs'), ['localhost'], new Date());
    const punched = await freePort();
    const agent = await TestAgent.connect(rendezvous.controlPort, punched);
    const agentServer = tls.createServer({ ...TLS_SERVER_OPTIONS, ...agentCert.material });
    agentServer.listen(punched, '127.0.0.1');
    await once(agentServer, 'listening');
    try {
      const clientNonce = randomNonce();
      agent.connection.send({ type: 'hello', version: PROTOCOL_VERSION, agent: 'home', nonce: clientNonce });
      const challenge = await agent.next();
      assert.equal(challenge?.type, 'challenge');
      const serverNonce = (challenge as { nonce: string }).nonce;
      const claims = { fingerprint: agentCert.leaf.fingerprint256, listenPort: punched };
      agent.connection.send({ type: 'auth', mac: authMac(SECRET, 'home', clientNonce, serverNonce, claims), ...claims });
      assert.equal((await agent.next())?.type, 'welcome');
      agent.sealed = new SealedChannelState(sessionKey(SECRET, clientNonce, serverNonce), 'agent');

      const reachable = await agent.nextSealed('probe');
      assert.equal(reachable.type === 'probe' && reachable.reachable, true);
      assert.equal(rendezvous.registry.get('home')!.reachability.state, 'reachable');
      const redirect = await fetchGo(rendezvous.httpPort, '/go/home/movie.bin?t=1');
      assert.equal(redirect.status, 302);
      assert.equal(redirect.location, `https://127.0.0.1:${punched}/movie.bin?t=1`);

      // The punched port closes (the agent's listener is gone): the next periodic check finds out.
      agentServer.close();
      const heartbeat = setInterval(() => agent.connection.send(agent.sealed!.seal({ type: 'ping' })), 300);
      let refused: Message;
      do refused = await agent.nextSealed('probe'); while (refused.type === 'probe' && refused.reachable);
      clearInterval(heartbeat);
      assert.equal(refused.type === 'probe' && refused.reason, 'refused');
      const unavailable = await fetchGo(rendezvous.httpPort, '/go/home/movie.bin');
      assert.equal(unavailable.status, 503);
      assert.match(unavailable.body, /home is unreachable: refused/);
    } finally {
      agentServer.close();
      agent.socket.destroy();
      await rendezvous.close();
    }
    assert.equal(rendezvous.registry.get('home')!.online, false);
  });
});

function fetchGo(port: number, path: string): Promise<{ status: number; location: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      socket.write(`GET ${path} HTTP/1.1\r\nHost: rendezvous\r\nConnection: close\r\n\r\n`);
    });
    let text = '';
    socket.on('data', (chunk: Buffer) => { text += chunk.toString('latin1'); });
    socket.on('end', () => {
      const [head = '', body = ''] = text.split('\r\n\r\n');
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]);
      resolve({ status, location: /\r\nlocation: ([^\r]*)/i.exec(head)?.[1], body });
    });
    socket.on('error', reject);
  });
}
