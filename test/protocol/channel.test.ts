import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { setTimeout } from 'node:timers/promises';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { FramedConnection } from '../../src/protocol/channel.js';
import { encodeFrame } from '../../src/protocol/framing.js';
import { PROTOCOL_VERSION, type Message, type ObservedAddress } from '../../src/protocol/messages.js';
import { authMac, macEquals, SealedChannelState, sessionKey, welcomeMac } from '../../src/protocol/session.js';
import { randomNonce } from '../../src/common/nonce.js';

// Everything here runs over 127.0.0.1 only.
let listener: Server;
const accepted: Socket[] = [];
const waiting: ((socket: Socket) => void)[] = [];

before(async () => {
  listener = createServer((socket) => {
    socket.on('error', () => {}); // resets by the other side are expected here
    const waiter = waiting.shift();
    if (waiter) waiter(socket);
    else accepted.push(socket);
  });
  listener.listen(0, '127.0.0.1');
  await once(listener, 'listening');
});

after(() => listener.close());

function nextAccepted(): Promise<Socket> {
  const ready = accepted.shift();
  return ready ? Promise.resolve(ready) : new Promise((resolve) => waiting.push(resolve));
}

/** A raw client socket and the server's end of the same TCP connection. */
async function tcpPair(localPort?: number): Promise<{ client: Socket; server: Socket }> {
  const { port } = listener.address() as AddressInfo;
  const client = connect({ host: '127.0.0.1', port, localAddress: '127.0.0.1', ...(localPort ? { localPort } : {}) });
  client.on('error', () => {}); // resets by the other side are expected here
  const [server] = await Promise.all([nextAccepted(), once(client, 'connect')]);
  return { client, server };
}

async function connectionPair(): Promise<{ agent: FramedConnection; server: FramedConnection; client: Socket }> {
  const { client, server } = await tcpPair();
  return { agent: new FramedConnection(client), server: new FramedConnection(server), client };
}

/** Resolves when the socket has closed, however it closed (events.once would reject on ECONNRESET). */
function closed(socket: Socket): Promise<void> {
  return new Promise((resolve) => socket.once('close', () => resolve()));
}

function nextMessage(connection: FramedConnection): Promise<Message> {
  return once(connection, 'message').then(([message]) => message as Message);
}

/** The server's side of a connection that the peer poisons: what it reported, and how it ended. */
async function serverFacing(send: (client: Socket) => void): Promise<{ errors: string[]; cause: string | undefined; messages: Message[] }> {
  const { client, server: socket } = await tcpPair();
  const server = new FramedConnection(socket);
  const errors: string[] = [];
  const messages: Message[] = [];
  server.on('protocol-error', (reason) => errors.push(reason));
  server.on('message', (message) => messages.push(message));
  const serverClosed = once(server, 'close');
  const clientClosed = closed(client);
  send(client);
  const [cause] = (await serverClosed) as [string | undefined];
  await clientClosed; // the peer's socket is closed too, not left half-open
  return { errors, cause, messages };
}

test('messages flow both ways through a full handshake and sealed heartbeats', async () => {
  const { agent, server, client } = await connectionPair();
  const secret = 'a shared secret of enough length';
  const fingerprint = Array.from({ length: 32 }, () => 'AB').join(':');
  const observed: ObservedAddress = { ip: client.localAddress!, port: client.localPort! };
  const clientNonce = randomNonce();
  const serverNonce = randomNonce();

  assert.deepEqual(agent.send({ type: 'hello', version: PROTOCOL_VERSION, agent: 'home', nonce: clientNonce }), { ok: true, value: undefined });
  const hello = await nextMessage(server);
  assert.ok(hello.type === 'hello');
  server.send({ type: 'challenge', nonce: serverNonce });
  const challenge = await nextMessage(agent);
  assert.ok(challenge.type === 'challenge');
  const claims = { fingerprint, listenPort: 8443 };
  agent.send({ type: 'auth', mac: authMac(secret, 'home', clientNonce, challenge.nonce, claims), ...claims });
  const auth = await nextMessage(server);
  assert.ok(auth.type === 'auth');
  assert.ok(macEquals(auth.mac, authMac(secret, hello.agent, hello.nonce, serverNonce, auth)), 'server verifies the agent');
  server.send({ type: 'welcome', mac: welcomeMac(secret, 'home', serverNonce, hello.nonce, { observed, heartbeatMs: 5000 }), observed, heartbeatMs: 5000, seq: 0 });
  const welcome = await nextMessage(agent);
  assert.ok(welcome.type === 'welcome');
  assert.ok(macEquals(welcome.mac, welcomeMac(secret, 'home', challenge.nonce, clientNonce, welcome)));
  assert.deepEqual(welcome.observed, observed);

  const agentSeal = new SealedChannelState(sessionKey(secret, clientNonce, challenge.nonce), 'agent');
  const serverSeal = new SealedChannelState(sessionKey(secret, hello.nonce, serverNonce), 'server');
  for (let beat = 1; beat <= 3; beat++) {
    agent.send(agentSeal.seal({ type: 'ping' }));
    const ping = serverSeal.open(await nextMessage(server));
    assert.ok(ping.ok && ping.value.seq === beat);
    server.send(serverSeal.seal({ type: 'pong', observed }));
    const pong = agentSeal.open(await nextMessage(agent));
    assert.ok(pong.ok && pong.value.type === 'pong');
    assert.deepEqual(pong.value.observed, observed);
  }
  agent.reset();
  await once(server, 'close');
});

test('many messages written at once arrive complete and in order', async () => {
  const { agent, server } = await connectionPair();
  const received: number[] = [];
  server.on('message', (message) => message.type === 'ping' && received.push(message.seq));
  for (let seq = 1; seq <= 2000; seq++) agent.send({ type: 'ping', seq, mac: 'f'.repeat(64) });
  agent.close();
  await once(server, 'close');
  assert.deepEqual(received, Array.from({ length: 2000 }, (_, i) => i + 1));
});

test('garbage from the peer is a protocol error, the connection is closed, and the server keeps serving', async () => {
  const http = await serverFacing((client) => client.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
  assert.deepEqual(http.errors, ['frame length 1195725856 is outside 1..16384 bytes']);
  assert.equal(http.cause, http.errors[0]);

  const notJson = await serverFacing((client) => client.write(Buffer.concat([Buffer.from([0, 0, 0, 5]), Buffer.from('hello')])));
  assert.equal(notJson.errors.length, 1);
  assert.match(notJson.errors[0]!, /^frame is not UTF-8 JSON/);

  const { agent, server } = await connectionPair();
  agent.send({ type: 'challenge', nonce: randomNonce() });
  assert.equal((await nextMessage(server)).type, 'challenge');
  agent.reset();
});

test('an oversize frame is refused from its header and the connection closed', async () => {
  const oversize = await serverFacing((client) => {
    const header = Buffer.alloc(4);
    header.writeUInt32BE(1024 * 1024);
    client.write(Buffer.concat([header, Buffer.alloc(64 * 1024, 0x20)]));
  });
  assert.deepEqual(oversize.errors, ['frame length 1048576 is outside 1..16384 bytes']);
});

test('an invalid message ends the connection after the valid ones before it', async () => {
  const result = await serverFacing((client) =>
    client.write(
      Buffer.concat([
        encodeFrame({ type: 'ping', seq: 1, mac: 'a'.repeat(64) }),
        encodeFrame({ type: 'ping', seq: 2, mac: 'not hex' }),
        encodeFrame({ type: 'ping', seq: 3, mac: 'a'.repeat(64) }),
      ]),
    ),
  );
  assert.deepEqual(result.messages, [{ type: 'ping', seq: 1, mac: 'a'.repeat(64) }]);
  assert.deepEqual(result.errors, ['ping.mac must be an HMAC-SHA256 in 64 lowercase hex digits, not "not hex"']);
});

test('send refuses invalid messages and closed connections without throwing', async () => {
  const { agent, server } = await connectionPair();
  const invalid = agent.send({ type: 'ping', seq: 0, mac: 'a'.repeat(64) });
  assert.deepEqual(invalid, { ok: false, error: 'refusing to send an invalid message: ping.seq must be an integer from 1 to 9007199254740991, not 0' });
  agent.reset();
  await once(server, 'close');
  assert.deepEqual(agent.send({ type: 'challenge', nonce: randomNonce() }), { ok: false, error: 'the control connection is closed' });
  assert.deepEqual(server.send({ type: 'challenge', nonce: randomNonce() }), { ok: false, error: 'the control connection is closed' });
});

test('close() delivers what was sent before it, then the peer sees a clean close', async () => {
  const { agent, server } = await connectionPair();
  const received = nextMessage(agent);
  const agentClosed = once(agent, 'close');
  server.send({ type: 'error', message: 'authentication failed' });
  server.close();
  assert.deepEqual(await received, { type: 'error', message: 'authentication failed' });
  assert.deepEqual(await agentClosed, [undefined]);
});

/**
 * Whether the kernel holds a TIME_WAIT socket from `localPort` to `remotePort` (IPv4, Linux). A reconnect on
 * loopback would pass even with TIME_WAIT (net.ipv4.tcp_tw_reuse=2 reuses it there), so the tests look at
 * the state itself: across a real NAT, a TIME_WAIT at the agent's port is what makes a reconnect fail.
 */
function inTimeWait(localPort: number, remotePort: number): boolean {
  const hexPort = (port: number) => port.toString(16).toUpperCase().padStart(4, '0');
  return readFileSync('/proc/net/tcp', 'utf8')
    .split('\n')
    .slice(1)
    .map((line) => line.trim().split(/\s+/))
    .some(([, local, remote, state]) => state === '06' && local?.endsWith(`:${hexPort(localPort)}`) && remote?.endsWith(`:${hexPort(remotePort)}`));
}

/** TIME_WAIT appears when the last ACK is processed; on loopback that is at once, but allow a moment. */
async function becomesTimeWait(localPort: number, remotePort: number): Promise<boolean> {
  for (let attempt = 0; attempt < 50 && !inTimeWait(localPort, remotePort); attempt++) await setTimeout(20);
  return inTimeWait(localPort, remotePort);
}

const noProcNetTcp = existsSync('/proc/net/tcp') ? undefined : 'needs Linux /proc/net/tcp';

test('reset() leaves no TIME_WAIT at the agent and close() leaves it at the server, so the agent can reuse its port', { skip: noProcNetTcp }, async () => {
  const serverPort = (listener.address() as AddressInfo).port;
  const first = await tcpPair();
  const agentPort = first.client.localPort!;
  const serverClosed = closed(first.server);
  new FramedConnection(first.client).reset();
  await serverClosed;
  assert.equal(inTimeWait(agentPort, serverPort), false, 'reset must not leave TIME_WAIT at the agent');

  const second = await tcpPair(agentPort);
  assert.equal(second.client.localPort, agentPort, 'reconnected from the same port');
  const clientClosed = closed(second.client);
  new FramedConnection(second.server).close();
  await clientClosed;
  assert.equal(await becomesTimeWait(serverPort, agentPort), true, 'the server closed first, so it holds the TIME_WAIT');
  assert.equal(inTimeWait(agentPort, serverPort), false, 'and the agent holds none');

  // Control: a plain close from the agent side does leave TIME_WAIT there, which the check above would see.
  const third = await tcpPair(agentPort);
  third.client.end();
  await closed(third.client);
  assert.equal(await becomesTimeWait(agentPort, serverPort), true);
});

test('dial + nextMessage: the answer, or why none came (closed with its cause, or the time is up)', async () => {
  const { port } = listener.address() as AddressInfo;
  const asking = await FramedConnection.dial({ host: '127.0.0.1', port });
  const answering = new FramedConnection(await nextAccepted());
  asking.send({ type: 'connect', version: PROTOCOL_VERSION, agent: 'home', punch: false });
  const question = await nextMessage(answering);
  assert.equal(question.type, 'connect');
  answering.send({ type: 'route', observed: { ip: '127.0.0.1', port: 1 } });
  const answer = await asking.nextMessage(2_000);
  assert.ok(answer.ok && answer.value.type === 'route');

  const silent = await asking.nextMessage(50);
  assert.deepEqual(silent, { ok: false, error: 'no answer within 50 ms' });
  answering.reset();
  const gone = await asking.nextMessage(2_000);
  assert.ok(!gone.ok && /^the connection closed/.test(gone.error), gone.ok ? 'a message' : gone.error);
});
