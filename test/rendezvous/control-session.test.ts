import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Server } from 'node:net';
import { after, before, test } from 'node:test';
import { randomNonce } from '../../src/common/nonce.js';
import { FramedConnection } from '../../src/protocol/channel.js';
import { adminResultParts, MAX_TEXT_CHARS, PROTOCOL_VERSION, type AcmeChallengeOrder, type Message } from '../../src/protocol/messages.js';
import { err, ok } from '../../src/common/result.js';
import { authMac, macEquals, SealedChannelState, sessionKey, welcomeMac, workKey, workMac, type SealedMessage } from '../../src/protocol/session.js';
import { encodeFrame } from '../../src/protocol/framing.js';
import { normalizeIp } from '../../src/rendezvous/addresses.js';
import { ControlSession, PROBE_REPEAT_MS, type SessionHost, type SideConnection } from '../../src/rendezvous/control-session.js';
import { waitFor } from '../helpers/wait.js';

/**
 * One agent connection on the rendezvous, against a scripted agent on loopback: the handshake and what
 * each side learns from it, heartbeats, probe results and admin requests, and the deadlines.
 */

const SECRET = 'control-session-secret-012345678';
const FINGERPRINT = Array.from({ length: 32 }, () => 'CD').join(':');
const HEARTBEAT_MS = 1000;

interface HostLog {
  authenticated: string[];
  heartbeats: number;
  handshakeFailed: string[];
  ended: Array<string | undefined>;
  /** Side connections let go of: their kind, agent and (for work) key. */
  detached: SideConnection[];
  acme: { agent: string; order: AcmeChallengeOrder }[];
}

let server: Server;
const sessions: ControlSession[] = [];
const log: HostLog = { authenticated: [], heartbeats: 0, handshakeFailed: [], ended: [], detached: [], acme: [] };
const host: SessionHost = {
  secretOf: (agent) => (agent === 'home' ? SECRET : undefined),
  heartbeatMs: HEARTBEAT_MS,
  stunPort: 3478,
  handshakeTimeoutMs: 5_000,
  adminTimeoutMs: 2_000,
  authenticated: (session) => void log.authenticated.push(session.agent!),
  heartbeat: () => void log.heartbeats++,
  acmeChallenge: (session, order) => {
    log.acme.push({ agent: session.agent!, order });
    return order.hostname === 'home.example.com' ? ok(undefined) : err(`${order.hostname} is refused, and this reason runs on: ${'x'.repeat(300)}`);
  },
  handshakeFailed: (_session, why) => void log.handshakeFailed.push(why),
  ended: (_session, failure) => void log.ended.push(failure),
  detached: (_session, side) => {
    log.detached.push(side);
    side.socket.destroy();
  },
};

before(async () => {
  server = createServer((socket) => sessions.push(new ControlSession(socket, normalizeIp(socket.remoteAddress ?? '')!, host)));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
});

after(async () => {
  for (const session of sessions) session.close('test over');
  await new Promise((resolve) => server.close(resolve));
});

/** A scripted agent: runs the handshake with `secret`, then opens what the server seals. */
class Agent {
  readonly connection: FramedConnection;
  readonly received: Message[] = [];
  readonly sealedReceived: SealedMessage[] = [];
  readonly nonce = randomNonce();
  sealed: SealedChannelState | undefined;
  closed = false;

  constructor(readonly secret: string, readonly port: number) {
    this.connection = new FramedConnection(connect({ host: '127.0.0.1', port }));
    this.connection.on('close', () => { this.closed = true; });
    this.connection.on('message', (message) => {
      if (this.sealed) {
        const opened = this.sealed.open(message);
        assert.ok(opened.ok, opened.ok ? '' : opened.error);
        this.sealedReceived.push(opened.value);
      } else {
        this.received.push(message);
      }
    });
  }

  static async handshake(name: string, secret: string): Promise<Agent> {
    const agent = new Agent(secret, (server.address() as AddressInfo).port);
    agent.connection.send({ type: 'hello', version: PROTOCOL_VERSION, agent: name, nonce: agent.nonce });
    const challenge = await waitFor('the challenge', () => agent.received.find((message) => message.type === 'challenge'));
    assert.equal(challenge.type, 'challenge');
    const claims = { fingerprint: FINGERPRINT, listenPort: 40000 };
    const serverNonce = challenge.type === 'challenge' ? challenge.nonce : '';
    agent.connection.send({ type: 'auth', mac: authMac(secret, name, agent.nonce, serverNonce, claims), ...claims });
    const answer = await waitFor('welcome or error', () => agent.received.find((message) => message.type === 'welcome' || message.type === 'error'));
    if (answer.type === 'welcome') {
      assert.ok(macEquals(answer.mac, welcomeMac(secret, name, serverNonce, agent.nonce, answer)), 'the server proves the secret');
      assert.equal(answer.stunPort, 3478, 'the welcome tells where the rendezvous answers STUN');
      agent.sealed = new SealedChannelState(sessionKey(secret, agent.nonce, serverNonce), 'agent');
    }
    return agent;
  }

  send(message: Parameters<SealedChannelState['seal']>[0]): void {
    assert.deepEqual(this.connection.send(this.sealed!.seal(message)), { ok: true, value: undefined });
  }
}

const latest = (): ControlSession => sessions.at(-1)!;

test('an agent with its secret is welcomed with the address it came from and registered with what it claimed', async () => {
  const agent = await Agent.handshake('home', SECRET);
  try {
    const welcome = agent.received.find((message) => message.type === 'welcome');
    assert.ok(welcome?.type === 'welcome');
    assert.deepEqual(welcome.observed, { ip: '127.0.0.1', port: (agent.connection.socket as import('node:net').Socket).localPort });
    assert.equal(welcome.heartbeatMs, HEARTBEAT_MS);
    assert.deepEqual(latest().registration, { agent: 'home', claims: { fingerprint: FINGERPRINT, listenPort: 40000 } });
    assert.ok(log.authenticated.includes('home'));

    const heartbeatsBefore = log.heartbeats;
    agent.send({ type: 'ping' });
    const pong = await waitFor('the pong', () => agent.sealedReceived.find((message) => message.type === 'pong'));
    assert.deepEqual(pong.type === 'pong' && pong.observed, welcome.observed, 'each pong repeats the observed address');
    assert.equal(log.heartbeats, heartbeatsBefore + 1);
  } finally {
    agent.connection.close();
  }
});

test('a wrong secret and an unknown name get the same words; only the rendezvous\'s log tells them apart', async () => {
  const wrong = await Agent.handshake('home', 'a-wrong-secret-but-long-enough-0');
  const unknown = await Agent.handshake('stranger', SECRET);
  for (const agent of [wrong, unknown]) {
    assert.deepEqual(agent.received.filter((message) => message.type !== 'challenge'), [{ type: 'error', message: 'authentication failed' }]);
    await waitFor('the connection to close', () => agent.closed);
  }
  assert.ok(log.handshakeFailed.includes('bad auth MAC for agent "home" (wrong secret?)'), log.handshakeFailed.join('\n'));
  assert.ok(log.handshakeFailed.includes('unknown agent "stranger"'), log.handshakeFailed.join('\n'));
});

test('an admin request reaches the agent sealed and resolves with its answer; without a session it is a 503', async () => {
  const agent = await Agent.handshake('home', SECRET);
  try {
    const session = latest();
    const reply = session.requestAdmin({ op: 'list' });
    const order = await waitFor('the admin order', () => agent.sealedReceived.find((message) => message.type === 'admin'));
    assert.ok(order.type === 'admin');
    assert.equal(order.op, 'list');
    const body = JSON.stringify({ entries: Array.from({ length: 200 }, (_, i) => ({ cidr: `10.0.${i}.0/24` })) });
    for (const part of adminResultParts(order.id, 200, body)) agent.send(part);
    assert.deepEqual(await reply, { ok: true, value: { status: 200, body } }, 'the parts joined in order');
  } finally {
    agent.connection.close();
  }
  const count = sessions.length;
  const unauthenticated = new Agent(SECRET, (server.address() as AddressInfo).port);
  await waitFor('the session', () => sessions.length > count);
  const reply = await latest().requestAdmin({ op: 'list' });
  assert.deepEqual(reply, { ok: false, status: 503, error: 'the agent is not connected to the rendezvous' });
  unauthenticated.connection.close();
});

test('an acmeChallenge goes to the host with the agent\'s name and is answered with its id; a long reason is cut to fit', async () => {
  const agent = await Agent.handshake('home', SECRET);
  try {
    const token = 'a'.repeat(43);
    const set = { id: 7, op: 'set' as const, hostname: 'home.example.com', token, keyAuthorization: `${token}.${'b'.repeat(43)}` };
    agent.send({ type: 'acmeChallenge', ...set });
    agent.send({ type: 'acmeChallenge', id: 8, op: 'unset', hostname: 'other.example.com', token });
    const results = await waitFor('both answers', () => {
      const answers = agent.sealedReceived.filter((message) => message.type === 'acmeChallengeResult');
      return answers.length === 2 ? answers : undefined;
    });
    assert.deepEqual(log.acme.slice(-2), [{ agent: 'home', order: set }, { agent: 'home', order: { id: 8, op: 'unset', hostname: 'other.example.com', token } }]);
    assert.deepEqual(results.map(({ seq: _seq, mac: _mac, ...rest }) => rest), [
      { type: 'acmeChallengeResult', id: 7, ok: true },
      { type: 'acmeChallengeResult', id: 8, ok: false, error: `other.example.com is refused, and this reason runs on: ${'x'.repeat(300)}`.slice(0, MAX_TEXT_CHARS) },
    ]);
    assert.equal(agent.closed, false, 'the agent accepted both answers');
  } finally {
    agent.connection.close();
  }
});

test('a probe result reaches the agent once; the same verdict again only after PROBE_REPEAT_MS', async () => {
  const agent = await Agent.handshake('home', SECRET);
  try {
    const session = latest();
    const at = Date.parse('2030-01-01T00:00:00Z');
    assert.equal(session.sendProbe({ reachable: false, reason: 'connection refused', checkedAt: new Date(at) }, 'direct'), true);
    assert.equal(session.sendProbe({ reachable: false, reason: 'connection refused', checkedAt: new Date(at + 30_000) }, 'direct'), true);
    assert.equal(session.sendProbe({ reachable: true, checkedAt: new Date(at + 60_000) }, 'direct'), true);
    assert.equal(session.sendProbe({ reachable: true, checkedAt: new Date(at + 60_000 + PROBE_REPEAT_MS) }, 'direct'), true);
    await waitFor('three probe messages', () => agent.sealedReceived.filter((message) => message.type === 'probe').length >= 3);
    agent.send({ type: 'ping' });
    await waitFor('the pong after them', () => agent.sealedReceived.some((message) => message.type === 'pong'));
    const probes = agent.sealedReceived.flatMap((message) => (message.type === 'probe' ? [[message.reachable, message.reason, message.checkedAt]] : []));
    assert.deepEqual(probes, [
      [false, 'connection refused', '2030-01-01T00:00:00.000Z'],
      [true, undefined, '2030-01-01T00:01:00.000Z'],
      [true, undefined, new Date(at + 60_000 + PROBE_REPEAT_MS).toISOString()],
    ]);
  } finally {
    agent.connection.close();
  }
});

test('a connection that does not finish the handshake in time is refused; a silent registered agent is expired as a ghost', async () => {
  const count = sessions.length;
  const idle = new Agent(SECRET, (server.address() as AddressInfo).port);
  await waitFor('the session', () => sessions.length > count);
  const idleSession = latest();
  idleSession.expireIfDue(Date.now() + 1_000);
  assert.equal(idle.closed, false, 'not yet due');
  idleSession.expireIfDue(Date.now() + host.handshakeTimeoutMs + 1);
  await waitFor('the refusal', () => idle.closed);
  assert.deepEqual(idle.received, [{ type: 'error', message: 'authentication failed' }]);
  assert.ok(log.handshakeFailed.includes(`no complete handshake within ${host.handshakeTimeoutMs} ms`));

  const silent = await Agent.handshake('home', SECRET);
  const session = latest();
  const endedBefore = log.ended.length;
  session.expireIfDue(Date.now() + ControlSession.deadAfterMs(HEARTBEAT_MS) + 1);
  await waitFor('the ghost to be dropped', () => silent.closed && log.ended.length > endedBefore);
  assert.match(log.ended.at(-1)!, /^no heartbeat for 2500 ms: expired as a ghost/);
});

/** A work connection's handshake from a scripted agent; `after` is written right behind workAuth. */
async function workHandshake(secret: string, after: Buffer = Buffer.alloc(0)): Promise<{ agent: Agent; nonce: string; serverNonce: string }> {
  const agent = new Agent(secret, (server.address() as AddressInfo).port);
  agent.connection.send({ type: 'workHello', version: PROTOCOL_VERSION, agent: 'home', nonce: agent.nonce });
  const challenge = await waitFor('the challenge', () => agent.received.find((message) => message.type === 'challenge'));
  const serverNonce = challenge.type === 'challenge' ? challenge.nonce : '';
  const auth = encodeFrame({ type: 'workAuth', mac: workMac(secret, 'home', agent.nonce, serverNonce, undefined) });
  agent.connection.socket.write(Buffer.concat([auth, after]));
  return { agent, nonce: agent.nonce, serverNonce };
}

test('a work connection with the agent\'s secret leaves the control protocol with the key both sides derive', async () => {
  const before = { detached: log.detached.length, authenticated: log.authenticated.length };
  const { agent, nonce, serverNonce } = await workHandshake(SECRET);
  const side = await waitFor('the side connection', () => log.detached[before.detached]);
  assert.equal(side.kind, 'work');
  assert.ok(side.kind === 'work' && side.agent === 'home' && side.key.equals(workKey(SECRET, nonce, serverNonce)));
  assert.equal(log.authenticated.length, before.authenticated, 'a work connection registers no control session');
  agent.connection.close();
});

test('a work connection with a wrong secret is refused with the same words, and never handed over', async () => {
  const before = { detached: log.detached.length, failed: log.handshakeFailed.length };
  const { agent } = await workHandshake('not-the-secret-0123456789');
  const answer = await waitFor('the refusal', () => agent.received.find((message) => message.type === 'error'));
  assert.equal(answer.type === 'error' && answer.message, 'authentication failed');
  await waitFor('the failure is counted', () => log.handshakeFailed.length > before.failed);
  assert.match(log.handshakeFailed.at(-1)!, /bad work MAC/);
  assert.equal(log.detached.length, before.detached);
});

test('bytes behind workAuth (a partial frame) close the connection instead of handing it over', async () => {
  const before = { detached: log.detached.length, ended: log.ended.length };
  const partial = Buffer.from([0, 0, 0, 10, 0x7b, 0x22]);
  const { agent } = await workHandshake(SECRET, partial);
  await waitFor('the session ended', () => log.ended.length > before.ended);
  assert.match(String(log.ended.at(-1)), /side connection: 6 bytes arrived after the handshake's last frame/);
  assert.equal(log.detached.length, before.detached);
  await waitFor('the socket closed', () => agent.closed);
});

test('a homeport connect request leaves the control protocol at once, without a handshake', async () => {
  const before = log.detached.length;
  const client = new Agent(SECRET, (server.address() as AddressInfo).port);
  client.connection.send({ type: 'connect', version: PROTOCOL_VERSION, agent: 'home', punch: false });
  const side = await waitFor('the side connection', () => log.detached[before]);
  assert.equal(side.kind, 'connect');
  assert.ok(side.kind === 'connect' && side.request.agent === 'home' && side.observed.ip === '127.0.0.1');
  client.connection.close();
});
