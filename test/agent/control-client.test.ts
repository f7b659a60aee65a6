import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { afterEach, test } from 'node:test';
import { pino } from 'pino';
import { ControlClient } from '../../src/agent/control-client.js';
import type { PunchedPort } from '../../src/agent/punch.js';
import { randomNonce } from '../../src/common/nonce.js';
import { ok, type Result } from '../../src/common/result.js';
import type { AgentRendezvousConfig } from '../../src/config/agent-types.js';
import { FramedConnection } from '../../src/protocol/channel.js';
import { PROTOCOL_VERSION, type AdminOrder, type AuthMessage, type HelloMessage, type Message } from '../../src/protocol/messages.js';
import { authMac, macEquals, SealedChannelState, sessionKey, welcomeMac, type SealedMessage } from '../../src/protocol/session.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The agent's side of the control channel against a scripted rendezvous on loopback: what the agent sends,
 * what it accepts, and what it tells the rest of the agent (registered, the observed address, admin answers).
 */

const SECRET = 'control-client-secret-0123456789';
const OBSERVED = { ip: '203.0.113.7', port: 41000 };
const FINGERPRINT = Array.from({ length: 32 }, () => 'AB').join(':'); // as X509Certificate.fingerprint256 prints it

interface Rendezvous {
  server: Server;
  hellos: HelloMessage[];
  auths: Array<{ message: AuthMessage; macValid: boolean }>;
  /** Sealed messages the agent sent after welcome, opened and checked. */
  received: SealedMessage[];
  /** Sends a sealed admin order on the current connection. */
  order(order: AdminOrder): void;
  /** Drops the current connection. */
  drop(): void;
  connections: number;
}

/**
 * A rendezvous that runs the handshake; `welcomeSecret` is the secret it proves (a wrong one = an impostor),
 * `stunPort` the port its welcome tells and `macStunPort` the one the MAC covers (another: rewritten on the path).
 */
async function startRendezvous(welcomeSecret = SECRET, stunPort?: number, macStunPort = stunPort): Promise<Rendezvous> {
  const state: Rendezvous = {
    server: createServer(), hellos: [], auths: [], received: [], connections: 0,
    order: () => assert.fail('no session'), drop: () => assert.fail('no session'),
  };
  state.server.on('connection', (socket: Socket) => {
    state.connections++;
    const connection = new FramedConnection(socket);
    const serverNonce = randomNonce();
    let hello: HelloMessage | undefined;
    let sealed: SealedChannelState | undefined;
    state.drop = () => connection.reset();
    connection.on('message', (message: Message) => {
      if (message.type === 'hello') {
        hello = message;
        state.hellos.push(message);
        connection.send({ type: 'challenge', nonce: serverNonce });
      } else if (message.type === 'auth' && hello) {
        const claims = { fingerprint: message.fingerprint, listenPort: message.listenPort };
        state.auths.push({ message, macValid: macEquals(message.mac, authMac(SECRET, hello.agent, hello.nonce, serverNonce, claims)) });
        const mac = welcomeMac(welcomeSecret, hello.agent, serverNonce, hello.nonce, { observed: OBSERVED, heartbeatMs: 1000, stunPort: macStunPort });
        connection.send({ type: 'welcome', mac, observed: OBSERVED, heartbeatMs: 1000, ...(stunPort !== undefined ? { stunPort } : {}), seq: 0 });
        sealed = new SealedChannelState(sessionKey(SECRET, hello.nonce, serverNonce), 'server');
        state.order = (order) => assert.deepEqual(connection.send(sealed!.seal({ type: 'admin', ...order })), { ok: true, value: undefined });
      } else if (sealed) {
        const opened = sealed.open(message);
        assert.ok(opened.ok, opened.ok ? '' : opened.error);
        state.received.push(opened.value);
      }
    });
  });
  state.server.listen(0, '127.0.0.1');
  await once(state.server, 'listening');
  return state;
}

/** The punched port as the client uses it: each open() is a fresh outbound connection to the rendezvous. */
function portTo(server: Server): PunchedPort {
  const { port } = server.address() as AddressInfo;
  const fake = {
    port: 40000,
    open: (): Promise<Result<Socket>> => new Promise((resolve) => {
      const socket = connect({ host: '127.0.0.1', port }, () => resolve(ok(socket)));
    }),
  };
  return fake as unknown as PunchedPort;
}

const config: AgentRendezvousConfig = {
  server: { host: '127.0.0.1', port: 0 }, secret: SECRET, heartbeatMs: 1000,
  reregister: '0 20 4 * * *', reregisterDelayMs: 0, timezone: 'UTC',
};
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

function startClient(rendezvous: Rendezvous, admin = async (_order: AdminOrder) => ({ status: 200, body: '{"entries":[]}' })): ControlClient {
  const client = new ControlClient({
    name: 'home', config, port: portTo(rendezvous.server), fingerprint: () => FINGERPRINT, admin, logger: pino({ level: 'silent' }),
    random: () => 0,
  });
  cleanups.push(() => client.close(), () => new Promise((resolve) => rendezvous.server.close(resolve)));
  return client;
}

test('registers: hello with this build\'s protocol version and name, auth proving the secret and claiming the fingerprint, then "registered" with the observed address', async () => {
  const rendezvous = await startRendezvous();
  const client = startClient(rendezvous);
  const registered = once(client, 'registered');
  await client.start();
  assert.deepEqual(await registered, [OBSERVED, undefined], 'no STUN port: the rendezvous has STUN off');
  assert.equal(client.connected, true);
  assert.equal(client.rendezvousAddress, '127.0.0.1');
  assert.equal(rendezvous.hellos[0]!.version, PROTOCOL_VERSION);
  assert.equal(rendezvous.hellos[0]!.agent, 'home');
  assert.deepEqual(rendezvous.auths.map(({ message, macValid }) => [message.fingerprint, message.listenPort, macValid]), [[FINGERPRINT, 40000, true]]);
});

/** A client of `rendezvous` once it has refused the welcome, never having registered. */
async function refusingWelcome(rendezvous: Rendezvous): Promise<ControlClient> {
  const client = startClient(rendezvous);
  let registered = false;
  client.on('registered', () => { registered = true; });
  const disconnected = once(client, 'disconnected');
  await client.start();
  assert.deepEqual(await disconnected, ['the rendezvous could not prove it knows the secret']);
  assert.equal(registered, false);
  return client;
}

test('a rendezvous that cannot prove the secret in welcome is not believed: no registration, the connection ends and is retried', async () => {
  const impostor = await startRendezvous('not-the-secret-at-all-0123456789');
  const client = await refusingWelcome(impostor);
  assert.equal(client.connected, false);
  await waitFor('a second attempt (after the backoff)', () => impostor.connections >= 2, 5_000);
});

test('the STUN port in welcome is believed only under the welcome MAC', async () => {
  const rendezvous = await startRendezvous(SECRET, 3478);
  const client = startClient(rendezvous);
  const registered = once(client, 'registered');
  await client.start();
  assert.deepEqual(await registered, [OBSERVED, 3478]);

  await refusingWelcome(await startRendezvous(SECRET, 3479, 3478));
});

test('an admin order is carried out and answered, sealed, with the order\'s id', async () => {
  const rendezvous = await startRendezvous();
  const orders: AdminOrder[] = [];
  const client = startClient(rendezvous, async (order) => {
    orders.push(order);
    return { status: 201, body: '{"cidr":"198.51.100.9/32"}' };
  });
  const registered = once(client, 'registered');
  await client.start();
  await registered;
  rendezvous.order({ id: 7, op: 'add', cidr: '198.51.100.9/32', ttlMs: 60_000, keyId: '0123456789ab', client: '198.51.100.9' });
  const answer = await waitFor('the admin answer', () => rendezvous.received.find((message) => message.type === 'adminResult'));
  assert.deepEqual(orders, [{ id: 7, op: 'add', cidr: '198.51.100.9/32', ttlMs: 60_000, keyId: '0123456789ab', client: '198.51.100.9' }]);
  assert.equal(answer.type, 'adminResult');
  assert.deepEqual(answer.type === 'adminResult' && { id: answer.id, status: answer.status, body: answer.body }, { id: 7, status: 201, body: '{"cidr":"198.51.100.9/32"}' });
});

test('after a working session is lost the agent connects again at once and registers anew', async () => {
  const rendezvous = await startRendezvous();
  const client = startClient(rendezvous);
  const registered = once(client, 'registered');
  await client.start();
  await registered;
  const again = once(client, 'registered');
  const disconnected = once(client, 'disconnected');
  rendezvous.drop();
  await disconnected;
  await again;
  assert.equal(rendezvous.connections, 2);
  assert.equal(rendezvous.hellos.length, 2);
  assert.notEqual(rendezvous.hellos[0]!.nonce, rendezvous.hellos[1]!.nonce, 'a fresh nonce for each handshake');
});
