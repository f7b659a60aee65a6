import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ByteRateLimiter } from '../../src/common/rate-limiter.js';
import { splice } from '../../src/common/splice.js';

const servers: Server[] = [];
const sockets: Socket[] = [];
/** Accepted sockets of each server, in order. */
const acceptedBy = new Map<Server, Socket[]>();
let halfOpen: Server;
let closing: Server;

async function listen(allowHalfOpen: boolean): Promise<Server> {
  const server = createServer({ allowHalfOpen }, (socket) => acceptedBy.get(server)!.push(socket));
  acceptedBy.set(server, []);
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return server;
}

before(async () => {
  halfOpen = await listen(true); // as the relay port accepts users (relay.ts)
  closing = await listen(false); // as the control port accepts work connections (control-server.ts)
});

after(() => {
  for (const socket of sockets) socket.destroy();
  for (const server of servers) server.close();
});

/** A loopback pair: `far` is the user's (or the agent's) end, `near` the rendezvous's. Both allow half-open unless the server does not. */
async function pair(server: Server = halfOpen): Promise<{ near: Socket; far: Socket }> {
  const far = connect({ port: (server.address() as { port: number }).port, host: '127.0.0.1', allowHalfOpen: true });
  await once(far, 'connect');
  far.on('error', () => undefined); // a reset from the splice is what some tests look for
  const accepted = acceptedBy.get(server)!;
  while (accepted.length === 0) await sleep(1);
  const near = accepted.shift()!;
  sockets.push(near, far);
  return { near, far };
}

async function spliced(options: { idleMs?: number; limiter?: ByteRateLimiter; workServer?: Server } = {}) {
  const user = await pair();
  const work = await pair(options.workServer ?? halfOpen);
  const done = splice(user.near, work.near, { idleMs: options.idleMs ?? 10_000, ...(options.limiter ? { limiter: options.limiter } : {}) });
  return { user: user.far, agent: work.far, userNear: user.near, workNear: work.near, done };
}

/** Everything `socket` receives until its peer's FIN, hashed, with the byte count. */
function receiveAll(socket: Socket): Promise<{ bytes: number; sha: string }> {
  const hash = createHash('sha256');
  let bytes = 0;
  socket.on('data', (chunk: Buffer) => {
    bytes += chunk.length;
    hash.update(chunk);
  });
  return once(socket, 'end').then(() => ({ bytes, sha: hash.digest('hex') }));
}

function sha(buffer: Buffer): string {
  return createHash('sha256').update(buffer).digest('hex');
}

async function closedWithin(socket: Socket, ms: number, what: string): Promise<void> {
  if (socket.destroyed && socket.closed) return;
  const timer = sleep(ms).then(() => assert.fail(`${what} still open after ${ms} ms`));
  await Promise.race([new Promise((resolve) => socket.once('close', resolve)), timer]); // a reset is fine: events.once would reject on it
}

for (const limited of [false, true]) {
  test(`bytes pass both ways intact at once, and the result counts them (${limited ? 'with' : 'without'} a limiter)`, async () => {
    const { user, agent, done } = await spliced(limited ? { limiter: new ByteRateLimiter(1_000_000_000) } : {});
    const up = randomBytes(4 * 1024 * 1024 + 17);
    const down = randomBytes(3 * 1024 * 1024 + 5);
    const atAgent = receiveAll(agent);
    const atUser = receiveAll(user);
    user.end(up);
    agent.end(down);
    assert.deepEqual(await atAgent, { bytes: up.length, sha: sha(up) });
    assert.deepEqual(await atUser, { bytes: down.length, sha: sha(down) });
    assert.deepEqual(await done, { up: up.length, down: down.length });
  });
}

test('the result counts only the user\'s bytes as up, not the PROXY header written before the splice', async () => {
  const user = await pair();
  const work = await pair();
  work.near.write(Buffer.alloc(63, 0x0d)); // what relay.ts writes before splicing
  const done = splice(user.near, work.near, { idleMs: 10_000 });
  const atAgent = receiveAll(work.far);
  const atUser = receiveAll(user.far);
  user.far.end('hello');
  work.far.end('world');
  assert.equal((await atAgent).bytes, 63 + 5);
  await atUser;
  assert.deepEqual(await done, { up: 5, down: 5 });
});

test('a reset on either side destroys the other at once, with the cause', async () => {
  for (const side of ['user', 'agent'] as const) {
    const { user, agent, userNear, workNear, done } = await spliced();
    user.write('ping');
    await once(agent, 'data');
    const started = Date.now();
    const [reset, other] = side === 'user' ? [user, agent] : [agent, user];
    reset.resetAndDestroy();
    await closedWithin(other, 1000, `the ${side === 'user' ? 'agent' : 'user'}'s socket`);
    assert.ok(Date.now() - started < 1000);
    const result = await done;
    assert.equal(userNear.destroyed && workNear.destroyed, true);
    assert.match(result.cause ?? '', new RegExp(`^${side}: (ECONNRESET|.*reset)|^${side} connection reset`), side);
  }
});

test('no byte either way for idleMs closes both, with the cause', async () => {
  const { user, agent, done } = await spliced({ idleMs: 200 });
  const started = Date.now();
  const result = await done;
  const took = Date.now() - started;
  assert.ok(took >= 180 && took < 2000, `closed after ${took} ms`);
  assert.match(result.cause ?? '', /idle for 0\.2 s/);
  await closedWithin(user, 1000, 'user');
  await closedWithin(agent, 1000, 'agent');
});

test('traffic in either direction keeps the splice from going idle', async () => {
  for (const sender of ['user', 'agent'] as const) {
    const { user, agent, done } = await spliced({ idleMs: 250 });
    let closed = false;
    void done.then(() => (closed = true));
    const [from, to] = sender === 'user' ? [user, agent] : [agent, user];
    to.resume();
    for (let tick = 0; tick < 6; tick++) {
      from.write('x');
      await sleep(100);
    }
    assert.equal(closed, false, `${sender} traffic every 100 ms over 600 ms`);
    user.destroy();
    agent.destroy();
    await done;
  }
});

test('a 1 MB/s limiter stretches a 3 MB transfer to at least 2.5 s, and passes it intact', async () => {
  const { user, agent, done } = await spliced({ limiter: new ByteRateLimiter(1_000_000) });
  const up = randomBytes(3_000_000);
  const atAgent = receiveAll(agent);
  const started = Date.now();
  user.end(up);
  agent.end();
  const received = await atAgent;
  const took = Date.now() - started;
  assert.deepEqual(received, { bytes: up.length, sha: sha(up) });
  // a quarter-second burst, then 1 MB/s: about 2.75 s
  assert.ok(took >= 2500 && took < 4500, `3 MB took ${took} ms`);
  assert.equal((await done).up, up.length);
});

test('the limit is shared by both directions', async () => {
  const { user, agent, done } = await spliced({ limiter: new ByteRateLimiter(400_000) });
  const up = randomBytes(400_000);
  const down = randomBytes(400_000);
  const atAgent = receiveAll(agent);
  const atUser = receiveAll(user);
  const started = Date.now();
  user.end(up);
  agent.end(down);
  await Promise.all([atAgent, atUser]);
  const took = Date.now() - started;
  // 800 kB at 400 kB/s with a 100 kB burst: about 1.75 s; each direction alone would take under 0.8 s
  assert.ok(took >= 1500 && took < 4000, `800 kB took ${took} ms`);
  await done;
});

test('a FIN from the user is passed on while the agent keeps answering', async () => {
  const { user, agent, done } = await spliced();
  const atAgent = receiveAll(agent);
  user.end('GET / HTTP/1.0\r\n\r\n');
  assert.equal((await atAgent).bytes, 18, 'the agent got the request and its FIN');
  const atUser = receiveAll(user);
  const answer = randomBytes(256 * 1024);
  for (let at = 0; at < answer.length; at += 64 * 1024) {
    agent.write(answer.subarray(at, at + 64 * 1024));
    await sleep(20);
  }
  agent.end();
  assert.deepEqual(await atUser, { bytes: answer.length, sha: sha(answer) });
  assert.deepEqual(await done, { up: 18, down: answer.length });
});

test('a FIN from the agent is passed on while the user keeps sending', async () => {
  const { user, agent, done } = await spliced();
  const atUser = receiveAll(user);
  agent.end('bye');
  assert.equal((await atUser).bytes, 3);
  const atAgent = receiveAll(agent);
  const more = randomBytes(128 * 1024);
  user.write(more.subarray(0, 64 * 1024));
  await sleep(20);
  user.end(more.subarray(64 * 1024));
  assert.deepEqual(await atAgent, { bytes: more.length, sha: sha(more) });
  const result = await done;
  assert.equal(result.cause, undefined);
});

test('a FIN from the agent on a work connection accepted as the control port accepts it still lets the user keep sending', async () => {
  const { user, agent, done } = await spliced({ workServer: closing });
  const atUser = receiveAll(user);
  agent.end('bye');
  assert.equal((await atUser).bytes, 3);
  const atAgent = receiveAll(agent);
  await sleep(20);
  user.end('more from the user');
  const outcome = await Promise.race([atAgent, sleep(2000).then(() => undefined)]);
  assert.deepEqual(outcome, { bytes: 18, sha: sha(Buffer.from('more from the user')) });
  assert.equal((await done).cause, undefined);
});
